"""The releases a channel points at: reading them, and the gates on what they reference.

- :func:`read_release`: a release manifest's digest, exact bytes, media type and JSON;
- :func:`channel_state`: where a channel points (a release that cannot be read is
  reported, a registry that cannot be reached raises);
- :func:`release_pieces`, :func:`require_complete`: every artifact a release references
  is present (HEAD requests only);
- :func:`require_valid`: the release JSON passes the schema and the consumer contract.

Reads only; the moves that write are in :mod:`steps.channels.move`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from steps.archive import json_object
from steps.channels.audit import release_repository
from steps.errors import BadInput, IncompleteRelease, InvalidRelease, Refused
from steps.oci import mediatypes as mt
from steps.oci.errors import RegistryError, TransientRegistryError
from steps.oci.reference import Digest, Reference

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient

log = logging.getLogger("alga_release.channels")

Gate = Callable[[Digest, Mapping[str, Any]], None]
"""A check of a release before a channel is pointed at it or vouched for (e.g. the
signature gate, :func:`steps.signing.gates.require_signed`): raises to refuse."""


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


#: How many of a release's pieces are looked for at once (a release has a dozen: on a
#: registry across the internet their HEADs' round trips overlap instead of adding up).
PIECE_JOBS = 4

_Query = tuple[str, "str | Digest"]  # (repository, tag or digest) to HEAD


def release_pieces(
    client: RegistryClient, namespace: str, release: Mapping[str, Any]
) -> list[Piece]:
    """Check every artifact a release references (HEAD requests only, up to
    :data:`PIECE_JOBS` at a time on sibling clients; in the release's order)."""
    from steps.release.images import IMAGE_REPOSITORIES, image_repository

    registry = client.registry
    # each piece, made once its HEAD (if any) is answered
    planned: list[tuple[_Query | None, Callable[[Any], Piece]]] = []
    charts = release.get("charts") or {}
    digests = release.get("chartDigests") or {}
    for name, version in sorted(charts.items()):
        repository = f"{namespace}/charts/{name}"
        ref = f"{registry}/{repository}:{version}"
        planned.append(((repository, str(version)), _chart(name, ref, digests.get(name))))
    config = release.get("config") or {}
    bundle = f"{config.get('repository')}@{config.get('digest')}"
    planned.append(_by_reference(registry, "bundle", "config", bundle))
    images = release.get("images") or {}
    for key in IMAGE_REPOSITORIES:
        tag = images.get(key)
        repository = image_repository(namespace, key)
        if not isinstance(tag, str):
            planned.append(
                (None, _fixed(Piece("image", key, f"{registry}/{repository}", False, "no tag")))
            )
            continue
        ref = f"{registry}/{repository}:{tag}"
        planned.append(((repository, tag), _present("image", key, ref)))
    planned.append(
        _by_reference(registry, "control-plane", "controlPlane", str(release.get("controlPlane")))
    )
    if release.get("supportAgent"):
        planned.append(
            _by_reference(registry, "support-agent", "supportAgent", str(release["supportAgent"]))
        )
    answers = iter(_heads(client, [query for query, _ in planned if query is not None]))
    return [make(next(answers) if query is not None else None) for query, make in planned]


def _heads(client: RegistryClient, queries: list[_Query]) -> list[Any]:
    """The HEAD of each query (None: not there, or not readable with these credentials),
    in order, up to :data:`PIECE_JOBS` at once."""
    return client.head_manifests(queries, jobs=PIECE_JOBS, unreadable_missing=True)


def _by_reference(
    registry: str, kind: str, name: str, text: str
) -> tuple[_Query | None, Callable[[Any], Piece]]:
    try:
        ref = Reference.parse(text)
    except BadInput:
        return None, _fixed(Piece(kind, name, text, False, "not a valid reference"))
    if ref.registry != registry:
        detail = f"in another registry ({ref.registry}); not checked"
        return None, _fixed(Piece(kind, name, text, None, detail))
    return (ref.repository, ref.digest or str(ref.tag)), _present(kind, name, text)


def _fixed(piece: Piece) -> Callable[[Any], Piece]:
    return lambda _: piece


def _present(kind: str, name: str, reference: str) -> Callable[[Any], Piece]:
    return lambda head: Piece(kind, name, reference, head is not None)


def _chart(name: str, reference: str, expected: Any) -> Callable[[Any], Piece]:
    """A chart is present when its tag is there and holds the digest the release pins."""

    def piece(head: Any) -> Piece:
        if head is not None and expected and str(head.digest) != expected:
            detail = f"tag points at {head.digest}, release pins {expected}"
            return Piece("chart", name, reference, False, detail)
        return Piece("chart", name, reference, head is not None)

    return piece


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
