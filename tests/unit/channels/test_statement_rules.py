"""The pure statement rules (steps.channels.statement), held to the consume library's format."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

import pytest

from consume import release_consume as rc
from steps.channels import audit
from steps.channels.audit import MoveRecord
from steps.channels.statement import (
    MAX_SEQUENCE,
    SeenStatement,
    Statement,
    agreement,
    issue,
    plan_refresh,
    plan_statement,
    seen_from,
    sequence_floor,
    statement_manifest,
    utc_stamp,
)
from steps.errors import (
    ChannelAhead,
    ChannelBehind,
    ChannelStatementError,
    ChannelStatementExpired,
    StatementAhead,
    StatementReplayed,
    StatementUntrusted,
)
from steps.oci.reference import Digest

A, B, C = (Digest.parse("sha256:" + c * 64) for c in "abc")
NOW = datetime(2026, 12, 1, 12, 0, 0, 250000, tzinfo=UTC)
DAY = timedelta(days=1)
KEY = "sha256:0123456789abcdef"


def statement(
    digest: Digest = A, version: str = "1.1.0", sequence: int = 5, **kw: object
) -> Statement:
    made = issue(
        channel="stable", version=version, digest=digest, now=NOW - DAY, expiry=30 * DAY,
        after=sequence - 1,
    )  # fmt: skip
    return Statement(**{**made.__dict__, **kw})  # type: ignore[arg-type]


def seen(st: Statement | None, *, signed: bool = True, checked: bool = True) -> SeenStatement:
    digest = Digest.of(statement_manifest(st.config_bytes())) if st else None
    return SeenStatement(digest, st, KEY if signed and st else None, None, checked)


def move(to: Digest, version: str, frm: Digest | None = None, seq: int | None = None) -> MoveRecord:
    return MoveRecord(
        "stable",
        "promote",
        str(to),
        version,
        from_digest=str(frm) if frm else None,
        actor="ci@runner",
        tag=f"move.stable.20261201T000000.000000Z.{version.replace('.', '')}aa",
        statement_sequence=seq,
    )


# -- the format ---------------------------------------------------------------------------------


def test_a_statement_is_the_consume_librarys_format_byte_for_byte() -> None:
    st = issue(channel="stable", version="1.2.3", digest=A, now=NOW, expiry=30 * DAY, after=6)
    assert st.sequence == 7
    assert st.issued_at == "2026-12-01T12:00:00Z"  # whole seconds, UTC, Z
    assert st.expires_at == "2026-12-31T12:00:00Z"
    config = st.config_bytes()
    assert config == rc.statement_bytes(st.to_json())
    assert json.loads(config) == {
        "channel": "stable",
        "expiresAt": "2026-12-31T12:00:00Z",
        "issuedAt": "2026-12-01T12:00:00Z",
        "manifestDigest": str(A),
        "schema": "alga.appliance.channel-statement/v1",
        "sequence": 7,
        "version": "1.2.3",
    }
    assert rc.parse_statement(config) == st.to_json()
    assert Statement.parse(config) == st
    data = statement_manifest(config)
    info = rc.verify_statement_manifest(data, expected_digest=str(Digest.of(data)))
    assert info.config_digest == str(Digest.of(config)) and info.config_size == len(config)
    manifest = json.loads(data)
    assert (
        manifest["layers"] == []
        and manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    )
    # the consumer's own decision accepts it for the digest it names, until it expires
    rc.check_statement(
        st.to_json(), channel="stable", manifest_digest=str(A), last_sequence=7,
        now=NOW.timestamp(),
    )  # fmt: skip
    with pytest.raises(rc.StatementExpired):
        rc.check_statement(
            st.to_json(), channel="stable", manifest_digest=str(A), last_sequence=None,
            now=(NOW + 30 * DAY).timestamp(),
        )  # fmt: skip


def test_issue_bounds() -> None:
    with pytest.raises(ValueError):
        issue(channel="stable", version="1.0.0", digest=A, now=NOW, expiry=timedelta(0), after=0)
    assert (
        issue(channel="stable", version="1.0.0", digest=A, now=NOW, expiry=DAY, after=-3).sequence
        == 1
    )
    with pytest.raises(ChannelStatementError) as exhausted:
        issue(channel="stable", version="1.0.0", digest=A, now=NOW, expiry=DAY, after=MAX_SEQUENCE)
    assert exhausted.value.exit_code == 3
    assert utc_stamp(datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)) == "2026-01-02T03:04:05Z"


def test_a_malformed_statement_is_seen_but_not_usable() -> None:
    bad = seen_from(A, b'{"channel":"stable"}', KEY, checked=True)
    assert bad.statement is None and bad.usable is None and "malformed" in (bad.problem or "")
    unsigned = seen(statement(), signed=False)
    assert unsigned.usable is None
    unjudged = seen(statement(), signed=False, checked=False)  # no trusted keys: not judged
    assert unjudged.usable is not None


def test_sequence_floor_is_the_historys_highest() -> None:
    assert sequence_floor([]) == 0
    assert sequence_floor([move(A, "1.0.0", seq=3), move(B, "1.1.0"), move(C, "1.2.0", seq=2)]) == 3


# -- a move's statement ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "target", "floor", "expected"),
    [
        (statement(A), A, 0, "keep"),  # a move that stopped after its statement
        (statement(A), B, 0, "issue"),  # another release
        (statement(A, expires_at="2026-11-30T00:00:00Z"), A, 0, "issue"),  # expired
        (statement(A, sequence=2), A, 3, "issue"),  # below the history's sequence
        (statement(A, version="1.0.9"), A, 0, "issue"),  # names another version
        (None, A, 0, "issue"),
    ],
)
def test_plan_statement(
    current: Statement | None, target: Digest, floor: int, expected: str
) -> None:
    got = plan_statement(
        seen(current), channel="stable", target=target, version="1.1.0", now=NOW, floor=floor
    )
    assert got == expected


def test_an_unsigned_statement_is_never_kept() -> None:
    got = plan_statement(
        seen(statement(A), signed=False), channel="stable", target=A, version="1.1.0", now=NOW
    )
    assert got == "issue"


# -- agreement ----------------------------------------------------------------------------------


def judge(
    channel: Digest | None, version: str | None, history: list[MoveRecord], st: SeenStatement
) -> object:
    return agreement("stable", channel, version, history, st, NOW)


def test_consistent_and_expired() -> None:
    ok = judge(A, "1.1.0", [move(A, "1.1.0", seq=5)], seen(statement(A)))
    assert ok.state == "consistent" and ok.ok  # type: ignore[attr-defined]
    assert f"signed by {KEY}" in ok.message  # type: ignore[attr-defined]
    old = seen(statement(A, expires_at="2026-12-01T11:59:59Z"))
    expired = judge(A, "1.1.0", [move(A, "1.1.0", seq=5)], old)
    assert expired.state == "expired"  # type: ignore[attr-defined]
    assert "channel statement expired on 2026-12-01T11:59:59Z" in expired.message  # type: ignore[attr-defined]
    assert isinstance(expired.error(), ChannelStatementExpired)  # type: ignore[attr-defined]


def test_statement_ahead_of_channel_is_a_move_stopped_before_its_tag() -> None:
    history = [move(B, "1.0.0", seq=4), move(A, "1.1.0", frm=B, seq=5)]
    judged = judge(B, "1.0.0", history, seen(statement(A)))
    assert judged.state == "statement-ahead"  # type: ignore[attr-defined]
    assert "statement ahead of channel" in judged.message  # type: ignore[attr-defined]
    assert str(A) in judged.message and str(B) in judged.message  # type: ignore[attr-defined]
    assert "promote --version 1.1.0 --channel stable" in judged.hint  # type: ignore[attr-defined]
    error = judged.error()  # type: ignore[attr-defined]
    assert isinstance(error, StatementAhead) and error.exit_code == 3
    assert error.to_json()["state"] == "statement-ahead" and error.to_json()["error"] == "Refused"
    first = judge(None, None, [move(A, "1.1.0", seq=1)], seen(statement(A, sequence=1)))
    assert first.state == "statement-ahead"  # type: ignore[attr-defined]


def test_channel_ahead_of_statement_names_its_cause() -> None:
    # the history's current move is where the tag is: a move without the key
    keyless = judge(
        B, "1.2.0", [move(A, "1.1.0", seq=5), move(B, "1.2.0", frm=A)], seen(statement(A))
    )
    assert keyless.state == "channel-ahead"  # type: ignore[attr-defined]
    assert "without issuing a statement" in keyless.message  # type: ignore[attr-defined]
    assert isinstance(keyless.error(), ChannelAhead)  # type: ignore[attr-defined]
    # no recorded move leads there: a re-tag (here: back to an older release)
    retag = judge(C, "1.0.0", [move(A, "1.1.0", seq=5)], seen(statement(A)))
    assert retag.state == "channel-ahead"  # type: ignore[attr-defined]
    assert "no recorded move leads there" in retag.message  # type: ignore[attr-defined]
    missing = judge(A, "1.1.0", [move(A, "1.1.0")], seen(None))
    assert missing.state == "missing" and isinstance(missing.error(), ChannelAhead)  # type: ignore[attr-defined]
    assert "channel ahead of statement" in missing.message  # type: ignore[attr-defined]
    assert judge(None, None, [], seen(None)).state == "empty"  # type: ignore[attr-defined]


def test_behind_and_replayed() -> None:
    # the tag and its statement agree, the history's current move went on: behind
    history = [move(B, "1.0.0", seq=1), move(A, "1.1.0", frm=B, seq=2)]
    behind = judge(B, "1.0.0", history, seen(statement(B, version="1.0.0", sequence=1)))
    assert behind.state == "behind" and isinstance(behind.error(), ChannelBehind)  # type: ignore[attr-defined]
    assert "statement sequence 2" in behind.message  # type: ignore[attr-defined]
    # at the history's current move, but with a sequence below one it recorded: replayed
    replayed = judge(A, "1.1.0", [move(A, "1.1.0", seq=6)], seen(statement(A, sequence=5)))
    assert replayed.state == "replayed"  # type: ignore[attr-defined]
    assert isinstance(replayed.error(), StatementReplayed)  # type: ignore[attr-defined]


def test_untrusted_statements() -> None:
    for st in (
        seen(statement(A), signed=False),
        seen_from(A, b"[]", KEY, checked=True),
        seen(statement(A, channel="nightly")),
        seen(statement(A, version="1.0.0")),
    ):
        judged = judge(A, "1.1.0", [move(A, "1.1.0")], st)
        assert judged.state == "untrusted", judged  # type: ignore[attr-defined]
        assert isinstance(judged.error(), StatementUntrusted)  # type: ignore[attr-defined]
    # without trusted keys the signature is not judged (reported as such)
    unjudged = judge(
        A, "1.1.0", [move(A, "1.1.0")], seen(statement(A), signed=False, checked=False)
    )
    assert unjudged.state == "consistent" and "signature not checked" in unjudged.message  # type: ignore[attr-defined]


# -- refresh ------------------------------------------------------------------------------------


def test_plan_refresh() -> None:
    young = judge(A, "1.1.0", [move(A, "1.1.0", seq=5)], seen(statement(A)))
    fresh = plan_refresh(young, now=NOW, min_age=2 * DAY, expiry=30 * DAY)
    assert fresh.action == "fresh" and fresh.statement is None
    due = plan_refresh(young, now=NOW, min_age=DAY, expiry=7 * DAY, floor=3)
    assert due.action == "refresh" and due.statement is not None
    new = due.statement
    assert (new.sequence, new.manifest_digest, new.version) == (6, str(A), "1.1.0")
    assert new.issued_at == "2026-12-01T12:00:00Z" and new.expires_at == "2026-12-08T12:00:00Z"
    # expired: refreshed whatever the minimum age
    expired = judge(A, "1.1.0", [], seen(statement(A, expires_at="2026-12-01T00:00:00Z")))
    assert plan_refresh(expired, now=NOW, min_age=365 * DAY, expiry=DAY).action == "refresh"
    # replayed: re-issued above the history's sequence
    replayed = judge(A, "1.1.0", [move(A, "1.1.0", seq=9)], seen(statement(A)))
    again = plan_refresh(replayed, now=NOW, min_age=365 * DAY, expiry=DAY, floor=9)
    assert again.statement is not None and again.statement.sequence == 10
    for state in (
        judge(B, "1.0.0", [move(B, "1.0.0"), move(A, "1.1.0", frm=B)], seen(statement(A))),
        judge(C, "1.2.0", [move(A, "1.1.0")], seen(statement(A))),
        judge(A, "1.1.0", [move(A, "1.1.0")], seen(None)),
        judge(A, "1.1.0", [move(A, "1.1.0")], seen(statement(A), signed=False)),
    ):
        with pytest.raises(ChannelStatementError) as refused:
            plan_refresh(state, now=NOW, min_age=DAY, expiry=DAY)  # type: ignore[arg-type]
        assert refused.value.exit_code == 3


# -- records and options -----------------------------------------------------------------------


def test_records_carry_the_statement_sequence_and_refreshes_have_their_own_tags() -> None:
    record = move(A, "1.1.0", seq=4)
    data = record.to_json()
    assert data["statementSequence"] == 4
    assert MoveRecord.from_json(data) == record
    assert "statementSequence" not in move(A, "1.1.0").to_json()  # keyless: as before
    refresh = MoveRecord("stable", "refresh", str(A), "1.1.0")
    assert MoveRecord.from_json(refresh.to_json()).kind == "refresh"
    tag = audit.audit_tag("stable", NOW, audit.REFRESH_TAG_PREFIX)
    assert tag.startswith("refresh.stable.20261201T120000.250000Z.")
    assert audit.record_tags([tag], "stable") == []  # never read as a move
    bad = MoveRecord.from_json({**data, "statementSequence": True})
    assert bad.statement_sequence is None


def test_durations_and_the_defaults_spelt_once_in_each_place() -> None:
    from steps.channels.vouch import DEFAULT_EXPIRY, DEFAULT_MIN_AGE
    from steps.cli import options

    assert options.duration(options.STATEMENT_EXPIRY_DEFAULT) == DEFAULT_EXPIRY
    assert options.duration(options.STATEMENT_MIN_AGE_DEFAULT) == DEFAULT_MIN_AGE
    assert options.duration("12h") == timedelta(hours=12)
    assert options.duration(" 1.5D ") == timedelta(hours=36)
    assert options.duration("90s") == timedelta(seconds=90)
    assert options.duration("2w") == timedelta(days=14)
    for bad in ("30", "d", "-1d", "0h", "abc", "1y", "nan d", "4000w"):
        with pytest.raises(argparse.ArgumentTypeError):
            options.duration(bad)


def test_history_shows_refreshes_among_the_moves() -> None:
    from steps.cli.output import human_history, human_refresh

    moves = [
        {"time": "2026-12-01T00:00:00.000000Z", "kind": "publish", "version": "1.0.0",
         "fromVersion": None, "actor": "ci"},
        {"time": "2026-12-09T00:00:00.000000Z", "kind": "promote", "version": "1.1.0",
         "fromVersion": "1.0.0", "actor": "ci"},
    ]  # fmt: skip
    refreshes = [
        {"time": "2026-12-08T00:00:00.000000Z", "kind": "refresh", "version": "1.0.0",
         "fromVersion": "1.0.0", "actor": "cron", "reason": "statement sequence 1 -> 2"},
    ]  # fmt: skip
    text = human_history(
        {
            "channel": "stable",
            "current": {"version": "1.1.0", "digest": str(A)},
            "moves": moves,
            "refreshes": refreshes,
            "statement": {"state": "consistent", "message": "channel stable: ok", "hint": None},
        }
    )
    lines = text.splitlines()
    assert lines[1] == "statement: consistent: channel stable: ok"
    kinds = [line.split()[1] for line in lines if line.startswith("2026-")]
    assert kinds == ["publish", "refresh", "promote"]
    fresh = human_refresh(
        {
            "channel": "stable",
            "version": "1.1.0",
            "manifestDigest": str(A),
            "status": "fresh",
            "previous": {"sequence": 3, "issuedAt": "x", "expiresAt": "y"},
        }
    )
    assert "left as it is" in fresh
