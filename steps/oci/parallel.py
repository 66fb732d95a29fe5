"""Work spread over a few sibling clients, one thread each (a client serves one thread at a
time): the blobs of a control-plane copy, the charts of a release.

:func:`in_parallel` runs ``work(item, worker)`` for every item with up to
``len(workers)`` items at once, each on a worker borrowed for that item; the results come
in the items' order. The first error stops the items not yet started, lets the ones under
way end, and is raised. :func:`siblings` makes the workers
(:meth:`~steps.oci.client.RegistryClient.spawn`), and closes them afterwards with their
requests counted in the client they came from.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol, Self, TypeVar

if TYPE_CHECKING:
    from steps.oci.model import ClientStats


class Spawning(Protocol):
    """What :func:`siblings` needs of a client (:class:`~steps.oci.client.RegistryClient`)."""

    stats: ClientStats

    def spawn(self) -> Self | None: ...

    def close(self) -> None: ...


C = TypeVar("C", bound=Spawning)
T = TypeVar("T")
W = TypeVar("W")
R = TypeVar("R")


def in_parallel(
    items: Sequence[T],
    work: Callable[[T, W], R],
    workers: Sequence[W],
    stop: threading.Event | None = None,
) -> list[R]:
    """``[work(item, worker) for item in items]``, up to ``len(workers)`` at a time.

    Interrupted (Ctrl-C) while it hands out or waits, it starts nothing more, sets
    ``stop`` (for work that can end early: see :func:`check_stop`) and re-raises once the
    work under way has ended."""
    if len(workers) <= 1 or len(items) <= 1:
        return [work(item, workers[0]) for item in items]
    # here, not with the module: the copy's no-op re-copy imports this module and never
    # gets this far
    from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
    from queue import SimpleQueue

    idle: SimpleQueue[W] = SimpleQueue()
    for worker in workers:
        idle.put(worker)

    def job(item: T) -> R:
        worker = idle.get()
        try:
            return work(item, worker)
        finally:
            idle.put(worker)

    pool = ThreadPoolExecutor(max_workers=len(workers), thread_name_prefix="alga-job")
    futures: list[Future[R]] = []
    try:
        for item in items:
            futures.append(pool.submit(job, item))
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
    except BaseException:  # an interrupt (Ctrl-C) while submitting or waiting: stop
        if stop is not None:
            stop.set()  # the work under way checks it and ends early
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    failed = next((f for f in futures if f in done and f.exception() is not None), None)
    if failed is not None:
        pool.shutdown(wait=True, cancel_futures=True)  # the ones under way end first
        error = failed.exception()
        assert error is not None
        raise error
    pool.shutdown(wait=True)
    return [future.result() for future in futures]


class Stopped(Exception):
    """Work given up because the run was interrupted (:func:`check_stop`)."""


def check_stop(stop: threading.Event | None) -> None:
    """Raise :class:`Stopped` once ``stop`` is set (call it between pieces of long work)."""
    if stop is not None and stop.is_set():
        raise Stopped("interrupted")


@contextlib.contextmanager
def siblings(client: C, count: int) -> Iterator[list[C]]:
    """Up to ``count`` sibling clients of ``client`` (just ``client`` when it cannot have
    any: a custom transport), closed at the end with their stats added to its."""
    made: list[C] = []
    try:
        for _ in range(count if count > 1 else 0):
            sibling = client.spawn()
            if sibling is None:
                break
            made.append(sibling)
        yield made or [client]
    finally:
        for sibling in made:
            sibling.close()
            client.stats.absorb(sibling.stats)
