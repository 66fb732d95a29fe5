"""Our cosign-format signatures against the real cosign CLI (v2.6.5) on the real registry.

The oracle is ``cosign verify --key PUB --insecure-ignore-tlog=true
--allow-insecure-registry`` (Flux verifies with cosign's own library, static key, no
transparency log). Every signature we make must be accepted under our key and rejected
under another; keys must cross both ways (ours used by ``cosign sign``, cosign's loaded
by us); a re-sign must change nothing.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from steps.errors import UnsignedRelease
from steps.oci.client import RegistryClient
from steps.oci.reference import Digest
from steps.signing import cosign, gates, keys
from tests.harness.cosign import Cosign, find_cosign
from tests.harness.images import push_tiny_image
from tests.harness.registry import Registry
from tests.helpers import client_for

pytestmark = pytest.mark.integration

PASSWORD = "integration-pass-1"
REPO = "nine-minds/alga-appliance-release"


@pytest.fixture
def real_cosign(tmp_path: Path) -> Cosign:
    return Cosign(find_cosign(), tmp_path / "home", PASSWORD)


@pytest.fixture
def pair(tmp_path: Path) -> keys.WrittenKeyPair:
    return keys.write_key_pair(tmp_path / "release", PASSWORD.encode())


@pytest.fixture
def other_pair(tmp_path: Path) -> keys.WrittenKeyPair:
    return keys.write_key_pair(tmp_path / "other", PASSWORD.encode())


def _signer(pair: keys.WrittenKeyPair) -> cosign.Signer:
    return cosign.Signer(keys.read_signing_key(pair.private_path, PASSWORD.encode()))


def _sig_manifest(client: RegistryClient, repository: str, digest: Digest) -> bytes:
    return client.get_manifest(repository, cosign.signature_tag(digest)).data


def test_our_signature_is_accepted_by_cosign_and_rejected_under_another_key(
    registry: Registry,
    real_cosign: Cosign,
    pair: keys.WrittenKeyPair,
    other_pair: keys.WrittenKeyPair,
) -> None:
    with client_for(registry) as client:
        digest = push_tiny_image(client, REPO, "1.0.0")
        result = _signer(pair).sign(client, REPO, digest)
    reference = f"{registry.host}/{REPO}@{digest}"
    assert result.status == "signed" and result.reference == reference
    accepted = real_cosign.verify(reference, pair.public_path)
    assert accepted.returncode == 0, accepted.stderr
    (claims,) = json.loads(accepted.stdout)
    assert claims["critical"]["image"]["docker-manifest-digest"] == str(digest)
    assert claims["critical"]["identity"]["docker-reference"] == f"{registry.host}/{REPO}"
    rejected = real_cosign.verify(reference, other_pair.public_path)
    assert rejected.returncode != 0
    assert "no matching signatures" in rejected.stderr


def test_a_key_we_generate_signs_with_cosign_and_we_verify_it(
    registry: Registry, real_cosign: Cosign, pair: keys.WrittenKeyPair
) -> None:
    with client_for(registry) as client:
        digest = push_tiny_image(client, REPO, "1.0.0")
    reference = f"{registry.host}/{REPO}@{digest}"
    signed = real_cosign.sign(reference, pair.private_path)
    assert signed.returncode == 0, signed.stderr
    public = keys.read_public_keys([pair.public_path])
    with client_for(registry) as client:
        status = cosign.verify_signatures(client, REPO, digest, public)
        before = _sig_manifest(client, REPO, digest)
        # cosign's signature with our key counts as ours: a re-sign by us is a no-op
        # only if the payload is the same bytes, which it is (same docker-reference).
        again = _signer(pair).sign(client, REPO, digest)
        assert _sig_manifest(client, REPO, digest) == before
    assert status.signed_by == (pair.key_id,)
    assert again.status == "unchanged"


def test_a_key_cosign_generates_loads_in_ours(
    registry: Registry, real_cosign: Cosign, tmp_path: Path
) -> None:
    made = real_cosign.run("generate-key-pair", "--output-key-prefix", "cosign", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    key = keys.read_signing_key(tmp_path / "cosign.key", PASSWORD.encode())
    (public,) = keys.read_public_keys([tmp_path / "cosign.pub"])
    assert key.key_id == public.key_id
    with client_for(registry) as client:
        digest = push_tiny_image(client, REPO, "1.0.0")
        cosign.Signer(key).sign(client, REPO, digest)
    verified = real_cosign.verify(f"{registry.host}/{REPO}@{digest}", tmp_path / "cosign.pub")
    assert verified.returncode == 0, verified.stderr


def test_our_manifest_is_what_cosign_would_push_but_for_the_signature_value(
    registry: Registry, real_cosign: Cosign, pair: keys.WrittenKeyPair
) -> None:
    with client_for(registry) as client:
        ours = push_tiny_image(client, REPO, "ours")
        theirs = push_tiny_image(client, REPO, "theirs")
        _signer(pair).sign(client, REPO, ours)
    assert real_cosign.sign(f"{registry.host}/{REPO}@{theirs}", pair.private_path).returncode == 0
    with client_for(registry) as client:
        cosigns = json.loads(_sig_manifest(client, REPO, theirs))
        ours_body = json.loads(_sig_manifest(client, REPO, ours))
        # Rebuild cosign's manifest with our functions, from its payload and signature:
        payload = cosign.simple_signing_payload(f"{registry.host}/{REPO}", theirs)
        value = cosigns["layers"][0]["annotations"][cosign.SIGNATURE_ANNOTATION]
        rebuilt, _ = cosign.signature_manifest(
            [cosign.signature_layer(payload, base64.b64decode(value))]
        )
        assert rebuilt == _sig_manifest(client, REPO, theirs)
    assert ours_body["config"]["mediaType"] == cosigns["config"]["mediaType"]
    assert [layer["mediaType"] for layer in ours_body["layers"]] == [
        layer["mediaType"] for layer in cosigns["layers"]
    ]


def test_signatures_append_and_resigning_adds_nothing(
    registry: Registry,
    real_cosign: Cosign,
    pair: keys.WrittenKeyPair,
    other_pair: keys.WrittenKeyPair,
) -> None:
    reference_of = f"{registry.host}/{REPO}@{{}}"
    with client_for(registry) as client:
        digest = push_tiny_image(client, REPO, "1.0.0")
        first = _signer(pair).sign(client, REPO, digest)
        puts, uploaded = client.stats.manifests_put, client.stats.bytes_uploaded
        again = _signer(pair).sign(client, REPO, digest)
        assert (client.stats.manifests_put, client.stats.bytes_uploaded) == (puts, uploaded)
    assert again.status == "unchanged" and again.signature_digest == first.signature_digest
    reference = reference_of.format(digest)
    # cosign appends its signature by another key to our manifest ...
    assert real_cosign.sign(reference, other_pair.private_path).returncode == 0
    # ... and recognises ours as already there: signing with our key adds no layer.
    with client_for(registry) as client:
        two = json.loads(_sig_manifest(client, REPO, digest))
    assert real_cosign.sign(reference, pair.private_path).returncode == 0
    with client_for(registry) as client:
        assert json.loads(_sig_manifest(client, REPO, digest)) == two
        assert len(two["layers"]) == 2
        trusted = keys.read_public_keys([pair.public_path, other_pair.public_path])
        status = cosign.verify_signatures(client, REPO, digest, trusted)
        assert set(status.signed_by) == {pair.key_id, other_pair.key_id}
        assert _signer(pair).sign(client, REPO, digest).status == "unchanged"
        assert _signer(other_pair).sign(client, REPO, digest).status == "unchanged"
    for public in (pair.public_path, other_pair.public_path):
        assert real_cosign.verify(reference, public).returncode == 0


def test_a_signature_copied_onto_another_digest_counts_for_nothing(
    registry: Registry, real_cosign: Cosign, pair: keys.WrittenKeyPair
) -> None:
    """Someone with push rights re-tags a signature: the payload names the old digest."""
    with client_for(registry) as client:
        signed = push_tiny_image(client, REPO, "1.0.0")
        forged = push_tiny_image(client, REPO, "1.0.1")
        _signer(pair).sign(client, REPO, signed)
        client.tag(REPO, cosign.signature_tag(signed), cosign.signature_tag(forged))
        public = keys.read_public_keys([pair.public_path])
        status = cosign.verify_signatures(client, REPO, forged, public)
    assert status.found == 1 and not status.signed
    assert status.describe().startswith("UNSIGNED")
    rejected = real_cosign.verify(f"{registry.host}/{REPO}@{forged}", pair.public_path)
    assert rejected.returncode != 0


def test_the_channel_gate_wants_the_manifest_and_the_bundle_signed_by_a_trusted_key(
    registry: Registry, pair: keys.WrittenKeyPair, other_pair: keys.WrittenKeyPair
) -> None:
    signer, other = _signer(pair), _signer(other_pair)
    with client_for(registry) as client:
        release_digest = push_tiny_image(client, REPO, "1.0.0")
        bundle_digest = push_tiny_image(client, "nine-minds/alga-appliance-config", "1.0.0")
        release = {
            "version": "1.0.0",
            "config": {
                "repository": f"{registry.host}/nine-minds/alga-appliance-config",
                "digest": str(bundle_digest),
            },
        }
        trusted = gates.trusted_keys(signer)
        with pytest.raises(UnsignedRelease) as unsigned:
            gates.require_signed(client, "nine-minds", release_digest, release, trusted)
        assert unsigned.value.exit_code == 3
        assert len(unsigned.value.pieces) == 2
        signer.sign(client, REPO, release_digest)
        with pytest.raises(UnsignedRelease) as bundle_only:
            gates.require_signed(client, "nine-minds", release_digest, release, trusted)
        assert "alga-appliance-config" in bundle_only.value.message
        assert "alga-appliance-release" not in "".join(bundle_only.value.pieces)
        other.sign(client, "nine-minds/alga-appliance-config", bundle_digest)
        with pytest.raises(UnsignedRelease, match="UNSIGNED"):  # signed, by an unknown key
            gates.require_signed(client, "nine-minds", release_digest, release, trusted)
        # Rotation: the other key is trusted too.
        report = gates.require_signed(
            client,
            "nine-minds",
            release_digest,
            release,
            gates.trusted_keys(signer, [other.public]),
        )
    by_kind = {p.kind: p for p in report}
    assert by_kind["release"].status is not None
    assert by_kind["release"].status.signed_by == (signer.key_id,)
    assert by_kind["bundle"].describe() == f"signed by {other.key_id}"
    assert by_kind["control-plane"].describe() == "not checked (no digest reference)"
