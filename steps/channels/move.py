"""Channel moves: the registry reads and writes around the pure rules of :mod:`.rules`.

A channel (``nightly``, ``stable``) is a tag in ``<namespace>/alga-appliance-release``
pointing at a release manifest, moved by re-putting the release manifest's exact bytes (so
the digest appliances pin never changes), last, behind gates: the release is valid and
complete, and the move is not a silent downgrade. OCI tags have no compare-and-swap; the
protocol that makes concurrent moves safe anyway is described in :mod:`steps.channels` and
implemented by :func:`move_channel` and :func:`reconcile`.
"""

from __future__ import annotations

import getpass
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from steps.archive import json_object
from steps.channels import audit, rules
from steps.channels.audit import (  # noqa: F401  (_AUDIT_TAG_RE, audit_tag: older imports)
    _AUDIT_TAG_RE,
    RELEASE_REPOSITORY_NAME,
    ChannelIndex,
    MoveKind,
    MoveRecord,
    audit_tag,
    release_repository,
)
from steps.channels.rules import (
    CHANNELS,
    Observed,
    check_channel,
    downgrade_problem,
    parse_version,
    previous_release,
)
from steps.errors import (
    BadInput,
    ChannelUnsettled,
    ConcurrentMove,
    IncompleteRelease,
    InvalidRelease,
    Refused,
)
from steps.oci import mediatypes as mt
from steps.oci.client import RegistryClient
from steps.oci.errors import RegistryError, TransientRegistryError
from steps.oci.reference import Digest, Reference

__all__ = [
    "CHANNELS",
    "RELEASE_REPOSITORY_NAME",
    "ChannelState",
    "ConcurrentMove",
    "MoveRecord",
    "MoveResult",
    "Piece",
    "Timing",
    "channel_state",
    "check_channel",
    "downgrade_problem",
    "history",
    "move_channel",
    "parse_version",
    "previous_release",
    "read_release",
    "reconcile",
    "release_pieces",
    "release_repository",
    "require_complete",
    "require_valid",
    "rollback_channel",
    "superseded_by",
]

log = logging.getLogger("alga_release.channels")

DEFAULT_SETTLE = 1.0
"""Seconds a writer waits between its last write and its read-back (``--settle``)."""
RECONCILE_ROUNDS = 6
CLOCK_MARGIN = timedelta(minutes=2)
"""How far writers' clocks may disagree: the slow path reads the records stamped this much
(plus the settle) before its own first read."""


def default_actor() -> str:
    """Who moves the channel when the caller does not say (``ALGA_ACTOR`` is read by the
    CLI): the local user and host."""
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (OSError, KeyError):
        return "unknown"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Timing:
    """The protocol's clock and its settle delay (tests shorten or instrument them)."""

    settle: float = DEFAULT_SETTLE
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    clock: Callable[[], datetime] = utc_now


def history(
    client: RegistryClient, namespace: str, channel: str, *, limit: int | None = None
) -> list[MoveRecord]:
    """The channel's moves, oldest first (see :func:`steps.channels.audit.history`)."""
    return audit.history(client, namespace, check_channel(channel), limit=limit)


# -- reading releases ---------------------------------------------------------------


@dataclass(frozen=True)
class ChannelState:
    """Where a channel points. ``problem`` says why its release could not be read
    (corrupt or not a release); a registry that could not be reached raises instead."""

    digest: Digest | None
    version: str | None
    manifest: dict[str, Any] | None
    problem: str | None = None

    @property
    def unreadable(self) -> bool:
        return self.digest is not None and self.manifest is None


def read_release(
    client: RegistryClient, namespace: str, ref: str | Digest
) -> tuple[Digest, bytes, str, dict[str, Any]]:
    """A release's manifest digest, exact manifest bytes, media type and release JSON."""
    repository = release_repository(namespace)
    manifest = client.get_manifest(repository, ref)
    body = manifest.json()
    config = body.get("config")
    if not isinstance(config, dict) or config.get("mediaType") != mt.RELEASE_CONFIG:
        raise InvalidRelease(
            f"{client.registry}/{repository} {ref} is not a release manifest "
            f"(config media type {config.get('mediaType') if isinstance(config, dict) else None})"
        )
    blob = client.get_blob(
        repository, Digest.parse(str(config.get("digest"))), size=int(config.get("size", -1))
    )
    release = json_object(blob, f"release {ref}: the config blob", InvalidRelease)
    return manifest.digest, manifest.data, manifest.media_type, release


def channel_state(client: RegistryClient, namespace: str, channel: str) -> ChannelState:
    repository = release_repository(namespace)
    head = client.head_manifest(repository, channel)
    if head is None:
        return ChannelState(None, None, None)
    try:
        _, _, _, release = read_release(client, namespace, head.digest)
    except TransientRegistryError:
        raise  # never mistake a registry hiccup for "no current release"
    except (Refused, RegistryError) as exc:
        log.warning(
            "channel %s points at %s, which cannot be read: %s",
            channel,
            head.digest.short,
            exc.message,
        )
        return ChannelState(head.digest, None, None, exc.message)
    version = release.get("version")
    return ChannelState(head.digest, version if isinstance(version, str) else None, release)


# -- completeness -------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """One artifact a release references and whether it is in the registry."""

    kind: str  # chart | bundle | image | control-plane | support-agent
    name: str
    reference: str
    present: bool | None  # None: not checked (another registry)
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "reference": self.reference,
            "present": self.present,
            "detail": self.detail,
        }


def release_pieces(
    client: RegistryClient, namespace: str, release: Mapping[str, Any]
) -> list[Piece]:
    """Check every artifact a release references (HEAD requests only)."""
    from steps.release.images import IMAGE_REPOSITORIES, image_repository

    pieces: list[Piece] = []
    registry = client.registry
    charts = release.get("charts") or {}
    digests = release.get("chartDigests") or {}
    for name, version in sorted(charts.items()):
        repository = f"{namespace}/charts/{name}"
        ref = f"{registry}/{repository}:{version}"
        head = _head(client, repository, str(version))
        detail = ""
        present = head is not None
        expected = digests.get(name)
        if head is not None and expected and str(head.digest) != expected:
            present = False
            detail = f"tag points at {head.digest}, release pins {expected}"
        pieces.append(Piece("chart", name, ref, present, detail))
    config = release.get("config") or {}
    pieces.append(
        _by_reference(
            client, "bundle", "config", f"{config.get('repository')}@{config.get('digest')}"
        )
    )
    images = release.get("images") or {}
    for key in IMAGE_REPOSITORIES:
        tag = images.get(key)
        repository = image_repository(namespace, key)
        if not isinstance(tag, str):
            pieces.append(Piece("image", key, f"{registry}/{repository}", False, "no tag"))
            continue
        head = _head(client, repository, tag)
        pieces.append(Piece("image", key, f"{registry}/{repository}:{tag}", head is not None))
    pieces.append(
        _by_reference(client, "control-plane", "controlPlane", str(release.get("controlPlane")))
    )
    if release.get("supportAgent"):
        pieces.append(
            _by_reference(client, "support-agent", "supportAgent", str(release["supportAgent"]))
        )
    return pieces


def _head(client: RegistryClient, repository: str, ref: str | Digest) -> Any:
    try:
        return client.head_manifest(repository, ref)
    except RegistryError as exc:
        if exc.status in (401, 403):
            return None
        raise


def _by_reference(client: RegistryClient, kind: str, name: str, text: str) -> Piece:
    try:
        ref = Reference.parse(text)
    except BadInput:
        return Piece(kind, name, text, False, "not a valid reference")
    if ref.registry != client.registry:
        return Piece(kind, name, text, None, f"in another registry ({ref.registry}); not checked")
    head = _head(client, ref.repository, ref.digest or str(ref.tag))
    return Piece(kind, name, text, head is not None)


def require_complete(
    client: RegistryClient, namespace: str, release: Mapping[str, Any], what: str
) -> list[Piece]:
    pieces = release_pieces(client, namespace, release)
    missing = [p for p in pieces if p.present is False]
    if missing:
        raise IncompleteRelease(
            f"{what} is incomplete; missing from {client.registry}:\n  "
            + "\n  ".join(
                f"{p.kind} {p.name}: {p.reference}" + (f" ({p.detail})" if p.detail else "")
                for p in missing
            ),
            hint="publish the missing pieces (or re-run the release) before moving a channel",
        )
    return pieces


def require_valid(release: Mapping[str, Any], what: str) -> None:
    """Refuse (exit 3) a release that breaks the schema or the consumer contract: a
    channel must never point appliances at a manifest they cannot use."""
    from steps.release.manifest import manifest_problems
    from steps.release.profiles import HELM_RELEASE_CHARTS

    problems = manifest_problems(release, helm_releases=HELM_RELEASE_CHARTS)
    if problems:
        raise InvalidRelease(
            f"{what} is not a valid release manifest:\n  "
            + "\n  ".join(problems[:20])
            + (f"\n  (and {len(problems) - 20} more)" if len(problems) > 20 else ""),
            hint="republish the release with `alga-release publish`; it validates before pushing",
        )


# -- observing a channel -----------------------------------------------------------------


def observe(client: RegistryClient, namespace: str, channel: str) -> Observed:
    """Where the channel points, that release's version, and its index (five requests).

    A channel with no index yet (moved only by older versions of this tool) gets one made
    from its record tags, in memory; the next move writes it."""
    state = channel_state(client, namespace, channel)
    index = audit.read_index(client, namespace, channel)
    if index is None:
        tags = audit.list_record_tags(client, namespace, channel)
        legacy = tuple(audit.read_records(client, namespace, tags))
        index = ChannelIndex(channel, legacy)
    return Observed(state.digest, state.version, state.problem, index)


# -- the move -------------------------------------------------------------------------


@dataclass(frozen=True)
class MoveResult:
    channel: str
    from_digest: Digest | None
    from_version: str | None
    to_digest: Digest
    version: str
    moved: bool
    record_tag: str | None
    settled: Literal["fast", "reconciled", "none"] = field(default="none", compare=False)
    superseded_by: MoveRecord | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        later = self.superseded_by
        return {
            "supersededBy": {"version": later.version, "to": later.to_digest, "record": later.tag}
            if later
            else None,
            "channel": self.channel,
            "from": str(self.from_digest) if self.from_digest else None,
            "fromVersion": self.from_version,
            "to": str(self.to_digest),
            "version": self.version,
            "moved": self.moved,
            "record": self.record_tag,
            "settled": self.settled,
        }


def move_channel(
    client: RegistryClient,
    namespace: str,
    channel: str,
    target: Digest,
    *,
    kind: MoveKind,
    allow_downgrade: bool = False,
    reason: str | None = None,
    actor: str | None = None,
    run: str | None = None,
    dry_run: bool = False,
    verify: Callable[[Digest], None] | None = None,
    clock: Callable[[], datetime] | None = None,
    timing: Timing | None = None,
    rollback_of: str | None = None,
) -> MoveResult:
    """Point ``channel`` at the release ``target`` after every gate passed.

    Gates (each a :class:`~steps.errors.Refused` kind, exit 3): the release is readable,
    valid and complete; not a downgrade unless allowed with a reason; and, after the
    write, the move stands under the winner rule (else :class:`ConcurrentMove`, with the
    channel left at or restored to the winner). A channel already at ``target`` is a
    successful no-op. ``verify`` (e.g. a resolve through the consume library) runs after
    the move."""
    timing = timing or Timing()
    if clock is not None:
        timing = replace(timing, clock=clock)
    check_channel(channel)
    digest, data, media_type, release = read_release(client, namespace, target)
    version = str(release.get("version", ""))
    require_valid(release, f"release {version or '?'} ({digest.short})")
    require_complete(client, namespace, release, f"release {version} ({digest.short})")
    started, since = timing.monotonic(), timing.clock()
    seen = observe(client, namespace, channel)
    plan = rules.plan_move(
        seen,
        channel=channel,
        kind=kind,
        target=digest,
        version=version,
        allow_downgrade=allow_downgrade,
        reason=reason,
        actor=actor or default_actor(),
        run=run,
        time=audit.format_time(since),
        rollback_of=rollback_of,
    )
    if plan.warning:
        log.warning("%s", plan.warning)
    unmoved = MoveResult(channel, seen.channel, seen.channel_version, digest, version, False, None)
    if plan.action == "noop":
        log.info("channel %s already points at %s (%s)", channel, version, digest.short)
        return unmoved
    if dry_run:
        log.info(
            "dry run: would move %s from %s to %s",
            channel,
            seen.channel_version or "(none)",
            version,
        )
        return unmoved
    assert plan.record is not None
    index = seen.index or ChannelIndex(channel)
    if plan.action == "record":
        tag = _record_unrecorded(client, namespace, index, plan.record, timing)
        return replace(unmoved, record_tag=tag)
    if plan.action == "complete":
        mine, tag = plan.record, None
        log.info("channel %s: completing the recorded move to %s (%s)", channel, version, mine.tag)
    else:
        mine, tag = _write_claim(client, namespace, plan.record, timing.clock())
    entries, _ = rules.fold(index.entries, mine)
    written = (
        index
        if entries == index.entries and index.digest is not None
        else audit.write_index(client, namespace, replace(index, entries=entries))
    )
    repository = release_repository(namespace)
    client.put_manifest(repository, channel, data, media_type)
    window = timing.monotonic() - started
    timing.sleep(timing.settle)
    now = client.head_manifest(repository, channel)
    after = audit.read_index(client, namespace, channel)
    settled: Literal["fast", "reconciled"] = "fast"
    later: MoveRecord | None = None
    if not rules.fast_path(
        window,
        timing.settle,
        channel_ok=now is not None and now.digest == digest,
        index_ok=after is not None and after.digest == written.digest,
    ):
        log.info(
            "channel %s: the read-back does not prove the move (%.3fs of writes, settle %.3fs); "
            "reconciling with the records",
            channel,
            window,
            timing.settle,
        )
        settled = "reconciled"
        entries = reconcile(client, namespace, channel, mine, since, timing)
        if not rules.stands(mine, entries):
            winner = entries[-1]
            raise ConcurrentMove(
                f"channel {channel} was moved concurrently: {winner.version} "
                f"({winner.to_digest}, record {winner.tag}, by {winner.actor or 'unknown'}) "
                f"stands, not this move to {version} ({digest})",
                hint="the channel is left at the move that stands under the winner rule (see "
                "`alga-release history`); promote again if this release is still wanted",
            )
        if entries[-1].to_digest != str(digest):
            later = entries[-1]
            log.warning(
                "channel %s: this move to %s took effect and was superseded by a newer release, "
                "%s (record %s), which stands",
                channel,
                version,
                later.version,
                later.tag,
            )
    log.info(
        "channel %s: %s -> %s (%s)",
        channel,
        seen.channel_version or "(none)",
        version,
        digest.short,
    )
    if verify is not None:
        verify(Digest.parse(later.to_digest) if later else digest)
    return MoveResult(
        channel, seen.channel, seen.channel_version, digest, version, True, tag, settled, later
    )


def _write_claim(
    client: RegistryClient, namespace: str, record: MoveRecord, when: datetime
) -> tuple[MoveRecord, str | None]:
    """Write the move's record (its claim) before the tag moves. A record that cannot be
    written does not stop the move: the index still holds it, under the tag it would have
    had, and the warning says what is lost."""
    try:
        tag = audit.write_record(client, namespace, record, when)
    except RegistryError as exc:  # transient too: the move must not depend on its record
        tag = audit.audit_tag(record.channel, when)
        log.warning(
            "channel %s: the move to %s goes ahead, but its audit record could not be written "
            "(%s); the channel's index keeps it, but a concurrent writer cannot see its claim",
            record.channel,
            record.version,
            exc.message,
        )
        return record.tagged(tag), None
    return record.tagged(tag), tag


def _record_unrecorded(
    client: RegistryClient,
    namespace: str,
    index: ChannelIndex,
    record: MoveRecord,
    timing: Timing,
) -> str | None:
    """A channel already at its target whose history does not say so (a run that moved it
    died before recording, or it was moved by hand): record it now, so that ``history``
    and ``rollback`` stay true."""
    try:
        tag = audit.write_record(client, namespace, record, timing.clock())
        entries, _ = rules.fold(index.entries, record.tagged(tag))
        audit.write_index(client, namespace, replace(index, entries=entries))
    except TransientRegistryError:
        raise
    except RegistryError as exc:
        log.warning(
            "channel %s: could not record its unrecorded move (%s)", record.channel, exc.message
        )
        return None
    log.info(
        "channel %s: its move to %s had no audit record; recorded it now",
        record.channel,
        record.version,
    )
    return tag


def reconcile(
    client: RegistryClient,
    namespace: str,
    channel: str,
    mine: MoveRecord,
    since: datetime,
    timing: Timing,
) -> tuple[MoveRecord, ...]:
    """The slow path: rebuild the channel's current move from the records and make the
    tag and the index say so.

    Lists the record tags (one listing), reads the records stamped from ``since`` (the
    writer's first read) less the settle and :data:`CLOCK_MARGIN` that the index does not
    hold, folds them (with ``mine``) onto the settled part of the index in the rule's
    fixed order, writes what differs (index; tag re-put with the winner's exact bytes),
    waits the settle and repeats until a round writes nothing, or reads back its own
    writes having made them within the settle. Returns the history's entries."""
    repository = release_repository(namespace)
    start = since - timedelta(seconds=timing.settle) - CLOCK_MARGIN
    for _ in range(RECONCILE_ROUNDS):
        began = timing.monotonic()
        index = audit.read_index(client, namespace, channel) or ChannelIndex(channel)
        known = {e.tag for e in index.entries}
        fresh = [
            t
            for t in audit.list_record_tags(client, namespace, channel)
            if t not in known and (audit.tag_time(t) or start) >= start
        ]
        found = audit.read_records(client, namespace, fresh)
        cut = 0
        while cut < len(index.entries) and _before(index.entries[cut], start):
            cut += 1
        entries = rules.reconcile(index.entries[:cut], [*index.entries[cut:], *found, mine])
        winner = entries[-1]
        wrote_index: Digest | None = None
        if [e.to_json() for e in entries] != [e.to_json() for e in index.entries]:
            wrote_index = audit.write_index(
                client, namespace, replace(index, entries=entries)
            ).digest
        target = Digest.parse(winner.to_digest)
        now = client.head_manifest(repository, channel)
        wrote_tag = False
        if now is None or now.digest != target:
            manifest = client.get_manifest(repository, target)
            client.put_manifest(repository, channel, manifest.data, manifest.media_type)
            wrote_tag = True
            log.warning(
                "channel %s: put back %s (%s), the move that stands",
                channel,
                winner.version,
                target.short,
            )
        if wrote_index is None and not wrote_tag:
            return entries
        window = timing.monotonic() - began
        timing.sleep(timing.settle)
        back = client.head_manifest(repository, channel)
        after = audit.read_index(client, namespace, channel)
        if rules.fast_path(
            window,
            timing.settle,
            channel_ok=back is not None and back.digest == target,
            index_ok=wrote_index is None or (after is not None and after.digest == wrote_index),
        ):
            return entries
    raise ChannelUnsettled(
        f"channel {channel}: other writers kept moving it; after {RECONCILE_ROUNDS} rounds its "
        "tag and index still disagree with its records",
        hint="retry in a minute; `alga-release history` shows the moves recorded so far",
    )


def _before(record: MoveRecord, start: datetime) -> bool:
    when = audit.tag_time(record.tag or "")
    return when is not None and when < start


def superseded_by(
    client: RegistryClient, namespace: str, channel: str, mine: Digest, current: Digest
) -> MoveRecord | None:
    """When the channel points at ``current`` instead of ``mine``: the move that superseded
    ours, if ours took effect and a strictly newer release took over since (the history's
    current move targets ``current``). None otherwise. Reads the index only."""
    index = audit.read_index(client, namespace, check_channel(channel))
    head = index.head if index else None
    if index is None or head is None or head.to_digest != str(current):
        return None
    ours = [e for e in index.entries if e.to_digest == str(mine)]
    return head if ours and rules.stands(ours[-1], index.entries) else None


# -- rollback -------------------------------------------------------------------------------


def rollback_channel(
    client: RegistryClient,
    namespace: str,
    channel: str,
    *,
    reason: str,
    run: str | None = None,
    actor: str | None = None,
    dry_run: bool = False,
    verify: Callable[[Digest], None] | None = None,
    timing: Timing | None = None,
) -> MoveResult:
    """Move ``channel`` back to where its last move came from (a recorded downgrade).
    Idempotent: repeated once the channel is there, it changes nothing and exits 0."""
    check_channel(channel)
    state = channel_state(client, namespace, channel)
    index = audit.read_index(client, namespace, channel)
    entries = list(index.entries) if index else []
    if rules.previous_release(entries, state.digest) is None and (index is None or index.older):
        entries = history(client, namespace, channel)  # not among the recent moves
    plan = rules.plan_rollback(entries, channel, state.digest)
    if plan.action == "noop":
        assert plan.undoes is not None and state.digest is not None
        log.info(
            "channel %s: already rolled back to %s (%s); nothing to do",
            channel,
            plan.undoes.version,
            plan.undoes.tag,
        )
        return MoveResult(
            channel, state.digest, state.version, state.digest, plan.undoes.version, False, None
        )
    assert plan.target is not None and plan.undoes is not None
    return move_channel(
        client,
        namespace,
        channel,
        plan.target,
        kind="rollback",
        allow_downgrade=True,
        reason=reason,
        actor=actor,
        run=run,
        dry_run=dry_run,
        verify=verify,
        timing=timing,
        rollback_of=plan.undoes.tag,
    )
