"""steps.oci.bodies: one-shot bodies, regrouping, and the read-ahead a copy's download runs in."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from steps.oci.bodies import read_ahead, regroup


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name == "read-ahead"}


def test_read_ahead_yields_every_piece_in_order() -> None:
    pieces = [bytes([n]) * 1000 for n in range(50)]
    assert list(read_ahead(iter(pieces), 1)) == pieces
    assert not _threads()


def test_read_ahead_runs_the_source_on_another_thread_ahead_of_the_consumer() -> None:
    pulled: list[int] = []
    consumer_at_first = threading.Event()
    names: set[str] = set()

    def source() -> Iterator[bytes]:
        for n in range(3):
            names.add(threading.current_thread().name)
            pulled.append(n)
            yield b"x"
            if n == 0:
                consumer_at_first.wait(5)

    stream = read_ahead(source(), 1)
    assert next(stream) == b"x"
    consumer_at_first.set()
    assert list(stream) == [b"x", b"x"]
    assert names == {"read-ahead"} and pulled == [0, 1, 2]


def test_an_error_while_pulling_is_raised_where_the_consumer_reaches_it() -> None:
    def source() -> Iterator[bytes]:
        yield b"a"
        yield b"b"
        raise ConnectionError("the source broke off")

    got: list[bytes] = []
    with pytest.raises(ConnectionError, match="broke off"):
        for piece in read_ahead(source(), 1):
            got.append(piece)
    assert got == [b"a", b"b"]
    assert not _threads()


def test_a_consumer_that_stops_early_stops_the_thread_and_closes_the_source() -> None:
    closed = threading.Event()
    pulled: list[int] = []

    def source() -> Iterator[bytes]:
        try:
            for n in range(10_000):
                pulled.append(n)
                yield b"y" * 100
        finally:
            closed.set()

    stream = read_ahead(source(), 1)
    assert next(stream) == b"y" * 100
    stream.close()
    assert closed.is_set()
    assert not _threads()
    assert len(pulled) < 10  # bounded: at most a piece or two ahead of the consumer


def test_regroup_cuts_a_stream_into_parts_of_the_given_size() -> None:
    parts = [b"".join(part) for part in regroup(iter([b"abc", b"defg", b"h"]), 3)]
    assert parts == [b"abc", b"def", b"gh"]
