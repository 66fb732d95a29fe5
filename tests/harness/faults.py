"""A fault-injecting HTTP reverse proxy for putting in front of a test registry.

What it does:

* Listens on ``127.0.0.1`` (ephemeral port, plain HTTP, HTTP/1.1 keep-alive) and
  forwards every request to one upstream registry (HTTP or HTTPS, verified with
  the registry's CA file): method, path, query, all end-to-end headers
  *including* ``Host`` and ``Authorization``, and the request body, streamed,
  whether sized by ``Content-Length`` or sent with ``Transfer-Encoding: chunked``.
* Streams the response back with its status and end-to-end headers
  (``Location``, ``WWW-Authenticate``, ``Docker-Content-Digest``, ``Range``, ...).
  Because ``Host`` is forwarded, distribution builds absolute ``Location`` URLs
  that point back at the proxy, so uploads keep flowing through it. When the
  upstream is HTTPS the proxy adds ``X-Forwarded-Proto: http`` so those URLs
  keep the proxy's scheme.
* Programmable rules, checked in the order they were added, first match wins:
  answer the next N (or all) matching requests with a status of your choice
  (e.g. 503, or 429 with ``Retry-After``); close the connection without any
  response; flip one byte of the body of matching successful GET responses
  while keeping ``Content-Length``.
* Records every request it saw (:attr:`FaultProxy.requests`) with the status
  the client got (None when the connection was closed) and which fault, if any,
  was applied.

What it does not do: TLS towards the client, CONNECT/forward-proxying, HTTP/2,
rewriting of ``Location`` or auth realms (the token server is reached directly,
not through the proxy), latency injection, or connection pooling upstream
(each forwarded request uses a fresh upstream connection).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import re
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from tests.harness.registry import Registry

__all__ = ["FaultProxy", "ProxiedRequest", "Rule", "start_fault_proxy"]

log = logging.getLogger(__name__)

FaultAction = Literal["status", "close", "corrupt"]

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "content-length",  # re-added by the proxy when it knows the length
    }
)
_CHUNK = 64 * 1024


class _QuietServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that logs handler errors instead of printing them to stderr."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("%s: error serving %s", type(self).__name__, client_address, exc_info=True)


@dataclass
class Rule:
    """One programmed fault. ``remaining`` None means "every matching request"."""

    action: FaultAction
    method: str | None = None
    path: re.Pattern[str] | None = None
    remaining: int | None = 1
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    corrupt_offset: int | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        """True when the rule still has uses left and matches method and path."""
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method is not None and self.method != method.upper():
            return False
        return self.path is None or self.path.search(path) is not None


@dataclass(frozen=True)
class ProxiedRequest:
    """A request the proxy saw and what happened to it."""

    method: str
    path: str
    query: str
    status: int | None
    """Status the client received; None when the connection was closed instead."""
    fault: FaultAction | None
    """The fault applied, or None when the request was forwarded untouched."""
    auth_scheme: str | None
    """``Basic``/``Bearer`` when the client sent Authorization (the value is not kept)."""
    body_bytes: int = 0
    """Request body bytes the client sent (what a benchmark counts as uploaded)."""


def _compile(path: str | re.Pattern[str] | None) -> re.Pattern[str] | None:
    if path is None or isinstance(path, re.Pattern):
        return path
    return re.compile(path)


class FaultProxy:
    """Reverse proxy with programmable faults. Use :func:`start_fault_proxy` or ``start()``."""

    def __init__(
        self,
        upstream_url: str,
        *,
        ca_file: Path | None = None,
        upstream_timeout: float = 60.0,
    ) -> None:
        parts = urllib.parse.urlsplit(upstream_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http(s)://host:port, got {upstream_url!r}")
        self.upstream_url = upstream_url
        self._upstream_scheme = parts.scheme
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port
        self._ssl_context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._ssl_context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self.upstream_timeout = upstream_timeout
        self.requests: list[ProxiedRequest] = []
        self.rules: list[Rule] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> FaultProxy:
        if self._server is not None:
            return self
        handler = type("_BoundProxyHandler", (_ProxyHandler,), {"proxy": self})
        server = _QuietServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fault-proxy-{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        log.debug("fault proxy %s -> %s", self.base_url, self.upstream_url)
        return self

    def stop(self) -> None:
        """Stop accepting, cut open client connections, join the server thread."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("fault proxy is not running")
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` of the proxy (use it in references instead of the registry's)."""
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def ref(self, repository: str, tag_or_digest: str | None = None) -> str:
        """``127.0.0.1:PROXYPORT/repository[:tag|@digest]``."""
        base = f"{self.host}/{repository}"
        if tag_or_digest is None:
            return base
        return f"{base}{'@' if ':' in tag_or_digest else ':'}{tag_or_digest}"

    # -- rules -------------------------------------------------------------

    def add_rule(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        *,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Rule:
        """Answer the next ``n`` matching requests with ``status`` instead of forwarding."""
        return self.add_rule(
            Rule(
                "status",
                method=method.upper() if method else None,
                path=_compile(path),
                remaining=n,
                status=status,
                headers=dict(headers or {}),
                body=_error_body(status) if body is None else body,
            )
        )

    def fail_always(
        self,
        status: int = 503,
        *,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Rule:
        """Answer every matching request with ``status`` (until the rule is removed)."""
        rule = self.fail_next(1, status, method=method, path=path, headers=headers, body=body)
        rule.remaining = None
        return rule

    def throttle_next(
        self,
        n: int = 1,
        retry_after: int | str = 1,
        *,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
    ) -> Rule:
        """Answer the next ``n`` matching requests with 429 and ``Retry-After``."""
        return self.fail_next(
            n, 429, method=method, path=path, headers={"Retry-After": str(retry_after)}
        )

    def close_next(
        self,
        n: int = 1,
        *,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
    ) -> Rule:
        """Close the connection of the next ``n`` matching requests without answering."""
        return self.add_rule(
            Rule(
                "close",
                method=method.upper() if method else None,
                path=_compile(path),
                remaining=n,
            )
        )

    def close_always(
        self, *, method: str | None = None, path: str | re.Pattern[str] | None = None
    ) -> Rule:
        rule = self.close_next(1, method=method, path=path)
        rule.remaining = None
        return rule

    def corrupt_next(
        self,
        n: int = 1,
        *,
        path: str | re.Pattern[str] | None = None,
        offset: int | None = None,
    ) -> Rule:
        """Flip one byte (at ``offset``, default the middle) of the next ``n`` matching
        successful (2xx, non-empty) GET response bodies; Content-Length is unchanged."""
        return self.add_rule(
            Rule("corrupt", method="GET", path=_compile(path), remaining=n, corrupt_offset=offset)
        )

    def corrupt_always(
        self, *, path: str | re.Pattern[str] | None = None, offset: int | None = None
    ) -> Rule:
        rule = self.corrupt_next(1, path=path, offset=offset)
        rule.remaining = None
        return rule

    def remove(self, rule: Rule) -> None:
        with self._lock:
            if rule in self.rules:
                self.rules.remove(rule)

    def clear_rules(self) -> None:
        with self._lock:
            self.rules.clear()

    def reset(self) -> None:
        """Remove all rules and forget recorded requests."""
        with self._lock:
            self.rules.clear()
            self.requests.clear()

    # -- records -----------------------------------------------------------

    def count(
        self,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        *,
        status: int | None = None,
        fault: FaultAction | None = None,
    ) -> int:
        """Number of recorded requests matching all the given filters (path: regex search)."""
        pattern = _compile(path)
        with self._lock:
            seen = list(self.requests)
        return sum(
            1
            for r in seen
            if (method is None or r.method == method.upper())
            and (pattern is None or pattern.search(r.path))
            and (status is None or r.status == status)
            and (fault is None or r.fault == fault)
        )

    # -- internals used by the handler -------------------------------------

    def _take(self, method: str, path: str, actions: tuple[FaultAction, ...]) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.action in actions and rule.matches(method, path):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    rule.hits += 1
                    return rule
        return None

    def _peek(self, method: str, path: str, action: FaultAction) -> bool:
        with self._lock:
            return any(r.action == action and r.matches(method, path) for r in self.rules)

    def _before_forward(self, method: str, path: str) -> bool:
        """Called for every request before anything is forwarded (a subclass may block
        here: see :class:`tests.harness.hold.HoldingProxy`); True drops it with a 502."""
        return False

    def _record(self, entry: ProxiedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)

    def _connect(self) -> http.client.HTTPConnection:
        if self._ssl_context is not None:
            return http.client.HTTPSConnection(
                self._upstream_host,
                self._upstream_port,
                timeout=self.upstream_timeout,
                context=self._ssl_context,
            )
        return http.client.HTTPConnection(
            self._upstream_host, self._upstream_port, timeout=self.upstream_timeout
        )


def _error_body(status: int) -> bytes:
    return json.dumps(
        {"errors": [{"code": "INJECTED", "message": f"fault proxy injected {status}"}]}
    ).encode()


def start_fault_proxy(registry: Registry) -> FaultProxy:
    """Start a proxy in front of ``registry`` (trusting its CA when it uses TLS)."""
    return FaultProxy(registry.base_url, ca_file=registry.ca_file).start()


class _ProxyHandler(BaseHTTPRequestHandler):
    # Headers and body go out in separate writes: with Nagle on, a client waits out its
    # delayed ACK (about 40 ms on loopback) for every response that has a body.
    disable_nagle_algorithm = True
    proxy: FaultProxy  # set on the bound subclass
    protocol_version = "HTTP/1.1"
    server_version = "harness-fault-proxy/1"
    timeout = 120  # idle keep-alive connections are dropped after this

    def setup(self) -> None:
        super().setup()
        self.proxy._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.proxy._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fault proxy: " + format, *args)

    # -- request body ------------------------------------------------------

    def _body_chunks(self) -> Iterator[bytes]:
        """Yield the request body as it arrives (de-chunked when chunked), counting it."""
        self.body_bytes = 0
        for data in self._raw_body_chunks():
            self.body_bytes += len(data)
            yield data

    def _raw_body_chunks(self) -> Iterator[bytes]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers are dropped
                    return
                remaining = size
                while remaining:
                    data = self.rfile.read(min(remaining, _CHUNK))
                    if not data:
                        raise ConnectionError("client closed mid-chunk")
                    remaining -= len(data)
                    yield data
                self.rfile.readline(16)  # CRLF after the chunk
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining > 0:
                data = self.rfile.read(min(remaining, _CHUNK))
                if not data:
                    raise ConnectionError("client closed mid-body")
                remaining -= len(data)
                yield data

    def _has_body(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower() or bool(
            int(self.headers.get("Content-Length") or 0)
        )

    def _drain(self) -> None:
        for _ in self._body_chunks():
            pass

    # -- main entry --------------------------------------------------------

    def _handle(self) -> None:
        method = self.command.upper()
        split = urllib.parse.urlsplit(self.path)
        path, query = split.path, split.query
        auth = self.headers.get("Authorization")
        auth_scheme = auth.split(" ", 1)[0] if auth else None

        def record(status: int | None, fault: FaultAction | None) -> None:
            self.proxy._record(
                ProxiedRequest(
                    method,
                    path,
                    query,
                    status,
                    fault,
                    auth_scheme,
                    getattr(self, "body_bytes", 0),
                )
            )

        if self.proxy._before_forward(method, path):
            self._drain()
            record(502, "status")
            self._send_simple(502, {}, _error_body(502), method)
            return
        rule = self.proxy._take(method, path, ("status", "close"))
        if rule is not None and rule.action == "close":
            self._drain()
            record(None, "close")
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if rule is not None:
            self._drain()
            record(rule.status, "status")
            self._send_simple(rule.status, rule.headers, rule.body, method)
            return

        try:
            upstream = self._forward(method)
        except (OSError, http.client.HTTPException) as exc:
            log.warning("fault proxy: upstream %s %s failed: %s", method, path, exc)
            record(502, None)
            self.close_connection = True
            self._send_simple(502, {}, _error_body(502), method)
            return
        try:
            self._relay(upstream, method, path, record)
        finally:
            upstream.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def _send_simple(
        self, status: int, headers: Mapping[str, str], body: bytes, method: str
    ) -> None:
        self.send_response(status)
        lowered = {k.lower() for k in headers}
        for name, value in headers.items():
            self.send_header(name, value)
        if "content-type" not in lowered:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def _forward(self, method: str) -> http.client.HTTPResponse:
        conn = self.proxy._connect()
        conn.putrequest(method, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                conn.putheader(name, value)
        if self.proxy._ssl_context is not None:
            conn.putheader("X-Forwarded-Proto", "http")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        elif self.headers.get("Content-Length") is not None:
            conn.putheader("Content-Length", self.headers["Content-Length"])
        conn.endheaders()
        for data in self._body_chunks():
            conn.send(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        if chunked:
            conn.send(b"0\r\n\r\n")
        return conn.getresponse()

    def _relay(
        self,
        upstream: http.client.HTTPResponse,
        method: str,
        path: str,
        record: Callable[[int | None, FaultAction | None], None],
    ) -> None:
        """Send the upstream response to the client, corrupting it if a rule says so.

        The request is recorded *before* the first byte reaches the client, so a
        test that inspects :attr:`FaultProxy.requests` right after its call
        returned always sees it.
        """
        status = upstream.status
        headers = [(k, v) for k, v in upstream.getheaders() if k.lower() not in _HOP_BY_HOP]
        length_header = upstream.getheader("Content-Length")
        no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200

        body: bytes | None = None
        corrupted = False
        if not no_body and 200 <= status < 300 and self.proxy._peek(method, path, "corrupt"):
            body = upstream.read()
            rule = self.proxy._take(method, path, ("corrupt",)) if body else None
            if rule is not None:
                at = len(body) // 2 if rule.corrupt_offset is None else rule.corrupt_offset
                at %= len(body)
                body = body[:at] + bytes([body[at] ^ 0xFF]) + body[at + 1 :]
                corrupted = True
        record(status, "corrupt" if corrupted else None)

        self.send_response_only(status, upstream.reason)
        self.log_request(status)
        for name, value in headers:
            self.send_header(name, value)

        if no_body:
            if length_header is not None:
                self.send_header("Content-Length", length_header)
            self.end_headers()
        elif body is not None:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif length_header is not None:
            self.send_header("Content-Length", length_header)
            self.end_headers()
            while data := upstream.read(_CHUNK):
                self.wfile.write(data)
        else:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while data := upstream.read(_CHUNK):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.write(b"0\r\n\r\n")
