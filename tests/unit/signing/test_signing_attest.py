"""steps.signing.dsse and steps.signing.attest, pure parts: against what cosign v2.6.5 wrote.

tests/data/signing/att-*.json hold what ``cosign attest --key cosign-generated.key --type
slsaprovenance1`` pushed (see its README): our envelope parser must verify cosign's
envelope under that key, and our ``.att`` layer and manifest around that envelope must be
cosign's bytes exactly.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from steps.oci.reference import Digest
from steps.signing import attest, cosign, dsse, keys

DATA = Path(__file__).resolve().parents[2] / "data" / "signing"
SUBJECT = Digest.parse("sha256:056d35a8792beac0f8470599081503019658959a1c9ee187aad8a3ec89b28f18")
SLSA_V1 = "https://slsa.dev/provenance/v1"


def _cosign_public() -> keys.PublicKey:
    return keys.load_public_key((DATA / "cosign-generated.pub").read_bytes(), origin="pub")


def _cosign_key() -> keys.SigningKey:
    data = (DATA / "cosign-generated.key").read_bytes()
    return keys.load_signing_key(data, b"alga-test-password", origin="key")


def test_pae_is_the_dsse_spec_encoding() -> None:
    # The example of the DSSE v1.0 protocol document.
    assert (
        dsse.pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert dsse.pae("", b"") == b"DSSEv1 0  0 "


def test_cosigns_envelope_verifies_under_its_key_only() -> None:
    envelope = dsse.parse_envelope((DATA / "att-envelope.json").read_bytes())
    assert envelope.payload_type == dsse.INTOTO_PAYLOAD_TYPE
    assert [s.key_id for s in envelope.signatures] == [""]  # cosign leaves keyid empty
    statement = json.loads(envelope.payload)
    assert statement["predicateType"] == SLSA_V1
    assert statement["subject"][0]["digest"] == {"sha256": SUBJECT.hex}
    public = _cosign_public()
    assert envelope.verified_by([public]) == public
    assert envelope.verified_by([keys.SigningKey.generate().public]) is None


def test_our_layer_and_manifest_around_cosigns_envelope_are_cosigns_bytes() -> None:
    envelope = (DATA / "att-envelope.json").read_bytes()
    layer = attest.attestation_layer(envelope, SLSA_V1)
    manifest, config = cosign.signature_manifest([layer])
    assert manifest == (DATA / "att-manifest.json").read_bytes()
    assert config == (DATA / "att-config.json").read_bytes()
    assert attest.attestation_tag(SUBJECT) == f"sha256-{SUBJECT.hex}.att"


def test_our_envelope_has_cosigns_shape_and_is_deterministic() -> None:
    key = _cosign_key()
    payload = b'{"_type":"https://in-toto.io/Statement/v1"}'
    first = dsse.sign_envelope(key, payload)
    assert dsse.sign_envelope(key, payload) == first  # RFC 6979: same bytes every time
    document = json.loads(first)
    assert list(document) == ["payloadType", "payload", "signatures"]
    assert list(document["signatures"][0]) == ["keyid", "sig"]
    assert document["signatures"][0]["keyid"] == ""
    assert base64.b64decode(document["payload"]) == payload
    parsed = dsse.parse_envelope(first)
    assert parsed.payload == payload and parsed.verified_by([_cosign_public()]) is not None
    # The signature covers the PAE, so neither the payload nor its type can change.
    retyped = dict(document, payloadType="application/json")
    assert dsse.parse_envelope(json.dumps(retyped).encode()).verified_by([key.public]) is None
    altered = dict(document, payload=base64.b64encode(payload + b" ").decode())
    assert dsse.parse_envelope(json.dumps(altered).encode()).verified_by([key.public]) is None


def test_url_safe_base64_is_read_too() -> None:
    key = keys.SigningKey.generate()
    payload = b"\xfb\xff" * 20  # standard base64 of these bytes holds '+' and '/'
    document = json.loads(dsse.sign_envelope(key, payload))
    assert "+" in document["payload"] or "/" in document["payload"]
    document["payload"] = base64.urlsafe_b64encode(payload).decode()
    document["signatures"][0]["sig"] = base64.urlsafe_b64encode(
        base64.b64decode(document["signatures"][0]["sig"])
    ).decode()
    parsed = dsse.parse_envelope(json.dumps(document).encode())
    assert parsed.payload == payload and parsed.verified_by([key.public]) == key.public


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"payload":"e30=","signatures":[{"sig":"AA=="}]}', "no payloadType"),
        (b'{"payloadType":"t","signatures":[{"sig":"AA=="}]}', "no payload"),
        (b'{"payloadType":"t","payload":"%%%","signatures":[{"sig":"AA=="}]}', "not base64"),
        (b'{"payloadType":"t","payload":"e30=","signatures":[]}', "no signatures"),
        (b'{"payloadType":"t","payload":"e30=","signatures":["x"]}', "not an object"),
        (b'{"payloadType":"t","payload":"e30=","signatures":[{}]}', "no sig"),
        (b" " * (dsse.MAX_ENVELOPE_SIZE + 1), "limit"),
    ],
)
def test_malformed_envelopes_are_refused(data: bytes, problem: str) -> None:
    with pytest.raises(dsse.InvalidEnvelope, match=problem):
        dsse.parse_envelope(data)


def test_attestation_layer_annotations() -> None:
    layer = attest.attestation_layer(b"{}", SLSA_V1)
    assert layer == {
        "mediaType": "application/vnd.dsse.envelope.v1+json",
        "size": 2,
        "digest": str(Digest.of(b"{}")),
        "annotations": {"dev.cosignproject.cosign/signature": "", "predicateType": SLSA_V1},
    }
