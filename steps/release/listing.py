"""What has been published: release versions, newest first, and where the channels point.

:func:`list_releases` reads the release repository's tag list (every page: thousands of
tags are fine), keeps the tags that are SemVer release versions, and for the newest
``limit`` of them reads the release manifest (one GET each: its digest, verified, and the
``org.opencontainers.image.created`` annotation the publisher sets from the source
revision's time). Each channel tag is resolved once (a HEAD) and attached to the versions
it points at. Channel tags, audit records (``move.*``) and anything else that is not a
version are not releases and are left out.

Reads only; nothing here writes to the registry. :func:`listing_json` is the ``--json``
shape of ``alga-release list``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import semver

from steps.channels.move import CHANNELS, release_repository
from steps.errors import BadInput
from steps.oci import mediatypes as mt
from steps.oci.errors import NotFound, RegistryRefused
from steps.oci.reference import Digest

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient


@dataclass(frozen=True)
class PublishedRelease:
    """One published version. ``problem`` says why its manifest is not a release's."""

    version: str
    digest: Digest | None
    created: str | None
    channels: tuple[str, ...] = ()
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "digest": str(self.digest) if self.digest else None,
            "created": self.created,
            "channels": list(self.channels),
            "problem": self.problem,
        }


@dataclass(frozen=True)
class ReleaseListing:
    """The listing: ``releases`` newest first; ``channels`` maps each channel to the digest
    it points at (None: not set); ``total`` counts every version tag, listed or not."""

    repository: str
    releases: list[PublishedRelease]
    channels: dict[str, Digest | None]
    total: int
    tags_read: int
    unlisted_channels: tuple[str, ...] = field(default=())
    """Channels whose release is not among the listed versions (older than ``limit``, or
    a digest no version tag holds)."""


def release_versions(tags: Iterable[str]) -> list[str]:
    """The tags that are release versions (SemVer, no build metadata), newest first."""
    parsed: list[tuple[semver.Version, str]] = []
    for tag in tags:
        try:
            version = semver.Version.parse(tag)
        except (ValueError, TypeError):
            continue
        if not version.build:
            parsed.append((version, tag))
    parsed.sort(key=lambda pair: pair[0], reverse=True)
    return [tag for _, tag in parsed]


def list_releases(
    client: RegistryClient,
    namespace: str,
    *,
    limit: int | None = None,
    channels: Sequence[str] = CHANNELS,
    page_size: int = 1000,
) -> ReleaseListing:
    """Published versions of ``namespace``'s releases, newest first (at most ``limit``)."""
    if limit is not None and limit < 1:
        raise BadInput(f"--limit {limit}: expected at least 1 version to list")
    repository = release_repository(namespace)
    tags = client.list_tags(repository, page_size=page_size)
    if not tags:
        raise NotFound(
            f"{client.registry}/{repository}: no such repository (or no tags)",
            hint="check --registry and --namespace; nothing has been published there yet",
        )
    present = set(tags)
    pointers: dict[str, Digest | None] = {}
    for channel in channels:
        head = client.head_manifest(repository, channel) if channel in present else None
        pointers[channel] = head.digest if head else None
    versions = release_versions(tags)
    shown = versions if limit is None else versions[:limit]
    releases = [_read(client, repository, version, pointers) for version in shown]
    listed = {r.digest for r in releases if r.digest is not None}
    unlisted = tuple(c for c, d in pointers.items() if d is not None and d not in listed)
    return ReleaseListing(repository, releases, pointers, len(versions), len(tags), unlisted)


def _read(
    client: RegistryClient, repository: str, version: str, pointers: dict[str, Digest | None]
) -> PublishedRelease:
    try:
        manifest = client.get_manifest(repository, version)
    except NotFound:  # deleted between the listing and now
        return PublishedRelease(version, None, None, (), "the tag disappeared while listing")
    on = tuple(c for c, d in pointers.items() if d == manifest.digest)
    try:
        body = manifest.json()
    except (ValueError, RegistryRefused):
        return PublishedRelease(version, manifest.digest, None, on, "the manifest is not JSON")
    config = body.get("config")
    if not isinstance(config, dict) or config.get("mediaType") != mt.RELEASE_CONFIG:
        return PublishedRelease(version, manifest.digest, None, on, "not a release manifest")
    annotations = body.get("annotations")
    created = annotations.get(mt.ANNOTATION_CREATED) if isinstance(annotations, dict) else None
    return PublishedRelease(
        version, manifest.digest, created if isinstance(created, str) else None, on
    )


def listing_json(listing: ReleaseListing) -> dict[str, Any]:
    """The ``--json`` result of ``alga-release list``."""
    return {
        "repository": listing.repository,
        "releases": [release.to_json() for release in listing.releases],
        "channels": {c: (str(d) if d else None) for c, d in listing.channels.items()},
        "total": listing.total,
        "unlistedChannels": list(listing.unlisted_channels),
    }


def listing_text(listing: ReleaseListing) -> str:
    """The human table: version, created, digest (short), channels."""
    rows = [("VERSION", "CREATED", "DIGEST", "CHANNELS")]
    for release in listing.releases:
        rows.append(
            (
                release.version,
                release.created or "-",
                release.digest.short if release.digest else "-",
                ",".join(release.channels) or (f"({release.problem})" if release.problem else ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        for row in rows
    ]
    if len(listing.releases) < listing.total:
        lines.append(f"({listing.total - len(listing.releases)} older version(s) not shown)")
    for channel in listing.unlisted_channels:
        digest = listing.channels[channel]
        lines.append(f"{channel} -> {digest.short if digest else '-'} (not among those shown)")
    return "\n".join(line.rstrip() for line in lines)
