"""The step image, built for real here from Debian packages, and run.

``scripts/step-image.sh build`` (what ``make step-image`` runs) makes the image without
pulling any base image: a debootstrap'd Debian bookworm root filesystem (cached under
``.tools/step-image/``, built once per machine), this package's wheel and its dependencies
installed into a virtualenv by ``buildah run``, the pinned kubectl, the Dockerfile's user
and config; committed with buildah (vfs storage, chroot isolation) and written as an OCI
layout. Once per test session, into private storage.

What the tests prove with it:

- its config is the Dockerfile's (uid/gid 10001, HOME/TMPDIR /tmp, ENTRYPOINT alga-release);
- ``buildah run`` of ``alga-release --help`` and ``--version``; inside, as uid 10001: git,
  the tests' kubectl (v1.34), Python 3.11, ``steps`` and the consume library imported from
  the image's virtualenv, a root filesystem it cannot write;
- a real step inside it: ``charts publish`` of ``examples/charts`` to a loopback registry
  with Basic auth (credentials from the environment, as the templates pass them), checked
  from outside with the real helm;
- the same step again on a **read-only** root filesystem (the image mounted read-only in a
  private mount namespace, /tmp and the workspace writable, as in the pods): it runs, finds
  every chart already there and writes its result file;
- ``scripts/push_step_image.py`` pushes the layout with our OCI client: the registry serves
  the layout's exact manifest digest (read back with the real ``crane``), a second push
  uploads nothing, and a tag that names another digest is refused (exit 3).

Missing debootstrap, buildah or unshare skips these tests, and fails them under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.registry import Registry
from tests.harness.tools import PROJECT_ROOT, Tools, missing_component

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

IMAGE = "localhost/alga-release-step:test"
UID = "10001"


@dataclass(frozen=True)
class StepImage:
    storage: Path
    layout: Path

    def buildah(self) -> list[str]:
        return [
            _tool("buildah"),
            "--storage-driver",
            "vfs",
            "--root",
            str(self.storage / "root"),
            "--runroot",
            str(self.storage / "run"),
        ]


def _tool(name: str) -> str:
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if path is None:
        missing_component(name, "apt-get install it (scripts/setup.sh does)")
    return path


def run(
    argv: list[str], timeout: float = 300, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )  # type: ignore[call-overload, no-any-return]


@pytest.fixture(scope="session")
def step_image(tmp_path_factory: pytest.TempPathFactory) -> StepImage:
    _tool("debootstrap")
    _tool("buildah")
    work = tmp_path_factory.mktemp("step-image")
    image = StepImage(storage=work / "storage", layout=work / "layout")
    env = {
        **os.environ,
        "STEP_IMAGE_STORAGE": str(image.storage),
        "STEP_IMAGE_LAYOUT": str(image.layout),
    }
    done = run(
        ["bash", str(PROJECT_ROOT / "scripts" / "step-image.sh"), "build", IMAGE],
        timeout=1500,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return image


@pytest.fixture
def container(step_image: StepImage) -> Iterator[str]:
    done = run([*step_image.buildah(), "from", "--pull=never", IMAGE])
    assert done.returncode == 0, done.stderr
    name = done.stdout.strip()
    yield name
    run([*step_image.buildah(), "rm", name])


def inside(
    image: StepImage,
    container: str,
    *argv: str,
    mounts: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``buildah run`` as the image's user (chroot isolation, the host's loopback)."""
    flags = [f"--volume={m}" for m in mounts] + [f"--env={k}={v}" for k, v in (env or {}).items()]
    return run([*image.buildah(), "run", "--isolation", "chroot", *flags, container, "--", *argv])


def test_the_config_is_the_dockerfile_s(step_image: StepImage) -> None:
    done = run([*step_image.buildah(), "inspect", "--type", "image", IMAGE])
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)["OCIv1"]["config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["alga-release"] and config["Cmd"] == ["--help"]
    assert config["WorkingDir"] == "/tmp"
    assert {"HOME=/tmp", "TMPDIR=/tmp", "PYTHONDONTWRITEBYTECODE=1"} <= set(config["Env"])
    index = json.loads((step_image.layout / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "latest"


def test_alga_release_runs_in_it(step_image: StepImage, container: str) -> None:
    done = inside(step_image, container, "alga-release", "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: alga-release")
    done = inside(step_image, container, "alga-release", "--version")
    assert done.returncode == 0 and done.stdout.strip() == "alga-release 0.1.0", done.stderr


def test_its_contents_as_the_non_root_user(
    step_image: StepImage, container: str, tools: Tools
) -> None:
    probe = (
        "id -u; id -g; git --version; kubectl version --client | head -1; python3 --version; "
        "/opt/alga-release/bin/python -c 'import consume.release_consume as c, steps; "
        "print(c.__file__); print(steps.__file__)'; "
        "if touch /usr/probe 2>/dev/null; then echo root-writable; else echo root-not-writable; fi"
    )
    done = inside(step_image, container, "sh", "-c", probe)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == [UID, UID]
    assert lines[2].startswith("git version ")
    host_kubectl = run([str(tools.kubectl), "version", "--client"]).stdout.splitlines()[0]
    assert lines[3] == host_kubectl and "v1.34." in lines[3]
    assert lines[4].startswith("Python 3.11.")
    assert lines[5] == "/opt/alga-release/lib/python3.11/site-packages/consume/release_consume.py"
    assert lines[6].startswith("/opt/alga-release/lib/python3.11/site-packages/steps/")
    assert lines[7] == "root-not-writable"


def charts_publish(registry: Registry, out: str) -> list[str]:
    return [
        "alga-release",
        "charts",
        "publish",
        "--source",
        "/src",
        "--config",
        "/src/examples/release.yaml",
        "--registry",
        registry.host,
        "--plain-http",
        "--out",
        out,
        "--json",
    ]


def registry_env(registry: Registry) -> dict[str, str]:
    assert registry.credentials is not None
    user, password = registry.credentials
    return {"ALGA_REGISTRY_USERNAME": user, "ALGA_REGISTRY_PASSWORD": password}


def test_a_real_step_inside_it_then_again_on_a_read_only_root(
    step_image: StepImage, container: str, basic_registry: Registry, tools: Tools, tmp_path: Path
) -> None:
    src = PROJECT_ROOT / "examples"
    done = inside(
        step_image,
        container,
        *charts_publish(basic_registry, "/tmp/charts.json"),
        mounts=(f"{src}:/src/examples:ro",),
        env=registry_env(basic_registry),
    )
    assert done.returncode == 0, done.stderr
    charts = json.loads(done.stdout)["charts"]
    assert len(charts) == 6 and {c["status"] for c in charts.values()} == {"pushed"}
    assert not basic_registry.secrets_in(done.stdout + done.stderr)
    sebastian = charts["sebastian"]
    assert basic_registry.credentials is not None
    user, password = basic_registry.credentials
    helm_env = {
        **os.environ,
        "HOME": str(tmp_path),
        "HELM_REGISTRY_CONFIG": str(tmp_path / "r.json"),
    }
    login = run(
        [
            str(tools.helm),
            "registry",
            "login",
            basic_registry.host,
            "--plain-http",
            "--username",
            user,
            "--password-stdin",
        ],
        input=password,
        env=helm_env,
    )
    assert login.returncode == 0, login.stderr
    shown = run(
        [
            str(tools.helm),
            "show",
            "chart",
            f"oci://{basic_registry.host}/nine-minds/charts/sebastian",
            "--version",
            sebastian["version"],
            "--plain-http",
        ],
        env=helm_env,
    )
    assert shown.returncode == 0, shown.stderr
    assert "name: sebastian" in shown.stdout

    # The same step with the image's root mounted read-only, as uid 10001, with a tmpfs on
    # /tmp and a writable workspace: what the pods give it.
    _tool("unshare")
    mounted = run([*step_image.buildah(), "mount", container])
    assert mounted.returncode == 0, mounted.stderr
    rootfs = Path(mounted.stdout.strip())
    for mount_point in ("src/examples", "workspace"):  # as the runtime makes them
        (rootfs / mount_point).mkdir(parents=True, exist_ok=True)
    workspace = tmp_path / "workspace"
    workspace.mkdir(mode=0o777)
    workspace.chmod(0o777)
    target = tmp_path / "root"
    target.mkdir()
    env = " ".join(f"{k}={v}" for k, v in registry_env(basic_registry).items())
    step = " ".join(charts_publish(basic_registry, "/workspace/out/charts.json"))
    script = f"""set -e
mount --bind {rootfs} {target}
mount -o remount,bind,ro {target}
mount -t tmpfs -o size=256m,mode=1777 tmpfs {target}/tmp
mount -t proc proc {target}/proc
mount --bind /dev {target}/dev
mount --bind -o ro {src} {target}/src/examples
mount --bind {workspace} {target}/workspace
exec env -i HOME=/tmp TMPDIR=/tmp PATH=/usr/local/bin:/usr/bin:/bin {env} \\
  /usr/sbin/chroot --userspec={UID}:{UID} {target} sh -c \\
  'if touch /etc/probe 2>/dev/null; then echo root is writable >&2; exit 9; fi; cd /tmp; {step}'
"""
    try:
        done = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])
    finally:
        run([*step_image.buildah(), "umount", container])
    assert done.returncode == 0, done.stderr
    again = json.loads(done.stdout)["charts"]
    assert {c["status"] for c in again.values()} == {"unchanged"}
    assert {n: c["digest"] for n, c in again.items()} == {n: c["digest"] for n, c in charts.items()}
    written = json.loads((workspace / "out" / "charts.json").read_text())
    assert written["charts"] == again
    assert (workspace / "out" / "charts.json").stat().st_uid == int(UID)


def test_make_step_image_pushes_it_with_our_client(
    step_image: StepImage, registry: Registry, tools: Tools
) -> None:
    push = [
        sys.executable,
        str(PROJECT_ROOT / "scripts" / "push_step_image.py"),
        "--layout",
        str(step_image.layout),
        "--registry",
        registry.host,
        "--plain-http",
    ]
    done = run([*push, "--tag", "0.1.0"])
    assert done.returncode == 0, done.stderr
    reference = done.stdout.strip()
    repository = f"{registry.host}/nine-minds/alga-release-step"
    assert reference.startswith(f"{repository}@sha256:")
    digest = reference.split("@", 1)[1]
    index = json.loads((step_image.layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    crane = run([str(tools.go_tool("crane")), "digest", "--insecure", f"{repository}:0.1.0"])
    assert crane.returncode == 0, crane.stderr
    assert crane.stdout.strip() == digest
    # a re-push uploads nothing; the digest is what `make workflows STEP_IMAGE=` takes
    again = run([*push, "--tag", "0.1.0"])
    assert again.returncode == 0 and again.stdout.strip() == reference, again.stderr
    assert "0 blob(s) uploaded" in again.stderr
    from pipelines import pins

    assert pins.check_pinned("STEP_IMAGE", reference) == reference
    # the tag is immutable: a tag that names another image is refused, nothing changes
    crane = str(tools.go_tool("crane"))
    other = run(
        [
            crane,
            "mutate",
            "--insecure",
            "--label",
            "other=1",
            f"{repository}:0.1.0",
            "-t",
            f"{repository}:0.2.0",
        ]
    )
    assert other.returncode == 0, other.stderr
    before = run([crane, "digest", "--insecure", f"{repository}:0.2.0"]).stdout.strip()
    refused = run([*push, "--tag", "0.2.0"])
    assert refused.returncode == 3, refused.stderr
    assert "already points at" in refused.stderr and refused.stdout == ""
    assert run([crane, "digest", "--insecure", f"{repository}:0.2.0"]).stdout.strip() == before
