"""The project's one exception tree.

Every failure the tool reports is a :class:`ReleaseError`. Its subclasses
say *what kind* of failure it is, which decides the process exit code (a
contract with Argo Workflows, whose retryStrategy retries only 75)::

    ReleaseError                 1  anything else
     +-- BadInput                2  the caller asked for something malformed
     |    +-- UnsafeYaml            a YAML input over a parsing limit
     |    +-- ChartTooLarge         a chart over helm's size limits
     |    +-- UnsafeSourceUrl       a source URL with a scheme we do not record
     +-- Refused                 3  a gate said no (overwrite, downgrade, incomplete)
     +-- Transient              75  try again later (registry or network)
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


class UnsafeYaml(BadInput):
    """A YAML input over a parsing limit (size, nesting depth, aliases): refused before
    anything is built, run or pushed. ``source`` names the file, ``line`` the line
    (None for the size limit), ``limit`` the limit it broke."""

    def __init__(
        self,
        message: str,
        *,
        source: str,
        line: int | None,
        limit: str,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.source = source
        self.line = line
        self.limit = limit


class ChartTooLarge(BadInput):
    """A chart helm would refuse to load: a file or the whole chart over helm's
    decompressed-size limits (the limit is in the message)."""


class UnsafeSourceUrl(BadInput):
    """A source URL this project will not record (a scheme other than https, ssh or git)."""
