"""steps.signing.keys: cosign's encrypted key file, PKCS#8, public keys, key ids (pure)."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from steps.errors import EXIT_BAD_INPUT, KeyFileExists, SigningKeyInvalid, SigningKeyPassword
from steps.signing import keys

DATA = Path(__file__).resolve().parents[2] / "data" / "signing"
PASSWORD = b"alga-test-password"


def _body(pem: bytes) -> dict[str, object]:
    lines = [line for line in pem.decode().splitlines() if not line.startswith("-----")]
    value = json.loads(base64.b64decode("".join(lines)))
    assert isinstance(value, dict)
    return value


def test_a_key_cosign_generated_loads_and_matches_its_public_key() -> None:
    key = keys.read_signing_key(DATA / "cosign-generated.key", PASSWORD)
    public = keys.load_public_key((DATA / "cosign-generated.pub").read_bytes(), origin="pub")
    assert key.public.der == public.der
    assert key.key_id == public.key_id
    payload = b"anything"
    assert public.verifies(payload, key.sign(payload))


def test_key_id_is_sha256_of_the_spki_der_cut_to_16_hex() -> None:
    public = keys.load_public_key((DATA / "cosign-generated.pub").read_bytes(), origin="pub")
    pem_lines = (DATA / "cosign-generated.pub").read_text().splitlines()[1:-1]
    der = base64.b64decode("".join(pem_lines))
    assert public.key_id == "sha256:" + hashlib.sha256(der).hexdigest()[:16]
    assert len(public.key_id) == len("sha256:") + 16


def test_encrypted_key_round_trip_in_cosigns_layout() -> None:
    key = keys.SigningKey.generate()
    pem = keys.encrypt_cosign_key(key, PASSWORD)
    assert pem.startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    assert all(len(line) <= 64 for line in pem.splitlines())
    body = _body(pem)
    assert list(body) == ["kdf", "cipher", "ciphertext"]
    assert body["kdf"] == {
        "name": "scrypt",
        "params": {"N": 65536, "r": 8, "p": 1},
        "salt": body["kdf"]["salt"],  # type: ignore[index]
    }
    assert len(base64.b64decode(body["kdf"]["salt"])) == 32  # type: ignore[index]
    assert body["cipher"]["name"] == "nacl/secretbox"  # type: ignore[index]
    assert len(base64.b64decode(body["cipher"]["nonce"])) == 24  # type: ignore[index]
    loaded = keys.load_signing_key(pem, PASSWORD, origin="mem")
    assert loaded.key_id == key.key_id


def test_the_ciphertext_is_pkcs8_der_under_scrypt_and_secretbox() -> None:
    """Decrypt by hand, with the parameters the file names: what cosign does."""
    import nacl.secret

    key = keys.SigningKey.generate()
    body = _body(keys.encrypt_cosign_key(key, PASSWORD))
    salt = base64.b64decode(body["kdf"]["salt"])  # type: ignore[index]
    nonce = base64.b64decode(body["cipher"]["nonce"])  # type: ignore[index]
    secret = hashlib.scrypt(PASSWORD, salt=salt, n=65536, r=8, p=1, dklen=32, maxmem=1 << 27)
    der = nacl.secret.SecretBox(secret).decrypt(
        base64.b64decode(body["ciphertext"]),  # type: ignore[arg-type]
        nonce,
    )
    private = serialization.load_der_private_key(der, password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert keys.PublicKey.of(private.public_key()).key_id == key.key_id


def test_wrong_or_missing_password_is_bad_input_without_the_password() -> None:
    pem = (DATA / "cosign-generated.key").read_bytes()
    with pytest.raises(SigningKeyPassword) as wrong:
        keys.load_signing_key(pem, b"not-the-password-42", origin="release.key")
    assert wrong.value.exit_code == EXIT_BAD_INPUT
    assert "release.key" in wrong.value.message
    assert "not-the-password-42" not in wrong.value.diagnostics()
    with pytest.raises(SigningKeyPassword, match="no password"):
        keys.load_signing_key(pem, None, origin="release.key")


def test_a_tampered_key_file_does_not_open() -> None:
    pem = keys.encrypt_cosign_key(keys.SigningKey.generate(), PASSWORD)
    body = _body(pem)
    ciphertext = bytearray(base64.b64decode(body["ciphertext"]))  # type: ignore[arg-type]
    ciphertext[5] ^= 1
    body["ciphertext"] = base64.b64encode(bytes(ciphertext)).decode()
    tampered = keys._pem(keys.COSIGN_KEY_PEM_TYPE, json.dumps(body).encode())
    with pytest.raises(SigningKeyPassword):
        keys.load_signing_key(tampered, PASSWORD, origin="t")
    with pytest.raises(SigningKeyInvalid, match="malformed"):
        keys.load_signing_key(
            keys._pem(keys.COSIGN_KEY_PEM_TYPE, b"{not json"), PASSWORD, origin="t"
        )
    body["kdf"]["params"]["N"] = 1 << 30  # type: ignore[index]
    with pytest.raises(SigningKeyInvalid, match="scrypt parameters"):
        keys.load_signing_key(
            keys._pem(keys.COSIGN_KEY_PEM_TYPE, json.dumps(body).encode()), PASSWORD, origin="t"
        )


def test_pkcs8_sec1_and_encrypted_pkcs8_pems_load() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    expected = keys.PublicKey.of(private.public_key()).key_id
    plain = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    sec1 = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    encrypted = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSWORD),
    )
    assert keys.load_signing_key(plain, None, origin="p").key_id == expected
    assert keys.load_signing_key(sec1, None, origin="s").key_id == expected
    assert keys.load_signing_key(encrypted, PASSWORD, origin="e").key_id == expected
    with pytest.raises(SigningKeyPassword):
        keys.load_signing_key(encrypted, b"wrong", origin="e")
    with pytest.raises(SigningKeyPassword):
        keys.load_signing_key(encrypted, None, origin="e")


@pytest.mark.parametrize("kind", ["p384", "ed25519"])
def test_keys_other_than_p256_are_refused(kind: str) -> None:
    private: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    private = (
        ec.generate_private_key(ec.SECP384R1())
        if kind == "p384"
        else ed25519.Ed25519PrivateKey.generate()
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SigningKeyInvalid, match="P-256"):
        keys.load_signing_key(pem, None, origin="k")
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(SigningKeyInvalid, match="P-256"):
        keys.load_public_key(public, origin="k.pub")


def test_garbage_is_refused_naming_the_file() -> None:
    with pytest.raises(SigningKeyInvalid, match="no PEM block") as exc:
        keys.load_signing_key(b"hello", None, origin="/etc/signing/cosign.key")
    assert "/etc/signing/cosign.key" in exc.value.message
    with pytest.raises(SigningKeyInvalid, match="not a private key"):
        keys.load_signing_key((DATA / "cosign-generated.pub").read_bytes(), None, origin="x")
    with pytest.raises(SigningKeyInvalid, match="PUBLIC KEY"):
        keys.load_public_key((DATA / "cosign-generated.key").read_bytes(), origin="x")
    with pytest.raises(SigningKeyInvalid, match="cannot read"):
        keys.read_signing_key(Path("/nonexistent/cosign.key"), PASSWORD)


def test_signing_is_deterministic_and_verifies() -> None:
    key = keys.SigningKey.generate()
    assert key.sign(b"payload") == key.sign(b"payload")
    assert key.sign(b"payload") != key.sign(b"other")
    assert key.public.verifies(b"payload", key.sign(b"payload"))
    assert not key.public.verifies(b"payload!", key.sign(b"payload"))
    assert not keys.SigningKey.generate().public.verifies(b"payload", key.sign(b"payload"))
    assert "PRIVATE" not in repr(key) and key.key_id in repr(key)


def test_write_key_pair_creates_new_files_only(tmp_path: Path) -> None:
    written = keys.write_key_pair(tmp_path / "release", PASSWORD)
    assert written.private_path == tmp_path / "release.key"
    assert stat.S_IMODE(written.private_path.stat().st_mode) == 0o600
    loaded = keys.read_signing_key(written.private_path, PASSWORD)
    public = keys.read_public_keys([written.public_path, written.public_path])
    assert [p.key_id for p in public] == [loaded.key_id] == [written.key_id]
    before = written.private_path.read_bytes()
    with pytest.raises(KeyFileExists, match=r"release\.key"):
        keys.write_key_pair(tmp_path / "release", PASSWORD)
    assert written.private_path.read_bytes() == before
    with pytest.raises(SigningKeyPassword, match="empty password"):
        keys.write_key_pair(tmp_path / "other", b"")
    assert not (tmp_path / "other.key").exists()
