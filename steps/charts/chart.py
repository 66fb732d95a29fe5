"""A chart as helm reads it (pure data and parsing): ``Chart.yaml`` (apiVersion, name,
version, type, dependencies), the chart's source folder, the files it packages and the
packaged result. :mod:`steps.charts.package` collects, hashes and packages them."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from steps import archive, yamlload
from steps.archive import HELM_MAX_CHART_SIZE
from steps.errors import BadInput

CHART_YAML = "Chart.yaml"
CHART_LOCK = "Chart.lock"

#: mtime of every tar entry unless the caller passes another (1970-01-01T00:00:00Z).
FIXED_MTIME = 0
#: gzip/deflate level of charts up to :data:`LARGE_CHART` (best compression; XFL 2).
GZIP_LEVEL = 9
#: Packaged content (bytes of files) past which a chart is deflated at helm's level.
LARGE_CHART = 4 * 1024 * 1024
#: helm's level: Go's ``gzip.DefaultCompression`` is flate level 6 (XFL 0).
GZIP_LEVEL_LARGE = 6
#: Entry mode of every file, as helm writes it.
FILE_MODE = 0o644
#: Domain separator of :func:`content_hash`; bump the suffix when the packaging format
#: changes, so that new bytes never reuse an already published version.
CONTENT_HASH_SCHEME = b"alga-release/chart-content/v1\n"
#: Chart API versions helm v4 accepts (v3 rejects nothing, v4 rejects e.g. "v3").
SUPPORTED_API_VERSIONS = ("v1", "v2")
#: Length of the content identifier in an immutable version.
HASH_ID_LENGTH = 10
#: helm's limit on the expanded size of a chart archive (vendored subcharts, and the
#: package itself: helm refuses to load a chart whose files add up to this or more).
MAX_ARCHIVE_SIZE = HELM_MAX_CHART_SIZE

_UTF8_BOM = b"\xef\xbb\xbf"
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")
# One OCI repository path component: the chart becomes <namespace>/charts/<name>.
_CHART_NAME_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_HEX_RE = re.compile(r"[0-9a-f]{64}\Z")
_DRIVE_RE = re.compile(r"[a-zA-Z]:/")
_CHART_TYPES = ("application", "library")
# Top-level `version:` line in block style: value (plain, '...' or "..."), optional comment.
_VERSION_LINE = re.compile(
    rb"^version[ \t]*:[ \t]*"
    rb"(?P<value>\"[^\"\r\n]*\"|'[^'\r\n]*'|[^ \t\r\n#'\"\[{|>&*!%@`][^\r\n]*?)"
    rb"(?P<tail>(?:[ \t]+#[^\r\n]*)?[ \t]*)(?=\r?$)",
    re.MULTILINE,
)


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartSource:
    """A chart folder whose Chart.yaml has been read and validated.

    ``path`` is the resolved folder; ``version`` the Chart.yaml version (strict SemVer 2,
    no build metadata); ``chart_yaml`` the file's bytes as helm reads them (BOM removed);
    ``metadata`` its parsed mapping (JSON-representable).
    """

    path: Path
    name: str
    version: str
    api_version: str
    chart_yaml: bytes = field(repr=False)
    metadata: Mapping[str, Any] = field(repr=False)


class ChartFile:
    """One file of the package: ``path`` relative to the chart root inside the archive
    (``/``-separated, e.g. ``templates/deployment.yaml`` or ``charts/redis/Chart.yaml``)
    and its bytes exactly as packaged (except Chart.yaml, whose version
    :func:`package_chart` replaces). No mode: helm writes every file ``0644``.

    The bytes are held (``ChartFile(path, data)``) or, for a file of the chart folder,
    read from ``origin`` when needed (after a leading byte order mark of ``skip`` bytes):
    a chart is hashed and packaged as a stream, so memory does not grow with its size.
    ``size`` is the packaged size either way. The first full read records the bytes'
    sha256; a later read that differs (the file changed while it was packaged) is
    refused.
    """

    __slots__ = ("_data", "_origin", "_sha256", "_skip", "path", "size")

    def __init__(
        self,
        path: str,
        data: bytes | None = None,
        *,
        origin: Path | None = None,
        size: int | None = None,
        skip: int = 0,
    ) -> None:
        if (data is None) == (origin is None):
            raise ValueError("a ChartFile holds either data or an origin file")
        self.path = path
        self._data = data
        self._origin = origin
        self._skip = skip
        self._sha256: str | None = None
        if data is not None:
            self.size = len(data)
        elif size is None:
            raise ValueError("a ChartFile read from a file needs its size")
        else:
            self.size = size

    def with_path(self, path: str) -> ChartFile:
        if self._data is not None:
            return ChartFile(path, self._data)
        moved = ChartFile(path, origin=self._origin, size=self.size, skip=self._skip)
        moved._sha256 = self._sha256
        return moved

    @property
    def data(self) -> bytes:
        """All the bytes (read from the file when not held)."""
        if self._data is not None:
            return self._data
        return b"".join(self.chunks())

    def chunks(self) -> Iterator[bytes]:
        """The bytes in chunks of at most 1 MiB, checked against the first full read."""
        if self._data is not None:
            yield self._data
            return
        assert self._origin is not None
        digest = hashlib.sha256()
        total = 0
        try:
            for chunk in archive.file_chunks(self._origin, self._skip):
                total += len(chunk)
                digest.update(chunk)
                yield chunk
        except OSError as exc:
            raise BadInput(f"cannot read {self._origin}: {exc.strerror or exc}") from None
        seen = digest.hexdigest()
        if total != self.size or (self._sha256 is not None and seen != self._sha256):
            raise BadInput(
                f"{self._origin} changed while the chart was being packaged",
                hint="do not modify the chart while it is being packaged",
            )
        self._sha256 = seen

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChartFile):
            return NotImplemented
        return self.path == other.path and self.size == other.size and self.data == other.data

    def __hash__(self) -> int:
        return hash((self.path, self.size))

    def __repr__(self) -> str:
        return f"ChartFile(path={self.path!r}, size={self.size})"


@dataclass(frozen=True)
class PackagedChart:
    """The result of :func:`package_chart`.

    ``blob`` is the ``.tgz`` (the OCI layer; in memory while small, else a temporary file)
    and ``tarball`` its bytes; ``chart_yaml_json`` the Chart.yaml metadata with the new
    version as compact JSON with sorted keys (the OCI config blob); ``metadata`` the same
    as a dict.
    """

    name: str
    version: str
    blob: archive.Blob = field(repr=False)
    chart_yaml_json: bytes = field(repr=False)
    metadata: dict[str, Any] = field(repr=False)

    @property
    def tarball(self) -> bytes:
        return self.blob.read()

    @property
    def filename(self) -> str:
        """The name ``helm package`` would give the archive."""
        return f"{self.name}-{self.version}.tgz"

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the tarball (the OCI layer digest)."""
        return "sha256:" + self.blob.sha256


# --------------------------------------------------------------------------
# Chart.yaml
# --------------------------------------------------------------------------


def load_chart(path: Path, expected_name: str | None = None) -> ChartSource:
    """Read and validate ``<path>/Chart.yaml``.

    Raises :class:`BadInput` (naming the folder and the fix) when the folder or its
    Chart.yaml is missing, the YAML is invalid or not a mapping, ``apiVersion``/``name``/
    ``version`` is missing or malformed, the name differs from ``expected_name`` or is not
    a valid OCI repository name, the version is not strict SemVer 2 or carries ``+build``
    metadata (OCI tags cannot hold ``+``), ``type`` is neither application nor library, or
    a value cannot be represented in JSON (the OCI config blob).
    """
    folder = Path(path)
    if not folder.exists():
        raise BadInput(
            f"chart folder {folder} does not exist",
            hint="check the chart path in the release config and the --source checkout",
        )
    if not folder.is_dir():
        raise BadInput(
            f"chart path {folder} is not a folder",
            hint="point the release config at the folder that holds Chart.yaml",
        )
    root = folder.resolve()
    chart_yaml_path = root / CHART_YAML
    if not chart_yaml_path.is_file():
        raise BadInput(
            f"chart folder {folder} has no Chart.yaml",
            hint="point the release config at the chart's own folder (the one with Chart.yaml)",
        )
    try:
        raw = chart_yaml_path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {chart_yaml_path}: {exc.strerror or exc}") from None
    data = raw.removeprefix(_UTF8_BOM)
    where = f"chart folder {folder}"
    meta = _parse_chart_yaml(data, where, str(chart_yaml_path))

    api = meta.get("apiVersion")
    if api is None or api == "":
        raise BadInput(
            f"{where}: Chart.yaml has no apiVersion",
            hint="add 'apiVersion: v2' to Chart.yaml",
        )
    if api not in SUPPORTED_API_VERSIONS:
        raise BadInput(
            f"{where}: Chart.yaml apiVersion {api!r} is not one helm v4 accepts",
            hint="use 'apiVersion: v2'",
        )
    name = meta.get("name")
    if name is None or name == "":
        raise BadInput(f"{where}: Chart.yaml has no name", hint="add 'name: <chart>' to Chart.yaml")
    if not isinstance(name, str) or not _CHART_NAME_RE.match(name):
        raise BadInput(
            f"{where}: chart name {name!r} cannot be an OCI repository name",
            hint="use lower-case letters and digits separated by '-', '_' or '.'",
        )
    if expected_name is not None and name != expected_name:
        raise BadInput(
            f"{where}: Chart.yaml name is {name!r}, but the release config expects "
            f"{expected_name!r}",
            hint="fix the name in Chart.yaml or the chart's entry in the release config",
        )
    version = meta.get("version")
    if version is None or version == "":
        raise BadInput(
            f"{where}: Chart.yaml has no version", hint="add 'version: 0.1.0' to Chart.yaml"
        )
    _check_base_version(version, where)
    chart_type = meta.get("type")
    if chart_type not in (None, "", *_CHART_TYPES):
        raise BadInput(
            f"{where}: Chart.yaml type {chart_type!r} is not 'application' or 'library'",
            hint="helm refuses any other type; fix or remove it",
        )
    _check_jsonable(meta, f"{where}: Chart.yaml")
    return ChartSource(
        path=root,
        name=name,
        version=str(version),
        api_version=str(api),
        chart_yaml=data,
        metadata=meta,
    )


def _load_yaml(data: bytes, source: str, invalid: str) -> Any:
    """One chart YAML file through the bounded loader; a syntax error is BadInput
    starting with ``invalid``."""
    try:
        return yamlload.load(data, source)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise BadInput(
            f"{invalid}: {detail}", hint="fix the YAML syntax (`helm lint` shows the same error)"
        ) from None


def _parse_chart_yaml(data: bytes, where: str, source: str | None = None) -> dict[str, Any]:
    meta = _load_yaml(
        data, source or f"{where}/{CHART_YAML}", f"{where}: Chart.yaml is not valid YAML"
    )
    if not isinstance(meta, dict):
        raise BadInput(
            f"{where}: Chart.yaml must be a YAML mapping, found {type(meta).__name__}",
            hint="Chart.yaml holds keys such as apiVersion, name and version",
        )
    return meta


def _check_base_version(version: object, where: str) -> None:
    if not isinstance(version, str):
        raise BadInput(
            f"{where}: Chart.yaml version {version!r} is a YAML {type(version).__name__}, "
            "not a SemVer string",
            hint="write a full SemVer version such as 'version: 1.0.0'",
        )
    if "+" in version:
        raise BadInput(
            f"{where}: Chart.yaml version {version!r} has '+' build metadata, which an OCI "
            "tag cannot hold (helm would push it as '_')",
            hint="drop the '+...' part, or move it into the prerelease ('-...')",
        )
    import semver  # when a chart's version is read: importing the module needs none

    if not semver.Version.is_valid(version):
        raise BadInput(
            f"{where}: Chart.yaml version {version!r} is not strict SemVer 2 "
            "(MAJOR.MINOR.PATCH[-PRERELEASE])",
            hint="write e.g. '1.0.0' or '1.0.0-rc.5'; numeric identifiers may not have "
            "leading zeros",
        )


def _check_jsonable(value: object, where: str, at: str = "") -> None:
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if math.isfinite(value):
            return
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_jsonable(item, where, f"{at}[{i}]")
        return
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise BadInput(
                    f"{where}: key {key!r} under {at or 'the top level'} is not a string",
                    hint="quote the key",
                )
            _check_jsonable(item, where, f"{at}.{key}" if at else key)
        return
    raise BadInput(
        f"{where}: value of {at or 'the document'} ({value!r}) cannot be represented in JSON",
        hint="quote it so that YAML reads it as a string",
    )


def with_version(
    chart_yaml: bytes, version: str, *, original: Mapping[str, Any] | None = None
) -> bytes:
    """Chart.yaml text with the top-level ``version`` set to ``version``.

    Edits the value of the single top-level ``version:`` line in place (keeping its
    quoting and any trailing comment); the result is checked to parse to the original
    mapping with only ``version`` changed. If no such line can be edited safely, the
    mapping is re-serialised (sorted keys, block style) instead.
    """
    if original is None:
        original = _parse_chart_yaml(chart_yaml, "Chart.yaml", CHART_YAML)
    wanted = dict(original)
    wanted["version"] = version
    found = list(_VERSION_LINE.finditer(chart_yaml))
    if len(found) == 1:
        m = found[0]
        value = m.group("value")
        quote = value[:1] if value[:1] in (b'"', b"'") else b""
        edited = (
            chart_yaml[: m.start("value")]
            + quote
            + version.encode("utf-8")
            + quote
            + chart_yaml[m.end("value") :]
        )
        try:
            if yamlload.load(edited, CHART_YAML) == wanted:
                return edited
        except yaml.YAMLError:
            pass
    dumped = yaml.safe_dump(wanted, sort_keys=True, default_flow_style=False, allow_unicode=True)
    return dumped.encode("utf-8")
