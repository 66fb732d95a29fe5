"""Fixtures for the control-plane tests: real images built here, a real Docker-API engine.

* ``control_plane_images`` (session) -- images built from scratch with buildah
  (``--storage-driver vfs``, chroot isolation, a private storage root), written to
  OCI image layout folders once per session: ``single`` (linux/amd64, a small file
  and a 5 MiB layer, so uploads take the chunked path) and ``index`` (an image
  index of linux/amd64 and linux/arm64). Each carries the tag ``v1``.
* ``skopeo`` (session) -- :class:`Skopeo`: push a layout to a harness registry
  (``--all --preserve-digests``), read a manifest's raw bytes, pull an image back
  into a layout. skopeo is the independent oracle: it is not our code.
* ``podman_engine`` -- factory: ``podman_engine(*registries)`` starts
  ``podman system service`` on a private unix socket (vfs storage, cgroupfs,
  file events) trusting those loopback registries over plain HTTP, and returns
  its ``DOCKER_HOST``. Stopped (by its own pid) at teardown.

A missing buildah, skopeo or podman skips the test, or fails it under ``CI=true``.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.harness.registry import Registry
from tests.harness.tools import missing_component

SETPRIV = shutil.which("setpriv")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing_component(name, "install it with apt (scripts/setup.sh does)")
    return path


def _run(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr}{result.stdout}"
        )
    return result.stdout


# -- images ----------------------------------------------------------------------


@dataclass(frozen=True)
class LayoutImage:
    """An image in an OCI layout folder, tagged ``tag``."""

    layout: Path
    tag: str
    digest: str  # the manifest (or index) digest
    manifest: bytes  # its exact bytes

    @property
    def source_ref(self) -> str:
        return f"oci-layout:{self.layout}:{self.tag}"

    def child_digests(self) -> list[str]:
        body = json.loads(self.manifest)
        return [m["digest"] for m in body.get("manifests", [])]

    def blob_digests(self) -> list[str]:
        """Config and layer digests of every image in it."""
        manifests = [json.loads(self.manifest)]
        if "manifests" in manifests[0]:
            manifests = [json.loads(self.blob(d)) for d in self.child_digests()]
        out: list[str] = []
        for m in manifests:
            for d in [m["config"], *m["layers"]]:
                if d["digest"] not in out:
                    out.append(d["digest"])
        return out

    def blob(self, digest: str) -> bytes:
        return (self.layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


@dataclass(frozen=True)
class ControlPlaneImages:
    single: LayoutImage
    index: LayoutImage
    build_seconds: float


def _layout_image(layout: Path, tag: str) -> LayoutImage:
    index = json.loads((layout / "index.json").read_text())
    entry = next(
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    )
    digest = entry["digest"]
    data = (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()
    return LayoutImage(layout, tag, digest, data)


class Buildah:
    """buildah on a private storage root with vfs storage and chroot isolation."""

    def __init__(self, root: Path) -> None:
        self.binary = _tool("buildah")
        self.base = [
            self.binary,
            "--root",
            str(root / "storage"),
            "--runroot",
            str(root / "run"),
            "--storage-driver",
            "vfs",
        ]
        self.env = {**os.environ, "BUILDAH_ISOLATION": "chroot"}

    def __call__(self, *args: str) -> str:
        return _run([*self.base, *args], env=self.env).strip()

    def scratch_image(self, files: dict[str, Path], arch: str, target: str) -> str:
        """Commit a linux/``arch`` image holding ``files`` to ``target`` (a local name,
        or ``oci:DIR:TAG``); returns the image ID."""
        container = self("from", "scratch")
        try:
            for dest, src in files.items():
                self("copy", container, str(src), dest)
            self("config", "--os", "linux", "--arch", arch, "--label", f"arch={arch}", container)
            return self("commit", "-q", container, target)
        finally:
            self("rm", container)


@pytest.fixture(scope="session")
def control_plane_images(tmp_path_factory: pytest.TempPathFactory) -> ControlPlaneImages:
    """The test images, built once per session (about a second)."""
    work = tmp_path_factory.mktemp("cp-images")
    started = time.monotonic()
    buildah = Buildah(work)
    files = work / "files"
    files.mkdir()
    (files / "hello.txt").write_text("alga control plane\n")
    # Incompressible and over the client's 4 MiB monolithic limit: a chunked upload.
    (files / "big.bin").write_bytes(random.Random(8).randbytes(5 * 1024 * 1024 + 123))
    single = work / "single"
    buildah.scratch_image(
        {"/hello.txt": files / "hello.txt", "/big.bin": files / "big.bin"},
        "amd64",
        f"oci:{single}:v1",
    )
    buildah("manifest", "create", "cp-index")
    for arch in ("amd64", "arm64"):
        (files / f"{arch}.txt").write_text(f"built for {arch}\n")
        buildah.scratch_image({"/arch.txt": files / f"{arch}.txt"}, arch, f"cp-{arch}")
        buildah("manifest", "add", "cp-index", f"cp-{arch}")
    index = work / "index"
    buildah("manifest", "push", "-q", "--all", "cp-index", f"oci:{index}:v1")
    images = ControlPlaneImages(
        single=_layout_image(single, "v1"),
        index=_layout_image(index, "v1"),
        build_seconds=time.monotonic() - started,
    )
    # Storage is only needed while building; the layouts hold everything now.
    shutil.rmtree(work / "storage", ignore_errors=True)
    return images


# -- skopeo ------------------------------------------------------------------------


class Skopeo:
    """skopeo with no signature policy checks, talking plain HTTP to loopback registries."""

    def __init__(self, workdir: Path) -> None:
        self.binary = _tool("skopeo")
        self.workdir = workdir

    def _authfile(self, reg: Registry) -> list[str]:
        if reg.credentials is None:
            return []
        path = self.workdir / f"auth-{reg.port}.json"
        token = base64.b64encode(":".join(reg.credentials).encode()).decode()
        path.write_text(json.dumps({"auths": {reg.host: {"auth": token}}}))
        return [str(path)]

    def push(self, image: LayoutImage, reg: Registry, repository: str, tag: str) -> str:
        """Copy a layout image to ``reg`` unchanged; returns its reference."""
        auth = self._authfile(reg)
        ref = reg.ref(repository, tag)
        _run(
            [
                self.binary,
                "--insecure-policy",
                "copy",
                "-q",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
                *(["--dest-authfile", auth[0]] if auth else []),
                f"oci:{image.layout}:{image.tag}",
                f"docker://{ref}",
            ]
        )
        return ref

    def raw(self, reg: Registry, reference: str) -> bytes:
        """The exact manifest bytes ``skopeo inspect --raw`` gets for ``reference``."""
        auth = self._authfile(reg)
        result = subprocess.run(
            [
                self.binary,
                "--insecure-policy",
                "inspect",
                "--raw",
                "--tls-verify=false",
                *(["--authfile", auth[0]] if auth else []),
                f"docker://{reference}",
            ],
            capture_output=True,
            timeout=60,
            check=True,
        )
        return result.stdout

    def pull(self, reg: Registry, reference: str, layout: Path) -> None:
        """Copy every platform of ``reference`` into an OCI layout (skopeo verifies blobs)."""
        auth = self._authfile(reg)
        _run(
            [
                self.binary,
                "--insecure-policy",
                "copy",
                "-q",
                "--all",
                "--preserve-digests",
                "--src-tls-verify=false",
                *(["--src-authfile", auth[0]] if auth else []),
                f"docker://{reference}",
                f"oci:{layout}:pulled",
            ]
        )


@pytest.fixture(scope="session")
def skopeo(tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    return Skopeo(tmp_path_factory.mktemp("skopeo"))


# -- podman as a Docker-API engine ---------------------------------------------------


@dataclass
class PodmanEngine:
    docker_host: str
    process: subprocess.Popen[bytes]
    log_path: Path
    workdir: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_podman_engine(registries: tuple[Registry, ...], timeout: float = 30.0) -> PodmanEngine:
    binary = _tool("podman")
    # A short path: unix socket paths are limited to 108 bytes.
    workdir = Path(tempfile.mkdtemp(prefix="alga-podman-", dir="/tmp"))
    conf = workdir / "registries.conf"
    conf.write_text(
        "".join(f'[[registry]]\nlocation = "{r.host}"\ninsecure = true\n\n' for r in registries)
    )
    socket_path = workdir / "podman.sock"
    log_path = workdir / "service.log"
    argv = [
        *([SETPRIV, "--pdeathsig", "TERM", "--"] if SETPRIV else []),
        binary,
        "--root",
        str(workdir / "storage"),
        "--runroot",
        str(workdir / "run"),
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
        "system",
        "service",
        "--time=0",
        f"unix://{socket_path}",
    ]
    env = {
        **os.environ,
        "CONTAINERS_REGISTRIES_CONF": str(conf),
        "BUILDAH_ISOLATION": "chroot",
        "TMPDIR": str(workdir),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    engine = PodmanEngine(f"unix://{socket_path}", process, log_path, workdir)
    deadline = time.monotonic() + timeout
    transport = httpx.HTTPTransport(uds=str(socket_path))
    with httpx.Client(transport=transport, timeout=2.0) as http:
        while True:
            if process.poll() is not None:
                tail = engine.log_tail()
                engine.stop()
                raise AssertionError(f"podman system service exited:\n{tail}")
            try:
                if socket_path.exists() and http.get("http://d/_ping").status_code == 200:
                    return engine
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                tail = engine.log_tail()
                engine.stop()
                raise AssertionError(f"podman system service did not answer:\n{tail}")
            time.sleep(0.1)


@pytest.fixture
def podman_engine() -> Iterator[Callable[..., PodmanEngine]]:
    """Factory: ``podman_engine(*registries) -> PodmanEngine`` (``.docker_host``)."""
    started: list[PodmanEngine] = []

    def start(*registries: Registry) -> PodmanEngine:
        engine = start_podman_engine(registries)
        started.append(engine)
        return engine

    yield start
    for engine in reversed(started):
        engine.stop()
