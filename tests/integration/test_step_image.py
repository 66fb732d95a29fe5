"""The step image, as far as it can be built on a machine that cannot pull a base image.

What these tests prove, for real:

1. **buildah works here** (``--isolation chroot --storage-driver vfs``, storage in a
   temporary folder) and **the build context** it assembles from this repository's
   ``.dockerignore`` is exactly ``pyproject.toml``, ``README.md`` and ``steps/`` (no
   ``.git``, ``.venv``, tests, tools or caches): a ``FROM scratch`` image that copies
   the whole context, exported with ``--output type=local``.
2. **The Dockerfile's ``COPY`` sources are in that context**, and the files the
   ``wheels`` stage copies build a wheel (``pip wheel``, no network: the project
   venv's setuptools) that holds the package data, the ``alga-release`` entry point and
   the declared dependencies.
3. **The wheel installs and runs in a clean virtualenv** (no system site-packages),
   without the source tree: ``alga-release --version``/``--help``, and a real
   ``charts publish --dry-run`` against a loopback registry, from another folder;
   ``steps`` is imported from the new venv. The dependencies come from the project
   venv (a ``.pth`` line, no network), and ``pip check`` confirms they satisfy the
   wheel's requirements.
4. **buildah reads the real Dockerfile** (three stages) up to its first base image,
   which it may not pull (``--pull=never``): a weak check that it parses.
5. The Dockerfile's rules: non-root numeric ``USER`` matching the templates' uid,
   ``ENTRYPOINT alga-release``, git installed, the same kubectl version the tests use.

What they do not prove: that the base images exist and build (``python:3.11-slim``,
the Debian packages, the kubectl download and its checksum), that the image runs in a
pod, or dependency resolution from an index. README, "Argo workflows and the step
image", says how the image is built and published where base images can be pulled.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from tests.harness.registry import Registry
from tests.harness.tools import Tools, missing_component

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def buildah() -> str:
    path = shutil.which("buildah")
    if path is None:
        missing_component("buildah", "apt-get install buildah")
    return path


def buildah_cmd(storage: Path) -> list[str]:
    return [
        buildah(),
        "--root",
        str(storage / "root"),
        "--runroot",
        str(storage / "run"),
        "--storage-driver",
        "vfs",
    ]


def run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build context exactly as buildah sends it to a build."""
    tmp = tmp_path_factory.mktemp("buildah")
    containerfile = tmp / "Containerfile"
    containerfile.write_text("FROM scratch\nCOPY . /context/\n")
    done = run(
        [
            *buildah_cmd(tmp),
            "bud",
            "--isolation",
            "chroot",
            "--pull=never",
            "-f",
            str(containerfile),
            "--output",
            f"type=local,dest={tmp / 'out'}",
            str(ROOT),
        ]
    )
    assert done.returncode == 0, done.stderr
    return tmp / "out" / "context"


# -- 1. the context ------------------------------------------------------------------------


def test_the_build_context_is_only_what_the_wheel_needs(context: Path) -> None:
    steps = {
        f"steps/{p}"
        for p in files_under(ROOT / "steps")
        if "__pycache__" not in p and not p.endswith(".pyc")
    }
    consume = {"consume/__init__.py", "consume/release_consume.py"}
    # steps/data's schema is a link to the one copy in schemas/
    schema = {"schemas/release-manifest.v1.schema.json"}
    assert files_under(context) == {"pyproject.toml", "README.md", *steps, *consume, *schema}
    assert (context / "steps" / "data" / "release-manifest.v1.schema.json").is_file()


def test_the_dockerignore_is_an_allow_list() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"


# -- 2. the Dockerfile's COPY sources build a wheel -------------------------------------------


def copy_sources() -> list[str]:
    """Sources of the Dockerfile's ``COPY`` lines that read the context (no ``--from``)."""
    sources: list[str] = []
    for line in DOCKERFILE.splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            sources += parts[1:-1]
    return sources


def test_every_copy_source_is_in_the_context(context: Path) -> None:
    assert copy_sources() == [
        "pyproject.toml",
        "README.md",
        "steps",
        "consume/__init__.py",
        "consume/release_consume.py",
    ]
    for source in copy_sources():
        assert (context / source).exists(), source


@pytest.fixture(scope="module")
def wheel(context: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from what the ``wheels`` stage copies, as it does (minus network)."""
    src = tmp_path_factory.mktemp("wheel-src")
    for source in copy_sources():
        path = context / source
        if path.is_dir():
            shutil.copytree(path, src / source)
        else:
            (src / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / source)
    out = tmp_path_factory.mktemp("wheels")
    done = run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(out),
            str(src),
        ]
    )
    assert done.returncode == 0, done.stderr
    (built,) = out.glob("alga_appliance_release-*.whl")
    return built


def test_the_wheel_holds_the_package_its_data_and_entry_point(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        dist = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(f"{dist}/METADATA").decode()
        entry_points = zf.read(f"{dist}/entry_points.txt").decode()
    assert "steps/data/release-manifest.v1.schema.json" in names
    assert "steps/py.typed" in names and "steps/cli/app.py" in names
    # the consume library the verify step resolves with, without its tests and vectors
    assert "consume/release_consume.py" in names
    assert not any(n.startswith("consume/") and not n.endswith(".py") for n in names)
    assert not any(n.startswith(("tests/", "pipelines/", "examples/")) for n in names)
    assert re.search(r"^alga-release = steps\.cli:main$", entry_points, re.M)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    required = [
        line.removeprefix("Requires-Dist: ")
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist: ") and "extra ==" not in line
    ]
    declared = pyproject["project"]["dependencies"]
    assert {Requirement(r) for r in required} == {Requirement(r) for r in declared}


# -- 3. the wheel in a clean virtualenv ----------------------------------------------------


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("venv") / "venv"
    done = run([sys.executable, "-m", "venv", "--without-pip", str(root)])
    assert done.returncode == 0, done.stderr
    python = root / "bin" / "python"
    done = run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--no-compile",
            str(wheel),
        ]
    )
    assert done.returncode == 0, done.stderr
    # The dependencies: the project venv's site-packages, appended after the new venv's
    # own (a path added by a .pth line does not run that folder's .pth files, so the
    # project's editable install of `steps` is not picked up).
    site = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    (site / "zz-project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return root


def test_the_wheel_runs_from_a_clean_venv_without_the_source_tree(
    venv: Path, tmp_path: Path
) -> None:
    bin_ = venv / "bin"
    done = run([str(bin_ / "alga-release"), "--version"], cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("alga-release "), done.stderr
    done = run([str(bin_ / "alga-release"), "--help"], cwd=tmp_path)
    assert done.returncode == 0
    for command in ("charts", "bundle", "images", "manifest", "channel", "promote", "verify"):
        assert re.search(rf"^\s+{command}\s", done.stdout, re.M), command
    probe = (
        "import json, steps, steps.release.manifest; "
        "print(json.dumps([steps.__file__, steps.release.manifest.load_schema()['$id']]))"
    )
    done = run([str(bin_ / "python"), "-c", probe], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    module, schema_id = json.loads(done.stdout)
    assert Path(module).is_relative_to(venv), f"steps imported from {module}, not the wheel"
    assert schema_id
    done = run([sys.executable, "-m", "pip", "--python", str(bin_ / "python"), "check"])
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_wheel_publishes_a_dry_run_against_a_real_registry(
    venv: Path, registry: Registry, tmp_path: Path
) -> None:
    done = run(
        [
            str(venv / "bin" / "alga-release"),
            "charts",
            "publish",
            "--source",
            str(ROOT),
            "--config",
            str(ROOT / "examples" / "release.yaml"),
            "--registry",
            registry.host,
            "--plain-http",
            "--dry-run",
            "--json",
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    charts = json.loads(done.stdout)["charts"]
    assert len(charts) == 6 and "sebastian" in charts


# -- 4. buildah and the real Dockerfile -------------------------------------------------------


def test_buildah_reads_the_dockerfile_up_to_its_first_base_image(tmp_path: Path) -> None:
    done = run(
        [
            *buildah_cmd(tmp_path),
            "bud",
            "--isolation",
            "chroot",
            "--pull=never",
            "--build-arg",
            "TARGETARCH=amd64",
            "-f",
            str(ROOT / "Dockerfile"),
            str(ROOT),
        ]
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "[1/3] STEP 1/" in output, output
    assert re.search(r"python:3\.11-slim-bookworm.*(image not known|not found)", output), output


# -- 5. the Dockerfile's rules ------------------------------------------------------------------


def final_stage() -> str:
    return DOCKERFILE.rsplit("\nFROM ", 1)[1]


def test_the_image_runs_as_the_templates_non_root_user() -> None:
    """The uid and HOME the rendered templates use (read from the committed YAML)."""
    release = yaml.safe_load((ROOT / "workflows-generated" / "release.yaml").read_text())
    for template in release["spec"]["templates"]:
        if "container" in template:
            uid = template["securityContext"]["runAsUser"]
            home = {e["name"]: e.get("value") for e in template["container"]["env"]}["HOME"]
            break
    (user,) = re.findall(r"^USER (\S+)$", final_stage(), re.M)
    assert user == f"{uid}:{uid}"
    assert re.search(rf"useradd --uid {uid} ", final_stage())
    assert f"HOME={home}" in final_stage()
    assert re.search(r'^ENTRYPOINT \["alga-release"\]$', final_stage(), re.M)
    assert re.search(r"apt-get install .*\bgit\b", final_stage())
    for line in DOCKERFILE.splitlines():
        if line.startswith("FROM "):
            assert line.split()[1] == "${PYTHON_IMAGE}", line  # one base, set in one place


def test_the_image_has_the_kubectl_the_tests_validate_with(tools: Tools) -> None:
    (version,) = re.findall(r"^ARG KUBECTL_VERSION=(\S+)$", DOCKERFILE, re.M)
    done = run([str(tools.kubectl), "version", "--client"])
    assert f"Client Version: {version}" in done.stdout
