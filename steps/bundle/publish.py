"""Render, validate and publish the Flux config bundle (``alga-release bundle publish``).

The appliance creates ``OCIRepository alga-appliance`` (``url: oci://<config.repository>``,
``ref.digest: <config.digest>``) and ``Kustomization alga-appliance`` (``path: ./base``).
So the bundle's root is the overlay folder itself (``base/`` and ``profiles/``), and
every HelmRelease in it must name exactly the chart this release pushed, from the
registry this release went to. A bundle that does not build breaks every appliance that
pulls it, so nothing is pushed until it builds.

Pipeline (pure steps in the sibling modules, I/O here)::

    files    = read_overlay(<source>/<overlay>)         # no links out, Flux's ignore list
    charts   = load_charts_file(charts.json)            # must match --registry/--namespace
    render   = bundle_flux.render_bundle(files, charts, pin)   # pure rewrite + refusals
    artifact = bundle_artifact.build_artifact(render.files, annotations)   # pure bytes
    validate_bundle(...)              # kubectl kustomize of ./base and of every Flux
                                      # Kustomization path, then Flux schema + pins on the
                                      # builds (not again for bytes the tag already holds)
    publish_prepared(client, prepared)                  # immutable :<version>, verified

The artifact format is ``flux push artifact``'s, established from Flux's own code
(fluxcd/pkg ``oci`` client ``Push``/``build`` with go-containerregistry ``empty.Image``,
``mutate.ConfigMediaType``, ``mutate.Annotations``, ``mutate.Append``; fluxcd/pkg
``tar.Tar``/``tar.Untar``; source-controller's OCIRepository reconciler, which selects the
layer by media type or takes the first, extracts it with ``tar.Untar`` and keeps the
manifest annotations as artifact metadata; flux2 ``push artifact``/``build artifact``):

* manifest ``application/vnd.oci.image.manifest.v1+json``, config
  ``application/vnd.cncf.flux.config.v1+json`` (go-containerregistry's config for an empty
  image with one layer, zero ``created``; flux2 2.9 writes the empty image's config
  unchanged: see :mod:`steps.bundle.artifact`), one layer
  ``application/vnd.cncf.flux.content.v1.tar+gzip``;
* annotations ``org.opencontainers.image.created`` (RFC 3339; Flux takes the clock, we take
  the source revision's commit time, so a re-run gives the same digest),
  ``org.opencontainers.image.source`` and ``org.opencontainers.image.revision``
  (``<ref>@sha1:<sha>``, Flux's revision format);
* the tar: relative ``/``-separated names, folders before their contents in per-folder name
  order, uid/gid 0, no user/group names, zero times, regular files and folders only.

Evidence (read in the upstream sources): fluxcd/pkg ``oci/push.go`` (``Push``: the empty
image, ``ConfigMediaType``, ``Annotations``, ``Append`` of the content layer),
``oci/build.go`` and ``tar/tar.go`` (the walk, the header sanitising), ``oci/meta.go`` and
``oci/constants.go`` (annotation keys, media types), ``oci/pull.go`` and ``tar/untar.go``
(what ``flux pull artifact`` accepts), ``sourceignore/sourceignore.go`` (the default
ignore list); flux2 ``cmd/flux/push_artifact.go`` and ``build_artifact.go``;
source-controller's ``ocirepository_controller.go`` (``selectLayer``, ``tar.Untar`` with
symlinks skipped, ``metadata.Metadata = manifest.Annotations``). The integration tests
pull what we push, check media types, annotations and ``rootfs.diff_ids``, extract it
with ``tarfile`` (``filter="data"``) and build it with the real kustomize.

Where ours differs, and why it does not matter to a reader: our gzip stream (Python's
zlib, level 9, fixed header) is not Go's, modes are normalised (0644/0755) instead of the
file system's, there is no ``.`` entry for the root, and links inside the overlay are
stored as the files they point to (``flux build artifact --resolve-symlinks``). See
:mod:`steps.bundle_artifact` for the byte layout and the evidence in its tests.

Invariants: every byte pushed is a function of the inputs (overlay files, charts.json,
version, pin mode, source URL and revision, the overlay's commit time); ``:<version>`` is
never overwritten with a different bundle (:class:`~steps.errors.Refused`, exit 3, both
digests named; the same files and annotations compressed by another zlib count as the same
bundle and the published digest is kept); an unchanged re-run pushes nothing; bad input
pushes nothing; before the push, every chart the bundle uses must be in the registry at
the digest charts.json names (else Refused: the bundle would install a missing chart).

What this module does not do: publish charts (``charts publish``), write the release
manifest, or touch a cluster.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import yaml

from steps import yamlload
from steps.archive import tar_files
from steps.bundle.artifact import (
    BundleArtifact,
    annotations_for,
    build_artifact,
    clean_source_url,
    flux_ignored,
    parse_revision,
    unified_diff,
)
from steps.bundle.checks import check_built_objects, check_kustomize_dir, kustomizations_in
from steps.bundle.flux import (
    BASE_PATH,
    PIN_MODES,
    ChartSet,
    KustomizationRef,
    PinMode,
    RenderResult,
    parse_charts_json,
    render_bundle,
)
from steps.bundle.yamledit import is_yaml, parse_yaml
from steps.charts.publish import source_created
from steps.config import ReleaseConfig
from steps.errors import BadInput, Refused, ReleaseError, UnsafeSourceUrl
from steps.fstree import Entry, Wording, walk
from steps.oci import mediatypes as mt
from steps.oci.errors import DigestMismatch, InvalidReference
from steps.oci.reference import Digest, check_registry, check_repository, check_tag
from steps.sourcetime import git_output
from steps.yamlload import BUILD_OUTPUT_LIMITS

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient
    from steps.oci.model import ManifestReader
    from steps.signing.cosign import Signer

__all__ = [
    "BUNDLE_REPOSITORY",
    "PIN_MODES",
    "PreparedBundle",
    "check_release_version",
    "dry_run_result",
    "human_summary",
    "load_charts_file",
    "prepare_bundle",
    "publish_prepared",
    "read_overlay",
    "validate_bundle",
]

log = logging.getLogger("alga_release.bundle")

BUNDLE_REPOSITORY = "alga-appliance-config"
KUSTOMIZE_TIMEOUT = 120
#: Go's collector for `kubectl kustomize`: off until the heap nears this soft limit (each
#: short build allocates a few tens of MB; collecting them was a fifth of its time here).
KUSTOMIZE_GO_ENV = {"GOGC": "off", "GOMEMLIMIT": "128MiB"}
MAX_BUNDLE_LAYER = 64 * 1024 * 1024
_SHA1_RE = re.compile(r"[0-9a-f]{40}\Z")

T = TypeVar("T")


class Memo(Protocol):
    """A run's memo (``steps.cli.context.RunContext.memo``): ``compute()`` once per key."""

    def __call__(self, key: tuple[object, ...], compute: Callable[[], T]) -> T: ...


@dataclass(frozen=True)
class PreparedBundle:
    """A rendered, validated and packed bundle, ready to push (nothing pushed yet)."""

    registry: str
    repository: str  # <namespace>/alga-appliance-config
    version: str
    pin: PinMode
    verify_charts: bool
    overlay: Path
    charts: ChartSet
    source_files: Mapping[str, bytes]
    render: RenderResult
    artifact: BundleArtifact

    @property
    def full_repository(self) -> str:
        return f"{self.registry}/{self.repository}"


# -- inputs -------------------------------------------------------------------


def check_release_version(version: str) -> str:
    """``version`` if it is SemVer 2 without build metadata and a valid OCI tag."""
    if "+" in version:
        raise BadInput(
            f"--version {version!r} has '+' build metadata",
            hint="OCI tags cannot hold '+'; use a prerelease instead, e.g. 1.2.3-rc.1",
        )
    import semver  # a version to check: importing the module needs none

    if not semver.Version.is_valid(version):
        raise BadInput(
            f"--version {version!r} is not a SemVer 2 version",
            hint="use MAJOR.MINOR.PATCH with an optional -prerelease, e.g. 1.4.0 or 1.4.0-rc.2",
        )
    try:
        check_tag(version)
    except InvalidReference as exc:
        raise BadInput(
            f"--version is not a valid OCI tag: {exc.message}",
            hint="the version is the bundle's tag: at most 128 characters of [A-Za-z0-9._-]",
        ) from None
    return version


def load_charts_file(
    path: Path, registry: str, namespace: str, *, dry_run: bool = False
) -> ChartSet:
    """Read ``charts.json`` (what ``charts publish --out`` wrote) and check it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(
            f"cannot read --charts {path}: {exc.strerror or exc}",
            hint="pass the --out file of `alga-release charts publish`",
        ) from None
    except ValueError as exc:
        raise BadInput(f"--charts {path} is not valid JSON: {exc}") from None
    return parse_charts_json(data, str(path), registry, namespace, dry_run=dry_run)


_OVERLAY_WORDING = (
    ("is dangling or loops", "fix or delete the link"),
    ("points to a folder that contains it", "remove the link"),
    ("is not a regular file (device, socket or pipe)", "remove it from the overlay"),
)


def _overlay_name(root: Path, rel: str) -> None:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"overlay {root}: file name {rel!r} is not UTF-8") from None


def _overlay_keeps(root: Path, real_root: Path, entry: Entry) -> bool:
    """Flux's ignore list leaves an entry out; a link leaving the overlay is refused."""
    if entry.leaves(real_root):
        raise BadInput(
            f"overlay {root}: symbolic link {entry.rel} -> {entry.link} leaves the "
            f"overlay (resolves to {entry.real})",
            hint="copy the file into the overlay; the bundle holds only the "
            "overlay's own files, and Flux never follows links",
        )
    if flux_ignored(entry.rel, is_dir=entry.is_dir):
        log.debug("leaving out %s (flux push artifact ignores it)", entry.rel)
        return False
    return True


def read_overlay(root: Path) -> dict[str, bytes]:
    """Every file of the overlay folder: relative posix path -> bytes.

    Follows links that stay inside the folder (a linked file is read as a file); refuses
    (:class:`BadInput`) a link that leaves it, dangles or loops, special files and names
    that are not UTF-8. Leaves out what ``flux push artifact`` ignores by default.
    """
    if not root.is_dir():
        raise BadInput(
            f"overlay folder {root} does not exist",
            hint="--source must be a checkout holding the overlay (ee/appliance/flux in "
            "alga-psa), or name it with the release config's 'overlay' (--config)",
        )
    out: dict[str, bytes] = {}
    real_root = root.resolve()
    wording = Wording(f"overlay {root}", *_OVERLAY_WORDING)
    name, keep = partial(_overlay_name, root), partial(_overlay_keeps, root, real_root)
    for entry in walk(root, wording, check_name=name, keep=keep):
        try:
            out[entry.rel] = entry.path.read_bytes()
        except OSError as exc:
            raise BadInput(f"cannot read {entry.path}: {exc.strerror or exc}") from None
    if not out:
        raise BadInput(f"overlay folder {root} holds no files")
    return out


def check_overlay_yaml(root: Path) -> int:
    """Parse every YAML file of the overlay with the bounded loader (no subprocess):
    :class:`~steps.errors.UnsafeYaml` or :class:`BadInput` naming the file and line.
    Cheap, so a whole publish runs it before its first push. Returns the file count."""
    files = read_overlay(root)
    parsed = [parse_yaml(path, data) for path, data in sorted(files.items()) if is_yaml(path)]
    return len(parsed)


def _git(path: Path, *args: str) -> str | None:
    out = git_output(path, *args)
    return out.strip() if out and out.strip() else None


def git_revision(path: Path) -> str | None:
    """``sha1:<HEAD>`` if ``path`` is in git.

    The commit only, not the branch: the same commit must give the same bundle bytes
    whether it was checked out on a branch (a workstation) or detached (CI). Pass
    ``--revision <ref>@sha1:<sha>`` to record a ref.
    """
    sha = _git(path, "rev-parse", "--verify", "-q", "HEAD")
    if sha is None or not _SHA1_RE.match(sha):
        return None
    return f"sha1:{sha}"


def git_source_url(path: Path) -> str | None:
    """The checkout's ``origin``, cleaned (:func:`clean_source_url`); None when there is
    none, or when it is not an https/ssh/git URL (a clone of a local path): nothing is
    recorded then, rather than a path or an http URL."""
    url = _git(path, "remote", "get-url", "origin")
    if not url:
        return None
    try:
        return clean_source_url(url)
    except UnsafeSourceUrl as exc:
        log.info("not recording the checkout's origin as the source URL: %s", exc.message)
        return None


def find_kubectl(explicit: str | None) -> str:
    """``explicit`` (``--kubectl`` / ``ALGA_KUBECTL``), else kubectl on PATH. No lookup in a
    source checkout's tool folder: an installed package has none (``make`` puts
    ``.tools/bin`` on PATH)."""
    if explicit:
        return explicit
    on_path = shutil.which("kubectl")
    if on_path:
        return on_path
    raise ReleaseError(
        "kubectl not found: the bundle is validated with `kubectl kustomize` before it is pushed",
        hint="install kubectl (scripts/setup.sh puts it in .tools/bin), or pass --kubectl "
        "PATH / ALGA_KUBECTL",
    )


# -- validation ---------------------------------------------------------------


def kustomize_env(environment: Mapping[str, str]) -> dict[str, str]:
    """The environment kustomize runs in: ``environment`` with :data:`KUSTOMIZE_GO_ENV`,
    unless it sets GOGC or GOMEMLIMIT itself. The build's output is the same either way."""
    env = dict(environment)
    if "GOGC" not in env and "GOMEMLIMIT" not in env:
        env.update(KUSTOMIZE_GO_ENV)
    return env


def kustomize_build(
    kubectl: str, root: Path, rel: str, env: Mapping[str, str] | None = None
) -> tuple[bool, str]:
    """(True, YAML) or (False, error text) for ``kubectl kustomize`` of ``root/rel``, in
    ``env`` (default: this process's environment)."""
    root = root.resolve()
    target = root / rel if rel else root
    argv = [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(target)]
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=KUSTOMIZE_TIMEOUT,
            check=False,
            env=None if env is None else dict(env),
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise ReleaseError(
            f"cannot run kubectl ({kubectl}): {exc.strerror or exc}",
            hint="install kubectl (scripts/setup.sh), or pass --kubectl PATH / ALGA_KUBECTL",
        ) from None
    except subprocess.TimeoutExpired:
        return False, f"timed out after {KUSTOMIZE_TIMEOUT}s"
    if proc.returncode != 0:
        text = (proc.stderr or proc.stdout).strip().replace(f"{root}/", "").replace(str(root), ".")
        return False, "\n      ".join(text.splitlines()[-15:]) or f"exit {proc.returncode}"
    return True, proc.stdout


def validate_bundle(
    root: Path,
    render: RenderResult,
    charts: ChartSet,
    pin: PinMode,
    kubectl: str,
    *,
    verify_charts: bool = False,
    env: Mapping[str, str] | None = None,
) -> dict[str, list[object]]:
    """Build ``./base`` and every folder a Flux Kustomization names (found in the files
    and, transitively, in what the builds produce) with the real kustomize, then check the
    Flux objects of every build. ``root`` holds ``render.files``. Returns the builds."""
    files = render.files
    queue: list[KustomizationRef] = [
        KustomizationRef(BASE_PATH, "the appliance's Kustomization alga-appliance (path ./base)"),
        *render.kustomizations,
    ]
    built: dict[str, list[object]] = {}
    seen: set[str] = set()
    problems: list[str] = []
    # Each folder Flux builds is built once, as Flux builds it; the builds of one wave
    # (the folders known before it) run side by side, and what they name is the next wave.
    workers = max(1, min(4, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        while queue:
            wave: list[KustomizationRef] = []
            for ref in queue:
                if ref.path in seen:
                    continue
                seen.add(ref.path)
                problem = check_kustomize_dir(files, ref)
                if problem:
                    problems.append(problem)
                else:
                    wave.append(ref)
            queue = []
            results = list(pool.map(lambda r: kustomize_build(kubectl, root, r.path, env), wave))
            for ref, (ok, output) in zip(wave, results, strict=True):
                queue.extend(_read_build(ref, ok, output, built, problems))
    if not problems:
        problems = check_built_objects(built, charts, pin, verify_charts=verify_charts)
    if problems:
        if len(problems) == 1:
            message = f"the rendered bundle is not valid: {problems[0]}"
        else:
            message = f"the rendered bundle is not valid ({len(problems)} problems):\n  - " + (
                "\n  - ".join(problems)
            )
        raise BadInput(
            message,
            hint="fix the overlay; nothing was pushed (Flux would fail the same way on every "
            "appliance that pulls this bundle)",
        )
    log.info("kustomize built %s", ", ".join(f"./{p}" for p in sorted(built)))
    return built


def _read_build(
    ref: KustomizationRef,
    ok: bool,
    output: str,
    built: dict[str, list[object]],
    problems: list[str],
) -> list[KustomizationRef]:
    """Record one kustomize build (or its failure); the folders its Flux objects name."""
    if not ok:
        problems.append(f"`kubectl kustomize` of ./{ref.path} failed ({ref.who}):\n      {output}")
        return []
    try:
        docs = [
            d
            for d in yamlload.load_all(
                output, f"kustomize build of ./{ref.path}", limits=BUILD_OUTPUT_LIMITS
            )
            if d is not None
        ]
    except yaml.YAMLError as exc:
        problems.append(f"kustomize output for ./{ref.path} is not YAML: {exc}")
        return []
    log.debug("kustomize ./%s: %d object(s)", ref.path, len(docs))
    built[ref.path] = docs
    return kustomizations_in(docs, f"build of ./{ref.path}")


def rendering_key(render: RenderResult, charts: ChartSet, pin: PinMode, kubectl: str) -> str:
    """What a validation depends on, as one digest: every rendered file (name and bytes),
    the charts the bundle pins, the pin mode and the kubectl that builds it."""
    h = hashlib.sha256()
    for rel, data in sorted(render.files.items()):
        for part in (rel.encode(), data):
            h.update(len(part).to_bytes(8, "big"))
            h.update(part)
    chart_list = sorted(
        (n, c.version, str(c.digest), c.repository) for n, c in charts.charts.items()
    )
    h.update(repr((charts.registry, charts.namespace, chart_list, pin, kubectl)).encode())
    return h.hexdigest()


def write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    for rel, data in sorted(files.items()):
        target = root.joinpath(*rel.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _check_output_dir(path: Path, overlay: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BadInput(
            f"--dry-run {path} exists and is not an empty folder",
            hint="name a new folder; the rendered bundle is written there",
        )
    resolved, real_overlay = path.resolve(), overlay.resolve()
    if resolved == real_overlay or real_overlay in resolved.parents:
        raise BadInput(f"--dry-run {path} is inside the overlay {overlay}")


# -- prepare ------------------------------------------------------------------


def prepare_bundle(
    *,
    source: Path,
    config: ReleaseConfig,
    charts_file: Path,
    registry: str,
    namespace: str,
    version: str,
    charts_data: Mapping[str, Any] | None = None,
    pin: PinMode = "version",
    source_url: str | None = None,
    revision: str | None = None,
    kubectl: str | None = None,
    render_dir: Path | None = None,
    values_profile: str | None = None,
    verify_charts: bool = False,
    memo: Memo | None = None,
    tool_env: Mapping[str, str] | None = None,
    published: Callable[[Digest], bool] | None = None,
) -> PreparedBundle:
    """Read, rewrite, validate and pack the bundle. No registry access but ``published``.

    ``verify_charts``: every pinned chart source verifies the chart's cosign signature
    (:func:`steps.bundle.flux.chart_verification`).

    With ``render_dir`` the rendered bundle is written (and validated) there, else in a
    temporary folder. ``charts_data`` is the charts step's result when it ran in this
    process (``charts_file`` is then only named in messages). With ``memo`` (the run's),
    a rendering already validated in this run (the same files, charts, pin mode and
    kubectl: publish's precheck, then its real run) is not built with kustomize again.
    ``tool_env``: kustomize's environment (the CLI's :func:`kustomize_env`; default: this
    process's). ``published(digest)``: True when the tag already holds exactly these
    bytes, which were validated before their push (validation is a function of them and
    of kubectl): a re-run does not build them with kustomize again.
    """
    check_registry(registry)
    repository = check_repository(f"{namespace}/{BUNDLE_REPOSITORY}")
    version = check_release_version(version)
    if pin not in PIN_MODES:
        raise BadInput(f"--chart-pin {pin!r}: expected one of {', '.join(PIN_MODES)}")
    if not source.is_dir():
        raise BadInput(
            f"source folder {source} does not exist",
            hint="--source must be a checkout of alga-psa (or a tree laid out per --config)",
        )
    overlay = config.overlay_dir(source)
    source_url = clean_source_url(source_url) if source_url else git_source_url(overlay)
    revision = parse_revision(revision) if revision else git_revision(overlay)
    dry = render_dir is not None
    charts = (
        parse_charts_json(charts_data, str(charts_file), registry, namespace, dry_run=dry)
        if charts_data is not None  # the charts step's result, in the same process
        else load_charts_file(charts_file, registry, namespace, dry_run=dry)
    )
    if render_dir is not None:
        _check_output_dir(render_dir, overlay)
    files = read_overlay(overlay)
    log.info("rendering the overlay %s (%d files, %s)", overlay, len(files), config.origin)
    render = render_bundle(
        files, charts, pin, values_profile or config.values_profile, verify_charts=verify_charts
    )
    for warning in render.warnings:
        log.warning("%s", warning)
    for path in render.reserialised:
        log.warning("%s: rewritten by the YAML serialiser; its comments are not kept", path)
    for path in render.changed:
        log.info("rewrote %s", path)
    tool = find_kubectl(kubectl)
    if render_dir is not None:
        render_dir.mkdir(parents=True, exist_ok=True)
        write_tree(render_dir, render.files)

    # Build a private copy, as Flux builds the extracted artifact: nothing next to the
    # bundle (a `../../x` that escapes it) can make the validation pass.
    def validate() -> bool:
        with tempfile.TemporaryDirectory(prefix="alga-bundle-") as tmp:
            root = Path(tmp) / "bundle"
            write_tree(root, render.files)
            try:
                validate_bundle(
                    root, render, charts, pin, tool, verify_charts=verify_charts, env=tool_env
                )
            except BadInput as exc:
                if render_dir is None:
                    raise
                raise BadInput(
                    exc.message, hint=f"{exc.hint}\n  the rendered bundle is in {render_dir}"
                ) from None
        return True

    created = source_created(overlay)
    annotations = annotations_for(created, source_url, revision)
    artifact = build_artifact(render.files, annotations)
    if published is not None and published(artifact.digest):
        where = f"{registry}/{repository}:{version}"
        log.info("bundle %s holds these bytes: validated when they were pushed", where)
    elif memo is None:
        validate()
    else:  # a failed validation raises, so only a valid rendering is remembered
        key = rendering_key(render, charts, pin, tool)
        memo(("bundle-validated", key, verify_charts), validate)
    log.info(
        "bundle %s:%s is %s (layer %d bytes, created %s, revision %s)",
        f"{registry}/{repository}",
        version,
        artifact.digest.short,
        len(artifact.tarball),
        created,
        revision or "unknown",
    )
    return PreparedBundle(
        registry=registry,
        repository=repository,
        version=version,
        pin=pin,
        verify_charts=verify_charts,
        overlay=overlay,
        charts=charts,
        source_files=files,
        render=render,
        artifact=artifact,
    )


# -- registry -------------------------------------------------------------------


def check_charts_present(client: ManifestReader, prepared: PreparedBundle) -> None:
    """Every chart the bundle uses is in the registry at the digest charts.json names."""
    problems = []
    names, charts = prepared.render.used_charts, prepared.charts
    queries = [(f"{charts.namespace}/charts/{n}", charts.charts[n].version) for n in names]
    for name, found in zip(names, client.head_manifests(queries), strict=True):
        chart = charts.charts[name]
        if found is None:
            problems.append(f"{chart.repository}:{chart.version} is not in the registry")
        elif found.digest != chart.digest:
            problems.append(
                f"{chart.repository}:{chart.version} is {found.digest}, charts.json says "
                f"{chart.digest}"
            )
    if problems:
        raise Refused(
            "the bundle would install charts the registry does not hold as published:\n  "
            + "\n  ".join(problems),
            hint="publish the charts first (`alga-release charts publish --out charts.json`) "
            "and pass that file to --charts",
        )


def publish_prepared(
    client: RegistryClient, prepared: PreparedBundle, signer: Signer | None = None
) -> dict[str, Any]:
    """Push ``:<version>`` unless it exists; refuse to overwrite a different bundle.

    With a ``signer``, the digest the tag holds is signed (also when unchanged: signing
    is idempotent, so a re-run completes a run that stopped before signing)."""
    if client.registry != prepared.registry:
        raise BadInput(f"client for {client.registry}, bundle for {prepared.registry}")
    check_charts_present(client, prepared)
    artifact, repo, version = prepared.artifact, prepared.repository, prepared.version
    existing = client.head_manifest(repo, version)
    if existing is None:
        client.push_blob(repo, artifact.config, likely_new=True)
        client.push_blob(repo, artifact.tarball, likely_new=True)
        digest = client.put_manifest(repo, version, artifact.manifest, mt.OCI_MANIFEST)
        _verify_pushed(client, prepared, digest)
        status = "pushed"
        log.info("pushed %s:%s %s", prepared.full_repository, version, digest)
    elif existing.digest == artifact.digest:
        digest, status = existing.digest, "unchanged"
        log.info("%s:%s is already this bundle (%s)", prepared.full_repository, version, digest)
    elif _same_bundle(client, repo, existing.digest, artifact):
        digest, status = existing.digest, "unchanged"
        log.info(
            "%s:%s already holds the same files and annotations as %s (other compression); "
            "keeping it",
            prepared.full_repository,
            version,
            existing.digest.short,
        )
    else:
        raise Refused(
            f"refusing to overwrite {prepared.full_repository}:{version}: it holds "
            f"{existing.digest}, this bundle is {artifact.digest}",
            hint="published versions are immutable: publish this bundle under a new --version "
            "(a re-run with the same inputs is a no-op)",
        )
    result = _result(prepared, digest, status)
    if signer is not None:
        result["signedBy"] = signer.sign(client, repo, digest).key_id
    return result


def unchanged_result(reader: ManifestReader, prepared: PreparedBundle) -> dict[str, Any]:
    """:func:`publish_prepared` when the bundle is already published with these very
    bytes, for the quick reader (:mod:`steps.oci.quick`): the charts' HEADs, the tag's.
    Anything else (a missing chart or tag, other bytes) raises
    :class:`~steps.oci.quick.Doubt` or the refusal, for the full client to judge again."""
    from steps.oci.quick import Doubt

    if reader.registry != prepared.registry:
        raise Doubt(f"a reader for {reader.registry}, the bundle for {prepared.registry}")
    # the tag first: on a first publish its 404 gives up after one request
    existing = reader.head_manifest(prepared.repository, prepared.version)
    if existing is None or existing.digest != prepared.artifact.digest:
        raise Doubt(f"{prepared.full_repository}:{prepared.version} is not this bundle")
    check_charts_present(reader, prepared)
    digest = existing.digest
    log.info(
        "%s:%s is already this bundle (%s)", prepared.full_repository, prepared.version, digest
    )
    return _result(prepared, digest, "unchanged")


def _verify_pushed(client: RegistryClient, prepared: PreparedBundle, digest: Digest) -> None:
    artifact = prepared.artifact
    where = f"{prepared.full_repository}:{prepared.version}"
    if digest != artifact.digest:
        raise DigestMismatch(f"{where}: pushed {digest}, expected {artifact.digest}")
    now = client.head_manifest(prepared.repository, prepared.version)
    if now is None or now.digest != digest:
        raise DigestMismatch(
            f"{where}: after the push the tag points at {now.digest if now else 'nothing'}, "
            f"not {digest}",
            hint="another publish raced this one; inspect the tag before retrying",
        )
    fetched = client.get_manifest(prepared.repository, digest)  # verified against the digest
    if fetched.data != artifact.manifest:  # pragma: no cover - implied by the digest check
        raise DigestMismatch(f"{where}: the registry serves other manifest bytes")


def _same_bundle(
    client: RegistryClient, repository: str, digest: Digest, artifact: BundleArtifact
) -> bool:
    """Does the published ``digest`` hold the same files and annotations as ``artifact``?
    (Another zlib compresses the same tar to other bytes: that is not a different bundle.)"""
    manifest = client.get_manifest(repository, digest).json()
    config, layers = manifest.get("config"), manifest.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list) or len(layers) != 1:
        return False
    layer = layers[0]
    if (
        config.get("mediaType") != mt.FLUX_CONFIG
        or not isinstance(layer, dict)
        or layer.get("mediaType") != mt.FLUX_CONTENT_LAYER
        or manifest.get("annotations") != dict(artifact.annotations)
    ):
        return False
    try:
        layer_digest = Digest.parse(str(layer.get("digest")))
        size = int(layer.get("size", -1))
    except (InvalidReference, TypeError, ValueError):
        return False
    if layer_digest == artifact.layer_digest:
        return True
    if not 0 <= size <= MAX_BUNDLE_LAYER:
        return False
    theirs = tar_files(client.get_blob(repository, layer_digest, size=size))
    return theirs == dict(artifact.files)


# -- results --------------------------------------------------------------------


def _result(prepared: PreparedBundle, digest: Digest, status: str) -> dict[str, Any]:
    return {
        "repository": prepared.full_repository,
        "tag": prepared.version,
        "digest": str(digest),
        "reference": f"{prepared.full_repository}:{prepared.version}@{digest}",
        "status": status,
        "warnings": list(prepared.render.warnings),
        "verifyCharts": prepared.verify_charts,
    }


def dry_run_result(prepared: PreparedBundle, directory: Path) -> dict[str, Any]:
    """What ``--dry-run DIR`` reports: the digest it would push and the diff it made."""
    result = _result(prepared, prepared.artifact.digest, "would-push")
    result.update(
        {
            "dryRun": True,
            "directory": str(directory),
            "changed": list(prepared.render.changed),
            "diff": unified_diff(prepared.source_files, prepared.render.files),
        }
    )
    return result


def human_summary(result: Mapping[str, Any]) -> str:
    line = f"{result['repository']}:{result['tag']} {result['status']} {result['digest']}"
    if not result.get("dryRun"):
        return line
    diff = str(result.get("diff", ""))
    changed: Sequence[str] = result.get("changed", [])
    return (
        f"{diff}"
        f"dry run: {len(changed)} file(s) rewritten; the rendered bundle is in "
        f"{result['directory']}\n{line}"
    )
