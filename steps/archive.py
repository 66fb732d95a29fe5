"""Deterministic gzip'd tar archives, written as a stream; and reading them back, bounded.

Charts (:mod:`steps.charts.package`) and the Flux bundle (:mod:`steps.bundle.artifact`)
are both one gzip member around one tar. This module writes that member as a stream
into a spooled temporary file, so the memory a package needs does not grow with its
size: :class:`GzipSink` takes the tar's bytes as ``tarfile`` writes them, deflates them
and hashes both sides on the way, and hands back a :class:`Blob` (in memory while small,
a temporary file past :data:`SPOOL_LIMIT`).

The gzip member (RFC 1952) is written by hand: no file name, no comment, mtime 0, OS
byte 255 ("unknown", like helm's), XFL from the level (2 for 9, 4 for 1, else 0, as
Go's ``compress/gzip`` writes it). The deflate stream is zlib's and depends only on the
input bytes and the level, not on how the input was split into writes.

Also here: :func:`tar_files`, the regular files of a published gzip'd tar, with a cap
on the expanded size, and helm's size limits for chart archives.

Pure except :class:`GzipSink`'s temporary file (removed when the blob is dropped).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

#: Past this many compressed bytes a blob moves from memory to a temporary file.
SPOOL_LIMIT = 8 * 1024 * 1024
_READ_SIZE = 1024 * 1024

#: helm's ``MaxDecompressedChartSize``: it refuses to load a chart whose files add up to
#: this many bytes or more (``pkg/chart/loader/archive``, helm v3.17 and v4).
HELM_MAX_CHART_SIZE = 100 * 1024 * 1024
#: helm's ``MaxDecompressedFileSize``: it refuses any chart file larger than this, both
#: when packaging a folder and when loading an archive. helm has no limit on file count.
HELM_MAX_FILE_SIZE = 5 * 1024 * 1024


class Blob:
    """Bytes to push: in memory, or in a temporary file this object owns."""

    def __init__(self, *, data: bytes | None, path: Path | None, size: int, sha256: str):
        self._data = data
        self._path = path
        self.size = size
        self.sha256 = sha256

    @property
    def source(self) -> bytes | Path:
        """What :meth:`steps.oci.client.RegistryClient.push_blob` takes: bytes or a file."""
        if self._data is not None:
            return self._data
        assert self._path is not None
        return self._path

    def read(self) -> bytes:
        """All the bytes (reads the temporary file when there is one)."""
        if self._data is not None:
            return self._data
        assert self._path is not None
        return self._path.read_bytes()

    def open(self) -> IO[bytes]:
        if self._data is not None:
            return io.BytesIO(self._data)
        assert self._path is not None
        return self._path.open("rb")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Blob):
            return NotImplemented
        return (self.size, self.sha256) == (other.size, other.sha256)

    def __hash__(self) -> int:
        return hash(self.sha256)

    def __repr__(self) -> str:
        return f"Blob(sha256:{self.sha256[:12]}, {self.size} bytes)"

    def __del__(self) -> None:
        if self._path is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()


def _xfl(level: int) -> int:
    return 2 if level == 9 else 4 if level == 1 else 0


class GzipSink(io.RawIOBase):
    """A write-only file: deflates what it is given into one deterministic gzip member.

    ``tarfile.open(fileobj=sink, mode="w")`` writes a tar into it; :meth:`finish` closes
    the member and returns the :class:`Blob`. ``raw_sha256`` is the sha256 of the bytes
    written (the uncompressed tar: an OCI ``diff_id``).
    """

    def __init__(self, level: int, *, spool_limit: int = SPOOL_LIMIT) -> None:
        super().__init__()
        self._level = level
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 8)
        self._crc = 0
        self._raw_size = 0
        self._raw_hash = hashlib.sha256()
        self._out_hash = hashlib.sha256()
        self._out_size = 0
        self._spool_limit = spool_limit
        self._buffer: io.BytesIO | None = io.BytesIO()
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._emit(b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes([_xfl(level), 0xFF]))

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._raw_size

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = bytes(data)
        self._crc = zlib.crc32(chunk, self._crc)
        self._raw_size += len(chunk)
        self._raw_hash.update(chunk)
        out = self._compressor.compress(chunk)
        if out:
            self._emit(out)
        return len(chunk)

    def _emit(self, out: bytes) -> None:
        self._out_hash.update(out)
        self._out_size += len(out)
        if self._buffer is not None:
            self._buffer.write(out)
            if self._buffer.tell() > self._spool_limit:
                import tempfile  # only a big archive spills to a file

                fd, name = tempfile.mkstemp(prefix="alga-archive-", suffix=".tgz")
                self._path = Path(name)
                self._file = os.fdopen(fd, "wb")
                self._file.write(self._buffer.getvalue())
                self._buffer = None
        else:
            assert self._file is not None
            self._file.write(out)

    @property
    def raw_sha256(self) -> str:
        return self._raw_hash.hexdigest()

    def finish(self) -> Blob:
        """Close the member: flush the deflate stream, write CRC-32 and size."""
        self._emit(self._compressor.flush())
        self._emit(struct.pack("<II", self._crc & 0xFFFFFFFF, self._raw_size & 0xFFFFFFFF))
        if self._buffer is not None:
            return Blob(
                data=self._buffer.getvalue(),
                path=None,
                size=self._out_size,
                sha256=self._out_hash.hexdigest(),
            )
        assert self._file is not None
        self._file.close()
        return Blob(
            data=None, path=self._path, size=self._out_size, sha256=self._out_hash.hexdigest()
        )


def gzip_bytes(data: bytes, level: int) -> bytes:
    """``data`` as one gzip member (the same bytes :class:`GzipSink` writes)."""
    sink = GzipSink(level, spool_limit=len(data) + 1024)
    sink.write(data)
    return sink.finish().read()


def file_chunks(path: Path, skip: int = 0) -> Iterator[bytes]:
    """The bytes of ``path`` after the first ``skip``, in chunks."""
    with path.open("rb") as fh:
        if skip:
            fh.seek(skip)
        while chunk := fh.read(_READ_SIZE):
            yield chunk


def tar_files(tarball: bytes, limit: int = 256 * 1024 * 1024) -> dict[str, bytes] | None:
    """Regular files of a gzip'd tar (path -> bytes), or None if it is not one or its
    files add up to more than ``limit`` bytes."""
    import tarfile  # here: modules that only read JSON (json_object) need not load it

    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            for member in tar:
                if member.isfile():
                    total += member.size
                    if total > limit:
                        return None
                    extracted = tar.extractfile(member)
                    files[member.name.removeprefix("./")] = extracted.read() if extracted else b""
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        return None
    return files


def json_object(data: bytes, what: str, error: Callable[[str], Exception]) -> dict[str, Any]:
    """``data`` parsed as one JSON object; anything else is refused as ``error``, naming
    ``what`` (e.g. "release 1.4.0: the config blob")."""
    try:
        value = json.loads(data)
    except ValueError:
        raise error(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise error(f"{what} is not a JSON object")
    return value
