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
    FlagNames,
    Manifest,
    Progress,
    RegistryClient,
    RetryPolicy,
    is_loopback,
)
from steps.oci.errors import (
    AuthError,
    CommandTimeout,
    DigestMismatch,
    IncompleteBody,
    InsecureRegistry,
    InvalidReference,
    NotFound,
    ProtocolMismatch,
    RegistryError,
    RegistryRefused,
    RegistryTimeout,
    TransientRegistryError,
    UnresolvableHost,
)
from steps.oci.reference import Digest, Reference
from steps.oci.transport import Deadline, Timeouts

__all__ = [
    "AuthError",
    "ClientStats",
    "CommandTimeout",
    "Credentials",
    "Deadline",
    "Descriptor",
    "Digest",
    "DigestMismatch",
    "FlagNames",
    "IncompleteBody",
    "InsecureRegistry",
    "InvalidReference",
    "Manifest",
    "NotFound",
    "Progress",
    "ProtocolMismatch",
    "Reference",
    "RegistryClient",
    "RegistryError",
    "RegistryRefused",
    "RegistryTimeout",
    "RetryPolicy",
    "Timeouts",
    "TransientRegistryError",
    "UnresolvableHost",
    "is_loopback",
]
