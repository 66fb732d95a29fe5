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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

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
from steps.channels.releases import (
    ChannelState,
    Gate,
    Piece,
    channel_state,
    read_release,
    release_pieces,
    require_complete,
    require_valid,
)
from steps.channels.rules import (
    CHANNELS,
    Observed,
    check_channel,
    downgrade_problem,
    parse_version,
    previous_release,
)
from steps.channels.timing import DEFAULT_SETTLE, Timing, utc_now  # noqa: F401  (re-exported)
from steps.errors import (
    ChannelUnsettled,
    ConcurrentMove,
)
from steps.oci.errors import RegistryError, TransientRegistryError
from steps.oci.reference import Digest

if TYPE_CHECKING:
    from steps.channels.vouch import Issuer, Vouched
    from steps.oci.client import RegistryClient

__all__ = [
    "CHANNELS",
    "DEFAULT_SETTLE",
    "RELEASE_REPOSITORY_NAME",
    "ChannelState",
    "ConcurrentMove",
    "Gate",
    "MoveRecord",
    "MoveResult",
    "Piece",
    "Timing",
    "already_there",
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


def history(
    client: RegistryClient, namespace: str, channel: str, *, limit: int | None = None
) -> list[MoveRecord]:
    """The channel's moves, oldest first (see :func:`steps.channels.audit.history`)."""
    return audit.history(client, namespace, check_channel(channel), limit=limit)


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


def already_there(
    client: RegistryClient, namespace: str, channel: str, target: Digest
) -> MoveResult | None:
    """The answer of a move of ``channel`` to ``target`` that would write nothing: the tag
    points there and the channel's index records it (:func:`rules.plan_move`'s no-op),
    found before the gates, which guard what a move writes (``verify`` checks what a
    channel points at). ``None`` otherwise, after one HEAD when the tag is elsewhere."""
    check_channel(channel)
    tag = client.head_manifest(release_repository(namespace), channel)
    if tag is None or tag.digest != target:
        return None
    seen = observe(client, namespace, channel)
    version = seen.channel_version
    recorded = seen.head is not None and seen.head.to_digest == str(target)
    if seen.channel != target or not recorded or version is None:
        return None
    log.info("channel %s already points at %s (%s)", channel, version, target.short)
    return MoveResult(channel, seen.channel, version, target, version, False, None)


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
    statement: Vouched | None = field(default=None, compare=False)

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
            "statement": self.statement.to_json() if self.statement else None,
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
    issuer: Issuer | None = None,
    gate: Gate | None = None,
) -> MoveResult:
    """Point ``channel`` at the release ``target`` after every gate passed.

    Gates (each a :class:`~steps.errors.Refused` kind, exit 3): the release is readable,
    valid and complete; ``gate`` (the signature gate, when keys are configured) passes;
    not a downgrade unless allowed with a reason; and, after the write, the move stands
    under the winner rule (else :class:`ConcurrentMove`, with the channel left at or
    restored to the winner). A channel already at ``target`` is a successful no-op.
    ``verify`` (e.g. a resolve through the consume library) runs after the move.

    With ``issuer`` (a signing key) the move also issues the channel's signed statement,
    after the record and the index and before the tag, and reads it back with them; a
    move that stopped after its statement is finished by the same move again (the tag
    follows, nothing else is written), and a channel already at ``target`` without a
    statement for it gets one (see :mod:`steps.channels`, "Statements")."""
    # the statements' code (and the consume library under it) only where a move is made
    from steps.channels import vouch
    from steps.channels.statement import statement_tag
    from steps.channels.vouch import Vouched, follow_winner, plan_vouching, vouch_in_place

    timing = timing or Timing()
    if clock is not None:
        timing = replace(timing, clock=clock)
    check_channel(channel)
    digest, data, media_type, release = read_release(client, namespace, target)
    version = str(release.get("version", ""))
    require_valid(release, f"release {version or '?'} ({digest.short})")
    require_complete(client, namespace, release, f"release {version} ({digest.short})")
    if gate is not None:
        gate(digest, release)

    def decide(observed: Observed, when: datetime) -> rules.MovePlan:
        return rules.plan_move(
            observed,
            channel=channel,
            kind=kind,
            target=digest,
            version=version,
            allow_downgrade=allow_downgrade,
            reason=reason,
            actor=actor or default_actor(),
            run=run,
            time=audit.format_time(when),
            rollback_of=rollback_of,
        )

    vouching = None
    if issuer is not None:
        # Before the protocol's timed part: refuse what would be refused, then read the
        # statement and stage the next one (pushed and signed, not tagged), so that the
        # window between the first read and the last write grows by one tag PUT only.
        early = observe(client, namespace, channel)
        decide(early, timing.clock())
        vouching = plan_vouching(
            client,
            namespace,
            channel,
            issuer,
            early.index,
            digest,
            version,
            timing,
            stage=not dry_run,
        )
    started, since = timing.monotonic(), timing.clock()
    seen = observe(client, namespace, channel)
    plan = decide(seen, since)
    if plan.warning:
        log.warning("%s", plan.warning)
    unmoved = MoveResult(channel, seen.channel, seen.channel_version, digest, version, False, None)
    fresh = vouching.next if vouching else None
    vouched: Vouched | None = vouching.kept if vouching else None  # without a key: None
    if plan.action == "noop" and fresh is None:
        log.info("channel %s already points at %s (%s)", channel, version, digest.short)
        return replace(unmoved, statement=vouched)
    if dry_run:
        log.info(
            "dry run: would move %s from %s to %s%s",
            channel,
            seen.channel_version or "(none)",
            version,
            f" and issue statement {fresh.describe()}" if fresh else "",
        )
        return replace(unmoved, statement=Vouched("would-issue", fresh) if fresh else vouched)
    if plan.action == "noop":
        assert issuer is not None and vouching is not None and fresh is not None
        log.info("channel %s already points at %s; issuing its statement", channel, version)
        vouched = vouch_in_place(client, namespace, channel, issuer, vouching, digest, timing, gate)
        return replace(unmoved, statement=vouched)
    assert plan.record is not None
    index = seen.index or ChannelIndex(channel)
    record = plan.record
    if fresh is not None and plan.action != "complete":
        record = replace(record, statement_sequence=fresh.sequence)
    if plan.action == "record":
        tag = _record_unrecorded(client, namespace, index, record, timing)
        if issuer is not None and vouching is not None and fresh is not None:
            vouched = vouch_in_place(
                client, namespace, channel, issuer, vouching, digest, timing, gate
            )
        return replace(unmoved, record_tag=tag, statement=vouched)
    if plan.action == "complete":
        mine, tag = plan.record, None
        log.info("channel %s: completing the recorded move to %s (%s)", channel, version, mine.tag)
    else:
        mine, tag = _write_claim(client, namespace, record, timing.clock())
    entries, _ = rules.fold(index.entries, mine)
    written = (
        index
        if entries == index.entries and index.digest is not None
        else audit.write_index(client, namespace, replace(index, entries=entries))
    )
    repository = release_repository(namespace)
    ours: Digest | None = None
    behind = False  # another writer's statement landed since ours was planned
    if vouching is not None and vouching.staged is not None:
        if vouching.unchanged(client, namespace):
            ours = vouch.tag_statement(client, namespace, vouching.staged)
        else:
            behind = True
    client.put_manifest(repository, channel, data, media_type)
    window = timing.monotonic() - started
    timing.sleep(timing.settle)
    now = client.head_manifest(repository, channel)
    after = audit.read_index(client, namespace, channel)
    back = client.head_manifest(repository, statement_tag(channel)) if ours else None
    if ours is not None:
        vouched = Vouched("issued", fresh, ours)
    settled: Literal["fast", "reconciled"] = "fast"
    later: MoveRecord | None = None
    if not rules.fast_path(
        window,
        timing.settle,
        channel_ok=now is not None
        and now.digest == digest
        and not behind
        and (ours is None or (back is not None and back.digest == ours)),
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
        folded = entries
        entries = reconcile(client, namespace, channel, mine, since, timing)
        if issuer is not None:
            # Our statement may have landed late on a newer one only if another writer
            # moved the channel meanwhile (its record shows up): then it is re-issued.
            raced = [e.tag for e in entries] != [e.tag for e in folded]
            vouched = follow_winner(
                client,
                namespace,
                channel,
                issuer,
                entries,
                digest,
                ours if raced else None,
                timing,
                gate,
            )
            if ours is not None and vouched.digest == ours:
                vouched = Vouched("issued", fresh, ours)  # the statement that stands is ours
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
    if issuer is None:
        vouch.warn_unvouched(channel)
    if verify is not None:
        verify(Digest.parse(later.to_digest) if later else digest)
    return MoveResult(
        channel,
        seen.channel,
        seen.channel_version,
        digest,
        version,
        True,
        tag,
        settled,
        later,
        vouched,
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
    hold, folds them (with ``mine``) onto the index as it stands (a move the index
    holds may have been read back and reported by its writer: a race supersedes it, never
    erases it) in the rule's fixed order, writes what differs (index; tag re-put with the
    winner's exact bytes), waits the settle and repeats until a round writes nothing,
    or reads back its own writes having made them within the settle. Returns the
    history's entries."""
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
        entries = rules.reconcile(*rules.race_view(index.entries, found, mine))
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
    issuer: Issuer | None = None,
    gate: Gate | None = None,
) -> MoveResult:
    """Move ``channel`` back to where its last move came from (a recorded downgrade).
    Idempotent: repeated once the channel is there, it changes nothing and exits 0 (with
    ``issuer``, a missing statement for it is issued then). ``gate`` (the signature gate)
    runs on the release it goes back to, as for any move; ``issuer`` writes the statement."""
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
        if issuer is None:
            return MoveResult(
                channel, state.digest, state.version, state.digest, plan.undoes.version, False, None
            )
        # the rollback is there; its statement may not be: the same move again issues it
        target, undoes, verify = state.digest, plan.undoes.rollback_of, None
    else:
        assert plan.target is not None and plan.undoes is not None
        target, undoes = plan.target, plan.undoes.tag
    return move_channel(
        client,
        namespace,
        channel,
        target,
        kind="rollback",
        allow_downgrade=True,
        reason=reason,
        actor=actor,
        run=run,
        dry_run=dry_run,
        verify=verify,
        timing=timing,
        rollback_of=undoes,
        issuer=issuer,
        gate=gate,
    )
