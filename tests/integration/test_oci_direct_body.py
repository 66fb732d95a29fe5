"""Big blob bodies read straight from the socket (steps.oci.transport.direct_body).

A blob body of at least ``DIRECT_MIN`` bytes with a plain ``Content-Length`` skips h11's
copies; these tests hold it to everything the httpx path promises: the same bytes, the
same errors for a body cut short, stalled or dripping (each within its deadline), retries
that verify, bodies it must not take (a content coding, chunked framing, a short one)
left to httpx, and a connection left mid-body never reused. Raw loopback servers
(tests/harness/misbehaving.py) and the real registry; no mocks.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import socket
import threading
import time

import pytest

from steps.oci import Digest, RegistryClient, RetryPolicy
from steps.oci.errors import DigestMismatch, IncompleteBody, RegistryTimeout
from steps.oci.transport import DIRECT_MIN, Timeouts
from tests.harness.misbehaving import MisbehavingServer, RawRequest, answer
from tests.harness.registry import Registry

pytestmark = pytest.mark.integration

REPO = "nine-minds/test/direct"
FAST = Timeouts(connect=1.0, headers=1.0, body=1.0, idle=0.5, min_rate=1e9)
ONCE = RetryPolicy(attempts=1, base_delay=0)
#: 3 MiB of bytes that differ from piece to piece (a shifted piece would not verify)
BLOB = hashlib.shake_256(b"direct").digest(3 * 1024 * 1024)
DIGEST = Digest.of(BLOB)


def _client(server: MisbehavingServer, **kwargs: object) -> RegistryClient:
    kwargs.setdefault("timeouts", FAST)
    kwargs.setdefault("retry", ONCE)
    return RegistryClient(server.host, plain_http=True, **kwargs)  # type: ignore[arg-type]


def _download(client: RegistryClient, size: int | None = len(BLOB)) -> bytes:
    sink = io.BytesIO()
    client.download_blob(REPO, DIGEST, sink, size=size)
    return sink.getvalue()


def _serve_blob(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
    answer(conn, 200, BLOB, head=request.method == "HEAD")


def test_a_big_body_arrives_whole_and_its_connection_is_not_pooled() -> None:
    assert len(BLOB) >= DIRECT_MIN
    with MisbehavingServer(_serve_blob) as server, _client(server) as client:
        assert _download(client) == BLOB
        assert _download(client) == BLOB
        # h11 was left mid-body: each download had a connection of its own
        assert server.connections == 2
        assert client.stats.bytes_downloaded == 2 * len(BLOB)


def test_a_small_body_keeps_its_pooled_connection() -> None:
    small = BLOB[: DIRECT_MIN - 1]

    def behaviour(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
        answer(conn, 200, small)

    with MisbehavingServer(behaviour) as server, _client(server) as client:
        for _ in range(2):
            assert client.get_blob(REPO, Digest.of(small), size=len(small)) == small
        assert server.connections == 1  # read through httpx: the connection was reused


def _cut(keep: int, times: int) -> object:
    def behaviour(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
        if request.number > times:
            answer(conn, 200, BLOB)
            return
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(BLOB)}\r\n\r\n".encode())
        conn.sendall(BLOB[:keep])
        time.sleep(0.05)
        conn.shutdown(socket.SHUT_RDWR)
        conn.close()

    return behaviour


@pytest.mark.parametrize("keep", [0, 1000, 2 * 1024 * 1024 + 17])
def test_a_body_cut_short_is_incomplete_never_a_mismatch(keep: int) -> None:
    with (
        MisbehavingServer(_cut(keep, times=100)) as server,
        _client(server) as client,
        pytest.raises(IncompleteBody) as caught,
    ):
        _download(client)
    assert not isinstance(caught.value, DigestMismatch)
    assert caught.value.exit_code == 75
    assert f"after {keep} of {len(BLOB)} bytes" in str(caught.value)


def test_a_copy_whose_source_body_is_cut_short_starts_again_and_verifies(
    registry: Registry,
) -> None:
    retry = RetryPolicy(attempts=3, base_delay=0)
    with (
        MisbehavingServer(_cut(len(BLOB) // 2, times=1)) as server,
        _client(server, retry=retry) as source,
        RegistryClient(registry.host, plain_http=True, retry=retry) as dest,
    ):
        assert dest.copy_blob(source, REPO, REPO, DIGEST, len(BLOB)) == "uploaded"
        assert len([r for r in server.requests if r.method == "GET"]) == 2
        sink = io.BytesIO()
        dest.download_blob(REPO, DIGEST, sink, size=len(BLOB))
        assert sink.getvalue() == BLOB


def test_a_body_that_stops_mid_way_trips_the_idle_limit() -> None:
    def behaviour(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(BLOB)}\r\n\r\n".encode())
        conn.sendall(BLOB[: len(BLOB) // 2])
        stop.wait()

    patient = Timeouts(connect=1.0, headers=1.0, body=30.0, idle=0.5, min_rate=1e9)
    with MisbehavingServer(behaviour) as server, _client(server, timeouts=patient) as client:
        start = time.monotonic()
        with pytest.raises(RegistryTimeout) as caught:
            _download(client)
        took = time.monotonic() - start
    assert took < 0.5 + 2.0  # the idle limit, not the 30 s body deadline
    assert "response body" in str(caught.value)


def test_a_dripping_body_cannot_outlast_its_deadline() -> None:
    def behaviour(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(BLOB)}\r\n\r\n".encode())
        for start in range(0, len(BLOB), 4096):  # well inside the idle limit each time
            if stop.wait(0.05):
                return
            conn.sendall(BLOB[start : start + 4096])

    with MisbehavingServer(behaviour) as server, _client(server) as client:
        start = time.monotonic()
        with pytest.raises(RegistryTimeout) as caught:
            _download(client)
        took = time.monotonic() - start
    assert took < 1.0 + 2.0  # the body's 1 s, though every piece came within 0.5 s
    assert "no complete response body" in str(caught.value)


def test_bytes_after_the_body_are_never_taken_for_it() -> None:
    def behaviour(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
        answer(conn, 200, BLOB)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra")

    with MisbehavingServer(behaviour) as server, _client(server) as client:
        assert _download(client) == BLOB
        assert _download(client) == BLOB  # a fresh connection: the extra bytes are dropped
        assert server.connections == 2


def test_altered_bytes_are_a_mismatch() -> None:
    altered = BLOB[:-1] + bytes([BLOB[-1] ^ 1])

    def behaviour(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
        answer(conn, 200, altered)

    with (
        MisbehavingServer(behaviour) as server,
        _client(server) as client,
        pytest.raises(DigestMismatch),
    ):
        _download(client)


def test_a_content_coded_body_is_left_to_httpx() -> None:
    packed = gzip.compress(BLOB, compresslevel=1)
    assert len(packed) >= DIRECT_MIN

    def behaviour(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
        answer(conn, 200, packed, {"Content-Encoding": "gzip"})

    with MisbehavingServer(behaviour) as server, _client(server) as client:
        assert _download(client, size=None) == BLOB  # decoded, as httpx decodes it


def test_a_chunked_body_is_left_to_httpx() -> None:
    def behaviour(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(BLOB), 1 << 20):
            piece = BLOB[start : start + (1 << 20)]
            conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.sendall(b"0\r\n\r\n")

    with MisbehavingServer(behaviour) as server, _client(server) as client:
        assert _download(client) == BLOB
        assert _download(client) == BLOB
        assert server.connections == 1  # read through h11 to its end: pooled


def test_the_real_registry_round_trips_a_big_blob(registry: Registry) -> None:
    with RegistryClient(registry.host, plain_http=True) as client:
        client.push_blob(REPO, BLOB)
        sink = io.BytesIO()
        client.download_blob(REPO, DIGEST, sink, size=len(BLOB))
        assert sink.getvalue() == BLOB
        assert list(client.stream_blob(REPO, DIGEST)) and client.head_blob(REPO, DIGEST)
