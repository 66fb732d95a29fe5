"""The pure channel rules (steps.channels.rules) and the audit data (steps.channels.audit)."""

from __future__ import annotations

import itertools
import random

import pytest

from steps.channels import audit, rules
from steps.channels.audit import PAGE, ChannelIndex, MoveRecord
from steps.channels.rules import Observed
from steps.errors import Downgrade, NoRollbackTarget, UnreadableChannel
from steps.oci.reference import Digest

D = {name: Digest.parse("sha256:" + name * 64) for name in "abcdef0123456789"}


def rec(
    tag: str,
    to: str,
    version: str,
    *,
    era: int = 0,
    downgrade: bool = False,
    base: str | None = None,
    kind: audit.MoveKind = "promote",
) -> MoveRecord:
    return MoveRecord(
        "stable",
        kind,
        str(D[to]),
        version,
        era=era,
        downgrade=downgrade,
        base=base,
        tag=f"move.stable.2026010{tag}T000000.000000Z.aaaaaa",
    )


def observed(channel: str | None, version: str | None, *entries: MoveRecord) -> Observed:
    return Observed(D[channel] if channel else None, version, None, ChannelIndex("stable", entries))


def plan(seen: Observed, to: str, version: str, **kw: object) -> rules.MovePlan:
    return rules.plan_move(
        seen,
        channel="stable",
        kind="promote",
        target=D[to],
        version=version,
        **kw,  # type: ignore[arg-type]
    )


# -- plan_move ----------------------------------------------------------------------------


def test_a_channel_already_there_with_its_history_is_a_noop() -> None:
    head = rec("1", "a", "1.0.0")
    assert plan(observed("a", "1.0.0", head), "a", "1.0.0").action == "noop"


def test_a_channel_moved_by_hand_is_recorded_not_moved() -> None:
    result = plan(observed("a", "1.0.0"), "a", "1.0.0")
    assert result.action == "record" and result.record is not None
    assert result.record.reason == "recorded after the move"
    assert (result.record.era, result.record.downgrade, result.record.base) == (0, False, None)
    # moved back by hand (or a newer move in flight): a downgrade, so it needs a reason;
    # then recorded as the downgrade it was, so it takes effect in the index
    head = rec("1", "b", "1.1.0")
    with pytest.raises(Downgrade, match="in flight"):
        plan(observed("a", "1.0.0", head), "a", "1.0.0")
    back = plan(
        observed("a", "1.0.0", head), "a", "1.0.0", allow_downgrade=True, reason="by hand"
    ).record
    assert back is not None and back.downgrade and back.era == 1 and back.base == head.tag
    assert rules.fold([head], back.tagged("t"))[1] is True


def test_a_recorded_move_whose_tag_did_not_follow_is_completed_without_a_new_record() -> None:
    head = rec("2", "b", "1.1.0")
    result = plan(observed("a", "1.0.0", rec("1", "a", "1.0.0"), head), "b", "1.1.0")
    assert result.action == "complete" and result.record is head


def test_a_move_records_what_it_saw() -> None:
    head = rec("1", "a", "1.0.0", era=2)
    result = plan(observed("a", "1.0.0", head), "b", "1.1.0", reason="r", actor="me", run="r1")
    assert result.action == "move" and result.record is not None
    r = result.record
    assert (r.to_digest, r.version, r.from_digest, r.from_version) == (
        str(D["b"]),
        "1.1.0",
        str(D["a"]),
        "1.0.0",
    )
    assert (r.era, r.downgrade, r.base, r.actor, r.run) == (2, False, head.tag, "me", "r1")


@pytest.mark.parametrize("allow", [False, True])
def test_a_downgrade_needs_allow_and_a_reason(allow: bool) -> None:
    seen = observed("b", "1.1.0", rec("1", "b", "1.1.0"))
    with pytest.raises(Downgrade, match="older" if not allow else "--reason"):
        plan(seen, "a", "1.0.0", allow_downgrade=allow, reason="  ")


def test_an_allowed_downgrade_opens_an_era_based_on_the_current_move() -> None:
    head = rec("1", "b", "1.1.0")
    r = plan(observed("b", "1.1.0", head), "a", "1.0.0", allow_downgrade=True, reason="x").record
    assert r is not None and r.downgrade and r.era == 1 and r.base == head.tag


def test_a_move_in_flight_counts_for_the_downgrade_check() -> None:
    """The index already says 1.2.0 (its writer has not moved the tag yet): 1.1.0 would be
    a downgrade from it, even though the tag still shows 1.0.0."""
    seen = observed("a", "1.0.0", rec("1", "a", "1.0.0"), rec("2", "c", "1.2.0"))
    with pytest.raises(Downgrade, match=r"1\.2\.0"):
        plan(seen, "b", "1.1.0")


def test_an_unreadable_channel_needs_a_reasoned_override() -> None:
    seen = Observed(D["a"], None, "corrupt", ChannelIndex("stable", (rec("1", "a", "1.0.0"),)))
    with pytest.raises(UnreadableChannel, match="cannot be read"):
        plan(seen, "b", "1.1.0")
    forced = plan(seen, "b", "1.1.0", allow_downgrade=True, reason="corrupt")
    assert forced.record is not None and forced.record.downgrade and forced.warning


def test_a_non_semver_current_version_warns() -> None:
    result = plan(observed("a", "legacy"), "b", "1.1.0")
    assert result.action == "move" and result.warning and "not SemVer" in result.warning


# -- the winner rule ---------------------------------------------------------------------------


def test_beats() -> None:
    cur = rec("1", "a", "1.0.0", era=1)
    assert rules.beats(rec("2", "b", "1.1.0", era=1), cur)
    assert not rules.beats(rec("2", "b", "0.9.0", era=1), cur)
    assert not rules.beats(rec("2", "a", "1.0.0", era=1), cur)  # same release
    assert not rules.beats(rec("2", "b", "9.0.0", era=0), cur)  # decided before a downgrade
    assert rules.beats(rec("2", "b", "0.1.0", era=2, downgrade=True, base=cur.tag), cur)
    assert not rules.beats(rec("2", "b", "0.1.0", era=2, downgrade=True, base="other"), cur)
    assert rules.beats(cur, None)


def test_fold_says_what_the_channel_really_moved_from_and_ignores_duplicates() -> None:
    first = rec("1", "a", "1.0.0")
    entries, won = rules.fold([first], rec("2", "b", "1.1.0"))
    assert won and entries[-1].from_digest == str(D["a"]) and entries[-1].from_version == "1.0.0"
    again, won = rules.fold(entries, entries[-1])
    assert not won and again == entries


def test_late_lower_and_stale_downgrade_records_lose() -> None:
    base = rec("1", "a", "1.0.0")
    higher = rec("3", "c", "1.5.1", base=base.tag)
    late_lower = rec("2", "b", "1.5.0", base=base.tag)
    stale_down = rec("4", "d", "0.9.0", era=1, downgrade=True, base=base.tag)
    entries = rules.reconcile([base], [higher, late_lower, stale_down])
    assert [e.version for e in entries] == ["1.0.0", "1.5.1"]
    assert entries[-1].from_version == "1.0.0"
    # a move decided after seeing the one before it keeps that one in the history
    after = rec("5", "e", "1.6.0", base=higher.tag)
    entries = rules.reconcile([base], [higher, after])
    assert [e.version for e in entries] == ["1.0.0", "1.5.1", "1.6.0"]


def test_a_reported_move_overtaken_in_a_race_stays_in_the_history() -> None:
    # 1.1.0's writer wrote its index and tag and read both back (it reported the move);
    # 1.2.0, decided on the same base with an earlier record, reconciles after that and
    # wins: the history keeps the reported move, superseded, instead of erasing it.
    base = rec("1", "a", "1.0.0")
    early_higher = rec("2", "c", "1.2.0", base=base.tag)
    reported = rec("3", "b", "1.1.0", base=base.tag)
    held, race = rules.race_view([base, reported], [], early_higher)
    assert (held, race) == ([base, reported], [early_higher])
    entries = rules.reconcile(held, race)
    assert [e.version for e in entries] == ["1.0.0", "1.1.0", "1.2.0"]
    assert rules.stands(reported, entries) and entries[-1].tag == early_higher.tag
    # folded as one race, the same winner, but the reported move would be gone
    assert [e.version for e in rules.reconcile([base], [reported, early_higher])] == [
        "1.0.0",
        "1.2.0",
    ]


def test_a_writers_own_last_entry_is_judged_with_the_race() -> None:
    # 1.1.0's index PUT landed late over 1.2.0's finished move: its own entry is the
    # index's last and it has reported nothing, so it is folded with 1.2.0's record and
    # loses (the history does not claim the channel passed through it).
    base = rec("1", "a", "1.0.0")
    late_lower = rec("2", "b", "1.1.0", base=base.tag)
    finished_higher = rec("3", "c", "1.2.0", base=base.tag)
    held, race = rules.race_view([base, late_lower], [finished_higher], late_lower)
    assert (held, race) == ([base], [finished_higher, late_lower])
    entries = rules.reconcile(held, race)
    assert [e.version for e in entries] == ["1.0.0", "1.2.0"]
    assert not rules.stands(late_lower, entries)
    # an own entry that another move was built on stays where it is
    built_on = rec("4", "d", "1.3.0", base=late_lower.tag)
    held, race = rules.race_view([base, late_lower, built_on], [], late_lower)
    assert (held, race) == ([base, late_lower, built_on], [])


def test_a_rollback_is_not_undone_by_a_move_decided_before_it() -> None:
    base = rec("1", "b", "1.5.0")
    back = rec("3", "a", "1.4.0", era=1, downgrade=True, base=base.tag, kind="rollback")
    stale = rec("2", "b", "1.5.0")  # a slow promote of the release rolled away from
    newer = rec("4", "c", "1.4.5", era=1, base=back.tag)  # decided after the rollback
    entries = rules.reconcile([base], [stale, back, newer])
    assert [e.version for e in entries] == ["1.5.0", "1.4.0", "1.4.5"]


def _random_records(rng: random.Random, base: MoveRecord) -> list[MoveRecord]:
    records = []
    for i in range(rng.randint(2, 6)):
        down = rng.random() < 0.3
        minor = rng.randrange(6)  # one release per version, as in a registry
        records.append(
            MoveRecord(
                "stable",
                "promote",
                str(D["012345"[minor]]),
                f"1.{minor}.0",
                era=rng.randrange(2) + (1 if down else 0),
                downgrade=down,
                base=base.tag if rng.random() < 0.7 else None,
                tag=f"move.stable.20260102T0000{i:02d}.000000Z.{rng.randrange(16**6):06x}",
            )
        )
    return records


def test_every_writer_seeing_the_same_records_computes_the_same_winner() -> None:
    rng = random.Random(12)
    base = rec("1", "a", "1.0.0")
    for _ in range(200):
        records = _random_records(rng, base)
        heads = {
            rules.reconcile([base], list(order))[-1].tag
            for order in itertools.permutations(records)
        }
        assert len(heads) == 1


def test_within_an_era_the_winner_is_the_newest_version() -> None:
    rng = random.Random(7)
    base = rec("1", "a", "0.1.0")
    for _ in range(200):
        records = [r for r in _random_records(rng, base) if not r.downgrade and r.era == 0]
        entries = rules.reconcile([base], records)
        newest = max([base, *records], key=lambda r: rules.parse_version(r.version))
        assert entries[-1].version == newest.version


# -- rollback ---------------------------------------------------------------------------


def test_rollback_goes_back_once_and_is_idempotent() -> None:
    first = rec("1", "a", "1.0.0")
    entries, _ = rules.fold([first], rec("2", "b", "1.1.0"))
    target = rules.plan_rollback(entries, "stable", D["b"])
    assert target.action == "move" and target.target == D["a"]
    assert target.undoes is entries[-1]
    back = rec("3", "a", "1.0.0", era=1, downgrade=True, base=entries[-1].tag, kind="rollback")
    entries, _ = rules.fold(entries, back)
    again = rules.plan_rollback(entries, "stable", D["a"])
    assert again.action == "noop"
    with pytest.raises(NoRollbackTarget):
        rules.plan_rollback([first], "stable", D["a"])


def test_previous_release_follows_the_current_digest() -> None:
    a, b = rec("1", "a", "1.0.0"), rec("2", "b", "1.1.0")
    entries, _ = rules.fold([a], b)
    assert rules.previous_release(entries, D["b"]) is entries[-1]
    assert rules.previous_release(entries, D["a"]) is None


# -- the read-back -----------------------------------------------------------------------------


def test_fast_path_needs_a_short_window_and_an_exact_read_back() -> None:
    assert rules.fast_path(0.2, 1.0, channel_ok=True, index_ok=True)
    assert not rules.fast_path(1.0, 1.0, channel_ok=True, index_ok=True)
    assert not rules.fast_path(0.2, 1.0, channel_ok=False, index_ok=True)
    assert not rules.fast_path(0.2, 1.0, channel_ok=True, index_ok=False)


def test_immutable_outcomes() -> None:
    mine, other = D["a"], D["b"]
    outcome = rules.immutable_outcome
    assert outcome(mine, mine, [], fast=False) == "stands"
    assert outcome(mine, mine, [other], fast=True) == "stands"
    assert outcome(mine, mine, [other], fast=False) == "wait"
    assert outcome(mine, mine, [other], fast=False, waited=True) == "stands"
    assert outcome(mine, other, [other], fast=True) == "lost"
    assert outcome(mine, D["c"], [other], fast=True) == "foreign"
    assert outcome(mine, mine, [other], fast=False, confirmed=other) == "restore"
    assert outcome(mine, other, [other], fast=False, confirmed=other) == "lost"


def test_claims_name_their_content_and_are_found_by_prefix() -> None:
    from datetime import UTC, datetime

    from steps.channels.immutable import claim_tag, parse_claims
    from steps.oci.reference import check_tag

    when = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    a, b = claim_tag("6.0.0", D["a"], when), claim_tag("6.0.0", D["b"], when)
    assert a != b and check_tag(a) == a
    claims, confirmed = parse_claims([a, b, a + ".ok", "6.0.0", "claim.6.0.1.x.y"], "6.0.0")
    assert claims == [(a, D["a"].hex[:12]), (b, D["b"].hex[:12])]
    assert confirmed == {a}
    version = "1.0.0-" + "x" * 120
    long = claim_tag(version, D["a"], when)
    assert len(long) + 3 <= 128 and check_tag(long + ".ok")
    assert parse_claims([long], version)[0] == [(long, D["a"].hex[:12])]


# -- audit data ---------------------------------------------------------------------------------


def test_records_round_trip_and_old_records_read_as_era_zero() -> None:
    r = rec("1", "a", "1.0.0", era=3, downgrade=True, base="move.x")
    assert MoveRecord.from_json(r.to_json()) == r
    legacy = {"channel": "stable", "kind": "promote", "to": str(D["a"]), "version": "1.0.0"}
    old = MoveRecord.from_json(legacy, tag="move.stable.t")
    assert (old.era, old.downgrade, old.base, old.tag) == (0, False, None, "move.stable.t")
    assert MoveRecord.from_json({**legacy, "era": True}).era == 0


def test_the_index_archives_full_pages_deterministically() -> None:
    entries = tuple(
        MoveRecord("stable", "promote", str(D["a"]), f"1.0.{i}", tag=f"move.stable.{i:04d}")
        for i in range(2 * PAGE + 5)
    )
    index, pages = audit.split_pages(ChannelIndex("stable", entries))
    assert len(pages) == 1 and len(pages[0].entries) == PAGE and pages[0].older is None
    assert index.older == audit.page_tag("stable", 1) and index.pages == 1
    assert len(index.entries) == PAGE + 5 and index.total == len(entries)
    assert audit.split_pages(ChannelIndex("stable", entries)) == (index, pages)
    assert ChannelIndex.from_json(index.to_json()) == index
    small = ChannelIndex("stable", entries[:10])
    assert audit.split_pages(small) == (small, [])


def test_record_tags_sort_by_time_and_belong_to_their_channel() -> None:
    tags = [
        "move.stable.20260102T000000.000002Z.abcdef",
        "move.nightly.20260102T000000.000001Z.abcdef",
        "move.stable.20260102T000000.000001Z.123456",
        "1.0.0",
        "history.stable",
    ]
    assert audit.record_tags(tags, "stable") == [tags[2], tags[0]]
    assert audit.tag_time(tags[0]) is not None and audit.tag_time("1.0.0") is None


def test_a_move_superseded_by_a_newer_one_stood_a_lost_one_did_not() -> None:
    base = rec("1", "a", "1.0.0")
    low = rec("2", "b", "1.1.0", base=base.tag)
    high = rec("3", "c", "1.2.0", base=low.tag)
    entries = rules.reconcile([base], [low, high])
    assert rules.stands(low, entries) and rules.stands(high, entries)
    raced = rec("4", "d", "1.1.5", base=base.tag)  # decided without seeing low or high
    assert not rules.stands(raced, rules.reconcile([base], [low, high, raced]))
    down = rec("5", "a", "1.0.0", era=1, downgrade=True, base=high.tag)
    after = rules.reconcile([base], [low, high, down])
    assert not rules.stands(high, after) and rules.stands(down, after)
