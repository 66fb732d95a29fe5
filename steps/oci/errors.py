"""Errors raised by the OCI client.

Two families, as in a secure update client: "the download failed" (the
registry could not be reached or answered with an error) and "the registry
is wrong" (it served bytes that do not match what was asked for)::

    ReleaseError (steps.errors)
     +-- RegistryError                      1  a registry call failed
     |    +-- AuthError                     1  credentials missing or refused
     |    +-- NotFound                      1  manifest, blob or repository absent
     |    +-- RegistryRefused               1  the registry rejected a request (4xx)
     |    +-- DigestMismatch                1  bytes served do not match digest or size
     |    +-- TransientRegistryError       75  429, 5xx or connection error after retries
     |    |                                     (also a steps.errors.Transient)
     |    |    +-- RegistryTimeout          75  a phase of a request (connect, headers,
     |    |    |                                body) passed its limit
     |    |    +-- CommandTimeout           75  the command's whole time budget ran out
     |    |    +-- IncompleteBody           75  a response body ended early or broke off
     |    +-- UnresolvableHost              2  DNS does not know the host (also BadInput)
     |    +-- ProtocolMismatch              2  TLS spoken to plain HTTP or the reverse
     |                                         (also BadInput)
     +-- BadInput
          +-- InvalidReference              2  malformed reference, digest, tag or repository
          +-- InsecureRegistry              2  plain HTTP asked for a non-loopback host

A truncated body is never a :class:`DigestMismatch`: fewer bytes than announced (by the
response or by the descriptor) is an :class:`IncompleteBody`, worth a retry; only bytes
that are all there and still do not match are "the registry is wrong".

Messages are built from the reference and the status only. Headers, tokens
and passwords never appear in them.
"""

from __future__ import annotations

from steps.errors import EXIT_BAD_INPUT, EXIT_TRANSIENT, BadInput, ReleaseError, Transient


class RegistryError(ReleaseError):
    """A registry operation failed."""

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class AuthError(RegistryError):
    """The registry or its token service refused our credentials (or wanted some)."""


class NotFound(RegistryError):
    """The manifest, blob or repository does not exist."""


class RegistryRefused(RegistryError):
    """The registry understood the request and rejected it."""


class DigestMismatch(RegistryError):
    """Served content does not match the digest or size it was asked for."""


class TransientRegistryError(RegistryError, Transient):
    """The registry kept failing with 429/5xx or could not be reached."""

    exit_code = EXIT_TRANSIENT


class RegistryTimeout(TransientRegistryError):
    """Connect, response headers or body took longer than the request's limit."""


class CommandTimeout(TransientRegistryError):
    """The command's own deadline (``--timeout``) ran out; never retried inside the run."""


class IncompleteBody(TransientRegistryError):
    """A response body broke off or ended before the length it announced."""


class UnresolvableHost(RegistryError, BadInput):
    """The registry's (or its token service's) host name does not resolve: a typo, most
    likely; retrying cannot help."""

    exit_code = EXIT_BAD_INPUT


class ProtocolMismatch(RegistryError, BadInput):
    """TLS spoken to a plain-HTTP server, or plain HTTP to a TLS server: a flag is wrong."""

    exit_code = EXIT_BAD_INPUT


class InvalidReference(BadInput):
    """A reference, repository, tag or digest string is malformed."""


class InsecureRegistry(BadInput):
    """Plain HTTP was requested for a host that is not loopback nor explicitly allowed."""


def error_detail(body: bytes) -> str:
    """``": <code> <message>"`` from a registry's JSON error body (its first error, the
    message redacted and cut at 200 characters), or ``""``. The full client and the quick
    reader word a refusal alike with it."""
    import json

    from steps.redact import redact

    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    if errors and isinstance(errors, list) and isinstance(errors[0], dict):
        code = str(errors[0].get("code", ""))
        # Redact before shortening: a cut must not leave half a secret behind.
        message = redact(str(errors[0].get("message", "")))[:200]
        return redact(f": {code} {message}".rstrip())
    return ""
