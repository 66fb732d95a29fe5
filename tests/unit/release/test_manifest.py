"""Release manifest: build (pure, deterministic), carry-forward, bytes, validation, OCI manifest."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from steps.errors import BadInput
from steps.oci import mediatypes as mt
from steps.release import manifest as rm
from steps.release.profiles import HELM_RELEASE_CHARTS

ROOT = Path(__file__).resolve().parents[3]
MINIMAL = ROOT / "schemas" / "examples" / "valid" / "minimal.json"
FULL = ROOT / "schemas" / "examples" / "valid" / "full.json"

AGENT = "ghcr.io/nine-minds/alga-appliance-support-agent@sha256:" + "3" * 64
OTHER_AGENT = "ghcr.io/nine-minds/alga-appliance-support-agent@sha256:" + "4" * 64
KEYS = {"k1": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}
OTHER_KEYS = {"k2": "-----BEGIN PUBLIC KEY-----\nBBBB\n-----END PUBLIC KEY-----\n"}


def _example(path: Path) -> dict[str, Any]:
    return rm.parse_manifest(path.read_bytes())


def _inputs(**overrides: Any) -> dict[str, Any]:
    """build_manifest keyword arguments that reproduce valid/minimal.json."""
    m = _example(MINIMAL)
    charts_json = {
        "charts": {
            name: {
                "version": version,
                "reference": f"ghcr.io/nine-minds/charts/{name}:{version}",
                "status": "pushed",
            }
            for name, version in m["charts"].items()
        }
    }
    kwargs: dict[str, Any] = {
        "version": m["version"],
        "channel": m["channel"],
        "values_profile": m["valuesProfile"],
        "images": m["images"],
        "control_plane": m["controlPlane"],
        "config": {
            "repository": m["config"]["repository"],
            "tag": m["config"]["tag"],
            "digest": m["config"]["digest"],
        },
        "charts": charts_json,
        "profile_values": m["profileValues"],
        "provenance": {**m["provenance"], "run": None, "source": None},
    }
    kwargs.update(overrides)
    return kwargs


# -- build -------------------------------------------------------------------------


def test_build_reproduces_the_minimal_example_and_it_validates() -> None:
    built = rm.build_manifest(**_inputs())
    assert built == _example(MINIMAL)
    rm.validate_manifest(built, helm_releases=HELM_RELEASE_CHARTS)


def test_build_is_pure_and_deterministic() -> None:
    inputs = _inputs(current={"supportAgent": AGENT, "supportReceiptKeys": KEYS})
    snapshot = copy.deepcopy(inputs)
    first = rm.manifest_bytes(rm.build_manifest(**inputs))
    second = rm.manifest_bytes(rm.build_manifest(**inputs))
    assert first == second
    assert inputs == snapshot  # inputs untouched
    # Insertion order of the input mappings does not matter.
    reordered = dict(inputs)
    for key in ("images", "profile_values", "provenance"):
        reordered[key] = dict(reversed(list(inputs[key].items())))
    reordered["charts"] = {"charts": dict(reversed(list(inputs["charts"]["charts"].items())))}
    assert rm.manifest_bytes(rm.build_manifest(**reordered)) == first
    # The result shares no mutable object with the inputs.
    built = rm.build_manifest(**inputs)
    built["images"]["algaCore"] = "changed"
    built["supportReceiptKeys"]["k1"] = "changed"
    built["provenance"]["created"] = "changed"
    assert inputs == snapshot


def test_build_takes_versions_and_digests_from_charts_json() -> None:
    digests = {
        n: "sha256:" + hashlib.sha256(n.encode()).hexdigest() for n in HELM_RELEASE_CHARTS.values()
    }
    charts = {"charts": {n: {"version": "0.0.1-c3f2a1b09d", "digest": digests[n]} for n in digests}}
    whole = rm.build_manifest(**_inputs(charts=charts))
    inner = rm.build_manifest(**_inputs(charts=charts["charts"]))
    dry_run = rm.build_manifest(**_inputs(charts={**charts, "dryRun": True}))
    assert whole == inner == dry_run
    assert whole["charts"] == {n: "0.0.1-c3f2a1b09d" for n in digests}
    assert whole["chartDigests"] == digests
    rm.validate_manifest(whole, helm_releases=HELM_RELEASE_CHARTS)
    assert "chartDigests" not in rm.build_manifest(**_inputs())


def test_build_refuses_a_chart_without_version_and_a_bundle_without_digest() -> None:
    with pytest.raises(BadInput, match="chart temporal: no version"):
        rm.build_manifest(**_inputs(charts={"temporal": {"digest": "sha256:" + "a" * 64}}))
    with pytest.raises(BadInput, match="lacks digest"):
        rm.build_manifest(**_inputs(config={"repository": "ghcr.io/nine-minds/x"}))


def test_build_config_tag_and_version_default_to_the_release_version() -> None:
    config = {
        "repository": "ghcr.io/nine-minds/alga-appliance-config",
        "digest": "sha256:" + "2" * 64,
    }
    built = rm.build_manifest(**_inputs(version="1.4.1", config=config))
    assert built["config"] == {**config, "tag": "1.4.1", "version": "1.4.1"}


def test_build_drops_provenance_fields_given_as_none() -> None:
    built = rm.build_manifest(
        **_inputs(provenance={"created": "2026-11-20T10:00:00Z", "run": None, "source": None})
    )
    assert built["provenance"] == {"created": "2026-11-20T10:00:00Z"}


# -- carry forward -------------------------------------------------------------------


def test_support_fields_carried_forward_from_the_current_release() -> None:
    current = {"supportAgent": AGENT, "supportReceiptKeys": KEYS, "version": "1.3.0"}
    built = rm.build_manifest(**_inputs(current=current))
    assert built["supportAgent"] == AGENT
    assert built["supportReceiptKeys"] == KEYS
    rm.validate_manifest(built)


def test_explicit_support_fields_win_over_the_current_release() -> None:
    current = {"supportAgent": AGENT, "supportReceiptKeys": KEYS}
    built = rm.build_manifest(
        **_inputs(current=current, support_agent=OTHER_AGENT, support_receipt_keys=OTHER_KEYS)
    )
    assert built["supportAgent"] == OTHER_AGENT
    assert built["supportReceiptKeys"] == OTHER_KEYS


def test_support_fields_absent_in_both_stay_absent() -> None:
    for current in (None, {}, {"version": "1.3.0"}):
        built = rm.build_manifest(**_inputs(current=current))
        assert "supportAgent" not in built
        assert "supportReceiptKeys" not in built


def test_empty_explicit_values_remove_carried_support_fields() -> None:
    current = {"supportAgent": AGENT, "supportReceiptKeys": KEYS}
    built = rm.build_manifest(**_inputs(current=current, support_agent="", support_receipt_keys={}))
    assert "supportAgent" not in built
    assert "supportReceiptKeys" not in built


def test_one_field_explicit_the_other_carried() -> None:
    current = {"supportAgent": AGENT, "supportReceiptKeys": KEYS}
    built = rm.build_manifest(**_inputs(current=current, support_receipt_keys=OTHER_KEYS))
    assert built["supportAgent"] == AGENT
    assert built["supportReceiptKeys"] == OTHER_KEYS


# -- bytes and parsing ------------------------------------------------------------------


def test_manifest_bytes_are_canonical_json() -> None:
    manifest = {"b": 1, "a": {"d": "é", "c": [1, 2]}}
    data = rm.manifest_bytes(manifest)
    assert data == '{"a":{"c":[1,2],"d":"é"},"b":1}'.encode()
    assert json.loads(data) == manifest
    with pytest.raises(BadInput, match="cannot be written as JSON"):
        rm.manifest_bytes({"x": float("nan")})


def test_parse_manifest_round_trips_and_refuses_what_is_not_an_object() -> None:
    full = _example(FULL)
    assert rm.parse_manifest(rm.manifest_bytes(full)) == full
    for data, message in [
        (b"[1, 2]", "must be a JSON object, found an array"),
        (b'{"version": "1", "version": "2"}', "duplicate key 'version'"),
        (b'{"a": NaN}', "NaN is not allowed"),
        (b'{"a": ', "not valid JSON"),
        (b'{"a": "\xff"}', "not UTF-8"),
        ('\ufeff{"a": 1}'.encode(), "not valid JSON"),
    ]:
        with pytest.raises(BadInput, match=message):
            rm.parse_manifest(data)


# -- validation -------------------------------------------------------------------------


def test_validation_lists_every_problem_each_naming_its_field() -> None:
    manifest = _example(MINIMAL)
    manifest["images"].pop("emailService")
    manifest["controlPlane"] = "62cdce38"
    manifest["channel"] = "beta"
    manifest["config"]["tag"] = "9.9.9"
    manifest["profileValues"]["alga-core.single-node.yaml"] = "bootstrap:\n  mode: fresh\n"
    with pytest.raises(rm.ManifestInvalid) as err:
        rm.validate_manifest(manifest)
    problems = err.value.problems
    fields = [p.split(":", 1)[0].split(" (", 1)[0] for p in problems]
    assert "channel" in fields
    assert "config.tag" in fields
    assert "controlPlane" in fields
    assert "images.emailService" in fields
    # alga-core lacks five of its six paths: each is reported.
    missing = [p for p in problems if p.startswith('profileValues["alga-core.single-node.yaml"]')]
    assert len(missing) == 5
    for path in ("appUrl", "host", "domainSuffix", "setup.image.tag", "server.image.tag"):
        assert any(f"key path {path} is missing" in p for p in missing)
    assert list(problems) == sorted(problems, key=lambda p: (p.split(": ", 1)[0], p))
    assert f"({len(problems)} problems)" in err.value.message
    assert err.value.exit_code == 2


def test_validation_of_something_that_is_not_an_object() -> None:
    assert rm.manifest_problems([]) == ["(manifest): must be an object, found an array"]  # type: ignore[arg-type]


def test_trailing_newline_is_refused_in_every_pattern() -> None:
    manifest = _example(MINIMAL)
    manifest["images"]["algaCore"] = "62cdce38\n"
    manifest["controlPlane"] += "\n"
    problems = rm.manifest_problems(manifest)
    assert [p.split(":", 1)[0] for p in problems] == ["controlPlane", "images.algaCore"]


def test_helm_releases_must_install_exactly_the_manifest_charts() -> None:
    manifest = _example(MINIMAL)
    rm.validate_manifest(manifest, helm_releases=HELM_RELEASE_CHARTS)
    fewer = {k: v for k, v in HELM_RELEASE_CHARTS.items() if k != "email-service"}
    assert rm.manifest_problems(manifest, helm_releases=fewer) == [
        "charts.email-service: no HelmRelease in the overlay installs this chart"
    ]
    more = {**HELM_RELEASE_CHARTS, "redis": "redis"}
    assert rm.manifest_problems(manifest, helm_releases=more) == [
        "charts.redis: missing; the overlay's HelmRelease redis installs it"
    ]


def test_duplicated_key_in_values_is_caught_by_the_parse_back() -> None:
    # YAML keeps the last 'image'; the appliance's setter edits the first one.
    manifest = _example(MINIMAL)
    manifest["profileValues"]["email-service.single-node.yaml"] = (
        "image:\n  tag: latest\nimage:\n  repository: ghcr.io/nine-minds/email-service\n"
        "  tag: latest\n"
    )
    (problem,) = rm.manifest_problems(manifest)
    assert problem.startswith('profileValues["email-service.single-node.yaml"]')
    assert "changes another line" in problem


def test_comment_at_column_zero_inside_a_block_is_reported() -> None:
    manifest = _example(MINIMAL)
    manifest["profileValues"]["temporal-worker.single-node.yaml"] = (
        "image:\n  repository: ghcr.io/nine-minds/temporal-worker\n# pinned by the appliance\n"
        "  tag: latest\npublicBaseUrl: https://alga.appliance.local\n"
    )
    (problem,) = rm.manifest_problems(manifest)
    assert "key path image.tag exists but the appliance's line-based setter cannot find it" in (
        problem
    )


# -- OCI manifest ---------------------------------------------------------------------------


def test_release_oci_manifest_has_the_json_as_config_and_as_its_one_layer() -> None:
    config = rm.manifest_bytes(_example(FULL))
    data = rm.release_oci_manifest(config)
    oci = json.loads(data)
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    assert oci["schemaVersion"] == 2
    assert oci["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert oci["artifactType"] == mt.RELEASE_ARTIFACT == "application/vnd.alga.appliance.release.v1"
    assert oci["config"] == {
        "mediaType": "application/vnd.alga.appliance.release.config.v1+json",
        "digest": digest,
        "size": len(config),
    }
    assert oci["layers"] == [
        {
            "mediaType": "application/json",
            "digest": digest,
            "size": len(config),
            "annotations": {"org.opencontainers.image.title": "release.json"},
        }
    ]
    assert "annotations" not in oci
    assert data == rm.manifest_bytes(oci)  # canonical bytes
    assert rm.release_oci_manifest(config) == data  # deterministic


def test_release_oci_manifest_annotations_come_from_the_manifest() -> None:
    full = _example(FULL)
    annotations = rm.release_annotations(full)
    assert annotations == {
        "org.opencontainers.image.created": "2026-11-20T10:00:00Z",
        "org.opencontainers.image.version": "1.4.0",
        "org.opencontainers.image.source": "https://github.com/Nine-Minds/alga-psa",
        "org.opencontainers.image.revision": full["provenance"]["revision"],
    }
    assert rm.release_annotations(_example(MINIMAL)) == {
        "org.opencontainers.image.created": "2026-11-20T10:00:00Z",
        "org.opencontainers.image.version": "1.4.0",
    }
    oci = json.loads(rm.release_oci_manifest(rm.manifest_bytes(full), annotations=annotations))
    assert oci["annotations"] == annotations


def test_schema_patterns_use_javascripts_whitespace() -> None:
    """The appliance validates with ECMA-262 regexes: \\s takes U+FEFF but not U+001C. The
    publisher must agree, or it could publish what appliances refuse."""
    from steps.release.manifest import _compiled

    pattern = _compiled("^https://[^\\s]+$")
    assert pattern.search("https://github.com/a\x1cb")  # not whitespace in JS
    assert not pattern.search("https://github.com/a\ufeffb")  # whitespace in JS
    assert not pattern.search("https://github.com/a b")
