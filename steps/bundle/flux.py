"""The overlay rewrite and the Flux rules a bundle must follow (pure).

:func:`render_bundle` takes the overlay's files (relative path -> bytes), the charts this
release published (:class:`ChartSet`, read from ``charts.json``) and the pin mode, and
returns the bundle's files. It changes only:

* each HelmRelease whose ``spec.chart.spec.chart`` is a published chart:
  ``--chart-pin version`` sets ``spec.chart.spec.version`` to the published version and
  removes ``reconcileStrategy: Revision`` (meaningful only for git/bucket sources); the
  sourceRef stays the OCI HelmRepository. ``--chart-pin digest`` replaces ``spec.chart``
  by ``spec.chartRef`` to an OCIRepository that pins the chart's manifest digest;
* the OCI HelmRepository those HelmReleases use: ``spec.url`` becomes
  ``oci://<registry>/<namespace>/charts`` of this publish;
* with ``--chart-pin digest``, one OCIRepository per used chart, appended to the file
  that holds the HelmRepository (same namespace, named ``<helmrepository>-<chart>``):
  ``url: oci://<registry>/<namespace>/charts/<chart>``, ``ref.digest`` the chart's
  manifest digest, ``layerSelector`` the Helm chart layer with ``operation: copy`` (what
  helm-controller needs to use an OCIRepository as a chart source).

With ``verify_charts`` every pinned chart source also gets Flux's signature verification
(:func:`chart_verification`: provider ``cosign``, the Secret :data:`TRUSTED_KEYS_SECRET`):
``spec.chart.spec.verify`` of the HelmRelease (version pin; helm-controller copies it into
the HelmChart it creates) or ``spec.verify`` of the chart's OCIRepository (digest pin).
Flux reads that Secret from the verifying object's namespace -- the HelmChart's, which
helm-controller creates in its HelmRepository's namespace, or the OCIRepository's, next to
the HelmRepository -- and the appliance renders it (with its trusted keys, the consume
library's ``render_trusted_keys_secret``) in ``flux-system`` only: a chart source in
another namespace is refused.

Every other field, document and file is kept (see :mod:`steps.bundle_yaml` for how the
text is preserved). It refuses (:class:`BadInput`, all problems in one message): a
HelmRelease whose chart was not published, a ``GitRepository`` anywhere, a HelmRelease
sourced from git or a bucket or naming a chart folder (``chart: ./path``, the old
git-coupled form), a HelmRelease not using an OCI HelmRepository of the bundle, a Flux
Kustomization whose sourceRef is not the ``OCIRepository alga-appliance`` (flux-system)
the appliance creates. A published chart that no HelmRelease uses is a warning.

:func:`check_built_objects` checks what kustomize builds (what Flux would apply): every
Flux object has the expected apiVersion, kind and required fields, and every HelmRelease
resolves to exactly the published chart (version, or OCIRepository digest), from this
registry. :func:`check_kustomize_dir` checks that a folder a Flux Kustomization names
exists and holds a kustomization file (Flux would silently generate one; we refuse).

No file system, network or subprocess here: :mod:`steps.bundle` does the I/O.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from steps.bundle.yamledit import (
    DeleteKey,
    Edit,
    KeyPath,
    ReplaceKey,
    SetScalar,
    YamlFile,
    get_path,
    is_yaml,
    parse_yaml,
    render_file,
)
from steps.charts import package as chartpkg
from steps.errors import BadInput
from steps.oci import mediatypes as mt
from steps.oci.errors import InvalidReference
from steps.oci.reference import Digest, check_repository

PinMode = Literal["version", "digest"]
PIN_MODES: tuple[PinMode, ...] = ("version", "digest")

#: The Flux kinds a bundle may hold, and the one apiVersion accepted for each.
FLUX_API_VERSIONS: dict[str, str] = {
    "HelmRelease": "helm.toolkit.fluxcd.io/v2",
    "HelmRepository": "source.toolkit.fluxcd.io/v1",
    "OCIRepository": "source.toolkit.fluxcd.io/v1",
    "Kustomization": "kustomize.toolkit.fluxcd.io/v1",
}
FLUX_GROUP_SUFFIX = ".toolkit.fluxcd.io"
#: What the appliance creates and points ``Kustomization alga-appliance`` (path ./base) at.
APPLIANCE_SOURCE_KIND = "OCIRepository"
APPLIANCE_SOURCE_NAME = "alga-appliance"
APPLIANCE_NAMESPACE = "flux-system"
BASE_PATH = "base"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
DEFAULT_INTERVAL = "10m"
#: The Secret of trusted public keys the appliance renders in flux-system (the consume
#: library's ``TRUSTED_KEYS_SECRET``); chart verification reads it.
TRUSTED_KEYS_SECRET = "alga-appliance-trusted-keys"

_GIT_HINT = (
    "appliances install with no git: point the HelmRelease at the OCI HelmRepository "
    "(sourceRef kind HelmRepository, chart: <chart name>) and delete git sources"
)


# -- published charts ---------------------------------------------------------


@dataclass(frozen=True)
class PublishedChart:
    name: str
    version: str
    digest: Digest
    repository: str  # <registry>/<namespace>/charts/<name>, no scheme


@dataclass(frozen=True)
class ChartSet:
    """The charts this release published, and where to."""

    registry: str
    namespace: str
    charts: Mapping[str, PublishedChart]

    @property
    def helm_repository_url(self) -> str:
        return f"oci://{self.registry}/{self.namespace}/charts"


def parse_charts_json(
    data: object, origin: str, registry: str, namespace: str, *, dry_run: bool = False
) -> ChartSet:
    """Validate what ``charts publish --out`` wrote; its repositories must be
    ``<registry>/<namespace>/charts/<name>`` of this command. A dry run's plan is
    accepted only by a dry run (``dry_run``): a real bundle must pin pushed charts."""
    if not isinstance(data, dict) or not isinstance(data.get("charts"), dict):
        raise BadInput(
            f"{origin}: expected a JSON object with a 'charts' mapping "
            "(what `alga-release charts publish --out FILE` writes)",
            hint="pass the --out file of charts publish",
        )
    if data.get("dryRun") and not dry_run:
        raise BadInput(
            f"{origin} is the result of a dry run: its charts were not pushed",
            hint="run `alga-release charts publish` without --dry-run and pass its --out file",
        )
    raw: dict[str, Any] = data["charts"]
    if not raw:
        raise BadInput(f"{origin}: 'charts' is empty", hint="publish the charts first")
    charts: dict[str, PublishedChart] = {}
    for name, entry in sorted(raw.items()):
        where = f"{origin}: charts.{name}"
        if not isinstance(entry, dict):
            raise BadInput(f"{where} must be an object")
        try:
            check_repository(f"{namespace}/charts/{name}")
        except InvalidReference:
            raise BadInput(f"{where}: {name!r} is not a valid chart repository name") from None
        version = entry.get("version")
        if not isinstance(version, str):
            raise BadInput(f"{where}: 'version' must be a string")
        try:
            chartpkg.check_version(version)
        except BadInput as exc:
            raise BadInput(f"{where}: {exc.message}", hint=exc.hint) from None
        digest_text = entry.get("digest")
        if not isinstance(digest_text, str):
            raise BadInput(f"{where}: 'digest' must be a 'sha256:<64 hex>' string")
        digest = Digest.parse_for(digest_text, where, BadInput)
        expected = f"{registry}/{namespace}/charts/{name}"
        repository = entry.get("repository")
        if repository != expected:
            raise BadInput(
                f"{where}: repository {repository!r} does not match this publish: "
                f"expected {expected!r} (--registry {registry} --namespace {namespace})",
                hint="pass the same --registry and --namespace as to `charts publish`, or "
                "re-publish the charts to this registry",
            )
        status = entry.get("status", "pushed")
        if status not in ("pushed", "unchanged") and not (dry_run and status == "would-push"):
            raise BadInput(
                f"{where}: status {status!r}: the chart was not published",
                hint="pass the --out file of a real `charts publish` run",
            )
        charts[name] = PublishedChart(name, version, digest, expected)
    return ChartSet(registry, namespace, charts)


# -- objects ------------------------------------------------------------------


@dataclass(frozen=True)
class KubeObject:
    """A top-level document with apiVersion and kind, and where it came from."""

    where: str
    api_version: str
    kind: str
    doc: dict[str, Any]
    path: str = ""  # file, when it comes from the overlay
    index: int = -1  # document index in that file

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def is_flux(self) -> bool:
        return self.group.endswith(FLUX_GROUP_SUFFIX)

    @property
    def name(self) -> str | None:
        value = get_path(self.doc, ("metadata", "name"))
        return value if isinstance(value, str) else None

    @property
    def namespace(self) -> str | None:
        value = get_path(self.doc, ("metadata", "namespace"))
        return value if isinstance(value, str) else None

    @property
    def label(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.name or '<no name>'}"


def objects_of(docs: Iterable[tuple[str, object]]) -> list[KubeObject]:
    """Every (where, document) that is a Kubernetes object (apiVersion and kind strings)."""
    out = []
    for where, doc in docs:
        if isinstance(doc, dict):
            api, kind = doc.get("apiVersion"), doc.get("kind")
            if isinstance(api, str) and isinstance(kind, str):
                out.append(KubeObject(where, api, kind, doc))
    return out


def helm_release_charts(files: Mapping[str, bytes]) -> dict[str, str]:
    """HelmRelease name -> the chart it installs, for every HelmRelease in ``files``
    (a chart named by ``spec.chart.spec.chart``; ``alga-core`` installs ``sebastian``)."""
    parsed = [parse_yaml(p, data) for p, data in sorted(files.items()) if is_yaml(p)]
    out: dict[str, str] = {}
    for obj in file_objects(parsed):
        if obj.is_flux and obj.kind == "HelmRelease" and obj.name:
            chart = get_path(obj.doc, ("spec", "chart", "spec", "chart"))
            if isinstance(chart, str) and chart:
                out[obj.name] = chart
    return out


def file_objects(files: Iterable[YamlFile]) -> list[KubeObject]:
    out = []
    for f in files:
        for i, doc in enumerate(f.docs):
            for obj in objects_of([(f"{f.path}:{f.line_of(i)}", doc)]):
                out.append(KubeObject(obj.where, obj.api_version, obj.kind, obj.doc, f.path, i))
    return out


# -- the rewrite ----------------------------------------------------------------


@dataclass(frozen=True)
class KustomizationRef:
    """A Flux Kustomization naming a folder of the bundle."""

    path: str  # normalised, relative to the bundle root ("" = the root)
    who: str


@dataclass(frozen=True)
class RenderResult:
    files: dict[str, bytes]
    changed: tuple[str, ...]
    #: changed files whose comments could not be kept (re-serialised by PyYAML)
    reserialised: tuple[str, ...]
    used_charts: tuple[str, ...]
    warnings: tuple[str, ...]
    kustomizations: tuple[KustomizationRef, ...]


@dataclass
class _Problems:
    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, message: str, hint: str) -> None:
        self.items.append((message, hint))

    def raise_if_any(self, what: str) -> None:
        if not self.items:
            return
        if len(self.items) == 1:
            raise BadInput(self.items[0][0], hint=self.items[0][1])
        hints = list(dict.fromkeys(h for _, h in self.items))
        raise BadInput(
            f"{len(self.items)} problems in {what}:\n  - "
            + "\n  - ".join(m for m, _ in self.items),
            hint="\n        ".join(hints),
        )


def oci_repository_name(helm_repository: str, chart: str) -> str:
    return f"{helm_repository}-{chart}"


def chart_verification() -> dict[str, Any]:
    """What a chart source's ``verify`` holds: cosign, a static key from the trusted-keys
    Secret (Flux tries every ``*.pub`` entry; one that verifies is enough)."""
    return {"provider": "cosign", "secretRef": {"name": TRUSTED_KEYS_SECRET}}


_VALUES_KEY_RE = re.compile(r"^([a-z0-9-]+)\.[a-z0-9]([a-z0-9-]*[a-z0-9])?\.yaml$")


def render_bundle(
    files: Mapping[str, bytes],
    charts: ChartSet,
    pin: PinMode,
    values_profile: str | None = None,
    *,
    verify_charts: bool = False,
) -> RenderResult:
    """The bundle's files: ``files`` with HelmReleases pinned to ``charts`` (pure).

    With ``verify_charts``, each chart source verifies the chart's signature (see the
    module docstring).

    With ``values_profile``, every ``valuesFrom`` ConfigMap key of the form
    ``<name>.<profile>.yaml`` is pointed at that profile: the appliance creates
    the ConfigMap keys from the release's ``profileValues``, which are keyed by
    the release's profile, so a HelmRelease reading another profile's key would
    find nothing.
    """
    parsed = {p: parse_yaml(p, data) for p, data in sorted(files.items()) if is_yaml(p)}
    objects = file_objects(parsed.values())
    problems = _Problems()

    repos: list[KubeObject] = []
    for obj in objects:
        if not obj.is_flux:
            continue
        if obj.kind == "GitRepository":
            problems.add(
                f"{obj.where}: {obj.label}: a git source in the bundle (the old git-coupled form)",
                _GIT_HINT,
            )
        elif obj.kind == "HelmChart" and _is_chart_path(get_path(obj.doc, ("spec", "chart"))):
            problems.add(
                f"{obj.where}: {obj.label} names a chart folder "
                f"(chart: {get_path(obj.doc, ('spec', 'chart'))})",
                _GIT_HINT,
            )
        elif obj.kind == "HelmRepository":
            repos.append(obj)

    edits: dict[str, dict[int, list[Edit]]] = {}
    used: dict[str, list[str]] = {}  # chart -> HelmReleases using it
    used_repos: dict[tuple[str, int], KubeObject] = {}
    charts_by_repo: dict[tuple[str, int], set[str]] = {}
    appended: dict[str, list[dict[str, Any]]] = {}

    def add_edit(obj: KubeObject, edit: Edit) -> None:
        edits.setdefault(obj.path, {}).setdefault(obj.index, []).append(edit)

    for obj in objects:
        if obj.is_flux and obj.kind == "HelmRelease":
            repo = _check_helm_release(obj, charts, repos, problems)
            if repo is None:
                continue
            chart = str(get_path(obj.doc, ("spec", "chart", "spec", "chart")))
            used.setdefault(chart, []).append(obj.label)
            used_repos[(repo.path, repo.index)] = repo
            charts_by_repo.setdefault((repo.path, repo.index), set()).add(chart)
            published = charts.charts[chart]
            if verify_charts and repo.namespace != APPLIANCE_NAMESPACE:
                problems.add(
                    f"{repo.where}: {repo.label}, used by HelmRelease {obj.name}, is not in "
                    f"{APPLIANCE_NAMESPACE}: Flux reads a chart's verification Secret from the "
                    "HelmRepository's namespace, and the appliance creates "
                    f"{TRUSTED_KEYS_SECRET} in {APPLIANCE_NAMESPACE} only",
                    f"move the HelmRepository to {APPLIANCE_NAMESPACE}, or publish without "
                    "--verify-charts",
                )
                continue
            if pin == "version":
                if get_path(obj.doc, ("spec", "chart", "spec", "version")) != published.version:
                    add_edit(
                        obj, SetScalar(("spec", "chart", "spec", "version"), published.version)
                    )
                if get_path(obj.doc, ("spec", "chart", "spec", "reconcileStrategy")) == "Revision":
                    add_edit(obj, DeleteKey(("spec", "chart", "spec", "reconcileStrategy")))
                verify_path = ("spec", "chart", "spec", "verify")
                if verify_charts and get_path(obj.doc, verify_path) != chart_verification():
                    add_edit(obj, ReplaceKey(verify_path, "verify", chart_verification()))
            else:
                ref = {
                    "kind": "OCIRepository",
                    "name": oci_repository_name(str(repo.name), chart),
                    "namespace": str(repo.namespace),
                }
                add_edit(obj, ReplaceKey(("spec", "chart"), "chartRef", ref))
            if values_profile:
                for key_path, value in _values_key_edits(obj, values_profile):
                    add_edit(obj, SetScalar(key_path, value))
        elif obj.is_flux and obj.kind == "Kustomization":
            _check_flux_kustomization(obj, problems)

    for repo in used_repos.values():
        if get_path(repo.doc, ("spec", "url")) != charts.helm_repository_url:
            add_edit(repo, SetScalar(("spec", "url"), charts.helm_repository_url))

    if pin == "digest":
        existing = {(o.kind, o.namespace, o.name) for o in objects}
        for key in sorted(used_repos):
            repo = used_repos[key]
            for chart in sorted(charts_by_repo[key]):
                name = oci_repository_name(str(repo.name), chart)
                if ("OCIRepository", repo.namespace, name) in existing:
                    problems.add(
                        f"{repo.where}: OCIRepository {repo.namespace}/{name} already exists "
                        "in the overlay",
                        "--chart-pin digest adds it; remove it from the overlay (or publish "
                        "with --chart-pin version)",
                    )
                    continue
                appended.setdefault(repo.path, []).append(
                    chart_oci_repository(repo, charts.charts[chart], verify=verify_charts)
                )

    problems.raise_if_any("the overlay")

    kustomizations = tuple(_kustomization_refs(objects, problems))
    for message in kustomize_path_problems(parsed.values()):
        problems.add(message, _INSIDE_HINT)
    problems.raise_if_any("the overlay")

    out = dict(files)
    changed: list[str] = []
    reserialised: list[str] = []
    for path in sorted(set(edits) | set(appended)):
        rendered = render_file(parsed[path], edits.get(path, {}), appended.get(path, ()))
        if rendered.data != files[path]:
            out[path] = rendered.data
            changed.append(path)
            if rendered.how == "reserialised":
                reserialised.append(path)

    warnings = tuple(
        f"chart {name} {charts.charts[name].version} was published but no HelmRelease in "
        "the bundle uses it"
        for name in sorted(charts.charts)
        if name not in used
    )
    return RenderResult(
        files=out,
        changed=tuple(changed),
        reserialised=tuple(reserialised),
        used_charts=tuple(sorted(used)),
        warnings=warnings,
        kustomizations=kustomizations,
    )


def _values_key_edits(obj: KubeObject, profile: str) -> list[tuple[KeyPath, str]]:
    """valuesFrom ConfigMap keys of ``obj`` that must name ``profile`` instead."""
    out: list[tuple[KeyPath, str]] = []
    entries = get_path(obj.doc, ("spec", "valuesFrom"))
    if not isinstance(entries, list):
        return out
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("kind") != "ConfigMap":
            continue
        key = entry.get("valuesKey")
        match = _VALUES_KEY_RE.match(key) if isinstance(key, str) else None
        if match is None:
            continue
        wanted = f"{match.group(1)}.{profile}.yaml"
        if key != wanted:
            out.append((("spec", "valuesFrom", index, "valuesKey"), wanted))
    return out


_KUSTOMIZATION_FILES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})
_INSIDE_HINT = (
    "Flux builds a bundle with nothing outside it (kustomize-controller confines builds to "
    "the artifact): keep every referenced file inside the overlay, by a relative path"
)


def _kustomize_paths(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, path) for every file or folder a kustomization.yaml (or Component) names."""
    out: list[tuple[str, str]] = []

    def take(field_name: str, value: object) -> None:
        if isinstance(value, str) and value:
            out.append((field_name, value))

    for key in (
        "resources",
        "components",
        "bases",
        "crds",
        "patchesStrategicMerge",
        "transformers",
        "generators",
        "validators",
        "configurations",
    ):
        entries = doc.get(key)
        if isinstance(entries, list):
            for entry in entries:
                # an inline patch (a YAML text with a newline) is not a path
                if not (isinstance(entry, str) and "\n" in entry):
                    take(key, entry)
    for key in ("patches", "patchesJson6902", "replacements"):
        entries = doc.get(key)
        if isinstance(entries, list):
            for entry in entries:
                if isinstance(entry, dict):
                    take(f"{key}[].path", entry.get("path"))
    for key in ("configMapGenerator", "secretGenerator"):
        entries = doc.get(key)
        if isinstance(entries, list):
            for entry in entries:
                if not isinstance(entry, dict):
                    continue
                for sub in ("files", "envs"):
                    for item in entry.get(sub) or []:
                        if isinstance(item, str):
                            take(f"{key}[].{sub}", item.rpartition("=")[2])
                take(f"{key}[].env", entry.get("env"))
    openapi = doc.get("openapi")
    if isinstance(openapi, dict):
        take("openapi.path", openapi.get("path"))
    if doc.get("helmCharts") or doc.get("helmChartInflationGenerator"):
        out.append(("helmCharts", "<helm chart inflation>"))
    return out


def kustomize_path_problems(files: Iterable[YamlFile]) -> list[str]:
    """Paths in the overlay's kustomizations that leave the bundle (pure).

    Validation builds with ``--load-restrictor LoadRestrictionsNone`` (as Flux does for
    ``../releases``), which would also read an absolute path or a ``../`` past the root
    from the machine that validates; Flux would refuse the same bundle on every
    appliance. Remote URLs are left to kustomize.
    """
    problems: list[str] = []
    for f in files:
        if posixpath.basename(f.path) not in _KUSTOMIZATION_FILES:
            continue
        folder = posixpath.dirname(f.path)
        for index, doc in enumerate(f.docs):
            if not isinstance(doc, dict):
                continue
            where = f"{f.path}:{f.line_of(index)}"
            for field_name, value in _kustomize_paths(doc):
                if field_name == "helmCharts":
                    problems.append(
                        f"{where}: helmCharts inflation in the bundle (charts come from the "
                        "published OCI charts through HelmReleases)"
                    )
                    continue
                if "://" in value or value.startswith(("github.com/", "git@")):
                    continue
                resolved = posixpath.normpath(posixpath.join(folder, value))
                if value.startswith("/") or resolved == ".." or resolved.startswith("../"):
                    problems.append(f"{where}: {field_name} {value!r} is outside the bundle")
    return problems


def chart_oci_repository(
    repo: KubeObject, chart: PublishedChart, *, verify: bool = False
) -> dict[str, Any]:
    """The OCIRepository pinning ``chart`` by digest, next to the HelmRepository ``repo``;
    with ``verify``, checking the chart's signature (:func:`chart_verification`)."""
    interval = get_path(repo.doc, ("spec", "interval"))
    source: dict[str, Any] = {
        "apiVersion": FLUX_API_VERSIONS["OCIRepository"],
        "kind": "OCIRepository",
        "metadata": {
            "name": oci_repository_name(str(repo.name), chart.name),
            "namespace": repo.namespace,
        },
        "spec": {
            "interval": interval if isinstance(interval, str) else DEFAULT_INTERVAL,
            "url": f"oci://{chart.repository}",
            "ref": {"digest": str(chart.digest)},
            "layerSelector": {"mediaType": mt.HELM_CHART_LAYER, "operation": "copy"},
        },
    }
    if verify:
        source["spec"]["verify"] = chart_verification()
    return source


def _is_chart_path(chart: object) -> bool:
    return isinstance(chart, str) and ("/" in chart or chart.startswith("."))


def _uses_repo(hr: KubeObject, repo: KubeObject) -> bool:
    if hr.kind != "HelmRelease":
        return False
    ref = get_path(hr.doc, ("spec", "chart", "spec", "sourceRef"))
    if not isinstance(ref, dict) or ref.get("name") != repo.name:
        return False
    ns = ref.get("namespace") or hr.namespace
    return repo.namespace is None or ns == repo.namespace


def _check_helm_release(
    obj: KubeObject, charts: ChartSet, repos: Sequence[KubeObject], problems: _Problems
) -> KubeObject | None:
    """The OCI HelmRepository ``obj`` pulls a published chart from, or None (problem added)."""
    spec = obj.doc.get("spec")
    if not isinstance(spec, dict) or ("chart" not in spec and "chartRef" not in spec):
        return None  # a patch fragment; what kustomize builds is checked separately
    who = f"{obj.where}: HelmRelease {obj.name}"
    if "chartRef" in spec:
        problems.add(
            f"{who} uses spec.chartRef; the publish step pins charts named in spec.chart.spec",
            "name the chart in spec.chart.spec (chart, sourceRef: the OCI HelmRepository); "
            "use --chart-pin digest to get OCIRepository chartRefs",
        )
        return None
    chart_spec = get_path(spec, ("chart", "spec"))
    chart = get_path(chart_spec, ("chart",))
    if not isinstance(chart_spec, dict) or not isinstance(chart, str) or not chart:
        problems.add(f"{who} has no spec.chart.spec.chart", "name the chart to install")
        return None
    source = chart_spec.get("sourceRef")
    kind = source.get("kind") if isinstance(source, dict) else None
    if kind in ("GitRepository", "Bucket") or _is_chart_path(chart):
        problems.add(
            f"{who} is git-coupled: chart {chart!r} from a {kind or 'missing'} source",
            _GIT_HINT,
        )
        return None
    if chart not in charts.charts:
        problems.add(
            f"{who} installs chart {chart!r}, which this release did not publish "
            f"(charts.json has: {', '.join(sorted(charts.charts))})",
            "publish the chart with `alga-release charts publish` and pass its --out file, "
            "or remove the HelmRelease",
        )
        return None
    if kind != "HelmRepository" or not isinstance(source, dict):
        problems.add(
            f"{who}: spec.chart.spec.sourceRef must be the OCI HelmRepository, found kind {kind!r}",
            "set sourceRef to {kind: HelmRepository, name: <the OCI HelmRepository>}",
        )
        return None
    matches = [r for r in repos if _uses_repo(obj, r)]
    if len(matches) != 1:
        ns = source.get("namespace") or obj.namespace
        problems.add(
            f"{who}: sourceRef names HelmRepository {ns}/{source.get('name')}, which the "
            f"overlay {'does not hold' if not matches else 'holds more than once'}",
            "add the OCI HelmRepository to the overlay (base/charts/), or fix the sourceRef",
        )
        return None
    repo = matches[0]
    if get_path(repo.doc, ("spec", "type")) != "oci":
        problems.add(
            f"{repo.where}: {repo.label}, used by HelmRelease {obj.name}, is not "
            f"'type: oci' (found {get_path(repo.doc, ('spec', 'type'))!r})",
            "charts are published as OCI artifacts: set spec.type: oci",
        )
        return None
    if not repo.name or not repo.namespace:
        problems.add(
            f"{repo.where}: {repo.label} needs metadata.name and metadata.namespace",
            "set both; HelmReleases and OCIRepositories refer to it by namespace/name",
        )
        return None
    return repo


def _check_flux_kustomization(obj: KubeObject, problems: _Problems) -> None:
    ref = get_path(obj.doc, ("spec", "sourceRef"))
    kind = ref.get("kind") if isinstance(ref, dict) else None
    name = ref.get("name") if isinstance(ref, dict) else None
    ns = (ref.get("namespace") if isinstance(ref, dict) else None) or obj.namespace
    if (kind, name, ns) != (APPLIANCE_SOURCE_KIND, APPLIANCE_SOURCE_NAME, APPLIANCE_NAMESPACE):
        found = f"{kind} {ns}/{name}" if isinstance(ref, dict) else "no sourceRef"
        problems.add(
            f"{obj.where}: Flux {obj.label} must read the bundle itself "
            f"({APPLIANCE_SOURCE_KIND} {APPLIANCE_NAMESPACE}/{APPLIANCE_SOURCE_NAME}, which the "
            f"appliance creates), found {found}",
            f"set spec.sourceRef to {{kind: {APPLIANCE_SOURCE_KIND}, name: "
            f"{APPLIANCE_SOURCE_NAME}}} and keep the Kustomization in {APPLIANCE_NAMESPACE}",
        )


def _kustomization_refs(
    objects: Sequence[KubeObject], problems: _Problems
) -> list[KustomizationRef]:
    refs = []
    for obj in objects:
        if obj.is_flux and obj.kind == "Kustomization":
            ref = flux_path(obj, problems)
            if ref is not None:
                refs.append(ref)
    return refs


def flux_path(obj: KubeObject, problems: _Problems) -> KustomizationRef | None:
    """The bundle folder a Flux Kustomization builds (``spec.path``, default the root)."""
    raw = get_path(obj.doc, ("spec", "path"))
    who = f"Flux {obj.label} ({obj.where})"
    if raw is None:
        raw = "./"
    if not isinstance(raw, str):
        problems.add(f"{who}: spec.path must be a string", "use a path like ./base/core")
        return None
    rel = posixpath.normpath(raw.strip().lstrip("/") or ".")
    if rel == ".." or rel.startswith("../"):
        problems.add(
            f"{who}: spec.path {raw!r} leaves the bundle",
            "paths are relative to the bundle root (the overlay folder), e.g. ./base/core",
        )
        return None
    return KustomizationRef("" if rel == "." else rel, who)
