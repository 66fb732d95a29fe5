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
"""

from steps.errors import (
    SigningKeyInvalid,
    SigningKeyPassword,
    SigningKeyRequired,
    UnsignedRelease,
)
from steps.signing.cosign import SignatureStatus, Signer, SignResult, load_signer
from steps.signing.gates import require_signed, signature_report, trusted_keys
from steps.signing.keys import PublicKey, SigningKey

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
