"""Deadlines for every phase of every request: connect, response headers, body.

httpx's timeouts bound each socket operation, so a server that drips one byte a second
(headers or body) never trips them. Here the socket layer itself knows the deadline of the
phase it serves: :class:`DeadlineTransport` is httpx's own HTTP/1.1 transport whose
connection pool runs on a network backend that clamps every connect, TLS handshake, read
and write to the time left in the current :class:`Phase` (and raises httpcore's own timeout
exceptions once it is spent, which httpx maps as usual).

Pieces:

- :class:`Timeouts` -- the per-request limits (the caller's choice, defaults below).
- :class:`Deadline` (at home in :mod:`steps.oci.model`, which loads without httpx) -- the
  whole command's budget (``--timeout SECONDS``); every phase is
  ``min(its own limit, what is left)``.
- :class:`PhaseClock` -- the phase in force, per thread; :meth:`PhaseClock.scope` sets one
  for a block and restores the previous one, so a body streamed from one response into
  another request's upload keeps each phase's own deadline.

It also tells what a transport error was underneath (:func:`resolve_error`,
:func:`caused_by`, :func:`certificate_failed`, :func:`spoke_tls_to_plain_http`,
:func:`spoke_plain_http_to_tls`), for the client's classification.

What it does not do: it never retries and builds no error messages (the client does both);
HTTP/2 and proxies are not used by the registry client.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import ssl
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpcore

from steps.oci.httpxlib import httpx
from steps.oci.model import Deadline as Deadline  # its home; re-exported here

Clock = Callable[[], float]


@dataclass(frozen=True)
class Timeouts:
    """Per-request limits, in seconds.

    ``headers`` runs from the request's first byte to the end of the response headers (an
    upload's body time, ``size / min_rate``, is added for requests that carry one);
    ``body`` bounds a small response body whole (manifest, token, tag page, error); a blob's
    body gets ``body + size / min_rate``; ``idle`` is the longest silence allowed inside a
    blob transfer. ``min_rate`` (32 KiB/s) only catches a body that drips: a slow link
    still moves a 60 MB layer within its deadline, and a silent one trips ``idle``.
    """

    connect: float = 10.0
    headers: float = 30.0
    body: float = 60.0
    idle: float = 30.0
    min_rate: float = 32 * 1024.0

    def transfer(self, size: int | None) -> float:
        """The time a transfer of ``size`` bytes may take (``body`` when the size is unknown)."""
        return self.body + (max(size, 0) / self.min_rate if size else 0.0)

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect, read=self.idle, write=self.idle, pool=self.connect
        )


@dataclass(frozen=True)
class Phase:
    """What a request is waiting for and until when (``clock()`` time).

    ``limit`` is the phase's length in seconds, ``by_command`` whether the command's
    deadline (not the phase's own limit) set ``until``; both are for messages.
    """

    waiting_for: str
    until: float
    limit: float
    by_command: bool
    idle: float | None = None


class PhaseClock:
    """The phase in force on each thread; the network backend reads it."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._local = threading.local()

    @property
    def current(self) -> Phase | None:
        phase: Phase | None = getattr(self._local, "phase", None)
        return phase

    def make(
        self,
        waiting_for: str,
        limit: float,
        deadline: Deadline,
        *,
        idle: float | None = None,
    ) -> Phase:
        left = deadline.remaining()
        by_command = left < limit
        length = min(limit, left)
        return Phase(waiting_for, self.clock() + length, length, by_command, idle)

    @contextlib.contextmanager
    def scope(self, phase: Phase) -> Iterator[Phase]:
        previous = self.current
        self._local.phase = phase
        try:
            yield phase
        finally:
            self._local.phase = previous

    def expired(self) -> bool:
        phase = self.current
        return phase is not None and phase.until <= self.clock()

    def clamp(self, timeout: float | None, error: type[Exception]) -> float | None:
        """``timeout`` cut to the current phase's time left (and its idle limit); raises
        ``error`` when nothing is left."""
        phase = self.current
        if phase is None:
            return timeout
        left = phase.until - self.clock()
        if left <= 0:
            raise error(f"deadline passed waiting for {phase.waiting_for}")
        bounds = [left]
        if timeout is not None:
            bounds.append(timeout)
        if phase.idle is not None:
            bounds.append(phase.idle)
        return min(bounds)


def iterate_in_phase(clock: PhaseClock, phase: Phase, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Pull each item of ``chunks`` under ``phase`` (restoring the caller's phase between
    pulls), so a response body read inside another request keeps its own deadline."""
    iterator = iter(chunks)
    while True:
        with clock.scope(phase):
            try:
                chunk = next(iterator)
            except StopIteration:
                return
        yield chunk


#: A response body at least this long is read by :func:`direct_body`.
DIRECT_MIN = 1 << 20


def direct_body(
    response: httpx.Response, clock: PhaseClock, phase: Phase, idle: float | None
) -> Iterator[bytes] | None:
    """A big plain body (``Content-Length`` of at least :data:`DIRECT_MIN`, no content or
    transfer coding, HTTP/1.1 on this module's transport) read straight from the socket,
    or None for any other body (read it through httpx).

    Through httpx every byte of a body is copied four times after the socket hands it
    over (h11's receive buffer, twice as h11 takes a piece out, httpcore's ``bytes()``):
    0.15 s of CPU per 500 MB. Here the first piece is h11's (whatever arrived with the
    headers: after it h11 holds nothing back), the rest comes from the socket receive by
    receive, each under ``phase`` as every read of the transport is. h11 is left
    mid-body, so closing the response closes the connection rather than pooling it: one
    new connection per big blob. Errors are httpx's (``ReadTimeout``, ``ReadError``,
    ``RemoteProtocolError`` for a body cut short), as reading through httpx raises them.
    """
    stream = response.extensions.get("network_stream")
    length = response.headers.get("Content-Length", "")
    if (
        not isinstance(stream, _Stream)
        or response.http_version != "HTTP/1.1"
        or not length.isdigit()
        or int(length) < DIRECT_MIN
        or response.headers.get("Content-Encoding", "identity").lower() != "identity"
        or "Transfer-Encoding" in response.headers
    ):
        return None
    return _direct(response, stream, clock, phase, idle, int(length))


def _direct(
    response: httpx.Response,
    stream: _Stream,
    clock: PhaseClock,
    phase: Phase,
    idle: float | None,
    length: int,
) -> Iterator[bytes]:
    raw = response.iter_raw()
    assert isinstance(raw, Generator)  # httpx's is a generator: closed when done
    try:
        with clock.scope(phase):
            first = next(raw, b"")  # what h11 buffered with the headers, or one receive
        received = len(first)
        if first:
            yield first
        while received < length:
            try:
                with clock.scope(phase):
                    data = stream.receive(min(READ_SIZE, length - received), idle)
            except httpcore.ReadTimeout as exc:
                raise httpx.ReadTimeout(str(exc), request=response.request) from exc
            except httpcore.ReadError as exc:
                raise httpx.ReadError(str(exc), request=response.request) from exc
            if not data:
                raise httpx.RemoteProtocolError(
                    f"peer closed connection without sending complete message body "
                    f"(received {received} bytes, expected {length})",
                    request=response.request,
                )
            received += len(data)
            yield data
    finally:
        raw.close()


TLSContextFor = Callable[[ssl.SSLContext], ssl.SSLContext]

#: The most one socket receive asks for (see :meth:`_Stream.read`).
READ_SIZE = 1 << 18
#: One socket send per this many bytes: the idle limit (30 s) then trips for a peer that
#: reads under 8 KiB/s, well below the transfer's minimum rate (32 KiB/s).
WRITE_SLICE = 1 << 18


class _Stream(httpcore.NetworkStream):
    def __init__(
        self, inner: httpcore.NetworkStream, clock: PhaseClock, tls: TLSContextFor | None = None
    ) -> None:
        self._inner = inner
        self._clock = clock
        self._tls = tls

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        # httpcore asks for 64 KiB at a time; a blob body read in 64 KiB pieces costs a
        # pass through h11 and httpx's chunker per piece. Up to READ_SIZE per receive is
        # the same bytes in a fourth of the passes (h11 takes any amount it is given).
        limit = self._clock.clamp(timeout, httpcore.ReadTimeout)
        return self._inner.read(max(max_bytes, READ_SIZE), limit)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # One socket send per slice, so a peer that reads slowly meets the deadline
        # within one slice's time rather than one whole chunk's. Slices are views: no copy.
        view = memoryview(buffer)
        for start in range(0, len(view), WRITE_SLICE):
            piece = view[start : start + WRITE_SLICE]
            self._inner.write(piece, self._clock.clamp(timeout, httpcore.WriteTimeout))  # type: ignore[arg-type]  # sendall takes any buffer

    def receive(self, max_bytes: int, timeout: float | None) -> bytes:
        """Up to ``max_bytes`` from one receive, under the current phase (for
        :func:`direct_body`: never more than asked, so never past the body's end)."""
        return self._inner.read(max_bytes, self._clock.clamp(timeout, httpcore.ReadTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        limit = self._clock.clamp(timeout, httpcore.ConnectTimeout)
        if self._tls is not None:
            ssl_context = self._tls(ssl_context)
        inner = self._inner.start_tls(ssl_context, server_hostname, limit)
        return _Stream(inner, self._clock, self._tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, clock: PhaseClock, tls: TLSContextFor | None = None) -> None:
        self._inner = httpcore.SyncBackend()
        self._clock = clock
        self._tls = tls

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        limit = self._clock.clamp(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, limit, local_address, socket_options)
        return _Stream(stream, self._clock, self._tls)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        limit = self._clock.clamp(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_unix_socket(path, limit, socket_options)
        return _Stream(stream, self._clock, self._tls)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@functools.cache
def shared_ssl_context(verify: bool) -> ssl.SSLContext:
    """httpx's TLS context for ``verify`` (certifi's roots, or no verification), made once
    per process and shared by its clients: loading the roots costs about 25 ms, and every
    client of a run trusts the same ones. (A ``--ca-file`` context is the client's own.)"""
    return httpx.create_ssl_context(verify=verify)


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's HTTP/1.1 transport on a connection pool whose sockets obey ``clock``.

    With ``verify`` a bool, the shared TLS context is made on the first TLS handshake, not
    before: a plain-HTTP registry never pays for loading the roots. The pool holds a bare
    placeholder context until then, which the network backend swaps for the real one.
    """

    def __init__(self, clock: PhaseClock, *, verify: bool | ssl.SSLContext = True) -> None:
        tls: TLSContextFor | None = None
        if isinstance(verify, ssl.SSLContext):
            context = verify
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # the placeholder: nothing loaded
            placeholder, wanted = context, verify

            def tls(given: ssl.SSLContext) -> ssl.SSLContext:
                if given is not placeholder:
                    return given
                real = shared_ssl_context(wanted)
                real.set_alpn_protocols(["http/1.1"])  # as httpcore sets it on the pool's
                return real

        super().__init__(verify=context, retries=0)  # the context as is: nothing loaded again
        limits = httpx.Limits(max_connections=20, max_keepalive_connections=10)
        # httpx builds its pool in __init__ with no way to pass a network backend; the
        # attribute is replaced before any request can use the first one.
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            retries=0,
            network_backend=_Backend(clock, tls),
        )


# -- what a transport error was -------------------------------------------------


def causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(cause, kind) for cause in causes(exc))


#: getaddrinfo's "this name does not exist" answers (EAI_NODATA is not on every platform).
_NO_SUCH_NAME = frozenset(
    code
    for code in (
        getattr(socket, "EAI_NONAME", None),
        getattr(socket, "EAI_NODATA", None),
        getattr(socket, "EAI_ADDRFAMILY", None),
    )
    if code is not None
)


def resolve_error(exc: BaseException) -> socket.gaierror | None:
    """The DNS failure behind ``exc``: a name that does not exist, or a temporary failure."""
    for cause in causes(exc):
        if isinstance(cause, socket.gaierror) and (
            cause.errno in _NO_SUCH_NAME or cause.errno == socket.EAI_AGAIN
        ):
            return cause
    text = str(exc)
    if "Name or service not known" in text or "nodename nor servname" in text:
        return socket.gaierror(socket.EAI_NONAME, text)
    return None


def certificate_failed(exc: Exception) -> bool:
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or ("SSL" in text and "certificate" in text)


def spoke_tls_to_plain_http(exc: BaseException) -> bool:
    """Our TLS handshake met a server answering in plain HTTP."""
    for cause in causes(exc):
        if isinstance(cause, ssl.SSLError):
            reason = (getattr(cause, "reason", None) or str(cause)).upper()
            if any(
                marker in reason
                for marker in (
                    "WRONG_VERSION_NUMBER",
                    "HTTP_REQUEST",
                    "PACKET_LENGTH_TOO_LONG",
                    "RECORD_LAYER_FAILURE",
                    "UNKNOWN_PROTOCOL",
                )
            ):
                return True
    return False


def spoke_plain_http_to_tls(exc: BaseException) -> bool:
    """Our plain-HTTP request was answered with TLS bytes (an alert or a handshake)."""
    text = str(exc)
    return "illegal status line" in text.lower() and ("\\x15\\x03" in text or "\\x16\\x03" in text)
