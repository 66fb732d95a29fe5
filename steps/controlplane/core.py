"""Publish the control-plane image to ``<registry>/<namespace>/alga-appliance-control-plane``.

Two ways in, both ending in a digest-pinned reference for the release manifest:

* **copy** (:func:`plan_copy`, then :func:`push_copy`): an image that was already
  built -- in another registry, another repository of the same registry, or an
  OCI image layout folder -- is copied with the project's OCI client: every blob
  (config and layers of every platform), every child manifest of an index, the
  index, then the tag.
* **build** (:func:`build_and_push`): ``ee/appliance/control-plane/Dockerfile`` of
  the source checkout is built by a Docker-API engine (``DOCKER_HOST``; in Argo a
  docker-in-docker sidecar) from a build context assembled here -- the checkout
  root, as alga-psa builds it, minus what ``.dockerignore`` excludes
  (:func:`assemble_context`) -- pushed by the engine, and the digest it reports is
  checked with a HEAD through the OCI client.

Invariants of a copy:

- Manifest bytes are copied exactly, so the digest at the destination is the
  source's digest.
- Order: blobs, then child manifests by digest, then the root manifest by digest,
  then the tag. The tag is written last and only when every piece is in, so a
  failure anywhere leaves nothing tagged.
- Every manifest and blob read from a source is checked against its digest and
  size before it is pushed (registry downloads by the client, layout files here).
- Large blobs are streamed through a temporary file, never held in memory. In the
  same registry a blob is mounted from the source repository instead.
- A tag that exists with a different digest is never moved (:class:`Refused`,
  exit 3, both digests named). A re-copy finds everything present and uploads
  nothing.

What it does not do: convert formats, re-compress layers, copy referrers
(signatures or attestations attached by ``subject``) or anything else the
manifest graph does not reference. A build is not reproducible (the engine
stamps times), which is why a build tag that already exists is kept, not rebuilt.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

from steps.errors import BadInput, Refused, ReleaseError, Transient
from steps.oci import mediatypes as mt
from steps.oci.auth import Credentials
from steps.oci.client import MAX_MANIFEST_SIZE, Manifest, RegistryClient
from steps.oci.errors import (
    AuthError,
    DigestMismatch,
    InvalidReference,
    NotFound,
    TransientRegistryError,
)
from steps.oci.reference import Digest, Reference, check_repository, check_tag
from steps.redact import register_secret
from steps.release.images import CONTROL_PLANE_REPOSITORY, control_plane_reference

log = logging.getLogger("alga_release.controlplane")

ENV_SOURCE_USERNAME = "ALGA_SOURCE_REGISTRY_USERNAME"
ENV_SOURCE_PASSWORD = "ALGA_SOURCE_REGISTRY_PASSWORD"
LAYOUT_PREFIX = "oci-layout:"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

DOCKER_SCHEMA1 = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
IMAGE_MANIFESTS = frozenset({mt.OCI_MANIFEST, mt.DOCKER_MANIFEST})
INDEX_MANIFESTS = frozenset({mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST})
_MAX_INDEX_DEPTH = 3


# -- errors --------------------------------------------------------------------


class UnsupportedImage(BadInput):
    """The source is not an image this step can copy (schema 1, unknown type, malformed)."""


class EngineError(ReleaseError):
    """The container engine failed to build or push the image."""


class EngineUnavailable(Transient):
    """The container engine could not be reached (in Argo: the sidecar may not be up yet)."""


# -- source references -----------------------------------------------------------


@dataclass(frozen=True)
class RegistrySourceSpec:
    """``REGISTRY/REPO:TAG`` or ``REGISTRY/REPO@sha256:...``."""

    reference: Reference

    def __str__(self) -> str:
        return str(self.reference)


@dataclass(frozen=True)
class LayoutSourceSpec:
    """``oci-layout:PATH[:TAG|@DIGEST]``: an OCI image layout folder."""

    path: Path
    tag: str | None = None
    digest: Digest | None = None

    def __str__(self) -> str:
        suffix = f"@{self.digest}" if self.digest else f":{self.tag}" if self.tag else ""
        return f"{LAYOUT_PREFIX}{self.path}{suffix}"


SourceSpec = RegistrySourceSpec | LayoutSourceSpec


def parse_source(text: str) -> SourceSpec:
    """Parse SOURCE_REF: ``REGISTRY/REPO:TAG``, ``REGISTRY/REPO@sha256:...`` or
    ``oci-layout:PATH[:TAG|@DIGEST]`` (the tag is what follows the last ``:`` of the
    last path component)."""
    if text.startswith(LAYOUT_PREFIX):
        rest = text[len(LAYOUT_PREFIX) :]
        tag: str | None = None
        digest: Digest | None = None
        if "@" in rest:
            rest, _, digest_text = rest.rpartition("@")
            try:
                digest = Digest.parse(digest_text)
            except InvalidReference as exc:
                raise BadInput(f"source {text!r}: {exc.message}", hint=exc.hint) from None
        else:
            last = rest.rsplit("/", 1)[-1]
            if ":" in last:
                rest, _, tag = rest.rpartition(":")
                try:
                    check_tag(tag)
                except InvalidReference as exc:
                    raise BadInput(f"source {text!r}: {exc.message}") from None
        if not rest:
            raise BadInput(
                f"source {text!r}: no layout folder given",
                hint="write oci-layout:PATH, oci-layout:PATH:TAG or oci-layout:PATH@sha256:...",
            )
        return LayoutSourceSpec(Path(rest), tag, digest)
    try:
        return RegistrySourceSpec(Reference.parse(text))
    except InvalidReference as exc:
        raise BadInput(
            f"source {text!r}: {exc.message}",
            hint="give REGISTRY/REPOSITORY:TAG, REGISTRY/REPOSITORY@sha256:... or "
            "oci-layout:PATH[:TAG|@DIGEST]",
        ) from None


def source_credentials(env: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials for a source registry from ``ALGA_SOURCE_REGISTRY_USERNAME`` /
    ``ALGA_SOURCE_REGISTRY_PASSWORD``; ``None`` for anonymous pulls."""
    source = os.environ if env is None else env
    username = source.get(ENV_SOURCE_USERNAME, "").strip()
    password = source.get(ENV_SOURCE_PASSWORD, "")
    register_secret(password)
    if not username and not password:
        return None
    if not username or not password:
        missing = ENV_SOURCE_USERNAME if not username else ENV_SOURCE_PASSWORD
        raise BadInput(
            f"incomplete source registry credentials: {missing} is not set",
            hint="set both, or neither for anonymous pulls from the source registry",
        )
    return Credentials(username, password)


# -- sources ---------------------------------------------------------------------


@dataclass(frozen=True)
class Blob:
    """A blob the copied image references: config or layer."""

    digest: Digest
    size: int
    media_type: str


class ImageSource(Protocol):
    """Where a copy reads from. Every method returns verified content only."""

    @property
    def name(self) -> str:
        """How messages name the source, e.g. ``ghcr.io/x/y:1`` or ``oci-layout:/p:1``."""
        ...

    @property
    def mount_from(self) -> str | None:
        """The repository of the destination registry holding the blobs, if any."""
        ...

    def root(self) -> Manifest:
        """The manifest SOURCE_REF names (image or index)."""
        ...

    def manifest(self, digest: Digest, media_type: str | None) -> Manifest:
        """A manifest the root references, by digest."""
        ...

    def open_blob(self, blob: Blob, workdir: Path) -> contextlib.AbstractContextManager[Path]:
        """A file holding the blob's verified bytes, valid inside the ``with``."""
        ...


class RegistrySource:
    """An image in a registry, read with a :class:`RegistryClient`.

    ``same_registry`` says that ``client`` is the destination's client: then the
    destination can mount blobs from this repository, and the credentials hint in
    errors names the destination's variables.
    """

    def __init__(
        self, client: RegistryClient, reference: Reference, *, same_registry: bool = False
    ) -> None:
        self.client = client
        self.reference = reference
        self.same_registry = same_registry

    @property
    def name(self) -> str:
        return str(self.reference)

    @property
    def mount_from(self) -> str | None:
        return self.reference.repository if self.same_registry else None

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except NotFound as exc:
            raise NotFound(
                f"source image {self.name}: {exc.message}",
                hint="check the source reference; the image must be pushed there first",
                status=exc.status,
            ) from None
        except AuthError as exc:
            if self.same_registry:
                raise
            raise AuthError(
                f"source image {self.name}: {exc.message}",
                hint=f"set {ENV_SOURCE_USERNAME} and {ENV_SOURCE_PASSWORD} to an account "
                f"that may pull from {self.reference.registry}",
                status=exc.status,
            ) from None

    def root(self) -> Manifest:
        ref: str | Digest = self.reference.digest or str(self.reference.tag)
        with self._errors():
            return self.client.get_manifest(self.reference.repository, ref)

    def manifest(self, digest: Digest, media_type: str | None) -> Manifest:
        with self._errors():
            return self.client.get_manifest(self.reference.repository, digest)

    @contextlib.contextmanager
    def open_blob(self, blob: Blob, workdir: Path) -> Iterator[Path]:
        fd, name = tempfile.mkstemp(prefix=f"blob-{blob.digest.short}-", dir=workdir)
        os.close(fd)
        path = Path(name)
        try:
            attempts = self.client.retry.attempts
            for attempt in range(attempts):
                try:
                    with self._errors(), path.open("wb") as fh:
                        self.client.download_blob(
                            self.reference.repository, blob.digest, fh, size=blob.size
                        )
                    break
                except TransientRegistryError:
                    # An interrupted download restarts from scratch; the file is rewritten.
                    if attempt + 1 >= attempts:
                        raise
                    time.sleep(self.client.retry.delay(attempt))
            yield path
        finally:
            path.unlink(missing_ok=True)


class LayoutSource:
    """An OCI image layout folder (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``).

    The root is chosen by tag (the ``org.opencontainers.image.ref.name``
    annotation in ``index.json``), by digest, or is the only entry of
    ``index.json``. Every file read is checked against its digest and size.
    """

    def __init__(self, spec: LayoutSourceSpec) -> None:
        self.spec = spec
        self.path = spec.path

    @property
    def name(self) -> str:
        return str(self.spec)

    @property
    def mount_from(self) -> str | None:
        return None

    def _blob_path(self, digest: Digest) -> Path:
        return self.path / "blobs" / digest.algorithm / digest.hex

    def _check_layout(self) -> list[dict[str, Any]]:
        if not self.path.is_dir():
            raise BadInput(
                f"source {self.name}: {self.path} is not a folder",
                hint="give the folder of an OCI image layout (it holds oci-layout and index.json)",
            )
        try:
            marker = json.loads((self.path / "oci-layout").read_text(encoding="utf-8"))
            index = json.loads((self.path / "index.json").read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise BadInput(
                f"source {self.name}: {Path(str(exc.filename)).name} is missing; "
                f"{self.path} is not an OCI image layout",
                hint="write one with e.g. `buildah push IMAGE oci:PATH:TAG` or "
                "`skopeo copy ... oci:PATH:TAG`",
            ) from None
        except (OSError, ValueError) as exc:
            raise BadInput(f"source {self.name}: cannot read the layout: {exc}") from None
        if not isinstance(marker, dict) or marker.get("imageLayoutVersion") != "1.0.0":
            raise UnsupportedImage(
                f"source {self.name}: oci-layout does not declare imageLayoutVersion 1.0.0"
            )
        entries = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise UnsupportedImage(f"source {self.name}: index.json has no manifests list")
        return entries

    def _select(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        def ref_name(entry: dict[str, Any]) -> str | None:
            annotations = entry.get("annotations")
            if isinstance(annotations, dict):
                value = annotations.get(REF_NAME_ANNOTATION)
                return value if isinstance(value, str) else None
            return None

        names = sorted({n for n in (ref_name(e) for e in entries) if n})
        available = ", ".join(names) or "none"
        if self.spec.digest is not None:
            for entry in entries:
                if entry.get("digest") == str(self.spec.digest):
                    return entry
            # Not listed in index.json: a child manifest may still be named by digest.
            return {"digest": str(self.spec.digest)}
        if self.spec.tag is not None:
            found = [e for e in entries if ref_name(e) == self.spec.tag]
            if not found:
                raise BadInput(
                    f"source {self.name}: no manifest tagged {self.spec.tag!r} in "
                    f"{self.path / 'index.json'} (tags: {available})",
                    hint="name one of the tags, or the digest with @sha256:...",
                )
            if len({e.get("digest") for e in found}) > 1:
                raise BadInput(f"source {self.name}: the tag {self.spec.tag!r} is ambiguous")
            return found[0]
        if len(entries) != 1:
            raise BadInput(
                f"source {self.name}: index.json lists {len(entries)} manifests; say which "
                f"one to copy (tags: {available})",
                hint=f"write {LAYOUT_PREFIX}{self.path}:TAG or "
                f"{LAYOUT_PREFIX}{self.path}@sha256:...",
            )
        return entries[0]

    def root(self) -> Manifest:
        entry = self._select(self._check_layout())
        descriptor = parse_descriptor(entry, f"{self.path / 'index.json'}", need_media_type=False)
        return self._read_manifest(
            descriptor.digest, descriptor.media_type or None, descriptor.size or None
        )

    def manifest(self, digest: Digest, media_type: str | None) -> Manifest:
        return self._read_manifest(digest, media_type, None)

    def _read_manifest(self, digest: Digest, media_type: str | None, size: int | None) -> Manifest:
        path = self._blob_path(digest)
        what = f"{self.name}: manifest {digest}"
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_MANIFEST_SIZE + 1)
        except FileNotFoundError:
            raise BadInput(
                f"{what} is not in the layout ({path} is missing)",
                hint="the layout is incomplete; write it again",
            ) from None
        if len(data) > MAX_MANIFEST_SIZE:
            raise DigestMismatch(f"{what}: more than {MAX_MANIFEST_SIZE} bytes")
        if (size is not None and len(data) != size) or not digest.matches(data):
            raise DigestMismatch(
                f"{what}: {path} does not match its digest",
                hint="the layout folder is corrupted; write it again from the original image",
            )
        return Manifest(data, manifest_media_type(data, media_type, what), digest)

    @contextlib.contextmanager
    def open_blob(self, blob: Blob, workdir: Path) -> Iterator[Path]:
        path = self._blob_path(blob.digest)
        what = f"{self.name}: blob {blob.digest}"
        try:
            actual = path.stat().st_size
            hasher = blob.digest.hasher()
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    hasher.update(chunk)
        except FileNotFoundError:
            raise BadInput(
                f"{what} is not in the layout ({path} is missing)",
                hint="the layout is incomplete; write it again",
            ) from None
        if actual != blob.size or hasher.hexdigest() != blob.digest.hex:
            raise DigestMismatch(
                f"{what}: {path} does not match its digest or size ({actual} != {blob.size})"
                if actual != blob.size
                else f"{what}: {path} does not match its digest",
                hint="the layout folder is corrupted; write it again from the original image",
            )
        # The registry checks the digest again when the upload completes, so a file
        # changed after this check cannot end up stored under the wrong digest.
        yield path


def open_source(
    spec: SourceSpec,
    destination: RegistryClient,
    source_client: RegistryClient | None = None,
) -> ImageSource:
    """The source adapter for ``spec``. A registry source on the destination's own
    registry reads through ``destination`` (and its blobs are mounted); another
    registry needs ``source_client``."""
    if isinstance(spec, LayoutSourceSpec):
        return LayoutSource(spec)
    if spec.reference.registry == destination.registry:
        return RegistrySource(destination, spec.reference, same_registry=True)
    if source_client is None:
        raise BadInput(f"source {spec}: no client for registry {spec.reference.registry}")
    return RegistrySource(source_client, spec.reference)


# -- the manifest graph (pure) ------------------------------------------------------


@dataclass(frozen=True)
class Descriptor:
    digest: Digest
    size: int
    media_type: str
    platform: str | None = None


def parse_descriptor(value: object, where: str, *, need_media_type: bool = True) -> Descriptor:
    """A descriptor object -> :class:`Descriptor`; malformed ones are refused."""
    if not isinstance(value, dict):
        raise UnsupportedImage(f"{where}: a descriptor is not a JSON object")
    digest_text = value.get("digest")
    size = value.get("size", 0 if not need_media_type else None)
    media_type = value.get("mediaType", "")
    if not isinstance(digest_text, str):
        raise UnsupportedImage(f"{where}: a descriptor has no digest")
    try:
        digest = Digest.parse(digest_text)
    except InvalidReference as exc:
        raise UnsupportedImage(f"{where}: {exc.message}") from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise UnsupportedImage(f"{where}: descriptor {digest} has no valid size")
    if not isinstance(media_type, str) or (need_media_type and not media_type):
        raise UnsupportedImage(f"{where}: descriptor {digest} has no mediaType")
    return Descriptor(digest, size, media_type, format_platform(value.get("platform")))


def format_platform(value: object) -> str | None:
    """``{"os": "linux", "architecture": "arm64", "variant": "v8"}`` -> ``linux/arm64/v8``."""
    if not isinstance(value, dict):
        return None
    parts = [value.get("os"), value.get("architecture"), value.get("variant")]
    return "/".join(str(p) for p in parts if isinstance(p, str) and p) or None


def manifest_media_type(data: bytes, declared: str | None, what: str) -> str:
    """The media type to PUT ``data`` with: the body's own ``mediaType`` when it has
    one, else the declared one, else inferred from the shape of the body."""
    try:
        body = json.loads(data)
    except ValueError:
        raise UnsupportedImage(f"{what}: the manifest is not JSON") from None
    if not isinstance(body, dict):
        raise UnsupportedImage(f"{what}: the manifest is not a JSON object")
    inner = body.get("mediaType")
    if isinstance(inner, str) and inner:
        return inner
    if declared:
        return declared
    if body.get("schemaVersion") == 1:
        return "application/vnd.docker.distribution.manifest.v1+json"
    return mt.OCI_INDEX if "manifests" in body else mt.OCI_MANIFEST


@dataclass(frozen=True)
class ImageGraph:
    """Everything a copy must push, in push order."""

    root: Manifest
    manifests: tuple[Manifest, ...]  # children before parents; the root is last
    blobs: tuple[Blob, ...]  # configs and layers, each once
    platforms: tuple[str, ...]  # the platforms of an index (empty for a single image)


def walk(source: ImageSource) -> ImageGraph:
    """Read the root manifest and, for an index, every child manifest; collect blobs.

    Only manifests are read here (small, verified); blobs are not touched.
    """
    root = source.root()
    manifests: list[Manifest] = []
    blobs: dict[Digest, Blob] = {}
    platforms: list[str] = []
    seen: set[Digest] = set()

    def visit(manifest: Manifest, depth: int) -> None:
        what = f"{source.name}: manifest {manifest.digest}"
        if manifest.digest in seen:
            return
        seen.add(manifest.digest)
        kind = manifest.media_type
        if kind in DOCKER_SCHEMA1:
            raise UnsupportedImage(
                f"{what} is a Docker schema 1 manifest, which registries no longer accept",
                hint="convert it first: skopeo copy --format v2s2 SOURCE DESTINATION",
            )
        body = manifest.json()
        if kind in INDEX_MANIFESTS:
            if depth >= _MAX_INDEX_DEPTH:
                raise UnsupportedImage(f"{what}: indexes nested more than {depth} deep")
            children = body.get("manifests")
            if not isinstance(children, list):
                raise UnsupportedImage(f"{what}: the index has no manifests list")
            for value in children:
                descriptor = parse_descriptor(value, what)
                child = source.manifest(descriptor.digest, descriptor.media_type)
                if len(child.data) != descriptor.size:
                    raise DigestMismatch(
                        f"{what}: child manifest {descriptor.digest} has {len(child.data)} "
                        f"bytes, the index says {descriptor.size}"
                    )
                if descriptor.platform and descriptor.platform not in platforms:
                    platforms.append(descriptor.platform)
                visit(child, depth + 1)
        elif kind in IMAGE_MANIFESTS:
            config = body.get("config")
            layers = body.get("layers", [])
            if config is None or not isinstance(layers, list):
                raise UnsupportedImage(f"{what}: the manifest has no config or layers")
            for value in [config, *layers]:
                descriptor = parse_descriptor(value, what)
                blobs.setdefault(
                    descriptor.digest,
                    Blob(descriptor.digest, descriptor.size, descriptor.media_type),
                )
        else:
            raise UnsupportedImage(
                f"{what} has media type {kind!r}, which is not an image or an index",
                hint="the control-plane source must be a container image (OCI or Docker v2)",
            )
        manifests.append(manifest)

    visit(root, 0)
    return ImageGraph(root, tuple(manifests), tuple(blobs.values()), tuple(platforms))


# -- plan and push -------------------------------------------------------------------


BlobAction = Literal["present", "mount", "upload"]


@dataclass(frozen=True)
class CopyPlan:
    """What a copy will do; made without writing anything."""

    source: str
    registry: str
    repository: str  # namespace/alga-appliance-control-plane
    tag: str
    graph: ImageGraph
    blob_actions: dict[Digest, BlobAction]
    present_manifests: frozenset[Digest]
    tagged: bool  # the tag already points at the root digest

    @property
    def digest(self) -> Digest:
        return self.graph.root.digest

    @property
    def reference(self) -> str:
        namespace = self.repository.rsplit("/", 1)[0]
        return control_plane_reference(self.registry, namespace, self.digest)

    @property
    def complete(self) -> bool:
        """Everything, tag included, is already at the destination."""
        return (
            self.tagged
            and all(a == "present" for a in self.blob_actions.values())
            and all(m.digest in self.present_manifests for m in self.graph.manifests)
        )


@dataclass
class CopyResult:
    plan: CopyPlan
    blobs: dict[str, int] = field(
        default_factory=lambda: {"existing": 0, "mounted": 0, "uploaded": 0}
    )
    manifests_put: int = 0


def control_plane_repository(namespace: str) -> str:
    return check_repository(f"{namespace}/{CONTROL_PLANE_REPOSITORY}")


def plan_copy(source: ImageSource, client: RegistryClient, namespace: str, tag: str) -> CopyPlan:
    """Read the source's manifests and compare with the destination (HEADs only).

    Refuses (exit 3) before anything is written when ``tag`` exists at the
    destination with another digest.
    """
    repository = control_plane_repository(namespace)
    try:
        check_tag(tag)
    except InvalidReference as exc:
        raise BadInput(f"--tag: {exc.message}", hint=exc.hint) from None
    log.info("reading %s", source.name)
    graph = walk(source)
    digest = graph.root.digest
    current = client.head_manifest(repository, tag)
    if current is not None and current.digest != digest:
        raise Refused(
            _tag_conflict(client.registry, repository, tag, current.digest, source.name, digest),
            hint="copy it under a new tag (e.g. the source revision), or pin the image "
            f"already there with --control-plane {tag}",
        )
    actions: dict[Digest, BlobAction] = {}
    for blob in graph.blobs:
        if client.head_blob(repository, blob.digest) is not None:
            actions[blob.digest] = "present"
        elif source.mount_from and source.mount_from != repository:
            actions[blob.digest] = "mount"
        else:
            actions[blob.digest] = "upload"
    present = frozenset(
        m.digest for m in graph.manifests if client.head_manifest(repository, m.digest) is not None
    )
    plan = CopyPlan(
        source=source.name,
        registry=client.registry,
        repository=repository,
        tag=tag,
        graph=graph,
        blob_actions=actions,
        present_manifests=present,
        tagged=current is not None,
    )
    missing = [a for a in actions.values() if a != "present"]
    log.info(
        "%s is %s (%d manifest(s)%s, %d blob(s), %d missing at %s/%s)",
        source.name,
        digest,
        len(graph.manifests),
        f", platforms {', '.join(graph.platforms)}" if graph.platforms else "",
        len(actions),
        len(missing),
        client.registry,
        repository,
    )
    return plan


def _tag_conflict(
    registry: str, repository: str, tag: str, existing: Digest, source: str, digest: Digest
) -> str:
    return (
        f"{registry}/{repository}:{tag} already points at {existing}; the source {source} "
        f"is {digest}. Tags are immutable: nothing was changed"
    )


def push_copy(
    plan: CopyPlan, source: ImageSource, client: RegistryClient, *, workdir: Path | None = None
) -> CopyResult:
    """Push what the plan found missing: blobs, child manifests, root, then the tag."""
    result = CopyResult(plan)
    repository = plan.repository
    with tempfile.TemporaryDirectory(prefix="alga-cp-", dir=workdir) as tmp:
        for blob in plan.graph.blobs:
            action = plan.blob_actions[blob.digest]
            if action == "present":
                result.blobs["existing"] += 1
                continue
            if (
                action == "mount"
                and source.mount_from
                and _mount(client, repository, source.mount_from, blob.digest)
            ):
                log.info("blob %s mounted from %s", blob.digest.short, source.mount_from)
                result.blobs["mounted"] += 1
                continue
            log.info("blob %s (%d bytes): copying", blob.digest.short, blob.size)
            try:
                with source.open_blob(blob, Path(tmp)) as path:
                    status = client.push_blob(repository, path, digest=blob.digest)
            except DigestMismatch as exc:
                raise DigestMismatch(
                    exc.message,
                    hint=f"the source {plan.source} served altered content; nothing was "
                    f"tagged at {plan.registry}/{repository}. Fix or rebuild the source image",
                    status=exc.status,
                ) from None
            result.blobs[status] += 1
    for manifest in plan.graph.manifests:
        if manifest.digest in plan.present_manifests:
            continue
        client.put_manifest(repository, manifest.digest, manifest.data, manifest.media_type)
        result.manifests_put += 1
        log.info("manifest %s (%s) pushed", manifest.digest.short, manifest.media_type)
    # The tag goes last, so a failure above leaves nothing tagged. Look again: another
    # run may have taken the tag since the plan was made.
    current = client.head_manifest(repository, plan.tag)
    if current is None:
        root = plan.graph.root
        client.put_manifest(repository, plan.tag, root.data, root.media_type)
        log.info("tagged %s/%s:%s -> %s", plan.registry, repository, plan.tag, plan.digest)
    elif current.digest != plan.digest:
        raise Refused(
            _tag_conflict(
                plan.registry, repository, plan.tag, current.digest, plan.source, plan.digest
            ),
            hint="another run tagged it meanwhile; the pieces pushed are untagged",
        )
    return result


def _mount(client: RegistryClient, repository: str, source_repository: str, digest: Digest) -> bool:
    """Ask the registry to mount ``digest`` from ``source_repository``; True when it did.

    ``RegistryClient.push_blob`` mounts too, but only with the blob's bytes at hand;
    asking first saves downloading a layer the registry already holds.
    """
    return client.mount_blob(repository, source_repository, digest)


def copy_result_json(result: CopyResult) -> dict[str, Any]:
    plan = result.plan
    status = "unchanged" if plan.complete else "copied"
    return {
        "reference": plan.reference,
        "repository": f"{plan.registry}/{plan.repository}",
        "tag": plan.tag,
        "digest": str(plan.digest),
        "mediaType": plan.graph.root.media_type,
        "platforms": list(plan.graph.platforms),
        "source": plan.source,
        "status": status,
        "blobs": dict(result.blobs),
        "manifestsPushed": result.manifests_put,
    }


def dry_run_json(plan: CopyPlan) -> dict[str, Any]:
    return {
        "dryRun": True,
        "reference": plan.reference,
        "repository": f"{plan.registry}/{plan.repository}",
        "tag": plan.tag,
        "digest": str(plan.digest),
        "mediaType": plan.graph.root.media_type,
        "platforms": list(plan.graph.platforms),
        "source": plan.source,
        "status": "unchanged" if plan.complete else "would-copy",
        "blobs": [
            {
                "digest": str(b.digest),
                "size": b.size,
                "mediaType": b.media_type,
                "action": plan.blob_actions[b.digest],
            }
            for b in plan.graph.blobs
        ],
        "manifests": [
            {
                "digest": str(m.digest),
                "mediaType": m.media_type,
                "action": "present" if m.digest in plan.present_manifests else "push",
            }
            for m in plan.graph.manifests
        ],
        "tagAction": "present" if plan.tagged else "tag",
    }


def copy_image(
    spec: SourceSpec,
    client: RegistryClient,
    namespace: str,
    tag: str,
    *,
    source_client: RegistryClient | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Plan, then (unless ``dry_run``) push; returns the JSON result."""
    source = open_source(spec, client, source_client)
    plan = plan_copy(source, client, namespace, tag)
    if dry_run:
        return dry_run_json(plan)
    if plan.complete:
        log.info("%s is already tagged %s, everything present: nothing to do", plan.reference, tag)
    return copy_result_json(push_copy(plan, source, client))


# -- .dockerignore (pure) --------------------------------------------------------------


def read_dockerignore(text: str) -> list[str]:
    """Patterns of a ``.dockerignore``, as the Docker CLI reads them.

    Lines starting with ``#`` are comments; surrounding blanks are dropped; a
    pattern is cleaned like a path (``./a//b/`` -> ``a/b``) and a leading ``/``
    removed; ``!`` marks an exception.
    """
    patterns: list[str] = []
    for number, raw in enumerate(text.splitlines()):
        line = raw.removeprefix("\ufeff") if number == 0 else raw
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = _clean_path(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append(("!" if invert else "") + line)
    return patterns


def _clean_path(path: str) -> str:
    """Go's ``filepath.Clean`` for ``/``-separated paths."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


@dataclass(frozen=True)
class _Pattern:
    text: str
    exclusion: bool
    kind: Literal["exact", "prefix", "suffix", "regexp"]
    regex: re.Pattern[str] | None

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        assert self.regex is not None
        return self.regex.fullmatch(path) is not None


_ESCAPE = set(".+()|{}$")


def _compile(pattern: str) -> _Pattern:
    """Compile one pattern the way moby's ``patternmatcher`` does (``/`` separators)."""
    exclusion = pattern.startswith("!")
    text = pattern[1:] if exclusion else pattern
    out = ""
    kind: Literal["exact", "prefix", "suffix", "regexp"] = "exact"
    i = 0
    position = 0
    while i < len(text):
        ch = text[i]
        i += 1
        if ch == "*":
            if i < len(text) and text[i] == "*":
                i += 1
                if i < len(text) and text[i] == "/":
                    i += 1
                if i >= len(text):
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        out += ".*"
                        kind = "regexp"
                else:
                    out += "(.*/)?"
                    kind = "regexp"
                if position == 0:
                    kind = "suffix"
            else:
                out += "[^/]*"
                kind = "regexp"
        elif ch == "?":
            out += "[^/]"
            kind = "regexp"
        elif ch in _ESCAPE:
            out += "\\" + ch
        elif ch == "\\":
            if i < len(text):
                out += re.escape(text[i])
                i += 1
                kind = "regexp"
            else:
                out += "\\\\"
        elif ch in "[]":
            out += ch
            kind = "regexp"
        else:
            out += ch
        position += 1
    regex = None
    if kind == "regexp":
        try:
            regex = re.compile(out)
        except re.error as exc:
            raise BadInput(f".dockerignore pattern {pattern!r} is invalid: {exc}") from None
    return _Pattern(text, exclusion, kind, regex)


class IgnoreMatcher:
    """Decides whether a context path is excluded, with Docker's semantics.

    Patterns match the whole path relative to the context (``*.md`` matches only
    top-level files; use ``**/*.md`` for any depth). A path is excluded when it,
    or one of its parent folders, matches; later patterns override earlier ones,
    and ``!`` patterns re-include.
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        compiled = []
        for raw in patterns:
            pattern = raw.strip()
            exclusion = pattern.startswith("!")
            body = pattern[1:] if exclusion else pattern
            if not body:
                if exclusion:
                    raise BadInput('.dockerignore: "!" alone is not a pattern')
                continue
            compiled.append(_compile(("!" if exclusion else "") + _clean_path(body)))
        self.patterns = compiled
        self._parents: dict[str, tuple[bool, ...]] = {}

    def may_reinclude_below(self, folder: str) -> bool:
        """Whether an exception pattern may bring back something below an excluded
        ``folder``; if not, the folder need not be walked at all.

        Docker's own test: some ``!pattern`` starts with ``folder/``. So
        ``!packages/core/dist/**`` keeps ``packages/core/dist`` walked, while
        ``node_modules`` is skipped whole.
        """
        prefix = folder + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)

    def excluded(self, path: str) -> bool:
        parent = path.rpartition("/")[0]
        in_parents = self._parent_hits(parent) if parent else None
        matched = False
        for i, pattern in enumerate(self.patterns):
            if pattern.exclusion != matched:
                continue
            if pattern.match(path) or (in_parents is not None and in_parents[i]):
                matched = not pattern.exclusion
        return matched

    def _parent_hits(self, folder: str) -> tuple[bool, ...]:
        """For each pattern: does it match ``folder`` or one of its parents? (memoised:
        every file of a folder asks the same question)."""
        cached = self._parents.get(folder)
        if cached is None:
            parent = folder.rpartition("/")[0]
            above = self._parent_hits(parent) if parent else (False,) * len(self.patterns)
            cached = tuple(a or p.match(folder) for a, p in zip(above, self.patterns, strict=True))
            self._parents[folder] = cached
        return cached


# -- build context -------------------------------------------------------------------

#: alga-psa builds the control-plane image from the repository root:
#: ``docker build -f ee/appliance/control-plane/Dockerfile .`` (its COPY lines name
#: ``ee/appliance/...`` paths), so the default context is the checkout itself.
DEFAULT_CONTEXT = "."
DEFAULT_DOCKERFILE = "ee/appliance/control-plane/Dockerfile"
EXTERNAL_DOCKERFILE = ".dockerfile.alga-release"


@dataclass(frozen=True)
class BuildContext:
    """A build context: which files go to the engine, and the Dockerfile's name in it."""

    context_dir: Path
    dockerfile: Path
    dockerfile_name: str  # the path inside the context tar the engine is told to use
    entries: tuple[str, ...]  # relative POSIX paths (folders, files, symlinks), sorted
    ignore_patterns: tuple[str, ...]

    def write_tar(self, fh: BinaryIO) -> int:
        """Write the context as an uncompressed tar; returns the number of entries."""
        count = 0
        with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for rel in self.entries:
                info = tar.gettarinfo(str(self.context_dir / rel), arcname=rel)
                _normalise(info)
                if info.isreg():
                    with (self.context_dir / rel).open("rb") as content:
                        tar.addfile(info, content)
                else:
                    tar.addfile(info)
                count += 1
            if self.dockerfile_name == EXTERNAL_DOCKERFILE:
                data = self.dockerfile.read_bytes()
                info = tarfile.TarInfo(EXTERNAL_DOCKERFILE)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
                count += 1
        return count


def _normalise(info: tarfile.TarInfo) -> None:
    # As the Docker CLI does: owner root, no user or group names.
    info.uid = info.gid = 0
    info.uname = info.gname = ""


def resolve_build_paths(
    source: Path, context: str | None = None, dockerfile: str | None = None
) -> tuple[Path, Path]:
    """``(context folder, Dockerfile)`` of a source checkout; both must exist.

    ``context`` and ``dockerfile`` are relative to ``source`` (absolute paths are
    taken as given). Defaults: the checkout itself and
    ``ee/appliance/control-plane/Dockerfile``, as alga-psa builds it.
    """
    if not source.is_dir():
        raise BadInput(f"--source {source}: not a folder", hint="give the alga-psa checkout")
    context_dir = source / (context or DEFAULT_CONTEXT)
    if not context_dir.is_dir():
        raise BadInput(
            f"build context {context_dir} is not a folder",
            hint="give the alga-psa checkout with --source, or the context with --context",
        )
    dockerfile_path = source / (dockerfile or DEFAULT_DOCKERFILE)
    if not dockerfile_path.is_file():
        raise BadInput(
            f"Dockerfile {dockerfile_path} does not exist",
            hint="--source must be an alga-psa checkout (with ee/appliance/control-plane/"
            "Dockerfile), or name the Dockerfile with --dockerfile (relative to --source)",
        )
    return context_dir.resolve(), dockerfile_path.resolve()


def assemble_context(context_dir: Path, dockerfile: Path) -> BuildContext:
    """List the context's files minus what ``.dockerignore`` excludes.

    The Dockerfile and ``.dockerignore`` are always sent (the engine needs them;
    like Docker, it drops them again when ``.dockerignore`` lists them). A
    Dockerfile outside the context is added under a fixed name. Symlinks are sent
    as links, never followed; sockets and devices are skipped.
    """
    ignore_file = context_dir / ".dockerignore"
    patterns: list[str] = []
    if ignore_file.is_file():
        patterns = read_dockerignore(ignore_file.read_text(encoding="utf-8"))
    matcher = IgnoreMatcher(patterns)
    try:
        dockerfile_name = dockerfile.relative_to(context_dir).as_posix()
    except ValueError:
        dockerfile_name = EXTERNAL_DOCKERFILE
    always = {dockerfile_name, ".dockerignore"}
    entries: list[str] = []
    for top, dirs, files in os.walk(context_dir):
        top_path = Path(top)
        rel_top = top_path.relative_to(context_dir).as_posix()
        keep_dirs: list[str] = []
        names = sorted(dirs + files)
        for name in names:
            full = top_path / name
            rel = name if rel_top == "." else f"{rel_top}/{name}"
            is_dir = full.is_dir() and not full.is_symlink()
            excluded = rel not in always and matcher.excluded(rel)
            if is_dir:
                if excluded and not matcher.may_reinclude_below(rel):
                    continue  # nothing below can come back: do not even walk it
                keep_dirs.append(name)
                if not excluded:
                    entries.append(rel)
            elif not excluded and (full.is_symlink() or full.is_file()):
                entries.append(rel)
        dirs[:] = sorted(keep_dirs)
    return BuildContext(
        context_dir=context_dir,
        dockerfile=dockerfile,
        dockerfile_name=dockerfile_name,
        entries=tuple(sorted(entries)),
        ignore_patterns=tuple(patterns),
    )


# -- the engine ------------------------------------------------------------------------

Event = dict[str, Any]


class Engine(Protocol):
    """A Docker-API engine: build a context into a tagged image, push a tag.

    Both return the engine's JSON message stream; errors may come as messages.
    """

    def build(
        self,
        context: BinaryIO,
        *,
        dockerfile: str,
        tag: str,
        build_args: Mapping[str, str],
        platform: str | None,
    ) -> Iterable[Event]: ...

    def push(
        self, repository: str, tag: str, auth: Mapping[str, str] | None
    ) -> Iterable[Event]: ...


class DockerEngine:
    """:class:`Engine` over the Docker SDK (``docker.from_env()``: ``DOCKER_HOST``,
    ``DOCKER_TLS_VERIFY``, ``DOCKER_CERT_PATH``). Works with dockerd and with
    ``podman system service``."""

    def __init__(self, api: Any, where: str) -> None:
        self.api = api
        self.where = where

    @classmethod
    def connect(cls, wait: float = 30.0, timeout: float = 3600.0) -> DockerEngine:
        """Connect, waiting up to ``wait`` seconds for the engine to answer."""
        docker = _docker_sdk()
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock (DOCKER_HOST unset)"
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                client = docker.from_env(timeout=int(timeout))
                client.ping()
                log.info("engine at %s: %s", where, client.version().get("Version", "?"))
                return cls(client.api, where)
            except (docker.errors.DockerException, OSError) as exc:
                if time.monotonic() >= deadline:
                    raise EngineUnavailable(
                        f"cannot reach the container engine at {where}: {_short(exc)}",
                        hint="set DOCKER_HOST to a Docker-API engine (in Argo the "
                        "docker-in-docker sidecar, e.g. tcp://localhost:2375); "
                        "--engine-wait waits for it to start",
                    ) from None
                time.sleep(1.0)

    def _guard(self, doing: str, events: Iterable[Event]) -> Iterator[Event]:
        docker = _docker_sdk()
        try:
            yield from events
        except docker.errors.APIError as exc:
            raise EngineError(
                f"{doing}: the engine at {self.where} answered: {_short(exc)}"
            ) from None
        except (docker.errors.DockerException, OSError) as exc:
            raise EngineUnavailable(
                f"{doing}: lost the engine at {self.where}: {_short(exc)}"
            ) from None

    def build(
        self,
        context: BinaryIO,
        *,
        dockerfile: str,
        tag: str,
        build_args: Mapping[str, str],
        platform: str | None,
    ) -> Iterator[Event]:
        def start() -> Iterable[Event]:
            events: Iterable[Event] = self.api.build(
                fileobj=context,
                custom_context=True,
                dockerfile=dockerfile,
                tag=tag,
                buildargs=dict(build_args),
                platform=platform,
                rm=True,
                forcerm=True,
                decode=True,
            )
            return events

        return self._guard(f"building {tag}", _lazy(start))

    def push(self, repository: str, tag: str, auth: Mapping[str, str] | None) -> Iterator[Event]:
        def start() -> Iterable[Event]:
            events: Iterable[Event] = self.api.push(
                repository,
                tag=tag,
                auth_config=dict(auth) if auth else None,
                stream=True,
                decode=True,
            )
            return events

        return self._guard(f"pushing {repository}:{tag}", _lazy(start))


def _docker_sdk() -> Any:
    """The ``docker`` package (an optional dependency: the ``docker`` extra)."""
    try:
        # The Docker SDK ships no type information; everything taken from it is Any.
        import docker  # type: ignore[import-untyped]
    except ImportError:
        raise BadInput(
            "the Docker SDK is not installed",
            hint="pip install 'alga-appliance-release[docker]'",
        ) from None
    return docker


def _lazy(start: Any) -> Iterator[Event]:
    yield from start()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


_PUSHED_DIGEST = re.compile(r"digest: (sha256:[a-f0-9]{64})")
_TRANSIENT_PUSH = re.compile(
    r"toomanyrequests|too many requests|\b50[234]\b|connection reset|connection refused|"
    r"i/o timeout|timeout|\bEOF\b",
    re.IGNORECASE,
)
_DENIED_PUSH = re.compile(r"denied|unauthori[sz]ed|authentication required|forbidden", re.I)


def _event_error(event: Event) -> str | None:
    if "error" in event or "errorDetail" in event:
        detail = event.get("errorDetail")
        message = event.get("error") or (detail.get("message") if isinstance(detail, dict) else "")
        return str(message or "unknown error").strip()
    return None


def follow_build(events: Iterable[Event], what: str) -> str | None:
    """Log the build output; return the image ID (``aux.ID``) or raise on an error."""
    image_id: str | None = None
    for event in events:
        error = _event_error(event)
        if error is not None:
            raise EngineError(
                f"building {what} failed: {error}",
                hint="see the build output above; fix the Dockerfile or the source",
            )
        stream = event.get("stream")
        if isinstance(stream, str):
            for line in stream.splitlines():
                if line.strip():
                    log.info("build: %s", line.rstrip())
        aux = event.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
            image_id = aux["ID"]
    return image_id


def follow_push(events: Iterable[Event], what: str) -> Digest:
    """The manifest digest the engine pushed: ``aux.Digest`` (dockerd) or the
    ``<tag>: digest: sha256:... size: N`` status line (dockerd and podman)."""
    digest: Digest | None = None
    for event in events:
        error = _event_error(event)
        if error is not None:
            if _DENIED_PUSH.search(error):
                raise AuthError(
                    f"pushing {what}: the registry refused the engine's push: {error}",
                    hint="check ALGA_REGISTRY_USERNAME / ALGA_REGISTRY_PASSWORD (or "
                    "--password-file) and that the account may push this repository",
                )
            if _TRANSIENT_PUSH.search(error):
                raise TransientRegistryError(f"pushing {what}: {error}")
            raise EngineError(f"pushing {what} failed: {error}")
        aux = event.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
            digest = Digest.parse(aux["Digest"])
            continue
        status = event.get("status")
        if isinstance(status, str):
            match = _PUSHED_DIGEST.search(status)
            if match and digest is None:
                digest = Digest.parse(match.group(1))
            log.debug("push: %s", status.strip())
    if digest is None:
        raise EngineError(
            f"pushing {what}: the engine reported no digest",
            hint="the push may not have happened; look at the engine's log",
        )
    return digest


@dataclass(frozen=True)
class BuildResult:
    registry: str
    repository: str
    tag: str
    digest: Digest
    status: Literal["pushed", "existing"]
    image_id: str | None = None
    context_entries: int = 0

    @property
    def reference(self) -> str:
        namespace = self.repository.rsplit("/", 1)[0]
        return control_plane_reference(self.registry, namespace, self.digest)

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "repository": f"{self.registry}/{self.repository}",
            "tag": self.tag,
            "digest": str(self.digest),
            "status": self.status,
            "imageId": self.image_id,
        }


def build_and_push(
    connect: Callable[[], Engine],
    client: RegistryClient,
    namespace: str,
    tag: str,
    context: BuildContext,
    *,
    credentials: Credentials | None = None,
    build_args: Mapping[str, str] | None = None,
    platform: str | None = None,
) -> BuildResult:
    """Build ``context`` with the engine ``connect()`` returns, push it as ``tag``
    and check the digest the engine reports with a HEAD through ``client``.

    A tag that already exists is kept and returned (``status: existing``) without
    building or connecting to the engine: builds are not reproducible, so
    rebuilding could only move it.
    """
    repository = control_plane_repository(namespace)
    try:
        check_tag(tag)
    except InvalidReference as exc:
        raise BadInput(f"--tag: {exc.message}", hint=exc.hint) from None
    full = f"{client.registry}/{repository}"
    current = client.head_manifest(repository, tag)
    if current is not None:
        log.warning(
            "%s:%s already exists (%s); tags are immutable, so it is kept and not rebuilt "
            "(use a new tag, e.g. the source revision, to publish a new build)",
            full,
            tag,
            current.digest,
        )
        return BuildResult(client.registry, repository, tag, current.digest, "existing")
    image = f"{full}:{tag}"
    engine = connect()
    with tempfile.TemporaryFile(prefix="alga-cp-context-") as fh:
        count = context.write_tar(fh)
        size = fh.tell()
        fh.seek(0)
        log.info(
            "building %s from %s (%d entries, %d bytes, dockerfile %s)",
            image,
            context.context_dir,
            count,
            size,
            context.dockerfile_name,
        )
        image_id = follow_build(
            engine.build(
                fh,
                dockerfile=context.dockerfile_name,
                tag=image,
                build_args=dict(build_args or {}),
                platform=platform,
            ),
            f"{image} from {context.dockerfile}",
        )
    auth = (
        {"username": credentials.username, "password": credentials.password}
        if credentials
        else None
    )
    log.info("pushing %s", image)
    digest = follow_push(engine.push(full, tag, auth), image)
    head = client.head_manifest(repository, digest)
    tagged = client.head_manifest(repository, tag)
    if head is None or tagged is None or tagged.digest != digest:
        found = tagged.digest if tagged else "nothing"
        raise ReleaseError(
            f"the engine reported pushing {image} as {digest}, but the registry has {found} "
            f"under {tag}",
            hint="another push may have raced this one; check the registry and re-run",
        )
    log.info("pushed %s@%s", full, digest)
    return BuildResult(client.registry, repository, tag, digest, "pushed", image_id, count)


def parse_build_args(values: Sequence[str]) -> dict[str, str]:
    """``["K=V", ...]`` -> ``{"K": "V"}``."""
    args: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise BadInput(f"--build-arg {value!r}: expected KEY=VALUE")
        args[key] = val
    return args
