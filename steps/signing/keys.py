"""ECDSA P-256 signing keys in cosign's file formats.

Files this module reads and writes:

- **cosign's encrypted private key** (what ``cosign generate-key-pair`` writes and
  ``cosign sign --key``, Flux and containers/image read): a PEM block of type
  ``ENCRYPTED SIGSTORE PRIVATE KEY`` (older cosign: ``ENCRYPTED COSIGN PRIVATE KEY``)
  whose body is JSON::

      {"kdf": {"name": "scrypt", "params": {"N": 65536, "r": 8, "p": 1}, "salt": B64},
       "cipher": {"name": "nacl/secretbox", "nonce": B64},
       "ciphertext": B64}

  The secretbox key is ``scrypt(password, salt, N, r, p, 32 bytes)``; the plaintext is
  the private key as PKCS#8 DER. (``B64`` is standard base64 with padding, as Go's
  ``encoding/json`` writes ``[]byte``.)
- a **PKCS#8** private key PEM (``PRIVATE KEY``, or ``ENCRYPTED PRIVATE KEY`` with a
  password), or SEC1 ``EC PRIVATE KEY``, for keys made with openssl or a KMS export;
- a **PKIX public key** PEM (``PUBLIC KEY``), the ``cosign.pub`` beside the key.

The **key id** is ``sha256:`` and the first 16 hex characters of the SHA-256 of the
public key's DER SubjectPublicKeyInfo: short enough to show, the same in every tool of
this project (the consume twins compute it the same way).

Invariants: only P-256 keys are accepted (what cosign, Flux and the consume twins
verify); a password arrives as bytes from the caller (the CLI reads it from the
environment or a file, never argv) and never appears in a message; generated key files
are created exclusively (an existing file is never overwritten) with mode 0600 for the
private key. Nothing here reads the environment or talks to a registry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.secret
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from steps.errors import KeyFileExists, SigningKeyInvalid, SigningKeyPassword

COSIGN_KEY_PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
LEGACY_COSIGN_KEY_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"
PUBLIC_KEY_PEM_TYPE = "PUBLIC KEY"

#: cosign's scrypt parameters (go-securesystemslib's defaults): N=2^16, r=8, p=1.
SCRYPT_N = 1 << 16
SCRYPT_R = 8
SCRYPT_P = 1
#: A key file naming larger parameters than these is refused (memory is 128 * N * r).
_MAX_SCRYPT_N = 1 << 20
_MAX_SCRYPT_R = 32
_MAX_SCRYPT_P = 16

_PEM_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)\r?\n?-----END \1-----", re.DOTALL)


@dataclass(frozen=True)
class PublicKey:
    """An ECDSA P-256 public key, with its DER SPKI and key id."""

    key: ec.EllipticCurvePublicKey
    der: bytes

    @classmethod
    def of(cls, key: ec.EllipticCurvePublicKey) -> PublicKey:
        der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(key, der)

    @property
    def key_id(self) -> str:
        return key_id(self.der)

    def pem(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verifies(self, payload: bytes, signature: bytes) -> bool:
        """Does ``signature`` (DER ECDSA) sign SHA-256(``payload``) under this key?"""
        try:
            self.key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    """An ECDSA P-256 private key and where it came from (a file name, for messages)."""

    private: ec.EllipticCurvePrivateKey
    origin: str = "generated key"

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public(self) -> PublicKey:
        return PublicKey.of(self.private.public_key())

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, payload: bytes) -> bytes:
        """DER ECDSA signature over SHA-256(``payload``).

        Deterministic (RFC 6979): the same key and payload always give the same bytes,
        so re-signing an artifact re-creates exactly the signature already there.
        """
        return self.private.sign(payload, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))

    def __repr__(self) -> str:  # never print key material
        return f"SigningKey({self.key_id}, from {self.origin})"


def key_id(spki_der: bytes) -> str:
    """``sha256:`` + the first 16 hex of SHA-256 over the DER SubjectPublicKeyInfo."""
    return "sha256:" + hashlib.sha256(spki_der).hexdigest()[:16]


# -- cosign's encrypted key file --------------------------------------------------------


def encrypt_cosign_key(
    key: SigningKey,
    password: bytes,
    *,
    random: Callable[[int], bytes] = os.urandom,
    scrypt_n: int = SCRYPT_N,
) -> bytes:
    """The private key as cosign's ``ENCRYPTED SIGSTORE PRIVATE KEY`` PEM."""
    der = key.private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    salt = random(32)
    nonce = random(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(_scrypt(password, salt, scrypt_n, SCRYPT_R, SCRYPT_P))
    ciphertext = box.encrypt(der, nonce).ciphertext
    document = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": scrypt_n, "r": SCRYPT_R, "p": SCRYPT_P},
            "salt": _b64(salt),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": _b64(nonce)},
        "ciphertext": _b64(ciphertext),
    }
    body = json.dumps(document, separators=(",", ":")).encode()
    return _pem(COSIGN_KEY_PEM_TYPE, body)


def decrypt_cosign_key(body: bytes, password: bytes, origin: str) -> bytes:
    """The PKCS#8 DER inside a cosign key file's PEM body (already base64-decoded)."""
    try:
        document = json.loads(body)
        kdf, cipher = document["kdf"], document["cipher"]
        params = kdf["params"]
        n, r, p = int(params["N"]), int(params["r"]), int(params["p"])
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        ciphertext = base64.b64decode(document["ciphertext"], validate=True)
        names = (kdf["name"], cipher["name"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise SigningKeyInvalid(
            f"signing key {origin}: not a cosign key file (its JSON body is malformed)",
            hint="generate one with `alga-release keys generate` or `cosign generate-key-pair`",
        ) from None
    if names != ("scrypt", "nacl/secretbox"):
        raise SigningKeyInvalid(
            f"signing key {origin}: unsupported encryption {names[0]}/{names[1]} "
            "(expected scrypt/nacl/secretbox)"
        )
    if (
        not (1 < n <= _MAX_SCRYPT_N and n & (n - 1) == 0 and 0 < r <= _MAX_SCRYPT_R)
        or not 0 < p <= _MAX_SCRYPT_P
    ):
        raise SigningKeyInvalid(f"signing key {origin}: scrypt parameters out of range")
    if len(nonce) != nacl.secret.SecretBox.NONCE_SIZE:
        raise SigningKeyInvalid(f"signing key {origin}: the nonce is not 24 bytes")
    box = nacl.secret.SecretBox(_scrypt(password, salt, n, r, p))
    try:
        return box.decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError:
        raise SigningKeyPassword(
            f"signing key {origin}: the password does not open it",
            hint="check the key's password (ALGA_SIGNING_KEY_PASSWORD or "
            "--signing-key-password-file)",
        ) from None


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=128 * n * r * p + (1 << 24)
    )


# -- loading --------------------------------------------------------------------------


def load_signing_key(data: bytes, password: bytes | None, *, origin: str) -> SigningKey:
    """A private key from a cosign key file, a PKCS#8 PEM or a SEC1 PEM.

    ``password`` is needed for cosign's encrypted format and ``ENCRYPTED PRIVATE KEY``;
    an empty password is a password (cosign allows it). ``origin`` names the file in
    messages.
    """
    blocks = _pem_blocks(data)
    if not blocks:
        raise SigningKeyInvalid(
            f"signing key {origin}: no PEM block found",
            hint="expected a cosign key (ENCRYPTED SIGSTORE PRIVATE KEY) or a PKCS#8 PEM",
        )
    pem_type, body = blocks[0]
    if pem_type in (COSIGN_KEY_PEM_TYPE, LEGACY_COSIGN_KEY_PEM_TYPE):
        if password is None:
            raise _password_missing(origin)
        der = decrypt_cosign_key(body, password, origin)
        try:
            private = serialization.load_der_private_key(der, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise SigningKeyInvalid(
                f"signing key {origin}: the decrypted key is not a PKCS#8 private key"
            ) from None
    elif pem_type in ("PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"):
        if pem_type == "ENCRYPTED PRIVATE KEY" and password is None:
            raise _password_missing(origin)
        block = _pem(pem_type, body)
        try:
            private = serialization.load_pem_private_key(
                block, password=password if pem_type == "ENCRYPTED PRIVATE KEY" else None
            )
        except (ValueError, TypeError, UnsupportedAlgorithm):
            if pem_type == "ENCRYPTED PRIVATE KEY":
                raise SigningKeyPassword(
                    f"signing key {origin}: the password does not open it"
                ) from None
            raise SigningKeyInvalid(f"signing key {origin}: the {pem_type} is malformed") from None
    else:
        raise SigningKeyInvalid(
            f"signing key {origin}: a {pem_type} PEM is not a private key we read",
            hint="expected ENCRYPTED SIGSTORE PRIVATE KEY (cosign), PRIVATE KEY or "
            "ENCRYPTED PRIVATE KEY (PKCS#8)",
        )
    if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
        private.curve, ec.SECP256R1
    ):
        raise SigningKeyInvalid(
            f"signing key {origin}: not an ECDSA P-256 key",
            hint="cosign, Flux and the appliance verify ECDSA P-256 signatures only",
        )
    return SigningKey(private, origin)


def load_public_key(data: bytes, *, origin: str) -> PublicKey:
    """An ECDSA P-256 public key from a ``PUBLIC KEY`` PEM (PKIX)."""
    blocks = [(t, b) for t, b in _pem_blocks(data) if t == PUBLIC_KEY_PEM_TYPE]
    if not blocks:
        raise SigningKeyInvalid(
            f"public key {origin}: no PUBLIC KEY PEM block found",
            hint="give the .pub file written next to the signing key",
        )
    try:
        key = serialization.load_der_public_key(blocks[0][1])
    except (ValueError, UnsupportedAlgorithm):
        raise SigningKeyInvalid(f"public key {origin}: the PUBLIC KEY is malformed") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SigningKeyInvalid(f"public key {origin}: not an ECDSA P-256 key")
    return PublicKey.of(key)


def read_signing_key(path: Path, password: bytes | None) -> SigningKey:
    """:func:`load_signing_key` on a file; a missing file is bad input naming it."""
    data = _read(path, "signing key", "check --signing-key / ALGA_SIGNING_KEY")
    return load_signing_key(data, password, origin=str(path))


def read_public_keys(paths: Iterable[Path]) -> list[PublicKey]:
    """Every public key file, in order, without duplicates (by key id)."""
    keys: dict[str, PublicKey] = {}
    for path in paths:
        key = load_public_key(_read(path, "public key", "check --trusted-key"), origin=str(path))
        keys.setdefault(key.key_id, key)
    return list(keys.values())


def _read(path: Path, what: str, hint: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningKeyInvalid(
            f"{what} {path}: cannot read it ({exc.strerror})", hint=hint
        ) from None


# -- writing a key pair ------------------------------------------------------------------


@dataclass(frozen=True)
class WrittenKeyPair:
    private_path: Path
    public_path: Path
    key_id: str

    def to_json(self) -> dict[str, str]:
        return {
            "privateKey": str(self.private_path),
            "publicKey": str(self.public_path),
            "keyId": self.key_id,
        }


def write_key_pair(
    prefix: Path, password: bytes, *, key: SigningKey | None = None
) -> WrittenKeyPair:
    """Write ``<prefix>.key`` (cosign's encrypted format, mode 0600) and ``<prefix>.pub``.

    Refuses (before writing anything) when either file exists, and refuses an empty
    password: a release key must not be readable by whoever copies the file.
    """
    if not password:
        raise SigningKeyPassword(
            "refusing to write a signing key with an empty password",
            hint="set ALGA_SIGNING_KEY_PASSWORD or --signing-key-password-file",
        )
    private_path = prefix.with_name(prefix.name + ".key")
    public_path = prefix.with_name(prefix.name + ".pub")
    existing = [p for p in (private_path, public_path) if p.exists()]
    if existing:
        raise KeyFileExists(
            "refusing to overwrite " + " and ".join(str(p) for p in existing),
            hint="choose another --output-prefix, or move the old key pair away first",
        )
    key = key or SigningKey.generate()
    encrypted = encrypt_cosign_key(key, password)
    _write_new(private_path, encrypted, 0o600)
    _write_new(public_path, key.public.pem(), 0o644)
    return WrittenKeyPair(private_path, public_path, key.key_id)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


# -- PEM -------------------------------------------------------------------------------


def _pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    blocks = []
    for match in _PEM_RE.finditer(data):
        body = b"".join(match.group(2).split())
        try:
            blocks.append((match.group(1).decode(), base64.b64decode(body, validate=True)))
        except binascii.Error:
            continue
    return blocks


def _pem(pem_type: str, body: bytes) -> bytes:
    text = base64.b64encode(body).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return (
        f"-----BEGIN {pem_type}-----\n" + "\n".join(lines) + f"\n-----END {pem_type}-----\n"
    ).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _password_missing(origin: str) -> SigningKeyPassword:
    return SigningKeyPassword(
        f"signing key {origin} is encrypted and no password was given",
        hint="set ALGA_SIGNING_KEY_PASSWORD or --signing-key-password-file (never on the "
        "command line)",
    )
