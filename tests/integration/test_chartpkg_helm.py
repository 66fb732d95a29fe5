"""steps.chartpkg against the real thing: helm v4 and helm v3 as oracles.

For each helm: our tarball has the same member names and contents as
``helm package --version <our version>`` (Chart.yaml and Chart.lock compared as
parsed YAML, because helm re-serialises them; every other file byte for byte),
helm lints, renders and shows our tarball, and our .helmignore handling selects
exactly the files helm selects.

Binaries: ``ALGA_HELM`` (default ``.tools/bin/helm``, v4) and ``ALGA_HELM3``
(default ``.tools/bin/helm3``, v3). A missing binary skips the test, or fails it
when ``CI=true``; ``scripts/setup.sh`` installs both.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from steps.charts.package import (
    PackagedChart,
    collect_files,
    content_hash,
    immutable_version,
    load_chart,
    package_chart,
)
from steps.errors import BadInput

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "data" / "charts" / "demo"


@dataclass(frozen=True)
class Helm:
    path: Path
    major: int
    home: Path

    def run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            env[var] = str(self.home / var.lower())
        proc = subprocess.run(
            [str(self.path), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"helm v{self.major} {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                f"{proc.stdout}\n{proc.stderr}"
            )
        return proc


_HELMS = {
    "helm-v4": ("ALGA_HELM", ROOT / ".tools" / "bin" / "helm", 4),
    "helm-v3": ("ALGA_HELM3", ROOT / ".tools" / "bin" / "helm3", 3),
}


@pytest.fixture(params=sorted(_HELMS))
def helm(request: pytest.FixtureRequest, tmp_path: Path) -> Helm:
    env_var, default, major = _HELMS[request.param]
    path = Path(os.environ.get(env_var) or default)
    if not (path.is_file() and os.access(path, os.X_OK)):
        message = (
            f"helm v{major} not found at {path} (set {env_var} or run scripts/setup.sh, "
            "which installs helm and helm3 into .tools/bin)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    found = subprocess.run(
        [str(path), "version", "--template", "{{.Version}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout.strip()
    assert found.startswith(f"v{major}."), f"{env_var}={path} is {found!r}, expected v{major}"
    return Helm(path, major, tmp_path / f"helm-home-{major}")


def ours(chart: Path) -> PackagedChart:
    src = load_chart(chart)
    files = collect_files(src)
    return package_chart(src, files, immutable_version(src.version, content_hash(src, files)))


def helm_package(helm: Helm, chart: Path, version: str, out: Path) -> bytes:
    helm.run("package", chart, "--version", version, "-d", out)
    (archive,) = out.glob("*.tgz")
    return archive.read_bytes()


def read_tar(data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    result = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            f = tar.extractfile(member)
            result.append((member, f.read() if f else b""))
    return result


def dependency_of(name: str, chart: str) -> str | None:
    """The subchart an entry belongs to (first level), or None for the chart's own."""
    parts = name.split("/")
    if len(parts) >= 4 and parts[1] == "charts" and not parts[-1].endswith(".prov"):
        return parts[2]
    return None


def assert_same_as_helm(our: bytes, their: bytes, chart: str) -> None:
    mine = read_tar(our)
    theirs = read_tar(their)
    my_names = [m.name for m, _ in mine]
    their_names = [m.name for m, _ in theirs]
    assert sorted(my_names) == sorted(their_names)
    assert len(set(their_names)) == len(their_names)

    # What helm writes: regular files only, all 0644, no directory entries.
    for member, _ in theirs:
        assert member.isreg() and member.mode == 0o644, member.name

    # Same order, except that helm emits subcharts in (random) Go map order.
    def own(names: list[str]) -> list[str]:
        return [n for n in names if dependency_of(n, chart) is None]

    assert own(my_names) == own(their_names)
    for dep in {dependency_of(n, chart) for n in their_names} - {None}:
        assert [n for n in my_names if dependency_of(n, chart) == dep] == [
            n for n in their_names if dependency_of(n, chart) == dep
        ]

    their_data = {m.name: d for m, d in theirs}
    for member, data in mine:
        if member.name.rsplit("/", 1)[-1] in ("Chart.yaml", "Chart.lock"):
            assert yaml.safe_load(data) == yaml.safe_load(their_data[member.name]), member.name
        else:
            assert data == their_data[member.name], member.name


def demo_with_extras(tmp_path: Path) -> Path:
    """The demo chart plus litter its .helmignore must drop and files it must keep."""
    chart = tmp_path / "src" / "demo"
    shutil.copytree(DEMO, chart, symlinks=True)
    (chart / "values.yaml~").write_text("old: true\n")
    (chart / "templates" / "deployment.yaml~").write_text("old\n")
    (chart / ".git").mkdir()
    (chart / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (chart / "templates" / "sub").mkdir()
    (chart / "templates" / "sub" / ".hidden.tpl").write_text("{{/* kept by helm */}}\n")
    (chart / "files" / "linked.yaml").symlink_to("ci-values.yaml")
    return chart


# --------------------------------------------------------------------------
# The package matches helm's
# --------------------------------------------------------------------------


def test_demo_matches_helm_package(helm: Helm, tmp_path: Path) -> None:
    chart = demo_with_extras(tmp_path)
    pkg = ours(chart)
    their = helm_package(helm, chart, pkg.version, tmp_path / "helm-out")
    assert_same_as_helm(pkg.tarball, their, "demo")
    names = {m.name for m, _ in read_tar(pkg.tarball)}
    # Spot checks of the findings the module docstring states.
    assert "demo/.helmignore" in names
    assert "demo/Chart.lock" in names
    assert "demo/files/linked.yaml" in names
    assert "demo/templates/sub/.hidden.tpl" in names
    assert "demo/charts/redis-lite/Chart.yaml" in names
    assert not any(n.endswith(".tgz") for n in names)
    assert not any(n.endswith("~") or "/.git/" in n or "/docs/" in n for n in names)


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


_LOCK = 'dependencies: []\ndigest: sha256:00\ngenerated: "2024-01-01T00:00:00Z"\n'
_NESTED = "apiVersion: v2\nname: nested\nversion: 0.0.1\n"

LAYOUTS: dict[str, dict[str, str]] = {
    "v1-requirements-and-lock": {
        "Chart.yaml": "apiVersion: v1\nname: legacy\nversion: 1.0.0\n",
        "requirements.yaml": "dependencies: []\n",
        "requirements.lock": _LOCK,
        "Chart.lock": _LOCK,
        "templates/cm.yaml": "kind: ConfigMap\n",
    },
    "charts-folder-rules": {
        "Chart.yaml": "apiVersion: v2\nname: parent\nversion: 2.1.0-rc.1\n",
        "templates/cm.yaml": "kind: ConfigMap\n",
        "charts/_scratch/notes.txt": "dropped\n",
        "charts/.cache/x": "dropped\n",
        "charts/sub-1.0.0.tgz.prov": "signature\n",
        "charts/folder-name/Chart.yaml": "apiVersion: v2\nname: renamed\nversion: 1.0.0\n",
        "charts/folder-name/.helmignore": "*.md\n",
        "charts/folder-name/README.md": "kept: a subchart's .helmignore is not read\n",
        "charts/folder-name/templates/.hidden": "kept: default rule is root-only\n",
        "charts/folder-name/charts/nested/Chart.yaml": _NESTED,
        "charts/folder-name/charts/nested/values.yaml": "x: 1\n",
    },
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layout_matches_helm_package(helm: Helm, tmp_path: Path, layout: str) -> None:
    chart = _write(tmp_path / "src" / "chart", LAYOUTS[layout])
    pkg = ours(chart)
    their = helm_package(helm, chart, pkg.version, tmp_path / "helm-out")
    assert_same_as_helm(pkg.tarball, their, pkg.name)


# --------------------------------------------------------------------------
# helm accepts what we produce
# --------------------------------------------------------------------------


def test_helm_lints_renders_and_shows_our_tarball(helm: Helm, tmp_path: Path) -> None:
    pkg = ours(DEMO)
    archive = tmp_path / pkg.filename
    archive.write_bytes(pkg.tarball)

    lint = helm.run("lint", archive)
    assert "0 chart(s) failed" in lint.stdout

    rendered = helm.run("template", "rel", archive).stdout
    kinds = [d["kind"] for d in yaml.safe_load_all(rendered) if d]
    assert sorted(kinds) == ["Deployment", "Service"]
    assert "name: rel-demo" in rendered
    assert "name: rel-redis" in rendered

    shown = yaml.safe_load(helm.run("show", "chart", archive).stdout)
    assert shown["name"] == "demo"
    assert shown["version"] == pkg.version
    assert shown["appVersion"] == "1.4.2"


def test_helm_accepts_version_from_prerelease_base(helm: Helm, tmp_path: Path) -> None:
    chart = _write(
        tmp_path / "src" / "rc",
        {
            "Chart.yaml": "apiVersion: v2\nname: rc\nversion: 1.0.0-rc5.1\n",
            "templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
        },
    )
    pkg = ours(chart)
    assert pkg.version.startswith("1.0.0-rc5.1.c")
    their = helm_package(helm, chart, pkg.version, tmp_path / "helm-out")
    assert_same_as_helm(pkg.tarball, their, "rc")
    archive = tmp_path / pkg.filename
    archive.write_bytes(pkg.tarball)
    assert yaml.safe_load(helm.run("show", "chart", archive).stdout)["version"] == pkg.version


# --------------------------------------------------------------------------
# .helmignore: our selection equals helm's, rule by rule
# --------------------------------------------------------------------------

TREE = {
    "Chart.yaml": "apiVersion: v2\nname: probe\nversion: 0.1.0\n",
    "values.yaml": "a: 1\n",
    "templates/cm.yaml": "kind: ConfigMap\n",
    "templates/.hidden": "h\n",
    "templates/sub/.h2": "h\n",
    "top.txt": "t\n",
    "keep.txt": "k\n",
    "abc.txt": "a\n",
    "sub/x.txt": "x\n",
    "sub/keep.txt": "k\n",
    "other/sub": "a file named sub\n",
    "x~": "backup\n",
    ".dot": "d\n",
}

HELMIGNORE_CASES: dict[str, bytes] = {
    "empty": b"",
    "glob": b"*.txt\n",
    "positive-then-negation": b"*.txt\n!keep.txt\n",
    "negation-alone": b"!keep.txt\n",
    "negation-txt": b"!*.txt\n",
    "negation-backups": b"!*[^~]\n",
    "negation-yaml-then": b"!*[^t]\nvalues.yaml\n",
    "negated-dir": b"!templates/\n",
    "dir-only": b"sub/\n",
    "name-any-kind": b"sub\n",
    "anchored": b"/sub\n/top.txt\n",
    "path-glob": b"*/*.txt\n",
    "dir-contents": b"sub/*\n",
    "question": b"a?c.txt\n",
    "class-range": b"[a-k]*.txt\n",
    "class-caret": b"[^a]*.txt\n",
    "class-bang-is-literal": b"[!x]*\n",
    "double-star": b"**/x.txt\n",
    "bad-glob": b"a[\n",
    "bad-glob-late": b"x*[\n",
    "whitespace-and-comments": b"  *.txt  \n# comment\nkeep # not a comment\n",
    "dotfiles": b".*\n",
    "templates-dir": b"templates/\n",
    "templates-nested-hidden": b"templates/*/.h2\n",
    "bom": b"\xef\xbb\xbf*.txt\n",
    "crlf": b"*.txt\r\nsub/\r\n",
}


@pytest.mark.parametrize("case", sorted(HELMIGNORE_CASES))
def test_helmignore_matches_helm(helm: Helm, tmp_path: Path, case: str) -> None:
    chart = _write(tmp_path / "src" / "probe", TREE)
    (chart / ".helmignore").write_bytes(HELMIGNORE_CASES[case])

    proc = helm.run("package", chart, "-d", tmp_path / "helm-out", check=False)
    try:
        mine: set[str] | None = {f.path for f in collect_files(load_chart(chart))}
    except BadInput:
        mine = None
    if proc.returncode != 0:
        assert mine is None, f"helm refused ({proc.stderr.strip()}), we packaged {mine}"
        return
    assert mine is not None, "helm packaged this chart, we refused it"
    (archive,) = (tmp_path / "helm-out").glob("*.tgz")
    theirs = {m.name.removeprefix("probe/") for m, _ in read_tar(archive.read_bytes())}
    assert mine == theirs
