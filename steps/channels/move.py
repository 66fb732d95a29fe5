"""Channels: the only mutable pointers, moved last, behind gates, with an audit trail.

A channel (``nightly``, ``stable``) is a tag in ``<namespace>/alga-appliance-release``
pointing at a release manifest. OCI tags have no compare-and-swap, so the rules
live here:

- **complete**: every artifact the release references exists (chart tags and
  digests, the bundle digest, the four image tags, the control-plane digest);
- **no silent downgrade**: the channel's current release must not be newer
  (SemVer order) unless the caller allows it with a non-empty reason;
- **exact bytes**: the tag is moved by re-putting the release manifest's exact
  bytes, so the digest appliances pin never changes;
- **read before and after**: the channel is read right before the move and
  right after it; a change by someone else is reported as a concurrent move
  (exit 3) and the channel is left where the other writer put it (a release
  that writer verified);
- **audit**: each move is recorded as a small OCI artifact in the release
  repository, tagged ``move.<channel>.<UTC time>.<random>``, so that
  :func:`history` can list past moves and :func:`previous_release` can find
  what a rollback returns to. Records carry the time and the actor; releases
  do not (they must stay reproducible).

The pure decisions (:func:`downgrade_problem`, :func:`completeness_problems`'s
interpretation) are separate from registry reads and writes.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import semver

from steps.errors import BadInput, ConcurrentMove, Refused
from steps.oci import mediatypes as mt
from steps.oci.client import RegistryClient
from steps.oci.errors import RegistryError, TransientRegistryError
from steps.oci.reference import Digest, Reference, check_repository

log = logging.getLogger("alga_release.channels")

CHANNELS: tuple[str, ...] = ("nightly", "stable")
RELEASE_REPOSITORY_NAME = "alga-appliance-release"
AUDIT_CONFIG = "application/vnd.alga.appliance.channel-move.v1+json"
AUDIT_ARTIFACT = "application/vnd.alga.appliance.channel-move.v1"
AUDIT_TAG_PREFIX = "move"
ENV_ACTOR = "ALGA_ACTOR"
ENV_RUN = "ALGA_RUN"

MoveKind = Literal["publish", "promote", "rollback"]


def check_channel(name: str) -> str:
    if name not in CHANNELS:
        raise BadInput(f"unknown channel {name!r}: the channels are {', '.join(CHANNELS)}")
    return name


def release_repository(namespace: str) -> str:
    return check_repository(f"{namespace}/{RELEASE_REPOSITORY_NAME}")


# -- pure rules ------------------------------------------------------------------


def parse_version(text: str, what: str = "version") -> semver.Version:
    try:
        version = semver.Version.parse(text)
    except (ValueError, TypeError):
        raise BadInput(
            f"{what} {text!r} is not valid SemVer 2 (MAJOR.MINOR.PATCH[-PRERELEASE])"
        ) from None
    if version.build:
        raise BadInput(f"{what} {text!r} carries build metadata ('+'), which OCI tags cannot hold")
    return version


def _is_semver(text: str) -> bool:
    try:
        semver.Version.parse(text)
    except (ValueError, TypeError):
        return False
    return True


def downgrade_problem(
    current: str | None, new: str, *, allow_downgrade: bool, reason: str | None
) -> str | None:
    """Why moving from ``current`` to ``new`` is refused, or None when it is allowed."""
    if current is None:
        return None
    try:
        older = semver.Version.parse(new) < semver.Version.parse(current)
    except ValueError:
        return None  # an unparseable current release cannot be protected; caller warns
    if not older:
        return None
    if allow_downgrade and reason and reason.strip():
        return None
    if allow_downgrade:
        return f"downgrade from {current} to {new} needs a non-empty --reason"
    return (
        f"{new} is older than the channel's current release {current}; refusing a silent downgrade"
    )


# -- audit records -----------------------------------------------------------------


@dataclass(frozen=True)
class MoveRecord:
    """One channel move, as stored in the registry (JSON config of an OCI artifact)."""

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
        }
        if self.tag:
            data["tag"] = self.tag
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], tag: str | None = None) -> MoveRecord:
        return cls(
            channel=str(data.get("channel", "")),
            kind=data.get("kind", "promote"),
            to_digest=str(data.get("to", "")),
            version=str(data.get("version", "")),
            from_digest=data.get("from"),
            from_version=data.get("fromVersion"),
            reason=data.get("reason"),
            actor=str(data.get("actor", "")),
            run=data.get("run"),
            time=str(data.get("time", "")),
            tag=tag,
        )


def default_actor() -> str:
    actor = os.environ.get(ENV_ACTOR, "").strip()
    if actor:
        return actor
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (OSError, KeyError):
        return "unknown"


def default_run() -> str | None:
    return os.environ.get(ENV_RUN, "").strip() or None


def utc_now() -> datetime:
    return datetime.now(UTC)


def audit_tag(channel: str, when: datetime) -> str:
    stamp = when.strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{AUDIT_TAG_PREFIX}.{channel}.{stamp}.{secrets.token_hex(3)}"


_AUDIT_TAG_RE = re.compile(
    rf"^{AUDIT_TAG_PREFIX}\.([a-z]+)\.(\d{{8}}T\d{{6}}\.\d{{6}}Z)\.[0-9a-f]+$"
)


def write_record(client: RegistryClient, namespace: str, record: MoveRecord, when: datetime) -> str:
    """Push the record as an OCI artifact whose subject is the release it moved to."""
    repository = release_repository(namespace)
    config = json.dumps(record.to_json(), sort_keys=True, separators=(",", ":")).encode()
    empty = b"{}"
    client.push_blob(repository, config)
    client.push_blob(repository, empty)
    target = client.head_manifest(repository, Digest.parse(record.to_digest))
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": AUDIT_ARTIFACT,
        "config": {
            "mediaType": AUDIT_CONFIG,
            "digest": str(Digest.of(config)),
            "size": len(config),
        },
        "layers": [
            {"mediaType": mt.OCI_EMPTY_CONFIG, "digest": str(Digest.of(empty)), "size": len(empty)}
        ],
        "annotations": {mt.ANNOTATION_CREATED: record.time},
    }
    if target is not None:
        manifest["subject"] = {
            "mediaType": mt.OCI_MANIFEST,
            "digest": record.to_digest,
            "size": target.size,
        }
    data = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    tag = audit_tag(record.channel, when)
    client.put_manifest(repository, tag, data, mt.OCI_MANIFEST)
    return tag


def _audit_tags(client: RegistryClient, namespace: str, channel: str) -> list[str]:
    """The channel's audit tags, oldest first (their names sort by time)."""
    repository = release_repository(namespace)
    stamped = [
        (m.group(2), t)
        for t in client.list_tags(repository)
        if (m := _AUDIT_TAG_RE.match(t)) and m.group(1) == channel
    ]
    return [t for _, t in sorted(stamped)]


def _read_record(client: RegistryClient, namespace: str, tag: str) -> MoveRecord | None:
    repository = release_repository(namespace)
    manifest = client.get_manifest(repository, tag).json()
    config = manifest.get("config")
    if not isinstance(config, dict):
        return None
    blob = client.get_blob(
        repository, Digest.parse(str(config.get("digest"))), size=int(config.get("size", -1))
    )
    return MoveRecord.from_json(json.loads(blob), tag=tag)


def history(client: RegistryClient, namespace: str, channel: str) -> list[MoveRecord]:
    """Every recorded move of ``channel``, oldest first."""
    check_channel(channel)
    records = [
        _read_record(client, namespace, tag) for tag in _audit_tags(client, namespace, channel)
    ]
    return [r for r in records if r is not None]


def latest_record(client: RegistryClient, namespace: str, channel: str) -> MoveRecord | None:
    """The channel's most recent recorded move (a listing and one record read)."""
    tags = _audit_tags(client, namespace, check_channel(channel))
    return _read_record(client, namespace, tags[-1]) if tags else None


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
        raise Refused(
            f"{client.registry}/{repository} {ref} is not a release manifest "
            f"(config media type {config.get('mediaType') if isinstance(config, dict) else None})"
        )
    blob = client.get_blob(
        repository, Digest.parse(str(config.get("digest"))), size=int(config.get("size", -1))
    )
    try:
        release = json.loads(blob)
    except ValueError:
        raise Refused(f"release {ref}: the config blob is not JSON") from None
    if not isinstance(release, dict):
        raise Refused(f"release {ref}: the config blob is not a JSON object")
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
        raise Refused(
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
        raise Refused(
            f"{what} is not a valid release manifest:\n  "
            + "\n  ".join(problems[:20])
            + (f"\n  (and {len(problems) - 20} more)" if len(problems) > 20 else ""),
            hint="republish the release with `alga-release publish`; it validates before pushing",
        )


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

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "from": str(self.from_digest) if self.from_digest else None,
            "fromVersion": self.from_version,
            "to": str(self.to_digest),
            "version": self.version,
            "moved": self.moved,
            "record": self.record_tag,
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
    clock: Callable[[], datetime] = utc_now,
) -> MoveResult:
    """Point ``channel`` at the release ``target`` after every gate passed.

    Gates (each :class:`Refused`, exit 3): the release is readable and complete;
    not a downgrade unless allowed with a reason; the channel did not move while
    we checked. A channel already at ``target`` is a successful no-op.
    ``verify`` (e.g. a resolve through the consume library) runs after the move.
    """
    check_channel(channel)
    repository = release_repository(namespace)
    digest, data, media_type, release = read_release(client, namespace, target)
    version = str(release.get("version", ""))
    require_valid(release, f"release {version or '?'} ({digest.short})")
    require_complete(client, namespace, release, f"release {version} ({digest.short})")
    before = channel_state(client, namespace, channel)
    if before.digest == digest:
        log.info("channel %s already points at %s (%s)", channel, version, digest.short)
        late = (
            None
            if dry_run
            else _record_missing_move(
                client, namespace, channel, digest, version, kind, reason, actor, run, clock
            )
        )
        return MoveResult(channel, before.digest, before.version, digest, version, False, late)
    problem = downgrade_problem(
        before.version, version, allow_downgrade=allow_downgrade, reason=reason
    )
    if problem:
        raise Refused(
            f"channel {channel}: {problem}",
            hint="to roll back on purpose: --allow-downgrade --reason '<why>'",
        )
    if before.digest is not None and before.version is None:
        # Without the current version there is no downgrade check: only an explicit,
        # reasoned override may move such a channel.
        if not (allow_downgrade and reason and reason.strip()):
            raise Refused(
                f"channel {channel} points at {before.digest}, whose release cannot be read "
                f"({before.problem or 'no version'}); refusing to move it without a downgrade "
                "check",
                hint="inspect it (alga-release inspect <digest>); to move anyway: "
                "--allow-downgrade --reason '<why>'",
            )
        log.warning(
            "channel %s: its current release cannot be read; moving as allowed (%s)",
            channel,
            reason,
        )
    elif before.version is not None and not _is_semver(before.version):
        log.warning(
            "channel %s: its current version %r is not SemVer, so it cannot be compared with "
            "%s; no downgrade check",
            channel,
            before.version,
            version,
        )
    if dry_run:
        log.info(
            "dry run: would move %s from %s to %s", channel, before.version or "(none)", version
        )
        return MoveResult(channel, before.digest, before.version, digest, version, False, None)
    # Read again right before the move: the gates above took time.
    now = client.head_manifest(repository, channel)
    if (now.digest if now else None) != before.digest:
        raise ConcurrentMove(
            f"channel {channel} moved to {now.digest if now else 'nothing'} while this "
            f"promote was checking; nothing was changed",
            hint="look at `alga-release history` and retry if still wanted",
        )
    client.put_manifest(repository, channel, data, media_type)
    after = client.head_manifest(repository, channel)
    if after is None or after.digest != digest:
        raise ConcurrentMove(
            f"channel {channel} was moved by someone else right after this move: it now "
            f"points at {after.digest if after else 'nothing'}, not {digest} ({version})",
            hint="the other writer's release stands; check `alga-release history` and "
            "promote again if needed",
        )
    when = clock()
    record = MoveRecord(
        channel=channel,
        kind=kind,
        to_digest=str(digest),
        version=version,
        from_digest=str(before.digest) if before.digest else None,
        from_version=before.version,
        reason=reason,
        actor=actor or default_actor(),
        run=run or default_run(),
        time=when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    )
    tag: str | None
    try:
        tag = write_record(client, namespace, record, when)
    except RegistryError as exc:
        # The move happened and stands; failing now would only make a retry a no-op
        # that records nothing either. Say so loudly instead.
        tag = None
        log.warning(
            "channel %s moved to %s, but its audit record could not be written (%s); "
            "`history` will not show this move",
            channel,
            version,
            exc.message,
        )
    log.info(
        "channel %s: %s -> %s (%s)", channel, before.version or "(none)", version, digest.short
    )
    if verify is not None:
        verify(digest)
    return MoveResult(channel, before.digest, before.version, digest, version, True, tag)


def _record_missing_move(
    client: RegistryClient,
    namespace: str,
    channel: str,
    digest: Digest,
    version: str,
    kind: MoveKind,
    reason: str | None,
    actor: str | None,
    run: str | None,
    clock: Callable[[], datetime],
) -> str | None:
    """A channel already at ``digest`` whose history does not say so (a run that moved it
    died before recording, or it was moved by hand): record it now, so that ``history``
    and ``rollback`` stay true. Returns the new record's tag, or None when in order."""
    last = latest_record(client, namespace, channel)
    if last is not None and last.to_digest == str(digest):
        return None
    when = clock()
    record = MoveRecord(
        channel=channel,
        kind=kind,
        to_digest=str(digest),
        version=version,
        from_digest=last.to_digest if last else None,
        from_version=last.version if last else None,
        reason=(reason + "; " if reason else "") + "recorded after the move",
        actor=actor or default_actor(),
        run=run or default_run(),
        time=when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    )
    try:
        tag = write_record(client, namespace, record, when)
    except RegistryError as exc:
        log.warning("channel %s: could not record its unrecorded move (%s)", channel, exc.message)
        return None
    log.info("channel %s: its move to %s had no audit record; recorded it now", channel, version)
    return tag


def previous_release(records: list[MoveRecord], current: Digest | None) -> MoveRecord | None:
    """The record of the move that brought the channel to ``current`` (its ``from``
    is where a rollback goes), or None."""
    for record in reversed(records):
        if current is not None and record.to_digest == str(current) and record.from_digest:
            return record
    return None
