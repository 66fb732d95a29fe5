"""Channel statements: what a signed statement says, and the rules around it (pure).

A **channel statement** says, signed by the release key: channel C points at release
manifest D (version V), it is C's ``sequence``-th statement, issued at ``issuedAt``, valid
until ``expiresAt``. Appliances that verify (the consume library with trusted keys) follow
``:<C>`` only while its statement vouches for the digest the tag resolves to, the sequence
never goes below one they saw, and it has not expired: a re-tag by someone with push rights
but not the key, a replayed older channel and a frozen one are all refused.

The format is the consume library's (``consume/README.md``, "Channel statements"; the
constants and checks below are its own, imported, so both sides cannot drift): an OCI image
manifest tagged ``statement.<C>`` in the release repository, ``artifactType``
:data:`STATEMENT_ARTIFACT`, config media type :data:`STATEMENT_CONFIG`, ``"layers": []``,
its config blob the canonical JSON of :meth:`Statement.to_json`; signed in cosign's format
(``sha256-<statement manifest hex>.sig``) like every other artifact.

The rules here:

- :func:`issue`: the next statement (sequence one above the highest known, times in whole
  UTC seconds from the caller's clock, ``expiresAt = issuedAt + expiry``);
- :func:`plan_statement`: does a move keep the current statement or issue one;
- :func:`agreement`: how the channel tag, its history's current move and its statement
  relate (consistent, expired, statement ahead of channel, channel ahead of statement,
  missing, untrusted), with the message a person needs, and the error that refuses;
- :func:`plan_refresh`: what ``channel refresh`` does (refuse, leave a fresh statement as
  it is, or re-issue it with the next sequence and a new expiry).

No network or file I/O, no clock, no environment: :mod:`steps.channels.vouch` reads and
writes the registry and hands the observations in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from consume import release_consume as rc
from steps.channels.audit import MoveRecord
from steps.errors import (
    ChannelAhead,
    ChannelBehind,
    ChannelStatementError,
    ChannelStatementExpired,
    StatementAhead,
    StatementReplayed,
    StatementUntrusted,
)
from steps.oci import mediatypes as mt
from steps.oci.reference import Digest

STATEMENT_ARTIFACT: str = rc.STATEMENT_ARTIFACT
STATEMENT_CONFIG: str = rc.STATEMENT_CONFIG
STATEMENT_SCHEMA: str = rc.STATEMENT_SCHEMA
MAX_SEQUENCE = 2**53 - 1  # the consume library's bound: exact in JavaScript too
_SECONDS = "%Y-%m-%dT%H:%M:%SZ"


def statement_tag(channel: str) -> str:
    """``statement.<channel>``: where the channel's statement lives."""
    return rc.statement_tag(channel)


def utc_stamp(when: datetime) -> str:
    """``YYYY-MM-DDThh:mm:ssZ``: a statement's time, in whole UTC seconds."""
    return when.astimezone(UTC).strftime(_SECONDS)


def parse_utc(text: str) -> datetime | None:
    """A statement time as an aware UTC datetime (None when it is not one)."""
    seconds = rc.utc_seconds(text)
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class Statement:
    """One channel statement, as its config blob holds it."""

    channel: str
    version: str
    manifest_digest: str
    sequence: int
    issued_at: str
    expires_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "expiresAt": self.expires_at,
            "issuedAt": self.issued_at,
            "manifestDigest": self.manifest_digest,
            "schema": STATEMENT_SCHEMA,
            "sequence": self.sequence,
            "version": self.version,
        }

    def config_bytes(self) -> bytes:
        """The config blob: canonical JSON (sorted keys, no spaces), as the consumer reads."""
        return rc.statement_bytes(self.to_json())

    @classmethod
    def parse(cls, data: bytes) -> Statement:
        """A statement from its config blob; :class:`StatementUntrusted` when malformed."""
        try:
            doc = rc.parse_statement(data)
        except rc.InvalidStatement as exc:
            raise StatementUntrusted(
                f"the channel statement is malformed: {exc.message}", state="untrusted"
            ) from None
        return cls(
            channel=str(doc["channel"]),
            version=str(doc["version"]),
            manifest_digest=str(doc["manifestDigest"]),
            sequence=int(doc["sequence"]),
            issued_at=str(doc["issuedAt"]),
            expires_at=str(doc["expiresAt"]),
        )

    @property
    def issued(self) -> datetime:
        when = parse_utc(self.issued_at)
        assert when is not None  # parse() checked it
        return when

    @property
    def expires(self) -> datetime:
        when = parse_utc(self.expires_at)
        assert when is not None
        return when

    def expired(self, now: datetime) -> bool:
        """As the consumer decides: expired once ``expiresAt`` is not after ``now``."""
        return self.expires <= now

    def vouches(self, channel: str, digest: Digest | str, version: str | None = None) -> bool:
        return (
            self.channel == channel
            and self.manifest_digest == str(digest)
            and (version is None or self.version == version)
        )

    def describe(self) -> str:
        return f"sequence {self.sequence}, issued {self.issued_at}, expires {self.expires_at}"


def statement_manifest(config: bytes) -> bytes:
    """The statement's OCI image manifest bytes for its config blob (canonical JSON, no
    layers: the consumer's format)."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": STATEMENT_ARTIFACT,
        "config": {
            "mediaType": STATEMENT_CONFIG,
            "digest": str(Digest.of(config)),
            "size": len(config),
        },
        "layers": [],
    }
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def sequence_floor(records: Iterable[MoveRecord]) -> int:
    """The highest statement sequence the channel's history records (0 when none): a floor
    for the next statement when ``statement.<channel>`` itself cannot be read or trusted."""
    return max((r.statement_sequence or 0 for r in records), default=0)


def issue(
    *,
    channel: str,
    version: str,
    digest: Digest | str,
    now: datetime,
    expiry: timedelta,
    after: int,
) -> Statement:
    """The next statement: sequence ``after + 1``, issued ``now`` (whole seconds), valid for
    ``expiry``."""
    if expiry <= timedelta(0):
        raise ValueError("a statement's expiry must be positive")
    sequence = max(after, 0) + 1
    if sequence > MAX_SEQUENCE:
        raise ChannelStatementError(
            f"channel {channel}: its statement sequence is exhausted ({after})",
            state="sequence",
            hint="the statement sequence only grows; a value this high was not written by "
            "alga-release: inspect statement." + channel,
        )
    issued = now.astimezone(UTC).replace(microsecond=0)
    return Statement(
        channel=channel,
        version=version,
        manifest_digest=str(digest),
        sequence=sequence,
        issued_at=utc_stamp(issued),
        expires_at=utc_stamp(issued + expiry),
    )


# -- what was read -----------------------------------------------------------------------


@dataclass(frozen=True)
class SeenStatement:
    """``statement.<channel>`` as read: ``digest`` is its manifest digest (None: no such tag);
    ``statement`` its parsed JSON (None when absent or malformed); ``signed_by`` the trusted
    key id with a valid signature over ``digest`` (None: none); ``problem`` why it cannot
    be used; ``checked`` False when there were no trusted keys to judge the signature by."""

    digest: Digest | None = None
    statement: Statement | None = None
    signed_by: str | None = None
    problem: str | None = None
    checked: bool = True

    @property
    def usable(self) -> Statement | None:
        """The statement when it may be relied on (well formed and, when judged, signed)."""
        if self.statement is None or self.problem is not None:
            return None
        return self.statement if (self.signed_by or not self.checked) else None

    def to_json(self) -> dict[str, Any]:
        s = self.statement
        return {
            "digest": str(self.digest) if self.digest else None,
            "sequence": s.sequence if s else None,
            "issuedAt": s.issued_at if s else None,
            "expiresAt": s.expires_at if s else None,
            "manifestDigest": s.manifest_digest if s else None,
            "version": s.version if s else None,
            "signedBy": self.signed_by,
            "signatureChecked": self.checked,
            "problem": self.problem,
        }


def plan_statement(
    seen: SeenStatement,
    *,
    channel: str,
    target: Digest,
    version: str,
    now: datetime,
    floor: int = 0,
) -> Literal["keep", "issue"]:
    """Does a move to ``target`` keep the current statement or issue a new one? Keep only
    a usable, unexpired statement that already vouches for ``target`` with a sequence not
    below ``floor`` (the history's highest): a move that stopped after its statement is
    finished by the re-run, which moves the tag and changes nothing else."""
    current = seen.usable
    if (
        current is not None
        and current.vouches(channel, target, version)
        and not current.expired(now)
        and current.sequence >= floor
    ):
        return "keep"
    return "issue"


# -- agreement between the tag and the statement --------------------------------------------

State = Literal[
    "consistent",
    "expired",
    "statement-ahead",
    "channel-ahead",
    "behind",
    "replayed",
    "missing",
    "untrusted",
    "empty",
]


@dataclass(frozen=True)
class Agreement:
    """How a channel's tag, its history's current move and its statement relate."""

    state: State
    channel: str
    message: str
    hint: str | None
    seen: SeenStatement
    channel_digest: Digest | None
    channel_version: str | None

    @property
    def ok(self) -> bool:
        return self.state == "consistent"

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "consistent": self.ok,
            "message": self.message,
            "hint": self.hint,
            "tag": statement_tag(self.channel),
            **self.seen.to_json(),
        }

    def error(self) -> ChannelStatementError:
        kinds: dict[str, type[ChannelStatementError]] = {
            "statement-ahead": StatementAhead,
            "channel-ahead": ChannelAhead,
            "behind": ChannelBehind,
            "replayed": StatementReplayed,
            "missing": ChannelAhead,
            "empty": ChannelAhead,
            "untrusted": StatementUntrusted,
            "expired": ChannelStatementExpired,
        }
        kind = kinds.get(self.state, ChannelStatementError)
        return kind(self.message, state=self.state, hint=self.hint)


def _release(version: str | None, digest: Digest | str | None) -> str:
    if digest is None:
        return "no release"
    return f"{version or '(unreadable)'} ({digest})"


def agreement(
    channel: str,
    channel_digest: Digest | None,
    channel_version: str | None,
    history: Sequence[MoveRecord],
    seen: SeenStatement,
    now: datetime,
) -> Agreement:
    """Judge the channel's state (pure). ``history`` is the channel's history (at least
    its index's entries: the last is the current move; their ``statementSequence`` is the
    floor a statement may not be below).

    - ``consistent``: a usable statement vouches for the tag's release, not expired, and
      the history's current move is that release;
    - ``expired``: it vouches for it but its ``expiresAt`` passed (refresh it);
    - ``behind``: the tag and the statement agree, but the history's current move goes
      elsewhere (a move stopped after its record, or an older channel state was put back);
    - ``replayed``: they agree, but the statement's sequence is below one the history
      records (an older statement was put back);
    - ``statement-ahead``: the statement names X, the tag is still at Y, and the history's
      current move goes from Y to X: a move stopped between its statement and its tag;
    - ``channel-ahead``: the tag is at Y, the statement names X, and no recorded move
      explains it (a move to Y without a signing key, or a re-tag outside the tool);
    - ``missing``: the tag points at a release and there is no statement at all;
    - ``untrusted``: the statement is unsigned, signed by no trusted key, or malformed;
    - ``empty``: neither the tag nor the statement exists.
    """
    tag = statement_tag(channel)
    here = _release(channel_version, channel_digest)
    head = history[-1] if history else None

    def judged(state: State, message: str, hint: str | None) -> Agreement:
        return Agreement(state, channel, message, hint, seen, channel_digest, channel_version)

    if seen.digest is None:
        if channel_digest is None:
            return judged(
                "empty", f"channel {channel} points at no release and has no statement", None
            )
        again = f"`alga-release promote --version {channel_version or '<version>'} --channel "
        return judged(
            "missing",
            f"channel {channel}: channel ahead of statement: the channel points at {here} and "
            f"there is no signed statement ({tag} does not exist); appliances that verify "
            "refuse the channel",
            f"a move with --signing-key issues one: {again}{channel} --signing-key FILE` "
            "issues the statement for the current release and moves nothing",
        )
    current = seen.statement
    if current is None or seen.problem or (seen.checked and not seen.signed_by):
        why = seen.problem or "it is not signed by a trusted key"
    elif current.channel != channel:
        why = f"it is a statement for channel {current.channel}"
    else:
        why = None
    if current is None or why is not None:
        return judged(
            "untrusted",
            f"channel {channel}: its statement {tag} ({seen.digest}) cannot be trusted: {why}",
            f"re-issue it: `alga-release promote --version {channel_version or '<version>'} "
            f"--channel {channel} --signing-key FILE` (or add the signer's key with "
            "--trusted-key if it was rotated)",
        )
    if channel_digest is not None and current.vouches(channel, channel_digest):
        if channel_version is not None and current.version != channel_version:
            return judged(
                "untrusted",
                f"channel {channel}: its statement ({current.describe()}) names version "
                f"{current.version}, but the release it vouches for is {channel_version}",
                "re-issue it with a move of the current version and --signing-key",
            )
        if head is not None and head.to_digest != str(channel_digest):
            rerun = f"--version {head.version} --channel {channel}"
            if head.downgrade:
                rerun += " --allow-downgrade --reason '<why>'"
            return judged(
                "behind",
                f"channel {channel}: channel behind its history: the history's current move "
                f"goes to {_release(head.version, head.to_digest)} (record {head.tag or '?'}, "
                f"{head.kind} by {head.actor or 'unknown'}"
                + (
                    f", statement sequence {head.statement_sequence}"
                    if head.statement_sequence is not None
                    else ""
                )
                + f"), but the channel and its statement ({current.describe()}) are at {here}: "
                "a move stopped after its record and before its statement, or an older "
                "channel state was put back",
                f"finish that move: `alga-release promote {rerun} --signing-key FILE`",
            )
        floor = sequence_floor(history)
        if current.sequence < floor:
            return judged(
                "replayed",
                f"channel {channel}: its statement ({current.describe()}) has a sequence "
                f"below {floor}, which the channel's history records: an older statement "
                "was put back; appliances that saw the newer one refuse it",
                f"re-issue it: `alga-release channel refresh {channel} --signing-key FILE`",
            )
        if current.expired(now):
            return judged(
                "expired",
                f"channel {channel}: channel statement expired on {current.expires_at} "
                f"({current.describe()}); appliances that verify stay on what they have",
                f"refresh it: `alga-release channel refresh {channel} --signing-key FILE`",
            )
        return judged(
            "consistent",
            f"channel {channel}: the signed statement ({current.describe()}"
            + (f", signed by {seen.signed_by}" if seen.signed_by else ", signature not checked")
            + f") vouches for {here}",
            None,
        )
    named = _release(current.version, current.manifest_digest)
    came_from = str(channel_digest) if channel_digest else None
    if (
        head is not None
        and head.to_digest == current.manifest_digest
        and head.from_digest == came_from
    ):
        rerun = f"--version {current.version} --channel {channel}"
        if head.downgrade:
            rerun += " --allow-downgrade --reason '<why>'"
        return judged(
            "statement-ahead",
            f"channel {channel}: statement ahead of channel: the signed statement "
            f"({current.describe()}) names {named}, but the channel still points at {here}; "
            f"the move to {current.version} (record {head.tag or '?'}, {head.kind} by "
            f"{head.actor or 'unknown'}) stopped between its statement and its tag, and "
            "appliances that verify refuse the channel until it is finished",
            f"re-run the move (the same command, or `alga-release promote {rerun}` with the "
            "same --signing-key): it moves the tag and changes nothing else",
        )
    if head is not None and channel_digest is not None and head.to_digest == str(channel_digest):
        cause = (
            f"the history's current move (record {head.tag or '?'}, {head.kind} by "
            f"{head.actor or 'unknown'}) moved it without issuing a statement (no --signing-key)"
        )
        hint = (
            f"re-run that move with the key: `alga-release promote --version {channel_version} "
            f"--channel {channel} --signing-key FILE` issues its statement and moves nothing"
        )
    else:
        cause = (
            "no recorded move leads there: the tag was moved outside alga-release (a re-tag "
            "by someone with push rights but not the key)"
        )
        hint = (
            f"do not vouch for it unchecked: `alga-release history {channel}` shows the moves; "
            f"`alga-release promote --version {current.version} --channel {channel}` puts the "
            "vouched-for release back"
        )
    return judged(
        "channel-ahead",
        f"channel {channel}: channel ahead of statement: the channel points at {here}, but its "
        f"signed statement ({current.describe()}) vouches for {named}; {cause}",
        hint,
    )


# -- refresh ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshPlan:
    """``fresh``: the statement is younger than the minimum age (left as it is);
    ``refresh``: re-issue ``statement`` (the same channel, version and digest)."""

    action: Literal["fresh", "refresh"]
    current: Statement
    statement: Statement | None = None


def plan_refresh(
    judged: Agreement,
    *,
    now: datetime,
    min_age: timedelta,
    expiry: timedelta,
    floor: int = 0,
) -> RefreshPlan:
    """What ``channel refresh`` does (pure). Refuses (raises the agreement's error, exit 3)
    unless the tag and a trusted statement agree (an expired statement, or one replayed
    below the history's sequence, is refreshed);
    a statement younger than ``min_age`` and not expired is left as it is; otherwise the
    next statement has the sequence above the current one (and above ``floor``, the
    history's highest), the same release, issued ``now``, valid for ``expiry``."""
    if judged.state not in ("consistent", "expired", "replayed"):
        raise judged.error()
    current = judged.seen.usable
    assert current is not None and judged.channel_digest is not None
    if judged.state == "consistent" and now - current.issued < min_age:
        return RefreshPlan("fresh", current)
    fresh = issue(
        channel=current.channel,
        version=current.version,
        digest=current.manifest_digest,
        now=now,
        expiry=expiry,
        after=max(current.sequence, floor),
    )
    return RefreshPlan("refresh", current, fresh)


def seen_from(
    digest: Digest | None,
    config: bytes | None,
    signed_by: str | None,
    *,
    checked: bool,
    problem: str | None = None,
) -> SeenStatement:
    """A :class:`SeenStatement` from what was read (parses the config blob)."""
    if digest is None:
        return SeenStatement(checked=checked)
    if problem is not None or config is None:
        return SeenStatement(digest, None, signed_by, problem or "no config blob", checked)
    try:
        parsed = Statement.parse(config)
    except StatementUntrusted as exc:
        return SeenStatement(digest, None, signed_by, exc.message, checked)
    return SeenStatement(digest, parsed, signed_by, None, checked)


def statement_json(
    statement: Statement | None, digest: Digest | None, status: str
) -> dict[str, Any]:
    """A move's or a refresh's ``statement`` result: what it issued or kept."""
    return {
        "status": status,
        "digest": str(digest) if digest else None,
        **({k: v for k, v in statement.to_json().items() if k != "schema"} if statement else {}),
    }


def manifest_of(data: Mapping[str, Any]) -> bool:
    """Is ``data`` (a parsed manifest) a channel statement's?"""
    config = data.get("config")
    return (
        data.get("artifactType") == STATEMENT_ARTIFACT
        and isinstance(config, Mapping)
        and config.get("mediaType") == STATEMENT_CONFIG
    )
