"""Profile values from the overlay: loading, and the consumer contract on the reference overlay."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from steps.config import KNOWN_CHARTS
from steps.errors import BadInput
from steps.release import manifest as rm
from steps.release import profiles

ROOT = Path(__file__).resolve().parents[3]
FLUX = ROOT / "flux"
MINIMAL = ROOT / "schemas" / "examples" / "valid" / "minimal.json"


def _manifest_with(values: dict[str, str], profile: str) -> dict[str, object]:
    base = json.loads(MINIMAL.read_text(encoding="utf-8"))
    base["valuesProfile"] = profile
    base["profileValues"] = values
    return base


def test_constants_describe_the_six_releases() -> None:
    assert set(profiles.REQUIRED_PATHS) == set(profiles.VALUES_NAMES)
    assert list(profiles.HELM_RELEASE_CHARTS) == list(profiles.VALUES_NAMES)
    assert sorted(profiles.HELM_RELEASE_CHARTS.values()) == sorted(KNOWN_CHARTS)
    assert profiles.HELM_RELEASE_CHARTS["alga-core"] == "sebastian"
    assert profiles.REQUIRED_PATHS["alga-core"] == (
        "bootstrap.mode",
        "appUrl",
        "host",
        "domainSuffix",
        "setup.image.tag",
        "server.image.tag",
    )
    assert profiles.REQUIRED_PATHS["temporal-worker"] == ("image.tag", "publicBaseUrl")


@pytest.mark.parametrize("profile", ["single-node", "talos-single-node"])
def test_reference_overlay_profiles_load_and_validate(profile: str) -> None:
    values = profiles.load_profile_values(FLUX, profile)
    assert list(values) == [f"{name}.{profile}.yaml" for name in profiles.VALUES_NAMES]
    for name in profiles.VALUES_NAMES:
        path = FLUX / "profiles" / profile / "values" / f"{name}.{profile}.yaml"
        assert values[f"{name}.{profile}.yaml"] == path.read_text(encoding="utf-8")
    manifest = _manifest_with(values, profile)
    rm.validate_manifest(manifest, helm_releases=profiles.HELM_RELEASE_CHARTS)


def test_each_values_text_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A publish checks the same values in its preflight and in two manifests: each text
    is parsed (and every edit of it tried) once; a changed text is checked afresh."""
    from steps import yamlload

    rm._checked_values_text.cache_clear()
    values = profiles.load_profile_values(FLUX, "single-node")
    parsed: list[str] = []
    real = yamlload.load

    def counting(text: str, name: str = "", **kwargs: object) -> object:
        parsed.append(name)
        return real(text, name, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(yamlload, "load", counting)
    assert rm.profile_values_problems(values, "single-node") == []
    first = len(parsed)
    assert first >= 6  # each of the six texts, and its edits
    rm.validate_manifest(_manifest_with(values, "single-node"))
    assert rm.profile_values_problems(values, "single-node") == []
    assert len(parsed) == first
    key = "alga-core.single-node.yaml"
    broken = {**values, key: values[key].replace("appUrl:", "appURL:")}
    problems = rm.profile_values_problems(broken, "single-node")
    assert any("appUrl" in p for p in problems), problems
    assert len(parsed) > first


def _copy_overlay(tmp_path: Path) -> Path:
    overlay = tmp_path / "flux"
    shutil.copytree(FLUX / "profiles", overlay / "profiles")
    return overlay


def test_profile_file_lacking_setup_image_tag_fails_naming_file_and_path(tmp_path: Path) -> None:
    overlay = _copy_overlay(tmp_path)
    target = overlay / "profiles" / "single-node" / "values" / "alga-core.single-node.yaml"
    text = target.read_text(encoding="utf-8")
    setup_block = (
        "setup:\n  image:\n    repository: ghcr.io/nine-minds/alga-psa-ee\n    tag: latest\n"
    )
    assert setup_block in text
    target.write_text(text.replace(setup_block, setup_block.replace("    tag: latest\n", "")))
    manifest = _manifest_with(profiles.load_profile_values(overlay, "single-node"), "single-node")
    with pytest.raises(rm.ManifestInvalid) as err:
        rm.validate_manifest(manifest)
    (problem,) = err.value.problems
    assert "profiles/single-node/values/alga-core.single-node.yaml" in problem
    assert "setup.image.tag" in problem
    assert "server.image.tag" not in problem


def test_missing_profile_lists_the_existing_ones() -> None:
    with pytest.raises(BadInput) as err:
        profiles.load_profile_values(FLUX, "three-node")
    assert str(FLUX / "profiles" / "three-node") in err.value.message
    assert err.value.hint is not None
    assert "single-node, talos-single-node" in err.value.hint
    assert err.value.exit_code == 2


def test_missing_values_files_are_all_named(tmp_path: Path) -> None:
    overlay = _copy_overlay(tmp_path)
    values = overlay / "profiles" / "talos-single-node" / "values"
    (values / "temporal.talos-single-node.yaml").unlink()
    (values / "email-service.talos-single-node.yaml").unlink()
    with pytest.raises(BadInput) as err:
        profiles.load_profile_values(overlay, "talos-single-node")
    assert f"{values / 'temporal.talos-single-node.yaml'} is missing" in err.value.message
    assert f"{values / 'email-service.talos-single-node.yaml'} is missing" in err.value.message
    assert "alga-core" not in err.value.message.split("\n", 1)[1]
    assert err.value.hint is not None and "single-node, talos-single-node" in err.value.hint


def test_overlay_without_profiles(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as err:
        profiles.load_profile_values(tmp_path, "single-node")
    assert err.value.hint is not None and "holds no profiles" in err.value.hint
    assert profiles.available_profiles(tmp_path) == []


@pytest.mark.parametrize("profile", ["../single-node", "Single-Node", "", "-x", "a/b"])
def test_invalid_profile_names_are_refused_before_any_read(profile: str) -> None:
    with pytest.raises(BadInput, match="not a valid profile name"):
        profiles.load_profile_values(FLUX, profile)


def test_non_utf8_values_file(tmp_path: Path) -> None:
    overlay = _copy_overlay(tmp_path)
    bad = overlay / "profiles" / "single-node" / "values" / "pgbouncer.single-node.yaml"
    bad.write_bytes(b"replicaCount: \xff\n")
    with pytest.raises(BadInput, match="is not UTF-8 text"):
        profiles.load_profile_values(overlay, "single-node")
