"""Where a control-plane image comes from: a source reference (a registry reference or
``oci-layout:PATH[:TAG|@sha256:...]``), its credentials, and the two image sources
(:class:`RegistrySource`, :class:`LayoutSource`) behind one small :class:`ImageSource`
interface. Every manifest and blob read is checked against its digest and size.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steps.controlplane.graph import (
    Blob,
    ImageSource,
    UnsupportedImage,
    manifest_media_type,
    parse_descriptor,
)
from steps.errors import BadInput
from steps.oci.auth import Credentials
from steps.oci.errors import (
    AuthError,
    DigestMismatch,
    InvalidReference,
    NotFound,
    TransientRegistryError,
)
from steps.oci.model import MAX_MANIFEST_SIZE, Manifest
from steps.oci.reference import Digest, Reference, check_tag
from steps.redact import register_secret

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient

log = logging.getLogger("alga_release.controlplane")

ENV_SOURCE_USERNAME = "ALGA_SOURCE_REGISTRY_USERNAME"
ENV_SOURCE_PASSWORD = "ALGA_SOURCE_REGISTRY_PASSWORD"
LAYOUT_PREFIX = "oci-layout:"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"


# -- errors --------------------------------------------------------------------


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
            digest = Digest.parse_for(digest_text, f"source {text!r}", BadInput)
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


def source_credentials(env: Mapping[str, str]) -> Credentials | None:
    """Credentials for a source registry from ``ALGA_SOURCE_REGISTRY_USERNAME`` /
    ``ALGA_SOURCE_REGISTRY_PASSWORD`` in ``env``; ``None`` for anonymous pulls."""
    source = env
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
        import tempfile

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
