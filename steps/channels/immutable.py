"""Pushing an immutable tag (``:<version>``) safely when another writer may push the same
tag with other bytes at the same time.

The protocol (the decisions are :func:`steps.channels.rules.immutable_outcome`):

1. read the tag: the same bytes are a no-op; other bytes are refused
   (:class:`~steps.errors.ImmutableTagConflict`), nothing written;
2. **claim**: put the same manifest under ``claim.<tag>.<stamp>.<digest hex 12>``, a tag no
   other content can have, so that a writer who finds the tag overwritten can tell whose
   bytes were there;
3. put the tag; wait the settle; read it back;
4. a push answered within the settle of step 1 that reads back its own bytes **stands**:
   it confirms with ``claim.<tag>.<stamp>.<hex>.ok`` and re-reads the tag (a later, slow
   push that overwrote it yields and puts these bytes back; it waits for that);
5. any other push (slower than the settle, or reading back other bytes) lists the claims:
   when another writer's claim is confirmed, this push may have landed on a result that
   already stood, so it **yields**: it puts those bytes back, re-reads until they hold, and
   exits 3 (:class:`~steps.errors.ImmutableTagOverwritten`). A tag that reads back someone
   else's bytes is theirs (exit 3, nothing written). Its own bytes on the tag with other,
   unconfirmed claims: it waits one settle (a fast writer confirms within that) and lists
   again; still unconfirmed, its bytes stand and it confirms them (the other writer, when
   its push lands, finds this confirmation and yields).

Cost when nobody races: four requests more than a plain push (the first read, claim,
read-back, confirmation, and the re-read) and one settle; the slow path adds a tag listing,
a HEAD per other claim and, when it yields, the restore and a settle per round.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from steps.channels import rules
from steps.channels.move import Timing
from steps.errors import ChannelUnsettled, ImmutableTagConflict, ImmutableTagOverwritten
from steps.oci.reference import Digest

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient

log = logging.getLogger("alga_release.immutable")

CLAIM_PREFIX = "claim"
_MAX_NAMED = 80
_ROUNDS = 5


def claim_prefix(tag: str) -> str:
    """Every claim of ``tag`` starts with this (a long tag is named by its hash, so that a
    claim and its confirmation fit in an OCI tag's 128 characters)."""
    if len(tag) > _MAX_NAMED:
        return f"{CLAIM_PREFIX}.h{hashlib.sha256(tag.encode()).hexdigest()[:16]}."
    return f"{CLAIM_PREFIX}.{tag}."


def claim_tag(tag: str, digest: Digest, when: datetime) -> str:
    """A tag only this content, pushed at this time, has."""
    return f"{claim_prefix(tag)}{when.strftime('%Y%m%dT%H%M%S%f')}.{digest.hex[:12]}"


def parse_claims(tags: Sequence[str], tag: str) -> tuple[list[tuple[str, str]], set[str]]:
    """``(claim tag, digest hex prefix)`` for every claim of ``tag``, and the claim tags
    that were confirmed (``<claim>.ok`` exists)."""
    prefix = claim_prefix(tag)
    claims: list[tuple[str, str]] = []
    confirmed: set[str] = set()
    for name in tags:
        if not name.startswith(prefix):
            continue
        parts = name[len(prefix) :].split(".")
        if len(parts) == 2:
            claims.append((name, parts[1]))
        elif len(parts) == 3 and parts[2] == "ok":
            confirmed.add(name[: -len(".ok")])
    return claims, confirmed


def put_immutable(
    client: RegistryClient,
    repository: str,
    tag: str,
    data: bytes,
    media_type: str,
    *,
    what: str,
    timing: Timing | None = None,
) -> str:
    """Push ``data`` as ``repository:tag`` unless it is there; returns ``pushed`` or
    ``unchanged``. The manifest's blobs must already be in the repository."""
    timing = timing or Timing()
    mine = Digest.of(data)
    full = f"{client.registry}/{repository}:{tag}"
    started = timing.monotonic()
    existing = client.head_manifest(repository, tag)
    if existing is not None and existing.digest == mine:
        return "unchanged"
    if existing is not None:
        raise ImmutableTagConflict(
            f"{what} {full} already exists as {existing.digest}; this one would be {mine}",
            hint="a published version is immutable: publish a new version, or re-run with "
            "exactly the same inputs",
        )
    when = timing.clock()
    claim = claim_tag(tag, mine, when)
    client.put_manifest(repository, claim, data, media_type)
    client.put_manifest(repository, tag, data, media_type)
    window = timing.monotonic() - started
    timing.sleep(timing.settle)
    now = client.head_manifest(repository, tag)
    fast = window < timing.settle
    if fast and now is not None and now.digest == mine:
        client.put_manifest(repository, f"{claim}.ok", data, media_type)
        # A push landing after our read-back was slower than the settle: its writer lists
        # the claims, finds ours confirmed and puts our bytes back. Wait for that.
        for _ in range(_ROUNDS):
            now = client.head_manifest(repository, tag)
            if now is not None and now.digest == mine:
                return "pushed"
            timing.sleep(timing.settle)
    waited = False
    while True:
        others, marked = _claims(client, repository, tag, claim, mine)
        outcome = rules.immutable_outcome(
            mine,
            now.digest if now else None,
            others,
            fast=False,
            confirmed=marked,
            waited=waited,
        )
        if outcome != "wait":
            break
        timing.sleep(timing.settle)
        waited = True
        now = client.head_manifest(repository, tag)
    if outcome == "stands":
        client.put_manifest(repository, f"{claim}.ok", data, media_type)
        return "pushed"
    if outcome == "foreign":
        raise ImmutableTagConflict(
            f"{what} {full} was changed to {now.digest if now else 'nothing'} by something "
            f"that made no claim, while this push of {mine} was under way",
            hint="find out who else pushes this tag; published versions are immutable",
        )
    if outcome == "lost":
        raise ImmutableTagConflict(
            f"another publish pushed {what} {full} at the same time: its bytes "
            f"({now.digest if now else 'nothing'}) stand, not these ({mine})",
            hint="a published version is immutable: publish a new version, or re-run with "
            "exactly that publish's inputs",
        )
    assert marked is not None
    _restore(client, repository, tag, marked, timing)
    raise ImmutableTagOverwritten(
        f"this push of {what} {full} ({mine}) landed after another publish's ({marked}), "
        "which stood; its bytes were put back",
        hint="a published version is immutable: publish this one under a new version",
    )


def _claims(
    client: RegistryClient, repository: str, tag: str, claim: str, mine: Digest
) -> tuple[list[Digest], Digest | None]:
    """The digests other writers claimed for ``tag``, and the one confirmed, if any."""
    claims, confirmed = parse_claims(client.list_tags(repository), tag)
    others: list[Digest] = []
    marked: Digest | None = None
    for name, hex_prefix in claims:
        if name == claim or mine.hex.startswith(hex_prefix):
            continue
        theirs = client.head_manifest(repository, name)
        if theirs is None:
            continue
        others.append(theirs.digest)
        if name in confirmed:
            marked = theirs.digest
    return others, marked


def _restore(
    client: RegistryClient, repository: str, tag: str, digest: Digest, timing: Timing
) -> None:
    manifest = client.get_manifest(repository, digest)
    for _ in range(_ROUNDS):
        client.put_manifest(repository, tag, manifest.data, manifest.media_type)
        log.warning("%s:%s: put back %s, the first publish's", repository, tag, digest.short)
        timing.sleep(timing.settle)
        now = client.head_manifest(repository, tag)
        if now is not None and now.digest == digest:
            return
    raise ChannelUnsettled(
        f"{client.registry}/{repository}:{tag} keeps changing while its first bytes "
        f"({digest}) are put back",
        hint="another publish of the same version is still running; retry when it is done",
    )
