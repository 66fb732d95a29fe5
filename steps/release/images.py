"""The release's images: four app image tags and the control-plane image.

The app images are referenced by **bare tags** (the charts build
``<repository>:<tag>``); a release may only name tags that exist. The control
plane is referenced by a **full digest reference**
``<registry>/<namespace>/alga-appliance-control-plane@sha256:...`` (the
bootstrap script and upgrade detection need the digest form); it may be given
as a tag (resolved to its digest here) or as a digest (checked to exist).

Pure parsing at the top; :func:`check_images` and :func:`resolve_control_plane`
talk to the registry (HEAD requests only, nothing is written).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from steps.errors import BadInput, Refused
from steps.names import control_plane_reference
from steps.oci.errors import InvalidReference
from steps.oci.reference import Digest, check_repository, check_tag

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient
    from steps.oci.model import ManifestReader

log = logging.getLogger("alga_release.images")

#: manifest key -> repository name under the namespace
IMAGE_REPOSITORIES: dict[str, str] = {
    "algaCore": "alga-psa-ee",
    "workflowWorker": "workflow-worker",
    "emailService": "email-service",
    "temporalWorker": "temporal-worker",
}
CONTROL_PLANE_REPOSITORY = "alga-appliance-control-plane"

_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class ImageCheck:
    key: str
    repository: str  # registry/namespace/repo
    tag: str
    digest: Digest | None  # None when missing

    @property
    def present(self) -> bool:
        return self.digest is not None


def parse_image_args(values: Sequence[str]) -> dict[str, str]:
    """``["algaCore=62cdce38", ...]`` -> ``{"algaCore": "62cdce38", ...}``; all four required."""
    images: dict[str, str] = {}
    for value in values:
        key, sep, tag = value.partition("=")
        if not sep or not key or not tag:
            raise BadInput(
                f"--image {value!r}: expected KEY=TAG, e.g. algaCore=62cdce38",
                hint=f"keys: {', '.join(IMAGE_REPOSITORIES)}",
            )
        if key not in IMAGE_REPOSITORIES:
            raise BadInput(
                f"--image {value!r}: unknown image {key!r}",
                hint=f"keys: {', '.join(IMAGE_REPOSITORIES)}",
            )
        if key in images and images[key] != tag:
            raise BadInput(f"--image {key} given twice ({images[key]} and {tag})")
        images[key] = check_bare_tag(key, tag)
    missing = [k for k in IMAGE_REPOSITORIES if k not in images]
    if missing:
        raise BadInput(
            f"missing image tag(s): {', '.join(missing)}",
            hint="a release must pin all four app images: "
            + " ".join(f"--image {k}=TAG" for k in missing),
        )
    return images


def check_bare_tag(key: str, tag: str) -> str:
    if any(c in tag for c in ":/@"):
        raise BadInput(
            f"image {key}: {tag!r} is not a bare tag",
            hint="give only the tag (e.g. 62cdce38); the charts add the repository",
        )
    try:
        return check_tag(tag)
    except InvalidReference as exc:
        raise BadInput(f"image {key}: {exc.message}") from None


def image_repository(namespace: str, key: str) -> str:
    return check_repository(f"{namespace}/{IMAGE_REPOSITORIES[key]}")


def check_images(
    client: ManifestReader, namespace: str, images: Mapping[str, str]
) -> list[ImageCheck]:
    """HEAD every app image tag; returns one check per image (missing ones included)."""
    queries = [(image_repository(namespace, key), tag) for key, tag in images.items()]
    heads = client.head_manifests(queries)  # a few at a time
    return [
        ImageCheck(key, f"{client.registry}/{repository}", tag, head.digest if head else None)
        for key, (repository, tag), head in zip(images, queries, heads, strict=True)
    ]


def require_images(
    client: ManifestReader, namespace: str, images: Mapping[str, str]
) -> list[ImageCheck]:
    """Like :func:`check_images`, but refuse (exit 3) when any tag is missing, naming all."""
    checks = check_images(client, namespace, images)
    missing = [c for c in checks if not c.present]
    if missing:
        raise Refused(
            "image tag(s) missing from the registry: "
            + ", ".join(f"{c.repository}:{c.tag} ({c.key})" for c in missing),
            hint="push the images first (or fix the tags); a release may only name "
            "images that exist",
        )
    for check in checks:
        log.info("image %s: %s:%s present", check.key, check.repository, check.tag)
    return checks


def resolve_control_plane(client: ManifestReader, namespace: str, given: str) -> str:
    """A tag, ``sha256:...`` or a full ``.../alga-appliance-control-plane@sha256:...``
    -> the full digest reference in this registry, checked to exist."""
    repository = check_repository(f"{namespace}/{CONTROL_PLANE_REPOSITORY}")
    full = f"{client.registry}/{repository}"
    if "@" in given:
        prefix, _, digest_text = given.partition("@")
        if prefix != full:
            raise BadInput(
                f"--control-plane {given!r}: the image must be in {full}",
                hint="copy it there first (alga-release control-plane copy), or pass its "
                "tag or digest",
            )
        given = digest_text
    if given.startswith("sha256:"):
        if not _DIGEST_RE.match(given):
            raise BadInput(f"--control-plane {given!r}: not a valid sha256 digest")
        ref: str | Digest = Digest.parse(given)
    else:
        try:
            ref = check_tag(given)
        except InvalidReference as exc:
            raise BadInput(f"--control-plane: {exc.message}") from None
    head = client.head_manifest(repository, ref)
    if head is None:
        sep = "@" if isinstance(ref, Digest) else ":"
        raise Refused(
            f"control-plane image {full}{sep}{ref} does not exist",
            hint="publish the control-plane image first (alga-release control-plane copy or build)",
        )
    return control_plane_reference(client.registry, namespace, head.digest)


# -- recorded digests (imageDigests) -------------------------------------------------------


def image_digests(checks: Sequence[ImageCheck]) -> dict[str, str]:
    """``imageDigests`` for the release manifest from :func:`require_images`' checks:
    each key's tag resolved to ``sha256:<64 hex>`` (the charts still get the bare tag)."""
    return {c.key: str(c.digest) for c in sorted(checks, key=lambda c: c.key) if c.digest}


@dataclass(frozen=True)
class ImageDrift:
    """An app image whose tag no longer points at the digest the release recorded."""

    key: str
    repository: str  # registry/namespace/repo
    tag: str
    recorded: Digest
    current: Digest | None  # what the tag points at now; None when the tag is gone
    pinned_present: bool  # the recorded digest still resolves in the repository

    def describe(self) -> str:
        now = f"now {self.current}" if self.current else "the tag is gone"
        pinned = "still resolves by digest" if self.pinned_present else "MISSING by digest"
        return (
            f"image {self.key}: {self.repository}:{self.tag} moved away from the recorded "
            f"{self.recorded} ({now}); the release's digest {pinned}"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "reference": f"{self.repository}:{self.tag}",
            "recorded": str(self.recorded),
            "current": str(self.current) if self.current else None,
            "pinnedPresent": self.pinned_present,
        }


def image_drift(
    client: RegistryClient, namespace: str, release: Mapping[str, object]
) -> list[ImageDrift]:
    """Every app image whose tag moved away from the release's ``imageDigests`` (HEAD
    requests only). A release without ``imageDigests`` (older) has nothing to compare: []."""
    tags = release.get("images")
    recorded = release.get("imageDigests")
    if not isinstance(tags, Mapping) or not isinstance(recorded, Mapping):
        return []
    drift = []
    for key in IMAGE_REPOSITORIES:
        tag, pinned = tags.get(key), recorded.get(key)
        if not isinstance(tag, str) or not isinstance(pinned, str) or not _DIGEST_RE.match(pinned):
            continue
        repository = image_repository(namespace, key)
        digest = Digest.parse(pinned)
        head = client.head_manifest(repository, tag)
        if head is not None and head.digest == digest:
            continue
        present = client.head_manifest(repository, digest) is not None
        drift.append(
            ImageDrift(
                key,
                f"{client.registry}/{repository}",
                tag,
                digest,
                head.digest if head else None,
                present,
            )
        )
    return drift
