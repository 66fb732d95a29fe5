"""A whole release published with a signing key, at the domain level, checked by cosign.

The steps are the publish functions the CLI steps call (charts, bundle, images, release
manifest) with a :class:`~steps.signing.cosign.Signer`; the control plane is signed by
reference, as ``control-plane copy|build`` will. Every signature must be accepted by the
real ``cosign verify --key`` and rejected under another key; a re-run signs nothing new
and uploads nothing; the channel gate accepts the release under our key only; the
release records all four image digests, and a re-pushed tag is reported as drift.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from steps.bundle import publish as bundle
from steps.charts import publish as charts
from steps.config import load_config
from steps.errors import UnsignedRelease
from steps.oci.client import RegistryClient
from steps.oci.reference import Digest
from steps.release import images, profiles
from steps.release import manifest as rm
from steps.release import plan as release_plan
from steps.signing import cosign, gates, keys
from tests.harness.cosign import Cosign, find_cosign
from tests.harness.images import push_tiny_image
from tests.harness.registry import Registry
from tests.harness.tools import Tools
from tests.helpers import client_for

pytestmark = pytest.mark.integration

NS = "nine-minds"
TAG = "62cdce38"
VERSION = "1.0.0"
REVISION = "main@sha1:" + "5" * 40
PASSWORD = "integration-pass-2"


def _publish(
    client: RegistryClient,
    source: Path,
    work: Path,
    kubectl: str,
    signer: cosign.Signer,
) -> dict[str, Any]:
    """charts -> bundle -> images -> manifest, each step signing what it publishes."""
    config = load_config(source / "release.yaml")
    artifacts = charts.build_artifacts(source, config, "content")
    chart_results = charts.push_plan(
        client, NS, charts.plan_charts(client, NS, artifacts), signer=signer
    )
    charts_json = charts.results_json(chart_results)
    (work / "charts.json").write_text(json.dumps(charts_json))
    prepared = bundle.prepare_bundle(
        source=source,
        config=config,
        charts_file=work / "charts.json",
        registry=client.registry,
        namespace=NS,
        version=VERSION,
        source_url="https://github.com/Nine-Minds/alga-psa",
        revision=REVISION,
        kubectl=kubectl,
    )
    bundle_result = bundle.publish_prepared(client, prepared, signer=signer)
    checks = images.require_images(client, NS, dict.fromkeys(images.IMAGE_REPOSITORIES, TAG))
    control_plane = images.resolve_control_plane(client, NS, TAG)
    control_plane_signed = signer.sign_reference(client, control_plane)
    manifest = rm.build_manifest(
        version=VERSION,
        channel="nightly",
        values_profile=config.values_profile,
        images={c.key: c.tag for c in checks},
        image_digests=images.image_digests(checks),
        control_plane=control_plane,
        config=bundle_result,
        charts=charts_json,
        profile_values=profiles.load_profile_values(
            config.overlay_dir(source), config.values_profile
        ),
        provenance={"created": "2024-05-01T12:00:00Z", "revision": "5" * 40},
    )
    pushed = release_plan.push_release_manifest(client, NS, manifest, signer=signer)
    return {
        "charts": chart_results,
        "bundle": bundle_result,
        "controlPlane": control_plane_signed,
        "manifest": manifest,
        "release": pushed,
    }


def _references(out: dict[str, Any]) -> list[str]:
    refs = [f"{c.repository}@{c.digest}" for c in out["charts"]]
    refs.append(f"{out['bundle']['repository']}@{out['bundle']['digest']}")
    refs.append(out["controlPlane"].reference)
    refs.append(f"{out['release'].repository}@{out['release'].digest}")
    return refs


def test_a_signed_publish_is_verified_by_cosign_and_a_rerun_signs_nothing_new(
    registry: Registry,
    release_source: Path,
    tools: Tools,
    tmp_path: Path,
) -> None:
    real = Cosign(find_cosign(), tmp_path / "home", PASSWORD)
    pair = keys.write_key_pair(tmp_path / "release", PASSWORD.encode())
    other = keys.write_key_pair(tmp_path / "other", PASSWORD.encode())
    signer = cosign.Signer(keys.read_signing_key(pair.private_path, PASSWORD.encode()))
    with client_for(registry) as client:
        for key in images.IMAGE_REPOSITORIES:
            push_tiny_image(client, images.image_repository(NS, key), TAG)
        push_tiny_image(client, f"{NS}/{images.CONTROL_PLANE_REPOSITORY}", TAG)
        first = _publish(client, release_source, tmp_path, str(tools.kubectl), signer)

    assert {c.signed_by for c in first["charts"]} == {pair.key_id}
    assert first["bundle"]["signedBy"] == pair.key_id
    assert first["release"].signed_by == pair.key_id
    assert first["release"].to_json()["signedBy"] == pair.key_id
    assert first["controlPlane"].status == "signed"
    references = _references(first)
    assert len(references) == 6 + 3
    for reference in references:
        accepted = real.verify(reference, pair.public_path)
        assert accepted.returncode == 0, (reference, accepted.stderr)
        rejected = real.verify(reference, other.public_path)
        assert rejected.returncode != 0, reference

    # All four image digests are recorded, next to the bare tags.
    manifest = first["manifest"]
    assert manifest["images"] == dict.fromkeys(images.IMAGE_REPOSITORIES, TAG)
    assert set(manifest["imageDigests"]) == set(images.IMAGE_REPOSITORIES)
    assert all(Digest.parse(d) for d in manifest["imageDigests"].values())

    # A re-run with the same inputs: every artifact unchanged, nothing signed or uploaded.
    with client_for(registry) as client:
        again = _publish(client, release_source, tmp_path, str(tools.kubectl), signer)
        assert client.stats.manifests_put == 0
        assert client.stats.bytes_uploaded == 0
    assert {c.status for c in again["charts"]} == {"unchanged"}
    assert again["bundle"]["status"] == "unchanged"
    assert again["release"].status == "unchanged"
    assert again["controlPlane"].status == "unchanged"
    assert _references(again) == references

    # The channel gate: our key passes, another key alone refuses.
    with client_for(registry) as client:
        digest = first["release"].digest
        report = gates.require_signed(client, NS, digest, manifest, gates.trusted_keys(signer))
        assert {p.kind for p in report if p.signed} == {
            "release",
            "bundle",
            "chart",
            "control-plane",
        }
        (stranger,) = keys.read_public_keys([other.public_path])
        with pytest.raises(UnsignedRelease) as refused:
            gates.require_signed(client, NS, digest, manifest, [stranger])
        assert refused.value.exit_code == 3
        assert stranger.key_id in refused.value.message

        # Someone re-pushes an image tag: reported as drift, the pinned digest resolves.
        assert images.image_drift(client, NS, manifest) == []
        moved = push_tiny_image(
            client, images.image_repository(NS, "emailService"), TAG, b"other bytes\n"
        )
        (drift,) = images.image_drift(client, NS, manifest)
    assert drift.key == "emailService" and drift.current == moved
    assert str(drift.recorded) == manifest["imageDigests"]["emailService"]
    assert drift.pinned_present
    assert "moved away" in drift.describe()
