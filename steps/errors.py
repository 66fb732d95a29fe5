"""The project's one exception tree.

Every failure the tool reports is a :class:`ReleaseError`. Its subclasses
say *what kind* of failure it is, which decides the process exit code (a
contract with Argo Workflows, whose retryStrategy retries only 75)::

    ReleaseError                     1  anything else
     +-- BadInput                    2  the caller asked for something malformed
     |    +-- InvalidVersion             a release version that is not SemVer 2 / an OCI tag
     |    +-- UnknownChannel             a channel other than nightly or stable
     |    +-- InvalidInputFile           a flag's file: unreadable, not JSON, not an object
     |    +-- InvalidReleaseInput        the manifest these inputs make breaks the contract
     |    +-- UnknownRepository          no such repository (a mistyped namespace?)
     |    +-- UnsafeYaml                 a YAML input over a parsing limit
     |    +-- ChartTooLarge              a chart over helm's size limits
     |    +-- UnsafeSourceUrl            a source URL with a scheme we do not record
     |    +-- SigningKeyInvalid          a key file that is not an ECDSA P-256 key we read
     |    +-- SigningKeyPassword         the key's password is missing or does not open it
     |    +-- SigningKeyRequired         signing is required and no signing key was given
     |    +-- KeyFileExists              `keys generate` would overwrite a key file
     |    +-- steps.oci.errors.InvalidReference, InsecureRegistry
     +-- Refused                     3  a gate said no; nothing was changed
     |    +-- ImmutableTagConflict       a published tag holds other content
     |    +-- Downgrade                  the channel's release is newer (no reason given)
     |    +-- IncompleteRelease          a piece the release references is missing
     |    +-- InvalidRelease             a published release breaks the schema/contract
     |    +-- UnreadableChannel          the channel's current release cannot be read
     |    +-- ReleaseNotFound            no release under that version or digest
     |    +-- ConcurrentMove             another writer moved the channel meanwhile
     |    +-- ImmutableTagOverwritten    our push landed on another's version: restored
     |    +-- UnknownRelease             that version was never published
     |    +-- NoRollbackTarget           the channel's history has no move to undo
     |    +-- NotPullableAnonymously     a piece appliances cannot pull without credentials
     |    +-- VerificationFailed         resolving as an appliance does disagrees
     |    +-- UnsignedRelease            the release or its bundle lacks a trusted signature
     |    +-- NotASignatureManifest      a sha256-<hex>.sig or .att tag holds something else
     |    +-- ProvenanceMissing          no SLSA provenance attestation on the release
     |    +-- ProvenanceUntrusted        provenance attested, but by no trusted key
     |    +-- ProvenanceInvalid          a trusted attestation that does not describe the release
     +-- Transient                  75  try again later (registry or network)
     |    +-- steps.oci.errors.TransientRegistryError
     |    +-- ChannelUnsettled           writers kept moving the channel; retry later
     |    +-- ConcurrentSignature        another signer rewrote the .sig manifest meanwhile
     +-- steps.oci.errors.RegistryError and its tree (see there)

The kinds report their family in JSON (``"error": "Refused"``, as before they existed)
and themselves in ``"kind"``; a script can rely on either.

Messages name the artifact, what was expected, what was found; ``hint`` says
what to do next. Only :mod:`steps.cli` turns an error into an exit.
Messages must never contain a credential: errors are built from references,
digests and status codes only, never from request headers.
"""

from __future__ import annotations

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
            "error": self.family(),
            "kind": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "exitCode": self.exit_code,
        }

    @classmethod
    def family(cls) -> str:
        """The name scripts have always seen in ``"error"``: the nearest class that is not
        a failure kind (kinds set ``_kind = True``)."""
        for klass in cls.__mro__:
            if not klass.__dict__.get("_kind", False):
                return klass.__name__
        return "ReleaseError"  # pragma: no cover - ReleaseError itself is not a kind


class BadInput(ReleaseError):
    """Malformed or inconsistent input: a flag, a file, a chart, a reference."""

    exit_code = EXIT_BAD_INPUT


class Refused(ReleaseError):
    """A gate refused the operation; nothing was changed."""

    exit_code = EXIT_REFUSED


class Transient(ReleaseError):
    """A failure that may go away on retry (network, 429, 5xx)."""

    exit_code = EXIT_TRANSIENT


# -- failure kinds ------------------------------------------------------------------------
# One class per kind of failure; each keeps its family's exit code.


class InvalidVersion(BadInput):
    """A release version that is not SemVer 2 without build metadata, or not an OCI tag."""

    _kind = True


class UnknownChannel(BadInput):
    """A channel name other than the known channels."""

    _kind = True


class InvalidInputFile(BadInput):
    """A file named by a flag cannot be read, or does not hold what it should."""

    _kind = True


class InvalidReleaseInput(BadInput):
    """The release these inputs would make breaks the schema or the consumer contract."""

    _kind = True


class ImmutableTagConflict(Refused):
    """A published, immutable tag already holds other bytes."""

    _kind = True


class Downgrade(Refused):
    """The channel's current release is newer, and no downgrade was asked for with a reason."""

    _kind = True


class IncompleteRelease(Refused):
    """A piece the release references is missing from the registry."""

    _kind = True


class InvalidRelease(Refused):
    """A published release breaks the schema or the consumer contract."""

    _kind = True


class UnreadableChannel(Refused):
    """The channel points at something that cannot be read as a release."""

    _kind = True


class ReleaseNotFound(Refused):
    """No release is published under that version or digest."""

    _kind = True


class ConcurrentMove(Refused):
    """Someone else moved the channel while we were moving it."""

    _kind = True


class NotPullableAnonymously(Refused):
    """A piece of the release cannot be pulled without credentials, as appliances pull."""

    _kind = True


class VerificationFailed(Refused):
    """Resolving the channel as an appliance does disagrees with what was published."""

    _kind = True


# -- signing (steps/signing) ------------------------------------------------------------------
# Messages name the key *file* and its key id, never a password or key material.


class SigningKeyInvalid(BadInput):
    """A key file is not a PEM ECDSA P-256 key in a format we read."""

    _kind = True


class SigningKeyPassword(BadInput):
    """An encrypted key without its password, or with a password that does not open it."""

    _kind = True


class SigningKeyRequired(BadInput):
    """Signing is required here and no signing key was given."""

    _kind = True


class KeyFileExists(BadInput):
    """Generating a key pair would overwrite an existing file."""

    _kind = True


class UnsignedRelease(Refused):
    """A release manifest or its bundle has no signature by a trusted key.

    ``pieces`` names each artifact that failed and why (``UNSIGNED``, or signed only by
    keys outside the trusted set).
    """

    _kind = True

    def __init__(
        self, message: str, *, pieces: tuple[str, ...] = (), hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.pieces = pieces


class NotASignatureManifest(Refused):
    """The ``sha256-<hex>.sig`` (or ``.att``) tag holds something that is not a cosign
    signature (or attestation) manifest."""

    _kind = True


class ProvenanceMissing(Refused):
    """The release has no SLSA provenance attestation (``sha256-<hex>.att``)."""

    _kind = True


class ProvenanceUntrusted(Refused):
    """Provenance attestations exist, but none is signed by a trusted key (another key's,
    or altered after signing)."""

    _kind = True


class ProvenanceInvalid(Refused):
    """An attestation that does not describe the release: signed by a trusted key but
    naming another subject or other inputs, or not a DSSE envelope at all."""

    _kind = True


class ConcurrentSignature(Transient):
    """Someone else rewrote the ``.sig`` manifest while we added our signature."""

    _kind = True


class UnknownRepository(BadInput):
    """The repository asked about does not exist (usually a mistyped namespace)."""

    _kind = True


class UnknownRelease(Refused):
    """The release version (or digest) was never published."""

    _kind = True


class NoRollbackTarget(Refused):
    """The channel's history holds no move to undo."""

    _kind = True


class ImmutableTagOverwritten(Refused):
    """This writer's push landed on a tag another writer had already published: the first
    bytes were put back, and this writer's result does not stand."""

    _kind = True


class ChannelUnsettled(Transient):
    """Writers kept moving the channel while this one reconciled it; retry later."""

    _kind = True


class UnsafeYaml(BadInput):
    """A YAML input over a parsing limit (size, nesting depth, aliases): refused before
    anything is built, run or pushed. ``source`` names the file, ``line`` the line
    (None for the size limit), ``limit`` the limit it broke."""

    _kind = True

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

    _kind = True


class UnsafeSourceUrl(BadInput):
    """A source URL this project will not record (a scheme other than https, ssh or git)."""

    _kind = True
