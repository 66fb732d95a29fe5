"""Hostile inputs on the real registry: YAML alias bombs, charts helm would refuse, and
source URLs carrying tokens. Each is refused with exit 2 before anything is pushed (and
before kustomize runs), or, for the URL, never reaches a blob."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from tests.harness.registry import Registry
from tests.helpers import cli, registry_args, registry_env, repositories_on_disk
from tests.integration.test_bundle_publish import publish as bundle_publish
from tests.integration.test_publish import publish_args, push_images
from tests.unit.test_yamlload import alias_bomb

pytestmark = pytest.mark.integration

ONLY_IMAGES = {
    "nine-minds/alga-psa-ee",
    "nine-minds/workflow-worker",
    "nine-minds/email-service",
    "nine-minds/temporal-worker",
    "nine-minds/alga-appliance-control-plane",
}


def _bomb_line(text: str) -> int:
    """1-based line of the first alias that overspends the budget in ``alias_bomb``'s
    layout: level 5, whose aliases (to level 4) push the total past 100,000 nodes."""
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("l5:"):
            return number
    raise AssertionError("no level 5 in the bomb")


def plant(src: Path, case: str) -> tuple[Path, int]:
    """Put a 9-level alias bomb where ``case`` says; returns (file, line of the refusal)."""
    charts = src / "examples" / "charts"
    if case == "Chart.yaml":
        path = charts / "pgbouncer" / "Chart.yaml"
    elif case == "values.yaml":
        path = charts / "temporal" / "values.yaml"
    elif case == "profile values":
        path = src / "flux" / "profiles" / "single-node" / "values" / "alga-core.single-node.yaml"
    else:
        path = src / "flux" / "base" / "namespaces.yaml"
        before = path.read_text()
        text = before + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\ndata:\n"
        bomb = alias_bomb("x-lol", indent="  ")
        path.write_text(text + bomb)
        return path, len(text.splitlines()) + _bomb_line(bomb)
    before = path.read_text()
    bomb = alias_bomb("x-lol")
    if case == "Chart.yaml":
        assert len((before + bomb).encode()) < 1500  # the was 892 bytes
    path.write_text(before + bomb)
    return path, len(before.splitlines()) + _bomb_line(bomb)


@pytest.mark.parametrize("case", ["Chart.yaml", "values.yaml", "profile values", "overlay"])
def test_an_alias_bomb_is_refused_before_anything_is_pushed(
    registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    push_images(registry)
    before = set(repositories_on_disk(registry))
    assert before == ONLY_IMAGES
    path, line = plant(release_source, case)
    started = time.monotonic()
    with registry_env(monkeypatch, registry):
        result = cli(publish_args(registry, release_source))
    elapsed = time.monotonic() - started
    assert result.code == 2, result.stderr
    assert result.json()["kind"] == "UnsafeYaml"
    assert f"{path.name}:{line}: aliases expand to more than 100000 nodes" in result.stderr
    assert "limit: 100000 expanded alias nodes per file" in result.stderr
    assert "Traceback" not in result.stderr
    assert set(repositories_on_disk(registry)) == before  # nothing pushed, no tag used up
    assert elapsed < 15, elapsed  # not the minutes kustomize or helm would take


def test_an_overlay_bomb_stops_bundle_publish_before_kustomize(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tools: Any
) -> None:
    """The bundle step alone (as Argo runs it) refuses the overlay bomb in well under a
    second of parsing; kustomize would have spent ~100 s expanding it."""
    import shutil

    root = Path(__file__).resolve().parents[2]
    src = tmp_path / "src"
    shutil.copytree(root / "flux", src / "flux", symlinks=True)
    (src / "release.yaml").write_text("overlay: flux\n")
    _, line = plant(src, "overlay")
    charts_file = tmp_path / "charts.json"
    charts_file.write_text('{"charts": {}}')  # never read: the overlay is refused first
    calls = tmp_path / "kubectl-calls"
    fake_dir = tmp_path / "bin"
    fake_dir.mkdir()
    # A kubectl that records being run and then runs the real one: it must not be run.
    recorder = fake_dir / "kubectl"
    recorder.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {tools.kubectl} "$@"\n')
    recorder.chmod(0o755)

    class _Tools:
        kubectl = recorder

    started = time.monotonic()
    with registry_env(monkeypatch, registry):
        result = bundle_publish(registry, src, charts_file, _Tools())  # type: ignore[arg-type]
    assert result.code == 2, result.stderr
    assert f"namespaces.yaml:{line}: aliases expand" in result.stderr
    assert time.monotonic() - started < 10
    assert not calls.exists()
    assert repositories_on_disk(registry) == []


def test_charts_helm_would_refuse_are_refused_with_the_limit(
    registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chart = release_source / "examples" / "charts" / "email-service"
    args = [
        "charts",
        "publish",
        "--source",
        str(release_source),
        "--config",
        str(release_source / "release.yaml"),
        *registry_args(registry),
        "--json",
    ]
    big = chart / "files" / "big.bin"
    big.parent.mkdir(exist_ok=True)
    with big.open("wb") as fh:  # sparse: no disk is spent on these
        fh.truncate(5 * 1024 * 1024 + 1)
    with registry_env(monkeypatch, registry):
        one_file = cli(args)
        assert one_file.code == 2, one_file.stderr
        assert one_file.json()["kind"] == "ChartTooLarge"
        assert "files/big.bin is 5242881 bytes" in one_file.stderr
        assert "limit of 5242880 bytes (5 MiB) per chart file" in one_file.stderr
        big.unlink()
        for i in range(20):  # 20 x 5 MiB = 100 MiB: helm refuses a chart of that size or more
            with (chart / "files" / f"part{i:02d}.bin").open("wb") as fh:
                fh.truncate(5 * 1024 * 1024)
        started = time.monotonic()
        whole = cli(args)
    assert whole.code == 2, whole.stderr
    assert whole.json()["kind"] == "ChartTooLarge"
    assert "limit of 104857600 bytes (100 MiB) per chart" in whole.stderr
    assert time.monotonic() - started < 30
    assert repositories_on_disk(registry) == []


# -- source URLs ------------------------------------------------------------------------

TOKEN = "ghp_s3cr3tT0kenInTheUrl"


def stored_bytes(reg: Registry) -> list[bytes]:
    """Every file the registry stored, and the expansion of every gzip'd one."""
    import gzip
    import zlib

    out = []
    for path in reg.storage_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            out.append(data)
            if data[:2] == b"\x1f\x8b":
                with contextlib.suppress(OSError, EOFError, zlib.error):
                    out.append(gzip.decompress(data))
    return out


def _git(src: Path, *args: str) -> None:
    import subprocess

    subprocess.run(
        ["git", "-C", str(src), *args],
        check=True,
        capture_output=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.invalid",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.invalid",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "PATH": "/usr/bin:/bin",
        },
    )


@pytest.mark.parametrize(
    "how",
    ["origin with query", "origin with fragment", "--source-url with query and fragment"],
)
def test_a_token_in_the_source_url_never_reaches_a_blob(
    registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    import json

    push_images(registry)
    base = "https://github.com/Nine-Minds/alga-psa.git"
    _git(release_source, "init", "-q", "-b", "main")
    _git(release_source, "add", "-A")
    _git(release_source, "commit", "-q", "-m", "release source")
    extra: tuple[str, ...] = ()
    if how == "origin with query":
        _git(release_source, "remote", "add", "origin", f"{base}?access_token={TOKEN}")
    elif how == "origin with fragment":
        _git(
            release_source,
            "remote",
            "add",
            "origin",
            f"https://u:{TOKEN}@github.com/Nine-Minds/alga-psa.git#{TOKEN}",
        )
    else:
        extra = ("--source-url", f"{base}?access_token={TOKEN}#t={TOKEN}")
    with registry_env(monkeypatch, registry):
        result = cli(publish_args(registry, release_source, extra=extra))
    assert result.code == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    blobs = stored_bytes(registry)
    assert len(blobs) > 20
    assert not [b for b in blobs if TOKEN.encode() in b]
    # The URL is still recorded, canonical, in the bundle and the release.
    recorded = b"https://github.com/Nine-Minds/alga-psa"
    manifests = [json.loads(b) for b in blobs if b[:1] == b"{" and b"annotations" in b]
    sources = {m.get("annotations", {}).get("org.opencontainers.image.source") for m in manifests}
    assert recorded.decode() in sources
    assert any(b'"source":"' + recorded + b'"' in b for b in blobs)  # release provenance


def test_a_source_url_of_another_scheme_is_refused(
    registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_images(registry)
    before = set(repositories_on_disk(registry))
    with registry_env(monkeypatch, registry):
        result = cli(
            [
                "bundle",
                "publish",
                "--source",
                str(release_source),
                "--config",
                str(release_source / "release.yaml"),
                "--charts",
                str(release_source / "nowhere.json"),
                "--version",
                "1.0.0",
                "--source-url",
                f"http://github.com/Nine-Minds/alga-psa?access_token={TOKEN}",
                *registry_args(registry),
                "--json",
            ]
        )
    assert result.code == 2, result.stderr
    assert result.json()["kind"] == "UnsafeSourceUrl"
    assert "has the scheme 'http'" in result.stderr
    assert TOKEN not in result.stdout + result.stderr
    assert set(repositories_on_disk(registry)) == before


def test_values_the_in_cluster_updater_cannot_edit_are_refused_before_any_push(
    registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_images(registry)
    before = set(repositories_on_disk(registry))
    values = release_source / "flux" / "profiles" / "single-node" / "values"
    worker = values / "temporal-worker.single-node.yaml"
    text = worker.read_text()
    assert "\nimage:\n" in "\n" + text
    worker.write_text(("\n" + text).replace("\nimage:\n", "\nimage:  # note\n", 1)[1:])
    with registry_env(monkeypatch, registry):
        result = cli(publish_args(registry, release_source))
    assert result.code == 2, result.stderr
    assert "image.tag exists but the in-cluster updater's line setter cannot find it" in (
        result.stderr
    )
    assert set(repositories_on_disk(registry)) == before


def test_a_whole_publish_refuses_a_source_url_scheme_before_any_push(
    registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_images(registry)
    before = set(repositories_on_disk(registry))
    url = f"http://github.com/Nine-Minds/alga-psa?access_token={TOKEN}"
    with registry_env(monkeypatch, registry):
        result = cli(publish_args(registry, release_source, extra=("--source-url", url)))
    assert result.code == 2, result.stderr
    assert result.json()["kind"] == "UnsafeSourceUrl"
    assert TOKEN not in result.stdout + result.stderr
    assert set(repositories_on_disk(registry)) == before
