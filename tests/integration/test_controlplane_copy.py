"""`alga-release control-plane copy` between real registries, checked with skopeo.

The images are built here from scratch with buildah (see ``conftest.py``) and put
into the source registry with skopeo, so neither the source nor the oracle is our
code. "Identical digest" is checked on the exact manifest bytes skopeo reads back.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from steps.oci import Digest
from tests.harness.faults import FaultProxy
from tests.harness.registry import Registry
from tests.helpers import (
    cli,
    client_for,
    registry_args,
    registry_env,
    repositories_on_disk,
    tags,
)
from tests.integration.conftest import ControlPlaneImages, LayoutImage, Skopeo

pytestmark = pytest.mark.integration

REPO = "nine-minds/alga-appliance-control-plane"
ROOT = Path(__file__).resolve().parents[2]


def copy(dst: Registry, source_ref: str, tag: str, *extra: str, host: str | None = None) -> Any:
    return cli(
        [
            "control-plane",
            "copy",
            source_ref,
            "--tag",
            tag,
            *registry_args(dst, host),
            "--source-plain-http",
            "--json",
            *extra,
        ]
    )


def source_env(monkeypatch: pytest.MonkeyPatch, src: Registry) -> None:
    if src.credentials:
        monkeypatch.setenv("ALGA_SOURCE_REGISTRY_USERNAME", src.credentials[0])
        monkeypatch.setenv("ALGA_SOURCE_REGISTRY_PASSWORD", src.credentials[1])
    else:
        monkeypatch.delenv("ALGA_SOURCE_REGISTRY_USERNAME", raising=False)
        monkeypatch.delenv("ALGA_SOURCE_REGISTRY_PASSWORD", raising=False)


def manifests_on_disk(reg: Registry, repository: str = REPO) -> list[str]:
    """Manifest digests the registry stored for ``repository`` (tagged or not)."""
    root = (
        reg.storage_dir
        / "docker/registry/v2/repositories"
        / repository
        / "_manifests/revisions/sha256"
    )
    return sorted(f"sha256:{p.name}" for p in root.iterdir()) if root.is_dir() else []


def assert_identical_at(
    skopeo: Skopeo, dst: Registry, image: LayoutImage, host: str | None = None
) -> None:
    """The destination serves the very bytes of the source manifest, by tag and by digest."""
    assert skopeo.raw(dst, f"{host or dst.host}/{REPO}:1.0.0") == image.manifest
    assert skopeo.raw(dst, f"{host or dst.host}/{REPO}@{image.digest}") == image.manifest


@pytest.mark.parametrize(
    ("src_mode", "dst_mode"), [("anonymous", "token"), ("token", "basic")], ids=str
)
def test_copy_single_image_between_registries(
    registry_factory: Any,
    control_plane_images: ControlPlaneImages,
    skopeo: Skopeo,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    src_mode: str,
    dst_mode: str,
) -> None:
    src, dst = registry_factory(src_mode), registry_factory(dst_mode)
    image = control_plane_images.single
    source_ref = skopeo.push(image, src, "ci/control-plane", "build-1")
    with registry_env(monkeypatch, dst):
        source_env(monkeypatch, src)
        result = copy(dst, source_ref, "1.0.0", "--out", str(tmp_path / "cp.json"))
    assert result.code == 0, result.stderr
    out = result.json()
    assert out["reference"] == f"{dst.host}/{REPO}@{image.digest}"
    assert out["digest"] == image.digest
    assert out["status"] == "copied"
    assert out["blobs"] == {"existing": 0, "mounted": 0, "uploaded": 2}
    assert json.loads((tmp_path / "cp.json").read_text()) == out
    assert_identical_at(skopeo, dst, image)
    with client_for(dst) as client:
        head = client.head_manifest(REPO, "1.0.0")
        assert head is not None and str(head.digest) == image.digest
    # A real client pulls the whole image back and verifies every blob.
    skopeo.pull(dst, f"{dst.host}/{REPO}@{image.digest}", tmp_path / "pulled")
    assert re.search(r"2 blob\(s\) uploaded \(5\d{6} bytes\)", result.stderr), result.stderr


def test_copy_multi_platform_index_then_recopy_uploads_nothing(
    registry_factory: Any,
    fault_proxy: Any,
    control_plane_images: ControlPlaneImages,
    skopeo: Skopeo,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    src, dst = registry_factory("anonymous"), registry_factory("token")
    image = control_plane_images.index
    source_ref = skopeo.push(image, src, "ci/control-plane", "build-7")
    with registry_env(monkeypatch, dst):
        source_env(monkeypatch, src)
        first = copy(dst, source_ref, "1.0.0")
        assert first.code == 0, first.stderr
        out = first.json()
        assert out["digest"] == image.digest
        assert out["platforms"] == ["linux/amd64", "linux/arm64"]
        assert out["manifestsPushed"] == 3
        assert_identical_at(skopeo, dst, image)
        with client_for(dst) as client:
            for child in image.child_digests():
                assert client.head_manifest(REPO, Digest.parse(child)) is not None
        skopeo.pull(dst, f"{dst.host}/{REPO}:1.0.0", tmp_path / "pulled")
        pulled = json.loads((tmp_path / "pulled" / "index.json").read_text())
        assert pulled["manifests"][0]["digest"] == image.digest

        # Again, through counting proxies on both sides: nothing is written at the
        # destination and no blob is read from the source.
        src_proxy: FaultProxy = fault_proxy(src)
        dst_proxy: FaultProxy = fault_proxy(dst)
        again = copy(
            dst,
            src_proxy.ref("ci/control-plane", "build-7"),
            "1.0.0",
            host=dst_proxy.host,
        )
    assert again.code == 0, again.stderr
    assert again.json()["status"] == "unchanged"
    assert again.json()["digest"] == image.digest
    blobs = len(image.blob_digests())  # two configs, two layers
    assert again.json()["blobs"] == {"existing": blobs, "mounted": 0, "uploaded": 0}
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert dst_proxy.count(method) == 0, method
    # Answered from the tags: the source's tag HEAD, the destination's, then the
    # destination's index and its two children read by digest (checked there). The
    # destination asks for a token: its first request is answered 401, then repeated.
    assert src_proxy.count("HEAD") == 1 and src_proxy.count("GET") == 0
    assert dst_proxy.count("HEAD") - dst_proxy.count("HEAD", status=401) == 1
    assert dst_proxy.count("GET", r"/manifests/sha256:") == 3
    assert dst_proxy.count("GET") == 3


def test_each_blob_is_looked_for_once_and_one_already_there_is_not_uploaded(
    registry_factory: Any,
    control_plane_images: ControlPlaneImages,
    skopeo: Skopeo,
    monkeypatch: pytest.MonkeyPatch,
    fault_proxy: Any,
) -> None:
    """A copy to a new tag leaves each blob's HEAD to the blob's own upload (one HEAD per
    blob, not one in the plan and one in the push); a blob already there (another tag's
    copy, an interrupted run) is found by it and counted as existing, nothing uploaded."""
    src, dst = registry_factory("anonymous"), registry_factory("anonymous")
    image = control_plane_images.single
    source_ref = skopeo.push(image, src, "ci/control-plane", "build-3")
    blobs = sorted(image.blob_digests())
    with registry_env(monkeypatch, dst):
        source_env(monkeypatch, src)
        dst_proxy: FaultProxy = fault_proxy(dst)
        first = copy(dst, source_ref, "1.0.0", host=dst_proxy.host)
        assert first.code == 0, first.stderr
        cold = [(r.method, r.path.rsplit("/", 1)[-1]) for r in dst_proxy.requests]
        dst_proxy.reset()
        other = copy(dst, source_ref, "1.0.1", host=dst_proxy.host)
    assert first.json()["blobs"] == {"existing": 0, "mounted": 0, "uploaded": 2}
    assert sorted(p for m, p in cold if m == "HEAD" and p.startswith("sha256:")) == sorted(
        [*blobs, image.digest]
    )  # each blob once, and the manifest by digest
    # the tag: by the quick read (404: not asked again), then just before it is written
    assert cold.count(("HEAD", "1.0.0")) == 2
    assert other.code == 0, other.stderr
    assert other.json()["status"] == "copied"
    assert other.json()["blobs"] == {"existing": 2, "mounted": 0, "uploaded": 0}
    assert other.json()["manifestsPushed"] == 0
    again = [(r.method, r.path.rsplit("/", 1)[-1]) for r in dst_proxy.requests]
    assert sorted(p for m, p in again if m == "HEAD" and p in blobs) == blobs
    assert dst_proxy.count("POST") == 0 and dst_proxy.count("PATCH") == 0
    assert [p for m, p in again if m == "PUT"] == ["1.0.1"]  # the new tag alone
    assert f"blob {Digest.parse(blobs[0]).short} already in {REPO}" in other.stderr


def test_a_recopy_pinned_by_digest_reads_only_the_destination(
    registry_factory: Any,
    control_plane_images: ControlPlaneImages,
    skopeo: Skopeo,
    monkeypatch: pytest.MonkeyPatch,
    fault_proxy: Any,
) -> None:
    src, dst = registry_factory("anonymous"), registry_factory("anonymous")
    image = control_plane_images.single
    tagged = skopeo.push(image, src, "ci/control-plane", "build-2")
    pinned = tagged.rsplit(":", 1)[0] + f"@{image.digest}"
    with registry_env(monkeypatch, dst):
        source_env(monkeypatch, src)
        first = copy(dst, pinned, "1.0.0")
        assert first.code == 0, first.stderr
        src_proxy: FaultProxy = fault_proxy(src)
        dst_proxy: FaultProxy = fault_proxy(dst)
        again = copy(
            dst,
            f"{src_proxy.host}/ci/control-plane@{image.digest}",
            "1.0.0",
            host=dst_proxy.host,
        )
        planned = copy(dst, pinned, "1.0.0", "--dry-run")  # answered the same way
    assert again.code == 0, again.stderr
    out = again.json()
    assert out["status"] == "unchanged" and out["digest"] == image.digest
    assert out["blobs"] == {"existing": 2, "mounted": 0, "uploaded": 0}
    assert out["manifestsPushed"] == 0 and out["platforms"] == []
    assert out["reference"] == f"{dst_proxy.host}/{REPO}@{image.digest}"
    assert src_proxy.count() == 0  # pinned: nothing to ask the source
    # one HEAD of the tag, one GET of the manifest by digest
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in dst_proxy.requests] == [
        ("HEAD", "1.0.0"),
        ("GET", image.digest),
    ]
    assert planned.code == 0 and planned.json()["status"] == "unchanged"
    assert [b["action"] for b in planned.json()["blobs"]] == ["present", "present"]
    assert planned.json()["tagAction"] == "present"


def test_a_recopy_in_its_own_process_loads_neither_the_http_library_nor_unused_code(
    registry_factory: Any,
    control_plane_images: ControlPlaneImages,
    skopeo: Skopeo,
    tmp_path: Path,
) -> None:
    """The no-op re-copy is a start-up race (issue 14: <= 2x skopeo): it answers on the
    quick reader without httpx, the release checks, datetime or the signing code."""
    src, dst = registry_factory("anonymous"), registry_factory("anonymous")
    tagged = skopeo.push(control_plane_images.single, src, "ci/control-plane", "build-4")
    argv = ["-q", "control-plane", "copy", tagged, "--tag", "1.0.0", *registry_args(dst)]
    argv += ["--source-plain-http", "--json"]
    unwanted = ["httpx", "steps.oci.client", "steps.release.images", "datetime", "cryptography"]
    script = (
        "import sys\n"
        "from steps.cli.app import run\n"
        f"code = run({argv!r})\n"
        f"print(code, [m for m in {unwanted!r} if m in sys.modules], file=sys.stderr)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        for _ in range(2)
    ]
    cold, again = (r.stderr.strip().splitlines()[-1] for r in runs)
    assert cold.startswith("0 ") and "'httpx'" in cold, runs[0].stderr  # the copy needs it
    assert again == "0 []", runs[1].stderr
    assert json.loads(runs[1].stdout)["status"] == "unchanged"


def test_a_recopy_the_quick_reads_doubt_is_answered_by_the_full_client(
    registry_factory: Any,
    control_plane_images: ControlPlaneImages,
    skopeo: Skopeo,
    monkeypatch: pytest.MonkeyPatch,
    fault_proxy: Any,
) -> None:
    """The no-op re-copy is answered by quick reads (steps.oci.quick); a 503 on the
    destination's index makes them give up, and the full client retries and answers the
    same, with the same JSON, logging the no-op once."""
    src, dst = registry_factory("anonymous"), registry_factory("basic")
    image = control_plane_images.index
    tagged = skopeo.push(image, src, "ci/control-plane", "build-3")
    with registry_env(monkeypatch, dst):
        source_env(monkeypatch, src)
        assert copy(dst, tagged, "1.0.0").code == 0
        quick = copy(dst, tagged, "1.0.0", "-v")
        dst_proxy: FaultProxy = fault_proxy(dst)
        dst_proxy.fail_next(1, 503, method="GET", path=rf"/manifests/{image.digest}")
        doubted = copy(dst, tagged, "1.0.0", "-v", host=dst_proxy.host)
    assert quick.code == 0 and doubted.code == 0, doubted.stderr
    assert "quick read given up" not in quick.stderr
    assert "quick read given up" in doubted.stderr
    strip = {"reference", "repository"}  # they name the proxy's port
    assert {k: v for k, v in doubted.json().items() if k not in strip} == {
        k: v for k, v in quick.json().items() if k not in strip
    }
    assert doubted.json()["status"] == "unchanged"
    assert doubted.stderr.count("nothing to do") == 1, doubted.stderr
    assert dst_proxy.count("GET", rf"/manifests/{image.digest}", status=503) == 1
    assert dst_proxy.count("GET", rf"/manifests/{image.digest}", status=200) == 1
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert dst_proxy.count(method) == 0, method
    assert dst.secrets_in(quick.stdout + quick.stderr + doubted.stdout + doubted.stderr) == []


@pytest.mark.parametrize("form", ["tag", "digest"])
def test_copy_from_an_oci_layout_folder(
    registry: Registry,
    control_plane_images: ControlPlaneImages,
    skopeo: Skopeo,
    monkeypatch: pytest.MonkeyPatch,
    form: str,
) -> None:
    for image in (control_plane_images.single, control_plane_images.index):
        ref = image.source_ref if form == "tag" else f"oci-layout:{image.layout}@{image.digest}"
        tag = "1.0.0" if image is control_plane_images.single else "2.0.0"
        with registry_env(monkeypatch, registry):
            result = copy(registry, ref, tag)
        assert result.code == 0, result.stderr
        assert result.json()["reference"] == f"{registry.host}/{REPO}@{image.digest}"
        assert skopeo.raw(registry, f"{registry.host}/{REPO}:{tag}") == image.manifest


@pytest.mark.parametrize("which", ["every blob", "one layer of one platform"])
def test_a_corrupted_source_blob_is_refused_and_nothing_is_tagged(
    registry_factory: Any,
    fault_proxy: Any,
    control_plane_images: ControlPlaneImages,
    skopeo: Skopeo,
    monkeypatch: pytest.MonkeyPatch,
    which: str,
) -> None:
    src, dst = registry_factory("anonymous"), registry_factory("token")
    if which == "every blob":
        image = control_plane_images.single
        pattern = r"/blobs/"
    else:
        image = control_plane_images.index
        pattern = "/blobs/" + image.blob_digests()[-1]  # the last blob copied
    skopeo.push(image, src, "ci/control-plane", "build-1")
    proxy: FaultProxy = fault_proxy(src)
    proxy.corrupt_always(path=pattern)
    with registry_env(monkeypatch, dst):
        result = copy(dst, proxy.ref("ci/control-plane", "build-1"), "1.0.0")
    assert result.code == 1, result.stderr
    error = result.json()
    assert error["error"] == "DigestMismatch"
    assert "nothing was tagged" in error["hint"]
    assert proxy.count(fault="corrupt") >= 1
    assert tags(dst, REPO) == []
    assert manifests_on_disk(dst) == []
    if which != "every blob":
        # The blobs before the bad one were pushed; they stay untagged and unreferenced.
        assert repositories_on_disk(dst) == [REPO]


def test_a_corrupted_layout_blob_is_refused(
    registry: Registry,
    control_plane_images: ControlPlaneImages,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    image = control_plane_images.single
    layout = tmp_path / "layout"
    shutil.copytree(image.layout, layout)
    biggest = max((layout / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    data = bytearray(biggest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    biggest.write_bytes(bytes(data))
    with registry_env(monkeypatch, registry):
        result = copy(registry, f"oci-layout:{layout}:v1", "1.0.0")
    assert result.code == 1, result.stderr
    assert result.json()["error"] == "DigestMismatch"
    assert biggest.name in result.stderr
    assert tags(registry, REPO) == []
    assert manifests_on_disk(registry) == []


def test_same_registry_copy_mounts_every_blob(
    registry: Registry,
    fault_proxy: Any,
    control_plane_images: ControlPlaneImages,
    skopeo: Skopeo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = control_plane_images.index
    skopeo.push(image, registry, "nine-minds/ci/control-plane", "build-3")
    proxy: FaultProxy = fault_proxy(registry)
    with registry_env(monkeypatch, registry):
        result = copy(
            registry,
            proxy.ref("nine-minds/ci/control-plane", "build-3"),
            "1.0.0",
            host=proxy.host,
        )
    assert result.code == 0, result.stderr
    out = result.json()
    blobs = len(image.blob_digests())
    assert out["blobs"] == {"existing": 0, "mounted": blobs, "uploaded": 0}
    assert out["digest"] == image.digest
    mounts = [r for r in proxy.requests if r.method == "POST" and "mount=" in r.query]
    assert len(mounts) == blobs and all(r.status == 201 for r in mounts)
    assert proxy.count("GET", r"/blobs/") == 0  # nothing downloaded
    assert proxy.count("PATCH") == 0
    assert skopeo.raw(registry, f"{registry.host}/{REPO}:1.0.0") == image.manifest


def test_an_existing_tag_with_another_digest_is_refused(
    registry: Registry,
    control_plane_images: ControlPlaneImages,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    single, index = control_plane_images.single, control_plane_images.index
    with registry_env(monkeypatch, registry):
        assert copy(registry, index.source_ref, "1.0.0").code == 0
        refused = copy(registry, single.source_ref, "1.0.0")
        same = copy(registry, index.source_ref, "1.0.0")
    assert refused.code == 3, refused.stderr
    message = refused.json()["message"]
    assert index.digest in message and single.digest in message
    assert f"{registry.host}/{REPO}:1.0.0" in message
    with client_for(registry) as client:
        head = client.head_manifest(REPO, "1.0.0")
        assert head is not None and str(head.digest) == index.digest
        assert client.head_manifest(REPO, Digest.parse(single.digest)) is None
    assert same.code == 0 and same.json()["status"] == "unchanged"


def test_dry_run_plans_and_pushes_nothing(
    registry_factory: Any,
    control_plane_images: ControlPlaneImages,
    skopeo: Skopeo,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    src, dst = registry_factory("basic"), registry_factory("anonymous")
    image = control_plane_images.index
    source_ref = skopeo.push(image, src, "ci/control-plane", "build-1")
    with registry_env(monkeypatch, dst):
        source_env(monkeypatch, src)
        plan = copy(dst, source_ref, "1.0.0", "--dry-run", "--out", str(tmp_path / "o.json"))
        assert plan.code == 0, plan.stderr
        assert repositories_on_disk(dst) == []
        out = plan.json()
        assert json.loads((tmp_path / "o.json").read_text()) == out  # the plan, for the next step
        assert out["dryRun"] is True and out["status"] == "would-copy"
        assert out["reference"] == f"{dst.host}/{REPO}@{image.digest}"
        assert sorted(b["digest"] for b in out["blobs"]) == sorted(image.blob_digests())
        assert {b["action"] for b in out["blobs"]} == {"upload"}
        assert [m["action"] for m in out["manifests"]] == ["push"] * 3
        assert out["manifests"][-1]["digest"] == image.digest  # the index goes last
        assert copy(dst, source_ref, "1.0.0").code == 0
        after = copy(dst, source_ref, "1.0.0", "--dry-run").json()
    assert after["status"] == "unchanged"
    assert {b["action"] for b in after["blobs"]} == {"present"}
    assert after["tagAction"] == "present"


def test_source_errors_name_the_source_and_what_to_do(
    registry_factory: Any,
    control_plane_images: ControlPlaneImages,
    skopeo: Skopeo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src, dst = registry_factory("basic"), registry_factory("anonymous")
    source_ref = skopeo.push(control_plane_images.single, src, "ci/control-plane", "build-1")
    with registry_env(monkeypatch, dst):
        source_env(monkeypatch, dst)  # no source credentials
        denied = copy(dst, source_ref, "1.0.0")
        source_env(monkeypatch, src)
        missing = copy(dst, src.ref("ci/control-plane", "no-such-tag"), "1.0.0")
    assert denied.code == 1
    assert denied.json()["error"] == "AuthError"
    assert source_ref in denied.json()["message"]
    assert "ALGA_SOURCE_REGISTRY_USERNAME" in denied.json()["hint"]
    assert src.password is not None and src.password not in denied.stdout + denied.stderr
    assert missing.code == 1
    assert missing.json()["error"] == "NotFound"
    assert "no-such-tag" in missing.json()["message"]
    assert repositories_on_disk(dst) == []
