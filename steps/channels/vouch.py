"""Channel statements in the registry: read, stage, tag, and settle them.

The rules are pure, in :mod:`steps.channels.statement`; this module is their I/O:

- :func:`read_statement`: ``statement.<channel>`` as a
  :class:`~steps.channels.statement.SeenStatement` (its bytes checked with the consume
  library's own checks, its signature against the trusted keys): four to five requests;
- :func:`stage_statement`: push the config blob, PUT the manifest **by digest** and sign
  that digest (``sha256-<hex>.sig``): about nine requests, none of which a consumer can
  see; :func:`tag_statement` then PUTs ``statement.<channel>`` (one request). So a
  statement is never visible unsigned, and a writer stages *before* the timed part of
  the move protocol, whose window only grows by the one tag PUT;
- :func:`follow`: for a writer that took the protocol's slow path, make the statement
  vouch for the move that stands, with the same settle and read-back as the tag and the
  index (see :mod:`steps.channels`, "Statements");
- :func:`plan_vouching`, :func:`vouch_in_place`, :func:`follow_winner`: the statement
  steps of :func:`steps.channels.move.move_channel`.

Statements are written only with a signing key (:class:`Issuer`); without one, nothing
here runs and the channel has no statement (appliances that verify then refuse it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from consume import release_consume as rc
from steps.channels import audit
from steps.channels.audit import ChannelIndex, MoveRecord, release_repository
from steps.channels.releases import Gate, read_release, require_valid
from steps.channels.statement import (
    SeenStatement,
    Statement,
    issue,
    plan_statement,
    seen_from,
    sequence_floor,
    statement_json,
    statement_manifest,
    statement_tag,
)
from steps.channels.timing import Timing
from steps.errors import ChannelUnsettled, Refused
from steps.oci import mediatypes as mt
from steps.oci.errors import NotFound
from steps.oci.reference import Digest

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient
    from steps.signing.cosign import Signer
    from steps.signing.keys import PublicKey

log = logging.getLogger("alga_release.channels")

DEFAULT_EXPIRY = timedelta(days=30)
DEFAULT_MIN_AGE = timedelta(days=1)
FOLLOW_ROUNDS = 6


@dataclass(frozen=True)
class Issuer:
    """Who writes statements: the signing key, the keys whose statements count when the
    current one is read (the signing key's own and any ``--trusted-key``: a statement by
    the previous key keeps its sequence during a rotation), and the validity of each."""

    signer: Signer
    trusted: tuple[PublicKey, ...]
    expiry: timedelta = DEFAULT_EXPIRY


@dataclass(frozen=True)
class Vouched:
    """What a move or a refresh did about the statement."""

    status: Literal["issued", "kept", "would-issue", "not-vouched", "none"]
    statement: Statement | None = None
    digest: Digest | None = None

    def to_json(self) -> dict[str, Any]:
        return statement_json(self.statement, self.digest, self.status)


def read_statement(
    client: RegistryClient, namespace: str, channel: str, trusted: Sequence[PublicKey]
) -> SeenStatement:
    """``statement.<channel>`` as it is now; its signature judged by ``trusted`` (when
    empty, not judged: ``checked`` False)."""
    repository = release_repository(namespace)
    checked = bool(trusted)
    try:
        manifest = client.get_manifest(repository, statement_tag(channel))
    except NotFound:
        return SeenStatement(checked=checked)
    try:
        info = rc.verify_statement_manifest(manifest.data, expected_digest=str(manifest.digest))
    except rc.ConsumeError as exc:
        return seen_from(manifest.digest, None, None, checked=checked, problem=str(exc))
    try:
        config = client.get_blob(
            repository, Digest.parse(info.config_digest), size=info.config_size
        )
    except NotFound:
        return seen_from(
            manifest.digest, None, None, checked=checked, problem="its config blob is missing"
        )
    signed_by = None
    if trusted:
        from steps.signing.cosign import verify_signatures  # with trusted keys only

        try:
            status = verify_signatures(client, repository, manifest.digest, trusted)
        except Refused as exc:  # the .sig tag holds something else
            return seen_from(manifest.digest, config, None, checked=True, problem=exc.message)
        signed_by = status.signed_by[0] if status.signed_by else None
    return seen_from(manifest.digest, config, signed_by, checked=checked)


@dataclass(frozen=True)
class Staged:
    """A statement pushed and signed by digest, not yet tagged."""

    statement: Statement
    digest: Digest
    data: bytes


def stage_statement(
    client: RegistryClient, namespace: str, statement: Statement, signer: Signer
) -> Staged:
    """Push ``statement`` and its signature by digest (no tag yet: nobody sees it)."""
    repository = release_repository(namespace)
    config = statement.config_bytes()
    data = statement_manifest(config)
    client.push_blob(repository, config, likely_new=True)
    digest = client.put_manifest(repository, Digest.of(data), data, mt.OCI_MANIFEST)
    signer.sign(client, repository, digest)
    return Staged(statement, digest, data)


def tag_statement(client: RegistryClient, namespace: str, staged: Staged) -> Digest:
    """Make a staged statement the channel's: PUT ``statement.<channel>`` (one request)."""
    statement = staged.statement
    client.put_manifest(
        release_repository(namespace),
        statement_tag(statement.channel),
        staged.data,
        mt.OCI_MANIFEST,
    )
    log.info(
        "channel %s: statement %s issued for %s (%s)",
        statement.channel,
        statement.describe(),
        statement.version,
        statement.manifest_digest,
    )
    return staged.digest


def next_statement(
    issuer: Issuer,
    *,
    channel: str,
    version: str,
    digest: Digest | str,
    seen: SeenStatement,
    floor: int,
    timing: Timing,
) -> Statement:
    """The next statement for ``version`` (``digest``): its sequence is above the current
    usable statement's and above ``floor`` (the history's highest); nothing is written."""
    current = seen.usable
    if seen.digest is not None and current is None:
        log.warning(
            "channel %s: its statement %s cannot be trusted (%s); the next one follows the "
            "history's highest sequence (%d)",
            channel,
            seen.digest,
            seen.problem or "not signed by a trusted key",
            floor,
        )
    return issue(
        channel=channel,
        version=version,
        digest=digest,
        now=timing.clock(),
        expiry=issuer.expiry,
        after=max(current.sequence if current else 0, floor),
    )


def follow(
    client: RegistryClient,
    namespace: str,
    channel: str,
    *,
    target: Digest,
    version: str,
    issuer: Issuer,
    floor: int,
    suspect: Digest | None,
    timing: Timing,
) -> Vouched:
    """Make ``statement.<channel>`` vouch for ``target``, the move that stands, after the
    slow path settled the tag and the index.

    ``suspect`` is this writer's own statement from the move: it may have landed late, on
    a newer statement with a higher sequence, so it is re-issued rather than kept. Each
    round reads the statement, keeps it if it vouches for ``target`` (and is not
    ``suspect``), else stages the next one, checks (a HEAD) that the statement did not
    change meanwhile, tags it, waits the settle and reads the tag back; it ends when a
    round keeps, or tagged within the settle of its check and read back its own statement
    (at most :data:`FOLLOW_ROUNDS`, then :class:`~steps.errors.ChannelUnsettled`, 75)."""
    repository = release_repository(namespace)
    for _ in range(FOLLOW_ROUNDS):
        seen = read_statement(client, namespace, channel, issuer.trusted)
        keep = plan_statement(
            seen, channel=channel, target=target, version=version, now=timing.clock(), floor=floor
        )
        if keep == "keep" and seen.digest != suspect:
            return Vouched("kept", seen.usable, seen.digest)
        statement = next_statement(
            issuer,
            channel=channel,
            version=version,
            digest=target,
            seen=seen,
            floor=floor,
            timing=timing,
        )
        staged = stage_statement(client, namespace, statement, issuer.signer)
        floor, suspect = max(floor, statement.sequence), None
        began = timing.monotonic()
        now = client.head_manifest(repository, statement_tag(channel))
        if (now.digest if now else None) != seen.digest:
            continue  # another writer's statement landed meanwhile: judge it first
        digest = tag_statement(client, namespace, staged)
        window = timing.monotonic() - began
        timing.sleep(timing.settle)
        back = client.head_manifest(repository, statement_tag(channel))
        if window < timing.settle and back is not None and back.digest == digest:
            return Vouched("issued", statement, digest)
    raise ChannelUnsettled(
        f"channel {channel}: other writers kept rewriting its statement; after "
        f"{FOLLOW_ROUNDS} rounds it still does not vouch for {version} ({target})",
        hint="retry in a minute; `alga-release verify --channel " + channel + "` shows the state",
    )


# -- the statement of a move (for steps.channels.move) ---------------------


@dataclass(frozen=True)
class Vouching:
    """What a move found of the channel's statement: ``next`` is the statement it issues
    (None: the current one already vouches for the target and is kept), ``staged`` that
    statement once pushed and signed (not yet tagged)."""

    seen: SeenStatement
    next: Statement | None
    staged: Staged | None = None

    @property
    def kept(self) -> Vouched:
        return Vouched("kept", self.seen.usable, self.seen.digest)

    def unchanged(self, client: RegistryClient, namespace: str) -> bool:
        """Is ``statement.<channel>`` still the one this plan read (one HEAD)?"""
        assert self.next is not None
        now = client.head_manifest(release_repository(namespace), statement_tag(self.next.channel))
        return (now.digest if now else None) == self.seen.digest


def plan_vouching(
    client: RegistryClient,
    namespace: str,
    channel: str,
    issuer: Issuer,
    index: ChannelIndex | None,
    target: Digest,
    version: str,
    timing: Timing,
    *,
    stage: bool,
) -> Vouching:
    """Read the statement and decide: keep it, or issue the next (staged with ``stage``)."""
    seen = read_statement(client, namespace, channel, issuer.trusted)
    now = timing.clock()
    floor = sequence_floor(index.entries if index else ())
    decided = plan_statement(
        seen, channel=channel, target=target, version=version, now=now, floor=floor
    )
    if decided == "keep":
        return Vouching(seen, None)
    if seen.usable is None:  # the history is the floor; refreshes count too
        refreshes = audit.read_refreshes(client, namespace, channel)
        floor = max(floor, sequence_floor(refreshes.entries if refreshes else ()))
    fresh = next_statement(
        issuer,
        channel=channel,
        version=version,
        digest=target,
        seen=seen,
        floor=floor,
        timing=timing,
    )
    staged = stage_statement(client, namespace, fresh, issuer.signer) if stage else None
    return Vouching(seen, fresh, staged)


def vouch_in_place(
    client: RegistryClient,
    namespace: str,
    channel: str,
    issuer: Issuer,
    vouching: Vouching,
    target: Digest,
    timing: Timing,
    gate: Gate | None,
) -> Vouched:
    """A statement for the release the tag already points at (no tag write): tagged,
    settled and read back; if another writer moved the channel or wrote a statement
    meanwhile, the statement follows the move that stands (the history's current move,
    where the tag is)."""
    repository = release_repository(namespace)
    staged = vouching.staged
    assert staged is not None
    started = timing.monotonic()
    ours: Digest | None = None
    if vouching.unchanged(client, namespace):
        ours = tag_statement(client, namespace, staged)
        window = timing.monotonic() - started
        timing.sleep(timing.settle)
        now = client.head_manifest(repository, channel)
        back = client.head_manifest(repository, statement_tag(channel))
        if (
            window < timing.settle
            and now is not None
            and now.digest == target
            and back is not None
            and back.digest == ours
        ):
            return Vouched("issued", staged.statement, ours)
    index = audit.read_index(client, namespace, channel)
    entries = index.entries if index else ()
    return follow_winner(client, namespace, channel, issuer, entries, target, ours, timing, gate)


def follow_winner(
    client: RegistryClient,
    namespace: str,
    channel: str,
    issuer: Issuer,
    entries: Sequence[MoveRecord],
    mine: Digest,
    suspect: Digest | None,
    timing: Timing,
    gate: Gate | None,
) -> Vouched:
    """The slow path's statement: make it vouch for the move that stands (``entries[-1]``,
    where the tag now is), after the same gate as this writer's own release."""
    repository = release_repository(namespace)
    head = client.head_manifest(repository, channel)
    winner = entries[-1] if entries else None
    if head is None or winner is None or winner.to_digest != str(head.digest):
        log.warning(
            "channel %s: its tag and its history's current move disagree; no statement is "
            "issued for either (finish or repeat the move)",
            channel,
        )
        return Vouched("not-vouched")
    version = winner.version
    if head.digest != mine:
        _, _, _, release = read_release(client, namespace, head.digest)
        version = str(release.get("version", version))
        try:
            require_valid(release, f"release {version} ({head.digest.short})")
            if gate is not None:
                gate(head.digest, release)
        except Refused as exc:
            log.warning(
                "channel %s: the move that stands, to %s, is not vouched for by this writer: %s",
                channel,
                version,
                exc.message,
            )
            return Vouched("not-vouched")
    floor = sequence_floor(entries)
    return follow(
        client,
        namespace,
        channel,
        target=head.digest,
        version=version,
        issuer=issuer,
        floor=floor,
        suspect=suspect,
        timing=timing,
    )


def warn_unvouched(channel: str) -> None:
    log.warning(
        "channel %s: moved without a signed statement (no --signing-key): appliances that "
        "verify signatures refuse the channel until a move with the key issues one",
        channel,
    )
