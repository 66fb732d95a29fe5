"""Signing releases in cosign's format: keys, signatures, the channel gate.

- :mod:`steps.signing.keys`: ECDSA P-256 key pairs in cosign's encrypted file format
  (and PKCS#8), public keys, key ids.
- :mod:`steps.signing.cosign`: the simple-signing payload, the ``sha256-<hex>.sig``
  signature manifest, :class:`Signer` (idempotent signing) and verification.
- :mod:`steps.signing.gates`: which pieces of a release are signed, the per-piece report
  for ``inspect``/``verify``, and :func:`require_signed` for channel moves.
- the failure kinds are in :mod:`steps.errors` (SigningKey*, UnsignedRelease, ...).

Publish functions take a ``signer: Signer | None`` (None: no signing, as before).
Nothing in this package reads the environment; the CLI reads the key file's password.

The names below load on first use (PEP 562): importing one module of this package (the DSSE
envelope, say) does not load the others and ``cryptography`` with them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from steps.lazy import attributes

if TYPE_CHECKING:
    from steps.errors import (
        SigningKeyInvalid,
        SigningKeyPassword,
        SigningKeyRequired,
        UnsignedRelease,
    )
    from steps.signing.cosign import SignatureStatus, Signer, SignResult, load_signer
    from steps.signing.gates import require_signed, signature_report, trusted_keys
    from steps.signing.keys import PublicKey, SigningKey

_HOMES = {
    "SigningKeyInvalid": "steps.errors",
    "SigningKeyPassword": "steps.errors",
    "SigningKeyRequired": "steps.errors",
    "UnsignedRelease": "steps.errors",
    "SignatureStatus": "steps.signing.cosign",
    "Signer": "steps.signing.cosign",
    "SignResult": "steps.signing.cosign",
    "load_signer": "steps.signing.cosign",
    "require_signed": "steps.signing.gates",
    "signature_report": "steps.signing.gates",
    "trusted_keys": "steps.signing.gates",
    "PublicKey": "steps.signing.keys",
    "SigningKey": "steps.signing.keys",
}


__all__ = [
    "PublicKey",
    "SignResult",
    "SignatureStatus",
    "Signer",
    "SigningKey",
    "SigningKeyInvalid",
    "SigningKeyPassword",
    "SigningKeyRequired",
    "UnsignedRelease",
    "load_signer",
    "require_signed",
    "signature_report",
    "trusted_keys",
]

__getattr__ = attributes(__name__, globals(), _HOMES)
