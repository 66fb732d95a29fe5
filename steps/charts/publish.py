"""Publish the appliance's Helm charts as immutable, reproducible OCI artifacts.

Two phases, so that bad input or a refused overwrite pushes nothing:

1. :func:`plan_charts` (no writes): package every chart deterministically
   (:mod:`steps.chartpkg`), choose its immutable version (:func:`choose_version`),
   build the Helm OCI manifest (:func:`helm_manifest`, pure) and compare it with
   what the registry already holds under that version.
2. :func:`push_plan`: upload the blobs the registry lacks and put each manifest.

Invariants: a version tag that exists with different chart content is never
overwritten (:class:`~steps.errors.Refused`, exit 3, both digests named); an
unchanged re-run uploads nothing and returns the same versions and digests;
every byte pushed is a function of the chart's files (the ``created``
annotation comes from the source revision, never from the clock).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from steps import archive, sourcetime
from steps.archive import tar_files
from steps.charts import package as chartpkg
from steps.config import ReleaseConfig
from steps.errors import BadInput, Refused
from steps.oci import mediatypes as mt
from steps.oci.reference import Digest, check_repository

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient
    from steps.oci.model import ManifestReader
    from steps.signing.cosign import Signer

log = logging.getLogger("alga_release.charts")

VersionPolicy = Literal["content", "exact"]

#: OCI annotation keys helm push sets besides those in :mod:`steps.oci.mediatypes`.
ANNOTATION_URL = "org.opencontainers.image.url"
ANNOTATION_AUTHORS = "org.opencontainers.image.authors"
#: Keys a chart's own annotations cannot override (helm's ``immutableOciAnnotations``).
_IMMUTABLE_ANNOTATIONS = (mt.ANNOTATION_VERSION, mt.ANNOTATION_TITLE)


@dataclass(frozen=True)
class ChartArtifact:
    """One chart, packaged and ready to push: exact bytes and their digests."""

    name: str
    version: str
    base_version: str
    source_dir: Path
    blob: archive.Blob  # the .tgz: in memory while small, else a temporary file
    config: bytes
    manifest: bytes
    digest: Digest

    @property
    def tarball(self) -> bytes:
        return self.blob.read()

    @property
    def layer_digest(self) -> Digest:
        return Digest.parse(f"sha256:{self.blob.sha256}")

    @property
    def config_digest(self) -> Digest:
        return Digest.of(self.config)


@dataclass(frozen=True)
class PlannedChart:
    artifact: ChartArtifact
    repository: str
    #: "new" (to push), "unchanged" (same digest already tagged),
    #: "equivalent" (same chart content already tagged, other annotations: keep it)
    state: Literal["new", "unchanged", "equivalent"]
    digest: Digest  # what the tag will point at after the push


@dataclass(frozen=True)
class ChartResult:
    name: str
    version: str
    digest: Digest
    repository: str  # registry/namespace/charts/name
    status: Literal["pushed", "unchanged"]
    signed_by: str | None = None  # key id of the signer, when signed

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.version}@{self.digest}"

    def to_json(self) -> dict[str, str]:
        out = {
            "version": self.version,
            "digest": str(self.digest),
            "reference": self.reference,
            "repository": self.repository,
            "status": self.status,
        }
        if self.signed_by:
            out["signedBy"] = self.signed_by
        return out


# -- pure -------------------------------------------------------------------


def choose_version(base: str, content_hash: str, policy: VersionPolicy) -> str:
    """The version a chart is published under."""
    if policy == "exact":
        return base
    return chartpkg.immutable_version(base, content_hash)


def helm_annotations(
    metadata: Mapping[str, Any], *, name: str, version: str, created: str
) -> dict[str, str]:
    """The manifest annotations ``helm push`` writes for a chart (pure).

    As helm v4's registry client builds them (``pkg/registry/chart.go``, the same in
    v3.17): ``description``, ``title`` (the name), ``version``, ``url`` (``home``),
    ``created``, ``source`` (``sources[0]``) and ``authors`` (every maintainer as
    ``Name (email)``, joined by ``", "``), each only when not blank; then every entry of
    Chart.yaml's ``annotations`` except ``version`` and ``title``, which may override the
    others. ``created`` is ours: helm takes the archive file's mtime, we take the source
    commit time, so the bytes stay a function of the content. Values that are not
    strings (helm cannot load them) are left out.
    """
    out: dict[str, str] = {}

    def add(key: str, value: object) -> None:
        if isinstance(value, str) and value.strip():
            out[key] = value

    add(mt.ANNOTATION_DESCRIPTION, metadata.get("description"))
    add(mt.ANNOTATION_TITLE, name)
    add(mt.ANNOTATION_VERSION, version)
    add(ANNOTATION_URL, metadata.get("home"))
    add(mt.ANNOTATION_CREATED, created)
    sources = metadata.get("sources")
    if isinstance(sources, list) and sources:
        add(mt.ANNOTATION_SOURCE, sources[0])
    maintainers = metadata.get("maintainers")
    if isinstance(maintainers, list) and maintainers:
        people = []
        for person in maintainers:
            entry = person if isinstance(person, Mapping) else {}
            who = entry.get("name")
            text = who if isinstance(who, str) else ""
            email = entry.get("email")
            if isinstance(email, str) and email:
                text = f"{text} ({email})"
            people.append(text)
        add(ANNOTATION_AUTHORS, ", ".join(people))
    own = metadata.get("annotations")
    if isinstance(own, Mapping):
        for key, value in own.items():
            if (
                isinstance(key, str)
                and isinstance(value, str)
                and key not in _IMMUTABLE_ANNOTATIONS
            ):
                out[key] = value
    return out


def helm_manifest(
    *,
    config: bytes,
    tarball: bytes | archive.Blob,
    name: str,
    version: str,
    description: str | None = None,
    created: str,
    metadata: Mapping[str, Any] | None = None,
) -> bytes:
    """The OCI image manifest of a Helm chart, as canonical JSON bytes (pure). Its
    annotations are :func:`helm_annotations` of ``metadata`` (Chart.yaml), or, without
    it, only created, title, version and ``description``."""
    chart = dict(metadata) if metadata is not None else {"description": description}
    annotations = helm_annotations(chart, name=name, version=version, created=created)
    if isinstance(tarball, archive.Blob):
        layer_digest, layer_size = f"sha256:{tarball.sha256}", tarball.size
    else:
        layer_digest, layer_size = str(Digest.of(tarball)), len(tarball)
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {
            "mediaType": mt.HELM_CONFIG,
            "digest": str(Digest.of(config)),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": mt.HELM_CHART_LAYER,
                "digest": layer_digest,
                "size": layer_size,
            }
        ],
        "annotations": annotations,
    }
    return canonical_json(manifest)


def canonical_json(value: object) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chart_repository(registry: str, namespace: str, name: str) -> str:
    """``<namespace>/charts/<name>`` (the repository path, without the registry)."""
    return check_repository(f"{namespace}/charts/{name}")


# -- source adapters ----------------------------------------------------------


def source_created(path: Path) -> str:
    """When the chart's content was last committed (RFC 3339, UTC); never the clock.

    See :func:`steps.sourcetime.folder_time`. Equal content published from
    different commits can carry different dates; :func:`plan_charts` treats those
    as the same chart.
    """
    return sourcetime.folder_time(path)


def build_artifact(
    name: str,
    directory: Path,
    policy: VersionPolicy,
    created: Callable[[Path], str] = source_created,
) -> ChartArtifact:
    """Load, check and package one chart (reads files; no network)."""
    src = chartpkg.load_chart(directory, expected_name=name)
    files = chartpkg.collect_files(src)
    version = choose_version(src.version, chartpkg.content_hash(src, files), policy)
    packaged = chartpkg.package_chart(src, files, version)
    manifest = helm_manifest(
        config=packaged.chart_yaml_json,
        tarball=packaged.blob,
        name=name,
        version=version,
        created=created(directory),
        metadata=packaged.metadata,
    )
    return ChartArtifact(
        name=name,
        version=version,
        base_version=src.version,
        source_dir=directory,
        blob=packaged.blob,
        config=packaged.chart_yaml_json,
        manifest=manifest,
        digest=Digest.of(manifest),
    )


_BUILDERS = 3  # charts packaged at once (bounded: a big chart's pieces are in memory)


def build_artifacts(
    source: Path,
    config: ReleaseConfig,
    policy: VersionPolicy,
    only: list[str] | None = None,
) -> list[ChartArtifact]:
    if not source.is_dir():
        raise BadInput(
            f"source folder {source} does not exist",
            hint="--source must be a checkout of alga-psa (or a tree laid out per --config)",
        )
    names = only if only else list(config.charts)
    for name in names:
        if name not in config.charts:
            raise BadInput(f"chart {name!r} is not in the release config ({config.origin})")
    directories = []
    for name in names:
        directory = config.chart_dir(source, name)
        if not directory.is_dir():
            raise BadInput(
                f"chart {name}: folder {directory} does not exist",
                hint=f"check --source, or map {name} to its folder in a --config file "
                f"(now: {config.origin})",
            )
        directories.append(directory)

    def build(at: int) -> ChartArtifact:
        return build_artifact(names[at], directories[at], policy)

    if len(names) < 2:
        return [build(at) for at in range(len(names))]
    # A few at a time: each waits on git for its folder's time and compresses outside
    # the interpreter lock. Results (and the first error) come in the config's order.
    with ThreadPoolExecutor(max_workers=min(_BUILDERS, len(names))) as pool:
        return list(pool.map(build, range(len(names))))


# -- registry ----------------------------------------------------------------


def plan_charts(
    client: RegistryClient, namespace: str, artifacts: list[ChartArtifact]
) -> list[PlannedChart]:
    """Compare each artifact with the registry; refuse any overwrite. Writes nothing."""
    plans: list[PlannedChart] = []
    conflicts: list[str] = []
    for artifact in artifacts:
        repository = chart_repository(client.registry, namespace, artifact.name)
        existing = client.head_manifest(repository, artifact.version)
        if existing is None:
            plans.append(PlannedChart(artifact, repository, "new", artifact.digest))
            continue
        if existing.digest == artifact.digest:
            plans.append(PlannedChart(artifact, repository, "unchanged", artifact.digest))
            continue
        if _same_chart(client, repository, existing.digest, artifact):
            log.info(
                "%s %s already published as %s with the same chart content "
                "(other annotations); keeping it",
                artifact.name,
                artifact.version,
                existing.digest.short,
            )
            plans.append(PlannedChart(artifact, repository, "equivalent", existing.digest))
            continue
        conflicts.append(
            f"{client.registry}/{repository}:{artifact.version} holds {existing.digest}, "
            f"this chart is {artifact.digest}"
        )
    if conflicts:
        raise Refused(
            "refusing to overwrite published chart version(s) with different content:\n  "
            + "\n  ".join(conflicts),
            hint="published versions are immutable; bump the chart's version in Chart.yaml, "
            "or use --version-policy content (the default) so changed content gets a new "
            "version",
        )
    return plans


def unchanged_plans(
    reader: ManifestReader, namespace: str, artifacts: list[ChartArtifact]
) -> list[PlannedChart]:
    """:func:`plan_charts` when there is nothing to do: every version tag already holds
    exactly its artifact's digest. Anything else (a new version, other bytes) raises
    :class:`~steps.oci.quick.Doubt`: that is :func:`plan_charts`' to judge, on the full
    client. For the quick reader (:mod:`steps.oci.quick`), which answers only HEADs of
    manifests that exist."""
    from steps.oci.quick import Doubt

    plans: list[PlannedChart] = []
    for artifact in artifacts:
        repository = chart_repository(reader.registry, namespace, artifact.name)
        existing = reader.head_manifest(repository, artifact.version)
        if existing is None or existing.digest != artifact.digest:
            raise Doubt(f"{repository}:{artifact.version} does not hold {artifact.digest}")
        plans.append(PlannedChart(artifact, repository, "unchanged", artifact.digest))
    return plans


def unchanged_results(
    registry: str, plans: list[PlannedChart], progress: Callable[[str], None] = log.info
) -> list[ChartResult]:
    """What :func:`push_plan` reports for plans with nothing to push (none is "new")."""
    results = []
    for plan in plans:
        artifact = plan.artifact
        assert plan.state != "new", plan
        progress(f"{artifact.name} {artifact.version}: unchanged ({plan.digest.short})")
        results.append(
            ChartResult(
                artifact.name,
                artifact.version,
                plan.digest,
                f"{registry}/{plan.repository}",
                "unchanged",
            )
        )
    return results


def _same_chart(
    client: RegistryClient, repository: str, digest: Digest, artifact: ChartArtifact
) -> bool:
    """Does the published manifest ``digest`` hold the same chart as ``artifact``?

    Equal layer and config digests settle it. Otherwise the published tarball is
    fetched (verified) and its files compared with ours: a tarball compressed by
    another zlib, or annotations dated from another commit, must not turn a
    re-run of unchanged content into a refused overwrite.
    """
    manifest = client.get_manifest(repository, digest).json()
    layers = manifest.get("layers")
    config = manifest.get("config")
    if not isinstance(layers, list) or not isinstance(config, dict):
        return False
    chart_layers = [
        layer
        for layer in layers
        if isinstance(layer, dict) and layer.get("mediaType") == mt.HELM_CHART_LAYER
    ]
    if len(chart_layers) != 1:
        return False
    layer = chart_layers[0]
    if layer.get("digest") == str(artifact.layer_digest) and config.get("digest") == str(
        artifact.config_digest
    ):
        return True
    try:
        layer_digest = Digest.parse(str(layer.get("digest")))
        size = int(layer.get("size", -1))
        config_digest = Digest.parse(str(config.get("digest")))
    except (ValueError, TypeError, BadInput):
        return False
    if size < 0 or size > MAX_CHART_SIZE:
        return False
    theirs_config = client.get_blob(repository, config_digest, size=int(config.get("size", -1)))
    if _json_or_none(theirs_config) != _json_or_none(artifact.config):
        return False
    theirs = client.get_blob(repository, layer_digest, size=size)
    return tar_files(theirs) == tar_files(artifact.tarball)


MAX_CHART_SIZE = 64 * 1024 * 1024


def _json_or_none(data: bytes) -> object:
    try:
        return json.loads(data)
    except ValueError:
        return None


#: Charts pushed at once by :func:`push_plan` (each on a sibling client of its own).
PUSH_JOBS = 3


def push_plan(
    client: RegistryClient,
    namespace: str,
    plans: list[PlannedChart],
    progress: Callable[[str], None] = log.info,
    signer: Signer | None = None,
    jobs: int = PUSH_JOBS,
) -> list[ChartResult]:
    """Upload what is missing and tag each version, up to ``jobs`` charts at once (each
    chart's blobs, then its tag; the first failure stops the charts not yet started).
    Idempotent.

    With a ``signer``, every chart's digest is signed afterwards, unchanged ones too (a
    re-run completes a run that stopped before signing; signing is idempotent)."""
    from steps.oci.parallel import in_parallel, siblings

    def push(plan: PlannedChart, worker: RegistryClient) -> ChartResult:
        artifact = plan.artifact
        worker.push_blob(plan.repository, artifact.config, likely_new=True)
        worker.push_blob(
            plan.repository, artifact.blob.source, digest=artifact.layer_digest, likely_new=True
        )
        digest = worker.put_manifest(
            plan.repository, artifact.version, artifact.manifest, mt.OCI_MANIFEST
        )
        progress(
            f"{artifact.name} {artifact.version}: pushed {digest.short} "
            f"({artifact.blob.size} bytes)"
        )
        full_repo = f"{client.registry}/{plan.repository}"
        return ChartResult(artifact.name, artifact.version, digest, full_repo, "pushed")

    new = [plan for plan in plans if plan.state == "new"]
    with siblings(client, min(jobs, len(new))) as workers:
        pushed = iter(in_parallel(new, push, workers))
    results = []
    for plan in plans:
        if plan.state == "new":
            results.append(next(pushed))
        else:
            results += unchanged_results(client.registry, [plan], progress)
    if signer is not None:
        results = [
            sign_chart(client, signer, plan, r) for plan, r in zip(plans, results, strict=True)
        ]
    return results


def sign_chart(
    client: RegistryClient, signer: Signer, plan: PlannedChart, result: ChartResult
) -> ChartResult:
    """Sign the chart ``result`` names (``plan.repository@result.digest``)."""
    signed = signer.sign(client, plan.repository, result.digest)
    return dataclasses.replace(result, signed_by=signed.key_id)


def results_json(results: list[ChartResult]) -> dict[str, object]:
    return {"charts": {r.name: r.to_json() for r in results}}


def dry_run_json(registry: str, plans: list[PlannedChart]) -> dict[str, object]:
    charts: dict[str, object] = {}
    for plan in plans:
        result = ChartResult(
            plan.artifact.name,
            plan.artifact.version,
            plan.digest,
            f"{registry}/{plan.repository}",
            "unchanged" if plan.state != "new" else "pushed",
        )
        entry = result.to_json()
        entry["status"] = "unchanged" if plan.state != "new" else "would-push"
        charts[plan.artifact.name] = entry
    return {"charts": charts, "dryRun": True}
