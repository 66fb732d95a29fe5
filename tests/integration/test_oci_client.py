"""The OCI client against the real registry, in every auth mode, and through faults."""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from steps.oci import (
    AuthError,
    Credentials,
    Digest,
    DigestMismatch,
    NotFound,
    RegistryError,
    TransientRegistryError,
)
from steps.oci import mediatypes as mt
from tests.harness.hold import start_holding_proxy
from tests.harness.registry import Registry
from tests.helpers import FAST_RETRY, client_for

pytestmark = pytest.mark.integration

REPO = "nine-minds/test/blobs"


def _manifest(config: bytes, layer: bytes, *, pretty: bool = False) -> bytes:
    body = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.test.config+json",
            "digest": str(Digest.of(config)),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.test.layer",
                "digest": str(Digest.of(layer)),
                "size": len(layer),
            }
        ],
    }
    # Deliberately unusual formatting: the bytes, not the JSON value, are the identity.
    return json.dumps(body, indent=3 if pretty else None).encode()


def _push_small_artifact(reg: Registry, repo: str = REPO, tag: str = "v1") -> tuple[bytes, Digest]:
    config, layer = b'{"a":1}', b"layer-bytes-" + repo.encode()
    manifest = _manifest(config, layer, pretty=True)
    with client_for(reg) as client:
        client.push_blob(repo, config)
        client.push_blob(repo, layer)
        digest = client.put_manifest(repo, tag, manifest, mt.OCI_MANIFEST)
    return manifest, digest


def test_blob_and_manifest_round_trip_in_every_auth_mode(any_registry: Registry) -> None:
    manifest, digest = _push_small_artifact(any_registry)
    assert digest == Digest.of(manifest)
    with client_for(any_registry) as client:
        got = client.get_manifest(REPO, "v1")
        assert got.data == manifest  # exact bytes, not re-serialised
        assert got.digest == digest
        assert got.media_type == mt.OCI_MANIFEST
        head = client.head_manifest(REPO, "v1")
        assert head is not None and head.digest == digest and head.size == len(manifest)
        assert client.get_manifest(REPO, digest).data == manifest
        layer = b"layer-bytes-" + REPO.encode()
        assert client.get_blob(REPO, Digest.of(layer), size=len(layer)) == layer
        assert client.head_manifest(REPO, "nope") is None
        assert client.head_blob(REPO, Digest.of(b"absent")) is None


def test_second_push_uploads_nothing(any_registry: Registry) -> None:
    data = b"x" * 10_000
    with client_for(any_registry) as client:
        assert client.push_blob(REPO, data) == "uploaded"
        before = client.stats.bytes_uploaded
        assert client.push_blob(REPO, data) == "existing"
        assert client.stats.bytes_uploaded == before
        assert client.stats.blobs_uploaded == 1


def test_tag_by_bytes_preserves_digest(any_registry: Registry) -> None:
    manifest, digest = _push_small_artifact(any_registry)
    with client_for(any_registry) as client:
        assert client.tag(REPO, "v1", "stable") == digest
        assert client.get_manifest(REPO, "stable").data == manifest
        assert sorted(client.list_tags(REPO)) == ["stable", "v1"]


def test_chunked_upload_streams_a_large_blob_without_holding_it(
    registry: Registry, tmp_path: Path
) -> None:
    big = tmp_path / "layer.bin"
    chunk = bytes(range(256)) * 4096  # 1 MiB
    with big.open("wb") as fh:
        for i in range(24):
            fh.write(chunk[i:] + chunk[:i])
    size = big.stat().st_size
    with client_for(registry, monolithic_limit=1 << 20, chunk_size=2 << 20) as client:
        tracemalloc.start()
        try:
            assert client.push_blob(REPO, big) == "uploaded"
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert client.stats.by_method.get("PATCH", 0) == 12
        assert client.stats.bytes_uploaded == size
        assert peak < 12 * 1024 * 1024, f"peak {peak} bytes: the upload held the blob"
        from steps.oci.reference import digest_stream

        with big.open("rb") as fh:
            digest, _ = digest_stream(fh)
        out = tmp_path / "out.bin"
        with out.open("wb") as fh:
            assert client.download_blob(REPO, digest, fh, size=size) == size
        assert out.read_bytes() == big.read_bytes()


@pytest.mark.parametrize("mode", ["anonymous", "token"])
def test_cross_repository_mount(mode: str, registry: Registry, token_registry: Registry) -> None:
    reg = registry if mode == "anonymous" else token_registry
    data = b"shared layer " * 1000
    with client_for(reg) as client:
        client.push_blob("nine-minds/source", data)
        uploaded = client.stats.bytes_uploaded
        assert (
            client.push_blob("nine-minds/target", data, mount_from=["nine-minds/source"])
            == "mounted"
        )
        assert client.stats.bytes_uploaded == uploaded
        assert client.blob_exists("nine-minds/target", Digest.of(data))


def test_token_auth_asks_push_scope_and_caches_tokens(token_registry: Registry) -> None:
    assert token_registry.token_server is not None
    token_registry.token_server.reset()
    with client_for(token_registry) as client:
        for i in range(5):
            client.push_blob(REPO, f"blob {i}".encode())
        token_requests = client.stats.token_requests
    requests = token_registry.token_server.requests_for(REPO)
    assert any("push" in r.requested_actions(REPO) for r in requests)
    assert token_requests <= 2, f"{token_requests} token requests for 5 pushes: no caching"


def test_wrong_credentials_name_the_registry(protected_registry: Registry) -> None:
    bad = Credentials(protected_registry.username or "u", "wrong-password-123")
    with client_for(protected_registry, credentials=bad) as client, pytest.raises(AuthError) as err:
        client.push_blob(REPO, b"data")
    assert protected_registry.host in str(err.value)
    assert "wrong-password-123" not in err.value.diagnostics()


def test_anonymous_push_to_protected_registry_says_credentials_needed(
    basic_registry: Registry,
) -> None:
    with client_for(basic_registry, anonymous=True) as client, pytest.raises(AuthError) as err:
        client.push_blob(REPO, b"data")
    assert "ALGA_REGISTRY_USERNAME" in (err.value.hint or "")


def test_not_found_names_the_reference(registry: Registry) -> None:
    with client_for(registry) as client, pytest.raises(NotFound) as err:
        client.get_manifest("nine-minds/absent", "1.0.0")
    assert f"{registry.host}/nine-minds/absent:1.0.0" in str(err.value)


def test_delete_manifest(registry: Registry) -> None:
    _, digest = _push_small_artifact(registry)
    with client_for(registry) as client:
        client.delete_manifest(REPO, digest)
        assert client.head_manifest(REPO, digest) is None


def test_retries_503_twice_then_succeeds(registry: Registry, fault_proxy: Any) -> None:
    proxy = fault_proxy(registry)
    proxy.fail_next(2, status=503, method="PUT", path=r"/manifests/")
    config, layer = b"{}", b"l"
    with client_for(registry, host=proxy.host) as client:
        client.push_blob(REPO, config)
        client.push_blob(REPO, layer)
        digest = client.put_manifest(REPO, "v1", _manifest(config, layer), mt.OCI_MANIFEST)
        assert client.stats.retries == 2
    puts = [r for r in proxy.requests if r.method == "PUT" and "/manifests/" in r.path]
    assert [r.status for r in puts] == [503, 503, 201]
    with client_for(registry) as direct:
        assert direct.head_manifest(REPO, "v1") is not None
        assert direct.get_manifest(REPO, "v1").digest == digest


def test_persistent_failure_is_transient_exit_75(registry: Registry, fault_proxy: Any) -> None:
    proxy = fault_proxy(registry)
    proxy.fail_always(status=503)
    with (
        client_for(registry, host=proxy.host) as client,
        pytest.raises(TransientRegistryError) as err,
    ):
        client.head_manifest(REPO, "v1")
    assert err.value.exit_code == 75
    assert proxy.host in str(err.value)
    assert len(proxy.requests) == 4  # FAST_RETRY: bounded attempts


def test_connection_errors_are_retried_then_transient(registry: Registry, fault_proxy: Any) -> None:
    proxy = fault_proxy(registry)
    proxy.close_next(1)
    with client_for(registry, host=proxy.host) as client:
        assert client.head_manifest(REPO, "missing") is None
    proxy.close_always()
    with client_for(registry, host=proxy.host) as client, pytest.raises(TransientRegistryError):
        client.head_manifest(REPO, "missing")


def test_corrupted_blob_and_manifest_are_refused(registry: Registry, fault_proxy: Any) -> None:
    _, digest = _push_small_artifact(registry)
    proxy = fault_proxy(registry)
    proxy.corrupt_always(path=r"/blobs/")
    layer = b"layer-bytes-" + REPO.encode()
    with client_for(registry, host=proxy.host) as client, pytest.raises(DigestMismatch):
        client.get_blob(REPO, Digest.of(layer))
    proxy.reset()
    proxy.corrupt_always(path=r"/manifests/")
    with client_for(registry, host=proxy.host) as client:
        with pytest.raises(DigestMismatch):
            client.get_manifest(REPO, digest)
        with pytest.raises(DigestMismatch):
            client.get_manifest(REPO, "v1")  # by tag: checked against Docker-Content-Digest


def test_registry_down_is_transient(tmp_path: Path) -> None:
    from steps.oci import RegistryClient
    from tests.harness.registry import free_port

    port = free_port()
    client = RegistryClient(f"127.0.0.1:{port}", plain_http=True, retry=FAST_RETRY)
    with client, pytest.raises(TransientRegistryError) as err:
        client.head_manifest(REPO, "v1")
    assert err.value.exit_code == 75


def test_tls_registry_verifies_certificates(tls_token_registry: Registry) -> None:
    from steps.oci import RegistryClient, RegistryError

    _, digest = _push_small_artifact(tls_token_registry)
    with client_for(tls_token_registry) as client:
        assert client.get_manifest(REPO, "v1").digest == digest
    # Without the CA the certificate does not verify: a clear, non-transient error.
    with RegistryClient(tls_token_registry.host) as client, pytest.raises(RegistryError) as err:
        client.head_manifest(REPO, "v1")
    assert not isinstance(err.value, TransientRegistryError)
    assert "certificate" in str(err.value).lower()


def test_tls_roots_are_loaded_on_the_first_handshake_only(
    registry: Registry, tls_token_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain-HTTP client never loads the TLS roots (about 30 ms of start-up); a TLS one
    loads them when it first connects, and still refuses a certificate they do not sign."""
    from steps.oci import RegistryClient, RegistryError, transport

    loads: list[bool] = []
    real = transport.shared_ssl_context

    def counting(verify: bool) -> Any:
        loads.append(verify)
        return real(verify)

    monkeypatch.setattr(transport, "shared_ssl_context", counting)
    _, digest = _push_small_artifact(registry)
    with client_for(registry) as client:
        assert client.get_manifest(REPO, "v1").digest == digest
    assert loads == []
    with RegistryClient(tls_token_registry.host, retry=FAST_RETRY) as client:
        assert loads == []  # made, not connected: nothing loaded yet
        with pytest.raises(RegistryError) as err:
            client.head_manifest(REPO, "v1")
    assert "certificate" in str(err.value).lower()
    assert loads and all(v is True for v in loads)


def test_a_run_client_asks_once_for_what_it_read_by_digest(registry: Registry) -> None:
    """``remember_by_digest`` (the CLI's run clients): a manifest or blob read by digest is
    read from the registry once; a tag is always asked; a deleted manifest is forgotten."""
    config, layer = b'{"a":1}', b"layer bytes"
    manifest = _manifest(config, layer)
    with client_for(registry, remember_by_digest=True) as client:
        client.push_blob("ns/remember", config)
        client.push_blob("ns/remember", layer)
        digest = client.put_manifest("ns/remember", "v1", manifest, mt.OCI_MANIFEST)
        first = client.get_manifest("ns/remember", digest)
        blob = client.get_blob("ns/remember", Digest.of(layer))
        asked = client.stats.requests
        assert client.get_manifest("ns/remember", digest) == first
        assert client.get_blob("ns/remember", Digest.of(layer), size=len(layer)) == blob
        assert client.stats.requests == asked  # from memory
        assert client.get_manifest("ns/remember", "v1").digest == digest  # a tag: asked
        assert client.stats.requests == asked + 1
        # the same digest in another repository is that repository's question
        with pytest.raises(NotFound):
            client.get_manifest("ns/other", digest)
        client.delete_manifest("ns/remember", digest)
        with pytest.raises(NotFound):
            client.get_manifest("ns/remember", digest)
    with client_for(registry) as plain:  # the default: every read asks
        plain.get_blob("ns/remember", Digest.of(layer))
        asked = plain.stats.requests
        plain.get_blob("ns/remember", Digest.of(layer))
        assert plain.stats.requests == asked + 1


def test_a_snapshot_answers_a_repeated_head_once_and_forgets_on_a_write(
    registry: Registry,
) -> None:
    manifest, digest = _push_small_artifact(registry, tag="v1")
    with client_for(registry) as client:
        before = client.stats.requests
        assert client.head_manifest(REPO, "v1") == client.head_manifest(REPO, "v1")
        assert client.stats.requests - before == 2  # outside a snapshot: every HEAD asks
        with client.snapshot():
            before = client.stats.requests
            first = client.head_manifest(REPO, "v1")
            assert first is not None and first.digest == digest
            assert client.head_manifest(REPO, "v1") == first
            assert client.head_manifest(REPO, "missing") is None
            assert client.head_manifest(REPO, "missing") is None  # a 404 is an answer too
            with client.snapshot():  # nested: the same answers
                assert client.head_manifest(REPO, "v1") == first
            assert client.stats.requests - before == 2
            # a write by this client makes the answers stale: asked again
            client.put_manifest(REPO, "missing", manifest, mt.OCI_MANIFEST)
            found = client.head_manifest(REPO, "missing")
            assert found is not None and found.digest == digest
            assert client.stats.requests - before == 4
        before = client.stats.requests
        client.head_manifest(REPO, "v1")
        assert client.stats.requests - before == 1  # the block's answers end with it


def test_head_manifests_overlaps_the_heads_and_answers_in_order(
    registry: Registry, fault_proxy: Any
) -> None:
    """Several HEADs at once on sibling clients: one held by the proxy does not keep the
    others waiting; the answers come in the queries' order, a 404 as None, and inside a
    snapshot they are the client's answers (not asked again, one by one or together)."""
    _, first = _push_small_artifact(registry, tag="v1")
    _, second = _push_small_artifact(registry, "nine-minds/test/other", tag="v2")
    queries: list[tuple[str, str | Digest]] = [
        (REPO, "v1"),
        (REPO, "missing"),
        ("nine-minds/test/other", second),
        ("nine-minds/test/other", "v2"),
    ]
    holding = start_holding_proxy(registry)
    try:
        gate = holding.hold("HEAD", r"/manifests/v1$")
        with client_for(registry, host=holding.host) as client:
            answers: list[Any] = []
            worker = threading.Thread(target=lambda: answers.extend(client.head_manifests(queries)))
            worker.start()
            assert gate.wait_arrived(30)
            # the held HEAD is parked; the three others are answered meanwhile
            deadline = time.monotonic() + 30
            while len([r for r in holding.requests if r.method == "HEAD"]) < 3:
                assert time.monotonic() < deadline, holding.requests
                time.sleep(0.01)
            assert not answers
            gate.release()
            worker.join(30)
            assert [a.digest if a else None for a in answers] == [first, None, second, second]
            assert client.stats.requests == 4  # the siblings' requests are counted here
            with client.snapshot():
                assert client.head_manifests(queries) == answers
                before = client.stats.requests
                assert client.head_manifests(queries, jobs=1) == answers
                assert [client.head_manifest(*q) for q in queries] == answers
                assert client.stats.requests == before  # the snapshot's answers
    finally:
        holding.stop()


def test_head_manifests_raises_the_first_error_in_order_once_all_are_answered(
    registry: Registry, fault_proxy: Any
) -> None:
    _push_small_artifact(registry, tag="v1")
    proxy = fault_proxy(registry)
    proxy.fail_always(403, method="HEAD", path=r"/manifests/forbidden$")
    proxy.fail_always(400, method="HEAD", path=r"/manifests/bad-[ab]$")
    queries: list[tuple[str, str | Digest]] = [
        (REPO, "forbidden"),
        (REPO, "v1"),
        (REPO, "bad-a"),
        (REPO, "bad-b"),
    ]
    with client_for(registry, host=proxy.host) as client:
        with pytest.raises(RegistryError) as caught:
            client.head_manifests(queries)
        assert caught.value.status == 403  # the first in the queries' order
        assert proxy.count("HEAD") == 4  # every one was asked
        with pytest.raises(RegistryError) as caught:
            client.head_manifests(queries, unreadable_missing=True)
        assert caught.value.status == 400 and "bad-a" in caught.value.message
        answers = client.head_manifests(queries[:2], unreadable_missing=True)
        assert answers[0] is None and answers[1] is not None


def test_a_likely_new_small_blob_is_uploaded_without_asking_first(
    registry: Registry, fault_proxy: Any
) -> None:
    """``likely_new``: a small blob made for this push goes up without a HEAD (one
    request fewer; the same bytes again when it was there after all, still correct); a
    blob over the monolithic limit is looked for first all the same."""
    proxy = fault_proxy(registry)
    small, large = b"a config made for this version", b"x" * 2048
    with client_for(registry, host=proxy.host, monolithic_limit=1024) as client:
        assert client.push_blob(REPO, small, likely_new=True) == "uploaded"
        assert proxy.count("HEAD") == 0 and proxy.count("PUT") == 1
        assert client.push_blob(REPO, small, likely_new=True) == "uploaded"  # there already
        assert client.push_blob(REPO, small) == "existing"  # the default looks first
        assert client.get_blob(REPO, Digest.of(small)) == small
        proxy.reset()
        assert client.push_blob(REPO, large, likely_new=True) == "uploaded"
        assert proxy.count("HEAD") == 1  # large: asked first
        assert client.push_blob(REPO, large, likely_new=True) == "existing"
