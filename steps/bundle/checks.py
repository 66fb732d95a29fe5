"""Checks on the rendered bundle (pure): a folder a Flux Kustomization names holds a
kustomization, and what kustomize builds from it (what Flux would apply) is pinned to the
published charts and keeps the Flux objects' schema."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from steps.bundle.flux import (
    _GIT_HINT,
    FLUX_API_VERSIONS,
    KUSTOMIZATION_FILES,
    ChartSet,
    KubeObject,
    KustomizationRef,
    PinMode,
    _check_flux_kustomization,
    _Problems,
    chart_verification,
    flux_path,
    objects_of,
)
from steps.bundle.yamledit import (
    get_path,
)
from steps.oci import mediatypes as mt

# -- checks on the rendered bundle ------------------------------------------------


def check_kustomize_dir(files: Mapping[str, bytes], ref: KustomizationRef) -> str | None:
    """A problem when ``ref.path`` is not a folder of the bundle with a kustomization file."""
    prefix = f"{ref.path}/" if ref.path else ""
    shown = f"./{ref.path}" if ref.path else "./ (the bundle root)"
    if not any(p.startswith(prefix) for p in files):
        return f"{ref.who} names {shown}, which is not a folder of the bundle"
    if not any(f"{prefix}{name}" in files for name in KUSTOMIZATION_FILES):
        return (
            f"{ref.who} names {shown}, a folder without kustomization.yaml "
            "(Flux would generate one from every YAML file in it; we refuse to guess)"
        )
    return None


def check_built_objects(
    built: Mapping[str, Sequence[object]],
    charts: ChartSet,
    pin: PinMode,
    *,
    verify_charts: bool = False,
) -> list[str]:
    """Problems in what kustomize built, per folder (what Flux would apply); with
    ``verify_charts``, a chart source that does not verify the chart's signature is one."""
    objects = objects_of(
        (f"build of ./{path or '.'}", doc) for path, docs in built.items() for doc in docs
    )
    problems: list[str] = []
    flux = [o for o in objects if o.is_flux]
    for obj in flux:
        problems.extend(_schema_problems(obj))
    by_key = {(o.kind, o.namespace, o.name): o for o in flux}
    for obj in flux:
        if obj.kind == "HelmRelease" and not _schema_problems(obj):
            problems.extend(_pin_problems(obj, by_key, charts, pin, verify_charts))
        if obj.kind == "Kustomization" and not _schema_problems(obj):
            sink = _Problems()
            _check_flux_kustomization(obj, sink)
            problems.extend(m for m, _ in sink.items)
    return list(dict.fromkeys(problems))


def _schema_problems(obj: KubeObject) -> list[str]:
    who = f"{obj.where}: {obj.label}"
    expected = FLUX_API_VERSIONS.get(obj.kind)
    if obj.kind == "GitRepository":
        return [f"{who}: a git source; {_GIT_HINT}"]
    if expected is None:
        return [
            f"{who}: unexpected Flux kind in the bundle (expected one of "
            f"{', '.join(sorted(FLUX_API_VERSIONS))})"
        ]
    if obj.api_version != expected:
        return [f"{who}: apiVersion {obj.api_version!r}, expected {expected!r}"]
    required: list[tuple[tuple[str, ...], type]] = [(("metadata", "name"), str)]
    if obj.kind == "HelmRelease":
        required.append((("spec", "interval"), str))
        has_chart = get_path(obj.doc, ("spec", "chart")) is not None
        has_ref = get_path(obj.doc, ("spec", "chartRef")) is not None
        if has_chart == has_ref:
            return [f"{who}: needs exactly one of spec.chart and spec.chartRef"]
        if has_chart:
            required += [
                (("spec", "chart", "spec", "chart"), str),
                (("spec", "chart", "spec", "sourceRef", "kind"), str),
                (("spec", "chart", "spec", "sourceRef", "name"), str),
            ]
        else:
            required += [(("spec", "chartRef", "kind"), str), (("spec", "chartRef", "name"), str)]
    elif obj.kind == "HelmRepository":
        required.append((("spec", "url"), str))
    elif obj.kind == "OCIRepository":
        required += [(("spec", "url"), str), (("spec", "interval"), str)]
    elif obj.kind == "Kustomization":
        required += [
            (("spec", "interval"), str),
            (("spec", "prune"), bool),
            (("spec", "sourceRef", "kind"), str),
            (("spec", "sourceRef", "name"), str),
        ]
    out = []
    for path, typ in required:
        value = get_path(obj.doc, path)
        if not isinstance(value, typ) or value == "":
            out.append(
                f"{who}: required field {'.'.join(path)} is missing or not a "
                f"{'boolean' if typ is bool else 'string'} (found {value!r})"
            )
    return out


def _pin_problems(
    hr: KubeObject,
    by_key: Mapping[tuple[str, str | None, str | None], KubeObject],
    charts: ChartSet,
    pin: PinMode,
    verify_charts: bool = False,
) -> list[str]:
    who = f"{hr.where}: {hr.label}"

    def lookup(kind: str, ref: Mapping[str, Any]) -> KubeObject | None:
        ns = ref.get("namespace") or hr.namespace
        found = by_key.get((kind, ns, ref.get("name")))
        if found is None:
            matches = [o for (k, _, n), o in by_key.items() if k == kind and n == ref.get("name")]
            found = matches[0] if len(matches) == 1 else None
        return found

    if pin == "version":
        spec = get_path(hr.doc, ("spec", "chart", "spec"))
        if not isinstance(spec, dict):
            return [f"{who}: expected spec.chart.spec (--chart-pin version)"]
        chart = spec.get("chart")
        published = charts.charts.get(str(chart))
        if published is None:
            return [f"{who}: chart {chart!r} was not published by this release"]
        out = []
        if spec.get("version") != published.version:
            out.append(
                f"{who}: chart {chart} version {spec.get('version')!r}, expected the "
                f"published {published.version!r} (a kustomize patch overrides it?)"
            )
        if spec.get("reconcileStrategy") == "Revision":
            out.append(f"{who}: reconcileStrategy Revision is left (a kustomize patch?)")
        if verify_charts and spec.get("verify") != chart_verification():
            out.append(f"{who} {_unverified('spec.chart.spec.verify')}")
        repo = lookup("HelmRepository", spec["sourceRef"])
        if repo is None:
            out.append(
                f"{who}: its HelmRepository {spec['sourceRef'].get('name')} is not in "
                "any kustomize build of the bundle"
            )
        elif get_path(repo.doc, ("spec", "url")) != charts.helm_repository_url:
            out.append(
                f"{who}: HelmRepository url {get_path(repo.doc, ('spec', 'url'))!r}, expected "
                f"{charts.helm_repository_url!r}"
            )
        return out
    ref = get_path(hr.doc, ("spec", "chartRef"))
    if not isinstance(ref, dict) or ref.get("kind") != "OCIRepository":
        return [f"{who}: expected spec.chartRef to an OCIRepository (--chart-pin digest)"]
    source = lookup("OCIRepository", ref)
    if source is None:
        return [f"{who}: its OCIRepository {ref.get('name')} is not in any kustomize build"]
    url = get_path(source.doc, ("spec", "url"))
    published = next((c for c in charts.charts.values() if url == f"oci://{c.repository}"), None)
    if published is None:
        return [f"{who}: OCIRepository url {url!r} is not a chart this release published"]
    out = []
    if get_path(source.doc, ("spec", "ref", "digest")) != str(published.digest):
        out.append(f"{who}: OCIRepository {source.name} does not pin {published.digest}")
    if get_path(source.doc, ("spec", "layerSelector")) != {
        "mediaType": mt.HELM_CHART_LAYER,
        "operation": "copy",
    }:
        out.append(
            f"{who}: OCIRepository {source.name} must select the Helm chart layer "
            "with operation copy"
        )
    if verify_charts and get_path(source.doc, ("spec", "verify")) != chart_verification():
        out.append(f"{who}: OCIRepository {source.name} {_unverified('spec.verify')}")
    return out


def _unverified(field: str) -> str:
    return (
        f"does not verify the chart's signature ({field} must be {chart_verification()}; "
        "a kustomize patch overrides it?)"
    )


def kustomizations_in(built_docs: Sequence[object], where: str) -> list[KustomizationRef]:
    """Flux Kustomizations found in one build's output (paths they name)."""
    sink = _Problems()
    refs = []
    for obj in objects_of((where, d) for d in built_docs):
        if obj.is_flux and obj.kind == "Kustomization":
            ref = flux_path(obj, sink)
            if ref is not None:
                refs.append(ref)
    return refs
