"""Deadlines and truncated bodies: both consume twins against a hostile loopback server.

A real TCP server on 127.0.0.1 (no mock) that misbehaves in one phase of a request:
it never completes the TCP connect (a full accept queue), never answers the TLS
handshake, never sends headers, drips headers or a body one byte at a time, or closes
the connection before ``Content-Length`` -- once with exactly the bytes of the
manifest digest asked for, which must still not be accepted. Every case must end as
``RegistryUnreachable`` (exit 75, retried) within the timeout plus a little, in both
twins, run as the appliance runs them (``python3 -S -I`` and ``node``).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.tools import PROJECT_ROOT, missing_component

pytestmark = pytest.mark.integration

PY = [
    shutil.which("python3") or "python3",
    "-S",
    "-I",
    str(PROJECT_ROOT / "consume/release_consume.py"),
]
REPO = "nine-minds/alga-appliance-release"
SLACK = 3.0  # process start-up and scheduling on a shared, busy two-core machine


def node() -> list[str]:
    found = shutil.which("node")
    if found is None:
        missing_component("node", "Node.js 20 runs the JavaScript twin")
    return [found, str(PROJECT_ROOT / "consume/release-consume.mjs")]


class Hostile:
    """A loopback server that misbehaves in one phase of every request it gets."""

    def __init__(self, mode: str, body: bytes = b"", *, backlog: int = 16) -> None:
        self.mode, self.body = mode, body
        self.stop = threading.Event()
        self.requests = 0
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(backlog)
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        if mode == "connect":
            # listen(0) queues one connection; with it held unaccepted, the SYNs of every
            # other connect are dropped: the client's connect itself never completes.
            filler = socket.create_connection(("127.0.0.1", self.port))
            self.held.append(filler)
        else:
            threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.stop.set()
        for sock in self.held:
            sock.close()
        self.server.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _addr = self.server.accept()
            except OSError:
                return
            self.held.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.mode == "tls":
                self.stop.wait()  # the client's ClientHello is never answered
                return
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.requests += 1
            self._answer(conn)
        except OSError:
            return

    def _answer(self, conn: socket.socket) -> None:
        if self.mode == "stall":
            self.stop.wait()
        elif self.mode == "drip-headers":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
            while not self.stop.wait(0.2):
                conn.sendall(b"x")  # one byte well inside any per-read timeout
        elif self.mode == "drip-body":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not self.stop.wait(0.2):
                conn.sendall(b" ")
        elif self.mode == "truncate":
            head = (
                "HTTP/1.1 200 OK\r\n"
                "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                f"Content-Length: {len(self.body) + 10}\r\n\r\n"
            )
            conn.sendall(head.encode() + self.body)
            conn.shutdown(socket.SHUT_RDWR)
            conn.close()


@pytest.fixture
def hostile() -> Iterator[Any]:
    servers: list[Hostile] = []

    def start(mode: str, body: bytes = b"") -> Hostile:
        server = Hostile(mode, body, backlog=0 if mode == "connect" else 16)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def run(twin: list[str], ref: str, server: Hostile, *args: str) -> tuple[int, Any, float]:
    flags = ["--registry", server.host, "--repository", REPO, "--json", *args]
    started = time.monotonic()
    proc = subprocess.run(
        [*twin, ref, *flags], capture_output=True, text=True, check=False, timeout=120
    )
    elapsed = time.monotonic() - started
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None, elapsed


TWINS = {"python": lambda: PY, "node": node}


@pytest.mark.parametrize("twin", TWINS)
@pytest.mark.parametrize("mode", ["connect", "tls", "stall", "drip-headers", "drip-body"])
def test_every_phase_of_a_request_ends_by_the_timeout(hostile: Any, twin: str, mode: str) -> None:
    server = hostile(mode)
    transport = [] if mode == "tls" else ["--plain-http"]
    code, out, elapsed = run(
        TWINS[twin](), "nightly", server, *transport, "--timeout", "2", "--attempts", "1"
    )
    assert code == 75 and out["error"] == "RegistryUnreachable", (out, elapsed)
    assert 1.9 <= elapsed < 2 + SLACK, elapsed
    if mode in ("stall", "drip-headers", "drip-body"):
        assert server.requests == 1


@pytest.mark.parametrize("twin", TWINS)
def test_bounded_attempts_bound_the_whole_resolve(hostile: Any, twin: str) -> None:
    server = hostile("drip-headers")
    code, out, elapsed = run(TWINS[twin](), "nightly", server, "--plain-http", "--timeout", "1")
    assert code == 75 and out["error"] == "RegistryUnreachable"
    assert server.requests == 3  # the default attempts, each cut at its deadline
    assert elapsed < 3 * 1 + 0.25 + 0.5 + SLACK, elapsed  # plus the backoff between them


@pytest.mark.parametrize("twin", TWINS)
def test_a_body_cut_before_its_content_length_is_transient_even_if_it_matches(
    hostile: Any, twin: str, tmp_path: Path
) -> None:
    """The manifest's exact bytes, then the connection closes 10 bytes before the
    announced length: the digest matches, and still it is a lost connection (75),
    retried on every attempt -- never accepted, never called tampering."""
    import hashlib

    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
    ).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    server = hostile("truncate", manifest)
    code, out, _elapsed = run(TWINS[twin](), digest, server, "--plain-http", "--timeout", "5")
    assert code == 75 and out["error"] == "RegistryUnreachable", out
    assert "mid-body" in out["message"] or "connection lost" in out["message"], out
    assert server.requests == 3
