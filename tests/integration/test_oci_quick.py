"""The quick read-only path (steps.oci.quick) against real registries and hostile servers.

Its promise: it answers only what the full client would answer, the same way, and on
anything else gives up (Doubt) so the command runs on the full client. Checked here: its
answers equal RegistryClient's in every auth mode and over TLS; every kind of doubt
(missing tag, 5xx, no digest header, altered bytes, a digest answered for another, a
redirect, a dripping or silent server, settings it does not serve); and at the command
line, `images check` and the no-op re-copy answer from it, with the full path's JSON,
one log, the right request counts and no secret in any output, and fall back to the full
client (its retries, its errors) whenever it doubts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from steps.cli.context import RunContext
from steps.oci import Credentials, Digest
from steps.oci.errors import NotFound
from steps.oci.quick import Doubt, QuickReader
from tests.harness.images import push_tiny_image
from tests.harness.misbehaving import MisbehavingServer, answer, drip_body, drip_headers
from tests.harness.registry import Registry
from tests.helpers import cli, client_for, registry_args, registry_env

pytestmark = pytest.mark.integration

REPO = "nine-minds/alga-psa-ee"
IMAGES = {
    "algaCore": "alga-psa-ee",
    "workflowWorker": "workflow-worker",
    "emailService": "email-service",
    "temporalWorker": "temporal-worker",
}
TAG = "1.2.3"
ROOT = Path(__file__).resolve().parents[2]


def reader_for(reg: Registry, host: str | None = None, **kwargs: Any) -> QuickReader:
    creds = Credentials(*reg.credentials) if reg.credentials else None
    kwargs.setdefault("credentials", creds)
    kwargs.setdefault("verify", str(reg.ca_file) if reg.ca_file else True)
    return QuickReader(host or reg.host, plain_http=not reg.tls, **kwargs)


def push_all(reg: Registry) -> dict[str, Digest]:
    with client_for(reg) as client:
        pushed = {
            key: push_tiny_image(client, f"nine-minds/{repo}", TAG) for key, repo in IMAGES.items()
        }
        pushed["controlPlane"] = push_tiny_image(
            client, "nine-minds/alga-appliance-control-plane", TAG
        )
    return pushed


def images_check_argv(reg: Registry, host: str | None = None) -> list[str]:
    images = [a for key in IMAGES for a in ("--image", f"{key}={TAG}")]
    return [
        "images",
        "check",
        *images,
        "--control-plane",
        TAG,
        *registry_args(reg, host),
        "--json",
    ]


def full_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RunContext, "quick_allowed", lambda self: False)


# -- the reader ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["anonymous", "basic", "token"])
def test_answers_equal_the_full_clients_in_every_auth_mode(
    registry_factory: Any, mode: str
) -> None:
    reg = registry_factory(mode)
    with client_for(reg) as client:
        digest = push_tiny_image(client, REPO, TAG)
        full_head = client.head_manifest(REPO, TAG)
        full_get = client.get_manifest(REPO, digest)
    with reader_for(reg) as reader:
        assert reader.head_manifest(REPO, TAG) == full_head
        assert reader.head_manifest(REPO, digest) == full_head
        assert reader.get_manifest(REPO, digest) == full_get
        assert reader.get_manifest(REPO, TAG) == full_get
        # one kept-alive connection: a 401 (and a token) once per repository
        assert reader.stats.requests == 4 + {"anonymous": 0, "basic": 1, "token": 2}[mode]
        assert reader.stats.token_requests == (1 if mode == "token" else 0)


def test_tls_with_the_ca_file_and_a_token(tls_token_registry: Registry) -> None:
    reg = tls_token_registry
    with client_for(reg) as client:
        digest = push_tiny_image(client, REPO, TAG)
    with reader_for(reg) as reader:
        assert reader.head_manifest(REPO, TAG).digest == digest
    # The same registry with the default roots: its throw-away CA is not among them.
    with reader_for(reg, verify=True) as reader, pytest.raises(Doubt):
        reader.head_manifest(REPO, TAG)


def test_a_missing_tag_is_answered_as_the_full_client_a_failing_registry_is_a_doubt(
    registry: Registry, fault_proxy: Any
) -> None:
    with client_for(registry) as client:
        digest = push_tiny_image(client, REPO, TAG)
        with pytest.raises(NotFound) as full_missing:
            client.get_manifest(REPO, "no-such-tag")
        config = Digest.parse(client.get_manifest(REPO, digest).json()["config"]["digest"])
        absent = Digest.of(b"not pushed")
        with pytest.raises(NotFound) as full_blob:
            client.get_blob(REPO, absent)
    proxy = fault_proxy(registry)
    with reader_for(registry, host=proxy.host) as reader:
        assert reader.head_manifest(REPO, "no-such-tag") is None  # as the full client
        with pytest.raises(NotFound) as quick_missing:
            reader.get_manifest(REPO, "no-such-tag")
        with pytest.raises(NotFound) as quick_blob:
            reader.get_blob(REPO, absent)
        assert reader.get_blob(REPO, config)  # a present blob: its bytes, checked
    # worded as the full client words them (the registry's own code and message included)
    full_text = full_missing.value.message.replace(proxy.host, registry.host)
    assert quick_missing.value.message.replace(proxy.host, registry.host) == full_text
    assert "MANIFEST_UNKNOWN" in quick_missing.value.message
    full_blob_text = full_blob.value.message.replace(proxy.host, registry.host)
    assert quick_blob.value.message.replace(proxy.host, registry.host) == full_blob_text
    with reader_for(registry, host=proxy.host) as reader:
        proxy.fail_next(1, 503)
        with pytest.raises(Doubt, match="503"):
            reader.head_manifest(REPO, TAG)
    with reader_for(registry, host=proxy.host) as reader:
        proxy.close_next(1)
        with pytest.raises(Doubt):
            reader.head_manifest(REPO, TAG)


def test_altered_manifest_bytes_are_a_doubt(registry: Registry, fault_proxy: Any) -> None:
    with client_for(registry) as client:
        digest = push_tiny_image(client, REPO, TAG)
    proxy = fault_proxy(registry)
    proxy.corrupt_always(path=r"/manifests/")
    with reader_for(registry, host=proxy.host) as reader:
        with pytest.raises(Doubt, match="do not match"):
            reader.get_manifest(REPO, digest)
        with pytest.raises(Doubt, match="do not match"):
            reader.get_manifest(REPO, TAG)  # checked against Docker-Content-Digest


def test_lying_headers_are_doubts() -> None:
    digest = Digest.of(b"{}")
    other = Digest.of(b"[]")

    def serve(headers: dict[str, str], status: int = 200) -> Any:
        def behaviour(conn: Any, request: Any, stop: Any) -> None:
            answer(conn, status, b"{}", headers, head=request.method == "HEAD")

        return behaviour

    cases = [
        ({}, "without Docker-Content-Digest"),
        ({"Docker-Content-Digest": str(other)}, "another digest"),
        ({"Docker-Content-Digest": "sha256:nothex"}, "malformed"),
    ]
    for headers, why in cases:
        with MisbehavingServer(serve(headers)) as server:
            reader = QuickReader(server.host, plain_http=True)
            with pytest.raises(Doubt, match=why):
                reader.head_manifest(REPO, digest)
            reader.close()
    for status, headers, why in (
        (307, {"Location": "http://example.invalid/"}, "307"),
        (401, {}, "without a challenge"),
        (401, {"WWW-Authenticate": 'Bearer realm="http://example.invalid/token"'}, "token realm"),
    ):
        with MisbehavingServer(serve(headers, status)) as server:
            reader = QuickReader(server.host, plain_http=True)
            with pytest.raises(Doubt, match=why):
                reader.head_manifest(REPO, TAG)
            reader.close()


def raw(response: bytes) -> Any:
    def behaviour(conn: Any, request: Any, stop: Any) -> None:
        conn.sendall(response)

    return behaviour


MANIFEST = b'{"schemaVersion":2}'
GOOD_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
    b"Docker-Content-Digest: " + str(Digest.of(MANIFEST)).encode() + b"\r\n"
)


@pytest.mark.parametrize(
    ("response", "why"),
    [
        (GOOD_HEAD + b"Transfer-Encoding: chunked\r\n\r\n13\r\n" + MANIFEST, "chunked"),
        (GOOD_HEAD + b"\r\n" + MANIFEST, "without a Content-Length"),
        (GOOD_HEAD + b"Content-Length: 19\r\nContent-Length: 19\r\n\r\n" + MANIFEST, "two"),
        (GOOD_HEAD + b"Content-Length: 19\r\n folded\r\n\r\n" + MANIFEST, "malformed header"),
        (b"HTTP/1.1 103 Early\r\n\r\n" + GOOD_HEAD, "interim"),
        (b"HTTP/2 200\r\nContent-Length: 19\r\n\r\n" + MANIFEST, "status line"),
        (GOOD_HEAD + b"Content-Length: 40\r\n\r\n" + MANIFEST, "shorter"),
        (GOOD_HEAD + b"Content-Length: 99999999\r\n\r\n", "size cap"),
        (GOOD_HEAD + b"X-Long: " + b"a" * 70_000 + b"\r\n\r\n", "64 KiB"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "inside the response headers"),
    ],
    ids=[
        "chunked",
        "unsized",
        "two-lengths",
        "folded",
        "interim",
        "http2",
        "short",
        "over-cap",
        "long-head",
        "cut-head",
    ],
)
def test_a_response_outside_strict_http_1_1_is_a_doubt(response: bytes, why: str) -> None:
    def behaviour(conn: Any, request: Any, stop: Any) -> None:
        conn.sendall(response)
        if why in ("shorter", "inside the response headers"):
            conn.shutdown(2)

    with MisbehavingServer(behaviour) as server:
        reader = QuickReader(server.host, plain_http=True)
        with pytest.raises(Doubt, match=why):
            reader.get_manifest(REPO, Digest.of(MANIFEST))
        reader.close()


def test_one_kept_alive_connection_and_one_retry_on_a_stale_one() -> None:
    answer_head = GOOD_HEAD + b"Content-Length: 19\r\n\r\n"

    def behaviour(conn: Any, request: Any, stop: Any) -> None:
        conn.sendall(answer_head + (b"" if request.method == "HEAD" else MANIFEST))
        if request.number == 3:  # the server drops a kept-alive connection after it
            conn.shutdown(2)
            # and reads nothing more from it: a GET that reached it before the shutdown
            # (Linux still hands out bytes queued by then) is not taken for a second one
            stop.wait(10)

    with MisbehavingServer(behaviour) as server:
        with QuickReader(server.host, plain_http=True) as reader:
            digest = Digest.of(MANIFEST)
            for _ in range(3):
                assert reader.head_manifest(REPO, digest).digest == digest
            assert len(server._conns) == 1  # three requests, one connection
            assert reader.get_manifest(REPO, digest).data == MANIFEST  # retried once, fresh
            assert len(server._conns) == 2
        assert [r.method for r in server.requests] == ["HEAD", "HEAD", "HEAD", "GET"]
    # a request that no server answers on a fresh connection is not retried
    with MisbehavingServer(lambda conn, request, stop: conn.shutdown(2)) as server:
        reader = QuickReader(server.host, plain_http=True)
        with pytest.raises(Doubt, match="closed the connection"):
            reader.head_manifest(REPO, TAG)
        reader.close()
        assert len(server.requests) == 1


def test_a_header_value_cannot_split_the_request() -> None:
    with MisbehavingServer(raw(b"")) as server:
        reader = QuickReader(
            server.host, plain_http=True, credentials=Credentials("u", "p")
        )
        reader._basic = True
        with pytest.raises(Doubt, match="split"):
            reader._send("http", server.host, "GET", "/v2/\r\nX-Injected: 1", {})
        reader.close()
        assert server.requests == []


@pytest.mark.parametrize("behaviour", ["headers", "body"])
def test_a_dripping_server_cannot_hold_it_past_its_budget(behaviour: str) -> None:
    drip = drip_headers(0.05) if behaviour == "headers" else drip_body(0.05)
    with MisbehavingServer(drip) as server:
        reader = QuickReader(server.host, plain_http=True, budget=0.6)
        started = time.monotonic()
        with pytest.raises(Doubt):
            reader.get_manifest(REPO, TAG)
        took = time.monotonic() - started
        reader.close()
    # every byte arrives within the socket timeout; only the watchdog ends it
    assert 0.5 <= took < 3.0, took


def test_settings_it_does_not_serve_are_doubts_before_any_request() -> None:
    with pytest.raises(Doubt, match="plain HTTP"):
        QuickReader("registry.example.com", plain_http=True)
    with pytest.raises(Doubt, match="insecure"):
        QuickReader("registry.example.com", insecure_hosts=("registry.example.com",))
    with pytest.raises(Doubt, match="refresh-token"):
        QuickReader("registry.example.com", credentials=Credentials("u", "t", identity_token=True))
    # a named insecure host over plain HTTP is served, as the full client serves it
    QuickReader("registry.example.com", plain_http=True, insecure_hosts=("registry.example.com",))


# -- the command line ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["anonymous", "token"])
def test_images_check_answers_from_quick_reads_with_the_full_paths_json(
    registry_factory: Any, fault_proxy: Any, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    reg = registry_factory(mode)
    pushed = push_all(reg)
    proxy = fault_proxy(reg)
    with registry_env(monkeypatch, reg):
        quick = cli([*images_check_argv(reg, proxy.host), "-v"])
        assert quick.code == 0, quick.stderr
        quick_requests = list(proxy.requests)
        proxy.reset()
        with monkeypatch.context() as m:
            full_only(m)
            full = cli(images_check_argv(reg, proxy.host))
        assert full.code == 0, full.stderr
    assert quick.json() == full.json()
    assert quick.json()["imageDigests"] == {k: str(pushed[k]) for k in IMAGES}
    assert quick.json()["controlPlane"].endswith(f"@{pushed['controlPlane']}")
    answered = [r for r in quick_requests if r.status != 401]
    assert [r.method for r in answered] == ["HEAD"] * 5
    assert "quick read given up" not in quick.stderr
    for key in IMAGES:  # each image's line once: nothing logged twice
        assert quick.stderr.count(f"image {key}:") == 1, quick.stderr
    assert reg.secrets_in(quick.stdout + quick.stderr) == []


def test_images_check_falls_back_to_the_full_client_on_a_doubt(
    registry: Registry, fault_proxy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_all(registry)
    proxy = fault_proxy(registry)
    # The quick reader's third HEAD gets a 503; the full client starts over and retries.
    proxy.fail_next(1, 503, method="HEAD", path="email-service")
    with registry_env(monkeypatch, registry):
        got = cli([*images_check_argv(registry, proxy.host), "-v"])
    assert got.code == 0, got.stderr
    assert "quick read given up" in got.stderr
    for key in IMAGES:  # the given-up quick read's lines are dropped: each line once
        assert got.stderr.count(f"image {key}:") == 1, got.stderr
    assert proxy.count("HEAD", status=503) == 1
    assert proxy.count("HEAD", path="alga-psa-ee", status=200) == 2  # quick, then full


def test_a_missing_image_is_the_full_clients_refusal(
    registry: Registry, fault_proxy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_all(registry)
    with client_for(registry) as client:
        client.delete_manifest(
            "nine-minds/temporal-worker",
            client.head_manifest("nine-minds/temporal-worker", TAG).digest,  # type: ignore[union-attr]
        )
    with registry_env(monkeypatch, registry):
        got = cli(images_check_argv(registry))
    assert got.code == 3, got.stderr
    assert "image tag(s) missing" in got.stderr
    assert "temporal-worker" in got.stderr


def test_publish_steps_share_the_full_client() -> None:
    context = RunContext()
    assert context.quick_allowed()
    context.standalone = False
    assert not context.quick_allowed()


def test_a_standalone_images_check_never_imports_the_http_library(
    registry: Registry, tmp_path: Path
) -> None:
    push_all(registry)
    script = (
        "import sys\n"
        "from steps.cli.app import run\n"
        f"code = run({images_check_argv(registry)!r})\n"
        "print(code, 'httpx' in sys.modules, file=sys.stderr)\n"
    )
    got = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert got.stderr.strip().splitlines()[-1] == "0 False", got.stderr
    assert json.loads(got.stdout)["controlPlane"]


BLOB = b'{"schema":"alga.appliance.release/v1"}'


def test_a_blob_redirect_is_followed_and_the_credentials_stay_with_the_registry() -> None:
    digest = Digest.of(BLOB)

    def storage(conn: Any, request: Any, stop: Any) -> None:
        answer(conn, 200, BLOB)

    with MisbehavingServer(storage) as store:
        where = f"http://{store.host}/data/{digest.hex}?signature=s3cr"

        def home(conn: Any, request: Any, stop: Any) -> None:
            if "authorization" not in request.headers:
                answer(conn, 401, b"", {"WWW-Authenticate": 'Basic realm="r"'})
            else:
                answer(conn, 307, b"", {"Location": where})

        with MisbehavingServer(home) as registry:
            reader = QuickReader(
                registry.host, plain_http=True, credentials=Credentials("ci", "pa55-word")
            )
            try:
                assert reader.get_blob(REPO, digest, size=len(BLOB)) == BLOB
            finally:
                reader.close()
    assert registry.requests[-1].headers["authorization"].startswith("Basic ")
    assert [r.path for r in store.requests] == [f"/data/{digest.hex}?signature=s3cr"]
    assert "authorization" not in store.requests[0].headers  # another origin: no credentials


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("http://registry.example.com/blob", "redirect the full client judges"),
        ("ftp://127.0.0.1/blob", "redirect the full client judges"),
        ("/v2/again", "answered 307"),  # six hops: past the full client's five
    ],
    ids=["plain-http-off-loopback", "not-http", "loop"],
)
def test_a_redirect_the_full_client_would_not_follow_is_a_doubt(location: str, why: str) -> None:
    def home(conn: Any, request: Any, stop: Any) -> None:
        answer(conn, 307, b"", {"Location": location})

    with MisbehavingServer(home) as registry:
        reader = QuickReader(registry.host, plain_http=True)
        with pytest.raises(Doubt, match=why):
            reader.get_blob(REPO, Digest.of(BLOB))
        reader.close()
    if why == "answered 307":
        assert len(registry.requests) == 6


@pytest.mark.parametrize(
    ("body", "size", "why"),
    [
        (BLOB.replace(b"v1", b"v2"), len(BLOB), "do not match"),
        (BLOB + b" ", None, "do not match"),
        (BLOB, len(BLOB) + 1, "size cap|shorter|do not match"),
        (BLOB, 5 * 1024 * 1024, "too big"),
    ],
    ids=["altered", "longer", "shorter-than-said", "over-cap"],
)
def test_blob_bytes_the_full_client_would_refuse_are_a_doubt(
    body: bytes, size: int | None, why: str
) -> None:
    def home(conn: Any, request: Any, stop: Any) -> None:
        answer(conn, 200, body)

    with MisbehavingServer(home) as registry:
        reader = QuickReader(registry.host, plain_http=True)
        with pytest.raises(Doubt, match=why):
            reader.get_blob(REPO, Digest.of(BLOB), size=size)
        reader.close()


def test_writes_and_tag_listings_are_doubts_before_any_request() -> None:
    with MisbehavingServer(raw(b"")) as registry:
        reader = QuickReader(registry.host, plain_http=True)
        for method in ("put_manifest", "push_blob", "tag", "delete_manifest", "list_tags"):
            with pytest.raises(Doubt, match="full client"):
                getattr(reader, method)(REPO, TAG)
        assert reader.spawn() is None
        reader.close()
    assert registry.requests == []
