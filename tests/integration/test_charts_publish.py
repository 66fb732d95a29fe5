"""`alga-release charts publish` against the real registry, checked with the real helm."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from steps.charts import publish as charts
from steps.config import KNOWN_CHARTS, load_config
from tests.harness.registry import Registry
from tests.helpers import (
    cli,
    client_for,
    registry_args,
    registry_env,
    repositories_on_disk,
    tags,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "charts"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A private copy of the six reference charts plus a release config for them."""
    src = tmp_path / "src"
    for name in KNOWN_CHARTS:
        shutil.copytree(EXAMPLES / name, src / "charts" / name, symlinks=True)
    lines = ["charts:"] + [f"  {n}: charts/{n}" for n in KNOWN_CHARTS]
    (src / "release.yaml").write_text("\n".join(lines) + "\noverlay: flux\n")
    return src


def publish(reg: Registry, src: Path, *extra: str, host: str | None = None) -> Any:
    return cli(
        [
            "charts",
            "publish",
            "--source",
            str(src),
            "--config",
            str(src / "release.yaml"),
            *registry_args(reg, host),
            "--json",
            *extra,
        ]
    )


def run_library(
    reg: Registry, src: Path, policy: charts.VersionPolicy = "content"
) -> tuple[list[charts.ChartResult], Any]:
    config = load_config(src / "release.yaml")
    artifacts = charts.build_artifacts(src, config, policy)
    with client_for(reg) as client:
        plans = charts.plan_charts(client, "nine-minds", artifacts)
        results = charts.push_plan(client, "nine-minds", plans)
        return results, client.stats


def test_every_chart_pulls_and_renders_with_helm_v4_and_v3(
    registry: Registry,
    source: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    helm: str,
    helm3: str,
) -> None:
    with registry_env(monkeypatch, registry):
        result = publish(registry, source, "--out", str(tmp_path / "charts.json"))
    assert result.code == 0, result.stderr
    published = result.json()["charts"]
    assert sorted(published) == sorted(KNOWN_CHARTS)
    assert json.loads((tmp_path / "charts.json").read_text())["charts"] == published
    for name, entry in published.items():
        assert entry["reference"] == f"{entry['repository']}:{entry['version']}@{entry['digest']}"
        assert entry["repository"] == f"{registry.host}/nine-minds/charts/{name}"
        for binary in (helm, helm3):
            dest = tmp_path / Path(binary).name / name
            dest.mkdir(parents=True)
            pull = subprocess.run(
                [
                    binary,
                    "pull",
                    f"oci://{entry['repository']}",
                    "--version",
                    entry["version"],
                    "--plain-http",
                    "-d",
                    str(dest),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            assert pull.returncode == 0, pull.stderr
            assert entry["digest"] in pull.stderr + pull.stdout  # helm prints the digest
            tgz = dest / f"{name}-{entry['version']}.tgz"
            assert tgz.is_file()
            show = subprocess.run(
                [binary, "show", "chart", str(tgz)], capture_output=True, text=True, check=True
            )
            assert f"version: {entry['version']}" in show.stdout
            rendered = subprocess.run(
                [binary, "template", "t", str(tgz)], capture_output=True, text=True, check=False
            )
            assert rendered.returncode == 0, rendered.stderr
            assert "kind:" in rendered.stdout


def test_unchanged_rerun_uploads_nothing_and_mtimes_do_not_matter(
    registry: Registry, source: Path
) -> None:
    first, _ = run_library(registry, source)
    for path in source.rglob("*"):
        os.utime(path, (1_000_000_000, 1_234_567_890))
    second, stats = run_library(registry, source)
    assert [(r.name, r.version, r.digest) for r in second] == [
        (r.name, r.version, r.digest) for r in first
    ]
    assert all(r.status == "unchanged" for r in second)
    assert stats.blobs_uploaded == 0
    assert stats.bytes_uploaded == 0
    assert stats.manifests_put == 0


def test_changing_one_template_changes_only_that_chart(registry: Registry, source: Path) -> None:
    first = {r.name: r for r in run_library(registry, source)[0]}
    template = next((source / "charts" / "email-service" / "templates").glob("*.yaml"))
    template.write_text(template.read_text() + "\n# a change\n")
    second = {r.name: r for r in run_library(registry, source)[0]}
    changed = {n for n in KNOWN_CHARTS if second[n].digest != first[n].digest}
    assert changed == {"email-service"}
    assert second["email-service"].version != first["email-service"].version
    assert {n for n in KNOWN_CHARTS if second[n].version != first[n].version} == {"email-service"}
    with client_for(registry) as client:
        old = client.head_manifest(
            "nine-minds/charts/email-service", first["email-service"].version
        )
    assert old is not None and old.digest == first["email-service"].digest


def test_overwriting_a_version_with_other_content_is_refused(
    registry: Registry, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with registry_env(monkeypatch, registry):
        first = publish(registry, source, "--version-policy", "exact")
        assert first.code == 0, first.stderr
        original = first.json()["charts"]["temporal"]
        assert original["version"] == load_chart_version(source / "charts" / "temporal")
        values = source / "charts" / "temporal" / "values.yaml"
        values.write_text(values.read_text() + "\nextra: true\n")
        blobs_before = sorted(p.name for p in registry.storage_dir.rglob("data"))
        second = publish(registry, source, "--version-policy", "exact")
    assert second.code == 3
    assert original["digest"] in second.stderr
    assert "refusing to overwrite" in second.stderr
    assert second.json()["exitCode"] == 3
    with client_for(registry) as client:
        now = client.head_manifest("nine-minds/charts/temporal", original["version"])
    assert now is not None and str(now.digest) == original["digest"]
    assert sorted(p.name for p in registry.storage_dir.rglob("data")) == blobs_before


def load_chart_version(path: Path) -> str:
    import yaml

    return str(yaml.safe_load((path / "Chart.yaml").read_text())["version"])


def test_every_auth_mode_publishes_and_no_secret_leaks(
    any_registry: Registry, source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "charts.json"
    with registry_env(monkeypatch, any_registry):
        result = cli(
            [
                "-v",
                "charts",
                "publish",
                "--source",
                str(source),
                "--config",
                str(source / "release.yaml"),
                *registry_args(any_registry),
                "--json",
                "--out",
                str(out),
                "--chart",
                "pgbouncer",
                "--chart",
                "temporal",
            ]
        )
    assert result.code == 0, result.stderr
    assert sorted(result.json()["charts"]) == ["pgbouncer", "temporal"]
    assert tags(any_registry, "nine-minds/charts/pgbouncer") == [
        result.json()["charts"]["pgbouncer"]["version"]
    ]
    everything = result.stdout + result.stderr + out.read_text()
    assert any_registry.secrets_in(everything) == []
    if any_registry.token_server is not None:
        assert any_registry.token_server.issued_tokens, "the token server issued no token"


def test_wrong_credentials_give_an_auth_error_not_a_traceback(
    protected_registry: Registry, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with registry_env(monkeypatch, protected_registry, credentials=("alga-ci", "wrong-pw-5e1f")):
        result = publish(protected_registry, source, "--chart", "pgbouncer")
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert protected_registry.host in result.stderr
    assert "wrong-pw-5e1f" not in result.stdout + result.stderr
    assert result.json()["error"] == "AuthError"
    assert repositories_on_disk(protected_registry) == []


def test_sentinel_token_never_reaches_output(
    token_registry: Registry, source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every token the server issued, and the password, are sentinels: none may appear
    in stdout, stderr (debug logging on) or the output file."""
    server = token_registry.token_server
    assert server is not None
    out = tmp_path / "charts.json"
    with registry_env(monkeypatch, token_registry):
        result = cli(
            [
                "-v",
                "charts",
                "publish",
                "--source",
                str(source),
                "--config",
                str(source / "release.yaml"),
                *registry_args(token_registry),
                "--json",
                "--chart",
                "pgbouncer",
                "--out",
                str(out),
            ]
        )
    assert result.code == 0, result.stderr
    assert len(server.issued_tokens) >= 1
    everything = result.stdout + result.stderr + out.read_text()
    assert server.leaks_in(everything) == []
    assert token_registry.password and token_registry.password not in everything
    # The check itself can fail: a token pasted into the text is found.
    assert server.leaks_in(everything + server.issued_tokens[0]) != []


def _make_bad(src: Path, case: str) -> None:
    chart = src / "charts" / "pgbouncer"
    chart_yaml = chart / "Chart.yaml"
    if case == "missing chart folder":
        shutil.rmtree(chart)
    elif case == "Chart.yaml missing":
        chart_yaml.unlink()
    elif case == "Chart.yaml invalid":
        chart_yaml.write_text("apiVersion: v2\nname: [pgbouncer\n")
    elif case == "name mismatch":
        chart_yaml.write_text(chart_yaml.read_text().replace("name: pgbouncer", "name: pgb"))
    elif case == "non-SemVer version":
        text = chart_yaml.read_text()
        lines = [
            ("version: 1.2" if line.startswith("version:") else line) for line in text.splitlines()
        ]
        chart_yaml.write_text("\n".join(lines) + "\n")
    elif case == "symlink outside the chart":
        (chart / "templates" / "leak.yaml").symlink_to("/etc/passwd")
    elif case == "unknown chart name in config":
        (src / "release.yaml").write_text("charts:\n  nginx: charts/pgbouncer\n")
    else:  # pragma: no cover
        raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("missing chart folder", "does not exist"),
        ("Chart.yaml missing", "Chart.yaml"),
        ("Chart.yaml invalid", "Chart.yaml"),
        ("name mismatch", "pgb"),
        ("non-SemVer version", "1.2"),
        ("symlink outside the chart", "leak.yaml"),
        ("unknown chart name in config", "nginx"),
    ],
)
def test_bad_input_is_a_clear_error_and_pushes_nothing(
    registry: Registry, source: Path, monkeypatch: pytest.MonkeyPatch, case: str, expect: str
) -> None:
    _make_bad(source, case)
    with registry_env(monkeypatch, registry):
        result = publish(registry, source)
    assert result.code == 2, (case, result.stderr)
    assert expect in result.stderr
    assert "Traceback" not in result.stderr
    assert repositories_on_disk(registry) == []


def test_dry_run_pushes_nothing(
    registry: Registry, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with registry_env(monkeypatch, registry):
        result = publish(registry, source, "--dry-run")
    assert result.code == 0, result.stderr
    assert {e["status"] for e in result.json()["charts"].values()} == {"would-push"}
    assert repositories_on_disk(registry) == []


def test_registry_503_twice_is_retried_and_persistent_503_exits_75(
    registry: Registry, source: Path, monkeypatch: pytest.MonkeyPatch, fault_proxy: Any
) -> None:
    proxy = fault_proxy(registry)
    proxy.fail_next(2, status=503, method="PUT", path=r"/manifests/")
    with registry_env(monkeypatch, registry):
        ok = publish(registry, source, "--chart", "temporal", host=proxy.host)
        assert ok.code == 0, ok.stderr
        assert [
            r.status for r in proxy.requests if r.method == "PUT" and "/manifests/" in r.path
        ] == [503, 503, 201]
        proxy.reset()
        proxy.fail_always(status=503)
        down = publish(registry, source, "--chart", "pgbouncer", host=proxy.host)
    assert down.code == 75
    assert "503" in down.stderr
    assert down.json()["exitCode"] == 75


def test_packaged_tarball_is_deterministic_across_copies(source: Path, tmp_path: Path) -> None:
    config = load_config(source / "release.yaml")
    first = charts.build_artifacts(source, config, "content")
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    second = charts.build_artifacts(copy, config, "content")
    assert [a.tarball for a in first] == [a.tarball for a in second]
    assert [a.digest for a in first] == [a.digest for a in second]
    with tarfile.open(fileobj=__import__("io").BytesIO(first[0].tarball)) as tar:
        assert all(m.mtime == tar.getmembers()[0].mtime for m in tar.getmembers())


def test_same_content_compressed_differently_is_not_an_overwrite(
    registry: Registry, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another zlib (or another commit date) gives other bytes for the same files:
    the published version is kept, not refused and not overwritten."""
    first = {r.name: r for r in run_library(registry, source)[0]}
    from steps.charts import package as chartpkg

    monkeypatch.setattr(chartpkg, "GZIP_LEVEL", 1)
    config = load_config(source / "release.yaml")
    artifacts = charts.build_artifacts(source, config, "content", ["temporal"])
    assert artifacts[0].digest != first["temporal"].digest  # other bytes ...
    assert artifacts[0].version == first["temporal"].version  # ... same content
    with client_for(registry) as client:
        plans = charts.plan_charts(client, "nine-minds", artifacts)
        assert plans[0].state == "equivalent"
        results = charts.push_plan(client, "nine-minds", plans)
        assert client.stats.manifests_put == 0
    assert results[0].digest == first["temporal"].digest


def test_charts_are_pushed_three_at_a_time(registry: Registry, release_source: Path) -> None:
    """Held at the proxy, the tags of three charts wait at once; the other three charts
    have not opened an upload meanwhile. Released, all six are published."""
    import threading

    from tests.harness.hold import start_holding_proxy

    proxy = start_holding_proxy(registry)
    gate = proxy.hold("PUT", r"^/v2/nine-minds/charts/[^/]+/manifests/", count=3)
    done: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: done.update(result=publish(registry, release_source, host=proxy.host))
    )
    worker.start()
    try:
        assert gate.wait_arrived(60), f"{len(gate.held)} chart tag(s) in flight at once"
        uploading = {
            r.path.split("/")[4]
            for r in proxy.requests
            if r.method == "POST" and "/blobs/uploads/" in r.path
        }
        assert len(uploading) == 3, uploading
    finally:
        gate.release()
        worker.join(120)
        proxy.stop()
    result = done["result"]
    assert result.code == 0, result.stderr
    charts_out = result.json()["charts"]
    assert sorted(charts_out) == sorted(KNOWN_CHARTS)
    assert {c["status"] for c in charts_out.values()} == {"pushed"}
    with client_for(registry) as client:
        for name, chart in charts_out.items():
            head = client.head_manifest(f"nine-minds/charts/{name}", chart["version"])
            assert head is not None and str(head.digest) == chart["digest"], name
