"""steps.signing.cosign, pure parts: against bytes the real cosign v2.6.5 wrote.

tests/data/signing/ holds what ``cosign sign --key cosign-generated.key`` pushed for
``127.0.0.1:5077/nine-minds/fixture@sha256:ce0f…`` (see its README).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from steps.oci.reference import Digest
from steps.signing import cosign, keys

DATA = Path(__file__).resolve().parents[2] / "data" / "signing"
SUBJECT = Digest.parse("sha256:ce0fe43d1cda9c80b06599fe7b362387dcdce6a2ec53de098d331cc470175495")
REPOSITORY = "127.0.0.1:5077/nine-minds/fixture"


def _recorded_signature() -> bytes:
    manifest = json.loads((DATA / "sig-manifest.json").read_bytes())
    text = manifest["layers"][0]["annotations"][cosign.SIGNATURE_ANNOTATION]
    return base64.b64decode(text)


def test_payload_is_byte_identical_to_cosigns() -> None:
    payload = cosign.simple_signing_payload(REPOSITORY, SUBJECT)
    assert payload == (DATA / "payload.json").read_bytes()
    assert payload == (
        b'{"critical":{"identity":{"docker-reference":"127.0.0.1:5077/nine-minds/fixture"},'
        b'"image":{"docker-manifest-digest":"sha256:ce0fe43d1cda9c80b06599fe7b362387dcdce6a2e'
        b'c53de098d331cc470175495"},"type":"cosign container image signature"},"optional":null}'
    )
    assert cosign.payload_claims(payload) == (REPOSITORY, str(SUBJECT))


def test_signature_tag() -> None:
    assert cosign.signature_tag(SUBJECT) == f"sha256-{SUBJECT.hex}.sig"


def test_manifest_and_config_are_byte_identical_to_cosigns() -> None:
    payload = (DATA / "payload.json").read_bytes()
    layer = cosign.signature_layer(payload, _recorded_signature())
    manifest, config = cosign.signature_manifest([layer])
    assert config == (DATA / "sig-config.json").read_bytes()
    assert manifest == (DATA / "sig-manifest.json").read_bytes()


def test_cosigns_recorded_signature_verifies_under_its_public_key() -> None:
    public = keys.load_public_key((DATA / "cosign-generated.pub").read_bytes(), origin="pub")
    found = cosign.FoundSignature((DATA / "payload.json").read_bytes(), _recorded_signature())
    assert found.covers(SUBJECT)
    assert found.verified_by([keys.SigningKey.generate().public, public]) == public
    assert found.verified_by([keys.SigningKey.generate().public]) is None
    other = Digest.of(b"another artifact")
    assert not found.covers(other)


def test_appending_keeps_layers_and_lists_one_diff_id_and_history_entry_each() -> None:
    payload = (DATA / "payload.json").read_bytes()
    first = json.loads((DATA / "sig-manifest.json").read_bytes())["layers"][0]
    first["annotations"]["dev.sigstore.cosign/bundle"] = "<kept as is & escaped>"
    ours = cosign.signature_layer(payload, keys.SigningKey.generate().sign(payload))
    manifest, config = cosign.signature_manifest([first, ours])
    body = json.loads(manifest)
    assert body["layers"] == [first, ours]
    assert b"\\u003ckept as is \\u0026 escaped\\u003e" in manifest  # Go's HTML-safe escapes
    cfg = json.loads(config)
    assert cfg["rootfs"]["diff_ids"] == [first["digest"], ours["digest"]]
    assert cfg["history"] == [{"created": cosign.ZERO_TIME}] * 2
    assert body["config"]["digest"] == str(Digest.of(config))


def test_payload_claims_of_something_else() -> None:
    assert cosign.payload_claims(b"not json") == (None, None)
    assert cosign.payload_claims(b'{"critical":{"type":"other"}}') == (None, None)
    assert cosign.payload_claims(b"[]") == (None, None)
    found = cosign.FoundSignature(b"{}", None)
    assert not found.covers(SUBJECT)
    assert found.verified_by([keys.SigningKey.generate().public]) is None


def test_status_wording() -> None:
    signed = cosign.SignatureStatus("r@d", 2, ("sha256:0123456789abcdef",))
    assert signed.describe() == "signed by sha256:0123456789abcdef"
    assert cosign.SignatureStatus("r@d", 0, ()).describe() == "UNSIGNED"
    assert cosign.SignatureStatus("r@d", 1, ()).describe().startswith("UNSIGNED")
    assert signed.to_json()["signedBy"] == ["sha256:0123456789abcdef"]
