"""OCI distribution client: parsed names, auth, blobs, manifests, typed errors.

Why our own client and not oras-py: against a token-auth registry, an
oras-py push failed because it reused a pull-scoped token, and its re-tag
re-serialises the manifest JSON, which changes the digest. Channel moves must
re-put the exact bytes, so this package keeps to raw bytes throughout.
"""

from steps.oci.auth import Credentials
from steps.oci.client import (
    ClientStats,
    Descriptor,
    Manifest,
    RegistryClient,
    RetryPolicy,
    is_loopback,
)
from steps.oci.errors import (
    AuthError,
    DigestMismatch,
    InsecureRegistry,
    InvalidReference,
    NotFound,
    RegistryError,
    RegistryRefused,
    TransientRegistryError,
)
from steps.oci.reference import Digest, Reference

__all__ = [
    "AuthError",
    "ClientStats",
    "Credentials",
    "Descriptor",
    "Digest",
    "DigestMismatch",
    "InsecureRegistry",
    "InvalidReference",
    "Manifest",
    "NotFound",
    "Reference",
    "RegistryClient",
    "RegistryError",
    "RegistryRefused",
    "RetryPolicy",
    "TransientRegistryError",
    "is_loopback",
]
