"""Signatures in the consume twins: ECDSA P-256 against ``cryptography``, keys, the decision.

The Python twin verifies ECDSA P-256 with its own standard-library arithmetic; the
Node twin with ``node:crypto``. Both are held to the known answers in
``consume/test/ecdsa-p256-kat.json``, made and re-checked here with
``cryptography`` (OpenSSL: an implementation neither twin shares code with):
valid signatures, tampered messages, wrong keys, high-S, scalars out of range and
non-canonical DER, and keys that are not P-256 points.

    .venv/bin/python tests/unit/test_consume_signatures.py   # rewrite the KAT file
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "consume"))
import release_consume as rc  # noqa: E402  (a single file, not a package: see consume/README.md)

KAT = ROOT / "consume" / "test" / "ecdsa-p256-kat.json"
N = rc._P256_N
SPKI = (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# -- the known-answer file ------------------------------------------------------------------


def _pem(key: Any) -> str:
    return str(key.public_key().public_bytes(*SPKI).decode())


def _der_int(value: int, *, pad: int = 0) -> bytes:
    raw = b"\x00" * pad + value.to_bytes((value.bit_length() + 8) // 8, "big")
    return b"\x02" + bytes([len(raw)]) + raw


def _seq(body: bytes, *, long_form: bool = False) -> bytes:
    if long_form:
        return b"\x30\x81" + bytes([len(body)]) + body
    return b"\x30" + bytes([len(body)]) + body


def make_kat() -> dict[str, Any]:
    """Signature and key cases, each answered by ``cryptography``."""
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    sig_cases: list[dict[str, Any]] = []

    def case(name: str, key: Any, message: bytes, signature: bytes) -> None:
        sig_cases.append(
            {
                "name": name,
                "publicKey": _pem(key),
                "message": message.hex(),
                "signature": signature.hex(),
            }
        )

    sign = ec.ECDSA(hashes.SHA256())
    for i, message in enumerate([b"", b"a", b'{"critical":{}}', os.urandom(1000), b"x" * 5000]):
        key = keys[i % len(keys)]
        case(f"valid-{i}", key, message, key.sign(message, sign))
    key, message = keys[0], b"the payload cosign signs"
    good = key.sign(message, sign)
    r, s = decode_dss_signature(good)
    case("tampered-message", key, message + b" ", good)
    case("wrong-key", keys[1], message, good)
    case("high-s", key, message, encode_dss_signature(r, N - s))
    case("r-and-s-swapped", key, message, encode_dss_signature(s, r))
    case("r-zero", key, message, _seq(_der_int(0) + _der_int(s)))
    case("s-zero", key, message, _seq(_der_int(r) + _der_int(0)))
    case("r-equals-n", key, message, _seq(_der_int(N) + _der_int(s)))
    case("s-equals-n", key, message, _seq(_der_int(r) + _der_int(N)))
    case("r-plus-n", key, message, _seq(_der_int(r + N) + _der_int(s)))
    case("s-plus-n", key, message, _seq(_der_int(r) + _der_int(s + N)))
    case("der-leading-zero", key, message, _seq(_der_int(r, pad=1) + _der_int(s)))
    case("der-long-form-length", key, message, _seq(_der_int(r) + _der_int(s), long_form=True))
    case("der-trailing-byte", key, message, good + b"\x00")
    case("der-truncated", key, message, good[:-1])
    negative = s | (1 << (8 * ((s.bit_length() + 7) // 8) - 1))  # top bit set, no 0x00
    raw = negative.to_bytes((negative.bit_length() + 7) // 8, "big")
    case("der-negative-s", key, message, _seq(_der_int(r) + b"\x02" + bytes([len(raw)]) + raw))
    case("der-indefinite-length", key, message, b"\x30\x80" + good[2:] + b"\x00\x00")
    case("der-not-a-sequence", key, message, b"\x31" + good[1:])
    case("empty", key, message, b"")

    key_cases: list[dict[str, Any]] = []
    for i, key in enumerate(keys[:2]):
        key_cases.append({"name": f"p256-{i}", "pem": _pem(key)})
    compressed = (
        keys[0]
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    )
    spki_compressed = bytes.fromhex("3039301306072a8648ce3d020106082a8648ce3d030107032200")
    key_cases.append({"name": "p256-compressed", "der": (spki_compressed + compressed).hex()})
    uncompressed = (
        keys[0]
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    off_curve = bytearray(uncompressed)
    off_curve[-1] ^= 0x01
    key_cases.append({"name": "not-on-curve", "der": bytes(off_curve).hex()})
    key_cases.append({"name": "p384", "pem": _pem(ec.generate_private_key(ec.SECP384R1()))})
    key_cases.append({"name": "ed25519", "pem": _pem(ed25519.Ed25519PrivateKey.generate())})
    key_cases.append(
        {"name": "rsa", "pem": _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))}
    )
    for item in key_cases:
        item.update(_crypto_key(item))
    for item in sig_cases:
        item["valid"] = _crypto_verdict(item)
    return {
        "description": "ECDSA P-256 / SHA-256 known answers from the cryptography package "
        "(tests/unit/test_consume_signatures.py); valid = what cryptography says",
        "signatures": sig_cases,
        "keys": key_cases,
    }


def _crypto_key(item: dict[str, Any]) -> dict[str, Any]:
    """cryptography's reading of a key case: P-256 or not, and the key id of its DER SPKI."""
    try:
        if "pem" in item:
            key: Any = serialization.load_pem_public_key(item["pem"].encode())
        else:
            key = serialization.load_der_public_key(bytes.fromhex(item["der"]))
    except ValueError:
        return {"p256": False, "keyId": None}
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        return {"p256": False, "keyId": None}
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {"p256": True, "keyId": "sha256:" + hashlib.sha256(der).hexdigest()[:16]}


def _crypto_verdict(item: dict[str, Any]) -> bool:
    key = serialization.load_pem_public_key(item["publicKey"].encode())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    try:
        key.verify(
            bytes.fromhex(item["signature"]),
            bytes.fromhex(item["message"]),
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def _kat() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(KAT.read_text(encoding="utf-8"))
    return doc


# -- ECDSA and keys against the known answers ------------------------------------------------


def test_the_known_answers_are_cryptographys() -> None:
    """Every committed answer is what cryptography (OpenSSL) says today."""
    kat = _kat()
    for item in kat["signatures"]:
        assert _crypto_verdict(item) is item["valid"], item["name"]
    for item in kat["keys"]:
        assert _crypto_key(item) == {"p256": item["p256"], "keyId": item["keyId"]}, item["name"]
    names = {item["name"] for item in kat["signatures"] if item["valid"]}
    assert {"valid-0", "valid-4", "high-s"} <= names  # the file is not all refusals
    assert "tampered-message" not in names and "der-leading-zero" not in names


def _python_key(item: dict[str, Any]) -> rc.TrustedKey | None:
    try:
        if "pem" in item:
            return rc.parse_public_keys(item["pem"])[0]
        return rc.parse_spki(bytes.fromhex(item["der"]))
    except (rc.BadInput, ValueError):
        return None


@pytest.mark.parametrize("index", range(len(_kat()["signatures"])))
def test_python_ecdsa_gives_the_known_answer(index: int) -> None:
    item = _kat()["signatures"][index]
    key = rc.parse_public_keys(item["publicKey"])[0]
    message, signature = bytes.fromhex(item["message"]), bytes.fromhex(item["signature"])
    assert key.verify(message, signature) is item["valid"], item["name"]


@pytest.mark.parametrize("index", range(len(_kat()["keys"])))
def test_python_reads_keys_as_cryptography_does(index: int) -> None:
    item = _kat()["keys"][index]
    key = _python_key(item)
    assert (key is not None) is item["p256"], item["name"]
    assert (key.key_id if key is not None else None) == item["keyId"]


def test_ecdsa_agrees_with_cryptography_on_fresh_random_signatures() -> None:
    """Beyond the file: 40 fresh keys and messages, and each one tampered."""
    for i in range(40):
        private = ec.generate_private_key(ec.SECP256R1())
        key = rc.parse_public_keys(_pem(private))[0]
        message = os.urandom(i * 7)
        signature = private.sign(message, ec.ECDSA(hashes.SHA256()))
        assert key.verify(message, signature)
        assert not key.verify(message + b"!", signature)
        r, s = rc.parse_der_signature(signature)
        assert (r, s) == decode_dss_signature(signature)
        assert not rc.ecdsa_p256_verify(key.point, message, r, (s + 1) % N)


_NODE_KAT = """
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
const rc = await import(pathToFileURL(process.env.CONSUME_MODULE).href);
const kat = JSON.parse(fs.readFileSync(process.env.KAT, 'utf8'));
const sigs = kat.signatures.map((item) => {
  const key = rc.parsePublicKeys(item.publicKey)[0];
  return key.verify(Buffer.from(item.message, 'hex'), Buffer.from(item.signature, 'hex'));
});
const keys = kat.keys.map((item) => {
  try {
    if (item.pem) return rc.parsePublicKeys(item.pem)[0].keyId;
    return rc.parseSpki(Buffer.from(item.der, 'hex')).keyId;
  } catch { return null; }
});
process.stdout.write(JSON.stringify({ sigs, keys }));
"""


def test_node_twin_gives_the_known_answers() -> None:
    from tests.unit.consume.test_consume_node import _node

    proc = subprocess.run(
        [_node(), "--input-type=module", "-e", _NODE_KAT],
        env={
            **os.environ,
            "CONSUME_MODULE": str(ROOT / "consume" / "release-consume.mjs"),
            "KAT": str(KAT),
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    kat = _kat()
    assert out["sigs"] == [item["valid"] for item in kat["signatures"]]
    assert out["keys"] == [item["keyId"] for item in kat["keys"]]


# -- keys: PEM files and the trusted set -------------------------------------------------------


def test_pem_files_hold_one_or_two_public_keys_and_nothing_secret() -> None:
    one, two, three = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    both = rc.parse_public_keys("# release keys\n" + _pem(one) + "\nrotated in 2026:\n" + _pem(two))
    assert [k.key_id for k in both] == [rc.key_id(k.der) for k in both]
    assert rc.trusted_key_set([_pem(one), _pem(one), both[1]]) == (both[0], both[1])
    with pytest.raises(rc.BadInput, match="at most 2"):
        rc.trusted_key_set([_pem(one), _pem(two), _pem(three)])
    private = one.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(rc.BadInput, match="PRIVATE KEY, not a PUBLIC KEY") as err:
        rc.parse_public_keys(private)
    body = private.splitlines()[1]
    assert body not in err.value.message  # never echo a secret
    with pytest.raises(rc.BadInput, match="no PEM PUBLIC KEY"):
        rc.parse_public_keys("nothing here")
    with pytest.raises(rc.BadInput, match="P-256"):
        rc.parse_public_keys(_pem(ec.generate_private_key(ec.SECP384R1())))
    assert rc.parse_public_keys(both[0].pem()) == [both[0]]


# -- the decision (pure) --------------------------------------------------------------------


DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def _signature(key: ec.EllipticCurvePrivateKey, digest: str = DIGEST, **kw: Any) -> rc.Signature:
    payload = kw.pop("payload", None) or rc.simple_signing_payload("r.test/x", digest)
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    return rc.Signature(payload, signature)


def test_check_signatures_decides_most_telling_first() -> None:
    trusted, other = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
    keys = rc.trusted_key_set([_pem(trusted)])
    good, foreign = _signature(trusted), _signature(other)
    moved = _signature(trusted, OTHER)
    garbled = rc.Signature(good.payload, base64.b64encode(b"\x30\x00").decode())
    altered = rc.Signature(None, good.signature, "a signature payload: altered")
    check = rc.check_signatures
    assert check([foreign, good], DIGEST, keys, what="x") == keys[0].key_id
    with pytest.raises(rc.Unsigned):
        check([], DIGEST, keys, what="x")
    with pytest.raises(rc.UntrustedSignature):
        check([foreign], DIGEST, keys, what="x")
    with pytest.raises(rc.SignatureDigestMismatch, match=OTHER):
        check([foreign, garbled, moved], DIGEST, keys, what="x")
    with pytest.raises(rc.BadSignature):
        check([foreign, garbled], DIGEST, keys, what="x")
    with pytest.raises(rc.BadSignature, match="altered"):
        check([altered], DIGEST, keys, what="x")
    # cosign may add optional claims: parsed, not byte-compared.
    extra = json.loads(rc.simple_signing_payload("r.test/x", DIGEST))
    extra["optional"] = {"creator": "someone", "timestamp": 1}
    assert check([_signature(trusted, payload=json.dumps(extra).encode())], DIGEST, keys, what="x")
    # A signature of the right digest but not a cosign image signature does not count.
    wrong_type = json.loads(rc.simple_signing_payload("r.test/x", DIGEST))
    wrong_type["critical"]["type"] = "atomic container signature"
    not_cosign = _signature(trusted, payload=json.dumps(wrong_type).encode())
    with pytest.raises(rc.SignatureDigestMismatch):
        check([not_cosign], DIGEST, keys, what="x")
    for cls in (rc.Unsigned, rc.UntrustedSignature, rc.SignatureDigestMismatch, rc.BadSignature):
        assert issubclass(cls, rc.SignatureError) and cls("m").exit_code == 3
        assert cls("m").to_json()["family"] == "RepositoryError"


def test_signature_layers_reads_what_cosign_writes() -> None:
    manifest = (
        b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":'
        b'{"mediaType":"application/vnd.oci.image.config.v1+json","size":233,"digest":"sha256:'
        + b"c"
        * 64
        + b'"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json",'
        b'"size":244,"digest":"sha256:'
        + b"d"
        * 64
        + b'","annotations":{"dev.cosignproject.cosign/signature":"MEYC"}},'
        b'{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":1,"digest":"sha256:'
        + b"e" * 64
        + b'"}]}'
    )
    layers = rc.signature_layers(manifest, header_digest=rc.compute_digest(manifest))
    assert layers == [rc.SignatureLayer("sha256:" + "d" * 64, 244, "MEYC")]
    with pytest.raises(rc.BadSignature):
        rc.signature_layers(manifest, header_digest=OTHER)
    with pytest.raises(rc.BadSignature):
        rc.signature_layers(b'{"manifests": []}')
    assert rc.signature_tag(DIGEST) == "sha256-" + "a" * 64 + ".sig"


if __name__ == "__main__":
    KAT.write_text(json.dumps(make_kat(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {KAT}")


def test_the_conformance_vectors_signatures_verify_with_cryptography() -> None:
    """The vectors' deterministic test signer (consume/vectors/generate.py) is real ECDSA:
    cryptography gives the same verdict as the library for every signature in them."""
    checked = valid = 0
    for path in sorted((ROOT / "consume" / "vectors").glob("*.json")):
        vector = json.loads(path.read_text(encoding="utf-8"))
        bodies = {
            rc.compute_digest(x["response"]["body"].encode()): x["response"]["body"].encode()
            for x in vector["exchanges"]
            if "body" in x.get("response", {})
        }
        keys = [
            serialization.load_pem_public_key(p.encode()) for p in vector["input"]["trustedKeys"]
        ]
        for exchange in vector["exchanges"]:
            answer = exchange["response"]
            if not exchange["request"]["url"].endswith(".sig") or answer.get("status") != 200:
                continue
            for layer in rc.signature_layers(answer["body"].encode()):
                payload = bodies.get(layer.digest)
                if payload is None or layer.signature is None:
                    continue
                raw = base64.b64decode(layer.signature)
                for pem, key in zip(vector["input"]["trustedKeys"], keys, strict=True):
                    assert isinstance(key, ec.EllipticCurvePublicKey)
                    try:
                        key.verify(raw, payload, ec.ECDSA(hashes.SHA256()))
                        theirs = True
                    except InvalidSignature:
                        theirs = False
                    ours = rc.parse_public_keys(pem)[0].verify(payload, raw)
                    assert ours is theirs, (path.name, layer.digest)
                    checked += 1
                    valid += theirs
    assert checked >= 10 and valid >= 5, (checked, valid)
