"""A read-only registry reader on the standard library, for commands that find nothing to do.

``alga-release images check``, the re-copy of a control plane that is already tagged, and
the unchanged re-run of ``manifest publish``, ``channel move`` and ``verify`` only read a
handful of manifests and small blobs. Started as their own processes (one per Argo step),
most of their time would go to importing the full client and its HTTP library. This
reader answers such a command on bare sockets instead (a strict HTTP/1.1 exchange of a
few dozen lines, :class:`_Connection`), under one rule: **it
only ever accepts the answer the full client would have accepted**, and gives up with
:class:`Doubt` on anything else. The caller then runs the whole command again on
:class:`~steps.oci.client.RegistryClient`, which has the retries, the per-phase
deadlines, the error messages and the hints. Reading twice is harmless: nothing here
writes; every write method raises :class:`Doubt`, so a command that finds work to do
starts over on the full client before it has changed anything.

What it accepts: ``200`` to a ``HEAD`` or ``GET`` of a manifest, with a
``Docker-Content-Digest`` on a HEAD, the digest asked for when asked by digest, a GET body
that matches its digest, its ``Content-Length`` and the manifest size cap; a ``404`` to a
manifest HEAD (``None``, as the full client) or GET (:class:`~steps.oci.errors.NotFound`,
worded as the full client words it); ``200`` to a GET of a blob of at most
:data:`BLOB_CAP` bytes that matches its digest and size, after at most five redirects to
HTTPS (or plain HTTP where the full client allows it), with the credentials sent to the
registry only; a ``401`` once per request, answered as the full client answers it (Basic
with the given credentials, or a Bearer token from the challenge's realm, fetched with
``GET`` and cached per scope).
What it doubts: every other status, a write or a tag listing, a refresh-token login, a
plain-HTTP token realm or redirect off loopback, a registry named in
``--insecure-registry`` over TLS, any socket, TLS or parse error, and a reader that runs
past its budget (:data:`BUDGET` seconds in all, or less when the command's ``--timeout``
leaves less): a watchdog closes its sockets then, so a registry that drips bytes cannot
hold it.

TLS trusts what the full client trusts: certifi's roots (or ``--ca-file``), TLS 1.2 or
newer, HTTP/1.1. Tokens and credentials are registered with :mod:`steps.redact` as the
full client registers them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlencode, urljoin, urlsplit

from steps.oci import mediatypes as mt
from steps.oci.auth import (
    Credentials,
    TokenCache,
    authorization,
    parse_challenge,
    scope_for,
    token_query,
)
from steps.oci.errors import NotFound, error_detail
from steps.oci.model import (
    MAX_MANIFEST_SIZE,
    PULL,
    ClientStats,
    Descriptor,
    Manifest,
    media_type_from_body,
    plain_http_allowed,
)
from steps.oci.reference import Digest, check_registry, check_repository
from steps.redact import register_secret

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterator, Sequence

log = logging.getLogger("alga_release.oci")

#: The most time, in seconds, a quick read may take before the full client takes over.
BUDGET = 10.0
#: The longest wait for one socket operation (connect, a response's headers, a body).
SOCKET_TIMEOUT = 5.0
_ACCEPT = ", ".join(mt.MANIFEST_ACCEPT)
_TOKEN_CAP = 1024 * 1024
#: The largest blob a quick read takes (a release, an index, a record): more is the full
#: client's.
BLOB_CAP = 4 * 1024 * 1024
_ERROR_CAP = 64 * 1024  # the body of an answer other than 200 (an error's JSON)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class Doubt(Exception):
    """The quick reader cannot answer exactly as the full client would: use the full one.

    Not a :class:`~steps.errors.ReleaseError`: nothing may report it as the command's
    outcome; the caller catches it and starts over with the full client."""


@dataclass
class _Budget:
    """The reader's time left, and the watchdog that closes its sockets when it runs out."""

    seconds: float
    started: float = field(default_factory=time.monotonic)
    expired: bool = False
    _timer: threading.Timer | None = None
    _sockets: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self._timer is None:
                self._timer = threading.Timer(max(self.left(), 0.0), self._expire)
                self._timer.daemon = True
                self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()


class QuickReader:
    """HEAD and GET of manifests and small blobs in one registry, on kept-alive connections.

    Duck-types the reading half of :class:`~steps.oci.client.RegistryClient` (``registry``,
    ``stats``, :meth:`head_manifest`, :meth:`get_manifest`, :meth:`get_blob`,
    :meth:`snapshot`, :meth:`spawn`) for :mod:`steps.release.images`,
    :func:`steps.controlplane.copy.already_copied` and, through
    :func:`steps.cli.context.quick_read`, the channel, manifest and verify commands; its
    write methods raise :class:`Doubt`.
    """

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = None,
        plain_http: bool = False,
        insecure_hosts: tuple[str, ...] = (),
        verify: bool | str = True,
        budget: float | None = None,
    ) -> None:
        self.registry = check_registry(registry)
        if plain_http and not plain_http_allowed(registry, insecure_hosts):
            raise Doubt("plain HTTP off loopback: the full client refuses it")
        if not plain_http and registry in insecure_hosts:
            raise Doubt("a TLS registry named insecure")
        if credentials is not None and credentials.identity_token:
            raise Doubt("a refresh-token login")
        self.credentials = credentials
        self.plain_http = plain_http
        self._insecure_hosts = insecure_hosts
        self._verify = verify
        self._context: ssl.SSLContext | None = None
        self._budget = _Budget(BUDGET if budget is None else min(BUDGET, budget))
        self._connections: dict[tuple[str, str], _Connection] = {}
        self._tokens = TokenCache()
        self._basic = False
        self._heads: dict[tuple[str, str], Descriptor | None] | None = None
        self.stats = ClientStats()

    # -- the reading API ---------------------------------------------------------------

    def head_manifest(self, repository: str, ref: str | Digest) -> Descriptor | None:
        """The manifest's descriptor, or ``None`` for a ``404`` (as the full client)."""
        check_repository(repository)
        key = (repository, str(ref))
        if self._heads is not None and key in self._heads:
            return self._heads[key]
        status, headers, _ = self._pull("HEAD", repository, _manifest_path(repository, ref))
        found = None if status == 404 else self._descriptor(headers, ref)
        if self._heads is not None:
            self._heads[key] = found
        return found

    def get_manifest(self, repository: str, ref: str | Digest) -> Manifest:
        """The manifest's bytes, checked against its digest; :class:`NotFound`, worded as
        the full client words it, for a ``404``."""
        check_repository(repository)
        what = f"{self.registry}/{repository}{'@' if isinstance(ref, Digest) else ':'}{ref}"
        _, headers, data = self._pull(
            "GET", repository, _manifest_path(repository, ref), missing=what
        )
        header = headers.get("docker-content-digest")
        expected = ref if isinstance(ref, Digest) else (_digest(header) if header else None)
        if expected is not None:
            if not expected.matches(data):
                raise Doubt("manifest bytes that do not match their digest")
            digest = expected
        else:
            digest = Digest.of(data)
        media_type = headers.get("content-type", "").split(";")[0].strip()
        if not media_type or media_type in ("application/json", "application/octet-stream"):
            media_type = media_type_from_body(data)
        self.stats.bytes_downloaded += len(data)
        return Manifest(data, media_type, digest)

    def get_blob(
        self,
        repository: str,
        digest: Digest,
        *,
        size: int | None = None,
        max_size: int = 64 * 1024 * 1024,
    ) -> bytes:
        """A small blob's bytes (at most :data:`BLOB_CAP`), checked against its digest and
        ``size``; redirects followed as the full client follows them (credentials to the
        registry only). :class:`NotFound` for a ``404``."""
        check_repository(repository)
        if size is not None and size > min(max_size, BLOB_CAP):
            raise Doubt("a blob too big for a quick read")
        cap = size if size is not None else min(max_size, BLOB_CAP)
        what = f"{self.registry}/{repository}@{digest}"
        _, _, data = self._pull(
            "GET", repository, f"/v2/{repository}/blobs/{digest}", missing=what, cap=cap
        )
        if (size is not None and len(data) != size) or not digest.matches(data):
            raise Doubt("blob bytes that do not match their digest or size")
        self.stats.bytes_downloaded += len(data)
        return data

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """As :meth:`steps.oci.client.RegistryClient.snapshot`: inside the block, a manifest
        HEAD asked again is answered as the first time."""
        if self._heads is not None:
            yield
            return
        self._heads = {}
        try:
            yield
        finally:
            self._heads = None

    def write(self, *_: object, **__: object) -> NoReturn:
        """Every write (and a tag listing, which pages): the full client's."""
        raise Doubt("a write or a tag listing: the full client's")

    def head_manifests(
        self,
        queries: Sequence[tuple[str, str | Digest]],
        *,
        jobs: int = 1,
        unreadable_missing: bool = False,
    ) -> list[Descriptor | None]:
        """:meth:`head_manifest` of each query, one by one (a 401 or 403 is doubted, as
        any status but 200 and 404)."""
        return [self.head_manifest(repository, ref) for repository, ref in queries]

    put_manifest = push_blob = tag = delete_manifest = mount_blob = copy_blob = write
    list_tags = iter_tags = write

    def spawn(self) -> None:
        """No sibling for another thread: callers then read on this one."""
        return None

    def close(self) -> None:
        self._budget.cancel()
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def __enter__(self) -> QuickReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ----------------------------------------------------------------------

    def _descriptor(self, headers: dict[str, str], ref: str | Digest) -> Descriptor:
        header = headers.get("docker-content-digest")
        if header is None:
            raise Doubt("a HEAD without Docker-Content-Digest")
        digest = _digest(header)
        if isinstance(ref, Digest) and digest != ref:
            raise Doubt("a HEAD answered for another digest")
        try:
            size = int(headers.get("content-length", "0"))
        except ValueError:
            raise Doubt("a bad Content-Length") from None
        media_type = headers.get("content-type", "").split(";")[0] or None
        return Descriptor(digest, size, media_type)

    def _pull(
        self,
        method: str,
        repository: str,
        path: str,
        *,
        missing: str | None = None,
        cap: int = MAX_MANIFEST_SIZE,
    ) -> tuple[int, dict[str, str], bytes]:
        """A ``200`` (headers and body) to ``method`` of ``path``, or the ``404`` of a
        HEAD, or :class:`NotFound` for ``missing`` (what a GET asked for); a GET follows
        redirects (blobs). Anything else is a :class:`Doubt`."""
        home = ("http" if self.plain_http else "https", self.registry)
        scheme, netloc = home
        scopes = [scope_for(repository, PULL)]
        authenticated = False
        hops = 0
        while True:
            own = (scheme, netloc) == home
            headers = {"Accept": _ACCEPT} if "/manifests/" in path else {}
            authorization = self._authorization(scopes) if own else None
            if authorization:
                headers["Authorization"] = authorization
            status, answer, body = self._send(scheme, netloc, method, path, headers, cap=cap)
            if status == 401 and own and not authenticated and hops == 0:
                authenticated = True
                self._authenticate(answer.get("www-authenticate", ""), scopes)
                continue
            if status in _REDIRECTS and method == "GET" and "location" in answer and hops < 5:
                hops += 1
                scheme, netloc, path = self._redirect(scheme, netloc, path, answer["location"])
                continue
            if status == 200:
                return status, answer, body
            if status == 404 and method == "HEAD" and hops == 0:
                return status, answer, body
            if status == 404 and missing is not None:
                raise NotFound(
                    f"{missing}: not found in {self.registry}{error_detail(body)}", status=404
                )
            raise Doubt(f"{method} {path} answered {status}")

    def _redirect(self, scheme: str, netloc: str, path: str, location: str) -> tuple[str, str, str]:
        """Where a redirect leads: HTTPS, or plain HTTP only where the full client allows it
        (loopback, a host named insecure, the plain-HTTP registry itself)."""
        target = urlsplit(urljoin(f"{scheme}://{netloc}{path}", location))
        plain_registry = self.registry if self.plain_http else None
        plain_ok = plain_http_allowed(target.netloc, self._insecure_hosts, plain_registry)
        if not target.netloc or not (
            target.scheme == "https" or (target.scheme == "http" and plain_ok)
        ):
            raise Doubt("a redirect the full client judges")
        return (
            target.scheme,
            target.netloc,
            (target.path or "/") + (f"?{target.query}" if target.query else ""),
        )

    def _authorization(self, scopes: list[str]) -> str | None:
        return authorization(self._tokens, scopes, self._basic, self.credentials)

    def _authenticate(self, header: str, scopes: list[str]) -> None:
        challenge = parse_challenge(header)
        if challenge is None:
            raise Doubt("a 401 without a challenge")
        if challenge.scheme == "basic":
            if self.credentials is None:
                raise Doubt("Basic auth without credentials")
            self._basic = True
            return
        if challenge.scheme != "bearer" or not challenge.realm:
            raise Doubt(f"unsupported authentication {challenge.scheme!r}")
        realm = str(challenge.realm)
        parts = urlsplit(realm)
        if parts.scheme == "http" and not plain_http_allowed(parts.netloc, self._insecure_hosts):
            raise Doubt("a plain-HTTP token realm")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Doubt("a token realm that is not an HTTP URL")
        wanted = list(dict.fromkeys([*scopes, *challenge.scopes]))
        params, headers = token_query(challenge, wanted, self.credentials)
        path = parts.path or "/"
        query = "&".join(q for q in (parts.query, urlencode(params)) if q)
        self.stats.token_requests += 1
        status, _, body = self._send(
            parts.scheme, parts.netloc, "GET", path + (f"?{query}" if query else ""), headers
        )
        if status != 200:
            raise Doubt(f"the token service answered {status}")
        try:
            parsed = json.loads(body)
            token = parsed.get("token") or parsed.get("access_token")
            expires_in = float(parsed.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            raise Doubt("a token answer that is not JSON") from None
        if not isinstance(token, str) or not token:
            raise Doubt("a token answer without a token")
        register_secret(token)
        self._tokens.put(wanted, token, expires_in)

    def _send(
        self,
        scheme: str,
        netloc: str,
        method: str,
        target: str,
        headers: dict[str, str],
        *,
        cap: int = _TOKEN_CAP,
    ) -> tuple[int, dict[str, str], bytes]:
        if self._budget.expired or self._budget.left() <= 0:
            raise Doubt("the quick read ran out of time")
        headers = {"User-Agent": "alga-release", **headers}
        self.stats.requests += 1
        self.stats.by_method[method] = self.stats.by_method.get(method, 0) + 1
        key = (scheme, netloc)
        for fresh in (False, True):
            connection = self._connections.get(key) if not fresh else None
            reused = connection is not None
            if connection is None:
                connection = self._connect(scheme, netloc)
            try:
                status, answer, body, keep = connection.exchange(method, target, headers, cap)
            except _Closed:
                self._drop(key)
                if reused and not self._budget.expired:
                    continue  # a kept-alive connection the server had closed: once more
                raise Doubt(f"{netloc} closed the connection") from None
            except OSError as exc:
                self._drop(key)
                raise Doubt(f"{type(exc).__name__} from {netloc}") from None
            except Doubt:
                self._drop(key)
                raise
            if self._budget.expired:  # the watchdog cut this answer short
                self._drop(key)
                raise Doubt("the quick read ran out of time")
            if not keep:
                self._drop(key)
            return status, answer, body
        raise Doubt("unreachable")  # pragma: no cover

    def _drop(self, key: tuple[str, str]) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            connection.close()

    def _connect(self, scheme: str, netloc: str) -> _Connection:
        host, port = _host_port(netloc, 443 if scheme == "https" else 80)
        timeout = max(min(SOCKET_TIMEOUT, self._budget.left()), 0.001)
        try:
            # an ASCII name as bytes: a str one costs the import of the idna codec
            address = host.encode("ascii") if host.isascii() else host
            sock = socket.create_connection((address, port), timeout=timeout)  # type: ignore[arg-type]  # getaddrinfo takes bytes
        except OSError as exc:
            raise Doubt(f"cannot connect to {netloc}: {type(exc).__name__}") from None
        self._budget.watch(sock)
        if scheme == "https":
            try:
                sock = self._ssl_context().wrap_socket(sock, server_hostname=host)
            except OSError as exc:  # ssl.SSLError and a certificate refused are OSErrors
                sock.close()
                raise Doubt(f"no TLS with {netloc}: {type(exc).__name__}") from None
            self._budget.watch(sock)
        connection = _Connection(sock, netloc)
        self._connections[(scheme, netloc)] = connection
        return connection

    def _ssl_context(self) -> ssl.SSLContext:
        import ssl  # only for TLS: a plain-HTTP read never loads it

        if self._context is None:
            if self._verify is False:
                raise Doubt("TLS without verification")
            if isinstance(self._verify, str):
                cafile = self._verify
            else:
                try:
                    import certifi
                except ImportError:  # pragma: no cover - a dependency of the full client
                    raise Doubt("no certifi roots") from None
                cafile = certifi.where()
            try:
                context = ssl.create_default_context(cafile=cafile)
            except (OSError, ValueError):
                raise Doubt("the CA roots cannot be loaded") from None
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.set_alpn_protocols(["http/1.1"])
            self._context = context
        return self._context


def _manifest_path(repository: str, ref: str | Digest) -> str:
    return f"/v2/{repository}/manifests/{ref}"


def _digest(header: str) -> Digest:
    try:
        return Digest.parse(header.strip())
    except Exception:  # an InvalidReference: the full client reports it
        raise Doubt("a malformed Docker-Content-Digest") from None


class _Closed(Exception):
    """The server closed the connection before any byte of the answer."""


_HEAD_LIMIT = 64 * 1024
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class _Connection:
    """One HTTP/1.1 connection, strictly: a request, then an answer sized by
    ``Content-Length`` (or bodiless); anything else (chunked or unsized bodies, 1xx,
    folded or malformed headers, a head over 64 KiB, a second Content-Length) is a
    :class:`Doubt`. Why not :mod:`http.client`: it imports the email package and
    :mod:`ssl`, about as long as the whole read here; this is all a HEAD or GET of a
    manifest needs."""

    def __init__(self, sock: socket.socket, netloc: str) -> None:
        self.sock = sock
        self.netloc = netloc
        self.buffer = bytearray()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def exchange(
        self, method: str, target: str, headers: dict[str, str], cap: int
    ) -> tuple[int, dict[str, str], bytes, bool]:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.netloc}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        for line in lines:
            if "\r" in line or "\n" in line:
                raise Doubt("a header that would split the request")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = self._head()
        status, version, answer = _parse_head(head)
        keep = version == "HTTP/1.1" and "close" not in answer.get("connection", "").lower()
        if "transfer-encoding" in answer:
            raise Doubt("a chunked or encoded body")
        if method == "HEAD" or status in (204, 304):
            return status, answer, b"", keep
        length = answer.get("content-length", "")
        if not length.isdigit():  # registries size manifests; an unsized body may be cut short
            raise Doubt("a body without a Content-Length")
        size = int(length)
        if size > (cap if status == 200 else _ERROR_CAP):
            raise Doubt("a body over the size cap")
        body = self._exactly(size)
        if self.buffer:
            keep = False  # bytes past the answer: never read another answer from them
        return status, answer, body, keep

    def _recv(self) -> bytes:
        return self.sock.recv(256 * 1024)

    def _head(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end > _HEAD_LIMIT:
                raise Doubt("response headers over 64 KiB")
            if end >= 0:
                head = bytes(self.buffer[:end])
                del self.buffer[: end + 4]
                return head
            if len(self.buffer) > _HEAD_LIMIT:
                raise Doubt("response headers over 64 KiB")
            data = self._recv()
            if not data:
                if not self.buffer:
                    raise _Closed
                raise Doubt("the connection closed inside the response headers")
            self.buffer += data

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            data = self._recv()
            if not data:
                raise Doubt("a body shorter than its Content-Length")
            self.buffer += data
        body = bytes(self.buffer[:size])
        del self.buffer[:size]
        return body


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise Doubt("undecodable headers") from None
    status_line, *lines = text.split("\r\n")
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if version not in ("HTTP/1.0", "HTTP/1.1") or not code.isdigit() or rest[3:4] not in ("", " "):
        raise Doubt("a malformed status line")
    status = int(code)
    if status < 200:
        raise Doubt(f"an interim {status} answer")
    answer: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or not set(name) <= _TOKEN:
            raise Doubt("a malformed header line")  # folded lines included
        key = name.lower()
        value = value.strip(" \t")
        if key in answer:
            if key == "content-length":
                raise Doubt("two Content-Length headers")
            answer[key] = f"{answer[key]}, {value}"
        else:
            answer[key] = value
    return status, version, answer


def _host_port(netloc: str, default: int) -> tuple[str, int]:
    """``host[:port]`` or ``[v6][:port]`` -> (host, port)."""
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = netloc.rpartition(":") if ":" in netloc else (netloc, "", "")
    if port and not port.isdigit():
        raise Doubt(f"a bad port in {netloc!r}")
    return host, int(port) if port else default


__all__ = ["BUDGET", "Doubt", "QuickReader"]
