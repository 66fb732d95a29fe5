"""A blob streamed from one registry into another: bounded memory, no temporary file,
few requests, verified on the way; a broken source read restarts from the source."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from steps.oci import Digest, DigestMismatch, RegistryClient, RetryPolicy
from tests.harness.misbehaving import MisbehavingServer, truncated
from tests.harness.registry import Registry
from tests.helpers import FAST_RETRY, client_for

pytestmark = pytest.mark.integration

SOURCE_REPO = "upstream/control-plane"
REPO = "nine-minds/alga-appliance-control-plane"


def _big_blob(path: Path, mib: int) -> tuple[Digest, int]:
    h = hashlib.sha256()
    with path.open("wb") as fh:
        for i in range(mib):
            chunk = (i.to_bytes(4, "big") + os.urandom(60)) * (1 << 14)  # 1 MiB
            h.update(chunk)
            fh.write(chunk)
    return Digest("sha256", h.hexdigest()), mib << 20


def _source_with_blob(source_reg: Registry, tmp_path: Path, mib: int) -> tuple[Digest, int]:
    digest, size = _big_blob(tmp_path / "layer.bin", mib)
    with client_for(source_reg) as source:
        source.push_blob(SOURCE_REPO, tmp_path / "layer.bin", digest=digest)
    return digest, size


def test_a_large_blob_streams_in_few_patches_with_bounded_memory(
    registry_factory: Any, tmp_path: Path
) -> None:
    source_reg, dest_reg = registry_factory("anonymous"), registry_factory("anonymous")
    digest, size = _source_with_blob(source_reg, tmp_path, 40)
    seen: list[tuple[int, int | None]] = []
    with (
        client_for(source_reg) as source,
        client_for(dest_reg, stream_chunk_size=16 << 20) as dest,
    ):
        tracemalloc.start()
        try:
            status = dest.copy_blob(
                source, SOURCE_REPO, REPO, digest, size, progress=lambda n, t: seen.append((n, t))
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert status == "uploaded"
        assert dest.stats.by_method.get("PATCH", 0) == 3  # 16 + 16 + 8 MiB
        assert dest.stats.bytes_uploaded == size
        assert peak < 8 << 20, f"peak {peak} bytes: the copy held the blob"
        assert seen[-1] == (size, size)
        assert [n for n, _ in seen] == sorted(n for n, _ in seen)
        head = dest.head_blob(REPO, digest)
        assert head is not None and head.size == size
        # Copying again answers from one HEAD.
        before = dest.stats.requests
        assert dest.copy_blob(source, SOURCE_REPO, REPO, digest, size) == "existing"
        assert dest.stats.requests == before + 1
    # No temporary file was written anywhere under the test's folder but the source blob.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layer.bin"]


def test_a_small_blob_goes_in_one_put(registry_factory: Any) -> None:
    source_reg, dest_reg = registry_factory("anonymous"), registry_factory("token")
    data = b"small config blob" * 100
    digest = Digest.of(data)
    with client_for(source_reg) as source, client_for(dest_reg) as dest:
        source.push_blob(SOURCE_REPO, data)
        assert dest.copy_blob(source, SOURCE_REPO, REPO, digest, len(data)) == "uploaded"
        assert dest.stats.by_method.get("PATCH", 0) == 0
        assert dest.get_blob(REPO, digest) == data


def test_altered_source_bytes_are_refused_and_nothing_is_committed(
    registry_factory: Any, fault_proxy: Any, tmp_path: Path
) -> None:
    source_reg, dest_reg = registry_factory("anonymous"), registry_factory("anonymous")
    digest, size = _source_with_blob(source_reg, tmp_path, 3)
    proxy = fault_proxy(source_reg)
    proxy.corrupt_always(path=r"/blobs/")
    with (
        client_for(source_reg, host=proxy.host) as source,
        client_for(dest_reg, stream_chunk_size=1 << 20) as dest,
        pytest.raises(DigestMismatch),
    ):
        dest.copy_blob(source, SOURCE_REPO, REPO, digest, size)
    with client_for(dest_reg) as dest:
        assert dest.head_blob(REPO, digest) is None


def test_a_source_read_that_breaks_off_restarts_from_the_source(registry: Registry) -> None:
    data = bytes(range(256)) * 256  # 64 KiB
    digest = Digest.of(data)
    behaviour = truncated(data, 20_000, times=1)  # the first GET breaks off, the next is whole
    with MisbehavingServer(behaviour) as upstream:
        source = RegistryClient(upstream.host, plain_http=True, retry=FAST_RETRY)
        dest = client_for(
            registry,
            monolithic_limit=1024,
            stream_chunk_size=16 << 10,
            retry=RetryPolicy(attempts=3, base_delay=0),
        )
        with source, dest:
            assert dest.copy_blob(source, SOURCE_REPO, REPO, digest, len(data)) == "uploaded"
            assert dest.get_blob(REPO, digest) == data
        assert [r.method for r in upstream.requests] == ["GET", "GET"]


def test_a_copy_within_one_registry_through_one_client(token_registry: Registry) -> None:
    """Same registry, one client (as a copy does when the mount is declined): the source's
    response streams into the same client's upload, each keeping its own deadline."""
    data = os.urandom(3 << 20)
    digest = Digest.of(data)
    with client_for(token_registry, monolithic_limit=1 << 20, stream_chunk_size=1 << 20) as c:
        c.push_blob(SOURCE_REPO, data)
        patches = c.stats.by_method.get("PATCH", 0)
        assert c.copy_blob(c, SOURCE_REPO, REPO, digest, len(data)) == "uploaded"
        assert c.stats.by_method.get("PATCH", 0) - patches == 3
        assert c.get_blob(REPO, digest) == data
