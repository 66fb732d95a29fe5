"""Unit tests for steps.chartpkg: loading, file selection, hashing, versions, packaging.

No helm here; tests/integration/test_chartpkg_helm.py compares with real helm.
"""

from __future__ import annotations

import difflib
import gzip
import io
import json
import os
import re
import shutil
import tarfile
from pathlib import Path

import pytest
import semver
import yaml

from steps.charts import package as chartpkg
from steps.charts.package import (
    ChartFile,
    ChartSource,
    PackagedChart,
    collect_files,
    content_hash,
    immutable_version,
    load_chart,
    package_chart,
)
from steps.errors import EXIT_BAD_INPUT, BadInput

DATA = Path(__file__).resolve().parents[2] / "data" / "charts"
DEMO = DATA / "demo"
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")

DEMO_FILES = {
    ".helmignore",
    "Chart.lock",
    "Chart.yaml",
    "README.md",
    "charts/common/.helmignore",
    "charts/common/Chart.yaml",
    "charts/common/README.md",
    "charts/common/templates/.gitkeep",
    "charts/common/templates/_labels.tpl",
    "charts/redis-lite/Chart.yaml",
    "charts/redis-lite/templates/service.yaml",
    "charts/redis-lite/values.yaml",
    "files/bom.yaml",
    "files/ci-values.yaml",
    "files/hook.sh",
    "templates/NOTES.txt",
    "templates/_helpers.tpl",
    "templates/deployment.yaml",
    "values.schema.json",
    "values.yaml",
}


def copy_demo(dest: Path) -> Path:
    target = dest / "demo"
    shutil.copytree(DEMO, target, symlinks=True)
    return target


def build(path: Path, version: str | None = None) -> tuple[str, PackagedChart]:
    src = load_chart(path)
    files = collect_files(src)
    digest = content_hash(src, files)
    return digest, package_chart(src, files, version or immutable_version(src.version, digest))


def members(tarball: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        return tar.getmembers()


def read_member(tarball: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def write_chart(root: Path, chart_yaml: str, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Chart.yaml").write_text(chart_yaml)
    for rel, text in (files or {"templates/cm.yaml": "kind: ConfigMap\n"}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def simple_chart(root: Path, name: str = "simple", extra: str = "") -> Path:
    return write_chart(root, f"apiVersion: v2\nname: {name}\nversion: 1.0.0\n{extra}")


def paths_of(path: Path) -> list[str]:
    return [f.path for f in collect_files(load_chart(path))]


# --------------------------------------------------------------------------
# load_chart
# --------------------------------------------------------------------------


def test_load_demo() -> None:
    src = load_chart(DEMO, expected_name="demo")
    assert isinstance(src, ChartSource)
    assert (src.name, src.version, src.api_version) == ("demo", "0.1.0", "v2")
    assert src.path == DEMO.resolve()
    assert src.metadata["appVersion"] == "1.4.2"
    assert src.chart_yaml == (DEMO / "Chart.yaml").read_bytes()


def assert_bad_input(excinfo: pytest.ExceptionInfo[BadInput], *needles: str) -> None:
    err = excinfo.value
    assert err.exit_code == EXIT_BAD_INPUT
    for needle in needles:
        assert needle in err.message, (needle, err.message)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as err:
        load_chart(tmp_path / "nope")
    assert_bad_input(err, str(tmp_path / "nope"), "does not exist")
    assert err.value.hint


def test_folder_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(BadInput) as err:
        load_chart(tmp_path / "file")
    assert_bad_input(err, "not a folder")


def test_missing_chart_yaml(tmp_path: Path) -> None:
    (tmp_path / "chart").mkdir()
    with pytest.raises(BadInput) as err:
        load_chart(tmp_path / "chart")
    assert_bad_input(err, str(tmp_path / "chart"), "no Chart.yaml")


@pytest.mark.parametrize(
    ("chart_yaml", "needles"),
    [
        ("apiVersion: v2\nname: [unclosed\n", ("not valid YAML",)),
        ("- just\n- a list\n", ("must be a YAML mapping", "list")),
        ("", ("must be a YAML mapping",)),
        ("name: x\nversion: 1.0.0\n", ("no apiVersion",)),
        ("apiVersion: v3\nname: x\nversion: 1.0.0\n", ("apiVersion 'v3'",)),
        ("apiVersion: v2\nversion: 1.0.0\n", ("no name",)),
        ("apiVersion: v2\nname: My_Chart\nversion: 1.0.0\n", ("OCI repository name",)),
        ("apiVersion: v2\nname: x\n", ("no version",)),
        ("apiVersion: v2\nname: x\nversion: 1.0\n", ("not a SemVer string",)),
        ("apiVersion: v2\nname: x\nversion: '1.0'\n", ("not strict SemVer 2",)),
        ("apiVersion: v2\nname: x\nversion: v1.0.0\n", ("not strict SemVer 2",)),
        ("apiVersion: v2\nname: x\nversion: 1.0.0-rc.01\n", ("not strict SemVer 2",)),
        ("apiVersion: v2\nname: x\nversion: 1.0-rc5.1\n", ("not strict SemVer 2",)),
        ("apiVersion: v2\nname: x\nversion: 1.0.0+build.5\n", ("'+' build metadata", "OCI")),
        ("apiVersion: v2\nname: x\nversion: 1.0.0\ntype: app\n", ("type 'app'",)),
        ("apiVersion: v2\nname: x\nversion: 1.0.0\ncreated: 2024-01-01\n", ("created", "JSON")),
    ],
)
def test_bad_chart_yaml(tmp_path: Path, chart_yaml: str, needles: tuple[str, ...]) -> None:
    chart = write_chart(tmp_path / "c", chart_yaml)
    with pytest.raises(BadInput) as err:
        load_chart(chart)
    assert_bad_input(err, f"chart folder {chart}", *needles)
    assert err.value.hint


def test_name_mismatch(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c", name="pgbouncer")
    with pytest.raises(BadInput) as err:
        load_chart(chart, expected_name="temporal")
    assert_bad_input(err, str(chart), "'pgbouncer'", "'temporal'")
    assert load_chart(chart, expected_name="pgbouncer").name == "pgbouncer"


def test_prerelease_base_version_accepted(tmp_path: Path) -> None:
    chart = write_chart(tmp_path / "c", "apiVersion: v2\nname: x\nversion: 1.0.0-rc5.1\n")
    assert load_chart(chart).version == "1.0.0-rc5.1"


def test_bom_in_chart_yaml_is_dropped(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c")
    (chart / "Chart.yaml").write_bytes(b"\xef\xbb\xbf" + (chart / "Chart.yaml").read_bytes())
    src = load_chart(chart)
    assert not src.chart_yaml.startswith(b"\xef\xbb\xbf")
    assert src.name == "simple"


# --------------------------------------------------------------------------
# collect_files: the file set helm packages
# --------------------------------------------------------------------------


def test_demo_fixture_has_the_files_the_rules_must_drop() -> None:
    # Guard: if a fixture went missing (e.g. a global gitignore), the exclusion
    # assertions below would pass for the wrong reason.
    for rel in (
        "templates/.scratch.yaml",
        "templates/ingress.yaml.draft",
        "docs/guide.md",
        "ci-values.yaml",
        "charts/redis-lite-0.3.0.tgz",
        "charts/common/templates/.gitkeep",
    ):
        assert (DEMO / rel).is_file(), rel
    assert (DEMO / "files/bom.yaml").read_bytes().startswith(b"\xef\xbb\xbf")


def test_demo_file_set() -> None:
    files = collect_files(load_chart(DEMO))
    paths = [f.path for f in files]
    assert paths == sorted(paths)
    assert set(paths) == DEMO_FILES
    assert all(isinstance(f, ChartFile) for f in files)


def test_demo_contents() -> None:
    files = {f.path: f.data for f in collect_files(load_chart(DEMO))}
    # BOM removed like helm's loader does; other files byte for byte.
    assert files["files/bom.yaml"] == b"greeting: hello\n"
    assert files["templates/deployment.yaml"] == (DEMO / "templates/deployment.yaml").read_bytes()
    assert files["Chart.lock"] == (DEMO / "Chart.lock").read_bytes()
    # The vendored archive is expanded (helm does the same).
    assert b"name: redis-lite" in files["charts/redis-lite/Chart.yaml"]
    assert files["charts/redis-lite/values.yaml"] == b"port: 6379\n"


def test_negation_rule_drops_backup_files(tmp_path: Path) -> None:
    chart = copy_demo(tmp_path)
    (chart / "values.yaml~").write_text("old\n")
    (chart / "templates" / "deployment.yaml~").write_text("old\n")
    (chart / ".git").mkdir()
    (chart / ".git" / "config").write_text("[core]\n")
    (chart / "templates" / "sub").mkdir()
    (chart / "templates" / "sub" / ".hidden").write_text("kept: default rule is one level\n")
    paths = set(paths_of(chart))
    assert paths == DEMO_FILES | {"templates/sub/.hidden"}


def test_helmignore_errors_surface(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c")
    (chart / ".helmignore").write_text("templates/**/x\n")
    with pytest.raises(BadInput) as err:
        collect_files(load_chart(chart))
    assert_bad_input(err, ".helmignore line 1", "**")


def test_chart_yaml_ignored_is_refused(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c")
    (chart / ".helmignore").write_text("!templates\n")
    with pytest.raises(BadInput) as err:
        collect_files(load_chart(chart))
    assert_bad_input(err, "Chart.yaml is excluded by its .helmignore")


def test_empty_dirs_and_modes_do_not_matter(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c")
    (chart / "empty" / "deeper").mkdir(parents=True)
    (chart / "run.sh").write_text("#!/bin/sh\n")
    (chart / "run.sh").chmod(0o755)
    assert paths_of(chart) == ["Chart.yaml", "run.sh", "templates/cm.yaml"]


def test_fifo_is_refused(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c")
    os.mkfifo(chart / "pipe")
    with pytest.raises(BadInput) as err:
        collect_files(load_chart(chart))
    assert_bad_input(err, "pipe", "not a regular file")
    (chart / ".helmignore").write_text("pipe\n")
    assert "pipe" not in paths_of(chart)


# -- symbolic links ---------------------------------------------------------


def test_symlink_inside_is_followed(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c")
    (chart / "files").mkdir()
    (chart / "files" / "real.txt").write_text("real\n")
    (chart / "templates" / "linked.txt").symlink_to("../files/real.txt")
    (chart / "alias").symlink_to("files", target_is_directory=True)
    files = {f.path: f.data for f in collect_files(load_chart(chart))}
    assert files["templates/linked.txt"] == b"real\n"
    assert files["alias/real.txt"] == b"real\n"
    assert files["files/real.txt"] == b"real\n"


def test_symlink_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the chart\n")
    chart = simple_chart(tmp_path / "c")
    (chart / "templates" / "leak.yaml").symlink_to(outside)
    with pytest.raises(BadInput) as err:
        collect_files(load_chart(chart))
    assert_bad_input(err, "templates/leak.yaml", str(outside), "outside the chart folder")
    assert err.value.hint


def test_symlinked_dir_outside_is_refused(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "x.yaml").write_text("x\n")
    chart = simple_chart(tmp_path / "c")
    (chart / "shared").symlink_to("../shared", target_is_directory=True)
    with pytest.raises(BadInput) as err:
        collect_files(load_chart(chart))
    assert_bad_input(err, "shared -> ../shared", "outside the chart folder")


def test_symlink_outside_that_is_ignored_is_fine(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("s\n")
    chart = simple_chart(tmp_path / "c")
    (chart / "dev-link").symlink_to(tmp_path / "secret.txt")
    (chart / ".helmignore").write_text("dev-link\n")
    assert "dev-link" not in paths_of(chart)


def test_dangling_symlink_is_refused_even_when_ignored(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c")
    (chart / "templates" / "gone.yaml").symlink_to("nowhere.yaml")
    with pytest.raises(BadInput) as err:
        collect_files(load_chart(chart))
    assert_bad_input(err, "templates/gone.yaml -> nowhere.yaml", "dangling")
    (chart / ".helmignore").write_text("gone.yaml\n")
    with pytest.raises(BadInput):  # helm fails here too
        collect_files(load_chart(chart))


def test_symlink_loop_is_refused(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c")
    (chart / "templates" / "up").symlink_to("..", target_is_directory=True)
    with pytest.raises(BadInput) as err:
        collect_files(load_chart(chart))
    assert_bad_input(err, "templates/up", "contains it")


# -- charts/ ------------------------------------------------------------------


def test_subchart_folder_is_named_after_its_chart(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c")
    simple_chart(chart / "charts" / "folder-name", name="real-name")
    assert "charts/real-name/Chart.yaml" in paths_of(chart)


def test_charts_underscore_dot_and_prov(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c")
    (chart / "charts" / "_notes").mkdir(parents=True)
    (chart / "charts" / "_notes" / "x.txt").write_text("x")
    (chart / "charts" / ".cache").mkdir()
    (chart / "charts" / ".cache" / "y").write_text("y")
    (chart / "charts" / "_README.md").write_text("r")
    (chart / "charts" / "dep-1.0.0.tgz.prov").write_text("sig")
    assert paths_of(chart) == ["Chart.yaml", "charts/dep-1.0.0.tgz.prov", "templates/cm.yaml"]


def test_plain_file_in_charts_is_refused(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c")
    (chart / "charts").mkdir()
    (chart / "charts" / "README.md").write_text("r")
    with pytest.raises(BadInput) as err:
        collect_files(load_chart(chart))
    assert_bad_input(err, "charts/README.md", "not a chart")


def test_declared_dependency_must_be_vendored(tmp_path: Path) -> None:
    chart = simple_chart(
        tmp_path / "c",
        extra="dependencies:\n  - name: redis\n    version: 1.0.0\n    repository: oci://x\n",
    )
    with pytest.raises(BadInput) as err:
        collect_files(load_chart(chart))
    assert_bad_input(err, "missing in charts/ directory: redis")
    assert "helm dependency build" in (err.value.hint or "")


def test_duplicate_subchart_names_refused(tmp_path: Path) -> None:
    chart = copy_demo(tmp_path)
    simple_chart(chart / "charts" / "another", name="common")
    with pytest.raises(BadInput) as err:
        collect_files(load_chart(chart))
    assert_bad_input(err, "'common'")


def test_requirements_yaml_in_v2_chart_refused(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c")
    (chart / "requirements.yaml").write_text("dependencies: []\n")
    with pytest.raises(BadInput) as err:
        collect_files(load_chart(chart))
    assert_bad_input(err, "requirements.yaml", "apiVersion v2")


def test_v1_chart_keeps_requirements_and_drops_chart_lock(tmp_path: Path) -> None:
    chart = write_chart(tmp_path / "c", "apiVersion: v1\nname: old\nversion: 1.0.0\n")
    (chart / "requirements.yaml").write_text("dependencies: []\n")
    (chart / "Chart.lock").write_text("dependencies: []\n")
    assert paths_of(chart) == ["Chart.yaml", "requirements.yaml", "templates/cm.yaml"]


def test_invalid_values_schema_refused(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c")
    (chart / "values.schema.json").write_text("{bad")
    with pytest.raises(BadInput) as err:
        collect_files(load_chart(chart))
    assert_bad_input(err, "values.schema.json", "not valid JSON")


def test_broken_vendored_archive_refused(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c")
    (chart / "charts").mkdir()
    (chart / "charts" / "dep-1.0.0.tgz").write_bytes(b"not gzip at all")
    with pytest.raises(BadInput) as err:
        collect_files(load_chart(chart))
    assert_bad_input(err, "charts/dep-1.0.0.tgz", "not a readable chart archive")


def test_vendored_archive_escaping_its_folder_refused(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c")
    (chart / "charts").mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (
            ("dep/Chart.yaml", b"apiVersion: v2\nname: dep\nversion: 1.0.0\n"),
            ("dep/../../evil", b"x"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (chart / "charts" / "dep-1.0.0.tgz").write_bytes(buf.getvalue())
    with pytest.raises(BadInput) as err:
        collect_files(load_chart(chart))
    assert_bad_input(err, "escapes the chart folder")


# --------------------------------------------------------------------------
# content_hash and immutable_version
# --------------------------------------------------------------------------


def test_content_hash_is_hex_sha256() -> None:
    src = load_chart(DEMO)
    digest = content_hash(src, collect_files(src))
    assert re.fullmatch(r"[0-9a-f]{64}", digest)


def test_content_hash_ignores_list_order() -> None:
    src = load_chart(DEMO)
    files = collect_files(src)
    assert content_hash(src, files) == content_hash(src, list(reversed(files)))


def test_one_template_changed_changes_hash_and_version(tmp_path: Path) -> None:
    chart = copy_demo(tmp_path)
    before, pkg_before = build(chart)
    path = chart / "templates" / "deployment.yaml"
    path.write_text(path.read_text().replace("replicas:", "replicas: "))
    after, pkg_after = build(chart)
    assert before != after
    assert pkg_before.version != pkg_after.version
    assert pkg_before.tarball != pkg_after.tarball


def test_renaming_a_file_changes_hash(tmp_path: Path) -> None:
    chart = copy_demo(tmp_path)
    before, _ = build(chart)
    (chart / "files" / "hook.sh").rename(chart / "files" / "hook2.sh")
    after, _ = build(chart)
    assert before != after


def test_chart_yaml_comment_is_content(tmp_path: Path) -> None:
    chart = copy_demo(tmp_path)
    before, _ = build(chart)
    with (chart / "Chart.yaml").open("a") as f:
        f.write("# trailing comment\n")
    after, _ = build(chart)
    assert before != after


def test_ignored_file_does_not_change_hash(tmp_path: Path) -> None:
    chart = copy_demo(tmp_path)
    before, pkg_before = build(chart)
    (chart / "docs" / "guide.md").write_text("rewritten\n")
    (chart / "templates" / ".scratch.yaml").write_text("rewritten\n")
    after, pkg_after = build(chart)
    assert before == after
    assert pkg_before.tarball == pkg_after.tarball


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("0.0.1", "0.0.1-c0123456789"),
        ("1.0.3", "1.0.3-c0123456789"),
        ("1.0.0-rc5.1", "1.0.0-rc5.1.c0123456789"),
        ("2.0.0-alpha", "2.0.0-alpha.c0123456789"),
    ],
)
def test_immutable_version(base: str, expected: str) -> None:
    digest = "0123456789" + "ab" * 27
    version = immutable_version(base, digest)
    assert version == expected
    assert semver.Version.is_valid(version)
    assert TAG_RE.match(version)
    ident = version.rsplit(".", 1)[-1] if "-c" not in version else version.split("-", 1)[1]
    assert ident[0].isalpha()
    # A prerelease of the base version: it sorts before it.
    assert semver.Version.parse(version) < semver.Version.parse(base.split("-")[0])


@pytest.mark.parametrize("digest", ["0" * 64, "f" * 64, "9" * 64, "1234567890" + "0" * 54])
def test_immutable_version_identifier_starts_with_a_letter(digest: str) -> None:
    version = immutable_version("0.1.0", digest)
    prerelease = semver.Version.parse(version).prerelease
    assert prerelease is not None
    assert prerelease == "c" + digest[:10]
    assert TAG_RE.match(version)


def test_immutable_version_refuses_bad_input() -> None:
    good = "a" * 64
    for base in ("1.0.0+meta", "1.0", "v1.0.0"):
        with pytest.raises(BadInput):
            immutable_version(base, good)
    for digest in ("abc", "A" * 64, "g" * 64):
        with pytest.raises(BadInput):
            immutable_version("1.0.0", digest)
    with pytest.raises(BadInput) as err:
        immutable_version("1.0.0-" + "x" * 120, good)
    assert "OCI tag" in err.value.message


# --------------------------------------------------------------------------
# package_chart
# --------------------------------------------------------------------------


def test_package_shape() -> None:
    digest, pkg = build(DEMO)
    assert pkg.name == "demo"
    assert pkg.version == f"0.1.0-c{digest[:10]}"
    assert pkg.filename == f"demo-{pkg.version}.tgz"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", pkg.digest)
    infos = members(pkg.tarball)
    names = [m.name for m in infos]
    assert names[0] == "demo/Chart.yaml"
    assert {n.removeprefix("demo/") for n in names} == DEMO_FILES
    assert len(names) == len(set(names))
    for m in infos:
        assert m.isreg(), m.name  # no directory entries, no links
        assert m.mode == 0o644, m.name  # even files/hook.sh (helm drops +x)
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", ""), m.name
        assert m.mtime == chartpkg.FIXED_MTIME
        assert m.pax_headers == {}, m.name


def test_entry_order_follows_helm() -> None:
    _, pkg = build(DEMO)
    names = [m.name.removeprefix("demo/") for m in members(pkg.tarball)]
    assert names == [
        "Chart.yaml",
        "Chart.lock",
        "values.yaml",
        "values.schema.json",
        "templates/NOTES.txt",
        "templates/_helpers.tpl",
        "templates/deployment.yaml",
        ".helmignore",
        "README.md",
        "files/bom.yaml",
        "files/ci-values.yaml",
        "files/hook.sh",
        "charts/common/Chart.yaml",
        "charts/common/templates/.gitkeep",
        "charts/common/templates/_labels.tpl",
        "charts/common/.helmignore",
        "charts/common/README.md",
        "charts/redis-lite/Chart.yaml",
        "charts/redis-lite/values.yaml",
        "charts/redis-lite/templates/service.yaml",
    ]


def test_gzip_header_is_fixed() -> None:
    _, pkg = build(DEMO)
    header = pkg.tarball[:10]
    assert header[:3] == b"\x1f\x8b\x08"
    assert header[3] == 0  # no FNAME, FCOMMENT, FEXTRA, FHCRC
    assert header[4:8] == b"\x00\x00\x00\x00"  # mtime 0
    assert header[8] == 2  # XFL: best compression
    assert header[9] == 255  # OS unknown, as helm writes it
    assert gzip.decompress(pkg.tarball)  # CRC and length trailer are valid


def test_chart_yaml_in_package_only_changes_version() -> None:
    _, pkg = build(DEMO)
    packaged = read_member(pkg.tarball, "demo/Chart.yaml")
    original = (DEMO / "Chart.yaml").read_bytes()
    assert yaml.safe_load(packaged) == {**yaml.safe_load(original), "version": pkg.version}
    diff = [
        line
        for line in difflib.unified_diff(
            original.decode().splitlines(), packaged.decode().splitlines(), n=0, lineterm=""
        )
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    ]
    assert diff == ["-version: 0.1.0", f"+version: {pkg.version}"]
    # Subcharts keep their own versions.
    redis = yaml.safe_load(read_member(pkg.tarball, "demo/charts/redis-lite/Chart.yaml"))
    assert redis["version"] == "0.3.0"


def test_other_files_are_byte_identical() -> None:
    src = load_chart(DEMO)
    files = collect_files(src)
    pkg = package_chart(src, files, "0.1.0-ctest")
    for f in files:
        if f.path != "Chart.yaml":
            assert read_member(pkg.tarball, f"demo/{f.path}") == f.data, f.path


def test_config_json() -> None:
    _, pkg = build(DEMO)
    config = pkg.chart_yaml_json
    parsed = json.loads(config)
    assert parsed == {**yaml.safe_load((DEMO / "Chart.yaml").read_bytes()), "version": pkg.version}
    assert parsed == pkg.metadata
    assert config == json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()


def test_package_twice_is_identical() -> None:
    digest1, pkg1 = build(DEMO)
    digest2, pkg2 = build(DEMO)
    assert digest1 == digest2
    assert pkg1 == pkg2
    assert pkg1.tarball == pkg2.tarball


def test_determinism_across_mtimes_modes_and_creation_order(tmp_path: Path) -> None:
    digest_a, pkg_a = build(DEMO)

    # Copy file by file in reverse order, with other mtimes and permissions.
    other = tmp_path / "elsewhere" / "demo"
    sources = sorted(p for p in DEMO.rglob("*") if p.is_file())
    for i, path in enumerate(reversed(sources)):
        dest = other / path.relative_to(DEMO)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(path.read_bytes())
        dest.chmod(0o600 if i % 2 else 0o755)
        os.utime(dest, (1_000_000_000 + 7919 * i, 1_500_000_000 + 104_729 * i))
    for i, d in enumerate(sorted(p for p in other.rglob("*") if p.is_dir())):
        os.utime(d, (2_000_000_000 - i, 2_000_000_000 - i))

    digest_b, pkg_b = build(other)
    assert digest_a == digest_b
    assert pkg_a.version == pkg_b.version
    assert pkg_a.tarball == pkg_b.tarball
    assert pkg_a.chart_yaml_json == pkg_b.chart_yaml_json

    # Touch everything in place again: still identical.
    for path in other.rglob("*"):
        os.utime(path, (123, 456), follow_symlinks=False)
    assert build(other)[1].tarball == pkg_a.tarball


def test_mtime_parameter(tmp_path: Path) -> None:
    src = load_chart(DEMO)
    files = collect_files(src)
    pkg = package_chart(src, files, "0.1.0-cabc", mtime=1_700_000_000)
    assert {m.mtime for m in members(pkg.tarball)} == {1_700_000_000}
    assert pkg.tarball != package_chart(src, files, "0.1.0-cabc").tarball
    for bad in (-1, 8**11):
        with pytest.raises(BadInput):
            package_chart(src, files, "0.1.0-cabc", mtime=bad)


def test_package_refuses_bad_versions() -> None:
    src = load_chart(DEMO)
    files = collect_files(src)
    for version in ("0.1.0+abc", "0.1", "0.1.0-01", ""):
        with pytest.raises(BadInput):
            package_chart(src, files, version)


def test_package_refuses_a_foreign_file_list(tmp_path: Path) -> None:
    src = load_chart(DEMO)
    other = simple_chart(tmp_path / "c", name="other")
    with pytest.raises(BadInput) as err:
        package_chart(src, collect_files(load_chart(other)), "1.0.0")
    assert "'other'" in err.value.message
    with pytest.raises(BadInput):
        package_chart(src, [ChartFile("values.yaml", b"")], "1.0.0")


def test_long_and_non_ascii_names_without_time_records(tmp_path: Path) -> None:
    chart = simple_chart(tmp_path / "c")
    long_rel = "files/" + "/".join(["d" * 40] * 3) + "/name.txt"
    (chart / long_rel).parent.mkdir(parents=True)
    (chart / long_rel).write_text("deep\n")
    (chart / "files" / "caf\u00e9.txt").write_text("unicode\n")
    _, pkg = build(chart)
    by_name = {m.name: m for m in members(pkg.tarball)}
    assert f"simple/{long_rel}" in by_name
    assert "simple/files/caf\u00e9.txt" in by_name
    for m in by_name.values():
        assert set(m.pax_headers) <= {"path"}, m.pax_headers


# --------------------------------------------------------------------------
# with_version
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"name: x\nversion: 1.0.0\n", b"name: x\nversion: 2.0.0-cab\n"),
        (b'name: x\nversion: "1.0.0"\n', b'name: x\nversion: "2.0.0-cab"\n'),
        (b"name: x\nversion: '1.0.0'  # keep me\n", b"name: x\nversion: '2.0.0-cab'  # keep me\n"),
        (
            b"name: x\r\nversion:   1.0.0\r\nz: 1\r\n",
            b"name: x\r\nversion:   2.0.0-cab\r\nz: 1\r\n",
        ),
        (
            b"name: x\nversion: 1.0.0\ndependencies:\n  - name: d\n    version: 1.0.0\n",
            b"name: x\nversion: 2.0.0-cab\ndependencies:\n  - name: d\n    version: 1.0.0\n",
        ),
    ],
)
def test_with_version_edits_one_line(text: bytes, expected: bytes) -> None:
    assert chartpkg.with_version(text, "2.0.0-cab") == expected


@pytest.mark.parametrize(
    "text",
    [
        b"{name: x, version: 1.0.0}\n",
        b"name: x\nversion: >-\n  1.0.0\n",
        b"name: x\nversion: 1.0.0\nversion: 1.0.1\n",
    ],
)
def test_with_version_falls_back_to_reserialising(text: bytes) -> None:
    result = chartpkg.with_version(text, "2.0.0-cab")
    assert yaml.safe_load(result) == {**yaml.safe_load(text), "version": "2.0.0-cab"}


def test_helm_order_places_subcharts_last_sorted_by_name() -> None:
    paths = [
        "charts/zeta/Chart.yaml",
        "charts/alpha/Chart.yaml",
        "charts/alpha/values.yaml",
        "charts/x.tgz.prov",
        "README.md",
        "templates/a.yaml",
        "values.yaml",
        "Chart.yaml",
        "a-b/x",
        "a/x",
    ]
    assert chartpkg.helm_order(paths) == [
        "Chart.yaml",
        "values.yaml",
        "templates/a.yaml",
        "README.md",
        "a/x",  # walk order: per-directory names, "a" before "a-b"
        "a-b/x",
        "charts/x.tgz.prov",
        "charts/alpha/Chart.yaml",
        "charts/alpha/values.yaml",
        "charts/zeta/Chart.yaml",
    ]
