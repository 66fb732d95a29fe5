#!/usr/bin/env python3
"""Resolve an Alga PSA appliance channel to a verified release: the consume library.

One file, Python standard library only, so an appliance or a pipeline step can
vendor it as is. ``consume/release-consume.mjs`` is its JavaScript twin for the
control plane's Node host-service: same functions (camelCase there), same error
names, same CLI, and both pass the conformance vectors in ``consume/vectors``.

    python3 consume/release_consume.py nightly --registry ghcr.io \\
        --repository nine-minds/alga-appliance-release --json

What it does:

* ``resolve(ref, ...)`` turns a channel (``nightly``/``stable``), a version tag
  or a manifest digest into a :class:`Resolution`: the manifest digest, the
  config digest and the validated release JSON. On the way it authenticates
  with the Bearer token the registry's ``WWW-Authenticate`` challenge names
  (falling back to ``https://<host>/token`` as ghcr.io serves it), sends OCI
  ``Accept`` headers, follows blob redirects and drops ``Authorization`` across
  hosts, checks the manifest and the config blob against digest and size,
  refuses an index or an unexpected media type, caps every body at 4 MiB,
  retries 429/5xx/connection errors a bounded number of times, validates the
  release JSON with the rules of ``schemas/release-manifest.v1.schema.json``
  plus the consumer contract, and refuses to roll back below the installed
  version unless the caller pinned a version or digest.
* An optional cache keeps the last good release per reference and the auth
  state. Warm, when the channel has not moved, a resolve is one manifest HEAD
  and no blob download; when the registry cannot be reached, the cached release
  comes back with ``stale`` set.
* ``render_*`` build what the appliance applies (as plain dicts; JSON is YAML):
  the ``OCIRepository`` and ``Kustomization`` named ``alga-appliance`` and the
  six ``appliance-values-<name>`` ConfigMaps with the image tags injected by
  the same line-based setter the appliance uses; with trusted keys also the
  ``Secret`` of public keys that Flux verifies the bundle and the charts with
  (``spec.verify`` of the OCIRepository).

Design (after python-tuf): a pure verification core -- :func:`verify_manifest`,
:func:`verify_blob`, :func:`schema_problems`, :func:`contract_problems`,
:func:`check_rollback`, :func:`cache_decision` -- that does no network or file
I/O, and all fetching behind one small :class:`Transport` interface with one
real adapter (:class:`HttpTransport`, ``http.client`` + ``ssl``) and a replay
adapter in the tests. Redirects, auth and retries live in the library, not in
the transport, so the library alone decides where ``Authorization`` goes.

Errors form two families, and the CLI maps them to exit codes::

    ConsumeError                       1  anything else
     +-- BadInput                      2  a malformed reference, host, option
     +-- RepositoryError               3  "the repository is wrong": refused
     |    +-- DigestMismatch                bytes or size do not match the digest
     |    +-- SizeLimitExceeded             a body or descriptor above the cap
     |    +-- UnexpectedMediaType           an index, a wrong config type
     |    +-- InvalidManifest               not an image manifest at all
     |    +-- IncompleteRelease             the manifest's config blob is missing
     |    +-- InvalidRelease                the release JSON breaks the rules
     |    +-- RollbackRefused               older than the installed version
     |    +-- SignatureError                (trusted keys given) no trusted signature:
     |         +-- Unsigned                   no sha256-<hex>.sig, or no signature in it
     |         +-- UntrustedSignature         signed, but by no trusted key
     |         +-- SignatureDigestMismatch    a trusted key signed another digest
     |         +-- BadSignature               malformed, or the payload was altered
     |    +-- StatementError                (trusted keys, a channel) the channel statement:
     |         +-- StatementMissing           no statement.<channel>
     |         +-- InvalidStatement           malformed, another channel or version
     |         +-- StatementDigestMismatch    vouches for another digest (a re-tag)
     |         +-- StatementReplay            a lower sequence than already seen
     |         +-- StatementExpired           past its expiresAt (a frozen channel)
     +-- DownloadError                 1  "the download failed"
          +-- RegistryUnreachable     75  network, timeout, TLS, 5xx after retries
          +-- AuthError                1  401/403 after authenticating
          +-- NotFound                 1  no such tag or digest

Invariants: nothing is returned that was not checked against its digest; plain
HTTP is used only for loopback hosts (registry, token realm and redirects
alike); no credential or token ever appears in a message, a log line or the
result; ``Authorization`` is never sent to an origin other than the one it was
made for.

With trusted keys (``trusted_keys=``, ``--trusted-key``), the release manifest must
also carry a cosign signature (the legacy ``sha256-<hex>.sig`` format) by one of
them naming its digest; the ECDSA P-256 verification is written here, on the
standard library alone.

What it does not do: check signatures when no key is trusted (then the digest chain
starts at TLS and the manifest digest the caller pins or the channel names), use
the transparency log or keyless signatures, use HTTP proxies, pull
the charts, images or the config bundle (Flux does that, pinned by digest), or
parse YAML (the setter is line-based, exactly like the appliance's).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import hashlib
import io
import ipaddress
import json
import os
import re
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # loaded when a resolve goes to the network: the rules need neither
    import http.client
    import ssl

__version__ = "1.0.0"

# -- constants -----------------------------------------------------------------

DEFAULT_REGISTRY = "ghcr.io"
DEFAULT_REPOSITORY = "nine-minds/alga-appliance-release"
DEFAULT_TIMEOUT = 30.0
DEFAULT_ATTEMPTS = 3
#: Every manifest, blob and token body is capped here (the OCI spec's manifest limit).
MAX_BYTES = 4 * 1024 * 1024
MAX_REDIRECTS = 5
CHANNELS = ("nightly", "stable")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
RELEASE_CONFIG = "application/vnd.alga.appliance.release.config.v1+json"
RELEASE_ARTIFACT = "application/vnd.alga.appliance.release.v1"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
# The index types are accepted on the wire only so that an index is refused
# with a clear error instead of a registry's 404/406.
MANIFEST_ACCEPT = ", ".join((OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST))
# Content types some registries put on any JSON; they say nothing about the manifest kind.
GENERIC_TYPES = ("", "application/json", "application/octet-stream", "text/plain")

#: cosign's signatures ("simple signing", as sigstore's signature specification describes).
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_SIGNATURE_TYPE = "cosign container image signature"
#: A signature manifest, a signature payload: far above what cosign writes (about 1 KiB, 250 bytes).
MAX_SIGNATURE_MANIFEST = 256 * 1024
MAX_PAYLOAD = 64 * 1024
#: Signature layers looked at per artifact (cosign appends one per signing key and run).
MAX_SIGNATURES = 32
#: At most this many trusted keys (one, or two while a key is rotated).
MAX_TRUSTED_KEYS = 2
ENV_TRUSTED_KEYS = "ALGA_TRUSTED_KEYS"
#: The trusted keys shipped next to this file, used when none are given (only if it exists).
DEFAULT_TRUSTED_KEYS_FILE = "trusted-keys.pem"

#: The signed channel statement: tagged ``statement.<channel>`` in the release repository.
#: The Secret of trusted public keys (``<key id>.pub`` entries) that Flux verifies with: the
#: ``OCIRepository alga-appliance`` here, and the bundle's chart sources when the publisher
#: asked for chart verification. Flux reads it from the verifying object's own namespace.
TRUSTED_KEYS_SECRET = "alga-appliance-trusted-keys"
FLUX_NAMESPACE = "flux-system"

STATEMENT_ARTIFACT = "application/vnd.alga.appliance.channel-statement.v1"
STATEMENT_CONFIG = "application/vnd.alga.appliance.channel-statement.v1+json"
STATEMENT_SCHEMA = "alga.appliance.channel-statement/v1"
STATEMENT_TAG_PREFIX = "statement."
MAX_STATEMENT = 64 * 1024

RELEASE_SCHEMA = "alga.appliance.release/v1"
CACHE_SCHEMA = "alga.appliance.release-cache/v1"
USER_AGENT = f"alga-release-consume/{__version__} (python)"

ENV_USERNAME = "ALGA_REGISTRY_USERNAME"
ENV_PASSWORD = "ALGA_REGISTRY_PASSWORD"

#: The six services, in the order the appliance creates their values ConfigMaps.
SERVICES = (
    "alga-core",
    "pgbouncer",
    "temporal",
    "workflow-worker",
    "email-service",
    "temporal-worker",
)
CHARTS = (
    "sebastian",
    "pgbouncer",
    "temporal",
    "temporal-worker",
    "workflow-worker",
    "email-service",
)
IMAGE_KEYS = ("algaCore", "workflowWorker", "emailService", "temporalWorker")
#: Every key path the appliance's setter edits, per service (it fails when one is absent).
SETTER_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "alga-core": (
        ("bootstrap", "mode"),
        ("appUrl",),
        ("host",),
        ("domainSuffix",),
        ("setup", "image", "tag"),
        ("server", "image", "tag"),
    ),
    "workflow-worker": (("image", "tag"),),
    "email-service": (("image", "tag"),),
    "temporal-worker": (("image", "tag"), ("publicBaseUrl",)),
}
#: Which image tag goes where when the values ConfigMaps are rendered.
#: The key paths the in-cluster updater (the status service's update Job in
#: ``appliance-status.yaml``) sets with its own line setter on every upgrade: the image tags.
UPDATER_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "alga-core": (("setup", "image", "tag"), ("server", "image", "tag")),
    "workflow-worker": (("image", "tag"),),
    "email-service": (("image", "tag"),),
    "temporal-worker": (("image", "tag"),),
}

IMAGE_TAG_PATHS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("alga-core", ("setup", "image", "tag"), "algaCore"),
    ("alga-core", ("server", "image", "tag"), "algaCore"),
    ("workflow-worker", ("image", "tag"), "workflowWorker"),
    ("email-service", ("image", "tag"), "emailService"),
    ("temporal-worker", ("image", "tag"), "temporalWorker"),
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3
EXIT_UNREACHABLE = 75

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_TOKEN_MARGIN = 30.0  # refresh a token this many seconds before it expires
_MIN_TOKEN_LIFETIME = 60.0  # the distribution token spec's default and minimum
_BASE_DELAY = 0.25
_MAX_DELAY = 4.0

# -- errors --------------------------------------------------------------------


class ConsumeError(Exception):
    """Root of every error this library raises on purpose."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """The text shown to a person: the message, then what to do."""
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message

    def to_json(self) -> dict[str, Any]:
        return {
            "error": type(self).__name__,
            "family": _family(self),
            "message": self.message,
            "hint": self.hint,
            "exitCode": self.exit_code,
        }


class BadInput(ConsumeError):
    """The caller asked for something malformed (reference, host, option)."""

    exit_code = EXIT_BAD_INPUT


class RepositoryError(ConsumeError):
    """The repository is wrong: what it served cannot be trusted or used. Refused."""

    exit_code = EXIT_REFUSED


class DigestMismatch(RepositoryError):
    """Bytes (or their size) do not match the digest they were asked for or announced with."""


class SizeLimitExceeded(RepositoryError):
    """A body or a descriptor's size is above the cap."""


class UnexpectedMediaType(RepositoryError):
    """An index instead of an image manifest, or a media type this library does not accept."""


class InvalidManifest(RepositoryError):
    """The manifest is not a well-formed image manifest."""


class IncompleteRelease(RepositoryError):
    """The manifest exists but the registry does not have its config blob."""


class InvalidRelease(RepositoryError):
    """The release JSON breaks the schema or the consumer contract."""

    def __init__(self, problems: Sequence[str], *, what: str = "the release JSON") -> None:
        self.problems = list(problems)
        shown = "; ".join(self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(
            f"{what} is invalid: {shown}{more}",
            hint="the publisher must not have pushed this; republish the release",
        )

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "problems": self.problems}


class RollbackRefused(RepositoryError):
    """The resolved release is older than the installed one and was not pinned."""


class SignatureError(RepositoryError):
    """With trusted keys configured: no signature by a trusted key vouches for the digest."""


class Unsigned(SignatureError):
    """No ``sha256-<hex>.sig`` manifest, or one without a simple-signing layer."""


class UntrustedSignature(SignatureError):
    """Signatures exist, but none verifies under a trusted key (another key signed)."""


class SignatureDigestMismatch(SignatureError):
    """A trusted key signed, but for another digest (or not as a cosign image signature)."""


class BadSignature(SignatureError):
    """A signature or its payload is malformed, or the payload is not the bytes announced."""


class StatementError(RepositoryError):
    """With trusted keys, a channel resolve: the channel's signed statement does not vouch."""


class StatementMissing(StatementError):
    """No ``statement.<channel>`` artifact (or one that is not a channel statement at all)."""


class InvalidStatement(StatementError):
    """The statement is malformed, names another channel, or another version."""

    def __init__(self, problems: Sequence[str], *, what: str = "the channel statement") -> None:
        self.problems = list(problems)
        super().__init__(
            f"{what} is invalid: {'; '.join(self.problems[:5])}",
            hint="the publisher must re-issue the channel statement",
        )

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "problems": self.problems}


class StatementDigestMismatch(StatementError):
    """The statement vouches for another manifest digest: the channel was re-tagged."""


class StatementReplay(StatementError):
    """The statement's sequence is lower than one this appliance has already seen."""


class StatementExpired(StatementError):
    """The statement's ``expiresAt`` has passed: a frozen or abandoned channel.

    ``cached_release`` names the release this appliance stays on (``version`` and
    ``manifestDigest``), when it has one for the channel.
    """

    def __init__(
        self,
        message: str,
        *,
        expires_at: str,
        cached_release: dict[str, str] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.expires_at = expires_at
        self.cached_release = cached_release

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "expiresAt": self.expires_at,
            "cachedRelease": self.cached_release,
        }


class DownloadError(ConsumeError):
    """The download failed: the repository may be fine, we could not read it."""


class RegistryUnreachable(DownloadError):
    """Network error, timeout, TLS failure, or 429/5xx after the bounded retries."""

    exit_code = EXIT_UNREACHABLE

    def __init__(self, message: str, *, hint: str | None = None, retryable: bool = True) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable


class AuthError(DownloadError):
    """The registry or its token service refused us (401/403 after authenticating)."""


class NotFound(DownloadError):
    """No such tag or digest in the repository."""


def _family(error: ConsumeError) -> str:
    if isinstance(error, RepositoryError):
        return "RepositoryError"
    if isinstance(error, DownloadError):
        return "DownloadError"
    if isinstance(error, BadInput):
        return "BadInput"
    return "ConsumeError"


# -- small values -----------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """One HTTP response as a transport returns it. Header names are lower case."""

    status: int
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class Credentials:
    """A username and a password or token; the password never shows in repr."""

    username: str
    password: str = field(repr=False)

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Ref:
    """A parsed reference: ``kind`` is channel, version, tag or digest."""

    kind: str
    value: str

    @property
    def pinned(self) -> bool:
        """A version or digest is an explicit pin: it may install an older release."""
        return self.kind in ("version", "digest")


@dataclass(frozen=True)
class ManifestInfo:
    """What :func:`verify_manifest` established about a manifest's bytes."""

    digest: str
    media_type: str
    config_digest: str
    config_size: int
    size: int


@dataclass(frozen=True)
class Resolution:
    """A verified release. ``manifest`` is the release JSON (validated)."""

    reference: str
    registry: str
    repository: str
    manifest_digest: str
    media_type: str
    config_digest: str
    manifest: dict[str, Any]
    pinned: bool
    downgrade: bool
    cached: bool
    stale: bool
    requests: int
    #: The trusted key id that signed the manifest (``sha256:<16 hex>``); None unchecked.
    signed_by: str | None = None
    #: The channel statement that vouched (digest, sequence, issuedAt, expiresAt, signedBy).
    statement: dict[str, Any] | None = None

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    def to_json(self) -> dict[str, Any]:
        """The result as JSON (the same keys and values the JavaScript twin returns)."""
        return {
            "reference": self.reference,
            "registry": self.registry,
            "repository": self.repository,
            "manifestDigest": self.manifest_digest,
            "mediaType": self.media_type,
            "configDigest": self.config_digest,
            "version": self.manifest["version"],
            "channel": self.manifest["channel"],
            "manifest": self.manifest,
            "pinned": self.pinned,
            "downgrade": self.downgrade,
            "cached": self.cached,
            "stale": self.stale,
            "requests": self.requests,
            "signedBy": self.signed_by,
            "statement": self.statement,
        }


# -- pure: names, references, digests ------------------------------------------------

# JavaScript's \s, spelled out (the schema's patterns are ECMA-262 and the appliance runs
# on Node): Python's \s differs, it takes \x1c-\x1f and not \ufeff.
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_DIGITS = re.compile(r"[0-9]+")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST_RES = {
    "sha256": re.compile(r"sha256:[a-f0-9]{64}"),
    "sha512": re.compile(r"sha512:[a-f0-9]{128}"),
}
_REPOSITORY_RE = re.compile(
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
_HOST_RE = re.compile(
    r"(?:localhost|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)(?::[0-9]{1,5})?"
)
_SEMVER_RE = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
    r"(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?"
)


def is_digest(text: str) -> bool:
    """``sha256:<64 hex>`` or ``sha512:<128 hex>`` (lower-case hex)."""
    algorithm = text.split(":", 1)[0]
    pattern = _DIGEST_RES.get(algorithm)
    return pattern is not None and pattern.fullmatch(text) is not None


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    """The OCI digest of ``data`` (``sha256`` or ``sha512``)."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def digest_matches(data: bytes, digest: str) -> bool:
    return compute_digest(data, digest.split(":", 1)[0]) == digest


def parse_ref(ref: str) -> Ref:
    """Classify a reference: ``sha256:...`` digest, a channel, a SemVer version tag, a tag."""
    if not isinstance(ref, str) or not ref:
        raise BadInput("the reference is empty", hint="give a channel, a version or sha256:<hex>")
    if ":" in ref:
        if is_digest(ref):
            return Ref("digest", ref)
        raise BadInput(
            f"{ref!r} is not a digest",
            hint="a digest is sha256:<64 lower-case hex>; a tag holds no ':'",
        )
    if ref in CHANNELS:
        return Ref("channel", ref)
    if _TAG_RE.fullmatch(ref) is None:
        raise BadInput(
            f"{ref!r} is not a valid tag", hint="tags match [A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
        )
    if _SEMVER_RE.fullmatch(ref) is not None:
        return Ref("version", ref)
    return Ref("tag", ref)


def check_registry(host: str) -> str:
    """A registry ``HOST[:PORT]`` (no scheme, no path)."""
    if not isinstance(host, str) or _HOST_RE.fullmatch(host) is None:
        raise BadInput(f"{host!r} is not a registry host", hint="give HOST or HOST:PORT, no scheme")
    return host


def check_repository(name: str) -> str:
    """A repository path such as ``nine-minds/alga-appliance-release``."""
    if not isinstance(name, str) or len(name) > 255 or _REPOSITORY_RE.fullmatch(name) is None:
        raise BadInput(
            f"{name!r} is not a repository name",
            hint="lower-case components separated by '/', e.g. nine-minds/alga-appliance-release",
        )
    return name


def is_loopback(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1``; the port is ignored."""
    name = host
    if name.startswith("["):
        name = name[1 : name.find("]")]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    # IPv4 shorthands (127.1, 0x7f000001, 0177.0.0.1), as WHATWG URLs (the Node twin)
    # read them: the classic inet_aton forms.
    if not re.fullmatch(r"[0-9A-Fa-fXx.]+", name):
        return False
    try:
        return socket.inet_aton(name)[0] == 127
    except OSError:
        return False


# -- pure: versions and anti-rollback ------------------------------------------------


def is_semver(text: object) -> bool:
    return isinstance(text, str) and _SEMVER_RE.fullmatch(text) is not None


def parse_version(text: str) -> tuple[int, int, int, tuple[str, ...]]:
    """SemVer 2 without build metadata -> (major, minor, patch, prerelease identifiers)."""
    match = _SEMVER_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise BadInput(
            f"{text!r} is not a SemVer 2 version", hint="e.g. 1.4.0 or 1.5.0-rc.1 (no '+')"
        )
    pre = tuple(match.group(4).split(".")) if match.group(4) else ()
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), pre


def compare_versions(a: str, b: str) -> int:
    """SemVer 2 precedence: -1 when a < b, 0 when equal, 1 when a > b."""
    va, vb = parse_version(a), parse_version(b)
    if va[:3] != vb[:3]:
        return -1 if va[:3] < vb[:3] else 1
    pa, pb = va[3], vb[3]
    if pa == pb:
        return 0
    if not pa or not pb:  # a release ranks above any of its prereleases
        return 1 if not pa else -1
    for x, y in zip(pa, pb, strict=False):
        if x == y:
            continue
        xn, yn = x.isdigit(), y.isdigit()
        if xn and yn:
            return -1 if int(x) < int(y) else 1
        if xn != yn:  # numeric identifiers rank below alphanumeric ones
            return -1 if xn else 1
        return -1 if x < y else 1
    return -1 if len(pa) < len(pb) else 1


def check_rollback(
    version: str, installed_version: str | None, *, pinned: bool, reference: str = ""
) -> bool:
    """The anti-rollback decision. Returns True when this is an explicit (pinned) downgrade.

    Raises :class:`RollbackRefused` when ``version`` is older than ``installed_version``
    and the reference was a channel or a plain tag rather than a version or digest.
    An installed version that is not SemVer (releases before this scheme, such as
    ``1.0-rc5.1``) cannot be compared: every SemVer release counts as an upgrade from it.
    """
    if installed_version is None or not is_semver(installed_version):
        return False
    if compare_versions(version, installed_version) >= 0:
        return False
    if pinned:
        return True
    raise RollbackRefused(
        f"{reference or 'the reference'} resolves to release {version}, older than the "
        f"installed {installed_version}; refusing to roll back",
        hint=f"to downgrade on purpose, pin the release explicitly: resolve {version} "
        "(the version) or its manifest digest",
    )


def cache_decision(cached_digest: str | None, remote_digest: str | None, *, reachable: bool) -> str:
    """What to do with a cached release. Pure.

    ``"hit"``: the registry names the cached manifest digest (the channel has not
    moved) -- use the cache, download nothing. ``"fetch"``: download and verify.
    ``"stale"``: the registry cannot be reached and a cached release exists.
    ``"fail"``: unreachable and nothing cached.
    """
    if not reachable:
        return "stale" if cached_digest is not None else "fail"
    if cached_digest is not None and remote_digest is not None and remote_digest == cached_digest:
        return "hit"
    return "fetch"


# -- pure: manifest and blob verification ----------------------------------------


def _media_type_of(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(data: bytes, what: str) -> Any:
    """Strict JSON from UTF-8 bytes (no BOM, no NaN/Infinity), as ``JSON.parse`` reads it."""
    try:
        text = data.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{what} is not JSON") from exc


def verify_manifest(
    data: bytes,
    *,
    content_type: str | None = None,
    header_digest: str | None = None,
    expected_digest: str | None = None,
    expected_size: int | None = None,
) -> ManifestInfo:
    """Check a manifest's bytes and say what they are. Pure; raises a RepositoryError.

    ``expected_digest`` is what the caller asked for (a digest reference, or what a
    HEAD answered); ``header_digest`` is the registry's ``Docker-Content-Digest``.
    Both must match the bytes. The manifest must be one image manifest (OCI or
    Docker v2) whose config is the release JSON.
    """
    if len(data) > MAX_BYTES:
        raise SizeLimitExceeded(f"the manifest is larger than {MAX_BYTES} bytes")
    if expected_size is not None and len(data) != expected_size:
        raise DigestMismatch(
            f"the manifest is {len(data)} bytes, the registry announced {expected_size}",
            hint="the registry or something between us served altered content; do not trust it",
        )
    for claimed, source in (
        (expected_digest, "requested"),
        (header_digest, "Docker-Content-Digest"),
    ):
        if claimed is not None and not digest_matches(data, claimed):
            raise DigestMismatch(
                f"the manifest bytes do not match the {source} digest {claimed} "
                f"(they hash to {compute_digest(data, claimed.split(':', 1)[0])})",
                hint="the registry or something between us served altered content; do not trust it",
            )
    digest = expected_digest or compute_digest(data)
    try:
        doc = parse_json(data, "the manifest")
    except ValueError as exc:
        raise InvalidManifest(str(exc)) from None
    if not isinstance(doc, dict):
        raise InvalidManifest("the manifest is not a JSON object")
    header_type = _media_type_of(content_type)
    body_type = doc.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise InvalidManifest("the manifest's mediaType is not a string")
    if body_type in INDEX_TYPES or header_type in INDEX_TYPES or "manifests" in doc:
        raise UnexpectedMediaType(
            f"{digest} is an index ({body_type or header_type or 'has manifests'}), "
            "not a release manifest",
            hint="a release is a single image manifest whose config blob is the release JSON",
        )
    if body_type is not None and header_type not in GENERIC_TYPES and header_type != body_type:
        raise UnexpectedMediaType(
            f"{digest}: Content-Type {header_type} disagrees with the mediaType {body_type}"
        )
    media_type = body_type if body_type is not None else header_type
    if media_type not in MANIFEST_TYPES:
        raise UnexpectedMediaType(
            f"{digest} has media type {media_type or '(none)'}; expected {OCI_MANIFEST} "
            f"or {DOCKER_MANIFEST}"
        )
    if doc.get("schemaVersion") != 2 or isinstance(doc.get("schemaVersion"), bool):
        raise InvalidManifest(f"{digest}: schemaVersion is not 2")
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and artifact_type != RELEASE_ARTIFACT:
        raise UnexpectedMediaType(
            f"{digest} has artifactType {artifact_type}; expected {RELEASE_ARTIFACT}"
        )
    config = doc.get("config")
    if not isinstance(config, dict):
        raise InvalidManifest(f"{digest} has no config descriptor")
    config_type: Any = config.get("mediaType")
    config_digest: Any = config.get("digest")
    config_size: Any = config.get("size")
    if not isinstance(config_digest, str) or not is_digest(config_digest):
        raise InvalidManifest(f"{digest}: config.digest is not a digest")
    if not _is_int(config_size) or int(config_size) < 0:
        raise InvalidManifest(f"{digest}: config.size is not a non-negative integer")
    size = int(config_size)
    if config_type != RELEASE_CONFIG:
        raise UnexpectedMediaType(
            f"{digest}: the config media type is {config_type}; expected {RELEASE_CONFIG}",
            hint="this is not an Alga appliance release artifact",
        )
    if size > MAX_BYTES:
        raise SizeLimitExceeded(
            f"{digest}: the config blob is announced as {size} bytes, above the "
            f"{MAX_BYTES}-byte cap"
        )
    layers = doc.get("layers")
    if layers is not None and not isinstance(layers, list):
        raise InvalidManifest(f"{digest}: layers is not a list")
    return ManifestInfo(digest, media_type, config_digest, size, len(data))


def verify_blob(data: bytes, digest: str, size: int) -> None:
    """Check a blob's bytes against its descriptor. Pure; raises a RepositoryError."""
    if len(data) > MAX_BYTES:
        raise SizeLimitExceeded(f"blob {digest} is larger than {MAX_BYTES} bytes")
    if len(data) != size:
        raise DigestMismatch(
            f"blob {digest} is {len(data)} bytes, the manifest says {size}",
            hint="the registry or something between us served altered content; do not trust it",
        )
    if not digest_matches(data, digest):
        raise DigestMismatch(
            f"blob {digest} does not match its digest (the bytes hash to "
            f"{compute_digest(data, digest.split(':', 1)[0])})",
            hint="the registry or something between us served altered content; do not trust it",
        )


# -- pure: signatures (cosign's format, ECDSA P-256 over SHA-256) ---------------------------
#
# Verification only, so nothing here needs to be constant-time: every input is public.

_P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_P256_G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)
_OID_EC_PUBLIC_KEY = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1
_OID_P256 = bytes.fromhex("2a8648ce3d030107")  # 1.2.840.10045.3.1.7 (prime256v1)
#: DER SubjectPublicKeyInfo of a P-256 key up to its uncompressed point (0x04 || X || Y).
_SPKI_P256_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n\t ]*?)-----END \1-----"
)

_Jacobian = tuple[int, int, int]
_INFINITY: _Jacobian = (0, 1, 0)


def _double(point: _Jacobian) -> _Jacobian:
    x, y, z = point
    if z == 0 or y == 0:
        return _INFINITY
    p = _P256_P
    yy = y * y % p
    s = 4 * x * yy % p
    zz = z * z % p
    m = 3 * (x - zz) * (x + zz) % p  # a = -3
    x3 = (m * m - 2 * s) % p
    return x3, (m * (s - x3) - 8 * yy * yy) % p, 2 * y * z % p


def _add(one: _Jacobian, two: _Jacobian) -> _Jacobian:
    x1, y1, z1 = one
    x2, y2, z2 = two
    if z1 == 0:
        return two
    if z2 == 0:
        return one
    p = _P256_P
    z1z1, z2z2 = z1 * z1 % p, z2 * z2 % p
    u1, u2 = x1 * z2z2 % p, x2 * z1z1 % p
    s1, s2 = y1 * z2 * z2z2 % p, y2 * z1 * z1z1 % p
    h, r = (u2 - u1) % p, (s2 - s1) % p
    if h == 0:
        return _double(one) if r == 0 else _INFINITY
    hh = h * h % p
    hhh, v = h * hh % p, u1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    return x3, (r * (v - x3) - s1 * hhh) % p, h * z1 * z2 % p


def _on_curve(x: int, y: int) -> bool:
    p = _P256_P
    return 0 <= x < p and 0 <= y < p and (y * y - (x * x * x - 3 * x + _P256_B)) % p == 0


def ecdsa_p256_verify(point: tuple[int, int], message: bytes, r: int, s: int) -> bool:
    """ECDSA verification on P-256 with SHA-256 (FIPS 186-4 / SEC 1, 4.1.4). Pure.

    ``point`` is the public key (already checked to be on the curve); ``r`` and
    ``s`` are the signature's scalars. False for any scalar outside [1, n-1].
    """
    n = _P256_N
    if not (0 < r < n and 0 < s < n) or not _on_curve(*point):
        return False
    e = int.from_bytes(hashlib.sha256(message).digest(), "big")  # 256 bits: no truncation
    w = pow(s, -1, n)
    u1, u2 = e * w % n, r * w % n
    g: _Jacobian = (*_P256_G, 1)
    q: _Jacobian = (*point, 1)
    table = {(1, 0): g, (0, 1): q, (1, 1): _add(g, q)}
    acc = _INFINITY
    for bit in range(max(u1.bit_length(), u2.bit_length()) - 1, -1, -1):  # Shamir's trick
        acc = _double(acc)
        pair = ((u1 >> bit) & 1, (u2 >> bit) & 1)
        if pair != (0, 0):
            acc = _add(acc, table[pair])
    x, _y, z = acc
    if z == 0:
        return False
    return x * pow(z * z, -1, _P256_P) % _P256_P % n == r


def _der_read(data: bytes, at: int) -> tuple[int, bytes, int]:
    """One DER TLV at ``at``: (tag, value, end). Minimal lengths only (DER, not BER)."""
    if at + 2 > len(data):
        raise ValueError("truncated DER")
    tag, first = data[at], data[at + 1]
    at += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 2 or at + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[at : at + count], "big")
        if length < 0x80 or (count == 2 and length < 0x100):
            raise ValueError("non-minimal DER length")
        at += count
    if at + length > len(data):
        raise ValueError("truncated DER")
    return tag, data[at : at + length], at + length


def _der_integer(value: bytes) -> int:
    if not value or value[0] & 0x80:
        raise ValueError("not a positive DER INTEGER")
    if len(value) > 1 and value[0] == 0 and not value[1] & 0x80:
        raise ValueError("non-minimal DER INTEGER")
    return int.from_bytes(value, "big")


def _der_pair(body: bytes, first: int, second: int, what: str) -> tuple[bytes, bytes]:
    """The two values that make up ``body`` (a SEQUENCE's content), tagged ``first``, ``second``."""
    tag_a, a, at = _der_read(body, 0)
    tag_b, b, at = _der_read(body, at)
    if (tag_a, tag_b) != (first, second) or at != len(body):
        raise ValueError(f"not {what}")
    return a, b


def _der_sequence(data: bytes, what: str) -> bytes:
    """The content of the DER SEQUENCE that is all of ``data``."""
    tag, body, end = _der_read(data, 0)
    if tag != 0x30 or end != len(data):
        raise ValueError(f"not {what}")
    return body


def parse_der_signature(data: bytes) -> tuple[int, int]:
    """An ASN.1 DER ``ECDSA-Sig-Value`` -> (r, s). Strict: canonical DER, nothing after it."""
    what = "a DER SEQUENCE of two INTEGERs"
    r, s = _der_pair(_der_sequence(data, what), 0x02, 0x02, what)
    return _der_integer(r), _der_integer(s)


@dataclass(frozen=True)
class TrustedKey:
    """An ECDSA P-256 public key; ``key_id`` is ``sha256:`` + 16 hex of its DER SPKI."""

    point: tuple[int, int]

    @property
    def der(self) -> bytes:
        """The DER SubjectPublicKeyInfo, uncompressed point (as ``openssl ec -pubin`` writes)."""
        x, y = self.point
        return _SPKI_P256_PREFIX + b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")

    @property
    def key_id(self) -> str:
        return key_id(self.der)

    def pem(self) -> str:
        body = base64.b64encode(self.der).decode("ascii")
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` (DER) is this key's over SHA-256 of ``message``."""
        try:
            r, s = parse_der_signature(signature)
        except ValueError:
            return False
        return ecdsa_p256_verify(self.point, message, r, s)


def key_id(der: bytes) -> str:
    """``sha256:`` + the first 16 hex of SHA-256 over a key's DER SubjectPublicKeyInfo."""
    return "sha256:" + hashlib.sha256(der).hexdigest()[:16]


def parse_spki(der: bytes) -> TrustedKey:
    """A DER SubjectPublicKeyInfo holding an ECDSA P-256 key (compressed point or not)."""
    what = "a SubjectPublicKeyInfo"
    alg, bits = _der_pair(_der_sequence(der, what), 0x30, 0x03, what)
    try:
        oid, curve = _der_pair(alg, 0x06, 0x06, "an EC key")
    except ValueError:
        oid, curve = b"", b""
    if oid != _OID_EC_PUBLIC_KEY:
        raise ValueError("not an elliptic-curve key (only ECDSA P-256 keys are supported)")
    if curve != _OID_P256:
        raise ValueError("not a P-256 key (only ECDSA P-256 keys are supported)")
    if not bits or bits[0] != 0:
        raise ValueError("bad public key bit string")
    point = bits[1:]
    if len(point) == 65 and point[0] == 4:
        x, y = int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big")
    elif len(point) == 33 and point[0] in (2, 3):
        x = int.from_bytes(point[1:], "big")
        rhs = (x * x * x - 3 * x + _P256_B) % _P256_P
        y = pow(rhs, (_P256_P + 1) // 4, _P256_P)  # p = 3 mod 4
        if y & 1 != point[0] & 1:
            y = _P256_P - y
    else:
        raise ValueError("bad public key point encoding")
    if not _on_curve(x, y):
        raise ValueError("the public key is not a point on P-256")
    return TrustedKey((x, y))


def parse_public_keys(text: str, *, source: str = "the key text") -> list[TrustedKey]:
    """Every ``PUBLIC KEY`` PEM block in ``text`` (other text between blocks is ignored).

    Raises :class:`BadInput` for a block of another type (a private key, a
    certificate), a key that is not ECDSA P-256, or no key at all.
    """
    keys: list[TrustedKey] = []
    for number, match in enumerate(_PEM_BLOCK.finditer(text), 1):
        kind = match.group(1)
        if kind != "PUBLIC KEY":
            raise BadInput(
                f"{source}: PEM block {number} is a {kind}, not a PUBLIC KEY",
                hint="trusted keys are PEM 'PUBLIC KEY' blocks (cosign.pub); never a private key",
            )
        try:
            der = base64.b64decode("".join(match.group(2).split()), validate=True)
            keys.append(parse_spki(der))
        except (ValueError, binascii.Error) as exc:
            raise BadInput(f"{source}: PEM block {number}: {exc}") from None
    if not keys:
        raise BadInput(f"{source} holds no PEM PUBLIC KEY block")
    return keys


def trusted_key_set(keys: Sequence[TrustedKey | str]) -> tuple[TrustedKey, ...]:
    """1 or 2 distinct keys from keys or PEM texts, in order. Raises :class:`BadInput`."""
    out: list[TrustedKey] = []
    for item in keys:
        for key in parse_public_keys(item) if isinstance(item, str) else [item]:
            if key not in out:
                out.append(key)
    if len(out) > MAX_TRUSTED_KEYS:
        raise BadInput(
            f"{len(out)} trusted keys given; at most {MAX_TRUSTED_KEYS} (the key, and its "
            "successor while rotating)"
        )
    return tuple(out)


def load_trusted_keys(paths: Sequence[str]) -> tuple[TrustedKey, ...]:
    """The trusted key set from PEM files (each may hold several blocks)."""
    texts: list[TrustedKey | str] = []
    for path in paths:
        try:
            with open(path, encoding="ascii") as fh:
                text = fh.read(1024 * 1024)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not ASCII PEM text"
            raise BadInput(f"cannot read the trusted key file {path}: {reason}") from None
        texts.extend(parse_public_keys(text, source=path))
    return trusted_key_set(texts)


def default_trusted_keys_file() -> str | None:
    """``trusted-keys.pem`` next to this file, when it exists."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), DEFAULT_TRUSTED_KEYS_FILE)
    return path if os.path.isfile(path) else None


def configured_trusted_keys(
    trusted_keys: Sequence[TrustedKey | str] | None,
) -> tuple[TrustedKey, ...]:
    """The key set a ``trusted_keys`` argument means: None is the shipped
    ``trusted-keys.pem`` if there is one (else none); a sequence is exactly those keys."""
    if trusted_keys is None:
        default = default_trusted_keys_file()
        return load_trusted_keys([default]) if default is not None else ()
    return trusted_key_set(trusted_keys)


def signature_tag(digest: str) -> str:
    """Where cosign stores the signatures of ``digest``: the tag ``sha256-<hex>.sig``."""
    return digest.replace(":", "-", 1) + ".sig"


def simple_signing_payload(reference: str, digest: str) -> bytes:
    """The payload cosign signs for ``reference`` (HOST/REPO) at ``digest`` (its exact bytes)."""
    doc = {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": COSIGN_SIGNATURE_TYPE,
        },
        "optional": None,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SignatureLayer:
    """One simple-signing layer of a ``.sig`` manifest: the payload's descriptor and signature."""

    digest: str
    size: int
    signature: str | None


@dataclass(frozen=True)
class Signature:
    """A signature as downloaded: the payload's bytes and the base64 signature, or why not."""

    payload: bytes | None
    signature: str | None
    problem: str | None = None


def signature_layers(data: bytes, *, header_digest: str | None = None) -> list[SignatureLayer]:
    """The simple-signing layers of a ``.sig`` manifest's bytes. Pure; raises BadSignature."""
    if len(data) > MAX_SIGNATURE_MANIFEST:
        raise BadSignature(f"the signature manifest is larger than {MAX_SIGNATURE_MANIFEST} bytes")
    if header_digest is not None and not digest_matches(data, header_digest):
        raise BadSignature(
            f"the signature manifest does not match its Docker-Content-Digest {header_digest}",
            hint="the registry or something between us served altered content; do not trust it",
        )
    try:
        doc = parse_json(data, "the signature manifest")
    except ValueError as exc:
        raise BadSignature(str(exc)) from None
    layers = doc.get("layers") if isinstance(doc, dict) else None
    if not isinstance(layers, list) or "manifests" in doc:
        raise BadSignature("the signature manifest is not an image manifest with layers")
    out: list[SignatureLayer] = []
    for layer in layers:
        if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLE_SIGNING:
            continue
        digest, size = layer.get("digest"), layer.get("size", -1)
        annotations = layer.get("annotations")
        signature = annotations.get(SIGNATURE_ANNOTATION) if isinstance(annotations, dict) else None
        if not isinstance(digest, str) or not is_digest(digest) or not _is_int(size) or size < 0:
            raise BadSignature("a signature layer's descriptor has no valid digest and size")
        out.append(
            SignatureLayer(digest, int(size), signature if isinstance(signature, str) else None)
        )
    return out


def _payload_claims(payload: bytes) -> tuple[str, Any]:
    """(docker-manifest-digest, critical.type) of a simple-signing payload; ValueError if none."""
    doc = parse_json(payload, "the signature payload")
    critical = doc.get("critical") if isinstance(doc, dict) else None
    image = critical.get("image") if isinstance(critical, dict) else None
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(digest, str) or not isinstance(critical, dict):
        raise ValueError("the signature payload is not a simple-signing document")
    return digest, critical.get("type")


def check_signatures(
    signatures: Sequence[Signature], digest: str, keys: Sequence[TrustedKey], *, what: str
) -> str:
    """The key id of the trusted key that vouches for ``digest``; see :func:`_accepted`."""
    return _accepted(signatures, digest, keys, what=what)[1]


def _accepted(
    signatures: Sequence[Signature], digest: str, keys: Sequence[TrustedKey], *, what: str
) -> tuple[Signature, str]:
    """The signature decision for ``digest``: the trusted key id that vouches for it. Pure.

    Accepts when one signature's payload is a cosign image signature naming exactly
    ``digest`` and verifies under a trusted key (the payload's docker-reference is not
    checked, as cosign does not: a mirror serves the same signature). Otherwise raises,
    most telling first: :class:`SignatureDigestMismatch` (a trusted key signed something
    else), :class:`BadSignature` (malformed, or a payload altered after signing),
    :class:`UntrustedSignature` (no trusted key verifies any), :class:`Unsigned` (none).
    """
    if not signatures:
        raise Unsigned(
            f"{what} is not signed (no cosign signature for {digest})",
            hint="publish with the release signing key; a release without a signature "
            "is refused while trusted keys are configured",
        )
    elsewhere: tuple[str, str, Any] | None = None
    bad: str | None = None
    for item in signatures:
        if item.problem is not None or item.payload is None or item.signature is None:
            bad = bad or item.problem or "a signature layer has no signature annotation"
            continue
        try:
            raw = base64.b64decode(item.signature.strip().encode("ascii"), validate=True)
            r, s = parse_der_signature(raw)
            claimed, kind = _payload_claims(item.payload)
        except (ValueError, binascii.Error, UnicodeEncodeError) as exc:
            bad = bad or f"a signature cannot be read ({exc})"
            continue
        signer = next((k for k in keys if ecdsa_p256_verify(k.point, item.payload, r, s)), None)
        if signer is None:
            continue
        if kind != COSIGN_SIGNATURE_TYPE or claimed != digest:
            elsewhere = elsewhere or (signer.key_id, claimed, kind)
            continue
        return item, signer.key_id
    trusted = ", ".join(k.key_id for k in keys)
    if elsewhere is not None:
        signer_id, claimed, kind = elsewhere
        covers = claimed if kind == COSIGN_SIGNATURE_TYPE else f"a {kind!r} payload"
        raise SignatureDigestMismatch(
            f"{what}: the signature by trusted key {signer_id} covers {covers}, not {digest}",
            hint="someone with push rights moved a signature or re-tagged another artifact; "
            "do not install it",
        )
    if bad is not None:
        raise BadSignature(
            f"{what}: {bad}",
            hint="the signature was altered (or damaged) after signing; do not install it",
        )
    raise UntrustedSignature(
        f"{what} is signed, but by no trusted key (trusted: {trusted}); no signature verifies",
        hint="it was signed by another key, or its payload was altered and re-pushed; if the "
        "release key was rotated, add the new public key to the trusted keys",
    )


# -- pure: channel statements -----------------------------------------------------------------
#
# A channel statement says, signed: channel C pointed at manifest D (release V) as of
# issuedAt, it is the sequence-th statement for C, and it holds until expiresAt. It is
# an OCI image manifest tagged statement.<C> (artifactType and config media type
# below, layers []), its config blob the statement JSON, signed in cosign's format
# like a release. Only a channel resolve with trusted keys reads it; the appliance's
# own consumer reads :<C> alone and never sees it.

_UTC_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?Z"
)
_MAX_SEQUENCE = 2**53 - 1  # exact in JavaScript too


@dataclass(frozen=True)
class StatementInfo:
    """What :func:`verify_statement_manifest` established about a statement manifest."""

    digest: str
    config_digest: str
    config_size: int


def statement_tag(channel: str) -> str:
    """Where the statement for ``channel`` lives: the tag ``statement.<channel>``."""
    return STATEMENT_TAG_PREFIX + channel


def statement_bytes(doc: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a statement (sorted keys, no spaces), as the publisher writes."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def utc_seconds(text: str) -> float | None:
    """Seconds since the epoch of ``YYYY-MM-DDThh:mm:ss[.frac]Z``; None if not a real time."""
    match = _UTC_TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None or not _real_date_time(text):
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    # Days since 1970-01-01 (proleptic Gregorian), without the calendar module.
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    fraction = float("0" + match.group(7)) if match.group(7) else 0.0
    return days * 86400 + hour * 3600 + minute * 60 + second + fraction


def verify_statement_manifest(
    data: bytes, *, header_digest: str | None = None, expected_digest: str | None = None
) -> StatementInfo:
    """Check a statement manifest's bytes. Pure; raises DigestMismatch or StatementMissing."""
    if len(data) > MAX_STATEMENT:
        raise SizeLimitExceeded(f"the channel statement manifest is larger than {MAX_STATEMENT}")
    for claimed, source in (
        (expected_digest, "requested"),
        (header_digest, "Docker-Content-Digest"),
    ):
        if claimed is not None and not digest_matches(data, claimed):
            raise DigestMismatch(
                f"the channel statement manifest does not match the {source} digest {claimed}",
                hint="the registry or something between us served altered content; do not trust it",
            )
    digest = expected_digest or header_digest or compute_digest(data)
    try:
        doc = parse_json(data, "the channel statement manifest")
    except ValueError as exc:
        raise StatementMissing(str(exc)) from None
    config = doc.get("config") if isinstance(doc, dict) else None
    if (
        not isinstance(doc, dict)
        or doc.get("artifactType") != STATEMENT_ARTIFACT
        or not isinstance(config, dict)
        or config.get("mediaType") != STATEMENT_CONFIG
    ):
        raise StatementMissing(
            f"{digest} is not a channel statement (artifactType {STATEMENT_ARTIFACT}, config "
            f"{STATEMENT_CONFIG})"
        )
    config_digest, size = config.get("digest"), config.get("size", -1)
    if not isinstance(config_digest, str) or not is_digest(config_digest):
        raise InvalidStatement(["/config/digest: is not a digest"], what=f"statement {digest}")
    if not _is_int(size) or not 0 <= size <= MAX_STATEMENT:
        raise InvalidStatement([f"/config/size: must be 0 to {MAX_STATEMENT}"], what=digest)
    return StatementInfo(digest, config_digest, int(size))


def statement_problems(doc: Any) -> list[str]:
    """What is wrong with a statement's JSON (empty when it is well-formed). Pure.

    Unknown keys are allowed (a later publisher may add some); the seven known
    ones are required with their types.
    """
    c = _Checker()
    top = c.obj(
        doc,
        "",
        ("channel", "expiresAt", "issuedAt", "manifestDigest", "schema", "sequence", "version"),
        closed=False,
    )
    if top is None:
        return c.problems
    if "schema" in top and top["schema"] != STATEMENT_SCHEMA:
        c.add("/schema", f"must be {STATEMENT_SCHEMA}")
    if "channel" in top and top["channel"] not in CHANNELS:
        c.add("/channel", "must be one of nightly, stable")
    if "version" in top:
        c.string(top["version"], "/version", "version", max_length=128)
    if "manifestDigest" in top:
        c.string(top["manifestDigest"], "/manifestDigest", "digest")
    if "sequence" in top:
        value = top["sequence"]
        if not _is_int(value) or not 0 <= value <= _MAX_SEQUENCE:
            c.add("/sequence", f"must be an integer from 0 to {_MAX_SEQUENCE}")
    for key in ("issuedAt", "expiresAt"):
        if key in top and utc_seconds(top[key]) is None:
            c.add(f"/{key}", "must be an RFC 3339 UTC time (YYYY-MM-DDThh:mm:ssZ)")
    return c.problems


def parse_statement(data: bytes) -> dict[str, Any]:
    """The statement JSON from its config blob's bytes. Pure; raises InvalidStatement."""
    try:
        doc = parse_json(data, "the statement")
    except ValueError as exc:
        raise InvalidStatement([f"(root): {exc}"]) from None
    problems = statement_problems(doc)
    if problems:
        raise InvalidStatement(problems)
    assert isinstance(doc, dict)
    return doc


def check_statement(
    doc: Mapping[str, Any],
    *,
    channel: str,
    manifest_digest: str,
    last_sequence: int | None,
    now: float,
    cached_release: dict[str, str] | None = None,
) -> None:
    """The statement decision for ``channel`` resolved to ``manifest_digest``. Pure.

    ``doc`` passed :func:`statement_problems` and its signature was verified. Raises
    :class:`InvalidStatement` (another channel), :class:`StatementDigestMismatch` (the
    channel was re-tagged without a statement), :class:`StatementReplay` (a sequence
    below ``last_sequence``, the highest accepted before) or :class:`StatementExpired`
    (``expiresAt`` not after ``now``), in that order.
    """
    if doc["channel"] != channel:
        raise InvalidStatement(
            [f"/channel: the statement at {statement_tag(channel)} is for {doc['channel']}"]
        )
    if doc["manifestDigest"] != manifest_digest:
        raise StatementDigestMismatch(
            f"channel {channel} points at {manifest_digest}, but its signed statement "
            f"(sequence {doc['sequence']}) vouches for {doc['manifestDigest']}",
            hint="the channel tag was moved without a signed statement (a re-tag by someone "
            "without the release key, or a move that did not finish); do not install it",
        )
    if last_sequence is not None and doc["sequence"] < last_sequence:
        raise StatementReplay(
            f"channel {channel}'s statement has sequence {doc['sequence']}, lower than "
            f"{last_sequence} already seen: an older statement replayed",
            hint="someone is serving an old channel state; do not install it",
        )
    expires = utc_seconds(doc["expiresAt"])
    if expires is None or expires <= now:
        staying = (
            f"; staying on release {cached_release['version']} ({cached_release['manifestDigest']})"
            if cached_release
            else ""
        )
        raise StatementExpired(
            f"channel statement expired on {doc['expiresAt']}{staying}",
            expires_at=str(doc["expiresAt"]),
            cached_release=cached_release,
            hint=f"the publisher must refresh the {channel} statement (alga-release channel "
            "refresh); a channel nobody vouches for any more is not followed",
        )


# -- pure: the release JSON ------------------------------------------------------------

_HOSTPART = (
    r"(?:(?:localhost|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+)(?::[0-9]{1,5})?"
    r"|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?:[0-9]{1,5})"
)
_NSPART = r"(?:[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*/)+"
_VERSION_PATTERN = _SEMVER_RE.pattern
# Each rule: (regular expression, what a matching value is) -- the schema's patterns, verbatim.
_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "version": (re.compile(_VERSION_PATTERN), "a SemVer 2 version without build metadata"),
    "profile": (
        re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"),
        "a values profile name (a DNS label)",
    ),
    "tag": (re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"), "an OCI tag"),
    "controlPlane": (
        re.compile(_HOSTPART + "/" + _NSPART + r"alga-appliance-control-plane@sha256:[a-f0-9]{64}"),
        "<registry>/<namespace>/alga-appliance-control-plane@sha256:<64 hex>",
    ),
    "configRepository": (
        re.compile(_HOSTPART + "/" + _NSPART + r"alga-appliance-config"),
        "<registry>/<namespace>/alga-appliance-config without a scheme",
    ),
    "digest": (re.compile(r"sha256:[a-f0-9]{64}"), "sha256:<64 lower-case hex>"),
    "profileKey": (
        re.compile(
            r"(?:alga-core|pgbouncer|temporal|workflow-worker|email-service|temporal-worker)"
            r"\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.yaml"
        ),
        "<name>.<profile>.yaml for one of the six services",
    ),
    "supportAgent": (
        re.compile(r"ghcr\.io/nine-minds/alga-appliance-support-agent@sha256:[a-f0-9]{64}"),
        "ghcr.io/nine-minds/alga-appliance-support-agent@sha256:<64 hex>",
    ),
    "keyId": (re.compile(r"[A-Za-z0-9_.-]{1,64}"), "a key id ([A-Za-z0-9_.-]{1,64})"),
    "source": (re.compile(f"https://[^{_JS_SPACE}]+"), "an https URL"),
    "revision": (re.compile(r"[a-f0-9]{40}"), "a 40-hex git commit SHA"),
    "created": (
        re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z"),
        "an RFC 3339 UTC time (YYYY-MM-DDThh:mm:ssZ)",
    ),
    "run": (re.compile(r"[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?"), "a Kubernetes object name"),
}


def _real_date_time(text: str) -> bool:
    """The calendar half of ``format: date-time`` for a string the ``created`` pattern matched.

    The schema's validator asserts the format (30 February fails although the
    pattern matches); a leap second fails too, as it does there.
    """
    year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
    hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    if year < 1 or not 1 <= month <= 12:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]
    return 1 <= day <= days and hour <= 23 and minute <= 59 and second <= 59


def _pointer(path: str, key: str) -> str:
    return f"{path}/{key.replace('~', '~0').replace('/', '~1')}"


def _show(path: str) -> str:
    return path or "(root)"


def _length(text: str) -> int:
    return len(text)  # code points, as JSON Schema counts (the JavaScript twin spreads the string)


class _Checker:
    """Collects problems as ``<JSON pointer>: <what is wrong>`` in a fixed order."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, path: str, text: str) -> None:
        self.problems.append(f"{_show(path)}: {text}")

    def obj(
        self,
        value: Any,
        path: str,
        required: Sequence[str],
        optional: Sequence[str] = (),
        *,
        closed: bool = True,
    ) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.add(path, "must be an object")
            return None
        for key in required:
            if key not in value:
                self.add(_pointer(path, key), "is required")
        if closed:
            known = set(required) | set(optional)
            for key in sorted(k for k in value if k not in known):
                self.add(_pointer(path, key), "is not allowed (unknown key)")
        return value

    def string(
        self,
        value: Any,
        path: str,
        rule: str | None = None,
        *,
        max_length: int | None = None,
        min_length: int | None = None,
        prefix: str | None = None,
        valid: Callable[[str], bool] | None = None,
    ) -> None:
        if not isinstance(value, str):
            self.add(path, "must be a string")
            return
        if max_length is not None and _length(value) > max_length:
            self.add(path, f"must be at most {max_length} characters")
        if min_length is not None and _length(value) < min_length:
            self.add(
                path, "must not be empty" if min_length == 1 else f"needs {min_length}+ characters"
            )
        if prefix is not None and not value.startswith(prefix):
            self.add(path, f"must start with {prefix}")
        if rule is not None:
            pattern, what = _RULES[rule]
            if pattern.fullmatch(value) is None or (valid is not None and not valid(value)):
                self.add(path, f"must be {what}")

    def count(self, value: dict[str, Any], path: str, low: int, high: int) -> None:
        if not low <= len(value) <= high:
            want = f"exactly {low}" if low == high else f"{low} to {high}"
            self.add(path, f"must have {want} keys, has {len(value)}")


def schema_problems(doc: Any) -> list[str]:
    """The rules of ``schemas/release-manifest.v1.schema.json``, as code. Pure.

    Returns the problems found (empty when the schema accepts ``doc``). The order is
    fixed (required keys, then each property in schema order, then unknown keys
    sorted) so that both implementations report the same list. ``format``
    keywords are annotations here as in the schema's validator; the patterns
    next to them carry the rules.
    """
    c = _Checker()
    top = c.obj(
        doc,
        "",
        (
            "schema",
            "version",
            "channel",
            "valuesProfile",
            "images",
            "controlPlane",
            "config",
            "charts",
            "profileValues",
            "provenance",
        ),
        ("imageDigests", "chartDigests", "supportAgent", "supportReceiptKeys"),
    )
    if top is None:
        return c.problems
    if "schema" in top and top["schema"] != RELEASE_SCHEMA:
        c.add("/schema", f"must be {RELEASE_SCHEMA}")
    if "version" in top:
        c.string(top["version"], "/version", "version", max_length=128)
    if "channel" in top and top["channel"] not in CHANNELS:
        c.add("/channel", "must be one of nightly, stable")
    if "valuesProfile" in top:
        c.string(top["valuesProfile"], "/valuesProfile", "profile")
    for name, rule in (("images", "tag"), ("imageDigests", "digest")):
        if name in top:
            table = c.obj(top[name], f"/{name}", IMAGE_KEYS)
            for key in IMAGE_KEYS:
                if table is not None and key in table:
                    c.string(table[key], f"/{name}/{key}", rule)
    if "controlPlane" in top:
        c.string(top["controlPlane"], "/controlPlane", "controlPlane", max_length=512)
    if "config" in top:
        config = c.obj(top["config"], "/config", ("repository", "tag", "version", "digest"))
        if config is not None:
            if "repository" in config:
                c.string(
                    config["repository"], "/config/repository", "configRepository", max_length=512
                )
            if "tag" in config:
                c.string(config["tag"], "/config/tag", "tag")
            if "version" in config:
                c.string(config["version"], "/config/version", "version", max_length=128)
            if "digest" in config:
                c.string(config["digest"], "/config/digest", "digest")
    for name, rule, limit in (("charts", "version", 128), ("chartDigests", "digest", None)):
        if name in top:
            table = c.obj(top[name], f"/{name}", CHARTS)
            for chart in CHARTS:
                if table is not None and chart in table:
                    c.string(table[chart], _pointer(f"/{name}", chart), rule, max_length=limit)
    if "profileValues" in top:
        values = c.obj(top["profileValues"], "/profileValues", (), closed=False)
        if values is not None:
            c.count(values, "/profileValues", 6, 6)
            for key in sorted(values):  # sorted: JavaScript lists integer-like keys first
                path = _pointer("/profileValues", key)
                if _RULES["profileKey"][0].fullmatch(key) is None:
                    c.add(path, f"is not an allowed key (expected {_RULES['profileKey'][1]})")
                c.string(values[key], path, min_length=1)
    if "supportAgent" in top:
        c.string(top["supportAgent"], "/supportAgent", "supportAgent")
    if "supportReceiptKeys" in top:
        keys = c.obj(top["supportReceiptKeys"], "/supportReceiptKeys", (), closed=False)
        if keys is not None:
            c.count(keys, "/supportReceiptKeys", 1, 2)
            for key in sorted(keys):
                path = _pointer("/supportReceiptKeys", key)
                if _RULES["keyId"][0].fullmatch(key) is None:
                    c.add(path, f"is not an allowed key (expected {_RULES['keyId'][1]})")
                c.string(keys[key], path, max_length=8192, prefix="-----BEGIN PUBLIC KEY-----")
    if "provenance" in top:
        prov = c.obj(top["provenance"], "/provenance", ("created",), ("source", "revision", "run"))
        if prov is not None:
            if "source" in prov:
                c.string(prov["source"], "/provenance/source", "source", max_length=2048)
            if "revision" in prov:
                c.string(prov["revision"], "/provenance/revision", "revision")
            if "created" in prov:
                c.string(prov["created"], "/provenance/created", "created", valid=_real_date_time)
            if "run" in prov:
                c.string(prov["run"], "/provenance/run", "run", max_length=253)
    return c.problems


def contract_problems(doc: dict[str, Any]) -> list[str]:
    """The consumer-contract rules JSON Schema cannot say. Pure; ``doc`` passed the schema.

    (1) profileValues holds exactly ``<name>.<valuesProfile>.yaml`` for the six
    services; (2) config.tag and config.version equal version; (3) the
    appliance's line-based setter finds every key path it edits; (4) so does the
    in-cluster updater's (:func:`set_yaml_value`) for the image tags it sets on
    every upgrade (a path the first setter misses is reported once, by (3)).
    """
    c = _Checker()
    version, profile = doc["version"], doc["valuesProfile"]
    for key in ("tag", "version"):
        if doc["config"][key] != version:
            c.add(f"/config/{key}", f"must equal version {version}")
    values = doc["profileValues"]
    wanted = [f"{name}.{profile}.yaml" for name in SERVICES]
    for key in wanted:
        if key not in values:
            c.add(_pointer("/profileValues", key), f"is required for valuesProfile {profile}")
    for key in sorted(k for k in values if k not in wanted):
        c.add(_pointer("/profileValues", key), f"does not belong to valuesProfile {profile}")
    for name, paths in SETTER_PATHS.items():
        key = f"{name}.{profile}.yaml"
        if key not in values:
            continue
        for keypath in paths:
            try:
                set_yaml_scalar(values[key], keypath, '""')
            except ValueError:
                c.add(
                    _pointer("/profileValues", key),
                    f"has no {'.'.join(keypath)} for the appliance to set",
                )
                continue
            if keypath not in UPDATER_PATHS.get(name, ()):
                continue
            try:
                set_yaml_value(values[key], keypath, '""')
            except ValueError:
                c.add(
                    _pointer("/profileValues", key),
                    f"has {'.'.join(keypath)} where the in-cluster updater cannot set it (each "
                    "parent key must be a line ending in ':')",
                )
    return c.problems


def release_problems(doc: Any) -> list[str]:
    """Everything wrong with a release JSON: the schema's rules, then the contract's."""
    problems = schema_problems(doc)
    return problems if problems else contract_problems(doc)


def validate_release(doc: Any) -> dict[str, Any]:
    """Return ``doc`` when it is a valid release; raise :class:`InvalidRelease` otherwise."""
    problems = release_problems(doc)
    if problems:
        raise InvalidRelease(problems)
    assert isinstance(doc, dict)  # schema_problems reported it otherwise
    return doc


def parse_release(data: bytes) -> dict[str, Any]:
    """Parse and validate the config blob's bytes. Pure."""
    try:
        doc = parse_json(data, "the config blob")
    except ValueError as exc:
        raise InvalidRelease([f"(root): {exc}"]) from None
    return validate_release(doc)


# -- pure: rendering what the appliance applies --------------------------------------

_KEY_LINE = re.compile(f"^([{_JS_SPACE}]*)([A-Za-z0-9_-]+):(?:[{_JS_SPACE}]|$)")
_INDENT = re.compile(f"^[{_JS_SPACE}]*")


def set_yaml_scalar(text: str, path: Sequence[str], value: str) -> str:
    """Set ``path`` to the YAML scalar ``value`` with the appliance's line-based setter.

    This is a line-for-line port of ``setYamlScalar`` in the appliance's
    ``setup-engine.mjs`` so that what renders here renders there: keys match
    ``[A-Za-z0-9_-]+:``, nesting is tracked by indentation (a blank or
    comment line resets it, exactly as the appliance does), the first match
    is replaced by ``<indent><key>: <value>`` (a trailing comment is dropped),
    and a path that is not found raises ValueError.
    """
    output: list[str] = []
    stack: list[tuple[int, str]] = []
    replaced = False
    target = list(path)
    for line in re.split(r"\r?\n", text):
        match = _KEY_LINE.match(line)
        indent_match = _INDENT.match(line)
        indent = len(indent_match.group(0)) if indent_match else 0
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if match:
            key = match.group(2)
            parents = [entry[1] for entry in stack]
            if not replaced and parents == target[:-1] and key == target[-1]:
                output.append(f"{line[:indent]}{key}: {value}")
                replaced = True
                stack.append((indent, key))
                continue
            stack.append((indent, key))
        output.append(line)
    if not replaced:
        raise ValueError(f"Failed to update YAML value {'.'.join(target)}")
    return "\n".join(output)


_UPDATER_SPACE = (  # String.prototype.trim's WhiteSpace and LineTerminator, as characters
    "\t\n\v\f\r \u00a0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def set_yaml_value(text: str, path: Sequence[str], value: str) -> str:
    """Set ``path`` to the YAML scalar ``value`` with the in-cluster updater's setter.

    A port of ``setYamlValue`` in the appliance's ``appliance-status.yaml`` (the update
    Job that upgrades a running appliance), which differs from :func:`set_yaml_scalar`:
    a line's leading whitespace is its indentation and pops every open key at the same
    or a deeper one; only a line that *ends* in ``:`` (and does not start with ``- ``)
    opens a key -- the rest of the line, trimmed -- so ``image:  # note`` or ``image: ``
    opens nothing and hides the keys under it; every other line under the path's
    parents that starts with ``<last key>:`` is replaced by ``<indent><key>: <value>``
    (every such line, not only the first). No line replaced: ValueError.
    """
    target = list(path)
    parents, leaf = target[:-1], target[-1]
    output: list[str] = []
    stack: list[tuple[int, str]] = []
    replaced = False
    for line in re.split(r"\r?\n", text):
        indent_match = _INDENT.match(line)
        indent = len(indent_match.group(0)) if indent_match else 0
        stripped = line[indent:]
        while stack and indent <= stack[-1][0]:
            stack.pop()
        if stripped.endswith(":") and not stripped.startswith("- "):
            stack.append((indent, stripped[:-1].strip(_UPDATER_SPACE)))
            output.append(line)
            continue
        if [k for _, k in stack] == parents and stripped.startswith(f"{leaf}:"):
            replaced = True
            output.append(f"{line[:indent]}{leaf}: {value}")
            continue
        output.append(line)
    if not replaced:
        raise ValueError(f"Failed to update YAML value {'.'.join(target)}")
    return "\n".join(output)


def yaml_string(value: str) -> str:
    """A double-quoted YAML scalar (JSON's string form, as the appliance writes it)."""
    return json.dumps(str(value), ensure_ascii=False)


def render_oci_repository(
    release: Mapping[str, Any],
    *,
    name: str = "alga-appliance",
    namespace: str = FLUX_NAMESPACE,
    interval: str = "1m0s",
    trusted_keys: Sequence[TrustedKey | str] = (),
) -> dict[str, Any]:
    """The Flux OCIRepository the appliance applies: the config bundle pinned by digest.

    With ``trusted_keys``, ``spec.verify`` has source-controller check the bundle's cosign
    signature (provider ``cosign``, a static key: no transparency log) against the
    ``*.pub`` entries of the Secret :data:`TRUSTED_KEYS_SECRET` in the same namespace
    (:func:`render_trusted_keys_secret`): one key that verifies is enough.
    """
    spec: dict[str, Any] = {
        "interval": interval,
        "url": f"oci://{release['config']['repository']}",
        "ref": {"digest": release["config"]["digest"]},
    }
    if trusted_key_set(trusted_keys):
        spec["verify"] = {"provider": "cosign", "secretRef": {"name": TRUSTED_KEYS_SECRET}}
    return {
        # v1, as the appliance's setup-engine writes it: served from Flux 2.6 on; v1beta2
        # was removed in Flux 2.8 (source-controller 1.8.0)
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def trusted_key_entry(key: TrustedKey) -> str:
    """The Secret key a trusted key is stored under: ``sha256-<16 hex>.pub`` (its key id)."""
    return key.key_id.replace(":", "-", 1) + ".pub"


def render_trusted_keys_secret(
    trusted_keys: Sequence[TrustedKey | str], *, namespace: str = FLUX_NAMESPACE
) -> dict[str, Any]:
    """The Secret Flux verifies with: each trusted key's PEM under ``<key id>.pub``.

    Flux reads a verification Secret from the namespace of the object that verifies
    (source-controller: the OCIRepository's or the HelmChart's, which helm-controller
    creates in the namespace of the chart's HelmRepository): ``flux-system`` for
    ``OCIRepository alga-appliance`` and for the bundle's charts alike.
    Raises :class:`BadInput` for no key or more than two.
    """
    keys = trusted_key_set(trusted_keys)
    if not keys:
        raise BadInput("no trusted key: nothing for Flux to verify with")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": TRUSTED_KEYS_SECRET, "namespace": namespace},
        "type": "Opaque",
        "data": {
            trusted_key_entry(key): base64.b64encode(key.pem().encode("ascii")).decode("ascii")
            for key in keys
        },
    }


def render_kustomization(
    release: Mapping[str, Any],
    *,
    name: str = "alga-appliance",
    namespace: str = "flux-system",
    interval: str = "5m0s",
    path: str = "./base",
) -> dict[str, Any]:
    """The Flux Kustomization the appliance applies: ``./base`` of the bundle, pruned."""
    del release  # the same for every release; the parameter keeps the helpers uniform
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "interval": interval,
            "path": path,
            "prune": True,
            "sourceRef": {"kind": "OCIRepository", "name": name},
        },
    }


def image_references(release: Mapping[str, Any]) -> dict[str, str]:
    """What each ``image.tag`` value is set to: the bare tag, or with ``imageDigests``
    ``<tag>@sha256:<hex>`` -- the charts build ``<repository>:<tag>``, so the image is
    ``<repository>:<tag>@sha256:<hex>``, which Kubernetes pulls by the digest alone."""
    digests = release.get("imageDigests")
    return {
        key: f"{release['images'][key]}@{digests[key]}" if digests else str(release["images"][key])
        for key in IMAGE_KEYS
    }


def render_values(release: Mapping[str, Any]) -> dict[str, str]:
    """The six profile values texts with the image tags injected, keyed as in profileValues.

    With ``imageDigests`` each tag is pinned by its digest (see :func:`image_references`).
    Raises ValueError (naming the path) when the setter does not find a key path.
    """
    profile = release["valuesProfile"]
    images = image_references(release)
    values: dict[str, str] = {}
    for name in SERVICES:
        key = f"{name}.{profile}.yaml"
        text = release["profileValues"].get(key)
        if not isinstance(text, str):
            raise ValueError(f'Release manifest is missing profileValues["{key}"].')
        values[key] = text
    for name, path, image in IMAGE_TAG_PATHS:
        key = f"{name}.{profile}.yaml"
        values[key] = set_yaml_scalar(values[key], path, yaml_string(images[image]))
    return {key: text if text.endswith("\n") else text + "\n" for key, text in values.items()}


def render_values_configmaps(
    release: Mapping[str, Any], *, namespace: str = "alga-system"
) -> list[dict[str, Any]]:
    """The six ``appliance-values-<name>`` ConfigMaps, in the appliance's order."""
    profile = release["valuesProfile"]
    values = render_values(release)
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"appliance-values-{name}", "namespace": namespace},
            "data": {f"{name}.{profile}.yaml": values[f"{name}.{profile}.yaml"]},
        }
        for name in SERVICES
    ]


def render_all(
    release: Mapping[str, Any], *, trusted_keys: Sequence[TrustedKey | str] = ()
) -> list[dict[str, Any]]:
    """What the appliance applies for a release: six ConfigMaps, (with ``trusted_keys``) the
    Secret of trusted keys, the source (verifying the bundle with them), the Kustomization."""
    keys = trusted_key_set(trusted_keys)
    return [
        *render_values_configmaps(release),
        *([render_trusted_keys_secret(keys)] if keys else []),
        render_oci_repository(release, trusted_keys=keys),
        render_kustomization(release),
    ]


# -- transport ----------------------------------------------------------------------------


class Transport(Protocol):
    """One HTTP exchange, no redirects followed, at most ``limit`` + 1 body bytes read.

    Implementations raise :class:`RegistryUnreachable` when no response arrives
    (``retryable`` False for TLS verification failures) and return every response,
    whatever its status. A body longer than ``limit`` may be cut at ``limit`` + 1
    bytes, and one whose ``Content-Length`` exceeds ``limit`` may be left unread.
    """

    def request(
        self, method: str, url: str, headers: Mapping[str, str], limit: int
    ) -> Response: ...


_TLS_HINT = "the registry's certificate is not trusted; pass --ca-file PEM for a private CA"


def _remaining(deadline: float) -> float:
    """Seconds left before ``deadline`` (monotonic); TimeoutError once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


class _DeadlineSocket:
    """A connected socket whose every blocking call ends by one deadline per request.

    ``http.client`` reads the status line, the headers and the body through
    ``makefile()``; a plain socket timeout bounds each ``recv`` alone, so a server
    dripping a byte just inside it could hold a request for ever. Here each ``recv``
    and ``sendall`` gets only what is left of the request's deadline.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deadline = time.monotonic()
        self.readers = 0
        self.closing = False

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        del mode, args, kwargs  # http.client only ever asks for "rb"
        self.readers += 1
        return io.BufferedReader(_DeadlineReader(self))

    def sendall(self, data: bytes, *args: Any) -> None:
        self.sock.settimeout(_remaining(self.deadline))
        self.sock.sendall(data, *args)

    def close(self) -> None:
        # As socket.makefile does: an open response still reads from it (http.client
        # closes the connection as soon as a response says it will close).
        self.closing = True
        if self.readers == 0:
            self.sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class _DeadlineReader(io.RawIOBase):
    def __init__(self, owner: _DeadlineSocket) -> None:
        self.owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.owner.sock.settimeout(_remaining(self.owner.deadline))
        return self.owner.sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self.owner.readers -= 1
            if self.owner.closing and self.owner.readers == 0:
                self.owner.sock.close()
        super().close()


class HttpTransport:
    """The real transport: ``http.client`` over TLS (verified) with keep-alive per origin.

    One deadline (``timeout``) covers each request as a whole: connecting, the TLS
    handshake, sending, the response headers and the body. A body that ends before its
    ``Content-Length`` is a lost connection (:class:`RegistryUnreachable`), never a body.
    """

    def __init__(self, *, ca_file: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._ca_file = ca_file
        self._tls: ssl.SSLContext | None = None
        if ca_file is not None:
            self._tls = self._tls_context()  # a bad CA file is refused before any request
        self._pool: dict[tuple[str, str, int], http.client.HTTPConnection] = {}

    def _tls_context(self) -> ssl.SSLContext:
        import ssl

        try:
            return ssl.create_default_context(cafile=self._ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise BadInput(f"cannot read the CA file {self._ca_file}: {exc}") from None

    @property
    def _context(self) -> ssl.SSLContext:
        """The TLS context, made on the first https connection: loading the system's
        roots costs about 20 ms, which a resolve over plain HTTP (loopback) never needs."""
        if self._tls is None:
            self._tls = self._tls_context()
        return self._tls

    def close(self) -> None:
        for conn in self._pool.values():
            conn.close()
        self._pool.clear()

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        import http.client

        key = (scheme, host, port)
        conn = self._pool.get(key)
        if conn is not None:
            return conn
        if scheme == "https":
            conn = http.client.HTTPSConnection(
                host, port, timeout=self.timeout, context=self._context
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        self._pool[key] = conn
        return conn

    def _drop(self, key: tuple[str, str, int]) -> None:
        conn = self._pool.pop(key, None)
        if conn is not None:
            conn.close()

    def request(self, method: str, url: str, headers: Mapping[str, str], limit: int) -> Response:
        import http.client
        import ssl  # loaded by http.client anyway

        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        key = (scheme, host, port)
        where = f"{method} {scheme}://{parts.netloc}{parts.path}"
        for attempt in (0, 1):
            conn = self._connection(scheme, host, port)
            # The deadline bounds the whole request, every phase of it, so a registry
            # that drips a byte at a time cannot hold a resolve.
            deadline = time.monotonic() + self.timeout
            sock = conn.sock
            reused = sock is not None
            try:
                if not isinstance(sock, _DeadlineSocket):
                    if sock is not None:
                        sock.close()
                    sock = self._open(scheme, host, port, deadline)
                    # http.client only calls sendall, makefile and close on it.
                    conn.sock = sock
                sock.deadline = deadline
                conn.request(method, target, headers=dict(headers))
                resp = conn.getresponse()
                return self._read(resp, method, limit, key, deadline, where)
            except ssl.SSLCertVerificationError as exc:
                self._drop(key)
                raise RegistryUnreachable(
                    f"{where}: TLS verification failed ({exc.verify_message})",
                    hint=_TLS_HINT,
                    retryable=False,
                ) from None
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self._drop(key)
                if reused and attempt == 0:
                    continue  # the server closed an idle keep-alive connection: one fresh try
                raise RegistryUnreachable(
                    f"{where}: connection lost ({type(exc).__name__})"
                ) from None
            except TimeoutError:
                self._drop(key)
                raise RegistryUnreachable(f"{where}: timed out after {self.timeout:g}s") from None
            except (OSError, http.client.HTTPException) as exc:
                self._drop(key)
                reason = (
                    exc.strerror
                    if isinstance(exc, OSError) and exc.strerror
                    else type(exc).__name__
                )
                raise RegistryUnreachable(f"{where}: {reason}") from None
        raise RegistryUnreachable(f"{where}: connection lost")  # pragma: no cover

    def _open(self, scheme: str, host: str, port: int, deadline: float) -> _DeadlineSocket:
        """Connect (and shake hands) within what is left of ``deadline``."""
        sock = socket.create_connection((host, port), _remaining(deadline))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                sock.settimeout(_remaining(deadline))  # the whole handshake, in _ssl
                sock = self._context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        return _DeadlineSocket(sock)

    def _read(
        self,
        resp: http.client.HTTPResponse,
        method: str,
        limit: int,
        key: tuple[str, str, int],
        deadline: float,
        where: str,
    ) -> Response:
        headers: dict[str, str] = {}
        for name, value in resp.getheaders():
            lname = name.lower()
            headers[lname] = f"{headers[lname]}, {value}" if lname in headers else value
        length = headers.get("content-length")
        if method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200:
            resp.read()
            body = b""
        elif length is not None and _DIGITS.fullmatch(length) and int(length) > limit:
            self._drop(key)  # do not read what we would refuse anyway
            return Response(resp.status, headers, b"")
        else:
            parts: list[bytes] = []
            total = 0
            while total <= limit:
                if time.monotonic() > deadline:
                    raise TimeoutError
                chunk = resp.read1(min(65536, limit + 1 - total)) if total <= limit else b""
                if not chunk:
                    break
                parts.append(chunk)
                total += len(chunk)
            body = b"".join(parts)
            if len(body) > limit or (not resp.isclosed() and resp.read(1)):
                self._drop(key)
                return Response(resp.status, headers, body[: limit + 1])
            if length is not None and _DIGITS.fullmatch(length) and len(body) < int(length):
                # Closed before Content-Length: a lost connection (retried), even when the
                # bytes that did arrive happen to match a digest.
                self._drop(key)
                raise RegistryUnreachable(
                    f"{where}: connection lost mid-body ({len(body)} of {length} bytes)"
                )
        if resp.will_close:
            self._drop(key)
        return Response(resp.status, headers, body)


# -- caches --------------------------------------------------------------------------------


class Cache(Protocol):
    """Where the last good releases and the auth state are kept between resolves."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, doc: dict[str, Any]) -> None: ...


class MemoryCache:
    """A cache held in memory (tests, or one process resolving many times)."""

    def __init__(self, doc: dict[str, Any] | None = None) -> None:
        self.doc = json.loads(json.dumps(doc)) if doc is not None else None

    def load(self) -> dict[str, Any] | None:
        return json.loads(json.dumps(self.doc)) if self.doc is not None else None

    def save(self, doc: dict[str, Any]) -> None:
        self.doc = json.loads(json.dumps(doc))


class FileCache:
    """A JSON cache file (mode 0600, replaced atomically); the JavaScript twin reads the same file.

    It holds bearer tokens, so keep it where only the appliance's service user
    can read it. A missing, unreadable or corrupt file is an empty cache.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        try:
            with open(self.path, "rb") as fh:
                doc = parse_json(fh.read(MAX_BYTES * 8), "the cache")
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def save(self, doc: dict[str, Any]) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=".release-cache-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, sort_keys=True, separators=(",", ":"))
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def _empty_state() -> dict[str, Any]:
    return {"schema": CACHE_SCHEMA, "releases": {}, "challenges": {}, "tokens": {}, "sequences": {}}


def _normalise_state(doc: dict[str, Any] | None) -> dict[str, Any]:
    state = _empty_state()
    if isinstance(doc, dict) and doc.get("schema") == CACHE_SCHEMA:
        for name in ("releases", "challenges", "tokens", "sequences"):
            if isinstance(doc.get(name), dict):
                state[name] = doc[name]
    return state


@dataclass(frozen=True)
class _Outcome:
    """A verified release and where its bytes came from."""

    manifest: bytes
    info: ManifestInfo
    config: bytes
    release: dict[str, Any]
    cached: bool = False
    stale: bool = False
    #: The signature that vouched for the manifest (kept for re-checks offline), and its key.
    signature: Signature | None = None
    signed_by: str | None = None
    #: The channel statement that vouched for the channel (a channel resolve with keys).
    statement: _Statement | None = None
    #: The statement cached with this entry, as stored (checked only when it is used).
    cached_statement: Any = None


@dataclass(frozen=True)
class _Statement:
    """A channel statement whose bytes and signature were verified."""

    info: StatementInfo
    manifest: bytes
    config: bytes
    doc: dict[str, Any]
    signature: Signature
    signed_by: str

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.info.digest,
            "sequence": self.doc["sequence"],
            "issuedAt": self.doc["issuedAt"],
            "expiresAt": self.doc["expiresAt"],
            "signedBy": self.signed_by,
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64")
    return base64.b64decode(text.encode("ascii"), validate=True)


def _timestamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


def verify_cached(entry: Any) -> _Outcome | None:
    """Re-verify a cache entry from its bytes (digests, media types, rules); None if unusable."""
    if not isinstance(entry, dict):
        return None
    try:
        manifest = _unb64(entry.get("manifest"))
        config = _unb64(entry.get("config"))
        digest = entry.get("manifestDigest")
        if not isinstance(digest, str) or not is_digest(digest):
            return None
        info = verify_manifest(
            manifest, content_type=str(entry.get("mediaType") or ""), expected_digest=digest
        )
        verify_blob(config, info.config_digest, info.config_size)
        release = parse_release(config)
        signature = _cached_signature(entry.get("signature"))
    except (ValueError, binascii.Error, ConsumeError):
        return None
    return _Outcome(
        manifest,
        info,
        config,
        release,
        cached=True,
        signature=signature,
        cached_statement=entry.get("statement"),
    )


def _cached_statement(entry: Any, keys: Sequence[TrustedKey]) -> _Statement | None:
    """A cached statement re-verified from its bytes under ``keys``; None if unusable."""
    if not isinstance(entry, dict) or not keys:
        return None
    try:
        manifest, config = _unb64(entry.get("manifest")), _unb64(entry.get("config"))
        digest = entry.get("digest")
        if not isinstance(digest, str) or not is_digest(digest):
            return None
        info = verify_statement_manifest(manifest, expected_digest=digest)
        verify_blob(config, info.config_digest, info.config_size)
        signature = _cached_signature(entry.get("signature"))
        if signature is None:
            return None
        what = f"the cached channel statement {digest}"
        _sig, signed_by = _accepted([signature], digest, keys, what=what)
        doc = parse_statement(config)
    except (ValueError, binascii.Error, ConsumeError):
        return None
    return _Statement(info, manifest, config, doc, signature, signed_by)


def _cached_signature(entry: Any) -> Signature | None:
    """A cached signature (payload and base64 signature); None when absent or unusable."""
    if not isinstance(entry, dict) or not isinstance(entry.get("signature"), str):
        return None
    try:
        return Signature(_unb64(entry.get("payload")), entry["signature"])
    except (ValueError, binascii.Error):
        return None


def _signature_entry(signature: Signature | None) -> dict[str, Any] | None:
    if signature is None or signature.payload is None or signature.signature is None:
        return None
    return {"payload": _b64(signature.payload), "signature": signature.signature}


def _last_sequence(state: dict[str, Any], key: str, channel: str) -> int | None:
    """The highest statement sequence accepted for ``channel`` of ``key`` (None: none yet)."""
    sequences = state["sequences"].get(key)
    value: Any = sequences.get(channel) if isinstance(sequences, dict) else None
    return int(value) if _is_int(value) else None


def _find_cached(state: dict[str, Any], key: str, target: Ref) -> _Outcome | None:
    """The cached release for ``target`` (for a digest: any entry holding that manifest)."""
    entries = state["releases"].get(key)
    if not isinstance(entries, dict):
        return None
    if target.kind == "digest":
        for entry in entries.values():
            if isinstance(entry, dict) and entry.get("manifestDigest") == target.value:
                return verify_cached(entry)
        return None
    return verify_cached(entries.get(target.value))


_MAX_ENTRIES = 16  # per repository; channels are few, pinned versions and digests accumulate


def _remember(state: dict[str, Any], key: str, ref: str, outcome: _Outcome, now: float) -> None:
    """Record a verified release under ``ref``; drop expired tokens and the oldest entries."""
    entries = state["releases"].get(key)
    if not isinstance(entries, dict):
        entries = state["releases"][key] = {}
    entries[ref] = {
        "manifestDigest": outcome.info.digest,
        "mediaType": outcome.info.media_type,
        "manifest": _b64(outcome.manifest),
        "config": _b64(outcome.config),
        "resolvedAt": _timestamp(now),
    }
    signature = _signature_entry(outcome.signature)
    if signature is not None:
        entries[ref]["signature"] = signature
    if outcome.statement is not None:
        statement = outcome.statement
        entries[ref]["statement"] = {
            "digest": statement.info.digest,
            "manifest": _b64(statement.manifest),
            "config": _b64(statement.config),
            "signature": _signature_entry(statement.signature),
        }
        sequences = state["sequences"].setdefault(key, {})
        if not isinstance(sequences, dict):
            sequences = state["sequences"][key] = {}
        sequences[ref] = max(statement.doc["sequence"], _last_sequence(state, key, ref) or 0)
    while len(entries) > _MAX_ENTRIES:
        oldest = min(
            (k for k in entries if k not in CHANNELS and k != ref),
            key=lambda k: (
                str(entries[k].get("resolvedAt", "")) if isinstance(entries[k], dict) else ""
            ),
        )
        del entries[oldest]
    state["tokens"] = {
        k: v
        for k, v in state["tokens"].items()
        if isinstance(v, dict)
        and isinstance(v.get("expiresAt"), (int, float))
        and v["expiresAt"] > now
    }


# -- the resolver: auth, redirects, retries ---------------------------------------------------

_CHALLENGE_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")


def parse_challenge(header: str) -> dict[str, str] | None:
    """The first challenge of a ``WWW-Authenticate`` header: {"scheme", "realm", "service", ...}."""
    header = (header or "").strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    out = {"scheme": scheme.lower()}
    for match in _CHALLENGE_PARAM.finditer(rest):
        name, value = match.group(1).lower(), match.group(2)
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if name != "scheme":
            out.setdefault(name, value)
    return out


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def _check_url(url: str, what: str, insecure_hosts: Sequence[str] = ()) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return
    host = parts.netloc.rsplit("@", 1)[-1]
    if parts.scheme == "http" and (is_loopback(host) or host in insecure_hosts):
        return
    raise DownloadError(
        f"refusing {what} over {parts.scheme or 'no scheme'}: {parts.scheme}://{parts.hostname}",
        hint="only https (or plain http to a loopback host) is allowed",
    )


class _Session:
    """One resolve's conversation with a registry: auth state, retries, redirects, counts."""

    def __init__(
        self,
        transport: Transport,
        *,
        registry: str,
        repository: str,
        scheme: str,
        credentials: Credentials | None,
        state: dict[str, Any],
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        attempts: int,
        token_realm: str | None,
        token_service: str | None,
        insecure_hosts: Sequence[str] = (),
    ) -> None:
        self.transport = transport
        self.insecure_hosts = tuple(insecure_hosts)
        self.registry = registry
        self.repository = repository
        self.base = f"{scheme}://{registry}"
        self.credentials = credentials
        self.state = state
        self.clock = clock
        self.sleep = sleep
        self.attempts = max(1, attempts)
        self.scope = f"repository:{repository}:pull"
        self.requests = 0
        self.token: str | None = None
        self.basic = False
        self.challenge: dict[str, str] | None = None
        known = state["challenges"].get(registry)
        if token_realm:
            known = {"scheme": "bearer", "realm": token_realm, "service": token_service or registry}
        elif not isinstance(known, dict) and registry == "ghcr.io":
            known = {"scheme": "bearer", "realm": "https://ghcr.io/token", "service": "ghcr.io"}
        if isinstance(known, dict):
            if known.get("scheme") == "basic":
                self.basic = credentials is not None
            elif known.get("scheme") == "bearer" and isinstance(known.get("realm"), str):
                self.challenge = {k: str(v) for k, v in known.items()}
                self.token = self._cached_token()

    # -- auth state ---------------------------------------------------------

    def _token_key(self) -> str:
        assert self.challenge is not None
        user = self.credentials.username if self.credentials else ""
        return "|".join(
            (self.challenge["realm"], self.challenge.get("service", ""), self.scope, user)
        )

    def _cached_token(self) -> str | None:
        entry = self.state["tokens"].get(self._token_key())
        if not isinstance(entry, dict):
            return None
        token, expires = entry.get("token"), entry.get("expiresAt")
        if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
            return None
        if not isinstance(expires, (int, float)) or expires - _TOKEN_MARGIN <= self.clock():
            return None
        return token

    def _authorization(self) -> dict[str, str]:
        if self.token is not None:
            return {"Authorization": f"Bearer {self.token}"}
        if self.basic and self.credentials is not None:
            return {"Authorization": self.credentials.basic_header()}
        return {}

    def _fetch_token(self, *, optimistic: bool) -> bool:
        """Ask the token service for a pull token. False when an optimistic guess was wrong."""
        assert self.challenge is not None
        realm = self.challenge["realm"]
        _check_url(realm, "the token service", self.insecure_hosts)
        query = {"scope": self.scope}
        if self.challenge.get("service"):
            query = {"service": self.challenge["service"], "scope": self.scope}
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        headers = {"Accept": "application/json"}
        if self.credentials is not None:
            headers["Authorization"] = self.credentials.basic_header()
        resp = self._retrying("GET", url, headers, MAX_BYTES, follow=True)
        if resp.status in (401, 403):
            who = f"as {self.credentials.username}" if self.credentials else "anonymously"
            raise AuthError(
                f"the token service refused a pull token for {self.registry}/{self.repository}"
                f" {who} ({resp.status})",
                hint="check the credentials"
                if self.credentials
                else "the package may be private: make it public, or pass credentials",
            )
        if resp.status != 200:
            if optimistic:
                return False
            raise DownloadError(f"the token service answered {resp.status}")
        try:
            body = parse_json(resp.body, "the token response")
        except ValueError:
            if optimistic:
                return False
            raise DownloadError("the token service's answer is not JSON") from None
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
            if optimistic:
                return False
            raise DownloadError("the token service's answer holds no usable token")
        expires_in = body.get("expires_in")
        lifetime = _MIN_TOKEN_LIFETIME
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
            lifetime = max(float(expires_in), _MIN_TOKEN_LIFETIME)
        self.token = token
        self.state["tokens"][self._token_key()] = {
            "token": token,
            "expiresAt": self.clock() + lifetime,
        }
        self.state["challenges"][self.registry] = dict(self.challenge)
        return True

    def _authenticate(self, resp: Response) -> None:
        challenge = parse_challenge(resp.headers.get("www-authenticate", ""))
        if challenge is not None and challenge["scheme"] == "basic":
            if self.credentials is None:
                raise AuthError(
                    f"{self.registry} requires credentials (Basic auth)",
                    hint=f"set {ENV_USERNAME} and {ENV_PASSWORD}",
                )
            self.basic, self.token = True, None
            self.state["challenges"][self.registry] = {"scheme": "basic"}
            return
        if challenge is not None and challenge["scheme"] != "bearer":
            raise AuthError(f"{self.registry} asks for unsupported auth {challenge['scheme']!r}")
        if challenge is None or not challenge.get("realm"):
            # No usable challenge: the token endpoint where ghcr.io serves it.
            challenge = {
                "scheme": "bearer",
                "realm": f"{self.base}/token",
                "service": self.registry,
            }
        self.challenge = {k: v for k, v in challenge.items() if k in ("scheme", "realm", "service")}
        self.token = None
        self._fetch_token(optimistic=False)

    # -- HTTP ----------------------------------------------------------------

    def _hop(self, method: str, url: str, headers: Mapping[str, str], limit: int) -> Response:
        self.requests += 1
        return self.transport.request(method, url, headers, limit)

    def _follow(
        self, method: str, url: str, headers: Mapping[str, str], limit: int, *, follow: bool
    ) -> Response:
        """One request, following redirects; Authorization never leaves its origin."""
        origin = _origin(url)
        current = dict(headers)
        for _ in range(MAX_REDIRECTS + 1):
            resp = self._hop(method, url, current, limit)
            location = resp.headers.get("location")
            if not follow or resp.status not in (301, 302, 303, 307, 308) or not location:
                return resp
            url = urllib.parse.urljoin(url, location)
            _check_url(url, "a redirect", self.insecure_hosts)
            if _origin(url) != origin:
                current = {k: v for k, v in current.items() if k.lower() != "authorization"}
        raise DownloadError(f"more than {MAX_REDIRECTS} redirects for {method} {url.split('?')[0]}")

    def _retrying(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        limit: int,
        *,
        follow: bool,
        expect_size: int | None = None,
    ) -> Response:
        """Bounded retries with backoff on 429, 5xx and connection errors.

        With ``expect_size`` (a descriptor's size), a 200 body that ends short of it
        without a ``Content-Length`` (a close-delimited body cut off) is a lost
        connection too, retried like one: truncation is transient, never tampering.
        """
        last, delay = "", 0.0
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(delay)
            delay = min(_BASE_DELAY * 2**attempt, _MAX_DELAY)
            try:
                resp = self._follow(method, url, headers, limit, follow=follow)
            except RegistryUnreachable as exc:
                if not exc.retryable:
                    raise
                last = exc.message
                continue
            if _truncated(resp, expect_size):
                last = (
                    f"{method} {url.split('?')[0]}: the body ended after {len(resp.body)} of "
                    f"{expect_size} bytes"
                )
                continue
            if resp.status not in _RETRY_STATUSES:
                return resp
            last = f"{method} {url.split('?')[0]} answered {resp.status}"
            retry_after = resp.headers.get("retry-after", "")
            if _DIGITS.fullmatch(retry_after):
                delay = min(float(retry_after), _MAX_DELAY)
        raise RegistryUnreachable(
            f"{self.registry} cannot be reached after {self.attempts} attempts: {last}",
            hint="check the network and the registry's status; the appliance will retry",
        )

    def registry_request(
        self,
        method: str,
        path: str,
        accept: str | None,
        limit: int,
        *,
        follow: bool,
        expect_size: int | None = None,
    ) -> Response:
        """A request to the registry, authenticated as it asks (at most one challenge round)."""
        url = self.base + path
        need_token = self.token is None and not self.basic and self.challenge is not None
        if need_token and not self._fetch_token(optimistic=True):
            self.challenge = None  # the guessed or cached realm was wrong: ask the registry
        answered_challenge = False
        while True:
            headers = {"User-Agent": USER_AGENT, **self._authorization()}
            if accept:
                headers["Accept"] = accept
            resp = self._retrying(
                method, url, headers, limit, follow=follow, expect_size=expect_size
            )
            if resp.status == 401 and not answered_challenge:
                answered_challenge = True
                self._authenticate(resp)
                continue
            if resp.status in (401, 403):
                raise AuthError(
                    f"{self.registry} refused {method} {path} ({resp.status}) after authenticating",
                    hint="check the credentials and that the package is readable by them",
                )
            return resp


def _truncated(resp: Response, expect_size: int | None) -> bool:
    """A 200 body shorter than its descriptor says, with no Content-Length to have kept."""
    return (
        expect_size is not None
        and resp.status == 200
        and len(resp.body) < expect_size
        and "content-length" not in resp.headers
    )


def _content_length(resp: Response) -> int | None:
    value = resp.headers.get("content-length", "").strip()
    return int(value) if _DIGITS.fullmatch(value) else None


def _header_digest(resp: Response) -> str | None:
    value = resp.headers.get("docker-content-digest", "").strip()
    return value if is_digest(value) else None


def _fetch_release(
    session: _Session, target: Ref, cached: _Outcome | None, keys: Sequence[TrustedKey]
) -> _Outcome:
    """Fetch and verify the manifest, its signature and the config blob, or confirm the cache."""
    where = f"{session.registry}/{session.repository}"
    manifests = f"/v2/{session.repository}/manifests/"
    manifest_ref, expected_digest, expected_size = target.value, None, None
    if target.kind == "digest":
        expected_digest = target.value
    elif cached is not None:
        head = session.registry_request(
            "HEAD", manifests + target.value, MANIFEST_ACCEPT, 0, follow=False
        )
        if head.status == 404:
            raise NotFound(f"{where}:{target.value} does not exist")
        if head.status != 200:
            raise DownloadError(f"HEAD {where}:{target.value} answered {head.status}")
        remote = _header_digest(head)
        if cache_decision(cached.info.digest, remote, reachable=True) == "hit":
            return _vouched(session, cached, keys)
        if remote is not None:
            # Fetch exactly what the HEAD named, even if the tag moves meanwhile.
            manifest_ref, expected_digest, expected_size = remote, remote, _content_length(head)
    resp = session.registry_request(
        "GET",
        manifests + manifest_ref,
        MANIFEST_ACCEPT,
        MAX_BYTES,
        follow=True,
        expect_size=expected_size,
    )
    if resp.status == 404:
        raise NotFound(
            f"{where}{'@' if ':' in manifest_ref else ':'}{manifest_ref} does not exist",
            hint="check the channel or version; nightly and stable are the channels",
        )
    if resp.status != 200:
        raise DownloadError(f"GET {where} manifest {manifest_ref} answered {resp.status}")
    length = _content_length(resp)
    if (length is not None and length > MAX_BYTES) or len(resp.body) > MAX_BYTES:
        raise SizeLimitExceeded(f"the manifest {manifest_ref} is larger than {MAX_BYTES} bytes")
    info = verify_manifest(
        resp.body,
        content_type=resp.headers.get("content-type"),
        header_digest=_header_digest(resp),
        expected_digest=expected_digest,
        expected_size=expected_size,
    )
    # Trust before content: the signature is checked before the release JSON is read.
    signature, signed_by = _fetch_signature(session, info.digest, keys) if keys else (None, None)
    if cached is not None and cached.info.config_digest == info.config_digest:
        config = cached.config  # already verified against this very digest
    else:
        config = _fetch_blob(session, info.config_digest, info.config_size, of=info.digest)
    release = parse_release(config)
    if target.kind == "version" and release["version"] != target.value:
        raise InvalidRelease(
            [f"/version: the tag {target.value} holds release version {release['version']}"]
        )
    return _Outcome(resp.body, info, config, release, signature=signature, signed_by=signed_by)


def _fetch_blob(session: _Session, digest: str, size: int, *, of: str) -> bytes:
    """A blob's bytes (``of`` names the manifest), checked against its descriptor."""
    where = f"{session.registry}/{session.repository}"
    blob = session.registry_request(
        "GET", f"/v2/{session.repository}/blobs/{digest}", None, size, follow=True, expect_size=size
    )
    if blob.status == 404:
        raise IncompleteRelease(
            f"{where}@{of} names blob {digest}, which the registry lacks",
            hint="the release was not pushed completely; republish it",
        )
    if blob.status != 200:
        raise DownloadError(f"GET {where} blob {digest} answered {blob.status}")
    length = _content_length(blob)
    if length is not None and length > MAX_BYTES:
        raise SizeLimitExceeded(f"blob {digest} is {length} bytes, above the {MAX_BYTES}-byte cap")
    if len(blob.body) > size or (length is not None and length != size):
        raise DigestMismatch(
            f"blob {digest} is served as {max(length or 0, len(blob.body))} bytes, "
            f"the manifest says {size}",
            hint="the registry or something between us served altered content; do not trust it",
        )
    verify_blob(blob.body, digest, size)
    return blob.body


def _what(session: _Session, digest: str) -> str:
    return f"{session.registry}/{session.repository}@{digest}"


def _fetch_signature(
    session: _Session, digest: str, keys: Sequence[TrustedKey], *, what: str | None = None
) -> tuple[Signature, str]:
    """Download ``digest``'s cosign signatures and pick the one a trusted key made.

    The ``.sig`` manifest and each simple-signing payload are bounded and checked
    against their digests; a payload that is not the bytes its descriptor names is
    a :class:`BadSignature` for that layer, and :func:`check_signatures` decides.
    """
    what = what or _what(session, digest)
    resp = session.registry_request(
        "GET",
        f"/v2/{session.repository}/manifests/{signature_tag(digest)}",
        MANIFEST_ACCEPT,
        MAX_SIGNATURE_MANIFEST,
        follow=True,
    )
    if resp.status == 404:
        return _accepted([], digest, keys, what=what)  # raises Unsigned
    if resp.status != 200:
        raise DownloadError(f"GET {what} signatures answered {resp.status}")
    length = _content_length(resp)
    if length is not None and length > MAX_SIGNATURE_MANIFEST:
        raise BadSignature(
            f"{what}: the signature manifest is {length} bytes, above the "
            f"{MAX_SIGNATURE_MANIFEST}-byte cap"
        )
    signatures: list[Signature] = []
    for layer in signature_layers(resp.body, header_digest=_header_digest(resp))[:MAX_SIGNATURES]:
        if layer.size > MAX_PAYLOAD:
            problem = f"a signature payload is announced as {layer.size} bytes (cap {MAX_PAYLOAD})"
            signatures.append(Signature(None, layer.signature, problem))
            continue
        try:
            payload = _fetch_blob(session, layer.digest, layer.size, of=signature_tag(digest))
        except (DigestMismatch, SizeLimitExceeded, IncompleteRelease) as exc:
            signatures.append(Signature(None, layer.signature, f"a signature payload: {exc}"))
            continue
        signatures.append(Signature(payload, layer.signature))
    return _accepted(signatures, digest, keys, what=what)


def _fetch_statement(
    session: _Session, channel: str, keys: Sequence[TrustedKey], cached: _Statement | None
) -> _Statement:
    """The channel's statement, its bytes and signature verified (not yet its claims).

    With a cached statement, a ``HEAD`` says whether it is still the current one
    (then nothing is downloaded); otherwise the manifest, its signature and its
    config blob are fetched and checked.
    """
    where = f"{session.registry}/{session.repository}:{statement_tag(channel)}"
    path = f"/v2/{session.repository}/manifests/{statement_tag(channel)}"
    missing = StatementMissing(
        f"{where} does not exist: channel {channel} has no signed statement",
        hint="with trusted keys, a channel is followed only while a signed statement vouches "
        "for it; the publisher writes one with every channel move",
    )
    ref, expected = statement_tag(channel), None
    if cached is not None:
        head = session.registry_request("HEAD", path, MANIFEST_ACCEPT, 0, follow=False)
        if head.status == 404:
            raise missing
        if head.status != 200:
            raise DownloadError(f"HEAD {where} answered {head.status}")
        remote = _header_digest(head)
        if remote == cached.info.digest:
            return cached
        if remote is not None:
            ref, expected = remote, remote
    resp = session.registry_request(
        "GET",
        f"/v2/{session.repository}/manifests/{ref}",
        MANIFEST_ACCEPT,
        MAX_STATEMENT,
        follow=True,
    )
    if resp.status == 404:
        raise missing
    if resp.status != 200:
        raise DownloadError(f"GET {where} answered {resp.status}")
    info = verify_statement_manifest(
        resp.body, header_digest=_header_digest(resp), expected_digest=expected
    )
    what = f"the channel statement {where}@{info.digest}"
    signature, signed_by = _fetch_signature(session, info.digest, keys, what=what)
    config = _fetch_blob(session, info.config_digest, info.config_size, of=info.digest)
    return _Statement(info, resp.body, config, parse_statement(config), signature, signed_by)


def _with_statement(
    session: _Session,
    channel: str,
    outcome: _Outcome,
    keys: Sequence[TrustedKey],
    *,
    last_sequence: int | None,
    now: float,
    previous: _Outcome | None,
) -> _Outcome:
    """``outcome`` once the channel's signed statement vouches for it (see check_statement)."""
    cached = _cached_statement(outcome.cached_statement, keys) if outcome.cached else None
    statement = _fetch_statement(session, channel, keys, cached)
    check_statement(
        statement.doc,
        channel=channel,
        manifest_digest=outcome.info.digest,
        last_sequence=last_sequence,
        now=now,
        cached_release=(
            {"version": str(previous.release["version"]), "manifestDigest": previous.info.digest}
            if previous is not None
            else None
        ),
    )
    if statement.doc["version"] != outcome.release["version"]:
        raise InvalidStatement(
            [
                f"/version: the statement names {statement.doc['version']}, the release it "
                f"vouches for is {outcome.release['version']}"
            ]
        )
    return replace(outcome, statement=statement)


def _vouched(session: _Session | None, outcome: _Outcome, keys: Sequence[TrustedKey]) -> _Outcome:
    """``outcome`` once a trusted signature vouches for it: the cached one if it still
    verifies under ``keys`` (no request), else downloaded (not possible offline)."""
    if not keys:
        return outcome
    if outcome.signature is not None:
        with contextlib.suppress(SignatureError):
            what = f"the cached release {outcome.info.digest}"
            _sig, signed_by = _accepted([outcome.signature], outcome.info.digest, keys, what=what)
            return replace(outcome, signed_by=signed_by)
    if session is None:
        raise Unsigned(f"the cached release {outcome.info.digest} has no trusted signature cached")
    signature, signed_by = _fetch_signature(session, outcome.info.digest, keys)
    return replace(outcome, signature=signature, signed_by=signed_by)


def credentials_from_env(env: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials from ``ALGA_REGISTRY_USERNAME``/``ALGA_REGISTRY_PASSWORD``; None if unset."""
    source = os.environ if env is None else env
    username, password = source.get(ENV_USERNAME, "").strip(), source.get(ENV_PASSWORD, "")
    if not username and not password:
        return None
    if not username or not password:
        raise BadInput(
            f"incomplete registry credentials: set {ENV_USERNAME} and {ENV_PASSWORD}, or neither"
        )
    return Credentials(username, password)


def resolve(
    ref: str,
    *,
    registry: str = DEFAULT_REGISTRY,
    repository: str = DEFAULT_REPOSITORY,
    installed_version: str | None = None,
    credentials: Credentials | tuple[str, str] | None = None,
    cache: Cache | None = None,
    transport: Transport | None = None,
    ca_file: str | None = None,
    plain_http: bool = False,
    insecure_hosts: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    attempts: int = DEFAULT_ATTEMPTS,
    token_realm: str | None = None,
    token_service: str | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    trusted_keys: Sequence[TrustedKey | str] | None = None,
) -> Resolution:
    """Resolve ``ref`` (channel, version or ``sha256:`` digest) to a verified release.

    ``installed_version`` turns on anti-rollback: an older release is refused
    (:class:`RollbackRefused`) unless ``ref`` pins a version or a digest.
    ``cache`` keeps the last good release and the auth state: warm resolves of
    an unmoved channel cost one manifest HEAD, and when the registry cannot be
    reached the cached release is returned with ``stale=True``. ``token_realm``
    (with ``token_service``, default the registry host) names the token service
    up front, as is built in for ghcr.io, to save the challenge round trip; a
    wrong guess costs one request and falls back to the challenge.
    ``plain_http`` is refused for hosts that are neither loopback nor named in
    ``insecure_hosts`` (redirects and the token service follow the same rule).

    ``trusted_keys`` (1 or 2 :class:`TrustedKey` or PEM texts) turns on signature
    verification: the release manifest must carry a cosign signature by one of
    them naming its digest (a :class:`SignatureError` otherwise). None means the
    ``trusted-keys.pem`` file next to this module if there is one, else no check;
    an empty sequence, no check.
    """
    target = parse_ref(ref)
    check_registry(registry)
    check_repository(repository)
    if plain_http and not (is_loopback(registry) or registry in insecure_hosts):
        raise BadInput(
            f"refusing plain HTTP to {registry}: only loopback hosts may use it",
            hint="drop --plain-http; use --ca-file for a private CA",
        )
    if installed_version is not None and not isinstance(installed_version, str):
        raise BadInput("the installed version must be a string")
    if token_realm is not None:
        _check_url(token_realm, "the token service", insecure_hosts)
    if isinstance(credentials, tuple):
        credentials = Credentials(*credentials)
    keys = configured_trusted_keys(trusted_keys)
    state = _normalise_state(cache.load() if cache is not None else None)
    key = f"{registry}/{repository}"
    cached = _find_cached(state, key, target)
    actual = transport if transport is not None else HttpTransport(ca_file=ca_file, timeout=timeout)
    session = _Session(
        actual,
        registry=registry,
        repository=repository,
        scheme="http" if plain_http else "https",
        credentials=credentials,
        state=state,
        clock=clock,
        sleep=sleep,
        attempts=attempts,
        token_realm=token_realm,
        token_service=token_service,
        insecure_hosts=insecure_hosts,
    )
    try:
        if target.kind == "digest" and cached is not None:
            # Content-addressed: the cached bytes verify against the digest.
            outcome = _vouched(session, cached, keys)
        else:
            try:
                outcome = _fetch_release(session, target, cached, keys)
            except RegistryUnreachable as unreachable:
                digest = cached.info.digest if cached is not None else None
                if cached is None or cache_decision(digest, None, reachable=False) != "stale":
                    raise
                try:
                    outcome = replace(_vouched(None, cached, keys), stale=True)
                except SignatureError:
                    raise unreachable from None  # nothing cached is vouched for by these keys

        if keys and target.kind == "channel" and not outcome.stale:
            outcome = _with_statement(
                session,
                target.value,
                outcome,
                keys,
                last_sequence=_last_sequence(state, key, target.value),
                now=clock(),
                previous=cached,
            )
        downgrade = check_rollback(
            str(outcome.release["version"]),
            installed_version,
            pinned=target.pinned,
            reference=target.value,
        )
        if not outcome.stale:
            _remember(state, key, target.value, outcome, clock())
    finally:
        if transport is None and isinstance(actual, HttpTransport):
            actual.close()
        if cache is not None:
            # The cache is an optimisation: a read-only disk must not fail a resolve.
            with contextlib.suppress(OSError):
                cache.save(state)
    return Resolution(
        reference=target.value,
        registry=registry,
        repository=repository,
        manifest_digest=outcome.info.digest,
        media_type=outcome.info.media_type,
        config_digest=outcome.info.config_digest,
        manifest=outcome.release,
        pinned=target.pinned,
        downgrade=downgrade,
        cached=outcome.cached,
        stale=outcome.stale,
        requests=session.requests,
        signed_by=outcome.signed_by,
        statement=outcome.statement.to_json() if outcome.statement is not None else None,
    )


# -- CLI -----------------------------------------------------------------------------------------


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value else default


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="release_consume.py",
        description="Resolve an Alga appliance channel, version or digest to a verified release.",
        epilog="exit codes: 0 resolved, 2 bad input, 3 refused (invalid, tampered, rollback, "
        "unsigned or not signed by a trusted key), "
        "75 registry unreachable and nothing cached, 1 anything else. Credentials come from "
        f"{ENV_USERNAME}/{ENV_PASSWORD} or --username with --password-file, never argv.",
    )
    parser.add_argument(
        "ref", metavar="REF", help="nightly, stable, a version (1.4.0) or sha256:<hex>"
    )
    parser.add_argument(
        "--registry",
        default=_env("ALGA_REGISTRY", DEFAULT_REGISTRY),
        metavar="HOST[:PORT]",
        help=f"registry host (env ALGA_REGISTRY; default {DEFAULT_REGISTRY})",
    )
    parser.add_argument(
        "--repository",
        default=_env("ALGA_RELEASE_REPOSITORY", DEFAULT_REPOSITORY),
        metavar="REPO",
        help=f"release repository (env ALGA_RELEASE_REPOSITORY; default {DEFAULT_REPOSITORY})",
    )
    parser.add_argument(
        "--installed-version",
        default=_env("ALGA_INSTALLED_VERSION"),
        metavar="V",
        help="the installed release version; an older channel release is refused "
        "(env ALGA_INSTALLED_VERSION)",
    )
    parser.add_argument(
        "--cache",
        default=_env("ALGA_RELEASE_CACHE"),
        metavar="FILE",
        help="cache file for the last good release and tokens (env ALGA_RELEASE_CACHE)",
    )
    parser.add_argument(
        "--ca-file",
        default=_env("ALGA_CA_FILE"),
        metavar="PEM",
        help="trust this CA bundle for TLS (env ALGA_CA_FILE)",
    )
    parser.add_argument(
        "--plain-http",
        action="store_true",
        default=(_env("ALGA_PLAIN_HTTP") or "").lower() in ("1", "true", "yes", "on"),
        help="plain HTTP, loopback hosts only (env ALGA_PLAIN_HTTP=1)",
    )
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST",
        help="also allow plain HTTP to this non-loopback HOST (repeatable)",
    )
    parser.add_argument(
        "--token-realm",
        default=_env("ALGA_TOKEN_REALM"),
        metavar="URL",
        help="the registry's token service, to skip the challenge round trip "
        "(env ALGA_TOKEN_REALM; built in for ghcr.io)",
    )
    parser.add_argument(
        "--token-service",
        default=_env("ALGA_TOKEN_SERVICE"),
        metavar="NAME",
        help="the service name the token service expects with --token-realm "
        "(env ALGA_TOKEN_SERVICE; default the registry host, as ghcr.io uses)",
    )
    parser.add_argument(
        "--trusted-key",
        action="append",
        default=[],
        metavar="FILE",
        help="a PEM file of trusted release public keys (ECDSA P-256, cosign.pub; repeatable, "
        "1 or 2 keys in all): the release must carry a cosign signature by one of them "
        f"(env {ENV_TRUSTED_KEYS}, files separated by ':'; default {DEFAULT_TRUSTED_KEYS_FILE} "
        "next to this file if present, else no signature check)",
    )
    parser.add_argument("--username", default=None, help=f"registry user (else env {ENV_USERNAME})")
    parser.add_argument(
        "--password-file",
        default=None,
        metavar="FILE",
        help=f"password file (else env {ENV_PASSWORD})",
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per request (default 30)"
    )
    parser.add_argument(
        "--attempts", type=int, default=DEFAULT_ATTEMPTS, help="tries per request (default 3)"
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="print what the appliance applies (a v1 List: six values ConfigMaps, with "
        "trusted keys the Secret of them that Flux verifies with, the OCIRepository (with "
        "spec.verify when keys are trusted) and the Kustomization) instead of the release",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _cli_credentials(args: argparse.Namespace) -> Credentials | None:
    if args.username is None and args.password_file is None:
        return credentials_from_env()
    password = os.environ.get(ENV_PASSWORD, "")
    if args.password_file is not None:
        try:
            with open(args.password_file, encoding="utf-8") as fh:
                password = fh.read().strip()
        except OSError as exc:
            raise BadInput(
                f"cannot read the password file {args.password_file}: {exc.strerror}"
            ) from None
    username = args.username or os.environ.get(ENV_USERNAME, "")
    if not username or not password:
        raise BadInput("incomplete registry credentials: a username and a password are both needed")
    return Credentials(username, password)


def _cli_trusted_keys(args: argparse.Namespace) -> tuple[TrustedKey, ...] | None:
    """--trusted-key files, else ALGA_TRUSTED_KEYS, else None (the default file, if any)."""
    files = list(args.trusted_key) or [p for p in (_env(ENV_TRUSTED_KEYS) or "").split(":") if p]
    return load_trusted_keys(files) if files else None


def _human(result: Resolution) -> str:
    release = result.manifest
    lines = [
        f"{result.reference} -> release {release['version']} (channel {release['channel']})",
        f"  manifest  {result.registry}/{result.repository}@{result.manifest_digest}",
        f"  config    {result.config_digest}",
        f"  bundle    oci://{release['config']['repository']}@{release['config']['digest']}",
        "  images    " + ", ".join(f"{k}={v}" for k, v in image_references(release).items()),
    ]
    if result.signed_by is not None:
        lines.append(f"  signed    by trusted key {result.signed_by}")
    if result.statement is not None:
        st = result.statement
        lines.append(
            f"  statement sequence {st['sequence']}, issued {st['issuedAt']}, expires "
            f"{st['expiresAt']} (signed by {st['signedBy']})"
        )
    if result.downgrade:
        lines.append("  note      an explicitly pinned downgrade")
    if result.stale:
        lines.append("  STALE     the registry could not be reached; this is the last good release")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        cache = FileCache(args.cache) if args.cache else None
        result = resolve(
            args.ref,
            registry=args.registry,
            repository=args.repository,
            installed_version=args.installed_version,
            credentials=_cli_credentials(args),
            cache=cache,
            ca_file=args.ca_file,
            plain_http=args.plain_http,
            insecure_hosts=args.insecure_registry,
            timeout=args.timeout,
            attempts=args.attempts,
            token_realm=args.token_realm,
            token_service=args.token_service,
            trusted_keys=_cli_trusted_keys(args),
        )
    except ConsumeError as exc:
        sys.stderr.write(f"error: {exc.diagnostics()}\n")
        if args.json:
            sys.stdout.write(json.dumps(exc.to_json(), indent=2) + "\n")
        return exc.exit_code
    output: Any = result.to_json()
    if args.render:
        try:
            # the keys the resolve trusted (already read once: no error left to raise here)
            keys = configured_trusted_keys(_cli_trusted_keys(args))
            items = render_all(result.manifest, trusted_keys=keys)
            output = {"apiVersion": "v1", "kind": "List", "items": items}
        except ValueError as exc:
            sys.stderr.write(f"error: {exc}\n")  # the release cannot be applied as it is
            return EXIT_REFUSED
    if result.stale:
        sys.stderr.write(
            "warning: the registry could not be reached; returning the cached release\n"
        )
    if args.json or args.render:
        sys.stdout.write(json.dumps(output, indent=2) + "\n")
    else:
        sys.stdout.write(_human(result) + "\n")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
