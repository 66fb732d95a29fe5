"""A small OCI distribution client on httpx.

One class, :class:`RegistryClient`, with one job: speak the distribution API to one
registry. It is the largest module on purpose (auth, retries, uploads and verified reads
belong together); the pure pieces it uses live beside it (``auth``, ``reference``).

What it does: manifests (GET/HEAD with OCI Accept headers, PUT of raw bytes,
tag by re-putting the exact bytes so the digest never changes), blobs (HEAD,
verified GET, monolithic upload for small blobs, chunked streaming upload for
large ones, cross-repository mount, a streamed registry-to-registry copy),
tag listing page by page (``n``/``last``, ``Link``), anonymous/Basic/Bearer
auth driven by the registry's ``WWW-Authenticate`` challenge (Docker identity
tokens too), and bounded retries with backoff on 429, 5xx and connection errors.

Invariants:

- Every manifest or blob read is checked against its digest and, when known,
  its size before it is returned (:class:`DigestMismatch` otherwise; a body that
  ends early is :class:`IncompleteBody`, transient, never "tampering").
- A large blob is never held whole in memory: uploads stream from a file in
  chunks, downloads stream to a file, copies stream from one registry into the
  other.
- Every phase of every request has a deadline (:mod:`steps.oci.transport`):
  connect, response headers, body; each is ``min(its limit, what the command's
  deadline leaves)``, and a phase that runs out says what it was waiting for.
- Failures are classified for the exit code: a host that does not resolve and
  TLS/plain-HTTP mismatches are bad input (2, never retried, the hint names the
  caller's flag, :class:`FlagNames`); refused connections, timeouts, 429/5xx are
  transient (75) after the retry policy's attempts.
- Plain HTTP is only used for loopback hosts or hosts named explicitly as
  insecure; anything else is HTTPS with certificate verification.
- No header value, password or token is ever logged or put in an error
  message; every secret is registered with :mod:`steps.redact`.

What it does not do: it does not understand what an artifact *means* (charts,
bundles and releases are built by their own modules), it reads no environment
(retry policy, timeouts, deadline and credentials are the caller's), and it
keeps no state beyond the token cache and request statistics.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import socket
import ssl
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlencode, urljoin, urlsplit

from steps.errors import BadInput, ReleaseError
from steps.oci import mediatypes as mt
from steps.oci.auth import (
    Challenge,
    Credentials,
    TokenCache,
    authorization,
    parse_challenge,
    scope_for,
    token_query,
)
from steps.oci.bodies import Counted, OneShot, chunks, regroup
from steps.oci.errors import (
    AuthError,
    CommandTimeout,
    DigestMismatch,
    IncompleteBody,
    InsecureRegistry,
    NotFound,
    ProtocolMismatch,
    RegistryError,
    RegistryRefused,
    RegistryTimeout,
    TransientRegistryError,
    UnresolvableHost,
    error_detail,
)
from steps.oci.httpxlib import httpx
from steps.oci.model import (
    MAX_MANIFEST_SIZE,
    PULL,
    PUSH,
    ClientStats,
    Descriptor,
    FlagNames,
    Manifest,
    Progress,
    media_type_from_body,
    plain_http_allowed,
)
from steps.oci.reference import Digest, check_registry, check_repository, check_tag, digest_stream
from steps.oci.transport import (
    Deadline,
    DeadlineTransport,
    Phase,
    PhaseClock,
    Timeouts,
    caused_by,
    certificate_failed,
    direct_body,
    iterate_in_phase,
    resolve_error,
    spoke_plain_http_to_tls,
    spoke_tls_to_plain_http,
)
from steps.redact import register_secret

log = logging.getLogger("alga_release.oci")


#: Blobs up to this size are uploaded in one PUT; larger ones in chunks.
DEFAULT_MONOLITHIC_LIMIT = 4 * 1024 * 1024
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: A request that stalls (a phase runs out) is tried again this many times at most, whatever
#: the retry policy: a registry that stalls twice running is stalled, not unlucky.
_MAX_STALLS = 1
#: Set on an error that happened while reading a response body (worth re-sending the request).
_IN_BODY = "_alga_in_body"
ENV_RETRY_DELAY = "ALGA_RETRY_BASE_DELAY"
ENV_RETRY_ATTEMPTS = "ALGA_RETRY_ATTEMPTS"
#: A blob copy streamed from another registry is PATCHed in pieces of this size (each
#: streamed as it arrives, so memory does not grow with it; 64 MiB pieces made a 500 MB
#: registry-to-registry copy 2-3 % slower here than 128 MiB or one piece).
DEFAULT_STREAM_CHUNK_SIZE = 128 * 1024 * 1024
#: How many manifests :meth:`RegistryClient.head_manifests` looks for at once.
HEAD_JOBS = 4
#: ``remember_by_digest``: manifests and blobs up to this size are kept, this much in all.
REMEMBER_ITEM_LIMIT = 1024 * 1024
REMEMBER_TOTAL_LIMIT = 32 * 1024 * 1024

_T = TypeVar("_T")
_E = TypeVar("_E", bound=ReleaseError)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter.

    One policy object serves every request a command makes; the caller builds it (the CLI
    from its flags and ``ALGA_RETRY_ATTEMPTS`` / ``ALGA_RETRY_BASE_DELAY`` through
    :meth:`from_env`) and hands it to every client.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        attempts: int | None = None,
        base_delay: float | None = None,
    ) -> RetryPolicy:
        """The policy from ``env`` (the caller passes ``os.environ``); explicit
        ``attempts`` / ``base_delay`` (from flags) win over the variables."""
        attempts_text = str(attempts) if attempts is not None else env.get(ENV_RETRY_ATTEMPTS, "5")
        delay_text = str(base_delay) if base_delay is not None else env.get(ENV_RETRY_DELAY, "0.5")
        try:
            count = int(attempts_text)
            delay = float(delay_text)
        except ValueError:
            raise BadInput(
                f"{ENV_RETRY_ATTEMPTS}={attempts_text!r} / {ENV_RETRY_DELAY}={delay_text!r}: "
                "expected a whole number of attempts and a delay in seconds"
            ) from None
        if not math.isfinite(delay):
            raise BadInput(f"{ENV_RETRY_DELAY}={delay_text!r} is not a finite number of seconds")
        return cls(attempts=max(1, count), base_delay=max(0.0, delay))

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
    """Talks to one registry host. Not thread-safe; make one per thread.

    ``retry``, ``timeouts`` and ``deadline`` are the caller's: one :class:`RetryPolicy`
    and one :class:`~steps.oci.model.Deadline` per command, shared by its clients.
    ``deadline`` may be replaced later (``client.deadline = ...``). ``flags`` names the
    caller's own flags in hints (:class:`FlagNames`).
    """

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = None,
        plain_http: bool = False,
        insecure_hosts: Sequence[str] = (),
        verify: bool | str | ssl.SSLContext = True,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        timeouts: Timeouts | None = None,
        deadline: Deadline | None = None,
        flags: FlagNames | None = None,
        monolithic_limit: int = DEFAULT_MONOLITHIC_LIMIT,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        stream_chunk_size: int = DEFAULT_STREAM_CHUNK_SIZE,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        remember_by_digest: bool = False,
    ) -> None:
        #: What :meth:`spawn` builds a sibling from (no custom transport: then no sibling).
        self._settings: dict[str, Any] | None = (
            None
            if transport is not None
            else {
                "registry": registry,
                "credentials": credentials,
                "plain_http": plain_http,
                "insecure_hosts": insecure_hosts,
                "verify": verify,
                "retry": retry,
                "timeout": timeout,
                "timeouts": timeouts,
                "deadline": deadline,
                "flags": flags,
                "monolithic_limit": monolithic_limit,
                "chunk_size": chunk_size,
                "stream_chunk_size": stream_chunk_size,
                "sleep": sleep,
            }
        )
        self.registry = check_registry(registry)
        #: Small manifests and blobs read (or pushed) by digest, kept for the client's life
        #: when ``remember_by_digest``: a digest's bytes never change, so a run that reads
        #: the same release five times asks once. Off by default (a client may be meant to
        #: see a deletion); the CLI's run context turns it on.
        self._by_digest: dict[tuple[str, str, str], Manifest | bytes] | None = (
            {} if remember_by_digest else None
        )
        self._remembered = 0
        #: Inside :meth:`snapshot`: each manifest HEAD's answer, by (repository, reference).
        self._heads: dict[tuple[str, str], Descriptor | None] | None = None
        self.flags = flags or FlagNames()
        if plain_http and not plain_http_allowed(registry, insecure_hosts):
            raise InsecureRegistry(
                f"refusing plain HTTP to {registry}: only loopback hosts may use "
                f"{self.flags.plain_http} on its own",
                hint=f"use HTTPS, or name the host explicitly with "
                f"{self.flags.insecure_registry} {registry} (with {self.flags.plain_http})",
            )
        self._insecure_hosts = tuple(insecure_hosts)
        self.scheme = "http" if plain_http else "https"
        self.base_url = f"{self.scheme}://{registry}"
        self.credentials = credentials
        self.retry = retry or RetryPolicy()
        if timeouts is None:
            timeouts = Timeouts()
            if timeout is not None:  # the old single knob: every limit at most this
                timeouts = Timeouts(
                    connect=min(timeouts.connect, timeout),
                    headers=timeout,
                    body=timeout,
                    idle=timeout,
                )
        self.timeouts = timeouts
        self.deadline = deadline or Deadline.never()
        self.monolithic_limit = monolithic_limit
        self.chunk_size = chunk_size
        self.stream_chunk_size = stream_chunk_size
        self.stats = ClientStats()
        self._sleep = sleep
        self._tokens = TokenCache()
        self._basic = False  # the registry asked for Basic auth: send it up front
        self._clock = PhaseClock()
        if isinstance(verify, str):
            verify = ssl.create_default_context(cafile=verify)
        if self._settings is not None:  # a sibling shares these very objects
            self._settings.update(
                verify=verify,
                retry=self.retry,
                timeout=None,
                timeouts=self.timeouts,
                deadline=self.deadline,
                flags=self.flags,
            )
        self._http = httpx.Client(
            timeout=timeouts.httpx(),
            verify=verify,
            follow_redirects=False,
            transport=transport or DeadlineTransport(self._clock, verify=verify),
            headers={"User-Agent": "alga-release"},
        )

    # -- lifecycle -------------------------------------------------------

    def spawn(self) -> RegistryClient | None:
        """A sibling for another thread (a client serves one thread at a time): the same
        registry, credentials, limits, retry policy and deadline, its own connections,
        starting with the tokens this client holds (so it asks the token service only for
        scopes this one lacks). None for a client made with a custom transport. The caller
        closes it and may :meth:`~steps.oci.model.ClientStats.absorb` its stats."""
        if self._settings is None:
            return None
        sibling = RegistryClient(**self._settings)
        sibling._tokens.adopt(self._tokens)
        sibling._basic = self._basic
        return sibling

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> None:
        """``GET /v2/`` with this client's credentials (answering the registry's challenge):
        returns when the registry accepts them; :class:`AuthError` when it refuses them.
        ``alga-release login`` calls it before storing anything."""
        self._request("GET", "/v2/", repository="", actions=(), what=self.registry)

    # -- manifests -------------------------------------------------------

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read-only command's view of the registry: inside the block, a manifest HEAD
        asked again for the same repository and reference is answered as it was the first
        time (``verify`` checks each image tag for its pieces and again for drift: once).
        For reads only; a manifest this client puts inside the block forgets the answers.
        Blocks do not nest: an inner one shares the outer one's answers."""
        if self._heads is not None:
            yield
            return
        self._heads = {}
        try:
            yield
        finally:
            self._heads = None

    def head_manifest(self, repository: str, ref: str | Digest) -> Descriptor | None:
        """The manifest's descriptor, or ``None`` when the tag or digest does not exist."""
        heads = self._heads
        if heads is None:
            return self._head_manifest(repository, ref)
        key = (repository, str(ref))
        if key not in heads:
            heads[key] = self._head_manifest(repository, ref)
        return heads[key]

    def head_manifests(
        self,
        queries: Sequence[tuple[str, str | Digest]],
        *,
        jobs: int = HEAD_JOBS,
        unreadable_missing: bool = False,
    ) -> list[Descriptor | None]:
        """:meth:`head_manifest` of each ``(repository, tag or digest)``, answered in order,
        up to ``jobs`` at once on sibling clients (:meth:`spawn`: their own connections,
        this client's tokens), so that a dozen HEADs' round trips overlap instead of
        adding up. Inside :meth:`snapshot` the answers are this client's, as one by one.
        ``unreadable_missing``: a 401 or 403 (these credentials may not read it) answers
        None. The first error in the queries' order is raised once every HEAD is answered.
        """
        from steps.oci.parallel import in_parallel, siblings

        heads = self._heads
        answers: list[Descriptor | None] = [None] * len(queries)
        asked = []
        for index, (repository, ref) in enumerate(queries):
            if heads is not None and (repository, str(ref)) in heads:
                answers[index] = heads[(repository, str(ref))]
            else:
                asked.append(index)

        def one(index: int, worker: RegistryClient) -> Descriptor | RegistryError | None:
            try:
                return worker._head_manifest(*queries[index])
            except RegistryError as exc:
                return exc  # raised below, in the queries' order

        with siblings(self, min(jobs, len(asked))) as workers:
            found = in_parallel(asked, one, workers)
        failed: RegistryError | None = None
        for index, answer in zip(asked, found, strict=True):
            if not isinstance(answer, RegistryError):
                answers[index] = answer
                if heads is not None:
                    repository, ref = queries[index]
                    heads[(repository, str(ref))] = answer
            elif failed is None and not (unreadable_missing and answer.status in (401, 403)):
                failed = answer
        if failed is not None:
            raise failed
        return answers

    def _head_manifest(self, repository: str, ref: str | Digest) -> Descriptor | None:
        check_repository(repository)
        what = f"{self.registry}/{repository}{_sep(ref)}{ref}"
        response = self._pull_manifest("HEAD", repository, ref, what, allow={404})
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

    def _pull_manifest(
        self, method: str, repository: str, ref: str | Digest, what: str, **extra: Any
    ) -> httpx.Response:
        """HEAD or GET of a manifest, accepting every manifest type we read."""
        return self._request(
            method,
            f"/v2/{repository}/manifests/{ref}",
            repository=repository,
            actions=PULL,
            what=what,
            headers={"Accept": ", ".join(mt.MANIFEST_ACCEPT)},
            **extra,
        )

    def get_manifest(self, repository: str, ref: str | Digest) -> Manifest:
        """The manifest's exact bytes, checked against its digest and size cap."""
        check_repository(repository)
        if isinstance(ref, Digest):
            kept = self._recall("manifest", repository, ref)
            if isinstance(kept, Manifest):
                return kept
        what = f"{self.registry}/{repository}{_sep(ref)}{ref}"
        got = self._retry_body(lambda: self._get_manifest_once(repository, ref, what), what)
        self._remember("manifest", repository, got.digest, got, len(got.data))
        return got

    def _recall(self, kind: str, repository: str, digest: Digest) -> Manifest | bytes | None:
        if self._by_digest is None:
            return None
        return self._by_digest.get((kind, repository, str(digest)))

    def _remember(
        self, kind: str, repository: str, digest: Digest, value: Manifest | bytes, size: int
    ) -> None:
        if (
            self._by_digest is None
            or size > REMEMBER_ITEM_LIMIT
            or self._remembered + size > REMEMBER_TOTAL_LIMIT
        ):
            return
        key = (kind, repository, str(digest))
        if key not in self._by_digest:
            self._by_digest[key] = value
            self._remembered += size

    def _get_manifest_once(self, repository: str, ref: str | Digest, what: str) -> Manifest:
        response = self._pull_manifest("GET", repository, ref, what, stream=True)
        try:
            data = self._read_capped(response, MAX_MANIFEST_SIZE, what)
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
            media_type = media_type_from_body(data)
        return Manifest(data, media_type, digest)

    def put_manifest(
        self, repository: str, ref: str | Digest, data: bytes, media_type: str
    ) -> Digest:
        """PUT the exact bytes under a tag or digest; returns their digest (checked)."""
        if self._heads:
            self._heads.clear()  # a snapshot's answers are stale once this client writes
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
        if self._heads:
            self._heads.clear()  # as put_manifest
        if self._by_digest is not None:
            self._by_digest.pop(("manifest", repository, str(digest)), None)
        self._request(
            "DELETE",
            f"/v2/{repository}/manifests/{digest}",
            repository=repository,
            actions=("pull", "push", "delete"),
            what=f"{self.registry}/{repository}@{digest}",
            allow={202},
        )

    def list_tags(self, repository: str, *, page_size: int = 1000) -> list[str]:
        """Every tag of the repository, page by page; [] when the repository is unknown.

        Follows the ``Link: <...>; rel="next"`` header (RFC 5988/8288) the registry sends;
        a registry that sends none but fills a page is asked again with ``last=``. A page
        that repeats itself ends the listing (no endless loop on a broken registry).
        """
        return list(self.iter_tags(repository, page_size=page_size))

    def iter_tags(self, repository: str, *, page_size: int = 1000) -> Iterator[str]:
        """:meth:`list_tags`, one page at a time."""
        check_repository(repository)
        what = f"{self.registry}/{repository}"
        path: str | None = f"/v2/{repository}/tags/list?{urlencode({'n': page_size})}"
        seen_pages: set[str] = set()
        seen_tags: set[str] = set()
        while path and path not in seen_pages:
            seen_pages.add(path)
            body, link = self._retry_body(partial(self._tags_page, path, repository), what)
            if body is None:
                return
            page = [t for t in body if t not in seen_tags]
            seen_tags.update(page)
            yield from page
            path = _next_link(link)
            if path is not None:
                path = self._same_origin_path(path, what)
            elif len(body) >= page_size and page:
                path = f"/v2/{repository}/tags/list?{urlencode({'n': page_size, 'last': page[-1]})}"

    def _tags_page(self, path: str, repository: str) -> tuple[list[str] | None, str | None]:
        what = f"{self.registry}/{repository}"
        response = self._request(
            "GET", path, repository=repository, actions=PULL, what=what, allow={404}, stream=True
        )
        try:
            if response.status_code == 404:
                return None, None
            data = self._read_capped(response, MAX_MANIFEST_SIZE, what)
        finally:
            response.close()
        try:
            body = json.loads(data)
        except ValueError:
            raise RegistryRefused(f"{what}: the tag list is not JSON") from None
        tags = body.get("tags") if isinstance(body, dict) else None
        if tags is None:
            return [], response.headers.get("Link")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise RegistryRefused(f"{what}: the tag list's 'tags' is not a list of strings")
        return tags, response.headers.get("Link")

    def _same_origin_path(self, link: str, what: str) -> str:
        url = urljoin(self.base_url + "/", link)
        if _origin(url) != _origin(self.base_url):
            raise RegistryRefused(
                f"{what}: the tag list's next page points at another host ({urlsplit(url).netloc})"
            )
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

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
        kept = self._recall("blob", repository, digest)
        if isinstance(kept, bytes) and len(kept) <= max_size and size in (None, len(kept)):
            return kept
        what = f"{self.registry}/{repository}@{digest}"

        def once() -> bytes:
            response = self._get_blob_response(repository, digest, what)
            try:
                data = self._read_capped(
                    response, size if size is not None else max_size, what, size=size
                )
            finally:
                response.close()
            self.stats.bytes_downloaded += len(data)
            _verify(what, digest, size, data)
            return data

        data = self._retry_body(once, what)
        self._remember("blob", repository, digest, data, len(data))
        return data

    def _get_blob_response(self, repository: str, digest: Digest, what: str) -> httpx.Response:
        return self._request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            repository=repository,
            actions=PULL,
            what=what,
            stream=True,
            follow=True,
        )

    def download_blob(
        self,
        repository: str,
        digest: Digest,
        dest: BinaryIO,
        *,
        size: int | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Stream a blob into ``dest``; raises before returning if it does not verify.

        The caller must discard ``dest``'s content when this raises (an
        :class:`IncompleteBody` is worth a retry into a fresh ``dest``).
        """
        check_repository(repository)
        what = f"{self.registry}/{repository}@{digest}"
        hasher = digest.hasher()
        total = 0
        for chunk in self.stream_blob(repository, digest, size=size):
            hasher.update(chunk)
            dest.write(chunk)
            total += len(chunk)
            if progress is not None:
                progress(total, size)
        if hasher.hexdigest() != digest.hex:
            raise DigestMismatch(f"{what}: downloaded bytes do not match the digest")
        return total

    def stream_blob(
        self, repository: str, digest: Digest, *, size: int | None = None
    ) -> Generator[bytes, None, None]:
        """The blob's bytes as they arrive, with the body's deadline: each piece is what one
        socket receive returned (up to ``transport.READ_SIZE``), decoded, never re-chunked
        (httpx's chunker joined them into 1 MiB pieces, two more copies of every byte: 0.16 s
        of CPU per 500 MB).

        Checks the length as it goes (more than ``size`` is :class:`DigestMismatch`,
        fewer is :class:`IncompleteBody`); the digest is the consumer's to check on the
        bytes it received (:meth:`download_blob` and :meth:`copy_blob` do).
        """
        check_repository(repository)
        what = f"{self.registry}/{repository}@{digest}"
        response = self._get_blob_response(repository, digest, what)
        total = 0
        try:
            expected = size if size is not None else _content_length(response)
            for chunk in self._body(response, what, expected, None):
                total += len(chunk)
                if size is not None and total > size:
                    raise DigestMismatch(f"{what}: more than the expected {size} bytes served")
                yield chunk
        finally:
            response.close()
            self.stats.bytes_downloaded += total
        if size is not None and total != size:
            raise _in_body(
                IncompleteBody(
                    f"{what}: the download ended after {total} of {size} bytes",
                    hint="the connection to the registry broke off; retry",
                )
            )

    def push_blob(
        self,
        repository: str,
        data: bytes | Path,
        *,
        digest: Digest | None = None,
        mount_from: Sequence[str] = (),
        progress: Progress | None = None,
        likely_new: bool = False,
    ) -> str:
        """Make sure the blob is in ``repository``: ``"existing"``, ``"mounted"`` or ``"uploaded"``.

        ``data`` is bytes (small blobs) or a file path (streamed, never read whole).
        ``mount_from`` names other repositories of this registry that may hold the blob.
        ``likely_new``: the blob was made for this push (a new version's config, chart or
        record), so a small one (up to ``monolithic_limit``) is uploaded without a HEAD
        first: one request fewer, and at worst its few bytes sent again. A larger one,
        and one that may be mounted, is looked for first all the same.
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
        look = not likely_new or bool(mount_from) or size > self.monolithic_limit
        if look and self.head_blob(repository, digest) is not None:
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
        blob_digest = digest

        def upload() -> None:
            if size <= self.monolithic_limit:
                payload = data if isinstance(data, bytes) else data.read_bytes()
                self._upload_monolithic(repository, blob_digest, payload, what)
                if progress is not None:
                    progress(size, size)
            else:
                self._upload_chunked(
                    repository,
                    blob_digest,
                    chunks(data, self.chunk_size),
                    size,
                    what,
                    progress=progress,
                )

        return self._restarting(upload, what)

    def copy_blob(
        self,
        source: RegistryClient,
        source_repository: str,
        repository: str,
        digest: Digest,
        size: int,
        *,
        progress: Progress | None = None,
    ) -> str:
        """Copy a blob from ``source`` (another registry's client) into ``repository``
        of this registry, streaming: ``"existing"`` or ``"uploaded"``.

        Memory stays bounded (one piece of the stream at a time); no temporary file:
        a failed attempt re-reads the source. A blob up to ``monolithic_limit`` goes in one
        PUT; a larger one in PATCHes of ``stream_chunk_size`` bytes (128 MiB: 4 for a
        500 MB layer), each PATCH's body streamed as it arrives. The source's bytes are
        hashed on the way; a mismatch cancels the upload before anything is committed.
        """
        check_repository(repository)
        check_repository(source_repository)
        what = f"{self.registry}/{repository}@{digest}"
        if self.head_blob(repository, digest) is not None:
            self.stats.blobs_existing += 1
            return "existing"
        source_what = f"{source.registry}/{source_repository}@{digest}"

        def upload() -> None:
            hasher = digest.hasher()
            # No reader thread ahead of the upload: the kernel's socket buffers already let
            # the download run ahead while the upload sends, and a thread handing pieces
            # over cost 10-20% more CPU for the same time (500 MB and 8 x 32 MB copies).
            stream = source.stream_blob(source_repository, digest, size=size)

            def pieces() -> Iterator[bytes]:
                done = 0
                for chunk in stream:
                    hasher.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, size)
                    yield chunk

            def check() -> None:
                if hasher.hexdigest() != digest.hex:
                    raise DigestMismatch(
                        f"{source_what}: the source's bytes do not match the digest",
                        hint="the source registry or a proxy served altered content",
                    )

            try:
                if size <= self.monolithic_limit:
                    payload = b"".join(pieces())
                    check()
                    self._upload_monolithic(repository, digest, payload, what)
                else:
                    self._upload_chunked(
                        repository,
                        digest,
                        regroup(pieces(), self.stream_chunk_size),
                        size,
                        what,
                        before_commit=check,
                    )
            finally:
                stream.close()  # a failed attempt lets go of the source (and its thread) now

        return self._restarting(upload, what)

    def _restarting(self, upload: Callable[[], None], what: str) -> str:
        """Run ``upload``; a transient failure starts a new upload session (a broken one
        cannot be resumed reliably), within the retry policy and the deadline."""
        for attempt in range(self.retry.attempts):
            try:
                upload()
                self.stats.blobs_uploaded += 1
                return "uploaded"
            except CommandTimeout:
                raise
            except TransientRegistryError as exc:
                if attempt + 1 >= self.retry.attempts:
                    raise
                self._backoff(attempt, None, f"upload of {what}: restarting", exc)
        raise AssertionError("unreachable")  # pragma: no cover (attempts >= 1)

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
            self._cancel_upload(repository, self._absolute(location))
        return location or ""

    def _cancel_upload(self, repository: str, location: str) -> None:
        with contextlib.suppress(ReleaseError):
            self._request(
                "DELETE",
                location,
                repository=repository,
                actions=PUSH,
                what="upload session",
                allow={204, 404},
                attempts=1,
            )

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
        self._commit_upload(
            repository,
            location,
            digest,
            what,
            {"Content-Type": "application/octet-stream"},
            payload,
        )
        self.stats.bytes_uploaded += len(payload)

    def _commit_upload(
        self,
        repository: str,
        location: str,
        digest: Digest,
        what: str,
        headers: dict[str, str],
        content: bytes | None = None,
    ) -> None:
        """The closing ``PUT ?digest=`` of an upload session (with the body, for a
        monolithic upload). Never retried here: the session is gone once it fails."""
        self._request(
            "PUT",
            _with_query(location, {"digest": str(digest)}),
            repository=repository,
            actions=PUSH,
            what=what,
            allow={201},
            attempts=1,
            headers=headers,
            content=content,
        )

    def _upload_chunked(
        self,
        repository: str,
        digest: Digest,
        chunks: Iterable[bytes | Iterable[bytes]],
        size: int,
        what: str,
        *,
        progress: Progress | None = None,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        """PATCH each item of ``chunks`` (bytes, or a stream of pieces with its length
        known from ``size`` and ``stream_chunk_size``), then commit with the digest."""
        location = self._start_upload(repository, what)
        offset = 0
        try:
            for chunk in chunks:
                if isinstance(chunk, bytes):
                    length = len(chunk)
                    # httpx request/response objects form reference cycles that outlive
                    # the call until the garbage collector runs; handing the bytes over in
                    # a one-shot iterable lets them go as soon as they are sent.
                    body: OneShot | Counted = OneShot(chunk)
                    del chunk
                else:
                    length = min(self.stream_chunk_size, size - offset)
                    body = Counted(chunk, length, what)
                end = offset + length - 1
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
                    content=body,
                    upload_size=length,
                )
                self.stats.bytes_uploaded += length
                offset += length
                location = self._absolute(response.headers.get("Location") or location)
                log.debug("uploaded %d/%d bytes of %s", offset, size, digest.short)
                if progress is not None:
                    progress(offset, size)
            if offset != size:
                raise RegistryRefused(
                    f"{what}: the content changed while uploading ({offset} != {size} bytes)"
                )
            if before_commit is not None:
                before_commit()
        except BaseException:
            self._cancel_upload(repository, location)
            raise
        self._commit_upload(repository, location, digest, what, {"Content-Length": "0"})

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
        content: bytes | OneShot | Counted | None = None,
        allow: set[int] | frozenset[int] = frozenset(),
        stream: bool = False,
        follow: bool = False,
        extra_scopes: Sequence[str] = (),
        attempts: int | None = None,
        upload_size: int | None = None,
    ) -> httpx.Response:
        """Send one request with auth, redirects and retries; map failures to errors.

        ``allow`` lists non-2xx statuses the caller handles itself. ``attempts=1``
        disables retries (used inside upload sessions, which restart as a whole).
        ``repository=""`` asks for no scope (``GET /v2/``).
        """
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        self._check_target(url, what)
        # Credentials go to the registry itself only, never to a host an upload Location
        # or a redirect names (object storage takes pre-signed URLs).
        own_origin = _origin(url) == _origin(self.base_url)
        scopes = [scope_for(repository, actions), *extra_scopes] if repository else []
        max_attempts = attempts or self.retry.attempts
        auth_tried = False
        attempt = stalls = 0
        if upload_size is None and isinstance(content, bytes):
            upload_size = len(content)
        while True:
            request_headers = dict(headers or {})
            authorization = self._authorization(scopes) if own_origin else None
            if authorization:
                request_headers["Authorization"] = authorization
            try:
                response = self._send(
                    method, url, request_headers, content, stream, follow, upload_size, what
                )
            except _Retryable as failure:
                attempt += 1
                stalled = isinstance(failure.error, RegistryTimeout)
                if (
                    attempt >= max_attempts
                    or isinstance(content, (OneShot, Counted))
                    or (stalled and stalls >= _MAX_STALLS)
                ):
                    raise _exhausted(failure.error, attempt) from None
                stalls += stalled
                self._backoff(attempt - 1, None, f"{method} {what}: {failure.why}", failure.error)
                continue
            status = response.status_code
            if status == 401 and isinstance(content, (OneShot, Counted)):
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
                error = TransientRegistryError(
                    f"{what}: {self.registry} answered {status} to {method} "
                    f"after {attempt} attempt(s)",
                    hint="the registry is overloaded or failing; retry later",
                    status=status,
                )
                if attempt >= max_attempts:
                    raise error
                self._backoff(attempt - 1, retry_after, f"{method} {what}: {status}", error)
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
        plain_registry = self.registry if self.scheme == "http" else None
        if parts.scheme == "http" and plain_http_allowed(
            parts.netloc, self._insecure_hosts, plain_registry
        ):
            return
        raise InsecureRegistry(
            f"{what}: refusing {parts.scheme or 'a relative'} URL {parts.scheme}://{parts.netloc}"
            f"{parts.path} from {self.registry}: plain HTTP only to loopback or named hosts",
            hint=f"name the host with {self.flags.insecure_registry} {parts.netloc} "
            "if this is intended",
        )

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | OneShot | Counted | None,
        stream: bool,
        follow: bool,
        upload_size: int | None,
        what: str,
    ) -> httpx.Response:
        self.stats.requests += 1
        self.stats.by_method[method] = self.stats.by_method.get(method, 0) + 1
        response = self._send_one(method, url, headers, content, upload_size, what)
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
            response = self._send_one(method, target, redirect_headers, None, None, what)
        log.debug("%s %s -> %d", method, urlsplit(url).path, response.status_code)
        if (
            self.scheme == "http"
            and response.status_code == 400
            and _origin(url) == _origin(self.base_url)
        ):
            self._check_plain_http_answer(response, what)
        if not stream:
            try:
                self._read_all(response, what)
            finally:
                response.close()
        return response

    def _send_one(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | OneShot | Counted | None,
        upload_size: int | None,
        what: str,
    ) -> httpx.Response:
        parts = urlsplit(url)
        limit = self.timeouts.connect + self.timeouts.headers
        if upload_size:
            limit += self.timeouts.transfer(upload_size)
        phase = self._clock.make(f"response headers from {parts.netloc}", limit, self.deadline)
        if phase.limit <= 0:
            raise self._command_timeout(phase, f"{method} {parts.path}", what)
        request = self._http.build_request(method, url, headers=headers, content=content)
        with self._clock.scope(phase):
            try:
                return self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                raise self._transport_failure(exc, phase, method, url, what) from None

    def _body_phase(self, response: httpx.Response, size: int | None) -> Phase:
        netloc = response.request.url.netloc.decode("ascii")
        return self._clock.make(
            f"complete response body from {netloc}",
            self.timeouts.transfer(size),
            self.deadline,
            idle=self.timeouts.idle,
        )

    def _body(
        self, response: httpx.Response, what: str, size: int | None, chunk_size: int | None
    ) -> Iterator[bytes]:
        """The response body, piece by piece, under its own deadline."""
        expected = size if size is not None else _content_length(response)
        phase = self._body_phase(response, expected)
        received = 0
        pieces = None
        if chunk_size is None:  # a big plain body straight from the socket
            pieces = direct_body(response, self._clock, phase, self.timeouts.idle)
        if pieces is None:
            pieces = iterate_in_phase(self._clock, phase, response.iter_bytes(chunk_size))
        try:
            for chunk in pieces:
                received += len(chunk)
                yield chunk
        except httpx.TransportError as exc:
            raise self._body_error(exc, phase, response, what, received, expected) from None

    def _read_all(self, response: httpx.Response, what: str) -> bytes:
        """The whole (small) body, read under its deadline; kept on ``response``."""
        expected = _content_length(response)
        phase = self._body_phase(response, expected)
        try:
            with self._clock.scope(phase):
                return response.read()
        except httpx.TransportError as exc:
            raise self._body_error(exc, phase, response, what, 0, expected) from None

    def _body_error(
        self,
        exc: httpx.TransportError,
        phase: Phase,
        response: httpx.Response,
        what: str,
        received: int,
        expected: int | None,
    ) -> ReleaseError:
        request = response.request
        error: ReleaseError
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
            of = f" of {expected}" if expected is not None else ""
            error = IncompleteBody(
                f"{what}: the response body of {request.method} {request.url.path} broke off "
                f"after {received}{of} bytes ({type(exc).__name__})",
                hint="the connection to the registry broke; retry",
            )
        else:
            failure = self._transport_failure(exc, phase, request.method, str(request.url), what)
            error = failure.error
        return _in_body(error)

    def _retry_body(self, fetch: Callable[[], _T], what: str) -> _T:
        """Run ``fetch`` (one request and its body) again when the body broke off or
        stalled; the request itself was already retried by :meth:`_request`."""
        stalls = 0
        for attempt in range(self.retry.attempts):
            try:
                return fetch()
            except (IncompleteBody, RegistryTimeout) as exc:
                if not getattr(exc, _IN_BODY, False):
                    raise  # a failure before the body: _request already retried it
                stalled = isinstance(exc, RegistryTimeout)
                if attempt + 1 >= self.retry.attempts or (stalled and stalls >= _MAX_STALLS):
                    raise
                stalls += stalled
                self._backoff(attempt, None, f"{what}: {type(exc).__name__}", exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_capped(
        self, response: httpx.Response, cap: int, what: str, *, size: int | None = None
    ) -> bytes:
        declared = _content_length(response)
        if declared is not None and declared > cap:
            raise DigestMismatch(f"{what}: {declared} bytes is more than the {cap} expected")
        buf = bytearray()
        for chunk in self._body(response, what, size if size is not None else declared, 1 << 16):
            buf.extend(chunk)
            if len(buf) > cap:
                raise DigestMismatch(f"{what}: more than the {cap} bytes expected")
        short_of = size if size is not None else declared
        if short_of is not None and len(buf) < short_of:
            raise _in_body(
                IncompleteBody(
                    f"{what}: the response ended after {len(buf)} of {short_of} bytes",
                    hint="the connection to the registry broke; retry",
                )
            )
        return bytes(buf)

    def _transport_failure(
        self, exc: httpx.TransportError, phase: Phase, method: str, url: str, what: str
    ) -> _Retryable:
        """Turn a transport error into the project's error: raise it when retrying cannot
        help (bad host name, TLS/plain-HTTP mismatch, the command's time is up, an
        unverifiable certificate); else return it wrapped for a retry."""
        parts = urlsplit(url)
        host = parts.hostname or parts.netloc
        where = f"{method} {parts.path}"
        resolve = resolve_error(exc)
        if resolve is not None:
            if resolve.errno == socket.EAI_AGAIN:
                return _Retryable(
                    TransientRegistryError(
                        f"{what}: cannot resolve {host} right now (temporary DNS failure)",
                        hint="the DNS server did not answer; retry later",
                    ),
                    "DNS",
                )
            raise UnresolvableHost(
                f"{what}: cannot resolve {host} ({where})",
                hint=f"check the host name {host}: it is not known to DNS (a typo?)",
            )
        if certificate_failed(exc):
            raise RegistryError(
                f"{what}: TLS certificate verification failed for {parts.netloc}",
                hint=f"install the registry's CA certificate (or pass it with "
                f"{self.flags.ca_file}), or check the host name",
            )
        if parts.scheme == "https" and spoke_tls_to_plain_http(exc):
            raise ProtocolMismatch(
                f"{what}: {parts.netloc} answered TLS with plain HTTP ({where})",
                hint=f"the registry speaks plain HTTP: pass {self.flags.plain_http} (a host "
                f"that is not loopback must also be named with "
                f"{self.flags.insecure_registry} {parts.netloc})",
            )
        if parts.scheme == "http" and spoke_plain_http_to_tls(exc):
            raise self._https_only(parts.netloc, where, what)
        if isinstance(exc, httpx.TimeoutException):
            spent = phase.until <= self._clock.clock() + 0.05
            if spent and phase.by_command:
                raise self._command_timeout(phase, where, what)
            if isinstance(exc, httpx.ConnectTimeout):
                waited, limit = f"no connection to {parts.netloc}", self.timeouts.connect
            elif isinstance(exc, httpx.WriteTimeout):
                waited = f"{parts.netloc} took no more of the request body"
                limit = self.timeouts.idle
            else:
                waited, limit = f"no {phase.waiting_for}", self.timeouts.idle
            if spent:
                limit = phase.limit
            return _Retryable(
                RegistryTimeout(
                    f"{what}: {waited} within {limit:g} s for {where}",
                    hint="the registry or the network is stalled; retry later, or allow more time",
                ),
                type(exc).__name__,
            )
        if isinstance(exc, httpx.ConnectError) and caused_by(exc, ConnectionRefusedError):
            why = f"connection refused by {parts.netloc}"
        else:
            why = f"cannot reach {parts.netloc} ({type(exc).__name__})"
        return _Retryable(
            TransientRegistryError(
                f"{what}: {why} for {where}",
                hint="the registry or the network is down; retry later",
            ),
            type(exc).__name__,
        )

    def _command_timeout(self, phase: Phase, where: str, what: str) -> CommandTimeout:
        seconds = self.deadline.seconds or 0.0
        return CommandTimeout(
            f"{what}: the command's time limit of {seconds:g} s ran out waiting for "
            f"{phase.waiting_for} ({where})",
            hint="the registry is slow or stalled; retry later, or allow more time (--timeout)",
        )

    def _https_only(self, netloc: str, where: str, what: str) -> ProtocolMismatch:
        return ProtocolMismatch(
            f"{what}: {netloc} speaks HTTPS, but was asked in plain HTTP ({where})",
            hint=f"drop {self.flags.plain_http} (and pass {self.flags.ca_file} if its "
            "certificate comes from a private CA)",
        )

    def _check_plain_http_answer(self, response: httpx.Response, what: str) -> None:
        """Go's TLS servers answer a plain-HTTP request with 400 and a telling body (an
        answer to HEAD has no body: then ``GET /v2/`` is asked once to read it)."""
        request = response.request
        probe = response
        if request.method == "HEAD":
            if response.http_version != "HTTP/1.0":  # Go's answer is HTTP/1.0, headerless
                return
            try:
                probe = self._send_one("GET", self.base_url + "/v2/", {}, None, None, what)
            except _Retryable:
                return
        try:
            text = self._read_all(probe, what)[:200].decode("utf-8", "replace").lower()
        except ReleaseError:
            return
        finally:
            if probe is not response:
                probe.close()
        if "http request to an https server" in text:
            response.close()
            raise self._https_only(
                request.url.netloc.decode("ascii"), f"{request.method} {request.url.path}", what
            )

    def _backoff(
        self,
        attempt: int,
        retry_after: str | None,
        why: str,
        error: ReleaseError | None = None,
    ) -> None:
        delay = self.retry.delay(attempt, retry_after)
        if error is not None and delay >= self.deadline.remaining():
            # Sleeping would outlive the command's deadline: give up now, with the cause.
            raise error
        self.stats.retries += 1
        log.info("retrying in %.1fs (%s)", delay, why)
        self._sleep(delay)

    def _authorization(self, scopes: list[str]) -> str | None:
        return authorization(self._tokens, scopes, self._basic, self.credentials)

    def _authenticate(self, challenge: Challenge | None, scopes: list[str], what: str) -> None:
        if challenge is None:
            raise AuthError(
                f"{what}: {self.registry} answered 401 without an authentication challenge"
            )
        if challenge.scheme == "basic":
            if self.credentials is None:
                raise AuthError(
                    f"{what}: {self.registry} requires credentials",
                    hint=f"set {self.flags.credentials_for(self.registry)}",
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
        if realm_parts.scheme == "http" and not plain_http_allowed(
            realm_parts.netloc, self._insecure_hosts
        ):
            raise AuthError(
                f"{what}: refusing to send credentials to a plain-HTTP token service",
                hint="the registry's token realm must be HTTPS",
            )
        if realm_parts.scheme not in ("http", "https"):
            raise AuthError(f"{what}: the registry's token realm {realm!r} is not an HTTP URL")
        creds = self.credentials
        headers: dict[str, str] = {}
        content: bytes | None = None
        if creds is not None and creds.identity_token:
            # Docker's identity token: an OAuth2 refresh token, exchanged by POST.
            method, url = "POST", realm
            form: list[tuple[str, str]] = [
                ("grant_type", "refresh_token"),
                ("refresh_token", creds.password),
                ("client_id", "alga-release"),
            ]
            if challenge.service:
                form.append(("service", challenge.service))
            if scopes:
                form.append(("scope", " ".join(scopes)))
            content = urlencode(form).encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            params, headers = token_query(challenge, scopes, creds)
            method = "GET"
            url = realm + ("&" if "?" in realm else "?") + urlencode(params) if params else realm
        token_what = f"{what} (token service {realm_parts.netloc})"
        status, body, retry_after = 0, b"", None
        for attempt in range(self.retry.attempts):
            self.stats.token_requests += 1
            self.stats.requests += 1
            try:
                response = self._send_one(method, url, headers, content, None, token_what)
                try:
                    body = self._read_all(response, token_what)
                finally:
                    response.close()
            except _Retryable as failure:
                if attempt + 1 >= self.retry.attempts:
                    raise _exhausted(failure.error, attempt + 1) from None
                self._backoff(attempt, None, f"token service: {failure.why}", failure.error)
                continue
            status, retry_after = response.status_code, response.headers.get("Retry-After")
            if status in _RETRY_STATUSES and attempt + 1 < self.retry.attempts:
                self._backoff(attempt, retry_after, "token service")
                continue
            break
        if status in (400, 401, 403):
            who = "anonymous access" if creds is None else "the given credentials"
            raise AuthError(
                f"{what}: the token service of {self.registry} refused {who} ({status})",
                hint=f"check {self.flags.credentials_for(self.registry)}, and that the "
                "account may access this repository",
                status=status,
            )
        if status in _RETRY_STATUSES:
            raise TransientRegistryError(
                f"{what}: the token service of {self.registry} answered {status}",
                status=status,
            )
        if status >= 300:
            raise AuthError(
                f"{what}: the token service of {self.registry} answered {status}",
                status=status,
            )
        try:
            parsed = json.loads(body)
            token = parsed.get("token") or parsed.get("access_token")
            expires_in = float(parsed.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            token = None
            expires_in = 60.0
        if not isinstance(token, str) or not token:
            raise AuthError(f"{what}: the token service of {self.registry} returned no token")
        register_secret(token)
        self._tokens.put(scopes, token, expires_in)

    def _error_detail(self, response: httpx.Response, what: str) -> str:
        """The registry's own error code and message, shortened and redacted."""
        try:
            body = self._read_all(response, what)
        except ReleaseError:
            return ""
        return error_detail(body)

    def _raise_for(self, response: httpx.Response, method: str, what: str) -> None:
        status = response.status_code
        detail = self._error_detail(response, what)
        if status == 401:
            if self.credentials is None:
                raise AuthError(
                    f"{what}: {self.registry} requires credentials for {method} (401){detail}",
                    hint=f"set {self.flags.credentials_for(self.registry)}",
                    status=status,
                )
            raise AuthError(
                f"{what}: {self.registry} refused the credentials (401){detail}",
                hint=f"check {self.flags.credentials_for(self.registry)}",
                status=status,
            )
        if status == 403:
            raise AuthError(
                f"{what}: {self.registry} denied {method} (403){detail}",
                hint="the account lacks permission on this repository (for ghcr.io: a token "
                "with write:packages, e.g. `gh auth refresh -s write:packages`)",
                status=status,
            )
        if status == 404:
            raise NotFound(f"{what}: not found in {self.registry}{detail}", status=status)
        raise RegistryRefused(
            f"{what}: {self.registry} rejected {method} with {status}{detail}", status=status
        )


# -- helpers ---------------------------------------------------------------


class _Retryable(Exception):
    """A failure worth another attempt (internal: never leaves the client)."""

    def __init__(self, error: RegistryError, why: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.why = why


def _in_body(error: _E) -> _E:
    """``error``, marked as having happened while a response body was read."""
    setattr(error, _IN_BODY, True)
    return error


def _exhausted(error: RegistryError, attempts: int) -> RegistryError:
    """``error`` again, its message saying how many attempts were made."""
    if attempts <= 1:
        return error
    return type(error)(
        f"{error.message} after {attempts} attempt(s)", hint=error.hint, status=error.status
    )


def _sep(ref: str | Digest) -> str:
    return "@" if isinstance(ref, Digest) else ":"


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _content_length(response: httpx.Response) -> int | None:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit():
        return int(declared)
    return None


def _next_link(header: str | None) -> str | None:
    """The target of the ``rel="next"`` link in a ``Link`` header (RFC 8288), or None.

    Handles several comma-separated links, quoted or bare ``rel`` values holding several
    relation types, and commas inside ``<...>``.
    """
    if not header:
        return None
    position = 0
    while True:
        start = header.find("<", position)
        if start < 0:
            return None
        end = header.find(">", start)
        if end < 0:
            return None
        target = header[start + 1 : end]
        following = header.find("<", end)
        params = header[end + 1 : following if following >= 0 else len(header)]
        for param in params.split(";"):
            name, sep, value = param.strip().partition("=")
            if sep and name.strip().lower() == "rel":
                relations = value.strip().strip(",").strip().strip('"').lower().split()
                if "next" in relations:
                    return target
        if following < 0:
            return None
        position = following


def _verify(what: str, digest: Digest, size: int | None, data: bytes) -> None:
    if size is not None and len(data) < size:
        raise _in_body(
            IncompleteBody(
                f"{what}: expected {size} bytes, got {len(data)}",
                hint="the connection to the registry broke; retry",
            )
        )
    if size is not None and len(data) != size:
        raise DigestMismatch(f"{what}: expected {size} bytes, got {len(data)}")
    if not digest.matches(data):
        raise DigestMismatch(
            f"{what}: content does not match its digest",
            hint="the registry or a proxy served altered content; do not trust it",
        )
