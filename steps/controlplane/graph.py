"""The manifest graph of an image (pure): descriptors, media types, and the walk from
the root manifest through an index to every child manifest and blob.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from steps.archive import json_object
from steps.errors import BadInput
from steps.oci import mediatypes as mt
from steps.oci.errors import (
    DigestMismatch,
)
from steps.oci.model import Manifest
from steps.oci.reference import Digest

log = logging.getLogger("alga_release.controlplane")

DOCKER_SCHEMA1 = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)


IMAGE_MANIFESTS = frozenset({mt.OCI_MANIFEST, mt.DOCKER_MANIFEST})


INDEX_MANIFESTS = frozenset({mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST})


_MAX_INDEX_DEPTH = 3


class UnsupportedImage(BadInput):
    """The source is not an image this step can copy (schema 1, unknown type, malformed)."""


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
    digest = Digest.parse_for(digest_text, where, UnsupportedImage)
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
    body = json_object(data, f"{what}: the manifest", UnsupportedImage)
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
