"""The overlay rewrite and Flux rules (steps.bundle_flux), on the reference overlay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from steps.bundle.checks import check_built_objects, check_kustomize_dir
from steps.bundle.flux import (
    ChartSet,
    KustomizationRef,
    PublishedChart,
    parse_charts_json,
    render_bundle,
)
from steps.bundle.publish import read_overlay
from steps.config import KNOWN_CHARTS
from steps.errors import BadInput
from steps.oci.reference import Digest

ROOT = Path(__file__).resolve().parents[3]
REGISTRY, NAMESPACE = "127.0.0.1:5000", "nine-minds"


@pytest.fixture(scope="module")
def overlay() -> dict[str, bytes]:
    return read_overlay(ROOT / "flux")


def chart_set(names: tuple[str, ...] = KNOWN_CHARTS) -> ChartSet:
    charts = {
        name: PublishedChart(
            name,
            f"0.1.{i}-c{i}a{i}b{i}c{i}d{i}",
            Digest("sha256", f"{i:x}" * 64),
            f"{REGISTRY}/{NAMESPACE}/charts/{name}",
        )
        for i, name in enumerate(names)
    }
    return ChartSet(REGISTRY, NAMESPACE, charts)


def docs(files: dict[str, bytes], path: str) -> list[Any]:
    return list(yaml.safe_load_all(files[path]))


def release_file(name: str) -> str:
    return f"base/releases/{name}.yaml"


def test_version_pin_rewrites_only_what_it_must(overlay: dict[str, bytes]) -> None:
    charts = chart_set()
    result = render_bundle(overlay, charts, "version")
    releases = [release_file(n) for n in _release_names()]
    assert sorted(result.changed) == sorted([*releases, "base/charts/helm-repository.yaml"])
    assert result.reserialised == ()
    assert result.warnings == ()
    assert result.used_charts == tuple(sorted(KNOWN_CHARTS))
    for path, data in overlay.items():
        if path not in result.changed:
            assert result.files[path] == data, path  # untouched files keep their bytes
    for name in _release_names():
        before, after = (
            docs(overlay, release_file(name))[0],
            docs(result.files, release_file(name))[0],
        )
        chart = before["spec"]["chart"]["spec"]["chart"]
        spec = after["spec"]["chart"]["spec"]
        assert spec["version"] == charts.charts[chart].version
        assert "reconcileStrategy" not in spec
        assert spec["sourceRef"] == before["spec"]["chart"]["spec"]["sourceRef"]
        # every other field, and the key order, is what it was
        del before["spec"]["chart"]["spec"]["reconcileStrategy"]
        before["spec"]["chart"]["spec"]["version"] = spec["version"]
        assert after == before
        assert list(after["spec"]) == list(before["spec"])
        text = result.files[release_file(name)].decode()
        assert text.count("\n") == overlay[release_file(name)].decode().count("\n") - 1
    repo = docs(result.files, "base/charts/helm-repository.yaml")[0]
    assert repo["spec"]["url"] == f"oci://{REGISTRY}/{NAMESPACE}/charts"
    assert b"# OCI Helm repository" in result.files["base/charts/helm-repository.yaml"]
    assert b"# pinned by the publish step" in result.files[release_file("pgbouncer")]


def _release_names() -> list[str]:
    return sorted(p.stem for p in (ROOT / "flux" / "base" / "releases").glob("*.yaml"))


def test_digest_pin_adds_one_oci_repository_per_chart(overlay: dict[str, bytes]) -> None:
    charts = chart_set()
    result = render_bundle(overlay, charts, "digest")
    repo_docs = docs(result.files, "base/charts/helm-repository.yaml")
    assert repo_docs[0]["kind"] == "HelmRepository"
    oci = {d["metadata"]["name"]: d for d in repo_docs[1:]}
    assert sorted(oci) == sorted(f"alga-charts-{c}" for c in KNOWN_CHARTS)
    for chart in KNOWN_CHARTS:
        d = oci[f"alga-charts-{chart}"]
        assert d["apiVersion"] == "source.toolkit.fluxcd.io/v1"
        assert d["metadata"]["namespace"] == "flux-system"
        assert d["spec"]["url"] == f"oci://{REGISTRY}/{NAMESPACE}/charts/{chart}"
        assert d["spec"]["ref"] == {"digest": str(charts.charts[chart].digest)}
        assert d["spec"]["layerSelector"] == {
            "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            "operation": "copy",
        }
    hr = docs(result.files, release_file("alga-core"))[0]
    assert "chart" not in hr["spec"]
    assert hr["spec"]["chartRef"] == {
        "kind": "OCIRepository",
        "name": "alga-charts-sebastian",
        "namespace": "flux-system",
    }
    assert list(hr["spec"])[3] == "chartRef"  # where spec.chart was


def test_unused_published_chart_is_a_warning(overlay: dict[str, bytes]) -> None:
    charts = chart_set()
    extra = PublishedChart("redis", "1.0.0", Digest("sha256", "f" * 64), "x")
    charts = ChartSet(REGISTRY, NAMESPACE, {**charts.charts, "redis": extra})
    result = render_bundle(overlay, charts, "version")
    assert result.warnings == (
        "chart redis 1.0.0 was published but no HelmRelease in the bundle uses it",
    )


def _edit(overlay: dict[str, bytes], path: str, old: str, new: str) -> dict[str, bytes]:
    text = overlay[path].decode()
    assert old in text
    return {**overlay, path: text.replace(old, new).encode()}


GIT_RELEASE = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: alga-psa, namespace: flux-system}
spec: {url: https://github.com/Nine-Minds/alga-psa, interval: 5m, ref: {branch: main}}
"""


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (
            lambda o: _edit(o, release_file("temporal"), "chart: temporal", "chart: nginx"),
            "installs chart 'nginx', which this release did not publish",
        ),
        (
            lambda o: _edit(
                o,
                release_file("pgbouncer"),
                "chart: pgbouncer\n",
                "chart: ./ee/helm/pgbouncer\n",
            ),
            "is git-coupled: chart './ee/helm/pgbouncer'",
        ),
        (
            lambda o: _edit(
                o,
                release_file("pgbouncer"),
                "kind: HelmRepository\n        name: alga-charts",
                "kind: GitRepository\n        name: alga-psa",
            ),
            "is git-coupled: chart 'pgbouncer' from a GitRepository source",
        ),
        (
            lambda o: {**o, "base/git.yaml": GIT_RELEASE.encode()},
            "GitRepository flux-system/alga-psa: a git source in the bundle",
        ),
        (
            lambda o: _edit(
                o, "base/flux/kustomizations.yaml", "name: alga-appliance\n", "name: x\n"
            ),
            "Flux Kustomization flux-system/alga-platform must read the bundle itself",
        ),
        (
            lambda o: _edit(o, "base/charts/helm-repository.yaml", "  type: oci\n", ""),
            "is not 'type: oci'",
        ),
        (
            lambda o: _edit(o, "base/charts/helm-repository.yaml", "name: alga-charts", "name: c"),
            "sourceRef names HelmRepository flux-system/alga-charts, which the overlay does not",
        ),
    ],
)
def test_refusals(overlay: dict[str, bytes], change: Any, expect: str) -> None:
    with pytest.raises(BadInput) as err:
        render_bundle(change(overlay), chart_set(), "version")
    assert expect in err.value.message
    assert err.value.hint


def test_all_problems_are_reported_at_once(overlay: dict[str, bytes]) -> None:
    bad = _edit(overlay, release_file("temporal"), "chart: temporal", "chart: nginx")
    bad = {**bad, "base/git.yaml": GIT_RELEASE.encode()}
    with pytest.raises(BadInput) as err:
        render_bundle(bad, chart_set(), "version")
    assert err.value.message.startswith("2 problems in the overlay:")
    assert "nginx" in err.value.message and "GitRepository" in err.value.message


def test_unpublished_chart_is_refused_even_if_others_are(overlay: dict[str, bytes]) -> None:
    with pytest.raises(BadInput, match="'temporal', which this release did not publish"):
        render_bundle(
            overlay, chart_set(tuple(c for c in KNOWN_CHARTS if c != "temporal")), "version"
        )


def test_charts_json_must_match_registry_and_namespace() -> None:
    entry = {
        "version": "0.1.0-c0123456789",
        "digest": "sha256:" + "a" * 64,
        "repository": f"{REGISTRY}/{NAMESPACE}/charts/pgbouncer",
        "status": "pushed",
    }
    ok = parse_charts_json({"charts": {"pgbouncer": entry}}, "charts.json", REGISTRY, NAMESPACE)
    assert ok.charts["pgbouncer"].digest == Digest("sha256", "a" * 64)
    assert ok.helm_repository_url == f"oci://{REGISTRY}/{NAMESPACE}/charts"
    with pytest.raises(BadInput, match="does not match this publish"):
        parse_charts_json({"charts": {"pgbouncer": entry}}, "charts.json", "ghcr.io", NAMESPACE)
    with pytest.raises(BadInput, match="does not match this publish"):
        parse_charts_json({"charts": {"pgbouncer": entry}}, "charts.json", REGISTRY, "other")
    for bad, message in [
        ({"charts": {"pgbouncer": {**entry, "status": "would-push"}}}, "was not published"),
        ({"charts": {"pgbouncer": entry}, "dryRun": True}, "dry run"),
        ({"charts": {"pgbouncer": {**entry, "digest": "sha256:zz"}}}, "invalid digest"),
        ({"charts": {"pgbouncer": {**entry, "version": "1.2"}}}, "1.2"),
        ({"charts": {}}, "empty"),
        ([], "'charts' mapping"),
    ]:
        with pytest.raises(BadInput, match=message):
            parse_charts_json(bad, "charts.json", REGISTRY, NAMESPACE)


def test_kustomize_dir_checks() -> None:
    files = {"base/kustomization.yaml": b"", "base/empty/x.yaml": b"", "README.md": b""}
    assert check_kustomize_dir(files, KustomizationRef("base", "k")) is None
    missing = check_kustomize_dir(files, KustomizationRef("base/nope", "k"))
    assert missing is not None and "not a folder of the bundle" in missing
    bare = check_kustomize_dir(files, KustomizationRef("base/empty", "k"))
    assert bare is not None and "without kustomization.yaml" in bare
    root = check_kustomize_dir(files, KustomizationRef("", "k"))
    assert root is not None and "the bundle root" in root


def test_flux_path_may_not_leave_the_bundle(overlay: dict[str, bytes]) -> None:
    bad = _edit(overlay, "base/flux/kustomizations.yaml", "path: ./base/core", "path: ../x")
    with pytest.raises(BadInput, match="leaves the bundle"):
        render_bundle(bad, chart_set(), "version")
    result = render_bundle(overlay, chart_set(), "version")
    assert sorted(k.path for k in result.kustomizations) == [
        "base/background",
        "base/core",
        "base/platform",
    ]


HELM_REPO = {
    "apiVersion": "source.toolkit.fluxcd.io/v1",
    "kind": "HelmRepository",
    "metadata": {"name": "alga-charts", "namespace": "flux-system"},
    "spec": {"type": "oci", "url": f"oci://{REGISTRY}/{NAMESPACE}/charts"},
}


def helm_release(**chart_spec: Any) -> dict[str, Any]:
    spec = {
        "chart": "pgbouncer",
        "version": chart_set().charts["pgbouncer"].version,
        "sourceRef": {"kind": "HelmRepository", "name": "alga-charts", "namespace": "flux-system"},
        **chart_spec,
    }
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "pgbouncer", "namespace": "alga-system"},
        "spec": {"interval": "10m", "chart": {"spec": spec}},
    }


def test_built_objects_pass_when_pinned() -> None:
    assert (
        check_built_objects(
            {"base": [HELM_REPO], "base/core": [helm_release()]}, chart_set(), "version"
        )
        == []
    )


@pytest.mark.parametrize(
    ("objects", "expect"),
    [
        ([{**helm_release(), "apiVersion": "helm.toolkit.fluxcd.io/v2beta1"}], "expected 'helm"),
        ([helm_release(version="0.1.0")], "expected the published"),
        ([helm_release(reconcileStrategy="Revision")], "reconcileStrategy Revision"),
        ([{**HELM_REPO, "spec": {"type": "oci", "url": "oci://ghcr.io/x"}}, helm_release()], "url"),
        (
            [
                {
                    "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                    "kind": "Kustomization",
                    "metadata": {"name": "k", "namespace": "flux-system"},
                    "spec": {
                        "interval": "1m",
                        "sourceRef": {"kind": "OCIRepository", "name": "alga-appliance"},
                    },
                }
            ],
            "spec.prune is missing",
        ),
        (
            [
                {
                    "apiVersion": "notification.toolkit.fluxcd.io/v1",
                    "kind": "Receiver",
                    "metadata": {"name": "r"},
                }
            ],
            "unexpected Flux kind",
        ),
    ],
)
def test_built_object_problems(objects: list[Any], expect: str) -> None:
    built = {"base": [HELM_REPO, *[o for o in objects if o.get("kind") != "HelmRepository"]]}
    if any(o.get("kind") == "HelmRepository" for o in objects):
        built = {"base": objects}
    problems = check_built_objects(built, chart_set(), "version")
    assert any(expect in p for p in problems), problems


def test_rendering_is_pure_and_idempotent(overlay: dict[str, bytes]) -> None:
    snapshot = dict(overlay)
    first = render_bundle(overlay, chart_set(), "version")
    assert overlay == snapshot  # the input is not touched
    assert render_bundle(overlay, chart_set(), "version") == first
    again = render_bundle(first.files, chart_set(), "version")
    assert again.changed == ()
    assert again.files == first.files


def test_human_summary() -> None:
    from steps.bundle.publish import human_summary

    result = {
        "repository": "r/nine-minds/alga-appliance-config",
        "tag": "1.0.0",
        "digest": "sha256:" + "a" * 64,
        "status": "pushed",
    }
    assert (
        human_summary(result)
        == f"r/nine-minds/alga-appliance-config:1.0.0 pushed sha256:{'a' * 64}"
    )
    dry = {**result, "status": "would-push", "dryRun": True, "directory": "/d", "changed": ["x"]}
    text = human_summary({**dry, "diff": "--- a/x\n+++ b/x\n"})
    assert text.startswith(
        "--- a/x\n+++ b/x\ndry run: 1 file(s) rewritten; the rendered bundle is in /d\n"
    )


def test_values_keys_follow_the_release_profile() -> None:
    """The appliance keys the values ConfigMaps by the release's profile; every
    HelmRelease must read that profile's key."""
    from steps.bundle.flux import ChartSet, PublishedChart, render_bundle
    from steps.bundle.publish import read_overlay
    from steps.oci.reference import Digest

    root = Path(__file__).resolve().parents[3] / "flux"
    files = read_overlay(root)
    charts = ChartSet(
        registry="127.0.0.1:5000",
        namespace="nine-minds",
        charts={
            name: PublishedChart(
                name,
                "0.1.0-c0123456789",
                Digest.parse("sha256:" + "a" * 64),
                f"127.0.0.1:5000/nine-minds/charts/{name}",
            )
            for name in (
                "sebastian",
                "pgbouncer",
                "temporal",
                "temporal-worker",
                "workflow-worker",
                "email-service",
            )
        },
    )
    same = render_bundle(files, charts, "version", "single-node")
    talos = render_bundle(files, charts, "version", "talos-single-node")
    release = "base/releases/email-service.yaml"
    assert b"valuesKey: email-service.single-node.yaml" in same.files[release]
    assert b"valuesKey: email-service.talos-single-node.yaml" in talos.files[release]
    assert b"single-node.yaml" not in talos.files[release].replace(b"talos-single-node", b"")
    assert talos.reserialised == ()  # a line edit, comments kept


def test_kustomization_paths_must_stay_inside_the_bundle() -> None:
    """Validation builds without kustomize's load restriction (Flux needs ../releases), so an
    absolute path or a ../ past the root would be read from the validating machine while
    Flux refuses the bundle: both are refused up front, with file and line."""
    from steps.bundle.flux import kustomize_path_problems
    from steps.bundle.publish import read_overlay
    from steps.bundle.yamledit import parse_yaml

    root = Path(__file__).resolve().parents[3] / "flux"
    files = read_overlay(root)
    parsed = [parse_yaml(p, d) for p, d in files.items() if p.endswith((".yaml", ".yml"))]
    assert kustomize_path_problems(parsed) == []  # ../releases from base/core is inside
    bad = parse_yaml(
        "base/core/kustomization.yaml",
        b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
        b"  - ../releases/alga-core.yaml\n  - /etc/passwd\n  - ../../../outside.yaml\n"
        b"configMapGenerator:\n  - name: x\n    files:\n      - token=../../../../var/run/t\n"
        b"helmCharts:\n  - name: nginx\n",
    )
    problems = kustomize_path_problems([bad])
    assert len(problems) == 4, problems
    assert all(p.startswith("base/core/kustomization.yaml:1:") for p in problems)
    assert any("'/etc/passwd'" in p for p in problems)
    assert any("configMapGenerator[].files" in p for p in problems)
    assert any("helmCharts" in p for p in problems)
