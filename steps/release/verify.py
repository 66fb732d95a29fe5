"""Resolve and verify a release exactly as an appliance does (the consume library).

The publisher never trusts its own view of what it pushed: after a channel moves, the
channel is resolved through :mod:`consume.release_consume` -- the code appliances vendor --
and every digest and referenced piece is checked, anonymously wherever appliances pull
anonymously (``verify_anonymous``, on by default for ghcr.io). The consume library's errors
are mapped onto this project's failure kinds by class (:func:`translate`).

No argparse here: :class:`Access` says how to reach the registry, and hands out the run's
shared clients.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from steps.errors import (
    BadInput,
    Downgrade,
    IncompleteRelease,
    InvalidRelease,
    NotPullableAnonymously,
    ReleaseError,
    Transient,
    VerificationFailed,
)
from steps.names import RELEASE_REPOSITORY_NAME, release_repository
from steps.oci.auth import Credentials
from steps.oci.errors import AuthError, NotFound

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient

log = logging.getLogger("alga_release.verify")


@dataclass(frozen=True)
class Access:
    """How to reach the registry: its settings, and the run's client for each mode."""

    registry: str
    namespace: str
    plain_http: bool
    insecure_hosts: tuple[str, ...]
    ca_file: str | None
    credentials: Credentials | None
    client: Callable[[bool], RegistryClient]  # anonymous? -> the run's shared client
    consume_cache: Any = None  # a release_consume cache shared by the run's resolves
    deadline: Any = None  # the command's steps.oci.model.Deadline (--timeout), if any

    def request_timeout(self, attempts: int = 3) -> float:
        """Each consume request's deadline: 30 s, or the command's remaining time shared
        by the attempts the library may make (so all of them end within ``--timeout``)."""
        if self.deadline is None or self.deadline.seconds is None:
            return 30.0
        remaining = self.deadline.remaining()
        if remaining <= 0:
            from steps.oci.errors import CommandTimeout

            raise CommandTimeout(
                f"the command's --timeout of {self.deadline.seconds:g} s ran out before "
                f"resolving the release as an appliance would",
                hint="raise --timeout (env ALGA_TIMEOUT), or check the registry",
            )
        return float(max(0.2, min(30.0, remaining / attempts)))

    def sleep(self, seconds: float) -> None:
        """The library's backoff, never past the command's deadline."""
        import time

        if self.deadline is not None and self.deadline.seconds is not None:
            seconds = min(seconds, max(0.0, self.deadline.remaining()))
        time.sleep(seconds)


def anonymous_default(registry: str, choice: bool | None) -> bool:
    """Verify anonymously? ``None`` means: where appliances pull anonymously (ghcr.io)."""
    if choice is None:
        return registry == "ghcr.io"
    return choice


def translate(exc: Exception, message: str, hint: str | None) -> ReleaseError:
    """A consume-library error as this project's failure kind (by class, not exit code)."""
    from consume import release_consume as rc

    kinds: list[tuple[type[Exception], type[ReleaseError]]] = [
        (rc.BadInput, BadInput),
        (rc.RollbackRefused, Downgrade),
        (rc.IncompleteRelease, IncompleteRelease),
        (rc.InvalidRelease, InvalidRelease),
        (rc.InvalidManifest, InvalidRelease),
        (rc.UnexpectedMediaType, InvalidRelease),
        (rc.RepositoryError, VerificationFailed),
        (rc.RegistryUnreachable, Transient),
        (rc.AuthError, AuthError),
        (rc.NotFound, NotFound),
    ]
    for consume_kind, ours in kinds:
        if isinstance(exc, consume_kind):
            return ours(message, hint=hint)
    return ReleaseError(message, hint=hint)


def resolve(
    access: Access,
    ref: str,
    *,
    anonymous: bool = False,
    trusted_keys: list[str] | None = None,
) -> Any:
    """Resolve ``ref`` (channel, version or digest) as an appliance would; with
    ``trusted_keys`` (PEM texts, one or two) as an appliance that verifies signatures and,
    for a channel, its signed statement."""
    from consume import release_consume as rc

    credentials = None if anonymous else access.credentials
    try:
        return rc.resolve(
            ref,
            registry=access.registry,
            repository=release_repository(access.namespace),
            credentials=(credentials.username, credentials.password) if credentials else None,
            ca_file=access.ca_file,
            plain_http=access.plain_http,
            insecure_hosts=access.insecure_hosts,
            timeout=access.request_timeout(),
            sleep=access.sleep,
            trusted_keys=trusted_keys,
        )
    except rc.ConsumeError as exc:
        hint = exc.hint
        if isinstance(exc, rc.RegistryUnreachable):
            # The library's own hint speaks for an appliance ("the appliance will retry").
            hint = "the registry or the network failed; retry the step (exit 75 is transient)"
        if anonymous and isinstance(exc, rc.AuthError):
            hint = (
                f"appliances pull anonymously: make the package "
                f"{access.namespace}/{RELEASE_REPOSITORY_NAME} (and every package it "
                "references) public, or verify with --no-verify-anonymous"
            )
        raise translate(
            exc, f"resolving {ref} as an appliance would: {exc.message}", hint
        ) from None


def inspect(access: Access, ref: str, *, anonymous: bool = False) -> dict[str, Any]:
    """What ``ref`` references and whether each piece is present."""
    from steps.channels import move as channels

    resolution = resolve(access, ref, anonymous=anonymous)
    pieces = channels.release_pieces(
        access.client(anonymous), access.namespace, resolution.manifest
    )
    return {
        "reference": ref,
        "version": resolution.version,
        "channel": resolution.manifest.get("channel"),
        "manifestDigest": resolution.manifest_digest,
        "configDigest": resolution.config_digest,
        "complete": all(p.present is not False for p in pieces),
        "pieces": [p.to_json() for p in pieces],
    }


def require_anonymous_pull(access: Access, version: str) -> None:
    """Before a channel moves, when appliances pull anonymously: the release and every piece
    it references must be pullable without credentials. A package left private is refused
    here, named, before the move."""
    from steps.channels import move as channels

    try:
        resolution = resolve(access, version, anonymous=True)
    except ReleaseError as exc:
        raise NotPullableAnonymously(
            f"release {version} cannot be pulled anonymously: {exc.message}",
            hint=f"appliances pull without credentials: make the package "
            f"{access.namespace}/{RELEASE_REPOSITORY_NAME} public",
        ) from None
    pieces = channels.release_pieces(access.client(True), access.namespace, resolution.manifest)
    private = [p for p in pieces if p.present is False]
    if private:
        packages = sorted({p.reference.rsplit("@", 1)[0].rsplit(":", 1)[0] for p in private})
        raise NotPullableAnonymously(
            f"release {version}: {len(private)} piece(s) cannot be pulled anonymously: "
            + ", ".join(p.reference for p in private),
            hint="appliances pull without credentials: make these packages public (or push "
            "what is missing): " + ", ".join(packages),
        )
    log.info("release %s: every piece pullable anonymously", version)


def verify_channel(
    access: Access,
    channel: str,
    *,
    expected_digest: str | None,
    expected_config: str | None = None,
    anonymous: bool,
) -> dict[str, Any]:
    """Resolve ``channel`` as an appliance does; compare digests; check every piece."""
    result, _ = check_channel(
        access,
        channel,
        expected_digest=expected_digest,
        expected_config=expected_config,
        anonymous=anonymous,
    )
    return result


def check_channel(
    access: Access,
    channel: str,
    *,
    expected_digest: str | None,
    expected_config: str | None = None,
    anonymous: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`verify_channel`'s result, and the release JSON the consume library resolved
    and verified (the config blob of ``result["manifestDigest"]``), for the caller's
    further checks without reading it again."""
    from steps.channels import move as channels

    resolution = resolve(access, channel, anonymous=anonymous)
    problems = []
    if expected_digest and resolution.manifest_digest != expected_digest:
        # A move that took effect and was superseded by a newer release during a race
        # stands as far as this run goes (steps.channels): verify the release that did.
        from steps.oci.reference import Digest

        later = channels.superseded_by(
            access.client(anonymous),
            access.namespace,
            channel,
            Digest.parse(expected_digest),
            Digest.parse(resolution.manifest_digest),
        )
        if later is not None:
            log.warning(
                "channel %s: superseded by %s (record %s); verifying that release",
                channel,
                later.version,
                later.tag,
            )
            expected_digest, expected_config = resolution.manifest_digest, None
    if expected_digest and resolution.manifest_digest != expected_digest:
        problems.append(
            f"channel {channel} resolves to {resolution.manifest_digest}, expected "
            f"{expected_digest}"
        )
    if expected_config and resolution.config_digest != expected_config:
        problems.append(
            f"the release's config digest is {resolution.config_digest}, expected {expected_config}"
        )
    pieces = channels.release_pieces(
        access.client(anonymous), access.namespace, resolution.manifest
    )
    for piece in pieces:
        if piece.present is False:
            problems.append(
                f"{piece.kind} {piece.name} missing: {piece.reference}"
                + (f" ({piece.detail})" if piece.detail else "")
            )
    if problems:
        raise VerificationFailed(
            f"verification of channel {channel} failed:\n  " + "\n  ".join(problems),
            hint="the channel may have moved concurrently, or a piece is private or deleted"
            + ("; appliances pull anonymously, so make every package public" if anonymous else ""),
        )
    log.info(
        "verified: %s -> %s (%s), %d pieces present%s",
        channel,
        resolution.version,
        resolution.manifest_digest,
        len(pieces),
        " anonymously" if anonymous else "",
    )
    result = {
        "verified": True,
        "channel": channel,
        "version": resolution.version,
        "manifestDigest": resolution.manifest_digest,
        "configDigest": resolution.config_digest,
        "anonymous": anonymous,
        "pieces": [p.to_json() for p in pieces],
    }
    return result, resolution.manifest
