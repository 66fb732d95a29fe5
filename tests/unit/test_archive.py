"""steps.archive: the streamed gzip member and its spooling."""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
from pathlib import Path

from steps import archive


def test_the_member_is_the_same_whatever_the_writes_and_spools_to_a_file() -> None:
    data = os.urandom(300_000) + b"text " * 100_000
    whole = archive.gzip_bytes(data, 9)
    sink = archive.GzipSink(9, spool_limit=64 * 1024)
    for start in range(0, len(data), 7919):
        sink.write(data[start : start + 7919])
    assert sink.raw_sha256 == hashlib.sha256(data).hexdigest()
    blob = sink.finish()
    source = blob.source
    assert isinstance(source, Path) and source.is_file()  # past the spool limit
    assert blob.read() == whole and blob.size == len(whole)
    assert blob.sha256 == hashlib.sha256(whole).hexdigest()
    assert gzip.decompress(whole) == data
    assert whole[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    del blob
    assert not source.exists()  # the temporary file goes with the blob


def test_xfl_follows_the_level_as_go_writes_it() -> None:
    assert archive.gzip_bytes(b"x", 9)[8] == 2
    assert archive.gzip_bytes(b"x", 1)[8] == 4
    assert archive.gzip_bytes(b"x", 6)[8] == 0


def test_tarfile_writes_into_the_sink() -> None:
    sink = archive.GzipSink(6)
    with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("a/b.txt")
        info.size = 3
        import io

        tar.addfile(info, io.BytesIO(b"abc"))
    files = archive.tar_files(sink.finish().read())
    assert files == {"a/b.txt": b"abc"}
