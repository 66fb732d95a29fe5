"""Every phase of every request ends in bounded time, and says what it was waiting for.

Real loopback servers that stall, drip or cut bodies short (tests/harness/misbehaving.py);
no mocks. The limits are small so the tests are quick; the clock is the real one.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time

import pytest

from steps.oci import Digest, RegistryClient, RetryPolicy
from steps.oci import mediatypes as mt
from steps.oci.errors import (
    CommandTimeout,
    DigestMismatch,
    IncompleteBody,
    RegistryTimeout,
    TransientRegistryError,
)
from steps.oci.transport import Deadline, Timeouts
from tests.harness.misbehaving import (
    MisbehavingServer,
    RawRequest,
    answer,
    drip_body,
    drip_headers,
    never_answer,
    truncated,
)

pytestmark = pytest.mark.integration

REPO = "nine-minds/test/deadlines"
FAST = Timeouts(connect=1.0, headers=1.0, body=1.0, idle=0.5, min_rate=1e9)
ONCE = RetryPolicy(attempts=1, base_delay=0)


def _client(server: MisbehavingServer, **kwargs: object) -> RegistryClient:
    kwargs.setdefault("timeouts", FAST)
    kwargs.setdefault("retry", ONCE)
    return RegistryClient(server.host, plain_http=True, **kwargs)  # type: ignore[arg-type]


def _timed(fn: object) -> tuple[BaseException, float]:
    start = time.monotonic()
    try:
        fn()  # type: ignore[operator]
    except BaseException as exc:  # the test inspects it
        return exc, time.monotonic() - start
    raise AssertionError("expected a failure")


def test_accepts_and_never_answers_ends_within_the_header_deadline() -> None:
    with MisbehavingServer(never_answer) as server, _client(server) as client:
        err, took = _timed(lambda: client.get_manifest(REPO, "v1"))
    assert isinstance(err, RegistryTimeout) and err.exit_code == 75
    assert took < 2.0 + 1.0  # connect + headers limits, plus slack for a loaded machine
    text = str(err)
    assert f"no response headers from {server.host} within" in text
    assert f"for GET /v2/{REPO}/manifests/v1" in text


def test_dripping_headers_cannot_hold_a_request() -> None:
    # Each byte arrives well inside the idle limit: only a whole-phase deadline stops it.
    with MisbehavingServer(drip_headers(0.1)) as server, _client(server) as client:
        err, took = _timed(lambda: client.head_manifest(REPO, "v1"))
    assert isinstance(err, RegistryTimeout)
    assert took < 3.0
    assert "no response headers" in str(err) and "HEAD /v2/" in str(err)


def test_dripping_body_cannot_hold_a_download() -> None:
    with MisbehavingServer(drip_body(0.1)) as server, _client(server) as client:
        err, took = _timed(lambda: client.get_manifest(REPO, "v1"))
    assert isinstance(err, RegistryTimeout)
    assert took < 3.0
    assert "no complete response body" in str(err)


def test_the_command_deadline_bounds_retries_and_long_per_request_limits() -> None:
    patient = Timeouts()  # 10 s connect, 30 s headers: the command's 1.5 s is what counts
    with MisbehavingServer(never_answer) as server:
        client = _client(
            server,
            timeouts=patient,
            retry=RetryPolicy(attempts=5, base_delay=0.2),
            deadline=Deadline(1.5),
        )
        with client:
            err, took = _timed(lambda: client.list_tags(REPO))
    assert isinstance(err, CommandTimeout) and err.exit_code == 75
    assert took < 1.5 + 1.0
    assert "time limit of 1.5 s ran out waiting for response headers" in str(err)
    assert "--timeout" in (err.hint or "")


def _manifest() -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": "x", "digest": str(Digest.of(b"{}")), "size": 2},
            "layers": [],
        }
    ).encode()


def test_a_truncated_body_is_transient_never_tampering() -> None:
    data = _manifest()
    headers = {"Content-Type": mt.OCI_MANIFEST, "Docker-Content-Digest": str(Digest.of(data))}
    behaviour = truncated(data, len(data) // 2, headers)
    with MisbehavingServer(behaviour) as server, _client(server) as client:
        err, _ = _timed(lambda: client.get_manifest(REPO, Digest.of(data)))
    assert isinstance(err, IncompleteBody) and not isinstance(err, DigestMismatch)
    assert err.exit_code == 75


def test_a_truncated_body_is_retried_and_then_verifies() -> None:
    data = _manifest()
    headers = {"Content-Type": mt.OCI_MANIFEST, "Docker-Content-Digest": str(Digest.of(data))}
    behaviour = truncated(data, 10, headers, times=1)
    with MisbehavingServer(behaviour) as server:
        with _client(server, retry=RetryPolicy(attempts=3, base_delay=0)) as client:
            manifest = client.get_manifest(REPO, "v1")
        assert manifest.data == data
        assert len(server.requests) == 2


def test_a_short_blob_with_a_known_size_is_incomplete_not_a_mismatch() -> None:
    blob = b"0123456789" * 100

    def short_blob(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
        # No Content-Length and a closed connection: only the descriptor's size tells.
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + blob[:300])
        conn.shutdown(socket.SHUT_RDWR)

    with MisbehavingServer(short_blob) as server, _client(server) as client:
        err, _ = _timed(lambda: client.get_blob(REPO, Digest.of(blob), size=len(blob)))
    assert isinstance(err, IncompleteBody), err


def test_slow_but_steady_blob_transfers_get_time_for_their_size() -> None:
    # 2.5 MiB in 20 pieces 0.05 s apart takes ~1 s: longer than the 0.5 s limit of a small
    # body, within body + size / min_rate (0.5 + 2.5 s).
    blob = bytes(range(256)) * (10 * 1024)

    def steady(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(blob)}\r\n\r\n".encode())
        step = len(blob) // 20
        for start in range(0, len(blob), step):
            time.sleep(0.05)
            conn.sendall(blob[start : start + step])

    limits = Timeouts(connect=1, headers=1, body=0.5, idle=0.5, min_rate=1024 * 1024)
    with MisbehavingServer(steady) as server, _client(server, timeouts=limits) as client:
        seen: list[tuple[int, int | None]] = []
        sink = io.BytesIO()
        assert client.download_blob(
            REPO, Digest.of(blob), sink, size=len(blob), progress=lambda n, t: seen.append((n, t))
        ) == len(blob)
    assert sink.getvalue() == blob
    assert seen[-1] == (len(blob), len(blob)) and len(seen) > 1


def test_a_stalled_registry_through_every_retry_is_still_transient() -> None:
    calls: list[int] = []

    def stall_then_fail(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
        calls.append(request.number)
        if request.number == 1:
            stop.wait(1.5)
            return
        answer(conn, 503, b"{}")

    twice = RetryPolicy(attempts=2, base_delay=0)
    with MisbehavingServer(stall_then_fail) as server, _client(server, retry=twice) as client:
        err, _ = _timed(lambda: client.head_manifest(REPO, "v1"))
    assert isinstance(err, TransientRegistryError) and err.exit_code == 75
    assert calls == [1, 2]


def test_a_stalled_registry_is_tried_twice_at_most_whatever_the_retry_policy() -> None:
    # Five attempts allowed, but a registry that stalls twice running is stalled: the
    # reads that also retry broken bodies must not multiply the header stalls either.
    with MisbehavingServer(never_answer) as server:
        client = _client(server, retry=RetryPolicy(attempts=5, base_delay=0))
        with client:
            err, took = _timed(lambda: client.get_manifest(REPO, "v1"))
    assert isinstance(err, RegistryTimeout)
    assert len(server.requests) == 2, server.requests
    assert "after 2 attempt(s)" in str(err)
    assert took < 2 * 2.0 + 1.5
