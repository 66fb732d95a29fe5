"""``control-plane copy`` moves several blobs at once (``--jobs``), and no more.

A source registry holds a six-layer image; the destination sits behind the holding
proxy (:mod:`tests.harness.hold`), which parks the blob uploads' closing PUTs, so what is
in flight at one moment is counted, not timed. The copy runs as its own process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from steps.oci import Digest
from steps.oci import mediatypes as mt
from tests.harness.faults import FaultProxy, start_fault_proxy
from tests.harness.hold import HoldingProxy, start_holding_proxy
from tests.harness.images import image_config, image_manifest
from tests.harness.registry import Registry
from tests.helpers import client_for, tags

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SOURCE_REPO = "ci/control-plane"
REPO = "nine-minds/alga-appliance-control-plane"
LAYERS = 6
#: A blob upload's closing PUT (``...?digest=``), one per blob copied
UPLOAD_PUT = r"/v2/nine-minds/alga-appliance-control-plane/blobs/uploads/"


def _push_source(reg: Registry) -> tuple[Digest, list[Digest]]:
    """A linux/amd64 image of ``LAYERS`` layers (256 KiB to 1.5 MiB, each its own bytes)."""
    layers = [os.urandom((1 + n) * 256 * 1024) for n in range(LAYERS)]
    digests = [Digest.of(layer) for layer in layers]
    config = image_config([str(d) for d in digests])
    manifest = image_manifest(config, [(d, len(b)) for d, b in zip(digests, layers, strict=True)])
    with client_for(reg) as client:
        client.push_blob(SOURCE_REPO, config)
        for layer in layers:
            client.push_blob(SOURCE_REPO, layer)
        digest = client.put_manifest(SOURCE_REPO, "build-1", manifest, mt.OCI_MANIFEST)
    return digest, [Digest.of(config), *digests]


def _start_copy(
    source: Registry | FaultProxy, proxy: HoldingProxy, *extra: str
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALGA_")}
    env.update(ALGA_REGISTRY_USERNAME="", ALGA_REGISTRY_PASSWORD="", PYTHONPATH=str(ROOT))
    argv = [
        sys.executable,
        "-m",
        "steps.cli",
        "control-plane",
        "copy",
        f"{source.host}/{SOURCE_REPO}:build-1",
        "--tag",
        "1.0.0",
        "--registry",
        proxy.host,
        "--plain-http",
        "--source-plain-http",
        "--json",
        *extra,
    ]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _upload_sessions(proxy: HoldingProxy) -> int:
    """Upload sessions the destination opened (answered POSTs)."""
    return sum(1 for r in proxy.requests if r.method == "POST" and r.path.startswith(UPLOAD_PUT))


@pytest.fixture
def images(registry_factory: Any) -> Any:
    source, dest = registry_factory("anonymous"), registry_factory("anonymous")
    digest, blobs = _push_source(source)
    proxy = start_holding_proxy(dest)
    yield source, dest, proxy, digest, blobs
    proxy.stop()


def test_four_blobs_are_in_flight_at_once_and_never_a_fifth(images: Any) -> None:
    source, dest, proxy, digest, blobs = images
    gate = proxy.hold("PUT", UPLOAD_PUT, count=4)
    copying = _start_copy(source, proxy)  # --jobs 4, the default
    try:
        assert gate.wait_arrived(60), f"only {len(gate.held)} upload(s) in flight at once"
        # four uploads parked at once; the fifth blob has not opened a session
        assert _upload_sessions(proxy) == 4
        assert copying.poll() is None
    finally:
        gate.release()
    out, err = copying.communicate(timeout=120)
    assert copying.returncode == 0, err
    assert '"uploaded": 7' in out  # config and six layers
    assert tags(dest, REPO) == ["1.0.0"]
    with client_for(dest) as client:
        head = client.head_manifest(REPO, "1.0.0")
        assert head is not None and head.digest == digest
        for blob in blobs:
            assert client.head_blob(REPO, blob) is not None, blob
    assert _upload_sessions(proxy) == 7
    assert "7 blob(s) uploaded" in err  # the siblings' requests are counted in the log


def test_an_interrupted_copy_starts_no_more_blobs_and_tags_nothing(images: Any) -> None:
    """Ctrl-C while four uploads are under way: they end, the three blobs not started are
    never started, nothing is tagged, exit 130."""
    source, dest, proxy, _, _ = images
    gate = proxy.hold("PUT", UPLOAD_PUT, count=4)
    copying = _start_copy(source, proxy)
    try:
        assert gate.wait_arrived(60), f"only {len(gate.held)} upload(s) in flight at once"
        copying.send_signal(signal.SIGINT)
        time.sleep(1)  # the interrupt reaches the waiting main thread at once
    finally:
        gate.release()
    _, err = copying.communicate(timeout=120)
    assert copying.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert _upload_sessions(proxy) == 4
    assert tags(dest, REPO) == []


def test_jobs_1_copies_one_blob_at_a_time(images: Any) -> None:
    source, dest, proxy, digest, _ = images
    gate = proxy.hold("PUT", UPLOAD_PUT, count=2)
    copying = _start_copy(source, proxy, "--jobs", "1")
    try:
        assert not gate.wait_arrived(3)  # a second upload never starts while one is held
        assert len(gate.held) == 1
        assert _upload_sessions(proxy) == 1
    finally:
        gate.release()
    out, err = copying.communicate(timeout=120)
    assert copying.returncode == 0, err
    assert json.loads(out)["digest"] == str(digest)
    assert tags(dest, REPO) == ["1.0.0"]


def test_a_failed_blob_stops_the_copy_and_nothing_is_tagged(images: Any) -> None:
    source, dest, proxy, _, blobs = images
    # the source answers one layer's download with 404, for good (not retried)
    upstream = start_fault_proxy(source)
    try:
        upstream.fail_always(404, method="GET", path=f"/blobs/{blobs[2]}$")
        copying = _start_copy(upstream, proxy)
        out, err = copying.communicate(timeout=120)
    finally:
        upstream.stop()
    assert copying.returncode == 1, out + err
    assert json.loads(out)["error"] == "NotFound"
    assert str(blobs[2]) in out, out
    assert "Traceback" not in err
    assert tags(dest, REPO) == []  # nothing tagged
    with client_for(dest) as client:
        assert client.head_manifest(REPO, "1.0.0") is None


def test_jobs_is_checked(images: Any) -> None:
    source, _, proxy, _, _ = images
    for bad in ("0", "17", "two"):
        copying = _start_copy(source, proxy, "--jobs", bad)
        _, err = copying.communicate(timeout=60)
        assert copying.returncode == 2, err
        assert "--jobs" in err and "1 to 16" in err
    assert proxy.requests == []
