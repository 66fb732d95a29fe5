"""`alga-release bundle publish` against the real registry, checked with the real kustomize.

The charts are the reference charts (examples/charts), really pushed first; the overlay
is a private copy of the reference overlay (flux/). The pulled bundle is extracted with
Python's tarfile (``filter="data"``: relative names, no links, like Flux's ``tar.Untar``)
and built with ``kubectl kustomize --load-restrictor LoadRestrictionsNone``, as Flux does.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from steps.charts import publish as charts
from steps.config import KNOWN_CHARTS, load_config
from steps.oci import mediatypes as mt
from steps.oci.reference import Digest
from tests.harness.registry import Registry
from tests.harness.tools import Tools
from tests.helpers import (
    CliResult,
    cli,
    client_for,
    registry_args,
    registry_env,
    repositories_on_disk,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BUNDLE_REPO = "nine-minds/alga-appliance-config"
REVISION = "main@sha1:" + "5" * 40
SOURCE_URL = "https://github.com/Nine-Minds/alga-psa"


# -- fixtures and helpers ---------------------------------------------------------


def push_charts(reg: Registry, out: Path, artifacts: list[charts.ChartArtifact]) -> dict[str, Any]:
    """Really publish ``artifacts``; write and return charts.json."""
    with client_for(reg) as client:
        plans = charts.plan_charts(client, "nine-minds", artifacts)
        result = charts.results_json(charts.push_plan(client, "nine-minds", plans))
    out.write_text(json.dumps(result))
    return result


@pytest.fixture
def chart_artifacts() -> list[charts.ChartArtifact]:
    return charts.build_artifacts(ROOT, load_config(ROOT / "examples" / "release.yaml"), "content")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A private copy of the reference overlay, and a release config naming it."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "flux", src / "flux", symlinks=True)
    (src / "release.yaml").write_text("overlay: flux\n")
    return src


@pytest.fixture
def charts_json(
    registry: Registry, tmp_path: Path, chart_artifacts: list[charts.ChartArtifact]
) -> Path:
    out = tmp_path / "charts.json"
    push_charts(registry, out, chart_artifacts)
    return out


def publish(
    reg: Registry,
    src: Path,
    charts_file: Path,
    tools: Tools,
    *extra: str,
    version: str = "1.0.0",
) -> CliResult:
    return cli(
        [
            "bundle",
            "publish",
            "--source",
            str(src),
            "--config",
            str(src / "release.yaml"),
            "--charts",
            str(charts_file),
            "--version",
            version,
            "--source-url",
            SOURCE_URL,
            "--revision",
            REVISION,
            "--kubectl",
            str(tools.kubectl),
            *registry_args(reg),
            "--json",
            *extra,
        ]
    )


def pull_bundle(reg: Registry, digest: str, dest: Path) -> dict[str, Any]:
    """Pull the manifest by digest, check its shape, extract the layer into ``dest``."""
    with client_for(reg, anonymous=reg.credentials is None) as client:
        manifest = client.get_manifest(BUNDLE_REPO, Digest.parse(digest))
        body = manifest.json()
        assert manifest.media_type == mt.OCI_MANIFEST
        config = body["config"]
        assert isinstance(config, dict) and config["mediaType"] == mt.FLUX_CONFIG
        layers = body["layers"]
        assert isinstance(layers, list) and len(layers) == 1
        assert layers[0]["mediaType"] == mt.FLUX_CONTENT_LAYER
        blob = client.get_blob(BUNDLE_REPO, Digest.parse(layers[0]["digest"]))
        config_blob = client.get_blob(BUNDLE_REPO, Digest.parse(config["digest"]))
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for member in tar.getmembers():
            assert member.isfile() or member.isdir(), member.name
            assert not member.name.startswith(("/", "../")) and "/../" not in member.name
            assert (member.uid, member.gid, member.mtime) == (0, 0, 0)
        tar.extractall(dest, filter="data")
    diff_id = json.loads(config_blob)["rootfs"]["diff_ids"][0]
    assert diff_id == "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()
    return body


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def kustomize(tools: Tools, directory: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(tools.kubectl), "kustomize", "--load-restrictor", "LoadRestrictionsNone", directory],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def build_like_flux(tools: Tools, root: Path) -> dict[str, list[dict[str, Any]]]:
    """Build ./base, then every path a Flux Kustomization in a build names."""
    built: dict[str, list[dict[str, Any]]] = {}
    queue = ["base"]
    while queue:
        path = queue.pop(0)
        if path in built:
            continue
        built[path] = kustomize(tools, root / path)
        for obj in built[path]:
            if obj["apiVersion"].startswith("kustomize.toolkit.fluxcd.io/"):
                assert obj["spec"]["sourceRef"] == {
                    "kind": "OCIRepository",
                    "name": "alga-appliance",
                }
                queue.append(obj["spec"]["path"].removeprefix("./"))
    return built


def objects(built: dict[str, list[dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    return [o for docs in built.values() for o in docs if o["kind"] == kind]


# -- the happy paths --------------------------------------------------------------------


def test_pulled_bundle_pins_every_release_and_builds(
    registry: Registry,
    source: Path,
    charts_json: Path,
    tools: Tools,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    published = json.loads(charts_json.read_text())["charts"]
    dry = tmp_path / "rendered"
    out = tmp_path / "bundle.json"
    with registry_env(monkeypatch, registry):
        preview = publish(registry, source, charts_json, tools, "--dry-run", str(dry))
        assert preview.code == 0, preview.stderr
        assert BUNDLE_REPO not in repositories_on_disk(registry)  # a dry run pushes nothing
        result = publish(registry, source, charts_json, tools, "--out", str(out))
    assert result.code == 0, result.stderr
    body = result.json()
    assert body["repository"] == f"{registry.host}/{BUNDLE_REPO}"
    assert body["tag"] == "1.0.0"
    assert body["status"] == "pushed"
    assert body["digest"] == preview.json()["digest"]  # the dry run told the truth
    assert json.loads(out.read_text()) == body
    with client_for(registry) as client:
        head = client.head_manifest(BUNDLE_REPO, "1.0.0")
    assert head is not None and str(head.digest) == body["digest"]

    extracted = tmp_path / "pulled"
    manifest = pull_bundle(registry, body["digest"], extracted)
    assert manifest["annotations"] == {
        "org.opencontainers.image.created": "1970-01-01T00:00:00Z",  # no git: the epoch
        "org.opencontainers.image.revision": REVISION,
        "org.opencontainers.image.source": SOURCE_URL,
    }
    assert tree(extracted) == tree(dry)  # what was pushed is what the dry run showed

    built = build_like_flux(tools, extracted)
    assert sorted(built) == ["base", "base/background", "base/core", "base/platform"]
    (repo,) = objects(built, "HelmRepository")
    assert repo["spec"]["url"] == f"oci://{registry.host}/nine-minds/charts"
    releases = objects(built, "HelmRelease")
    assert len(releases) == 6
    for hr in releases:
        spec = hr["spec"]["chart"]["spec"]
        assert spec["version"] == published[spec["chart"]]["version"]
        assert "reconcileStrategy" not in spec
        assert spec["sourceRef"] == {
            "kind": "HelmRepository",
            "name": "alga-charts",
            "namespace": "flux-system",
        }
    assert sorted(hr["spec"]["chart"]["spec"]["chart"] for hr in releases) == sorted(KNOWN_CHARTS)

    diff = preview.json()["diff"]
    assert "+  url: oci://" + registry.host in diff
    assert "-      reconcileStrategy: Revision" in diff


def test_same_input_same_digest_and_a_changed_chart_changes_it(
    registry: Registry,
    source: Path,
    charts_json: Path,
    tools: Tools,
    tmp_path: Path,
    chart_artifacts: list[charts.ChartArtifact],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with registry_env(monkeypatch, registry):
        first = publish(registry, source, charts_json, tools)
        blobs = sorted(p.name for p in registry.storage_dir.rglob("data"))
        for path in source.rglob("*"):
            os.utime(path, (1_000_000_000, 1_234_567_890), follow_symlinks=False)
        second = publish(registry, source, charts_json, tools)
    assert first.code == second.code == 0, first.stderr + second.stderr
    assert second.json()["digest"] == first.json()["digest"]
    assert second.json()["status"] == "unchanged"
    assert sorted(p.name for p in registry.storage_dir.rglob("data")) == blobs

    # A changed chart gets a new version; the bundle pinning it gets a new digest.
    chart_dir = tmp_path / "email-service"
    shutil.copytree(ROOT / "examples" / "charts" / "email-service", chart_dir)
    values = chart_dir / "values.yaml"
    values.write_text(values.read_text() + "\n# changed\n")
    changed = charts.build_artifact("email-service", chart_dir, "content")
    others = [a for a in chart_artifacts if a.name != "email-service"]
    new_charts = tmp_path / "charts-2.json"
    published = push_charts(registry, new_charts, [*others, changed])
    old_version = json.loads(charts_json.read_text())["charts"]["email-service"]["version"]
    assert published["charts"]["email-service"]["version"] != old_version
    with registry_env(monkeypatch, registry):
        third = publish(registry, source, new_charts, tools, version="1.0.1")
        assert third.code == 0, third.stderr
        assert third.json()["digest"] != first.json()["digest"]
        # ... and it cannot replace the published 1.0.0
        clash = publish(registry, source, new_charts, tools, version="1.0.0")
    assert clash.code == 3, clash.stderr
    assert first.json()["digest"] in clash.stderr
    assert "refusing to overwrite" in clash.stderr
    with client_for(registry) as client:
        head = client.head_manifest(BUNDLE_REPO, "1.0.0")
    assert head is not None and str(head.digest) == first.json()["digest"]


def test_digest_pin_mode_pins_the_pushed_chart_manifests(
    registry: Registry,
    source: Path,
    charts_json: Path,
    tools: Tools,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    published = json.loads(charts_json.read_text())["charts"]
    with registry_env(monkeypatch, registry):
        result = publish(registry, source, charts_json, tools, "--chart-pin", "digest")
    assert result.code == 0, result.stderr
    extracted = tmp_path / "pulled"
    pull_bundle(registry, result.json()["digest"], extracted)
    built = build_like_flux(tools, extracted)
    sources = {o["metadata"]["name"]: o for o in objects(built, "OCIRepository")}
    assert len(sources) == 6
    with client_for(registry) as client:
        for name, entry in published.items():
            oci = sources[f"alga-charts-{name}"]
            assert oci["spec"]["url"] == f"oci://{registry.host}/nine-minds/charts/{name}"
            assert oci["spec"]["ref"] == {"digest": entry["digest"]}
            assert oci["spec"]["layerSelector"] == {
                "mediaType": mt.HELM_CHART_LAYER,
                "operation": "copy",
            }
            pushed = client.head_manifest(f"nine-minds/charts/{name}", entry["version"])
            assert pushed is not None and str(pushed.digest) == entry["digest"]
    for hr in objects(built, "HelmRelease"):
        assert "chart" not in hr["spec"]
        ref = hr["spec"]["chartRef"]
        assert ref["kind"] == "OCIRepository" and ref["name"] in sources
        assert ref["namespace"] == sources[ref["name"]]["metadata"]["namespace"]


def test_token_registry_publishes_with_credentials(
    token_registry: Registry,
    source: Path,
    tools: Tools,
    tmp_path: Path,
    chart_artifacts: list[charts.ChartArtifact],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    charts_file = tmp_path / "charts.json"
    push_charts(token_registry, charts_file, chart_artifacts)
    with registry_env(monkeypatch, token_registry):
        result = publish(token_registry, source, charts_file, tools)
    assert result.code == 0, result.stderr
    assert result.json()["status"] == "pushed"
    assert token_registry.secrets_in(result.stdout + result.stderr) == []


def test_embedded_default_overlay_renders(
    registry: Registry, charts_json: Path, tools: Tools, tmp_path: Path
) -> None:
    """The project's own default: --source <repo> --config examples/release.yaml."""
    result = cli(
        [
            "bundle",
            "publish",
            "--source",
            str(ROOT),
            "--config",
            str(ROOT / "examples" / "release.yaml"),
            "--charts",
            str(charts_json),
            "--version",
            "0.1.0",
            "--kubectl",
            str(tools.kubectl),
            "--dry-run",
            str(tmp_path / "out"),
            *registry_args(registry),
        ]
    )
    assert result.code == 0, result.stderr
    assert "--- a/base/charts/helm-repository.yaml" in result.stdout
    assert "would-push sha256:" in result.stdout
    assert BUNDLE_REPO not in repositories_on_disk(registry)


# -- bad input: a clear error, nothing pushed ----------------------------------------------


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _make_bad(src: Path, case: str) -> None:
    overlay = src / "flux"
    if case == "escaping symlink":
        (overlay / "base" / "platform" / "leak.yaml").symlink_to("/etc/hostname")
    elif case == "unpublished chart":
        _edit(overlay / "base" / "releases" / "temporal.yaml", "chart: temporal", "chart: nginx")
    elif case == "invalid YAML":
        _edit(
            overlay / "base" / "releases" / "pgbouncer.yaml",
            "  releaseName: pgbouncer\n",
            "  releaseName: [pgbouncer\n",
        )
    elif case == "folder without kustomization.yaml":
        (overlay / "base" / "extras").mkdir()
        (overlay / "base" / "extras" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\n")
        _edit(
            overlay / "base" / "flux" / "kustomizations.yaml",
            "path: ./base/platform",
            "path: ./base/extras",
        )
    elif case == "git-sourced HelmRelease":
        _edit(
            overlay / "base" / "releases" / "email-service.yaml",
            "chart: email-service\n",
            "chart: ./ee/helm/email-service\n",
        )
        _edit(
            overlay / "base" / "releases" / "email-service.yaml",
            "kind: HelmRepository\n        name: alga-charts",
            "kind: GitRepository\n        name: alga-psa",
        )
    elif case == "kustomize build fails":
        _edit(
            overlay / "base" / "core" / "kustomization.yaml",
            "../releases/temporal.yaml",
            "../releases/missing.yaml",
        )
    elif case == "wrong Kustomization source":
        _edit(
            overlay / "base" / "flux" / "kustomizations.yaml",
            "    name: alga-appliance\n---",
            "    name: flux-system\n---",
        )
    elif case == "kustomization reaching outside the overlay":
        (src / "outside.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
        _edit(
            overlay / "base" / "platform" / "kustomization.yaml",
            "  - appliance-status.yaml\n",
            "  - appliance-status.yaml\n  - ../../../outside.yaml\n",
        )
    else:  # pragma: no cover
        raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("escaping symlink", "base/platform/leak.yaml -> /etc/hostname leaves the overlay"),
        ("unpublished chart", "installs chart 'nginx', which this release did not publish"),
        ("invalid YAML", "base/releases/pgbouncer.yaml:14:"),
        ("folder without kustomization.yaml", "./base/extras, a folder without kustomization"),
        ("git-sourced HelmRelease", "is git-coupled: chart './ee/helm/email-service'"),
        ("kustomize build fails", "`kubectl kustomize` of ./base/core failed"),
        ("wrong Kustomization source", "must read the bundle itself"),
        ("kustomization reaching outside the overlay", "is outside the bundle"),
    ],
)
def test_bad_input_is_a_clear_error_and_pushes_nothing(
    registry: Registry,
    source: Path,
    charts_json: Path,
    tools: Tools,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    expect: str,
) -> None:
    _make_bad(source, case)
    with registry_env(monkeypatch, registry):
        result = publish(registry, source, charts_json, tools)
    assert result.code == 2, (case, result.stderr)
    assert expect in result.stderr, result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.json()["error"] == "BadInput"
    assert BUNDLE_REPO not in repositories_on_disk(registry)


def test_invalid_yaml_names_file_and_line(
    registry: Registry, source: Path, charts_json: Path, tools: Tools
) -> None:
    _make_bad(source, "invalid YAML")
    result = publish(registry, source, charts_json, tools)
    lines = (source / "flux/base/releases/pgbouncer.yaml").read_text().splitlines()
    line = int(result.stderr.split("pgbouncer.yaml:")[1].split(":")[0])
    assert "releaseName: [pgbouncer" in lines[line - 2] + lines[line - 1]


def test_charts_json_from_another_registry_is_refused(
    registry: Registry, source: Path, charts_json: Path, tools: Tools
) -> None:
    result = cli(
        [
            "bundle",
            "publish",
            "--source",
            str(source),
            "--config",
            str(source / "release.yaml"),
            "--charts",
            str(charts_json),
            "--version",
            "1.0.0",
            "--kubectl",
            str(tools.kubectl),
            *registry_args(registry, namespace="someone-else"),
        ]
    )
    assert result.code == 2
    assert "does not match this publish" in result.stderr
    assert repositories_on_disk(registry) == sorted(f"nine-minds/charts/{c}" for c in KNOWN_CHARTS)


def test_charts_missing_from_the_registry_are_refused(
    registry: Registry, source: Path, charts_json: Path, tools: Tools
) -> None:
    data = json.loads(charts_json.read_text())
    data["charts"]["pgbouncer"]["digest"] = "sha256:" + "0" * 64
    charts_json.write_text(json.dumps(data))
    result = publish(registry, source, charts_json, tools)
    assert result.code == 3, result.stderr
    assert "charts.json says sha256:" + "0" * 64 in result.stderr
    assert BUNDLE_REPO not in repositories_on_disk(registry)


def test_a_rerun_reads_quickly_and_still_refuses_a_chart_that_moved(
    registry: Registry, source: Path, charts_json: Path, tools: Tools
) -> None:
    """The re-run of a published bundle answers from quick reads ("unchanged", the same
    result as the first run's); once a chart is not what charts.json names, the full
    client judges again and refuses, with its own message."""
    first = publish(registry, source, charts_json, tools)
    assert first.code == 0, first.stderr
    again = publish(registry, source, charts_json, tools)
    assert again.code == 0, again.stderr
    assert again.json() == {**first.json(), "status": "unchanged"}
    data = json.loads(charts_json.read_text())
    data["charts"]["pgbouncer"]["digest"] = "sha256:" + "1" * 64
    charts_json.write_text(json.dumps(data))
    moved = publish(registry, source, charts_json, tools)
    assert moved.code == 3, moved.stderr
    assert moved.json()["error"] == "Refused"
    assert "charts.json says sha256:" + "1" * 64 in moved.stderr
    assert "quick read" not in moved.stderr and "Doubt(" not in moved.stderr


def _recording_kubectl(tools: Tools, tmp_path: Path, line: str = "$*") -> tuple[Path, Path]:
    """A kubectl that appends ``line`` (shell words: its arguments by default) to its log
    for each build, then is kubectl. Returns the wrapper and the log."""
    calls = tmp_path / "kubectl-calls"
    wrapper = tmp_path / "kubectl"
    wrapper.write_text(f'#!/bin/sh\necho "{line}" >> "{calls}"\nexec "{tools.kubectl}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, calls


def _builds(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_bytes_the_tag_already_holds_are_not_built_again(
    registry: Registry,
    source: Path,
    charts_json: Path,
    tools: Tools,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A re-run whose bundle is byte for byte the published one skips the kustomize builds
    (they passed before the push); other bytes under the version are built, then refused;
    a dry run on its own builds and asks the registry nothing."""
    kubectl, calls = _recording_kubectl(tools, tmp_path)
    first = publish(registry, source, charts_json, tools, "--kubectl", str(kubectl))
    assert first.code == 0, first.stderr
    assert _builds(calls) == 4  # ./base and the three Flux Kustomizations
    again = publish(registry, source, charts_json, tools, "--kubectl", str(kubectl))
    assert again.code == 0, again.stderr
    assert again.json() == {**first.json(), "status": "unchanged"}
    assert _builds(calls) == 4
    assert "holds these bytes: validated when they were pushed" in again.stderr
    _edit(source / "flux" / "base" / "namespaces.yaml", "name: msp", "name: msp2")
    changed = publish(registry, source, charts_json, tools, "--kubectl", str(kubectl))
    assert changed.code == 3, changed.stderr
    assert _builds(calls) == 8
    import steps.oci.client
    import steps.oci.quick

    def asked(*_: object, **__: object) -> None:
        raise AssertionError("a dry run on its own asked the registry")

    monkeypatch.setattr(steps.oci.quick.QuickReader, "head_manifest", asked)
    monkeypatch.setattr(steps.oci.client.RegistryClient, "head_manifest", asked)
    dry = publish(
        registry,
        source,
        charts_json,
        tools,
        "--kubectl",
        str(kubectl),
        "--dry-run",
        str(tmp_path / "dry"),
    )
    assert dry.code == 0, dry.stderr
    assert _builds(calls) == 12


@pytest.mark.parametrize("version", ["1.0-rc5.1", "1.0.0+build.1", "v1.0.0"])
def test_bad_version_is_refused(
    registry: Registry, source: Path, charts_json: Path, tools: Tools, version: str
) -> None:
    result = publish(registry, source, charts_json, tools, version=version)
    assert result.code == 2
    assert version in result.stderr
    assert BUNDLE_REPO not in repositories_on_disk(registry)


def test_overlay_change_under_a_published_version_is_refused(
    registry: Registry, source: Path, charts_json: Path, tools: Tools
) -> None:
    first = publish(registry, source, charts_json, tools)
    assert first.code == 0, first.stderr
    _edit(source / "flux" / "base" / "namespaces.yaml", "name: msp", "name: msp2")
    again = publish(registry, source, charts_json, tools)
    assert again.code == 3
    assert first.json()["digest"] in again.stderr
    assert again.json()["error"] == "Refused"
    with client_for(registry) as client:
        head = client.head_manifest(BUNDLE_REPO, "1.0.0")
    assert head is not None and str(head.digest) == first.json()["digest"]


def test_same_files_compressed_differently_are_not_an_overwrite(
    registry: Registry,
    source: Path,
    charts_json: Path,
    tools: Tools,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another zlib gives other layer bytes for the same tar: the published bundle is
    kept (status unchanged, its digest returned), neither refused nor overwritten."""
    from steps.bundle import artifact as bundle_artifact
    from steps.bundle import publish as bundle

    def prepare() -> bundle.PreparedBundle:
        return bundle.prepare_bundle(
            source=source,
            config=load_config(source / "release.yaml"),
            charts_file=charts_json,
            registry=registry.host,
            namespace="nine-minds",
            version="2.0.0",
            source_url=SOURCE_URL,
            revision=REVISION,
            kubectl=str(tools.kubectl),
        )

    monkeypatch.setattr(bundle_artifact, "GZIP_LEVEL", 1)
    other = prepare()
    monkeypatch.undo()
    ours = prepare()
    assert other.artifact.digest != ours.artifact.digest
    with client_for(registry) as client:
        first = bundle.publish_prepared(client, other)
        assert first["status"] == "pushed"
        again = bundle.publish_prepared(client, ours)
        assert client.stats.manifests_put == 1
    assert again == {**first, "status": "unchanged"}


def test_a_bundle_pushed_with_flux_2_9s_config_is_kept(
    registry: Registry,
    source: Path,
    charts_json: Path,
    tools: Tools,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """flux2 2.9 writes go-containerregistry's empty-image config, not ours (<= 2.8's, with
    the diff ID): a bundle with the same files and annotations under the tag but flux
    2.9's config is the same bundle: kept, digest returned, nothing written."""
    from steps.bundle import artifact as bundle_artifact
    from steps.bundle import publish as bundle

    def prepare() -> bundle.PreparedBundle:
        return bundle.prepare_bundle(
            source=source,
            config=load_config(source / "release.yaml"),
            charts_file=charts_json,
            registry=registry.host,
            namespace="nine-minds",
            version="3.0.0",
            source_url=SOURCE_URL,
            revision=REVISION,
            kubectl=str(tools.kubectl),
        )

    ours = prepare()
    assert json.loads(ours.artifact.config)["history"] == [{"created": "0001-01-01T00:00:00Z"}]
    monkeypatch.setattr(bundle_artifact, "flux_config", lambda _: bundle_artifact.FLUX_2_9_CONFIG)
    old = prepare()
    monkeypatch.undo()
    assert old.artifact.config == bundle_artifact.FLUX_2_9_CONFIG != ours.artifact.config
    assert old.artifact.layer_digest == ours.artifact.layer_digest
    with client_for(registry) as client:
        first = bundle.publish_prepared(client, old)
        assert first["status"] == "pushed"
        again = bundle.publish_prepared(client, ours)
        assert client.stats.manifests_put == 1
    assert again == {**first, "status": "unchanged"}


@pytest.mark.parametrize(
    ("caller", "seen"),
    [
        ({}, "off 128MiB"),  # the collector off until the soft limit
        ({"GOGC": "200"}, "200 -"),  # the caller's own tuning is left as it is
        ({"GOMEMLIMIT": "2GiB"}, "- 2GiB"),
    ],
)
def test_kustomize_runs_with_gos_collector_off_unless_the_caller_tunes_it(
    registry: Registry,
    source: Path,
    charts_json: Path,
    tools: Tools,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caller: dict[str, str],
    seen: str,
) -> None:
    # records what each build ran with, then is kubectl
    wrapper, calls = _recording_kubectl(tools, tmp_path, "${GOGC:--} ${GOMEMLIMIT:--}")
    for name in ("GOGC", "GOMEMLIMIT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in caller.items():
        monkeypatch.setenv(name, value)
    with registry_env(monkeypatch, registry):
        result = publish(registry, source, charts_json, tools, "--kubectl", str(wrapper))
    assert result.code == 0, result.stderr
    lines = calls.read_text().splitlines()
    assert len(lines) == 4 and set(lines) == {seen}, lines  # ./base and three Kustomizations


def test_the_collector_setting_changes_kubectls_work_not_its_output(tools: Tools) -> None:
    from steps.bundle.publish import kustomize_env

    argv = [str(tools.kubectl), "kustomize", "--load-restrictor", "LoadRestrictionsNone"]
    argv.append(str(ROOT / "flux" / "base"))
    plain = {k: v for k, v in os.environ.items() if k not in ("GOGC", "GOMEMLIMIT")}
    plain["GODEBUG"] = "gctrace=1"  # Go's runtime reports each collection on stderr
    runs = [
        subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=60)
        for env in (plain, kustomize_env(plain))
    ]
    assert runs[0].stdout == runs[1].stdout
    assert "gc 1 @" in runs[0].stderr  # by default a build collects ...
    assert "gc 1 @" not in runs[1].stderr, runs[1].stderr  # ... tuned, it never does
    assert kustomize_env({"GOGC": "50"}) == {"GOGC": "50"}
    assert kustomize_env({"GOMEMLIMIT": "1GiB"}) == {"GOMEMLIMIT": "1GiB"}
