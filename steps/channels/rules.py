"""The channel rules: pure decisions on observed states.

Like a secure update client's trusted-metadata state machine, this module does **no network
or file I/O** and reads no clock or environment: :mod:`steps.channels.move` observes the
registry (the channel tag, the index, the records, the release) and hands the observations
in; the functions here decide *move*, *no-op* or *refuse* (raising the
:mod:`steps.errors` kind that says why), which record a move writes, which of several
concurrent moves wins, and whether a writer's own read-back proves its result stands.

The winner rule (why the channel needs no compare-and-swap) is :func:`beats`:

- a move never beats the current move if it targets the same release (nothing to do);
- a **downgrade** (asked for with a reason; rollbacks are downgrades) beats the current
  move only if it was decided against it (its ``base`` is the current entry's tag): a
  downgrade decided on a state that has since moved is stale and loses;
- any other move beats the current one only if it is of the same or a later era (a move
  decided before a downgrade never undoes it) and of a strictly newer SemVer version.

So within an era the channel's release is the maximum version of the era's moves: late,
reordered or repeated arrivals cannot lower it, and every writer that sees the same
records computes the same winner (:func:`reconcile` folds them in a fixed order).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from steps.channels.audit import ChannelIndex, MoveKind, MoveRecord
from steps.errors import BadInput, Downgrade, NoRollbackTarget, UnreadableChannel
from steps.names import parse_semver
from steps.oci.reference import Digest

if TYPE_CHECKING:
    import semver

CHANNELS: tuple[str, ...] = ("nightly", "stable")


def check_channel(name: str) -> str:
    if name not in CHANNELS:
        raise BadInput(f"unknown channel {name!r}: the channels are {', '.join(CHANNELS)}")
    return name


def parse_version(text: str, what: str = "version") -> semver.Version:
    """``text`` as SemVer 2 without build metadata (:func:`steps.names.parse_semver`)."""
    return parse_semver(text, what)


def _semver(text: str | None) -> semver.Version | None:
    if not text:
        return None
    import semver  # when a version is compared: a channel already at its release needs none

    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        return None


def is_semver(text: str) -> bool:
    return _semver(text) is not None


def is_older(new: str, current: str | None) -> bool:
    """``new`` is an older SemVer than ``current`` (False when either is not SemVer)."""
    a, b = _semver(new), _semver(current)
    return a is not None and b is not None and a < b


def downgrade_problem(
    current: str | None, new: str, *, allow_downgrade: bool, reason: str | None
) -> str | None:
    """Why moving from ``current`` to ``new`` is refused, or None when it is allowed."""
    if current is None or not is_older(new, current):
        return None  # an unparseable current release cannot be protected; caller warns
    if allow_downgrade and reason and reason.strip():
        return None
    if allow_downgrade:
        return f"downgrade from {current} to {new} needs a non-empty --reason"
    return (
        f"{new} is older than the channel's current release {current}; refusing a silent downgrade"
    )


# -- observations and decisions ----------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """What a writer saw of a channel, right before deciding.

    ``channel``/``channel_version``: where the tag points and that release's version (None
    when the tag is absent; the version None with ``problem`` set when the release cannot
    be read). ``index``: the channel's index (None when it has none).
    """

    channel: Digest | None
    channel_version: str | None
    problem: str | None = None
    index: ChannelIndex | None = None

    @property
    def head(self) -> MoveRecord | None:
        return self.index.head if self.index else None

    @property
    def unreadable(self) -> bool:
        return self.channel is not None and self.channel_version is None

    @property
    def consistent(self) -> bool:
        """The index's current move is where the tag points (or neither exists)."""
        head = self.head
        return (head.to_digest if head else None) == (str(self.channel) if self.channel else None)


Action = Literal["noop", "record", "complete", "move"]


@dataclass(frozen=True)
class MovePlan:
    """What a move will do. ``noop``: the channel and its history are already there;
    ``record``: the tag is already there but no move says so (write the record only);
    ``complete``: the history's current move targets this release but the tag has not
    followed (an interrupted or in-flight move: re-put the tag, write no record);
    ``move``: write ``record``, then the index and the tag."""

    action: Action
    record: MoveRecord | None = None
    warning: str | None = None


def _reasoned(allow_downgrade: bool, reason: str | None) -> bool:
    return bool(allow_downgrade and reason and reason.strip())


def plan_move(
    observed: Observed,
    *,
    channel: str,
    kind: MoveKind,
    target: Digest,
    version: str,
    allow_downgrade: bool = False,
    reason: str | None = None,
    actor: str = "",
    run: str | None = None,
    time: str = "",
    rollback_of: str | None = None,
) -> MovePlan:
    """Decide a move of ``channel`` to the release ``target`` (``version``).

    Refuses (raises) :class:`UnreadableChannel` when the channel's current release cannot
    be read and no reasoned override was given, and :class:`Downgrade` when the target is
    older than the channel's current release (or than the history's current move, when a
    move is in flight) without one.
    """
    head = observed.head
    here = str(target)
    at_target = observed.channel == target
    if at_target and head is not None and head.to_digest == here:
        return MovePlan("noop")
    if at_target:
        # The tag is there but the history does not say so (moved by hand, or a writer died
        # between the tag and its record): record it, as the move it was from the history's
        # current entry, opening an era when it went backwards -- which, as it cancels a
        # newer move recorded in flight, needs the same reasoned override as a downgrade.
        back = head is not None and is_older(version, head.version)
        if back and head is not None and not _reasoned(allow_downgrade, reason):
            raise Downgrade(
                f"channel {channel}: {version} is what the tag shows, but the channel's "
                f"history records a move to {head.version} (record {head.tag} by "
                f"{head.actor or 'unknown'}) that is in flight or was interrupted; recording "
                f"{version} would cancel it",
                hint=f"`promote --version {head.version}` completes that move; to stay at "
                f"{version}: --allow-downgrade --reason '<why>'",
            )
        return MovePlan(
            "record",
            MoveRecord(
                channel=channel,
                kind=kind,
                to_digest=here,
                version=version,
                from_digest=head.to_digest if head else None,
                from_version=head.version if head else None,
                reason=(reason + "; " if reason else "") + "recorded after the move",
                actor=actor,
                run=run,
                time=time,
                era=(head.era + 1 if back else head.era) if head else 0,
                downgrade=back,
                base=head.tag if head else None,
                rollback_of=rollback_of,
            ),
        )
    warning = None
    if observed.unreadable:
        if not _reasoned(allow_downgrade, reason):
            raise UnreadableChannel(
                f"channel {channel} points at {observed.channel}, whose release cannot be read "
                f"({observed.problem or 'no version'}); refusing to move it without a downgrade "
                "check",
                hint="inspect it (alga-release inspect <digest>); to move anyway: "
                "--allow-downgrade --reason '<why>'",
            )
        warning = f"channel {channel}: its current release cannot be read; moving as allowed"
    current = [v for v in (observed.channel_version, head.version if head else None) if v]
    newest = max(current, key=lambda v: (_semver(v) is not None, _semver(v) or v), default=None)
    problem = downgrade_problem(newest, version, allow_downgrade=allow_downgrade, reason=reason)
    if problem:
        in_flight = ""
        if head is not None and newest == head.version and not observed.consistent:
            in_flight = (
                f" ({newest} is the current move in the channel's history, record {head.tag} "
                f"by {head.actor or 'unknown'}; the tag still points at "
                f"{observed.channel_version or observed.channel or 'nothing'}: that move is in "
                f"flight or was interrupted, and `promote --version {newest}` completes it)"
            )
        raise Downgrade(
            f"channel {channel}: {problem}{in_flight}",
            hint="to roll back on purpose: --allow-downgrade --reason '<why>'",
        )
    if newest is not None and not is_semver(newest):
        warning = (
            f"channel {channel}: its current version {newest!r} is not SemVer, so it cannot be "
            f"compared with {version}; no downgrade check"
        )
    if head is not None and head.to_digest == here:
        return MovePlan("complete", head, warning)
    down = (newest is not None and is_older(version, newest)) or observed.unreadable
    era = head.era if head else 0
    record = MoveRecord(
        channel=channel,
        kind=kind,
        to_digest=here,
        version=version,
        from_digest=str(observed.channel) if observed.channel else None,
        from_version=observed.channel_version,
        reason=reason,
        actor=actor,
        run=run,
        time=time,
        era=era + 1 if down else era,
        downgrade=down,
        base=head.tag if head else None,
        rollback_of=rollback_of,
    )
    return MovePlan("move", record, warning)


@dataclass(frozen=True)
class RollbackPlan:
    """``noop``: the last move already was this rollback; else move to ``target``."""

    action: Literal["noop", "move"]
    target: Digest | None
    undoes: MoveRecord | None


def plan_rollback(
    entries: Sequence[MoveRecord], channel: str, current: Digest | None
) -> RollbackPlan:
    """Where ``rollback`` takes the channel: back to where the move that brought it to
    ``current`` came from. Idempotent: when the last move is a rollback to ``current``,
    repeating it is a no-op (never a re-promotion of what was rolled away from)."""
    head = entries[-1] if entries else None
    if (
        head is not None
        and current is not None
        and head.kind == "rollback"
        and head.to_digest == str(current)
    ):
        return RollbackPlan("noop", current, head)
    undone = previous_release(entries, current)
    if undone is None or not undone.from_digest:
        raise NoRollbackTarget(
            f"channel {channel}: no recorded move led to its current release "
            f"{current or '(none)'}, so there is no previous release to return to",
            hint="promote the wanted version explicitly: alga-release promote --version V "
            "--channel C --allow-downgrade --reason '...'",
        )
    return RollbackPlan("move", Digest.parse(undone.from_digest), undone)


def previous_release(records: Sequence[MoveRecord], current: Digest | None) -> MoveRecord | None:
    """The record of the move that brought the channel to ``current`` (its ``from``
    is where a rollback goes), or None."""
    for record in reversed(records):
        if current is not None and record.to_digest == str(current) and record.from_digest:
            return record
    return None


# -- the winner rule -------------------------------------------------------------------------


def beats(new: MoveRecord, current: MoveRecord | None) -> bool:
    """Does ``new`` take effect over the channel's ``current`` move? (See the module doc.)"""
    if current is None:
        return True
    if new.to_digest == current.to_digest:
        return False
    if new.downgrade:
        return new.base == current.tag
    if new.era < current.era:
        return False
    a, b = _semver(new.version), _semver(current.version)
    if a is None or b is None:
        return new.era > current.era or b is None
    return a > b


def fold(entries: Sequence[MoveRecord], record: MoveRecord) -> tuple[tuple[MoveRecord, ...], bool]:
    """Add ``record`` to the history ``entries`` if it beats the current move. The entry
    says what the channel really moved from (the previous entry), which is what history
    shows. Returns the entries and whether the record took effect."""
    if record.tag and any(e.tag == record.tag for e in entries):
        return tuple(entries), False
    current = entries[-1] if entries else None
    if not beats(record, current):
        return tuple(entries), False
    if current is not None:
        record = replace(record, from_digest=current.to_digest, from_version=current.version)
    return (*entries, record), True


def fold_order(record: MoveRecord) -> tuple[int, int, str]:
    """The order in which concurrent records are folded: by era, a downgrade before the
    moves decided after it, then by tag (which sorts by time)."""
    return (record.era, 0 if record.downgrade else 1, record.tag or "")


def reconcile(stable: Sequence[MoveRecord], recent: Iterable[MoveRecord]) -> tuple[MoveRecord, ...]:
    """The history from a settled prefix and the records of a race, in one fixed order:
    every writer that sees the same records ends with the same current move.

    Within the race, a move overtaken by a newer one of the same era that was decided
    without seeing it is left out of the history (its writer is told its move did not
    stand), so the history does not claim the channel passed through a release that lost
    the race; the winner is the same either way.
    """
    seen: dict[str, MoveRecord] = {}
    for record in recent:
        if record.tag and record.tag not in seen:
            seen[record.tag] = record
    settled = len(stable)
    entries = tuple(stable)
    for record in sorted(seen.values(), key=fold_order):
        current = entries[-1] if len(entries) > settled else None
        if (
            current is not None
            and record.base != current.tag  # decided without seeing it: they raced
            and not current.downgrade
            and not record.downgrade
            and record.era == current.era
            and beats(record, current)
        ):
            collapsed, won = fold(entries[:-1], record)
            if won:
                entries = collapsed
                continue
        entries, _ = fold(entries, record)
    return entries


def race_view(
    index: Sequence[MoveRecord], found: Sequence[MoveRecord], mine: MoveRecord
) -> tuple[list[MoveRecord], list[MoveRecord]]:
    """What a writer on the slow path hands :func:`reconcile`: (the history it keeps as
    it stands, the records of the race).

    The index's entries stay as they are: another writer may already have read its own
    entry back there and reported its move, so a race can supersede it but never erase it.
    The race is the records no index holds yet (``found``) and ``mine``; this writer's own
    entry joins the race even when the index holds it, if it is the index's last (nobody
    built on it, and this writer, still deciding, has reported nothing)."""
    held = list(index)
    if held and held[-1].tag == mine.tag:
        held.pop()
    race = [*found, *([] if any(e.tag == mine.tag for e in held) else [mine])]
    return held, race


def stands(mine: MoveRecord, entries: Sequence[MoveRecord]) -> bool:
    """May the writer of ``mine`` exit 0? When the current move targets its release, or
    its move took effect and a strictly newer release superseded it since (the history
    holds it, and the current move is of a newer version)."""
    head = entries[-1] if entries else None
    if head is None:
        return False
    if head.tag == mine.tag or head.to_digest == mine.to_digest:
        return True
    a, b = _semver(head.version), _semver(mine.version)
    took_effect = any(e.tag == mine.tag for e in entries)
    return took_effect and a is not None and b is not None and a > b


def fast_path(window: float, settle: float, *, channel_ok: bool, index_ok: bool) -> bool:
    """Can a writer conclude from its own read-back alone?

    Only when everything it wrote (record, index, tag) was answered within ``settle`` of
    its first read, and after waiting ``settle`` it reads back exactly its own tag and
    index. A write that landed later than another writer's read-back took longer than
    ``settle`` from its writer's first read, so that writer takes the slow path and sees
    the other's record; see :mod:`steps.channels` for the argument."""
    return window < settle and channel_ok and index_ok


# -- immutable tags ----------------------------------------------------------------------


ImmutableOutcome = Literal["stands", "wait", "lost", "restore", "foreign"]


def immutable_outcome(
    mine: Digest,
    now: Digest | None,
    others: Sequence[Digest],
    *,
    fast: bool,
    confirmed: Digest | None = None,
    waited: bool = False,
) -> ImmutableOutcome:
    """After a push of an immutable tag and the settle: does this writer's push stand?

    ``now``: what the tag holds; ``others``: the digests other writers claimed for the same
    tag; ``fast``: the push was answered within the settle of the first read;
    ``confirmed``: a digest another writer confirmed as standing; ``waited``: a settle has
    passed since the claims were first listed.

    ``stands``: confirm and exit 0. ``wait``: other claims, none confirmed: wait a settle
    and list again (a fast writer confirms within that). ``lost``: another writer's bytes
    are on the tag (theirs stand; exit 3, write nothing). ``restore``: ours landed on a
    confirmed writer's (put theirs back; exit 3). ``foreign``: something that made no claim
    changed the tag (exit 3, touch nothing)."""
    if confirmed is not None and confirmed != mine:
        return "restore" if now == mine else "lost"
    if now != mine:
        return "lost" if now in others else "foreign"
    if fast or not others or waited:
        return "stands"
    return "wait"
