"""The channel's audit trail: one immutable record per move, and a per-channel index.

Two kinds of objects live in ``<namespace>/alga-appliance-release`` beside the releases:

- **move records**: ``:move.<channel>.<UTC stamp>.<random>``, one small OCI artifact per
  move (its config blob is the :class:`MoveRecord` JSON; its subject is the release it moved
  to). A tag is written once and never again, so concurrent writers cannot lose each
  other's records. A record is written *before* the channel tag moves: it is the writer's
  claim, and the winner rule (:mod:`.rules`) is a function of the records alone.
- **the index**: ``:history.<channel>``, one artifact rewritten on each move, holding the
  channel's last records in the order they took effect (at most ``2 * PAGE`` entries) and
  the tag of the page that holds the ones before (``:history.<channel>.<n>``, pages of
  exactly ``PAGE`` entries, each pointing at the one before). ``history``, ``rollback`` and
  the concurrency checks read the index (one manifest and one blob), not the tag list. The
  index is last-writer-wins like any tag: it is a cache of the records, rebuilt from them
  by whoever finds it out of date (see :func:`steps.channels.move.reconcile`).

Records carry the time and the actor; releases never do (they must stay reproducible).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from steps.errors import UnknownRepository
from steps.oci import mediatypes as mt
from steps.oci.errors import NotFound, RegistryError
from steps.oci.reference import Digest, check_repository

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient

RELEASE_REPOSITORY_NAME = "alga-appliance-release"
AUDIT_CONFIG = "application/vnd.alga.appliance.channel-move.v1+json"
AUDIT_ARTIFACT = "application/vnd.alga.appliance.channel-move.v1"
INDEX_CONFIG = "application/vnd.alga.appliance.channel-index.v1+json"
INDEX_ARTIFACT = "application/vnd.alga.appliance.channel-index.v1"
AUDIT_TAG_PREFIX = "move"
INDEX_TAG_PREFIX = "history"
REFRESH_TAG_PREFIX = "refresh"
REFRESH_INDEX_PREFIX = "refreshes"
REFRESH_KEEP = 100
"""Refreshes the refresh index keeps (the newest); older refresh records stay as tags."""
PAGE = 100
"""Entries per archived page; the index holds between ``PAGE`` and ``2 * PAGE - 1`` once
the channel has that many moves."""

MoveKind = Literal["publish", "promote", "rollback", "refresh"]
"""``refresh`` records (``channel refresh``: a re-issued statement, no move) live under
their own tags and index (:data:`REFRESH_TAG_PREFIX`), never among the moves."""
_MOVE_KINDS = ("publish", "promote", "rollback", "refresh")
_STAMP = "%Y%m%dT%H%M%S.%fZ"
_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def release_repository(namespace: str) -> str:
    return check_repository(f"{namespace}/{RELEASE_REPOSITORY_NAME}")


@dataclass(frozen=True)
class MoveRecord:
    """One channel move, as stored in the registry (JSON config of an OCI artifact).

    ``era`` counts the reasoned downgrades (rollbacks included) before this move: a
    downgrade opens the next era, and a move decided in an earlier era never beats one of a
    later era. ``base`` is the tag of the index entry the writer saw as the channel's
    current move; a downgrade only takes effect while that is still the current move.
    ``rollback_of`` names the entry a rollback undid. ``statement_sequence`` is the
    sequence of the channel statement the move issued (None: it issued none, e.g. no
    signing key); it is written before the statement, so the history is a floor for the
    next sequence even when ``statement.<channel>`` cannot be read.
    """

    channel: str
    kind: MoveKind
    to_digest: str
    version: str
    from_digest: str | None = None
    from_version: str | None = None
    reason: str | None = None
    actor: str = ""
    run: str | None = None
    time: str = ""
    tag: str | None = field(default=None, compare=False)
    era: int = 0
    downgrade: bool = False
    base: str | None = None
    rollback_of: str | None = None
    statement_sequence: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": "alga.appliance.channel-move/v1",
            "channel": self.channel,
            "kind": self.kind,
            "from": self.from_digest,
            "fromVersion": self.from_version,
            "to": self.to_digest,
            "version": self.version,
            "reason": self.reason,
            "actor": self.actor,
            "run": self.run,
            "time": self.time,
            "era": self.era,
            "downgrade": self.downgrade,
            "base": self.base,
            "rollbackOf": self.rollback_of,
        }
        if self.statement_sequence is not None:
            data["statementSequence"] = self.statement_sequence
        if self.tag:
            data["tag"] = self.tag
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], tag: str | None = None) -> MoveRecord:
        kind = data.get("kind", "promote")
        era = data.get("era", 0)
        sequence = data.get("statementSequence")
        return cls(
            channel=str(data.get("channel", "")),
            kind=kind if kind in _MOVE_KINDS else "promote",
            to_digest=str(data.get("to", "")),
            version=str(data.get("version", "")),
            from_digest=_optional(data.get("from")),
            from_version=_optional(data.get("fromVersion")),
            reason=_optional(data.get("reason")),
            actor=str(data.get("actor", "")),
            run=_optional(data.get("run")),
            time=str(data.get("time", "")),
            tag=tag or _optional(data.get("tag")),
            era=era if isinstance(era, int) and not isinstance(era, bool) and era >= 0 else 0,
            downgrade=data.get("downgrade") is True,
            base=_optional(data.get("base")),
            rollback_of=_optional(data.get("rollbackOf")),
            statement_sequence=sequence
            if isinstance(sequence, int) and not isinstance(sequence, bool) and sequence >= 0
            else None,
        )

    def tagged(self, tag: str) -> MoveRecord:
        return replace(self, tag=tag)


def _optional(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class ChannelIndex:
    """The index of a channel (or one archived page): entries oldest first."""

    channel: str
    entries: tuple[MoveRecord, ...] = ()
    older: str | None = None  # tag of the page holding the entries before these
    pages: int = 0  # how many archived pages there are behind this index
    digest: Digest | None = field(default=None, compare=False)  # as read from the registry

    @property
    def head(self) -> MoveRecord | None:
        return self.entries[-1] if self.entries else None

    @property
    def total(self) -> int:
        return self.pages * PAGE + len(self.entries)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "alga.appliance.channel-index/v1",
            "channel": self.channel,
            "entries": [e.to_json() for e in self.entries],
            "older": self.older,
            "pages": self.pages,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], digest: Digest | None = None) -> ChannelIndex:
        raw = data.get("entries")
        entries = tuple(
            MoveRecord.from_json(e)
            for e in (raw if isinstance(raw, list) else [])
            if isinstance(e, dict)
        )
        pages = data.get("pages", 0)
        return cls(
            channel=str(data.get("channel", "")),
            entries=tuple(e for e in entries if e.tag),
            older=_optional(data.get("older")),
            pages=pages if isinstance(pages, int) and not isinstance(pages, bool) else 0,
            digest=digest,
        )


# -- tags ----------------------------------------------------------------------------


def audit_tag(channel: str, when: datetime, prefix: str = AUDIT_TAG_PREFIX) -> str:
    return f"{prefix}.{channel}.{when.strftime(_STAMP)}.{secrets.token_hex(3)}"


def index_tag(channel: str) -> str:
    return f"{INDEX_TAG_PREFIX}.{channel}"


def page_tag(channel: str, number: int) -> str:
    return f"{INDEX_TAG_PREFIX}.{channel}.{number:06d}"


_AUDIT_TAG_RE = re.compile(
    rf"^{AUDIT_TAG_PREFIX}\.([a-z]+)\.(\d{{8}}T\d{{6}}\.\d{{6}}Z)\.[0-9a-f]+$"
)


def tag_time(tag: str) -> datetime | None:
    """When a move record was made, from its tag (the writer's clock)."""
    match = _AUDIT_TAG_RE.match(tag)
    if not match:
        return None
    return datetime.strptime(match.group(2), _STAMP).replace(tzinfo=UTC)


def record_tags(tags: Iterable[str], channel: str) -> list[str]:
    """The channel's move-record tags among ``tags``, oldest first (they sort by time)."""
    stamped = [
        (m.group(2), t) for t in tags if (m := _AUDIT_TAG_RE.match(t)) and m.group(1) == channel
    ]
    return [t for _, t in sorted(stamped)]


def format_time(when: datetime) -> str:
    return when.strftime(_TIME)


# -- registry I/O --------------------------------------------------------------------


def json_artifact(
    payload: Mapping[str, Any],
    *,
    config_type: str,
    artifact_type: str,
    annotations: Mapping[str, str] | None = None,
    subject: Mapping[str, Any] | None = None,
) -> tuple[bytes, bytes]:
    """The config blob (``payload`` as canonical JSON) and the manifest bytes of a small
    artifact (pure: the same payload always gives the same digest)."""
    config = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": config_type, "digest": str(Digest.of(config)), "size": len(config)},
        "layers": [{"mediaType": mt.OCI_EMPTY_CONFIG, "digest": str(Digest.of(_EMPTY)), "size": 2}],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    if subject:
        manifest["subject"] = dict(subject)
    return config, json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


_EMPTY = b"{}"


def _put_json_artifact(
    client: RegistryClient,
    repository: str,
    tag: str,
    payload: Mapping[str, Any],
    **kinds: Any,
) -> Digest:
    """Push a small artifact (:func:`json_artifact`) and tag it; returns its digest."""
    config, data = json_artifact(payload, **kinds)
    client.push_blob(repository, config, likely_new=True)
    client.push_blob(repository, _EMPTY)  # the same two bytes in every record: looked for
    return client.put_manifest(repository, tag, data, mt.OCI_MANIFEST)


def _get_json_artifact(
    client: RegistryClient, repository: str, ref: str | Digest
) -> tuple[Digest, dict[str, Any]] | None:
    """The config JSON of a small artifact, or None when the tag does not exist."""
    try:
        manifest = client.get_manifest(repository, ref)
    except NotFound:
        return None
    body = manifest.json()
    config = body.get("config")
    if not isinstance(config, dict):
        return None
    blob = client.get_blob(
        repository, Digest.parse(str(config.get("digest"))), size=int(config.get("size", -1))
    )
    data = json.loads(blob)
    return (manifest.digest, data) if isinstance(data, dict) else None


def write_record(client: RegistryClient, namespace: str, record: MoveRecord, when: datetime) -> str:
    """Push the record as an OCI artifact whose subject is the release it moved to; returns
    its (new, unique) tag."""
    repository = release_repository(namespace)
    target = client.head_manifest(repository, Digest.parse(record.to_digest))
    subject = (
        {"mediaType": mt.OCI_MANIFEST, "digest": record.to_digest, "size": target.size}
        if target is not None
        else None
    )
    prefix = REFRESH_TAG_PREFIX if record.kind == "refresh" else AUDIT_TAG_PREFIX
    tag = audit_tag(record.channel, when, prefix)
    payload = record.to_json()
    payload.pop("tag", None)
    _put_json_artifact(
        client,
        repository,
        tag,
        payload,
        config_type=AUDIT_CONFIG,
        artifact_type=AUDIT_ARTIFACT,
        annotations={mt.ANNOTATION_CREATED: record.time},
        subject=subject,
    )
    return tag


def read_record(client: RegistryClient, namespace: str, tag: str) -> MoveRecord | None:
    found = _get_json_artifact(client, release_repository(namespace), tag)
    return MoveRecord.from_json(found[1], tag=tag) if found else None


def read_index(client: RegistryClient, namespace: str, channel: str) -> ChannelIndex | None:
    """The channel's index, or None when it has none yet."""
    found = _get_json_artifact(client, release_repository(namespace), index_tag(channel))
    if found is None:
        return None
    digest, data = found
    index = ChannelIndex.from_json(data, digest)
    return index if index.channel == channel else None


def split_pages(index: ChannelIndex) -> tuple[ChannelIndex, list[ChannelIndex]]:
    """Archive full pages off the front of an index that grew to ``2 * PAGE`` entries.
    Deterministic: the same entries always give the same pages."""
    entries, pages, older = list(index.entries), [], index.older
    number = index.pages
    while len(entries) >= 2 * PAGE:
        number += 1
        page = ChannelIndex(index.channel, tuple(entries[:PAGE]), older, number - 1)
        pages.append(page)
        older = page_tag(index.channel, number)
        entries = entries[PAGE:]
    return ChannelIndex(index.channel, tuple(entries), older, number), pages


def write_index(client: RegistryClient, namespace: str, index: ChannelIndex) -> ChannelIndex:
    """Write the index (archiving full pages first); returns it with its digest."""
    repository = release_repository(namespace)
    index, pages = split_pages(index)
    for page in pages:
        _put_json_artifact(
            client,
            repository,
            page_tag(index.channel, page.pages + 1),
            page.to_json(),
            config_type=INDEX_CONFIG,
            artifact_type=INDEX_ARTIFACT,
        )
    digest = _put_json_artifact(
        client,
        repository,
        index_tag(index.channel),
        index.to_json(),
        config_type=INDEX_CONFIG,
        artifact_type=INDEX_ARTIFACT,
    )
    return replace(index, digest=digest)


def refresh_index_tag(channel: str) -> str:
    return f"{REFRESH_INDEX_PREFIX}.{channel}"


def read_refreshes(client: RegistryClient, namespace: str, channel: str) -> ChannelIndex | None:
    """The channel's refresh index (its last :data:`REFRESH_KEEP` refreshes, oldest first),
    or None when it has none. Kept apart from ``history.<channel>`` so that a refresh never
    rewrites the index the move protocol settles (:mod:`steps.channels`)."""
    found = _get_json_artifact(client, release_repository(namespace), refresh_index_tag(channel))
    if found is None:
        return None
    index = ChannelIndex.from_json(found[1], found[0])
    return index if index.channel == channel else None


def write_refresh(
    client: RegistryClient, namespace: str, record: MoveRecord, when: datetime
) -> str:
    """Record a refresh: its own record tag (``refresh.<channel>.<stamp>.<random>``), then
    the refresh index with it appended (the newest :data:`REFRESH_KEEP`). Returns its tag."""
    tag = write_record(client, namespace, record, when)
    index = read_refreshes(client, namespace, record.channel) or ChannelIndex(record.channel)
    entries = (*index.entries, record.tagged(tag))[-REFRESH_KEEP:]
    _put_json_artifact(
        client,
        release_repository(namespace),
        refresh_index_tag(record.channel),
        ChannelIndex(record.channel, entries).to_json(),
        config_type=INDEX_CONFIG,
        artifact_type=INDEX_ARTIFACT,
    )
    return tag


def list_record_tags(client: RegistryClient, namespace: str, channel: str) -> list[str]:
    """Every move-record tag of the channel, oldest first (one tag listing)."""
    return record_tags(client.list_tags(release_repository(namespace)), channel)


def read_records(client: RegistryClient, namespace: str, tags: Sequence[str]) -> list[MoveRecord]:
    records = [read_record(client, namespace, tag) for tag in tags]
    return [r for r in records if r is not None]


def history(
    client: RegistryClient, namespace: str, channel: str, *, limit: int | None = None
) -> list[MoveRecord]:
    """The channel's moves, oldest first: the last ``limit`` (None: all).

    Reads the index and, only as far back as ``limit`` needs, its archived pages: the last
    ``PAGE`` moves cost two requests whatever the length of the history. A channel moved
    only by older versions of this tool (records but no index yet) is read from its record
    tags. A repository that does not exist is :class:`UnknownRepository` (exit 2).
    """
    repository = release_repository(namespace)
    index = read_index(client, namespace, channel)
    if index is None:
        tags = client.list_tags(repository)
        if not tags:
            raise UnknownRepository(
                f"{client.registry}/{repository} does not exist (it has no tags)",
                hint="check --registry and --namespace; a published release creates it",
            )
        records = read_records(client, namespace, record_tags(tags, channel))
        return records[-limit:] if limit else records
    entries = list(index.entries)
    older = index.older
    while older and (limit is None or len(entries) < limit):
        found = _get_json_artifact(client, repository, older)
        if found is None:
            break
        page = ChannelIndex.from_json(found[1])
        entries = list(page.entries) + entries
        older = page.older
    return entries[-limit:] if limit else entries


def repository_exists(client: RegistryClient, namespace: str) -> bool:
    try:
        return bool(client.list_tags(release_repository(namespace)))
    except RegistryError as exc:
        if exc.status == 404:
            return False
        raise
