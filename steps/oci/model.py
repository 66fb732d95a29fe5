"""The registry client's plain data: descriptors, manifests, counters, flag names.

Nothing here talks to a registry or imports an HTTP library, so the modules that only
pass these values around (the image graph, the image checks, the quick read-only path
of :mod:`steps.oci.quick`) load without the full client. :mod:`steps.oci.client`
re-exports every name.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from steps.oci import mediatypes as mt
from steps.oci.errors import RegistryRefused
from steps.oci.reference import Digest

PULL: tuple[str, ...] = ("pull",)
PUSH: tuple[str, ...] = ("pull", "push")

#: Manifests larger than this are refused (the OCI spec suggests 4 MiB).
MAX_MANIFEST_SIZE = 4 * 1024 * 1024

#: ``progress(bytes_so_far, total_or_None)``, called as a blob transfer advances.
Progress = Callable[[int, "int | None"], None]


def is_loopback(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1`` (port ignored)."""
    name = host
    if name.startswith("["):
        name = name[1 : name.find("]")]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost":
        return True
    import ipaddress  # here: 1.5 ms of import for a few calls per run

    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def plain_http_allowed(
    netloc: str, insecure_hosts: Sequence[str], plain_registry: str | None = None
) -> bool:
    """Whether plain HTTP may go to ``netloc``: loopback, a host named insecure, or the
    registry the caller already speaks plain HTTP to (``plain_registry``). Redirects,
    upload locations and token realms are judged by this one rule."""
    return is_loopback(netloc) or netloc in insecure_hosts or netloc == plain_registry


@dataclass(frozen=True)
class Descriptor:
    """What a HEAD tells about a manifest or blob."""

    digest: Digest
    size: int
    media_type: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A manifest's exact bytes, its media type and its digest (verified)."""

    data: bytes
    media_type: str
    digest: Digest

    def json(self) -> dict[str, object]:
        value = json.loads(self.data)
        if not isinstance(value, dict):
            raise RegistryRefused(f"manifest {self.digest} is not a JSON object")
        return value


@dataclass
class ClientStats:
    """Counters a benchmark or a test can read after a run."""

    requests: int = 0
    retries: int = 0
    token_requests: int = 0
    bytes_uploaded: int = 0
    bytes_downloaded: int = 0
    blobs_uploaded: int = 0
    blobs_mounted: int = 0
    blobs_existing: int = 0
    manifests_put: int = 0
    by_method: dict[str, int] = field(default_factory=dict)

    def absorb(self, other: ClientStats) -> None:
        """Add ``other``'s counts to these (a worker's, when its work is done)."""
        for name in (
            "requests",
            "retries",
            "token_requests",
            "bytes_uploaded",
            "bytes_downloaded",
            "blobs_uploaded",
            "blobs_mounted",
            "blobs_existing",
            "manifests_put",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for method, count in other.by_method.items():
            self.by_method[method] = self.by_method.get(method, 0) + count


@dataclass(frozen=True)
class FlagNames:
    """How the caller's command line spells the settings a hint may name.

    The publisher's own registry uses the defaults; ``control-plane copy`` builds its
    source client with ``FlagNames.source()`` so a hint names ``--source-plain-http``.
    ``credentials`` is what to set when credentials are missing or refused.
    """

    plain_http: str = "--plain-http"
    insecure_registry: str = "--insecure-registry"
    ca_file: str = "--ca-file"
    credentials: str = (
        "ALGA_REGISTRY_USERNAME and ALGA_REGISTRY_PASSWORD (or --password-file), "
        "or log in with `alga-release login {registry}`"
    )

    @classmethod
    def source(cls) -> FlagNames:
        return cls(
            plain_http="--source-plain-http",
            ca_file="--source-ca-file",
            credentials="ALGA_SOURCE_REGISTRY_USERNAME and ALGA_SOURCE_REGISTRY_PASSWORD",
        )

    def credentials_for(self, registry: str) -> str:
        return self.credentials.replace("{registry}", registry)


def media_type_from_body(data: bytes) -> str:
    try:
        body = json.loads(data)
    except ValueError:
        return ""
    if isinstance(body, dict):
        value = body.get("mediaType")
        if isinstance(value, str):
            return value
        if "manifests" in body:
            return mt.OCI_INDEX
        if "layers" in body:
            return mt.OCI_MANIFEST
    return ""


class ManifestReader(Protocol):
    """The reading half of a registry client: what the image checks and the no-op re-copy
    need (:class:`~steps.oci.client.RegistryClient` and :class:`~steps.oci.quick.QuickReader`
    both are one)."""

    registry: str

    def head_manifest(self, repository: str, ref: str | Digest) -> Descriptor | None: ...

    def head_manifests(
        self,
        queries: Sequence[tuple[str, str | Digest]],
        *,
        jobs: int = ...,
        unreadable_missing: bool = ...,
    ) -> list[Descriptor | None]: ...

    def get_manifest(self, repository: str, ref: str | Digest) -> Manifest: ...


class Deadline:
    """A whole command's time budget. ``Deadline(None)`` never runs out."""

    def __init__(
        self,
        seconds: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
    ) -> None:
        """``started``: when the budget began, on ``clock`` (default: now); the CLI passes
        its own start, so the time before the first client counts too."""
        if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"a deadline must be a positive number of seconds, not {seconds!r}")
        self.seconds = seconds
        self._clock = clock
        begun = clock() if started is None else started
        self._ends = None if seconds is None else begun + seconds

    @classmethod
    def never(cls) -> Deadline:
        return cls(None)

    def remaining(self) -> float:
        if self._ends is None:
            return math.inf
        return self._ends - self._clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def __repr__(self) -> str:
        return f"Deadline({self.seconds!r})"
