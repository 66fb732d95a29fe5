"""Request bodies for uploads: one-shot chunks and streams regrouped into PATCH-sized parts.

Pure iterator plumbing, no I/O of its own (a file is read only by :func:`chunks` when given
a path). Each body is one pass: httpx keeps request objects in reference cycles until the
garbage collector runs, so a body that forgets its bytes once sent keeps memory bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from steps.oci.errors import IncompleteBody

__all__ = ["Counted", "OneShot", "chunks", "regroup"]


class OneShot:
    """An iterable that yields its bytes once and then forgets them."""

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def __iter__(self) -> Iterator[bytes]:
        data, self._data = self._data, None
        if data is not None:
            yield data


class Counted:
    """A request body streamed from ``pieces`` (one pass), ``length`` bytes long."""

    def __init__(self, pieces: Iterable[bytes], length: int, what: str) -> None:
        self._pieces: Iterable[bytes] | None = pieces
        self.length = length
        self._what = what

    def __iter__(self) -> Iterator[bytes]:
        pieces, self._pieces = self._pieces, None
        if pieces is None:
            return
        sent = 0
        for piece in pieces:
            sent += len(piece)
            yield piece
        if sent != self.length:
            raise IncompleteBody(
                f"{self._what}: the source gave {sent} of the {self.length} bytes of a chunk",
                hint="the source registry's download broke off; retry",
            )


class _Pushback:
    """An iterator of byte pieces that can be read ``n`` bytes at a time."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces = iter(pieces)
        self._head = b""

    def has_more(self) -> bool:
        while not self._head:
            piece = next(self._pieces, None)
            if piece is None:
                return False
            self._head = piece
        return True

    def take(self, n: int) -> Iterator[bytes]:
        while n > 0 and self.has_more():
            piece, self._head = self._head[:n], self._head[n:]
            n -= len(piece)
            yield piece


def regroup(pieces: Iterable[bytes], size: int) -> Iterator[Iterator[bytes]]:
    """``pieces`` cut into consecutive groups of ``size`` bytes (the last may be shorter),
    each a lazy iterator; consume one group before asking for the next."""
    source = _Pushback(pieces)
    while source.has_more():
        yield source.take(size)


def chunks(data: bytes | Path, size: int) -> Iterator[bytes]:
    if isinstance(data, bytes):
        for start in range(0, len(data), size):
            yield data[start : start + size]
        return
    with data.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk
