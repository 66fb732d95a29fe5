"""A raw-socket HTTP server on loopback that misbehaves on purpose.

For the failures a real registry never shows on demand: accept and never answer, drip the
response headers or the body one byte at a time, cut a body short, echo the credentials it
was sent in its error text. Each connection runs ``behaviour(conn, request)`` in its own
thread, where ``request`` is the parsed request head (:class:`RawRequest`); the behaviour
writes raw bytes (helpers below) and may keep the connection open.

What it does not do: TLS, request bodies (it reads the head only; GET and HEAD are what
these tests send), keep-alive beyond what a behaviour does itself.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "MisbehavingServer",
    "RawRequest",
    "answer",
    "drip_body",
    "drip_headers",
    "never_answer",
    "truncated",
]


@dataclass
class RawRequest:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    number: int = 0
    """1 for the first request the server saw, 2 for the next, ..."""


Behaviour = Callable[["socket.socket", RawRequest, threading.Event], None]


class MisbehavingServer:
    """``with MisbehavingServer(behaviour) as server:`` then talk to ``server.host``."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests: list[RawRequest] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)  # here: a server closed at once may not have served yet
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> MisbehavingServer:
        self._thread.start()
        return self

    @property
    def connections(self) -> int:
        """How many connections the server has accepted."""
        with self._lock:
            return len(self._conns)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    conn.close()
        self._thread.join(5)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            buf = b""
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _version = [*lines[0].split(" "), "", ""][:3]
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                with self._lock:
                    request = RawRequest(method, path, headers, len(self.requests) + 1)
                    self.requests.append(request)
                self.behaviour(conn, request, self._stop)


def answer(
    conn: socket.socket,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    head: bool = False,
) -> None:
    """A complete, well-formed response (the connection stays open for the next one)."""
    lines = [f"HTTP/1.1 {status} X"]
    for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
        lines.append(f"{name}: {value}")
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body))


def never_answer(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
    """Accept the request, then say nothing until the server stops."""
    stop.wait()


def drip_headers(interval: float) -> Behaviour:
    """Send a status line, then one byte of an endless header every ``interval`` s."""

    def behaviour(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
        while not stop.wait(interval):
            conn.sendall(b"a")

    return behaviour


def drip_body(interval: float, length: int = 1_000_000) -> Behaviour:
    """Send headers announcing ``length`` bytes, then one byte every ``interval`` s."""

    def behaviour(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n".encode())
        while not stop.wait(interval):
            conn.sendall(b"{")

    return behaviour


def truncated(
    body: bytes, keep: int, headers: dict[str, str] | None = None, *, times: int = 1_000_000
) -> Behaviour:
    """Announce ``body`` whole, send its first ``keep`` bytes and close; from request
    ``times + 1`` on, answer it whole."""

    def behaviour(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
        if request.number > times:
            answer(conn, 200, body, headers, head=request.method == "HEAD")
            return
        lines = [f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body[:keep])
        time.sleep(0.05)
        conn.shutdown(socket.SHUT_RDWR)
        conn.close()

    return behaviour
