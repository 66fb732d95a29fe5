"""Pure parts of steps.controlplane: source references, the manifest graph, OCI layouts,
.dockerignore semantics, build-context assembly and the engine's message streams."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from steps.controlplane import build as cp_build
from steps.controlplane import context as cp_context
from steps.controlplane import dockerignore as cp_dockerignore
from steps.controlplane import engine as cp_engine
from steps.controlplane import graph as cp_graph
from steps.controlplane import sources as cp_sources
from steps.errors import BadInput, ReleaseError
from steps.oci import mediatypes as mt
from steps.oci.errors import AuthError, DigestMismatch, TransientRegistryError
from steps.oci.model import Manifest
from steps.oci.reference import Digest
from tests.helpers import cli

# -- helpers --------------------------------------------------------------------


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def image_manifest(config: bytes, *layers: bytes, media_type: str = mt.OCI_MANIFEST) -> bytes:
    body = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(config, "application/vnd.oci.image.config.v1+json"),
        "layers": [descriptor(x, "application/vnd.oci.image.layer.v1.tar") for x in layers],
    }
    return json.dumps(body).encode()


def index_manifest(*children: tuple[bytes, str], media_type: str = mt.OCI_INDEX) -> bytes:
    manifests = [
        descriptor(data, mt.OCI_MANIFEST, platform={"os": "linux", "architecture": arch})
        for data, arch in children
    ]
    return json.dumps(
        {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    ).encode()


class FakeSource:
    """An in-memory :class:`steps.controlplane.ImageSource` (manifests only)."""

    def __init__(self, root: bytes, *others: bytes) -> None:
        self._root = root
        self.store = {digest_of(d): d for d in (root, *others)}
        self.reads: list[str] = []

    name = "fake/source:1"
    mount_from = None

    def root(self) -> Manifest:
        return self._manifest(digest_of(self._root))

    def manifest(self, digest: Digest, media_type: str | None) -> Manifest:
        return self._manifest(str(digest))

    def _manifest(self, digest: str) -> Manifest:
        self.reads.append(digest)
        data = self.store[digest]
        media_type = cp_graph.manifest_media_type(data, None, digest)
        return Manifest(data, media_type, Digest.parse(digest))

    @contextlib.contextmanager
    def open_blob(self, blob: cp_graph.Blob, workdir: Path) -> Iterator[Path]:
        raise AssertionError("walk must not read blobs")
        yield workdir


# -- source references ------------------------------------------------------------------

HEX = "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("oci-layout:/tmp/out", cp_sources.LayoutSourceSpec(Path("/tmp/out"))),
        ("oci-layout:/tmp/out:v1", cp_sources.LayoutSourceSpec(Path("/tmp/out"), "v1")),
        ("oci-layout:./out:latest", cp_sources.LayoutSourceSpec(Path("out"), "latest")),
        (
            f"oci-layout:/tmp/out@sha256:{HEX}",
            cp_sources.LayoutSourceSpec(Path("/tmp/out"), digest=Digest("sha256", HEX)),
        ),
        ("oci-layout:/a:b/out", cp_sources.LayoutSourceSpec(Path("/a:b/out"))),
    ],
)
def test_parse_layout_sources(text: str, expected: cp_sources.LayoutSourceSpec) -> None:
    assert cp_sources.parse_source(text) == expected


def test_parse_registry_sources() -> None:
    spec = cp_sources.parse_source("registry.example.com:5000/ci/control-plane:build-1")
    assert isinstance(spec, cp_sources.RegistrySourceSpec)
    assert spec.reference.registry == "registry.example.com:5000"
    assert spec.reference.repository == "ci/control-plane"
    assert spec.reference.tag == "build-1"
    spec = cp_sources.parse_source(f"ghcr.io/nine-minds/cp@sha256:{HEX}")
    assert isinstance(spec, cp_sources.RegistrySourceSpec)
    assert spec.reference.digest == Digest("sha256", HEX)


@pytest.mark.parametrize(
    "text",
    [
        "control-plane:latest",  # no registry host
        "ghcr.io/nine-minds/cp",  # neither tag nor digest
        "oci-layout:/tmp/out@sha256:short",
        "oci-layout:/tmp/out:bad+tag",
        "oci-layout::v1",
    ],
)
def test_bad_sources_are_bad_input(text: str) -> None:
    with pytest.raises(BadInput) as caught:
        cp_sources.parse_source(text)
    assert repr(text)[1:-1] in caught.value.message


def test_source_credentials_from_their_own_variables() -> None:
    assert cp_sources.source_credentials({}) is None
    creds = cp_sources.source_credentials(
        {"ALGA_SOURCE_REGISTRY_USERNAME": "ci", "ALGA_SOURCE_REGISTRY_PASSWORD": "s3cret-pw"}
    )
    assert creds is not None and creds.username == "ci" and creds.password == "s3cret-pw"
    with pytest.raises(BadInput, match="ALGA_SOURCE_REGISTRY_PASSWORD is not set"):
        cp_sources.source_credentials({"ALGA_SOURCE_REGISTRY_USERNAME": "ci"})


# -- the manifest graph --------------------------------------------------------------------


def test_walk_an_index_orders_children_first_and_lists_each_blob_once() -> None:
    shared_layer = b"layer shared by both platforms"
    amd = image_manifest(b'{"architecture":"amd64"}', shared_layer, b"amd64 layer")
    arm = image_manifest(b'{"architecture":"arm64"}', shared_layer)
    index = index_manifest((amd, "amd64"), (arm, "arm64"), (amd, "amd64"))
    graph = cp_graph.walk(FakeSource(index, amd, arm))
    assert [m.digest for m in graph.manifests] == [
        Digest.parse(digest_of(amd)),
        Digest.parse(digest_of(arm)),
        Digest.parse(digest_of(index)),
    ]
    assert graph.root.digest == Digest.parse(digest_of(index))
    assert graph.platforms == ("linux/amd64", "linux/arm64")
    assert [str(b.digest) for b in graph.blobs] == [
        digest_of(b'{"architecture":"amd64"}'),
        digest_of(shared_layer),
        digest_of(b"amd64 layer"),
        digest_of(b'{"architecture":"arm64"}'),
    ]


def test_walk_a_docker_v2_image() -> None:
    manifest = image_manifest(b"{}", b"layer", media_type=mt.DOCKER_MANIFEST)
    graph = cp_graph.walk(FakeSource(manifest))
    assert graph.root.media_type == mt.DOCKER_MANIFEST
    assert len(graph.blobs) == 2 and graph.platforms == ()


def test_walk_refuses_schema1_and_unknown_media_types() -> None:
    schema1 = json.dumps({"schemaVersion": 1, "name": "x", "fsLayers": []}).encode()
    with pytest.raises(cp_graph.UnsupportedImage, match="schema 1") as caught:
        cp_graph.walk(FakeSource(schema1))
    assert caught.value.hint is not None and "skopeo copy --format v2s2" in caught.value.hint
    helm = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.cncf.helm.x"}).encode()
    with pytest.raises(cp_graph.UnsupportedImage, match="not an image or an index"):
        cp_graph.walk(FakeSource(helm))


def test_walk_refuses_a_child_whose_size_differs_from_the_index() -> None:
    child = image_manifest(b"{}", b"layer")
    body = json.loads(index_manifest((child, "amd64")))
    body["manifests"][0]["size"] += 1
    index = json.dumps(body).encode()
    with pytest.raises(DigestMismatch, match="the index says"):
        cp_graph.walk(FakeSource(index, child))


def test_walk_refuses_malformed_descriptors() -> None:
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": {"digest": "md5:x"}}
    ).encode()
    with pytest.raises(cp_graph.UnsupportedImage):
        cp_graph.walk(FakeSource(manifest))


# -- OCI image layouts ----------------------------------------------------------------------


def write_layout(root: Path, entries: list[tuple[bytes, str, str | None]], *blobs: bytes) -> Path:
    """A layout holding ``blobs`` and the manifests of ``entries`` (data, type, tag)."""
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = []
    for data in [*blobs, *(e[0] for e in entries)]:
        (root / "blobs" / "sha256" / digest_of(data).split(":")[1]).write_bytes(data)
    for data, media_type, tag in entries:
        entry = descriptor(data, media_type)
        if tag:
            entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
        index.append(entry)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": index}))
    return root


def test_layout_source_selects_by_tag_digest_or_the_only_entry(tmp_path: Path) -> None:
    one = image_manifest(b"{}", b"one")
    two = image_manifest(b"{}", b"two")
    layout = write_layout(
        tmp_path / "l", [(one, mt.OCI_MANIFEST, "v1"), (two, mt.OCI_MANIFEST, "v2")], b"{}"
    )
    by_tag = cp_sources.LayoutSource(cp_sources.LayoutSourceSpec(layout, "v2")).root()
    assert by_tag.data == two and by_tag.media_type == mt.OCI_MANIFEST
    by_digest = cp_sources.LayoutSource(
        cp_sources.LayoutSourceSpec(layout, digest=Digest.parse(digest_of(one)))
    ).root()
    assert by_digest.data == one
    with pytest.raises(BadInput, match=r"lists 2 manifests.*tags: v1, v2"):
        cp_sources.LayoutSource(cp_sources.LayoutSourceSpec(layout)).root()
    with pytest.raises(BadInput, match=r"no manifest tagged 'v3'.*tags: v1, v2"):
        cp_sources.LayoutSource(cp_sources.LayoutSourceSpec(layout, "v3")).root()
    only = write_layout(tmp_path / "only", [(one, mt.OCI_MANIFEST, None)])
    assert cp_sources.LayoutSource(cp_sources.LayoutSourceSpec(only)).root().data == one


def test_layout_blobs_are_verified(tmp_path: Path) -> None:
    config, layer = b"{}", b"layer bytes"
    manifest = image_manifest(config, layer)
    layout = write_layout(tmp_path / "l", [(manifest, mt.OCI_MANIFEST, "v1")], config, layer)
    source = cp_sources.LayoutSource(cp_sources.LayoutSourceSpec(layout, "v1"))
    blob = cp_graph.Blob(Digest.parse(digest_of(layer)), len(layer), "x")
    with source.open_blob(blob, tmp_path) as path:
        assert path.read_bytes() == layer
    (layout / "blobs" / "sha256" / blob.digest.hex).write_bytes(b"LAYER BYTES")
    with (
        pytest.raises(DigestMismatch, match="does not match its digest"),
        source.open_blob(blob, tmp_path),
    ):
        pass
    (layout / "blobs" / "sha256" / blob.digest.hex).unlink()
    with pytest.raises(BadInput, match="not in the layout"), source.open_blob(blob, tmp_path):
        pass


def test_a_corrupted_layout_manifest_is_refused(tmp_path: Path) -> None:
    manifest = image_manifest(b"{}", b"layer")
    layout = write_layout(tmp_path / "l", [(manifest, mt.OCI_MANIFEST, "v1")])
    path = layout / "blobs" / "sha256" / digest_of(manifest).split(":")[1]
    path.write_bytes(manifest.replace(b"layer", b"LAYER"))
    with pytest.raises(DigestMismatch, match="does not match its digest"):
        cp_sources.LayoutSource(cp_sources.LayoutSourceSpec(layout, "v1")).root()


def test_not_a_layout(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="is not a folder"):
        cp_sources.LayoutSource(cp_sources.LayoutSourceSpec(tmp_path / "missing")).root()
    with pytest.raises(BadInput, match="oci-layout is missing") as caught:
        cp_sources.LayoutSource(cp_sources.LayoutSourceSpec(tmp_path)).root()
    assert caught.value.hint is not None and "oci:PATH:TAG" in caught.value.hint


# -- .dockerignore ------------------------------------------------------------------------

# (pattern, path, excluded): cases from moby's patternmatcher tests, which define
# the semantics the Docker CLI applies to a build context.
MOBY_CASES = [
    ("**", "file", True),
    ("**", "dir/file", True),
    ("**/", "dir/file", True),
    ("**/**", "dir/file", True),
    ("dir/**", "dir/file", True),
    ("dir/**", "dir/dir2/file", True),
    ("**/dir", "dir", True),
    ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**file", "file", True),
    ("**file", "dir/file", True),
    ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True),
    ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True),
    ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True),
    ("**/**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True),
    ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False),
    ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True),
    (".*", ".foo", True),
    (".*", "foo", False),
    ("abc.def", "abcdef", False),
    ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False),
    ("abc?def", "abcZdef", True),
    ("abc?def", "abcdef", False),
    ("a\\\\", "a\\", True),
    ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True),
    ("abc/**", "abc", False),
    ("abc/**", "abc/def", True),
    ("abc/**", "abc/def/ghi", True),
    ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False),
    ("a.\\|b", "a.|b", True),
    # Docker, unlike .gitignore, matches from the context root ...
    ("*.md", "README.md", True),
    ("*.md", "docs/README.md", False),
    # ... and a matching folder excludes everything below it.
    ("node_modules", "node_modules/x/index.js", True),
    ("server/node_modules", "server/node_modules/x.js", True),
    ("node_modules", "server/node_modules/x.js", False),
]


@pytest.mark.parametrize(("pattern", "path", "excluded"), MOBY_CASES)
def test_dockerignore_patterns_match_like_docker(pattern: str, path: str, excluded: bool) -> None:
    assert cp_dockerignore.IgnoreMatcher([pattern]).excluded(path) is excluded


def test_dockerignore_exceptions_and_order() -> None:
    matcher = cp_dockerignore.IgnoreMatcher(
        ["docs", "!docs/keep.txt", "*.md", "!README.md", "README-x.md"]
    )
    assert matcher.excluded("docs/guide.txt")
    assert not matcher.excluded("docs/keep.txt")
    assert matcher.excluded("CHANGES.md")
    assert not matcher.excluded("README.md")
    assert matcher.excluded("README-x.md")


def test_read_dockerignore_cleans_like_the_docker_cli() -> None:
    text = "\ufeff# comment\n  \n./a//b/\n/rooted\n! ./keep/\n  spaced  \n #not-a-comment\n"
    assert cp_dockerignore.read_dockerignore(text) == [
        "a/b",
        "rooted",
        "!keep",
        "spaced",
        "#not-a-comment",
    ]


def test_an_invalid_pattern_is_bad_input() -> None:
    with pytest.raises(BadInput, match="invalid"):
        cp_dockerignore.IgnoreMatcher(["a[b"])


# -- build context -------------------------------------------------------------------------


# A cut of alga-psa's own root .dockerignore, exceptions included.
ALGA_DOCKERIGNORE = """\
# Version control
.git
node_modules
**/node_modules
**/dist
!shared/dist
!shared/dist/**
!packages/core/dist/**
.env
Dockerfile
.dockerignore
docs
tests
"""


def make_checkout(root: Path) -> Path:
    """An alga-psa-like checkout: the context is its root, as alga-psa builds it."""
    files = {
        ".dockerignore": ALGA_DOCKERIGNORE,
        "ee/appliance/control-plane/Dockerfile": "FROM scratch\nCOPY ee/appliance /opt/\n",
        "ee/appliance/host-service/server.mjs": "x",
        "ee/appliance/host-service/node_modules/a/index.js": "x",
        "ee/appliance/status-ui/dist/index.html": "x",
        "ee/appliance/docs/notes.md": "x",
        "node_modules/b/index.js": "x",
        "shared/dist/index.js": "x",
        "shared/src/index.ts": "x",
        ".git/HEAD": "x",
        ".env": "x",
        "docs/guide.md": "x",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "empty").mkdir()
    os.symlink("ee/appliance/host-service/server.mjs", root / "link.mjs")
    os.symlink("/etc", root / "etc-link")
    return root


def test_assemble_context_honours_dockerignore_and_always_sends_the_dockerfile(
    tmp_path: Path,
) -> None:
    source = make_checkout(tmp_path / "alga-psa")
    context_dir, dockerfile = cp_context.resolve_build_paths(source)
    assert context_dir == source.resolve()
    context = cp_context.assemble_context(context_dir, dockerfile)
    assert context.dockerfile_name == "ee/appliance/control-plane/Dockerfile"
    assert context.entries == (
        ".dockerignore",
        "ee",
        "ee/appliance",
        "ee/appliance/control-plane",
        "ee/appliance/control-plane/Dockerfile",
        "ee/appliance/docs",
        "ee/appliance/docs/notes.md",
        "ee/appliance/host-service",
        "ee/appliance/host-service/server.mjs",
        "ee/appliance/status-ui",
        "empty",
        "etc-link",
        "link.mjs",
        "shared",
        "shared/dist",
        "shared/dist/index.js",
        "shared/src",
        "shared/src/index.ts",
    )
    buffer = io.BytesIO()
    assert context.write_tar(buffer) == len(context.entries)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["etc-link"].issym() and members["etc-link"].linkname == "/etc"
        assert members["link.mjs"].issym()
        assert members["empty"].isdir()
        assert all(m.uid == 0 and m.gid == 0 and not m.uname for m in members.values())
        extracted = tar.extractfile("ee/appliance/host-service/server.mjs")
        assert extracted is not None and extracted.read() == b"x"


def test_excluded_folders_are_not_walked_unless_an_exception_may_reach_inside() -> None:
    matcher = cp_dockerignore.IgnoreMatcher(cp_dockerignore.read_dockerignore(ALGA_DOCKERIGNORE))
    assert matcher.excluded("node_modules") and not matcher.may_reinclude_below("node_modules")
    assert not matcher.excluded("shared/dist")  # re-included by !shared/dist
    core = "packages/core/dist"
    assert matcher.excluded(core) and matcher.may_reinclude_below(core)
    assert not matcher.excluded(f"{core}/index.js")
    assert matcher.excluded("web/dist") and not matcher.may_reinclude_below("web/dist")


def test_a_dockerfile_outside_the_context_is_sent_under_a_fixed_name(tmp_path: Path) -> None:
    source = make_checkout(tmp_path / "alga-psa")
    context_dir, dockerfile = cp_context.resolve_build_paths(
        source, "ee/appliance/host-service", "ee/appliance/control-plane/Dockerfile"
    )
    context = cp_context.assemble_context(context_dir, dockerfile)
    assert context.dockerfile_name == cp_context.EXTERNAL_DOCKERFILE
    buffer = io.BytesIO()
    context.write_tar(buffer)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        extracted = tar.extractfile(cp_context.EXTERNAL_DOCKERFILE)
        assert extracted is not None and extracted.read().startswith(b"FROM scratch")
        # No .dockerignore in this context: everything in it is sent, nothing outside.
        assert sorted(tar.getnames()) == sorted(
            [
                cp_context.EXTERNAL_DOCKERFILE,
                "server.mjs",
                "node_modules",
                "node_modules/a",
                "node_modules/a/index.js",
            ]
        )


def test_build_paths_errors_name_the_path_and_the_flag(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not a folder"):
        cp_context.resolve_build_paths(tmp_path / "nope")
    with pytest.raises(BadInput, match="nope is not a folder") as caught:
        cp_context.resolve_build_paths(tmp_path, "nope")
    assert caught.value.hint is not None and "--context" in caught.value.hint
    with pytest.raises(
        BadInput, match=r"ee/appliance/control-plane/Dockerfile does not exist"
    ) as caught:
        cp_context.resolve_build_paths(tmp_path)
    assert caught.value.hint is not None and "--dockerfile" in caught.value.hint


def test_parse_build_args() -> None:
    assert cp_build.parse_build_args(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(BadInput, match="KEY=VALUE"):
        cp_build.parse_build_args(["nope"])


# -- engine streams -------------------------------------------------------------------------

PUSHED = "sha256:" + "b" * 64


def test_follow_build_returns_the_image_id_and_raises_on_errors() -> None:
    events: list[cp_engine.Event] = [
        {"stream": "STEP 1/2: FROM scratch\n"},
        {"aux": {"ID": "sha256:abc"}},
    ]
    assert cp_engine.follow_build(events, "cp") == "sha256:abc"
    with pytest.raises(cp_engine.EngineError, match="building cp failed: COPY failed"):
        cp_engine.follow_build([{"stream": "x"}, {"errorDetail": {"message": "COPY failed"}}], "cp")


def test_follow_push_reads_dockerd_and_podman_digests() -> None:
    dockerd: list[cp_engine.Event] = [
        {"status": "Pushed", "id": "abc"},
        {"status": f"v1: digest: {PUSHED} size: 528"},
        {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": PUSHED, "Size": 528}},
    ]
    assert str(cp_engine.follow_push(dockerd, "cp:v1")) == PUSHED
    podman = [{"status": f"v1: digest: {PUSHED} size: 420"}]
    assert str(cp_engine.follow_push(podman, "cp:v1")) == PUSHED
    with pytest.raises(cp_engine.EngineError, match="reported no digest"):
        cp_engine.follow_push([{"status": "The push refers to repository [x]"}], "cp:v1")


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("denied: requested access to the resource is denied", AuthError),
        ("unauthorized: authentication required", AuthError),
        ("received unexpected HTTP status: 503 Service Unavailable", TransientRegistryError),
        ("toomanyrequests: slow down", TransientRegistryError),
        ("manifest invalid", cp_engine.EngineError),
    ],
)
def test_push_errors_are_classified(message: str, error: type[ReleaseError]) -> None:
    with pytest.raises(error) as caught:
        cp_engine.follow_push([{"error": message, "errorDetail": {"message": message}}], "cp:v1")
    assert "cp:v1" in caught.value.message and message in caught.value.message


# -- command line -----------------------------------------------------------------------------


def test_cli_refuses_bad_input_before_any_network(tmp_path: Path) -> None:
    bad_ref = cli(["control-plane", "copy", "no-registry:1", "--tag", "1.0.0", "--json"])
    assert bad_ref.code == 2 and bad_ref.json()["error"] == "BadInput"
    bad_tag = cli(
        ["control-plane", "copy", f"oci-layout:{tmp_path}", "--tag", "1.0+build", "--json"]
    )
    assert bad_tag.code == 2, bad_tag.stderr
    assert "OCI tags cannot hold '+'" in bad_tag.json()["hint"]
    no_context = cli(["control-plane", "build", "--source", str(tmp_path), "--tag", "t", "--json"])
    assert no_context.code == 2 and "--dockerfile" in no_context.json()["hint"]


def test_dry_run_env_reaches_control_plane_copy_and_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Argo passes dry-run as ALGA_DRY_RUN so the argument lists stay fixed."""
    from steps.cli.app import build_parser

    monkeypatch.setenv("ALGA_DRY_RUN", "true")
    build = build_parser().parse_args(
        ["control-plane", "build", "--source", str(tmp_path), "--tag", "3f2a1b0"]
    )
    copy = build_parser().parse_args(
        ["control-plane", "copy", "127.0.0.1:1/x/y:1", "--tag", "3f2a1b0"]
    )
    assert build.dry_run is True and copy.dry_run is True
    monkeypatch.setenv("ALGA_DRY_RUN", "false")
    assert (
        build_parser()
        .parse_args(["control-plane", "build", "--source", str(tmp_path), "--tag", "3f2a1b0"])
        .dry_run
        is False
    )
