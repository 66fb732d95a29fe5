"""OCI distribution client: parsed names, auth, blobs, manifests, typed errors.

Why our own client and not oras-py: against a token-auth registry, an
oras-py push failed because it reused a pull-scoped token, and its re-tag
re-serialises the manifest JSON, which changes the digest. Channel moves must
re-put the exact bytes, so this package keeps to raw bytes throughout.

The names below load on first use (PEP 562), so importing a light submodule
(``steps.oci.reference``, ``.auth``, ``.model``, ``.quick``) does not import the HTTP
client and its libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from steps.lazy import attributes

if TYPE_CHECKING:
    from steps.oci.auth import Credentials
    from steps.oci.client import RegistryClient, RetryPolicy
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
    from steps.oci.model import (
        ClientStats,
        Deadline,
        Descriptor,
        FlagNames,
        Manifest,
        Progress,
        is_loopback,
    )
    from steps.oci.reference import Digest, Reference
    from steps.oci.transport import Timeouts

_HOMES = {
    "Credentials": "auth",
    "RegistryClient": "client",
    "RetryPolicy": "client",
    "ClientStats": "model",
    "Descriptor": "model",
    "FlagNames": "model",
    "Manifest": "model",
    "Progress": "model",
    "is_loopback": "model",
    "Digest": "reference",
    "Reference": "reference",
    "Deadline": "model",
    "Timeouts": "transport",
}


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

_ERRORS = set(__all__) - set(_HOMES)
__getattr__ = attributes(
    __name__,
    globals(),
    {
        **{name: f"steps.oci.{home}" for name, home in _HOMES.items()},
        **{name: "steps.oci.errors" for name in _ERRORS},
    },
)
