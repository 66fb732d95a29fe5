"""Names of everything a release publishes, and the value types made once at the edge.

Every repository a release touches lives under ``<registry>/<namespace>/``; the functions
here are the one place that spells those names. The three small types below are parsed
once, where a string enters (a flag, a file, a registry answer), and inner code takes
them as proof the check was made:

- :class:`Channel`: ``nightly`` or ``stable`` (:class:`~steps.errors.UnknownChannel`);
- :class:`ReleaseVersion`: SemVer 2 without build metadata that is also a valid OCI tag
  (:class:`~steps.errors.InvalidVersion`);
- :class:`Repository`: a checked repository path (``namespace/name``).

They are ``str`` subclasses so they print, compare, hash and serialise as the text they
hold; only construction checks. Pure: no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import semver

from steps.errors import InvalidVersion, UnknownChannel
from steps.oci.errors import InvalidReference
from steps.oci.reference import Digest, check_repository, check_tag

CHANNELS: Final[tuple[str, ...]] = ("nightly", "stable")

RELEASE_REPOSITORY_NAME: Final = "alga-appliance-release"
BUNDLE_REPOSITORY_NAME: Final = "alga-appliance-config"
CONTROL_PLANE_REPOSITORY_NAME: Final = "alga-appliance-control-plane"
CHARTS_FOLDER: Final = "charts"

#: release manifest ``images`` key -> repository name under the namespace
IMAGE_REPOSITORIES: Final[dict[str, str]] = {
    "algaCore": "alga-psa-ee",
    "workflowWorker": "workflow-worker",
    "emailService": "email-service",
    "temporalWorker": "temporal-worker",
}


class Repository(str):
    """A repository path, checked once (``check_repository``)."""

    __slots__ = ()

    def __new__(cls, text: str) -> Repository:
        if isinstance(text, Repository):
            return text
        return super().__new__(cls, check_repository(text))


class Channel(str):
    """A channel name: one of :data:`CHANNELS`."""

    __slots__ = ()

    def __new__(cls, text: str) -> Channel:
        if isinstance(text, Channel):
            return text
        if text not in CHANNELS:
            raise UnknownChannel(
                f"unknown channel {text!r}: the channels are {', '.join(CHANNELS)}"
            )
        return super().__new__(cls, text)


class ReleaseVersion(str):
    """A release version: SemVer 2 (``MAJOR.MINOR.PATCH[-PRERELEASE]``), no ``+``, and a
    valid OCI tag (it is the release's ``:<version>`` tag)."""

    __slots__ = ()

    def __new__(cls, text: str, what: str = "version") -> ReleaseVersion:
        if isinstance(text, ReleaseVersion):
            return text
        parse_semver(text, what)
        try:
            check_tag(text)
        except InvalidReference as exc:
            raise InvalidVersion(f"{what} {text!r} is not a valid OCI tag: {exc.message}") from None
        return super().__new__(cls, text)

    @property
    def semver(self) -> semver.Version:
        import semver  # loaded when a version is parsed: names alone need no semver

        return semver.Version.parse(str(self))


def parse_semver(text: str, what: str = "version") -> semver.Version:
    """``text`` as SemVer 2 without build metadata, or :class:`InvalidVersion`."""
    import semver

    try:
        version = semver.Version.parse(text)
    except (ValueError, TypeError):
        raise InvalidVersion(
            f"{what} {text!r} is not valid SemVer 2 (MAJOR.MINOR.PATCH[-PRERELEASE])"
        ) from None
    if version.build:
        raise InvalidVersion(
            f"{what} {text!r} carries build metadata ('+'), which OCI tags cannot hold"
        )
    return version


def is_semver(text: str) -> bool:
    import semver

    try:
        semver.Version.parse(text)
    except (ValueError, TypeError):
        return False
    return True


def release_repository(namespace: str) -> Repository:
    return Repository(f"{namespace}/{RELEASE_REPOSITORY_NAME}")


def bundle_repository(namespace: str) -> Repository:
    return Repository(f"{namespace}/{BUNDLE_REPOSITORY_NAME}")


def control_plane_repository(namespace: str) -> Repository:
    return Repository(f"{namespace}/{CONTROL_PLANE_REPOSITORY_NAME}")


def control_plane_reference(registry: str, namespace: str, digest: Digest) -> str:
    """``<registry>/<namespace>/alga-appliance-control-plane@<digest>``: the image pinned."""
    return f"{registry}/{namespace}/{CONTROL_PLANE_REPOSITORY_NAME}@{digest}"


def chart_repository(namespace: str, chart: str) -> Repository:
    return Repository(f"{namespace}/{CHARTS_FOLDER}/{chart}")


def image_repository(namespace: str, key: str) -> Repository:
    return Repository(f"{namespace}/{IMAGE_REPOSITORIES[key]}")
