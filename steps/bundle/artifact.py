"""The Flux config bundle as an OCI artifact, byte for byte (pure).

What ``flux push artifact`` builds (fluxcd/pkg ``oci`` client ``Push``/``build`` and
``tar.Tar``; go-containerregistry ``empty.Image`` + ``mutate``), and what we build:

* **Layer** ``application/vnd.cncf.flux.content.v1.tar+gzip``: a gzip'd tar of the folder.
  Flux walks it with ``filepath.Walk`` (names sorted per folder, a folder before its
  contents), writes a directory entry for every folder and a regular entry for every
  file, named by the path relative to the folder (``/``-separated, no ``./`` prefix; the
  root itself as ``.``), skips symlinks and special files, and zeroes uid, gid, user and
  group names and every time (Go writes a zero time as mtime 0). Ours: the same walk order
  and entries, mode ``0755`` for folders and ``0644`` for files (Flux keeps the file
  system's permission bits), mtime 0, uid/gid 0, empty names, no root ``.`` entry, no
  links (a link inside the overlay is stored as the file it points to, as
  ``flux build artifact --resolve-symlinks`` does; :mod:`steps.bundle` refuses links that
  leave the overlay). Flux's default ignore list (``.git/``, ``.gitignore``,
  ``.gitmodules``, ``.gitattributes``, ``*.jpg``, ``*.jpeg``, ``*.gif``, ``*.png``,
  ``*.wmv``, ``*.flv``, ``*.tar.gz``, ``*.zip``) applies. Gzip: written by hand (mtime 0,
  no name, OS 255, level 9); Go's compress/gzip writes other deflate bytes, so our digest
  is ours alone, but stable for the same files.
* **Config** ``application/vnd.cncf.flux.config.v1+json``: the image config
  go-containerregistry derives from ``empty.Image`` plus one appended layer,
  ``{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":
  "0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["sha256:<sha256
  of the uncompressed tar>"]},"config":{}}``, the same bytes with our tar's diff ID.
  Which Flux wrote which config (read in the sources, and checked against the real flux
  2.9.5 in ``tests/integration/test_flux_oracle.py``):

  - flux2 up to v2.8.x (fluxcd/pkg ``oci`` up to v0.60, go-containerregistry up to
    v0.20.x): the form above, ``created`` Go's zero time. Ours.
  - flux2 v2.9.0 to v2.9.x (fluxcd/pkg ``oci`` v0.68, go-containerregistry v0.21.6):
    fluxcd/pkg ``oci`` v0.67.0 ("oci: set created timestamp in the config") sets the
    config's ``Created`` from the created annotation, but go-containerregistry v0.21.6
    ("preserve config blob and layers for non-Docker OCI artifacts") keeps the base
    image's raw config for a config media type that is not an image config, so that edit,
    the diff ID and the history entry are all dropped: the blob is ``empty.Image``'s,
    :data:`FLUX_2_9_CONFIG`, the same for every artifact, ``created`` still the zero time.
  - A config whose ``created`` is the created annotation is what fluxcd/pkg intends; no
    released flux2 writes it.

  We keep the first form: no reader looks at the config (source-controller and ``flux
  pull`` take the layer), it holds the layer's diff ID, and every bundle already published
  keeps its bytes. A bundle pushed under our tag in the 2.9 form (same files and
  annotations) counts as the same bundle: a re-run keeps it.
* **Manifest** ``application/vnd.oci.image.manifest.v1+json``, no ``artifactType``, keys in
  go-containerregistry's order (schemaVersion, mediaType, config, layers, annotations;
  descriptors mediaType, size, digest), compact JSON, annotations sorted:
  ``org.opencontainers.image.created`` (RFC 3339, from the source revision, never the
  clock), ``org.opencontainers.image.source`` and ``org.opencontainers.image.revision``
  (``<ref>@sha1:<sha>``), each only when known.

Readers: source-controller (OCIRepository, ``layerSelector`` absent: the first layer,
operation ``extract``) and ``flux pull artifact`` take the first layer's blob and run
fluxcd/pkg ``tar.Untar``: gzip required, names must be relative without ``../`` or ``\\``,
only regular files and folders (symlinks skipped or refused), size-capped. The manifest's
annotations become the artifact's metadata. Neither reads the config blob.
"""

from __future__ import annotations

import difflib
import io
import json
import posixpath
import re
import tarfile
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from steps import archive
from steps.archive import tar_files as tar_files  # re-exported: readers of published bundles
from steps.errors import BadInput, UnsafeSourceUrl
from steps.oci import mediatypes as mt
from steps.oci.reference import Digest

GZIP_LEVEL = 9
FILE_MODE = 0o644
DIR_MODE = 0o755
#: ``flux push artifact``'s default ``--ignore-paths`` (sourceignore ExcludeVCS + ExcludeExt).
IGNORED_DIRS = frozenset({".git"})
IGNORED_FILES = frozenset({".gitignore", ".gitmodules", ".gitattributes"})
IGNORED_SUFFIXES = (".jpg", ".jpeg", ".gif", ".png", ".wmv", ".flv", ".tar.gz", ".zip")
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's time.Time{} as JSON

_REVISION_RE = re.compile(
    r"(?:(?P<ref>[^@\s]+)@)?(?:(?P<algo>sha1|sha256):)?(?P<hex>[0-9a-f]{40}|[0-9a-f]{64})\Z"
)
_LEGACY_REVISION_RE = re.compile(r"(?P<ref>\S+)/(?P<hex>[0-9a-f]{40})\Z")


def flux_ignored(rel: str, *, is_dir: bool) -> bool:
    """Does ``flux push artifact``'s default ignore list leave ``rel`` out?"""
    name = rel.rsplit("/", 1)[-1]
    if is_dir:
        return name in IGNORED_DIRS
    return name in IGNORED_FILES or name.lower().endswith(IGNORED_SUFFIXES)


def walk_key(path: str) -> tuple[str, ...]:
    """Sort key giving Go's ``filepath.Walk`` order (per-folder name order, depth first)."""
    return tuple(path.split("/"))


def check_relative(path: str) -> str:
    """``path`` if it is a clean relative posix path inside the bundle, else BadInput."""
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or any(p in ("", ".", "..") for p in parts)
        or posixpath.normpath(path) != path
    ):
        raise BadInput(f"bundle path {path!r} is not a clean relative path")
    return path


@dataclass(frozen=True)
class BundleArtifact:
    """The exact bytes to push, and their digests."""

    files: Mapping[str, bytes] = field(repr=False)
    tar: bytes = field(repr=False)
    tarball: bytes = field(repr=False)
    config: bytes = field(repr=False)
    manifest: bytes = field(repr=False)
    annotations: Mapping[str, str]

    @property
    def digest(self) -> Digest:
        return Digest.of(self.manifest)

    @property
    def layer_digest(self) -> Digest:
        return Digest.of(self.tarball)


def build_artifact(files: Mapping[str, bytes], annotations: Mapping[str, str]) -> BundleArtifact:
    """Pack ``files`` (relative path -> bytes) as a Flux OCI artifact."""
    tar = pack_tar(files)
    tarball = gzip_bytes(tar)
    config = flux_config(Digest.of(tar))
    manifest = flux_manifest(config, tarball, annotations)
    return BundleArtifact(dict(files), tar, tarball, config, manifest, dict(annotations))


def pack_tar(files: Mapping[str, bytes]) -> bytes:
    """An uncompressed tar of ``files``: folder entries, then files, in walk order."""
    if not files:
        raise BadInput("the bundle is empty", hint="point --source/--config at the overlay")
    entries: dict[str, bytes | None] = {}
    for path in files:
        check_relative(path)
        parts = path.split("/")
        for i in range(1, len(parts)):
            entries["/".join(parts[:i])] = None
    for path, data in files.items():
        if path in entries:
            raise BadInput(f"bundle path {path!r} is both a file and a folder")
        entries[path] = data
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for path in sorted(entries, key=walk_key):
            content = entries[path]
            info = tarfile.TarInfo(path)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if content is None:
                info.type = tarfile.DIRTYPE
                info.mode = DIR_MODE
                tar.addfile(info)
            else:
                info.type = tarfile.REGTYPE
                info.mode = FILE_MODE
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """RFC 1952 member: no name, no comment, mtime 0, XFL 2, OS 255 (unknown), level 9."""
    return archive.gzip_bytes(data, GZIP_LEVEL)


#: The config blob of every artifact flux2 v2.9.x pushes (go-containerregistry's
#: ``empty.Image`` config, kept as is for an artifact config media type).
FLUX_2_9_CONFIG = (
    b'{"architecture":"","created":"0001-01-01T00:00:00Z","os":"",'
    b'"rootfs":{"type":"layers","diff_ids":null},"config":{}}'
)


def flux_config(diff_id: Digest) -> bytes:
    """The config blob ``flux push artifact`` wrote up to flux2 v2.8 (see the module
    docstring for what later versions write and why we keep this one)."""
    config = {
        "architecture": "",
        "created": ZERO_TIME,
        "history": [{"created": ZERO_TIME}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [str(diff_id)]},
        "config": {},
    }
    return go_json(config)


def flux_manifest(config: bytes, tarball: bytes, annotations: Mapping[str, str]) -> bytes:
    """The OCI image manifest, keys in go-containerregistry's order, compact."""
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {
            "mediaType": mt.FLUX_CONFIG,
            "size": len(config),
            "digest": str(Digest.of(config)),
        },
        "layers": [
            {
                "mediaType": mt.FLUX_CONTENT_LAYER,
                "size": len(tarball),
                "digest": str(Digest.of(tarball)),
            }
        ],
    }
    if annotations:
        manifest["annotations"] = dict(sorted(annotations.items()))
    return go_json(manifest)


def go_json(value: object) -> bytes:
    """JSON as Go's encoding/json writes it: compact, UTF-8, ``<>&`` and U+2028/9 escaped,
    object keys in the order given (Go sorts map keys; structs keep field order)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text.encode("utf-8")


def annotations_for(created: str, source: str | None, revision: str | None) -> dict[str, str]:
    out = {mt.ANNOTATION_CREATED: created}
    if source:
        out[mt.ANNOTATION_SOURCE] = source
    if revision:
        out[mt.ANNOTATION_REVISION] = revision
    return out


def parse_revision(text: str) -> str:
    """A Flux revision: ``<ref>@sha1:<40 hex>`` (or ``sha1:<hex>`` without a ref; sha256
    likewise). Also accepted and normalised: a bare commit hash, ``<ref>@<hash>`` and
    Flux's older ``<ref>/<40 hex>``."""
    value = text.strip()
    match = _REVISION_RE.match(value)
    if match is None:
        legacy = _LEGACY_REVISION_RE.match(value)
        if legacy is None:
            raise BadInput(
                f"--revision {text!r} is not a source revision",
                hint="use <ref>@sha1:<40 hex commit>, e.g. main@sha1:$(git rev-parse HEAD)",
            )
        return f"{legacy['ref']}@sha1:{legacy['hex']}"
    hexpart = match["hex"]
    algo = match["algo"] or ("sha1" if len(hexpart) == 40 else "sha256")
    if (algo == "sha1") != (len(hexpart) == 40):
        raise BadInput(f"--revision {text!r}: {algo} needs {40 if algo == 'sha1' else 64} hex")
    return f"{match['ref']}@{algo}:{hexpart}" if match["ref"] else f"{algo}:{hexpart}"


_SCP_LIKE_RE = re.compile(r"^(?:[A-Za-z0-9._-]+@)?([A-Za-z0-9.-]+):(?!//)([^\s]+)$")
#: Schemes a recorded source URL may have; each is recorded as ``https://host/path``.
SOURCE_URL_SCHEMES = ("https", "ssh", "git")


def clean_source_url(url: str) -> str:
    """A canonical, credential-free source URL, the same whoever publishes.

    A public artifact must not carry credentials, and the same commit must give the
    same bytes from a workstation (``git@github.com:o/r.git``) and from CI
    (``https://github.com/o/r``): user info, query and fragment are dropped (a token
    rides in any of them: ``…/r.git?access_token=…``), an scp-like or ``ssh://`` or
    ``git://`` remote becomes ``https://host/path``, a port is dropped with them, and a
    trailing ``.git`` or ``/`` is removed. Any other scheme (``http``, ``file``, a
    local path) is refused with :class:`~steps.errors.UnsafeSourceUrl`; the message
    never repeats the URL, which may hold a secret.
    """
    value = url.strip()
    scp = _SCP_LIKE_RE.match(value)
    if scp and "://" not in value:
        value = f"ssh://{scp.group(1)}/{scp.group(2)}"
    parts = urllib.parse.urlsplit(value)
    scheme = parts.scheme.lower()
    try:
        host = parts.hostname
    except ValueError:
        host = None
    if scheme not in SOURCE_URL_SCHEMES or not host:
        if scheme in SOURCE_URL_SCHEMES:
            found = "has no host"
        else:
            found = f"has the scheme {scheme!r}" if scheme else "is not a URL (no scheme)"
        raise UnsafeSourceUrl(
            f"the source URL {found}; only {', '.join(SOURCE_URL_SCHEMES)} URLs are "
            "recorded (as https://host/path)",
            hint="pass --source-url https://github.com/<owner>/<repo> (no credentials)",
        )
    try:
        port = parts.port
    except ValueError:
        port = None
    # An https port is part of the address; an ssh or git port is not the https one.
    netloc = f"{host}:{port}" if scheme == "https" and port not in (None, 443) else host
    path = parts.path.rstrip("/").removesuffix(".git").rstrip("/")
    return urllib.parse.urlunsplit(("https", netloc, path, "", ""))


def unified_diff(before: Mapping[str, bytes], after: Mapping[str, bytes]) -> str:
    """``diff -ru``-style text of every file that differs (``a/`` source, ``b/`` bundle)."""
    out: list[str] = []
    for path in sorted(set(before) | set(after), key=walk_key):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        try:
            old_text = (old or b"").decode("utf-8")
            new_text = (new or b"").decode("utf-8")
        except UnicodeDecodeError:
            out.append(f"Binary files a/{path} and b/{path} differ\n")
            continue
        lines = difflib.unified_diff(
            old_text.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile=f"a/{path}" if old is not None else "/dev/null",
            tofile=f"b/{path}" if new is not None else "/dev/null",
        )
        for line in lines:
            out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
