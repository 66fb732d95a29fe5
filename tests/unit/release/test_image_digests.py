"""imageDigests (issue 17, part 1): recorded from the images check, beside the bare tags."""

from __future__ import annotations

from typing import Any

from steps.oci.reference import Digest
from steps.release import images
from steps.release import manifest as rm
from tests.unit.release.test_manifest import _inputs

D = {key: f"sha256:{n * 64}" for key, n in zip(images.IMAGE_REPOSITORIES, "5678", strict=True)}


def _checks() -> list[images.ImageCheck]:
    return [
        images.ImageCheck(key, f"ghcr.io/nine-minds/{repo}", "62cdce38", Digest.parse(D[key]))
        for key, repo in reversed(images.IMAGE_REPOSITORIES.items())
    ]


def test_image_digests_from_the_checks_are_sorted_full_digests() -> None:
    recorded = images.image_digests(_checks())
    assert recorded == dict(sorted(D.items()))
    assert list(recorded) == sorted(recorded)


def test_build_manifest_records_image_digests_and_keeps_bare_tags() -> None:
    inputs: dict[str, Any] = _inputs()
    without = rm.build_manifest(**inputs)
    assert "imageDigests" not in without
    built = rm.build_manifest(**inputs, image_digests=images.image_digests(_checks()))
    assert built["imageDigests"] == dict(sorted(D.items()))
    assert built["images"] == without["images"]
    assert all(":" not in tag for tag in built["images"].values())
    # canonical bytes: the same inputs, the same bytes, whatever the input order
    again = rm.build_manifest(**inputs, image_digests=dict(reversed(D.items())))
    assert rm.manifest_bytes(again) == rm.manifest_bytes(built)
    assert rm.build_manifest(**inputs, image_digests={}) == without


def test_drift_wording() -> None:
    drift = images.ImageDrift(
        "algaCore",
        "ghcr.io/nine-minds/alga-psa-ee",
        "62cdce38",
        Digest.parse(D["algaCore"]),
        None,
        False,
    )
    assert "the tag is gone" in drift.describe() and "MISSING by digest" in drift.describe()
    assert drift.to_json()["current"] is None
