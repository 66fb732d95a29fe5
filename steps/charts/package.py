"""Deterministic Helm chart packaging: what ``helm package`` does, byte-reproducibly.

Pipeline (all pure except the two readers, which only read the chart folder)::

    src   = load_chart(path, expected_name)        # read + validate Chart.yaml
    files = collect_files(src)                     # the exact file set helm would package
    h     = content_hash(src, files)               # sha256 over paths + contents
    v     = immutable_version(src.version, h)      # "0.0.1" -> "0.0.1-c3f2a1b0c4d"
    pkg   = package_chart(src, files, v)           # .tgz bytes + OCI config JSON

What ends up in the package (established against ``helm package`` of helm v4.1.4 and
v3.17.3, which agree on every point below; see ``tests/integration/test_chartpkg_helm.py``):

* Only regular files, each under a ``<chart name>/`` prefix. **No directory entries**,
  empty directories vanish. Every entry has mode ``0644`` (helm drops the executable bit,
  so :class:`ChartFile` does not record it), uid/gid 0, empty user and group names, and
  no PAX records except a ``path`` record for a name that ustar cannot hold (longer than
  100 bytes or not ASCII); never times.
* The walk is helm's: names sorted per directory, ``.helmignore`` rules applied as in
  :mod:`steps.helmignore` (an ignored directory is pruned whole), symbolic links
  followed (the path inside the package is the link's path). ``.helmignore`` itself and
  other dot-files are packaged unless a rule excludes them; only hidden files directly
  under ``templates/`` are left out by default. A leading UTF-8 byte order mark is removed
  from every file (helm's loader does so).
* ``charts/``: every folder ``charts/<x>/`` is a subchart and every ``charts/<x>.tgz`` a
  vendored subchart archive; helm **expands the archive** and writes both kinds as
  folders named after the subchart's Chart.yaml ``name`` (not the folder or file name).
  Names under ``charts/`` starting with ``_`` or ``.`` are dropped; ``*.prov`` files are
  kept as plain files; any other plain file directly in ``charts/`` is an error in helm
  (``Chart.yaml file is missing``) and a :class:`BadInput` here. A subchart's own
  ``.helmignore`` is **not** applied (only the parent's rules, matched against the full
  path, which is also why the ``templates/.?*`` default does not reach a subchart's
  templates). Dependencies declared in Chart.yaml must be present in ``charts/``.
* ``Chart.lock`` is kept for ``apiVersion: v2`` charts and dropped for ``v1`` charts;
  ``requirements.yaml``/``requirements.lock`` are plain files of ``v1`` charts. In a
  ``v2`` chart helm silently merges them into Chart.yaml/Chart.lock; that is refused here.
* helm **re-serialises** Chart.yaml (keys sorted, comments and fields unknown to helm
  dropped, numbers in string fields turned into strings) and Chart.lock. We do not: our
  Chart.yaml is the original text with only the top-level ``version`` value replaced
  (comments, key order and quoting survive, so the diff against the source is one line),
  and every other file, Chart.lock included, is byte-for-byte the chart's. The result
  parses to the original metadata with only ``version`` changed, and helm loads it into
  the same metadata as its own package (it applies the same conversions when loading).
  If the version line cannot be edited in place (flow style, multi-line scalar), the
  Chart.yaml is re-serialised with sorted keys instead; it still parses the same.
* Entry order mirrors helm's writer: Chart.yaml, Chart.lock, values.yaml,
  values.schema.json, ``templates/**``, the other files, then each subchart the same way;
  within a group, walk order (path components compared lexically). helm writes
  subcharts in Go map order (random from run to run); we sort them by name.

Determinism: identical chart content gives byte-identical tarballs whatever the files'
mtimes, owners, permissions or the order the file system lists them. Every entry gets
``mtime`` (default :data:`FIXED_MTIME`); gzip is written by hand (:mod:`steps.archive`: no
file name, mtime 0, OS byte 255 like helm's; helm's extra field and "Helm" comment are left
out, nothing reads them), at level 9 up to :data:`LARGE_CHART` bytes of files (the bytes
every published chart of ordinary size has always had) and at helm's level 6 above it,
where level 9 would cost seconds (:func:`gzip_level`). The deflate stream is zlib's; a
different deflate
implementation (zlib-ng) could produce other bytes from the same tar, which is why the
chart *version* is derived from :func:`content_hash` (file contents), never from the
tarball digest.

Invariants a caller relies on:

* ``content_hash`` covers exactly the packaged files (paths and bytes after helm's
  processing) and the original Chart.yaml; it ignores mtimes, permissions and listing
  order, and it changes when any packaged byte changes.
* With the content version policy, pass a constant ``mtime`` (the default): the tarball
  must be a function of the content alone, or a re-run at a later commit would produce a
  different digest under the same immutable version.

Memory: files are read when hashed and when packaged, never held whole (:class:`ChartFile`),
and the archive is deflated as it is written into a spooled temporary file
(:class:`steps.archive.Blob`), so packaging a 200 MB chart peaks near 32 MiB. A chart
helm would refuse (a file over 5 MiB, or 100 MiB of files) is refused after the walk,
before any file is read.

What this module does not do: talk to a registry, run helm, resolve or download
dependencies (``helm dependency build`` must have vendored them), lint templates, or
render anything.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import struct
import tarfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from steps import archive, yamlload
from steps.archive import HELM_MAX_CHART_SIZE, HELM_MAX_FILE_SIZE
from steps.charts import ignore as helmignore
from steps.charts.chart import (  # the data and Chart.yaml parsing
    _DRIVE_RE,
    _HEX_RE,
    _TAG_RE,
    _UTF8_BOM,
    CHART_LOCK,
    CHART_YAML,
    CONTENT_HASH_SCHEME,
    FILE_MODE,
    FIXED_MTIME,
    GZIP_LEVEL,
    GZIP_LEVEL_LARGE,
    HASH_ID_LENGTH,
    LARGE_CHART,
    MAX_ARCHIVE_SIZE,
    SUPPORTED_API_VERSIONS,
    ChartFile,
    ChartSource,
    PackagedChart,
    _check_base_version,
    _load_yaml,
    _parse_chart_yaml,
    with_version,
)
from steps.charts.chart import load_chart as load_chart  # re-exported: the chart API
from steps.errors import BadInput, ChartTooLarge
from steps.fstree import Entry, Wording, walk

# --------------------------------------------------------------------------
# Collecting the file set
# --------------------------------------------------------------------------


def collect_files(src: ChartSource, *, max_size: int = HELM_MAX_CHART_SIZE) -> list[ChartFile]:
    """The files ``helm package`` would put into the archive, sorted by path.

    Walks ``src.path`` as helm does (see the module docstring), then applies helm's
    chart-structure rules (``charts/`` subcharts and archives expanded, Chart.lock and
    requirements files per apiVersion). Refuses with :class:`BadInput`: a symbolic link
    that is dangling or loops (helm fails too), a packaged link whose target resolves
    outside the chart folder (helm would copy the outside file in; we do not), an
    irregular file, a broken ``.helmignore``, a file name that is not UTF-8, a ``charts/``
    entry that is not a chart, a declared dependency missing from ``charts/``, a malformed
    vendored archive, or two subcharts with the same name.
    """
    rules = helmignore.load_for_chart(src.path)
    walked = _walk(src.path, rules)
    if CHART_YAML not in walked:
        raise BadInput(
            f"chart folder {src.path}: Chart.yaml is excluded by its .helmignore",
            hint="remove the .helmignore rule that matches Chart.yaml (a '!' rule ignores "
            "every path it does not match)",
        )
    if walked[CHART_YAML].data != src.chart_yaml:
        raise BadInput(
            f"chart folder {src.path}: Chart.yaml changed after it was loaded",
            hint="do not modify the chart while it is being packaged",
        )
    walked[CHART_YAML] = ChartFile(CHART_YAML, src.chart_yaml)
    _, files = _assemble(walked, str(src.path), top=True, meta=dict(src.metadata))
    check_chart_size(src.path, sum(f.size for f in files.values()), max_size)
    return sorted((f.with_path(p) for p, f in files.items()), key=lambda f: f.path)


def check_chart_size(where: object, total: int, limit: int = HELM_MAX_CHART_SIZE) -> None:
    """Refuse a chart whose packaged files add up to helm's limit or more: helm packages
    it, but `helm push`, `helm pull` and every install refuse to load the archive.
    (``limit`` is lifted only by benchmarks that package larger charts on purpose.)"""
    if total >= limit:
        raise ChartTooLarge(
            f"chart folder {where}: its files add up to {total} bytes, at or over helm's "
            f"limit of {limit} bytes ({limit // (1024 * 1024)} MiB) per chart (helm refuses "
            "to load the archive: 'decompressed chart is larger than the maximum size')",
            hint="move large files out of the chart or list them in .helmignore",
        )


def _walk(root: Path, rules: helmignore.Rules) -> dict[str, ChartFile]:
    """helm's ``sympath.Walk`` + ``LoadDir``: relative path -> file (not read yet, only
    its size and byte order mark), in walk order."""
    out: dict[str, ChartFile] = {}
    wording = Wording(f"chart folder {root}", *_CHART_WORDING)
    keep = partial(_chart_keeps, root, rules)
    for entry in walk(root, wording, check_name=lambda rel: _check_name(rel, root), keep=keep):
        rel, size = entry.rel, entry.st.st_size
        if size > HELM_MAX_FILE_SIZE:
            raise ChartTooLarge(
                f"chart folder {root}: {rel} is {size} bytes, more than helm's "
                f"limit of {HELM_MAX_FILE_SIZE} bytes (5 MiB) per chart file (helm "
                "package and helm install refuse it)",
                hint="make the file smaller, or list it in .helmignore",
            )
        try:
            with entry.path.open("rb") as fh:
                skip = len(_UTF8_BOM) if fh.read(len(_UTF8_BOM)) == _UTF8_BOM else 0
        except OSError as exc:
            raise BadInput(f"cannot read {entry.path}: {exc.strerror or exc}") from None
        out[rel] = ChartFile(rel, origin=entry.path, size=size - skip, skip=skip)
    return out


_CHART_WORDING = (
    (
        "is dangling or loops (helm package fails on it, even when .helmignore lists it)",
        "fix or delete the link",
    ),
    (
        "points to a folder that contains it (helm would walk it forever)",
        "remove the link or list it in .helmignore",
    ),
    (
        "is not a regular file (device, socket or pipe); helm refuses to package it",
        "remove it or list it in .helmignore",
    ),
)


def _chart_keeps(root: Path, rules: helmignore.Rules, entry: Entry) -> bool:
    """.helmignore leaves an entry out (checked before links, as helm does); a link
    leaving the chart folder is refused."""
    if rules.ignores(entry.rel, is_dir=entry.is_dir):
        return False
    if entry.leaves(root):
        raise BadInput(
            f"chart folder {root}: symbolic link {entry.rel} -> {entry.link} "
            f"resolves to {entry.real}, outside the chart folder",
            hint="copy the file into the chart, or list the link in .helmignore; "
            "charts may only link to files inside their own folder",
        )
    return True


def _check_name(rel: str, root: Path) -> None:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(
            f"chart folder {root}: file name {rel!r} is not valid UTF-8",
            hint="rename the file (chart archives store UTF-8 names)",
        ) from None


def _go_ext(path: str) -> str:
    """Go's ``filepath.Ext``: the suffix from the last ``.`` of the last element."""
    base = path.rsplit("/", 1)[-1]
    i = base.rfind(".")
    return base[i:] if i >= 0 else ""


def _assemble(
    files: Mapping[str, ChartFile],
    where: str,
    *,
    top: bool,
    meta: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, ChartFile]]:
    """helm's ``LoadFiles`` + ``writeTarContents`` file selection for one chart level.

    Returns the chart's metadata and its packaged files (paths relative to this chart,
    subcharts already placed under ``charts/<name>/``).
    """
    if CHART_YAML not in files:
        raise BadInput(
            f"{where} has no Chart.yaml, so it is not a chart (helm package fails with "
            "'Chart.yaml file is missing')",
            hint="everything under charts/ must be a chart folder or a chart .tgz; rename "
            "other entries to start with '_' or list them in .helmignore",
        )
    if meta is None:
        meta = _parse_chart_yaml(files[CHART_YAML].data, where)
    if not top:
        _check_subchart_meta(meta, where)
    api = meta.get("apiVersion") or "v1"

    out: dict[str, ChartFile] = {}
    subcharts: dict[str, list[tuple[str | None, ChartFile]]] = {}
    for path, data in files.items():
        if path == CHART_LOCK:
            if api == "v2":
                out[path] = data
        elif path in ("requirements.yaml", "requirements.lock"):
            if api != "v1":
                raise BadInput(
                    f"{where}: {path} in an apiVersion {api} chart (helm would silently "
                    "merge it into Chart.yaml/Chart.lock)",
                    hint="move the dependencies into Chart.yaml (and Chart.lock) and delete "
                    f"{path}",
                )
            out[path] = data
        elif path == "values.schema.json":
            _check_json(data.data, f"{where}/{path}")
            out[path] = data
        elif path == "values.yaml":
            _check_values(data.data, f"{where}/{path}")
            out[path] = data
        elif path.startswith("charts/"):
            if _go_ext(path) == ".prov":
                out[path] = data
                continue
            cname, sep, rest = path[len("charts/") :].partition("/")
            subcharts.setdefault(cname, []).append((rest if sep else None, data))
        else:
            out[path] = data

    dep_names: set[str] = set()
    for cname in sorted(subcharts):
        if cname[:1] in ("_", "."):
            continue
        entries = subcharts[cname]
        sub_where = f"{where}/charts/{cname}"
        if _go_ext(cname) == ".tgz":
            if entries[0][0] is not None:
                raise BadInput(
                    f"{sub_where} is a folder; helm expects a chart archive with that name",
                    hint="rename the folder (no .tgz suffix) or replace it with the archive",
                )
            sub_files = {
                rel: ChartFile(rel, body)
                for rel, body in _read_chart_archive(entries[0][1].data, sub_where).items()
            }
        else:
            sub_files = {rest: data for rest, data in entries if rest is not None}
        sub_meta, sub_out = _assemble(sub_files, sub_where, top=False)
        dep = str(sub_meta["name"])
        if dep in dep_names:
            raise BadInput(
                f"{where}: two entries under charts/ hold a chart named {dep!r}",
                hint="keep one copy of each subchart in charts/",
            )
        dep_names.add(dep)
        for sub_path, data in sub_out.items():
            full = f"charts/{dep}/{sub_path}"
            if full in out:
                raise BadInput(
                    f"{where}: {full} would be written twice",
                    hint=f"rename the charts/ entries so that subchart {dep!r} has its own folder",
                )
            out[full] = data

    if top:
        missing = [d for d in _declared_dependencies(meta, files, where) if d not in dep_names]
        if missing:
            raise BadInput(
                f"{where}: found in Chart.yaml, but missing in charts/ directory: "
                + ", ".join(missing),
                hint="run `helm dependency build` and vendor charts/ into the source, or "
                "remove the dependency",
            )
    return meta, out


def _check_subchart_meta(meta: Mapping[str, Any], where: str) -> None:
    for key in ("name", "version"):
        value = meta.get(key)
        if not isinstance(value, str) or value == "":
            raise BadInput(
                f"{where}: subchart Chart.yaml has no valid {key}",
                hint=f"set '{key}' in the subchart's Chart.yaml",
            )
    api = meta.get("apiVersion") or "v1"
    if api not in SUPPORTED_API_VERSIONS:
        raise BadInput(
            f"{where}: subchart apiVersion {api!r} is not one helm v4 accepts",
            hint="use 'apiVersion: v2'",
        )
    name = str(meta["name"])
    if "/" in name or "\\" in name or name in (".", ".."):
        raise BadInput(f"{where}: subchart name {name!r} is not a valid chart name")


def _declared_dependencies(
    meta: Mapping[str, Any], files: Mapping[str, ChartFile], where: str
) -> list[str]:
    deps: object = meta.get("dependencies")
    if (meta.get("apiVersion") or "v1") == "v1" and "requirements.yaml" in files:
        try:
            req = yamlload.load(files["requirements.yaml"].data, f"{where}/requirements.yaml")
        except yaml.YAMLError:
            raise BadInput(f"{where}: requirements.yaml is not valid YAML") from None
        deps = req.get("dependencies") if isinstance(req, dict) else None
    if deps is None:
        return []
    if not isinstance(deps, list):
        raise BadInput(f"{where}: 'dependencies' must be a list", hint="fix Chart.yaml")
    names: list[str] = []
    for item in deps:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadInput(
                f"{where}: every entry of 'dependencies' needs a name", hint="fix Chart.yaml"
            )
        names.append(item["name"])
    return names


def _check_values(data: bytes, where: str) -> None:
    """helm's loader parses every chart's values.yaml (and fails the package or the
    install when it cannot): so do we, with the bounded loader."""
    values = _load_yaml(
        data, where, f"{where} is not valid YAML (helm fails with 'cannot load values.yaml')"
    )
    if values is not None and not isinstance(values, dict):
        raise BadInput(
            f"{where} must be a YAML mapping of values, found {type(values).__name__} (helm "
            "fails with 'cannot load values.yaml')",
            hint="values.yaml holds keys and their values",
        )


def _check_json(data: bytes, where: str) -> None:
    def reject(token: str) -> None:
        raise ValueError(token)

    try:
        json.loads(data.decode("utf-8"), parse_constant=reject)
    except ValueError:
        raise BadInput(
            f"{where} is not valid JSON (helm package fails with 'invalid JSON in "
            "values.schema.json')",
            hint="fix the JSON schema",
        ) from None


def _read_chart_archive(data: bytes, where: str) -> dict[str, bytes]:
    """helm's ``LoadArchiveFiles``: the files of a chart .tgz, first path element removed."""
    out: dict[str, bytes] = {}
    remaining = MAX_ARCHIVE_SIZE
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive:
                if member.isdir():
                    continue
                name = member.name
                delimiter = "\\" if "\\" in name else "/"
                parts = name.split(delimiter)
                rel = "/".join(parts[1:])
                if rel.startswith("/"):
                    raise BadInput(f"{where}: archive holds an absolute path {name!r}")
                rel = posixpath.normpath(rel) if rel else "."
                if rel == ".":
                    raise BadInput(
                        f"{where}: archive entry {name!r} is outside the chart's base folder"
                    )
                if rel.startswith("..") or _DRIVE_RE.match(rel):
                    raise BadInput(f"{where}: archive entry {name!r} escapes the chart folder")
                if parts[0] == CHART_YAML:
                    raise BadInput(f"{where}: archive has Chart.yaml outside a base folder")
                if not member.isfile():
                    raise BadInput(
                        f"{where}: archive entry {name!r} is a link or special file",
                        hint="re-create the archive with `helm package`",
                    )
                if member.size > HELM_MAX_FILE_SIZE:
                    raise ChartTooLarge(
                        f"{where}: archive entry {name!r} is {member.size} bytes, more than "
                        f"helm's limit of {HELM_MAX_FILE_SIZE} bytes (5 MiB) per chart file",
                        hint="helm refuses to load such a chart; make the file smaller",
                    )
                if member.size >= remaining:
                    raise ChartTooLarge(
                        f"{where}: expanded archive is {MAX_ARCHIVE_SIZE} bytes or more, "
                        f"helm's limit of {MAX_ARCHIVE_SIZE} bytes (100 MiB) per chart",
                        hint="helm refuses to load such a chart; make the subchart smaller",
                    )
                extracted = archive.extractfile(member)
                body = extracted.read() if extracted is not None else b""
                remaining -= len(body)
                if rel in out:
                    raise BadInput(f"{where}: archive holds {rel!r} twice")
                out[rel] = body.removeprefix(_UTF8_BOM)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BadInput(
            f"{where} is not a readable chart archive: {exc}",
            hint="re-create it with `helm dependency build` or `helm package`",
        ) from None
    if not out:
        raise BadInput(f"{where}: no files in chart archive")
    return out


# --------------------------------------------------------------------------
# Hash and version
# --------------------------------------------------------------------------


def _lp(data: bytes) -> bytes:
    return struct.pack(">Q", len(data)) + data


def content_hash(src: ChartSource, files: Sequence[ChartFile]) -> str:
    """Hex sha256 of the chart's packaged content.

    Canonical encoding: :data:`CONTENT_HASH_SCHEME`, then the length-prefixed chart name,
    then for every file in path order its length-prefixed UTF-8 path and length-prefixed
    bytes (lengths as 8-byte big-endian). Chart.yaml is included as read (with its
    original version). Independent of mtimes, modes and listing order.
    """
    digest = hashlib.sha256(CONTENT_HASH_SCHEME)
    digest.update(_lp(src.name.encode("utf-8")))
    seen: set[str] = set()
    for f in sorted(files, key=lambda f: f.path):
        if f.path in seen:
            raise BadInput(f"chart {src.name}: file {f.path} listed twice")
        seen.add(f.path)
        digest.update(_lp(f.path.encode("utf-8")))
        digest.update(struct.pack(">Q", f.size))
        for chunk in f.chunks():
            digest.update(chunk)
    return digest.hexdigest()


def immutable_version(base: str, content_hash: str) -> str:
    """The content-derived version: ``<base>-c<10 hex>``, or ``<base>.c<10 hex>`` when
    ``base`` already has a prerelease (``1.0.0-rc5.1`` -> ``1.0.0-rc5.1.c0123456789``).

    The identifier starts with a letter (helm rejects numeric prerelease identifiers with
    a leading zero); the result is strict SemVer 2, a valid OCI tag and sorts before
    ``base`` in SemVer precedence (it is a prerelease of it).
    """
    _check_base_version(base, "base version")
    if not _HEX_RE.match(content_hash):
        raise BadInput(
            f"content hash {content_hash!r} is not 64 lower-case hex digits",
            hint="pass the value returned by content_hash()",
        )
    ident = "c" + content_hash[:HASH_ID_LENGTH]
    import semver  # when a chart's version is read: importing the module needs none

    parsed = semver.Version.parse(base)
    version = f"{base}.{ident}" if parsed.prerelease else f"{base}-{ident}"
    check_version(version)
    return version


def check_version(version: str) -> None:
    """Refuse (:class:`BadInput`) a chart version that is not strict SemVer 2 without build
    metadata or that cannot be an OCI tag."""
    _check_base_version(version, "chart version")
    if not _TAG_RE.match(version):
        raise BadInput(
            f"chart version {version!r} is not a valid OCI tag "
            "([A-Za-z0-9_][A-Za-z0-9._-]{0,127})",
            hint="shorten the version",
        )


# --------------------------------------------------------------------------
# Packaging
# --------------------------------------------------------------------------


_ROOT_CLASSES = {CHART_YAML: 0, CHART_LOCK: 1, "values.yaml": 2, "values.schema.json": 3}


def helm_order(paths: Iterable[str]) -> list[str]:
    """``paths`` in the order helm's writer emits them (see the module docstring)."""
    pset = set(paths)

    def key(path: str) -> tuple[tuple[int, tuple[str, ...]], ...]:
        parts = path.split("/")
        out: list[tuple[int, tuple[str, ...]]] = []
        i = 0
        while True:
            rest = parts[i:]
            if (
                len(rest) >= 3
                and rest[0] == "charts"
                and _go_ext(rest[-1]) != ".prov"
                and "/".join([*parts[: i + 2], CHART_YAML]) in pset
            ):
                out.append((6, (rest[1],)))
                i += 2
                continue
            if len(rest) == 1 and rest[0] in _ROOT_CLASSES:
                cls = _ROOT_CLASSES[rest[0]]
            elif rest[0] == "templates" and len(rest) > 1:
                cls = 4
            else:
                cls = 5
            out.append((cls, tuple(rest)))
            return tuple(out)

    return sorted(pset, key=key)


def package_chart(
    src: ChartSource, files: Sequence[ChartFile], version: str, *, mtime: int = FIXED_MTIME
) -> PackagedChart:
    """Build the chart archive for ``version`` from ``files`` (as :func:`collect_files`
    returns them).

    Pure: the result is a function of (chart name, file paths and bytes, version, mtime)
    only. Chart.yaml gets the new version via :func:`with_version`; every other file is
    written as given. See the module docstring for the archive's exact shape.
    """
    check_version(version)
    if not isinstance(mtime, int) or not 0 <= mtime < 8**11:
        raise BadInput(
            f"tar mtime {mtime!r} must be an integer in [0, 8**11) (a plain ustar field)",
            hint="pass a Unix timestamp, e.g. the source commit time, or leave the default",
        )
    by_path: dict[str, ChartFile] = {}
    for f in files:
        if f.path in by_path:
            raise BadInput(f"chart {src.name}: file {f.path} listed twice")
        by_path[f.path] = f
    if CHART_YAML not in by_path:
        raise BadInput(
            f"chart {src.name}: the file list has no Chart.yaml",
            hint="pass the list collect_files() returns",
        )
    chart_yaml = by_path[CHART_YAML].data
    meta = (
        dict(src.metadata)
        if chart_yaml == src.chart_yaml
        else _parse_chart_yaml(chart_yaml, f"chart {src.name}", str(src.path / CHART_YAML))
    )
    name = meta.get("name")
    if name != src.name:
        raise BadInput(
            f"chart {src.name}: the file list's Chart.yaml names chart {name!r}",
            hint="pass the list collect_files() returned for this chart",
        )
    new_meta = dict(meta)
    new_meta["version"] = version
    by_path[CHART_YAML] = ChartFile(CHART_YAML, with_version(chart_yaml, version, original=meta))
    content = sum(f.size for f in by_path.values())
    sink = archive.GzipSink(gzip_level(content))
    with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for path in helm_order(by_path):
            f = by_path[path]
            info = tarfile.TarInfo(f"{src.name}/{path}")
            info.size = f.size
            info.mtime = mtime
            info.mode = FILE_MODE
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, _ChunkReader(f.chunks()))
    blob = sink.finish()
    try:
        config = json.dumps(
            new_meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise BadInput(f"chart {src.name}: Chart.yaml cannot be written as JSON: {exc}") from None
    return PackagedChart(
        name=src.name,
        version=version,
        blob=blob,
        chart_yaml_json=config,
        metadata=new_meta,
    )


def gzip_level(content_size: int) -> int:
    """The deflate level for a chart of ``content_size`` bytes of files: :data:`GZIP_LEVEL`
    (9) up to :data:`LARGE_CHART` bytes, so every chart of ordinary size keeps the bytes
    it has always had; helm's own level (Go's default, 6) above, where level 9 costs
    seconds for a few percent (50 MB of text: 4.3 s against 1.4 s here, for 0.2% less)."""
    return GZIP_LEVEL if content_size <= LARGE_CHART else GZIP_LEVEL_LARGE


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of chunks (what ``tarfile.addfile`` copies)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._pending) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._pending += chunk
        if size < 0:
            out, self._pending = self._pending, b""
        else:
            out, self._pending = self._pending[:size], self._pending[size:]
        return out
