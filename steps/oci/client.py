"""A small OCI distribution client on httpx.

One class, :class:`RegistryClient`, with one job: speak the distribution API to one
registry. It is the largest module on purpose (auth, retries, uploads and verified reads
belong together); the pure pieces it uses live beside it (``auth``, ``reference``).

What it does: manifests (GET/HEAD with OCI Accept headers, PUT of raw bytes,
tag by re-putting the exact bytes so the digest never changes), blobs (HEAD,
verified GET, monolithic upload for small blobs, chunked streaming upload for
large ones, cross-repository mount), tags listing, anonymous/Basic/Bearer
auth driven by the registry's ``WWW-Authenticate`` challenge, and bounded
retries with backoff on 429, 5xx and connection errors.

Invariants:

- Every manifest or blob read is checked against its digest and, when known,
  its size before it is returned (:class:`DigestMismatch` otherwise).
- A large blob is never held whole in memory: uploads stream from a file in
  chunks and downloads stream to a file.
- Plain HTTP is only used for loopback hosts or hosts named explicitly as
  insecure; anything else is HTTPS with certificate verification.
- No header value, password or token is ever logged or put in an error
  message; every secret is registered with :mod:`steps.redact`.

What it does not do: it does not understand what an artifact *means* (charts,
bundles and releases are built by their own modules) and it keeps no state
beyond the token cache and request statistics.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import math
import os
import random
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from steps.errors import BadInput
from steps.oci import mediatypes as mt
from steps.oci.auth import Challenge, Credentials, TokenCache, parse_challenge, scope_for
from steps.oci.errors import (
    AuthError,
    DigestMismatch,
    InsecureRegistry,
    NotFound,
    RegistryError,
    RegistryRefused,
    TransientRegistryError,
)
from steps.oci.reference import Digest, check_registry, check_repository, check_tag, digest_stream
from steps.redact import redact, register_secret

log = logging.getLogger("alga_release.oci")

PULL: tuple[str, ...] = ("pull",)
PUSH: tuple[str, ...] = ("pull", "push")

#: Manifests larger than this are refused (the OCI spec suggests 4 MiB).
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
#: Blobs up to this size are uploaded in one PUT; larger ones in chunks.
DEFAULT_MONOLITHIC_LIMIT = 4 * 1024 * 1024
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
ENV_RETRY_DELAY = "ALGA_RETRY_BASE_DELAY"
ENV_RETRY_ATTEMPTS = "ALGA_RETRY_ATTEMPTS"


def is_loopback(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1`` (port ignored)."""
    name = host
    if name.startswith("["):
        name = name[1 : name.find("]")]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


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


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0

    @classmethod
    def from_environment(cls) -> RetryPolicy:
        attempts_text = os.environ.get(ENV_RETRY_ATTEMPTS, "5")
        delay_text = os.environ.get(ENV_RETRY_DELAY, "0.5")
        try:
            attempts = int(attempts_text)
            delay = float(delay_text)
        except ValueError:
            raise BadInput(
                f"{ENV_RETRY_ATTEMPTS}={attempts_text!r} / {ENV_RETRY_DELAY}={delay_text!r}: "
                "expected a whole number of attempts and a delay in seconds"
            ) from None
        if not math.isfinite(delay):
            raise BadInput(f"{ENV_RETRY_DELAY}={delay_text!r} is not a finite number of seconds")
        return cls(attempts=max(1, attempts), base_delay=max(0.0, delay))

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after is not None:
            try:
                seconds = float(retry_after)
            except ValueError:
                seconds = math.nan  # an HTTP date or garbage: fall back to our backoff
            if math.isfinite(seconds):
                return max(0.0, min(seconds, self.max_delay))
        if self.base_delay <= 0:
            return 0.0
        backoff: float = min(self.base_delay * (2**attempt), self.max_delay)
        return float(backoff * (0.5 + random.random() / 2))


class RegistryClient:
    """Talks to one registry host. Not thread-safe; make one per thread."""

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = None,
        plain_http: bool = False,
        insecure_hosts: Sequence[str] = (),
        verify: bool | str | ssl.SSLContext = True,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        monolithic_limit: int = DEFAULT_MONOLITHIC_LIMIT,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.registry = check_registry(registry)
        if plain_http and not (is_loopback(registry) or registry in insecure_hosts):
            raise InsecureRegistry(
                f"refusing plain HTTP to {registry}: only loopback hosts may use --plain-http",
                hint=f"use HTTPS, or name the host explicitly with --insecure-registry {registry}",
            )
        self._insecure_hosts = tuple(insecure_hosts)
        self.scheme = "http" if plain_http else "https"
        self.base_url = f"{self.scheme}://{registry}"
        self.credentials = credentials
        self.retry = retry or RetryPolicy.from_environment()
        self.monolithic_limit = monolithic_limit
        self.chunk_size = chunk_size
        self.stats = ClientStats()
        self._sleep = sleep
        self._tokens = TokenCache()
        self._basic = False  # the registry asked for Basic auth: send it up front
        if isinstance(verify, str):
            verify = ssl.create_default_context(cafile=verify)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            verify=verify,
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": "alga-release"},
        )

    # -- lifecycle -------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- manifests -------------------------------------------------------

    def head_manifest(self, repository: str, ref: str | Digest) -> Descriptor | None:
        """The manifest's descriptor, or ``None`` when the tag or digest does not exist."""
        check_repository(repository)
        what = f"{self.registry}/{repository}{_sep(ref)}{ref}"
        response = self._request(
            "HEAD",
            f"/v2/{repository}/manifests/{ref}",
            repository=repository,
            actions=PULL,
            what=what,
            headers={"Accept": ", ".join(mt.MANIFEST_ACCEPT)},
            allow={404},
        )
        if response.status_code == 404:
            return None
        header = response.headers.get("Docker-Content-Digest")
        if header is None:
            # Some registries omit the digest on HEAD: fall back to a verified GET.
            manifest = self.get_manifest(repository, ref)
            return Descriptor(manifest.digest, len(manifest.data), manifest.media_type)
        digest = Digest.parse(header)
        if isinstance(ref, Digest) and digest != ref:
            raise DigestMismatch(f"{what}: the registry answered for digest {digest}")
        size = int(response.headers.get("Content-Length", "0"))
        media_type = response.headers.get("Content-Type", "").split(";")[0] or None
        return Descriptor(digest, size, media_type)

    def get_manifest(self, repository: str, ref: str | Digest) -> Manifest:
        """The manifest's exact bytes, checked against its digest and size cap."""
        check_repository(repository)
        what = f"{self.registry}/{repository}{_sep(ref)}{ref}"
        response = self._request(
            "GET",
            f"/v2/{repository}/manifests/{ref}",
            repository=repository,
            actions=PULL,
            what=what,
            headers={"Accept": ", ".join(mt.MANIFEST_ACCEPT)},
            stream=True,
        )
        try:
            data = _read_capped(response, MAX_MANIFEST_SIZE, what)
        finally:
            response.close()
        self.stats.bytes_downloaded += len(data)
        header = response.headers.get("Docker-Content-Digest")
        expected = ref if isinstance(ref, Digest) else (Digest.parse(header) if header else None)
        if expected is not None:
            if not expected.matches(data):
                raise DigestMismatch(
                    f"{what}: manifest bytes do not match {expected}",
                    hint="the registry or a proxy served altered content; do not trust it",
                )
            digest = expected
        else:
            digest = Digest.of(data)
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if not media_type or media_type in ("application/json", "application/octet-stream"):
            media_type = _media_type_from_body(data)
        return Manifest(data, media_type, digest)

    def put_manifest(
        self, repository: str, ref: str | Digest, data: bytes, media_type: str
    ) -> Digest:
        """PUT the exact bytes under a tag or digest; returns their digest (checked)."""
        check_repository(repository)
        if isinstance(ref, str):
            check_tag(ref)
        digest = Digest.of(data)
        what = f"{self.registry}/{repository}{_sep(ref)}{ref}"
        if isinstance(ref, Digest) and ref != digest:
            raise DigestMismatch(f"{what}: the bytes to push have digest {digest}")
        response = self._request(
            "PUT",
            f"/v2/{repository}/manifests/{ref}",
            repository=repository,
            actions=PUSH,
            what=what,
            headers={"Content-Type": media_type},
            content=data,
        )
        self.stats.manifests_put += 1
        header = response.headers.get("Docker-Content-Digest")
        if header and Digest.parse(header) != digest:
            raise DigestMismatch(
                f"{what}: the registry stored the manifest as {header}, expected {digest}"
            )
        return digest

    def tag(self, repository: str, source: str | Digest, tag: str) -> Digest:
        """Point ``tag`` at the manifest ``source`` by re-putting its exact bytes."""
        manifest = self.get_manifest(repository, source)
        return self.put_manifest(repository, tag, manifest.data, manifest.media_type)

    def delete_manifest(self, repository: str, digest: Digest) -> None:
        check_repository(repository)
        self._request(
            "DELETE",
            f"/v2/{repository}/manifests/{digest}",
            repository=repository,
            actions=("pull", "push", "delete"),
            what=f"{self.registry}/{repository}@{digest}",
            allow={202},
        )

    def list_tags(self, repository: str) -> list[str]:
        """Every tag of the repository (follows ``Link`` pagination); [] if none."""
        check_repository(repository)
        tags: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list?n=1000"
        while path:
            response = self._request(
                "GET",
                path,
                repository=repository,
                actions=PULL,
                what=f"{self.registry}/{repository}",
                allow={404},
            )
            if response.status_code == 404:
                return []
            body = response.json()
            tags.extend(body.get("tags") or [])
            path = _next_link(response.headers.get("Link"))
        return tags

    # -- blobs -----------------------------------------------------------

    def head_blob(self, repository: str, digest: Digest) -> Descriptor | None:
        check_repository(repository)
        response = self._request(
            "HEAD",
            f"/v2/{repository}/blobs/{digest}",
            repository=repository,
            actions=PULL,
            what=f"{self.registry}/{repository}@{digest}",
            allow={404},
            follow=True,
        )
        if response.status_code == 404:
            return None
        return Descriptor(digest, int(response.headers.get("Content-Length", "-1")))

    def blob_exists(self, repository: str, digest: Digest) -> bool:
        return self.head_blob(repository, digest) is not None

    def get_blob(
        self,
        repository: str,
        digest: Digest,
        *,
        size: int | None = None,
        max_size: int = 64 * 1024 * 1024,
    ) -> bytes:
        """A small blob's bytes, checked against its digest (and size when given)."""
        check_repository(repository)
        what = f"{self.registry}/{repository}@{digest}"
        response = self._request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            repository=repository,
            actions=PULL,
            what=what,
            stream=True,
            follow=True,
        )
        try:
            data = _read_capped(response, size if size is not None else max_size, what)
        finally:
            response.close()
        self.stats.bytes_downloaded += len(data)
        _verify(what, digest, size, data)
        return data

    def download_blob(
        self, repository: str, digest: Digest, dest: BinaryIO, *, size: int | None = None
    ) -> int:
        """Stream a blob into ``dest``; raises before returning if it does not verify.

        The caller must discard ``dest``'s content when this raises.
        """
        check_repository(repository)
        what = f"{self.registry}/{repository}@{digest}"
        response = self._request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            repository=repository,
            actions=PULL,
            what=what,
            stream=True,
            follow=True,
        )
        hasher = digest.hasher()
        total = 0
        try:
            for chunk in response.iter_bytes(1 << 20):
                total += len(chunk)
                if size is not None and total > size:
                    raise DigestMismatch(f"{what}: more than the expected {size} bytes served")
                hasher.update(chunk)
                dest.write(chunk)
        except httpx.TransportError as exc:
            raise TransientRegistryError(
                f"{what}: download interrupted ({type(exc).__name__})"
            ) from None
        finally:
            response.close()
        self.stats.bytes_downloaded += total
        if size is not None and total != size:
            raise DigestMismatch(f"{what}: expected {size} bytes, got {total}")
        if hasher.hexdigest() != digest.hex:
            raise DigestMismatch(f"{what}: downloaded bytes do not match the digest")
        return total

    def push_blob(
        self,
        repository: str,
        data: bytes | Path,
        *,
        digest: Digest | None = None,
        mount_from: Sequence[str] = (),
    ) -> str:
        """Make sure the blob is in ``repository``: ``"existing"``, ``"mounted"`` or ``"uploaded"``.

        ``data`` is bytes (small blobs) or a file path (streamed, never read whole).
        ``mount_from`` names other repositories of this registry that may hold the blob.
        """
        check_repository(repository)
        if isinstance(data, Path):
            if digest is None:
                with data.open("rb") as fh:
                    digest, size = digest_stream(fh)
            else:
                size = data.stat().st_size
        else:
            size = len(data)
            if digest is None:
                digest = Digest.of(data)
            elif not digest.matches(data):
                raise DigestMismatch(f"blob for {repository} does not match {digest}")
        what = f"{self.registry}/{repository}@{digest}"
        if self.head_blob(repository, digest) is not None:
            self.stats.blobs_existing += 1
            log.debug("blob %s already in %s", digest.short, repository)
            return "existing"
        for source in mount_from:
            if source == repository:
                continue
            location = self._try_mount(repository, source, digest)
            if location is None:
                self.stats.blobs_mounted += 1
                log.debug("blob %s mounted from %s", digest.short, source)
                return "mounted"
        for attempt in range(self.retry.attempts):
            try:
                if size <= self.monolithic_limit:
                    payload = data if isinstance(data, bytes) else data.read_bytes()
                    self._upload_monolithic(repository, digest, payload, what)
                else:
                    self._upload_chunked(repository, digest, data, size, what)
                break
            except TransientRegistryError:
                # A broken upload session cannot be resumed reliably; start a new one.
                if attempt + 1 >= self.retry.attempts:
                    raise
                self.stats.retries += 1
                self._sleep(self.retry.delay(attempt))
        self.stats.blobs_uploaded += 1
        return "uploaded"

    def mount_blob(self, repository: str, source: str, digest: Digest) -> bool:
        """Ask the registry to mount ``digest`` from ``source`` into ``repository``
        (no bytes move). True when mounted; False when the registry declined."""
        check_repository(repository)
        check_repository(source)
        mounted = self._try_mount(repository, source, digest) is None
        if mounted:
            self.stats.blobs_mounted += 1
        return mounted

    def _try_mount(self, repository: str, source: str, digest: Digest) -> str | None:
        """Ask for a cross-repository mount. None when mounted; else the upload URL."""
        query = urlencode({"mount": str(digest), "from": source})
        response = self._request(
            "POST",
            f"/v2/{repository}/blobs/uploads/?{query}",
            repository=repository,
            actions=PUSH,
            extra_scopes=[scope_for(source, PULL)],
            what=f"{self.registry}/{repository}@{digest} (mount from {source})",
            allow={201, 202},
        )
        if response.status_code == 201:
            return None
        # 202: the registry opened an upload session instead; cancel it politely.
        location = response.headers.get("Location", "")
        if location:
            with contextlib.suppress(RegistryError):
                self._request(
                    "DELETE",
                    self._absolute(location),
                    repository=repository,
                    actions=PUSH,
                    what="upload session",
                    allow={204, 404},
                    attempts=1,
                )
        return location or ""

    def _start_upload(self, repository: str, what: str) -> str:
        response = self._request(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            repository=repository,
            actions=PUSH,
            what=what,
            allow={202},
            attempts=1,
            headers={"Content-Length": "0"},
        )
        location = response.headers.get("Location")
        if not location:
            raise RegistryRefused(f"{what}: the registry opened no upload session (no Location)")
        return self._absolute(location)

    def _upload_monolithic(
        self, repository: str, digest: Digest, payload: bytes, what: str
    ) -> None:
        location = self._start_upload(repository, what)
        self._request(
            "PUT",
            _with_query(location, {"digest": str(digest)}),
            repository=repository,
            actions=PUSH,
            what=what,
            allow={201},
            attempts=1,
            headers={"Content-Type": "application/octet-stream"},
            content=payload,
        )
        self.stats.bytes_uploaded += len(payload)

    def _upload_chunked(
        self, repository: str, digest: Digest, data: bytes | Path, size: int, what: str
    ) -> None:
        location = self._start_upload(repository, what)
        offset = 0
        for chunk in _chunks(data, self.chunk_size):
            length = len(chunk)
            end = offset + length - 1
            # httpx request/response objects form reference cycles that outlive the
            # call until the garbage collector runs; handing the bytes over in a
            # one-shot iterable lets them go as soon as they are sent.
            response = self._request(
                "PATCH",
                location,
                repository=repository,
                actions=PUSH,
                what=what,
                allow={202},
                attempts=1,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{end}",
                    "Content-Length": str(length),
                },
                content=_OneShot(chunk),
            )
            del chunk
            self.stats.bytes_uploaded += length
            offset += length
            location = self._absolute(response.headers.get("Location") or location)
            log.debug("uploaded %d/%d bytes of %s", offset, size, digest.short)
        if offset != size:
            raise RegistryRefused(f"{what}: the file changed while uploading ({offset} != {size})")
        self._request(
            "PUT",
            _with_query(location, {"digest": str(digest)}),
            repository=repository,
            actions=PUSH,
            what=what,
            allow={201},
            attempts=1,
            headers={"Content-Length": "0"},
        )

    # -- transport, auth and retries ------------------------------------

    def _absolute(self, location: str) -> str:
        return urljoin(self.base_url + "/", location)

    def _request(
        self,
        method: str,
        path: str,
        *,
        repository: str,
        actions: tuple[str, ...],
        what: str,
        headers: dict[str, str] | None = None,
        content: bytes | _OneShot | None = None,
        allow: set[int] | frozenset[int] = frozenset(),
        stream: bool = False,
        follow: bool = False,
        extra_scopes: Sequence[str] = (),
        attempts: int | None = None,
    ) -> httpx.Response:
        """Send one request with auth, redirects and retries; map failures to errors.

        ``allow`` lists non-2xx statuses the caller handles itself. ``attempts=1``
        disables retries (used inside upload sessions, which restart as a whole).
        """
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        self._check_target(url, what)
        # Credentials go to the registry itself only, never to a host an upload Location
        # or a redirect names (object storage takes pre-signed URLs).
        own_origin = _origin(url) == _origin(self.base_url)
        scopes = [scope_for(repository, actions), *extra_scopes]
        max_attempts = attempts or self.retry.attempts
        auth_tried = False
        attempt = 0
        while True:
            request_headers = dict(headers or {})
            authorization = self._authorization(scopes) if own_origin else None
            if authorization:
                request_headers["Authorization"] = authorization
            try:
                response = self._send(method, url, request_headers, content, stream, follow)
            except httpx.TransportError as exc:
                if _is_tls_error(exc):
                    raise RegistryError(
                        f"{what}: TLS certificate verification failed for {self.registry}",
                        hint="install the registry's CA certificate, or check the host name",
                    ) from None
                attempt += 1
                if attempt >= max_attempts:
                    raise TransientRegistryError(
                        f"{what}: cannot reach {self.registry} ({type(exc).__name__}) "
                        f"after {attempt} attempt(s)",
                        hint="the registry or the network is down; retry later",
                    ) from None
                self._backoff(attempt - 1, None, f"{method} {what}: {type(exc).__name__}")
                continue
            status = response.status_code
            if status == 401 and isinstance(content, _OneShot):
                # A token expired inside an upload session: the chunk is spent and the
                # session cannot be trusted; the caller restarts the whole upload.
                response.close()
                raise TransientRegistryError(
                    f"{what}: {self.registry} asked to authenticate again during an upload",
                    status=401,
                )
            if status == 401 and not auth_tried:
                auth_tried = True
                challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
                response.close()
                self._authenticate(challenge, scopes, what)
                continue
            if status in _RETRY_STATUSES:
                attempt += 1
                retry_after = response.headers.get("Retry-After")
                response.close()
                if attempt >= max_attempts:
                    raise TransientRegistryError(
                        f"{what}: {self.registry} answered {status} to {method} "
                        f"after {attempt} attempt(s)",
                        hint="the registry is overloaded or failing; retry later",
                        status=status,
                    )
                self._backoff(attempt - 1, retry_after, f"{method} {what}: {status}")
                continue
            if status < 300 or status in allow:
                return response
            self._raise_for(response, method, what)

    def _check_target(self, url: str, what: str) -> None:
        """Refuse plain HTTP to any host but loopback or one named as insecure: an upload
        Location or a redirect must not downgrade an HTTPS registry."""
        parts = urlsplit(url)
        if parts.scheme == "https":
            return
        if parts.scheme == "http" and (
            is_loopback(parts.netloc)
            or parts.netloc in self._insecure_hosts
            or (self.scheme == "http" and parts.netloc == self.registry)
        ):
            return
        raise InsecureRegistry(
            f"{what}: refusing {parts.scheme or 'a relative'} URL {parts.scheme}://{parts.netloc}"
            f"{parts.path} from {self.registry}: plain HTTP only to loopback or named hosts",
            hint=f"name the host with --insecure-registry {parts.netloc} if this is intended",
        )

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | _OneShot | None,
        stream: bool,
        follow: bool,
    ) -> httpx.Response:
        self.stats.requests += 1
        self.stats.by_method[method] = self.stats.by_method.get(method, 0) + 1
        request = self._http.build_request(method, url, headers=headers, content=content)
        response = self._http.send(request, stream=True)
        hops = 0
        while follow and response.is_redirect and hops < 5:
            hops += 1
            target = urljoin(str(response.url), response.headers.get("Location", ""))
            response.close()
            self._check_target(target, f"redirect of {method} {urlsplit(url).path}")
            redirect_headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if _origin(target) == _origin(url):
                redirect_headers = dict(headers)
            self.stats.requests += 1
            request = self._http.build_request(method, target, headers=redirect_headers)
            response = self._http.send(request, stream=True)
        log.debug("%s %s -> %d", method, urlsplit(url).path, response.status_code)
        if not stream:
            try:
                response.read()
            finally:
                response.close()
        return response

    def _backoff(self, attempt: int, retry_after: str | None, why: str) -> None:
        delay = self.retry.delay(attempt, retry_after)
        self.stats.retries += 1
        log.info("retrying in %.1fs (%s)", delay, why)
        self._sleep(delay)

    def _authorization(self, scopes: list[str]) -> str | None:
        token = self._tokens.get(scopes)
        if token is not None:
            return f"Bearer {token}"
        if self._basic and self.credentials is not None:
            return self.credentials.basic_header()
        return None

    def _authenticate(self, challenge: Challenge | None, scopes: list[str], what: str) -> None:
        if challenge is None:
            raise AuthError(
                f"{what}: {self.registry} answered 401 without an authentication challenge"
            )
        if challenge.scheme == "basic":
            if self.credentials is None:
                raise AuthError(
                    f"{what}: {self.registry} requires credentials",
                    hint="set ALGA_REGISTRY_USERNAME and ALGA_REGISTRY_PASSWORD "
                    "(or --password-file)",
                    status=401,
                )
            self._basic = True
            return
        if challenge.scheme != "bearer" or not challenge.realm:
            raise AuthError(
                f"{what}: {self.registry} asks for unsupported authentication {challenge.scheme!r}"
            )
        wanted = list(dict.fromkeys([*scopes, *challenge.scopes]))
        self._fetch_token(challenge, wanted, what)

    def _fetch_token(self, challenge: Challenge, scopes: list[str], what: str) -> None:
        realm = str(challenge.realm)
        realm_parts = urlsplit(realm)
        if realm_parts.scheme == "http" and not (
            is_loopback(realm_parts.netloc) or realm_parts.netloc in self._insecure_hosts
        ):
            raise AuthError(
                f"{what}: refusing to send credentials to a plain-HTTP token service",
                hint="the registry's token realm must be HTTPS",
            )
        params: list[tuple[str, str]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        params.extend(("scope", scope) for scope in scopes)
        headers: dict[str, str] = {}
        if self.credentials is not None:
            headers["Authorization"] = self.credentials.basic_header()
            params.append(("account", self.credentials.username))
        url = realm + ("&" if "?" in realm else "?") + urlencode(params)
        for attempt in range(self.retry.attempts):
            self.stats.token_requests += 1
            self.stats.requests += 1
            try:
                response = self._http.get(url, headers=headers)
            except httpx.TransportError as exc:
                if _is_tls_error(exc):
                    raise AuthError(
                        f"{what}: TLS certificate verification failed for the token service"
                    ) from None
                if attempt + 1 >= self.retry.attempts:
                    raise TransientRegistryError(
                        f"{what}: cannot reach the token service of {self.registry} "
                        f"({type(exc).__name__})"
                    ) from None
                self._backoff(attempt, None, f"token service: {type(exc).__name__}")
                continue
            if response.status_code in _RETRY_STATUSES and attempt + 1 < self.retry.attempts:
                self._backoff(attempt, response.headers.get("Retry-After"), "token service")
                continue
            break
        if response.status_code in (401, 403):
            who = "anonymous access" if self.credentials is None else "the given credentials"
            raise AuthError(
                f"{what}: the token service of {self.registry} refused {who} "
                f"({response.status_code})",
                hint="check ALGA_REGISTRY_USERNAME / ALGA_REGISTRY_PASSWORD and that the "
                "account may access this repository",
                status=response.status_code,
            )
        if response.status_code in _RETRY_STATUSES:
            raise TransientRegistryError(
                f"{what}: the token service of {self.registry} answered {response.status_code}",
                status=response.status_code,
            )
        if response.status_code >= 300:
            raise AuthError(
                f"{what}: the token service of {self.registry} answered {response.status_code}",
                status=response.status_code,
            )
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
            expires_in = float(body.get("expires_in") or 60)
        except (ValueError, AttributeError):
            token = None
            expires_in = 60.0
        if not isinstance(token, str) or not token:
            raise AuthError(f"{what}: the token service of {self.registry} returned no token")
        register_secret(token)
        self._tokens.put(scopes, token, expires_in)

    def _raise_for(self, response: httpx.Response, method: str, what: str) -> None:
        status = response.status_code
        detail = _error_detail(response)
        if status == 401:
            if self.credentials is None:
                raise AuthError(
                    f"{what}: {self.registry} requires credentials for {method} (401){detail}",
                    hint="set ALGA_REGISTRY_USERNAME and ALGA_REGISTRY_PASSWORD "
                    "(or --password-file)",
                    status=status,
                )
            raise AuthError(
                f"{what}: {self.registry} refused the credentials (401){detail}",
                hint="check ALGA_REGISTRY_USERNAME / ALGA_REGISTRY_PASSWORD",
                status=status,
            )
        if status == 403:
            raise AuthError(
                f"{what}: {self.registry} denied {method} (403){detail}",
                hint="the account lacks permission on this repository (for ghcr.io: "
                "package write access)",
                status=status,
            )
        if status == 404:
            raise NotFound(f"{what}: not found in {self.registry}{detail}", status=status)
        raise RegistryRefused(
            f"{what}: {self.registry} rejected {method} with {status}{detail}", status=status
        )


# -- helpers ---------------------------------------------------------------


def _sep(ref: str | Digest) -> str:
    return "@" if isinstance(ref, Digest) else ":"


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _next_link(header: str | None) -> str | None:
    if not header:
        return None
    start, end = header.find("<"), header.find(">")
    if start < 0 or end < start or 'rel="next"' not in header:
        return None
    return header[start + 1 : end]


class _OneShot:
    """An iterable that yields its bytes once and then forgets them."""

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def __iter__(self) -> Iterator[bytes]:
        data, self._data = self._data, None
        if data is not None:
            yield data


def _chunks(data: bytes | Path, size: int) -> Iterator[bytes]:
    if isinstance(data, bytes):
        for start in range(0, len(data), size):
            yield data[start : start + size]
        return
    with data.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def _read_capped(response: httpx.Response, cap: int, what: str) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise DigestMismatch(f"{what}: {declared} bytes is more than the {cap} expected")
    buf = bytearray()
    try:
        for chunk in response.iter_bytes(1 << 16):
            buf.extend(chunk)
            if len(buf) > cap:
                raise DigestMismatch(f"{what}: more than the {cap} bytes expected")
    except httpx.TransportError as exc:
        raise TransientRegistryError(
            f"{what}: download interrupted ({type(exc).__name__})"
        ) from None
    return bytes(buf)


def _verify(what: str, digest: Digest, size: int | None, data: bytes) -> None:
    if size is not None and len(data) != size:
        raise DigestMismatch(f"{what}: expected {size} bytes, got {len(data)}")
    if not digest.matches(data):
        raise DigestMismatch(
            f"{what}: content does not match its digest",
            hint="the registry or a proxy served altered content; do not trust it",
        )


def _media_type_from_body(data: bytes) -> str:
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


def _error_detail(response: httpx.Response) -> str:
    """The registry's own error code and message, shortened and redacted."""
    try:
        response.read()
        body = response.json()
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors and isinstance(errors, list) and isinstance(errors[0], dict):
            code = str(errors[0].get("code", ""))
            message = str(errors[0].get("message", ""))[:200]
            return redact(f": {code} {message}".rstrip())
    except (ValueError, httpx.HTTPError):
        pass
    return ""


def _is_tls_error(exc: Exception) -> bool:
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or ("SSL" in text and "certificate" in text)
