"""`publish` checks everything pushable before the first push: a refused publish leaves every
repository's tag list as it was (issue 12, item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.registry import Registry
from tests.helpers import cli, registry_env, repositories_on_disk, tags
from tests.integration.test_publish import publish_args, push_images

pytestmark = pytest.mark.integration


def snapshot(reg: Registry) -> dict[str, list[str]]:
    """Every repository's tags."""
    return {repo: tags(reg, repo) for repo in repositories_on_disk(reg)}


@pytest.fixture
def published(
    registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, list[str]]:
    """Release 1.1.0 on nightly; returns the registry's tags."""
    push_images(registry)
    registry_env(monkeypatch, registry).__enter__()
    first = cli(publish_args(registry, release_source, version="1.1.0"))
    assert first.code == 0, first.stderr
    return snapshot(registry)


def test_a_mistyped_image_tag_pushes_nothing(
    registry: Registry, release_source: Path, published: dict[str, list[str]]
) -> None:
    args = publish_args(registry, release_source, version="2.0.0")
    args[args.index("algaCore=62cdce38")] = "algaCore=62cdce83"
    result = cli(args)
    assert result.code == 3, result.stderr
    assert "62cdce83" in result.stderr and "precheck" in result.stderr
    assert snapshot(registry) == published
    # the corrected run, from another commit (the overlay changed), is not refused
    values = release_source / "examples" / "charts" / "pgbouncer" / "values.yaml"
    values.write_text(values.read_text() + "\n# fixed\n")
    again = cli(publish_args(registry, release_source, version="2.0.0"))
    assert again.code == 0, again.stderr


def test_a_version_taken_by_other_bytes_pushes_no_chart(
    registry: Registry, release_source: Path, published: dict[str, list[str]]
) -> None:
    """:1.1.0 exists; a publish of 1.1.0 from changed charts with exact versions would
    have pushed the new chart versions before the manifest step refused."""
    chart = release_source / "examples" / "charts" / "pgbouncer" / "Chart.yaml"
    text = chart.read_text()
    chart.write_text(text.replace("version: 0.1.0", "version: 0.1.7", 1))
    assert "0.1.7" in chart.read_text()
    result = cli(
        publish_args(registry, release_source, version="1.1.0", extra=("--version-policy", "exact"))
    )
    assert result.code == 3, result.stderr
    assert "already exists" in result.stderr
    assert snapshot(registry) == published


def test_a_downgrade_is_refused_before_anything_is_pushed(
    registry: Registry, release_source: Path, published: dict[str, list[str]]
) -> None:
    values = release_source / "examples" / "charts" / "temporal" / "values.yaml"
    values.write_text(values.read_text() + "\n# 1.0.5\n")
    result = cli(publish_args(registry, release_source, version="1.0.5"))
    assert result.code == 3, result.stderr
    assert "older" in result.stderr
    assert snapshot(registry) == published


def test_a_bundle_version_holding_another_bundle_is_refused_first(
    registry: Registry, release_source: Path, published: dict[str, list[str]]
) -> None:
    """The bundle's :1.2.0 was pushed by something else (other files): refused before the
    charts of this publish are pushed."""
    from steps.oci import mediatypes as mt
    from tests.helpers import client_for

    with client_for(registry) as client:
        repo = "nine-minds/alga-appliance-config"
        manifest = client.get_manifest(repo, "1.1.0")
        client.put_manifest(repo, "1.2.0", manifest.data, mt.OCI_MANIFEST)  # 1.1.0's files
    before = snapshot(registry)
    values = release_source / "examples" / "charts" / "pgbouncer" / "values.yaml"
    values.write_text(values.read_text() + "\n# 1.2.0\n")
    result = cli(publish_args(registry, release_source, version="1.2.0"))
    assert result.code == 3, result.stderr
    assert "alga-appliance-config:1.2.0 already exists" in result.stderr
    assert snapshot(registry) == before


def test_the_precheck_packages_and_builds_once_for_the_whole_publish(
    registry: Registry, release_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The precheck's dry run and the real run share one packaging of the charts and one
    kustomize build per folder: what was checked is what is pushed, and nothing twice."""
    import json
    import shutil

    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    calls = tmp_path / "kubectl-calls"
    wrapper = tmp_path / "kubectl"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\nexec "{kubectl}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("ALGA_KUBECTL", str(wrapper))
    push_images(registry)
    registry_env(monkeypatch, registry).__enter__()
    out = tmp_path / "out"
    result = cli(publish_args(registry, release_source, extra=("--out-dir", str(out))))
    assert result.code == 0, result.stderr
    assert result.stderr.count("packaging charts from") == 1, result.stderr
    built = sorted(
        line.split()[-1].split("/bundle", 1)[1] for line in calls.read_text().splitlines()
    )
    # ./base and the overlay's three Flux Kustomization paths, each built once
    assert built == ["/base", "/base/background", "/base/core", "/base/platform"], built
    # the real run pushed exactly what the precheck planned
    planned = json.loads((out / "precheck" / "charts.json").read_text())["charts"]
    pushed = json.loads((out / "charts.json").read_text())["charts"]
    assert {n: c["digest"] for n, c in planned.items()} == {
        n: c["digest"] for n, c in pushed.items()
    }
    assert {c["status"] for c in planned.values()} == {"would-push"}
    assert {c["status"] for c in pushed.values()} == {"pushed"}
