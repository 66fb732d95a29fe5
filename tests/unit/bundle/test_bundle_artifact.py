"""The Flux artifact bytes (steps.bundle_artifact) and the overlay reader (steps.bundle)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from steps.bundle.artifact import (
    FLUX_2_9_CONFIG,
    annotations_for,
    build_artifact,
    clean_source_url,
    flux_config,
    go_json,
    gzip_bytes,
    pack_tar,
    parse_revision,
    tar_files,
    unified_diff,
)
from steps.bundle.publish import check_release_version, read_overlay
from steps.errors import BadInput
from steps.oci import mediatypes as mt
from steps.oci.reference import Digest

FILES = {
    "base/kustomization.yaml": b"resources: []\n",
    "base-extra/x.yaml": b"a: 1\n",
    "README.md": b"# hi\n",
    "base/releases/a.yaml": b"kind: A\n",
    "base.yaml": b"b: 2\n",
    "profiles/single-node/values/x.yaml": b"c: 3\n",
}
ANNOTATIONS = annotations_for(
    "2024-05-06T07:08:09Z", "https://github.com/Nine-Minds/alga-psa", "main@sha1:" + "a" * 40
)


def test_tar_layout_is_flux_walk_order_with_sanitised_headers() -> None:
    tar = pack_tar(FILES)
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        members = archive.getmembers()
    # Go's filepath.Walk: names sorted per folder, a folder before its contents
    assert [(m.name, m.type) for m in members] == [
        ("README.md", tarfile.REGTYPE),
        ("base", tarfile.DIRTYPE),
        ("base/kustomization.yaml", tarfile.REGTYPE),
        ("base/releases", tarfile.DIRTYPE),
        ("base/releases/a.yaml", tarfile.REGTYPE),
        ("base-extra", tarfile.DIRTYPE),
        ("base-extra/x.yaml", tarfile.REGTYPE),
        ("base.yaml", tarfile.REGTYPE),
        ("profiles", tarfile.DIRTYPE),
        ("profiles/single-node", tarfile.DIRTYPE),
        ("profiles/single-node/values", tarfile.DIRTYPE),
        ("profiles/single-node/values/x.yaml", tarfile.REGTYPE),
    ]
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
        assert m.mode == (0o755 if m.isdir() else 0o644)
        assert not m.name.startswith(("/", "./")) and ".." not in m.name.split("/")
        assert not m.pax_headers
    assert tar_files(gzip_bytes(tar)) == FILES


def test_same_files_in_any_order_give_the_same_bytes() -> None:
    reordered = dict(reversed(list(FILES.items())))
    a, b = build_artifact(FILES, ANNOTATIONS), build_artifact(reordered, ANNOTATIONS)
    assert (a.tarball, a.config, a.manifest) == (b.tarball, b.config, b.manifest)
    changed = build_artifact({**FILES, "base.yaml": b"b: 3\n"}, ANNOTATIONS)
    assert changed.digest != a.digest


def test_gzip_header_is_fixed_and_standard() -> None:
    data = gzip_bytes(b"x" * 1000)
    assert data[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    assert gzip.decompress(data) == b"x" * 1000


def test_config_is_go_containerregistrys_empty_image_with_one_layer() -> None:
    tar = pack_tar(FILES)
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    assert (
        flux_config(Digest.parse(diff_id))
        == (
            '{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":'
            '"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["'
            + diff_id
            + '"]},"config":{}}'
        ).encode()
    )


def test_manifest_shape_media_types_and_annotations() -> None:
    artifact = build_artifact(FILES, ANNOTATIONS)
    text = artifact.manifest.decode()
    manifest = json.loads(text)
    assert list(manifest) == ["schemaVersion", "mediaType", "config", "layers", "annotations"]
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert "artifactType" not in manifest
    assert manifest["config"] == {
        "mediaType": "application/vnd.cncf.flux.config.v1+json",
        "size": len(artifact.config),
        "digest": str(Digest.of(artifact.config)),
    }
    assert list(manifest["config"]) == ["mediaType", "size", "digest"]
    assert manifest["layers"] == [
        {
            "mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip",
            "size": len(artifact.tarball),
            "digest": str(Digest.of(artifact.tarball)),
        }
    ]
    assert manifest["annotations"] == {
        "org.opencontainers.image.created": "2024-05-06T07:08:09Z",
        "org.opencontainers.image.revision": "main@sha1:" + "a" * 40,
        "org.opencontainers.image.source": "https://github.com/Nine-Minds/alga-psa",
    }
    assert list(manifest["annotations"]) == sorted(manifest["annotations"])
    assert " " not in text
    assert artifact.digest == Digest.of(artifact.manifest)
    unknown = build_artifact(FILES, annotations_for("1970-01-01T00:00:00Z", None, None))
    assert json.loads(unknown.manifest)["annotations"] == {
        "org.opencontainers.image.created": "1970-01-01T00:00:00Z"
    }


def test_go_json_escapes_like_encoding_json() -> None:
    assert go_json({"a": "x<y>&z\u2028"}) == b'{"a":"x\\u003cy\\u003e\\u0026z\\u2028"}'
    assert go_json({"é": 1}) == '{"é":1}'.encode()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("main@sha1:" + "a" * 40, "main@sha1:" + "a" * 40),
        ("a" * 40, "sha1:" + "a" * 40),
        ("v1.2.3@" + "b" * 40, "v1.2.3@sha1:" + "b" * 40),
        ("feature/x/" + "c" * 40, "feature/x@sha1:" + "c" * 40),
        ("main@sha256:" + "d" * 64, "main@sha256:" + "d" * 64),
        ("sha1:" + "e" * 40, "sha1:" + "e" * 40),
    ],
)
def test_revision_forms(given: str, expected: str) -> None:
    assert parse_revision(given) == expected


@pytest.mark.parametrize("bad", ["main", "main@sha1:abc", "main@sha256:" + "a" * 40, ""])
def test_bad_revisions(bad: str) -> None:
    with pytest.raises(BadInput):
        parse_revision(bad)


def test_source_url_loses_credentials_and_is_the_same_whoever_publishes() -> None:
    assert clean_source_url("https://x:ghp_secret@github.com/o/r.git") == "https://github.com/o/r"
    for remote in (
        "git@github.com:o/r.git",
        "ssh://git@github.com/o/r.git",
        "https://github.com/o/r/",
        "https://github.com/o/r",
    ):
        assert clean_source_url(remote) == "https://github.com/o/r", remote


def test_unified_diff_shows_only_changed_files() -> None:
    after = {**FILES, "base.yaml": b"b: 3\n", "new.yaml": b"n: 1"}
    diff = unified_diff(FILES, after)
    assert diff == (
        "--- a/base.yaml\n+++ b/base.yaml\n@@ -1 +1 @@\n-b: 2\n+b: 3\n"
        "--- /dev/null\n+++ b/new.yaml\n@@ -0,0 +1 @@\n+n: 1\n\\ No newline at end of file\n"
    )
    assert unified_diff(FILES, FILES) == ""


@pytest.mark.parametrize(
    "version", ["1.0.0", "1.4.0-rc.2", "0.0.1-c3f2a1b09d", "10.20.30-alpha.beta.1"]
)
def test_good_release_versions(version: str) -> None:
    assert check_release_version(version) == version


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("1.0.0+build.5", "build metadata"),
        ("1.0-rc5.1", "not a SemVer 2"),
        ("v1.0.0", "not a SemVer 2"),
        ("1.0.0-01", "not a SemVer 2"),
        ("1.0.0-" + "a" * 130, "OCI tag"),
    ],
)
def test_bad_release_versions(version: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        check_release_version(version)


def test_overlay_reader_follows_inner_links_and_applies_flux_ignores(tmp_path: Path) -> None:
    root = tmp_path / "flux"
    (root / "base" / "shared").mkdir(parents=True)
    (root / "base" / "kustomization.yaml").write_text("resources: []\n")
    (root / "base" / "shared" / "x.yaml").write_text("x: 1\n")
    (root / "base" / "alias.yaml").symlink_to("shared/x.yaml")
    (root / "base" / "linked").symlink_to("shared", target_is_directory=True)
    (root / ".gitignore").write_text("*\n")
    (root / "logo.png").write_bytes(b"\x89PNG")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref\n")
    os.utime(root / "base" / "kustomization.yaml", (1, 1))
    files = read_overlay(root)
    assert files == {
        "base/alias.yaml": b"x: 1\n",
        "base/kustomization.yaml": b"resources: []\n",
        "base/linked/x.yaml": b"x: 1\n",
        "base/shared/x.yaml": b"x: 1\n",
    }


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda r: (r / "leak.yaml").symlink_to("/etc/hostname"), "leaves the overlay"),
        (lambda r: (r / "up").symlink_to(".."), "leaves the overlay"),
        (lambda r: (r / "dangling.yaml").symlink_to("nope.yaml"), "dangling or loops"),
        (lambda r: (r / "base" / "loop").symlink_to("..", target_is_directory=True), "contains"),
        (lambda r: os.mkfifo(r / "pipe"), "not a regular file"),
    ],
)
def test_overlay_reader_refusals(tmp_path: Path, make: object, message: str) -> None:
    root = tmp_path / "flux"
    (root / "base").mkdir(parents=True)
    (root / "base" / "kustomization.yaml").write_text("resources: []\n")
    make(root)  # type: ignore[operator]
    with pytest.raises(BadInput, match=message):
        read_overlay(root)


def test_overlay_reader_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        read_overlay(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="holds no files"):
        read_overlay(tmp_path / "empty")


def test_the_git_default_revision_is_the_commit_only(tmp_path: Path) -> None:
    """A branch checkout (workstation) and a detached one (CI) of one commit must give the
    same bundle, so the default revision names the commit alone."""
    import subprocess

    from steps.bundle.publish import git_revision

    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
        "PATH": "/usr/bin:/bin",
    }
    (tmp_path / "f").write_text("x")
    for args in (["init", "-q", "-b", "main"], ["add", "f"], ["commit", "-qm", "c"]):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, env=env)
    on_branch = git_revision(tmp_path)
    subprocess.run(["git", "-C", str(tmp_path), "checkout", "-q", "--detach"], check=True, env=env)
    assert on_branch == git_revision(tmp_path)
    assert on_branch is not None and on_branch.startswith("sha1:") and len(on_branch) == 45


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/o/r.git?access_token=ghp_TOKEN",
        "https://github.com/o/r#ghp_TOKEN",
        "https://x:ghp_TOKEN@github.com/o/r.git?private_token=ghp_TOKEN#ghp_TOKEN",
        "ssh://ghp_TOKEN@github.com/o/r.git?x=ghp_TOKEN",
        "git://github.com/o/r.git#ghp_TOKEN",
        "git@github.com:o/r.git?ghp_TOKEN",
        "HTTPS://GitHub.com/o/r",
    ],
)
def test_source_url_drops_query_fragment_and_userinfo(url: str) -> None:
    assert clean_source_url(url) == "https://github.com/o/r"


def test_source_url_keeps_an_https_port_only() -> None:
    assert clean_source_url("https://git.example:8443/o/r") == "https://git.example:8443/o/r"
    assert clean_source_url("https://git.example:443/o/r") == "https://git.example/o/r"
    assert clean_source_url("ssh://git@git.example:2222/o/r") == "https://git.example/o/r"


@pytest.mark.parametrize(
    ("url", "found"),
    [
        ("http://github.com/o/r?access_token=ghp_TOKEN", "has the scheme 'http'"),
        ("file:///srv/git/r?ghp_TOKEN", "has the scheme 'file'"),
        ("/srv/git/alga-psa", "is not a URL (no scheme)"),
        ("ftp://ghp_TOKEN@host/r", "has the scheme 'ftp'"),
        ("https:///ghp_TOKEN", "has no host"),
    ],
)
def test_other_schemes_are_refused_without_repeating_the_url(url: str, found: str) -> None:
    from steps.errors import UnsafeSourceUrl

    with pytest.raises(UnsafeSourceUrl) as info:
        clean_source_url(url)
    assert info.value.exit_code == 2
    assert found in info.value.message
    assert "ghp_TOKEN" not in info.value.diagnostics()


def test_config_created_stays_zero_whatever_the_created_annotation() -> None:
    # No released flux2 writes the annotation's time into the config (see the module
    # docstring); ours keeps the <= 2.8 form, with the layer's diff ID.
    artifact = build_artifact(FILES, ANNOTATIONS)
    config = json.loads(artifact.config)
    assert ANNOTATIONS[mt.ANNOTATION_CREATED] != "0001-01-01T00:00:00Z"
    assert config["created"] == "0001-01-01T00:00:00Z"
    assert config["history"] == [{"created": "0001-01-01T00:00:00Z"}]
    assert artifact.config == flux_config(Digest.of(artifact.tar))
    assert json.loads(FLUX_2_9_CONFIG) == {
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": None},
        "config": {},
    }
