"""``channel refresh``: re-issue a channel's statement with the next sequence and a new
expiry, and nothing else.

A statement expires (``--statement-expiry``, 30 days by default) so that a channel nobody
vouches for any more, or a registry that keeps serving yesterday's channel, stops moving
appliances; a channel that does not move for longer than that must be refreshed (the
CronWorkflow does it weekly). :func:`refresh_channel`:

1. reads the tag, the history's index and the statement, and judges them
   (:func:`steps.channels.statement.agreement`): it refuses (exit 3) unless the tag and a
   trusted statement agree (an expired one is refreshed), and unless ``gate`` (the
   signature gate) passes on the release the channel points at;
2. leaves a statement younger than ``min_age`` (and not expired) as it is: exit 0,
   ``status: fresh`` (so a retried or repeated run is a no-op);
3. otherwise writes the next statement (same channel, version and digest; sequence above
   the current one and above every sequence the history and earlier refreshes recorded),
   then its record (``refresh.<channel>.<stamp>.<random>``) and the refresh index
   ``refreshes.<channel>``: the history never shows a refresh that did not happen;
4. waits the settle and reads the tag and the statement back. If a move landed meanwhile,
   the statement follows the move that stands (as a move's slow path does,
   :func:`steps.channels.vouch.follow_winner`); if the tag and the history disagree it
   issues nothing and refuses (:class:`~steps.errors.ConcurrentMove`).

The refresh never writes the channel tag or ``history.<channel>``, the objects the move
protocol settles, so it cannot undo a concurrent move; under Argo the channel mutex keeps
refreshes and moves of one channel apart anyway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from steps.channels import audit
from steps.channels.audit import MoveRecord, release_repository
from steps.channels.releases import Gate, channel_state
from steps.channels.rules import check_channel
from steps.channels.statement import (
    Statement,
    agreement,
    plan_refresh,
    sequence_floor,
    statement_json,
    statement_tag,
)
from steps.channels.timing import Timing
from steps.channels.vouch import (
    Issuer,
    Vouched,
    follow_winner,
    read_statement,
    stage_statement,
    tag_statement,
)
from steps.errors import ConcurrentMove, ReleaseNotFound
from steps.oci.errors import RegistryError

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient

log = logging.getLogger("alga_release.channels")


@dataclass(frozen=True)
class RefreshResult:
    channel: str
    version: str
    manifest_digest: str
    status: Literal["refreshed", "fresh", "would-refresh"]
    previous: Statement
    previous_digest: str | None
    statement: Vouched
    min_age: timedelta
    record_tag: str | None = None
    settled: Literal["fast", "reconciled", "none"] = field(default="none", compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "version": self.version,
            "manifestDigest": self.manifest_digest,
            "refreshed": self.status == "refreshed",
            "status": self.status,
            "previous": statement_json(self.previous, None, "current")
            | {"digest": self.previous_digest},
            "statement": self.statement.to_json(),
            "record": self.record_tag,
            "minAgeSeconds": int(self.min_age.total_seconds()),
            "settled": self.settled,
        }


def refresh_channel(
    client: RegistryClient,
    namespace: str,
    channel: str,
    issuer: Issuer,
    *,
    min_age: timedelta,
    actor: str = "",
    run: str | None = None,
    dry_run: bool = False,
    timing: Timing | None = None,
    gate: Gate | None = None,
) -> RefreshResult:
    """Re-issue ``channel``'s statement (see the module doc)."""
    timing = timing or Timing()
    check_channel(channel)
    repository = release_repository(namespace)
    state = channel_state(client, namespace, channel)
    if state.digest is None:
        raise ReleaseNotFound(
            f"channel {channel} points at no release: there is no statement to refresh",
            hint="move it first (alga-release promote --version V --channel "
            f"{channel} --signing-key FILE)",
        )
    index = audit.read_index(client, namespace, channel)
    seen = read_statement(client, namespace, channel, issuer.trusted)
    now = timing.clock()
    judged = agreement(
        channel, state.digest, state.version, index.entries if index else (), seen, now
    )
    if judged.state not in ("consistent", "expired", "replayed"):
        raise judged.error()
    if gate is not None and state.manifest is not None:
        gate(state.digest, state.manifest)
    refreshes = audit.read_refreshes(client, namespace, channel)
    floor = max(
        sequence_floor(index.entries if index else ()),
        sequence_floor(refreshes.entries if refreshes else ()),
    )
    plan = plan_refresh(judged, now=now, min_age=min_age, expiry=issuer.expiry, floor=floor)
    current = plan.current
    result = RefreshResult(
        channel,
        current.version,
        current.manifest_digest,
        "fresh",
        current,
        str(seen.digest) if seen.digest else None,
        Vouched("kept", current, seen.digest),
        min_age,
    )
    if plan.action == "fresh":
        log.info(
            "channel %s: its statement (%s) is younger than %s; left as it is",
            channel,
            current.describe(),
            min_age,
        )
        return result
    fresh = plan.statement
    assert fresh is not None
    if dry_run:
        log.info("dry run: would re-issue channel %s's statement as %s", channel, fresh.describe())
        return _with(result, status="would-refresh", statement=Vouched("would-issue", fresh))
    staged = stage_statement(client, namespace, fresh, issuer.signer)
    started = timing.monotonic()
    before = client.head_manifest(repository, statement_tag(channel))
    ours = None
    if before is not None and before.digest == seen.digest:
        ours = tag_statement(client, namespace, staged)
    window = timing.monotonic() - started
    tag = _record(client, namespace, channel, current, fresh, actor, run, timing) if ours else None
    timing.sleep(timing.settle)
    head = client.head_manifest(repository, channel)
    back = client.head_manifest(repository, statement_tag(channel))
    done = _with(result, status="refreshed", statement=Vouched("issued", fresh, ours), tag=tag)
    if (
        ours is not None
        and window < timing.settle
        and head is not None
        and head.digest == state.digest
        and back is not None
        and back.digest == ours
    ):
        return _with(done, settled="fast")
    log.info(
        "channel %s: the refresh's read-back does not prove it; following the channel", channel
    )
    index = audit.read_index(client, namespace, channel)
    vouched = follow_winner(
        client,
        namespace,
        channel,
        issuer,
        index.entries if index else (),
        state.digest,
        ours,
        timing,
        gate,
    )
    if vouched.status == "not-vouched":
        raise ConcurrentMove(
            f"channel {channel} moved while its statement was being refreshed, and its tag "
            "and history disagree: no statement vouches for where it points now",
            hint="finish the move that was running (re-run it with --signing-key); "
            "`alga-release verify --channel " + channel + "` shows the state",
        )
    status = "refreshed" if ours is not None or vouched.status == "issued" else "fresh"
    return _with(done, status=status, statement=vouched, settled="reconciled")


def _with(result: RefreshResult, **changes: Any) -> RefreshResult:
    from dataclasses import replace

    if "tag" in changes:
        changes["record_tag"] = changes.pop("tag")
    return replace(result, **changes)


def _record(
    client: RegistryClient,
    namespace: str,
    channel: str,
    current: Statement,
    fresh: Statement,
    actor: str,
    run: str | None,
    timing: Timing,
) -> str | None:
    """The refresh's audit record, after the statement (a refresh that did not happen is
    never recorded). A record that cannot be written does not undo the refresh."""
    when = timing.clock()
    record = MoveRecord(
        channel=channel,
        kind="refresh",
        to_digest=fresh.manifest_digest,
        version=fresh.version,
        from_digest=current.manifest_digest,
        from_version=current.version,
        reason=f"statement sequence {current.sequence} -> {fresh.sequence}, expires "
        f"{fresh.expires_at}",
        actor=actor,
        run=run,
        time=audit.format_time(when),
        statement_sequence=fresh.sequence,
    )
    try:
        return audit.write_refresh(client, namespace, record, when)
    except RegistryError as exc:  # transient too: the statement is already refreshed
        log.warning(
            "channel %s: refreshed, but its refresh record could not be written (%s)",
            channel,
            exc.message,
        )
        return None
