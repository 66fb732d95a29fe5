"""The project's one exception tree.

Every failure the tool reports is a :class:`ReleaseError`. Its subclasses
say *what kind* of failure it is, which decides the process exit code (a
contract with Argo Workflows, whose retryStrategy retries only 75)::

    ReleaseError                 1  anything else
     +-- BadInput                2  the caller asked for something malformed
     |    +-- UnknownRepository      2  a repository that does not exist (a typo'd namespace)
     +-- Refused                 3  a gate said no (overwrite, downgrade, incomplete)
     |    +-- UnknownRelease         3  a version that was never published
     |    +-- InvalidRelease         3  not a release manifest, or one that breaks the contract
     |    +-- IncompleteRelease      3  a piece the release references is missing
     |    +-- Downgrade              3  the channel's current release is newer
     |    +-- UnreadableChannel      3  the channel's current release cannot be read
     |    +-- NoRollbackTarget       3  the history holds no release to return to
     |    +-- ConcurrentMove         3  another writer's move of the channel stands
     |    +-- ImmutableTagConflict   3  a published tag holds other bytes
     |    +-- ImmutableTagOverwritten 3  we overwrote another writer's tag (and restored it)
     +-- Transient              75  try again later (registry or network)
          +-- ChannelUnsettled      75  writers kept racing; the channel did not settle
     +-- steps.oci.errors.RegistryError and its tree (see there)

Messages name the artifact, what was expected, what was found; ``hint`` says
what to do next. Only :mod:`steps.cli` turns an error into an exit.
Messages must never contain a credential: errors are built from references,
digests and status codes only, never from request headers.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3
EXIT_TRANSIENT = 75


class ReleaseError(Exception):
    """Root of every error this project raises on purpose."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """The text shown to a person: the message, then what to do."""
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message

    def to_json(self) -> dict[str, object]:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "exitCode": self.exit_code,
        }


class BadInput(ReleaseError):
    """Malformed or inconsistent input: a flag, a file, a chart, a reference."""

    exit_code = EXIT_BAD_INPUT


class Refused(ReleaseError):
    """A gate refused the operation; nothing was changed."""

    exit_code = EXIT_REFUSED


class Transient(ReleaseError):
    """A failure that may go away on retry (network, 429, 5xx)."""

    exit_code = EXIT_TRANSIENT


# -- kinds (one class per failure; the root decides the exit code) ----------------------


class UnknownRepository(BadInput):
    """The repository asked about does not exist (usually a mistyped namespace)."""


class UnknownRelease(Refused):
    """The release version (or digest) was never published."""


class InvalidRelease(Refused):
    """A manifest that is not a release, or a release that breaks the consumer contract."""


class IncompleteRelease(Refused):
    """An artifact the release references is missing from the registry."""


class Downgrade(Refused):
    """The move would take the channel to an older release without a reasoned override."""


class UnreadableChannel(Refused):
    """The channel points at something whose release cannot be read, so no downgrade
    check is possible."""


class NoRollbackTarget(Refused):
    """The channel's history holds no move to undo."""


class ConcurrentMove(Refused):
    """Another writer moved the channel concurrently and its move is the one that stands
    (the channel is left at, or restored to, that writer's release)."""


class ImmutableTagConflict(Refused):
    """A published, immutable tag already holds other bytes."""


class ImmutableTagOverwritten(Refused):
    """This writer's push landed on a tag another writer had already published: the first
    bytes were put back, and this writer's result does not stand."""


class ChannelUnsettled(Transient):
    """Writers kept moving the channel while this one reconciled it; retry later."""
