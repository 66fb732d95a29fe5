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
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from queue import SimpleQueue
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient

T = TypeVar("T")
W = TypeVar("W")
R = TypeVar("R")


def in_parallel(items: Sequence[T], work: Callable[[T, W], R], workers: Sequence[W]) -> list[R]:
    """``[work(item, worker) for item in items]``, up to ``len(workers)`` at a time."""
    if len(workers) <= 1 or len(items) <= 1:
        return [work(item, workers[0]) for item in items]
    idle: SimpleQueue[W] = SimpleQueue()
    for worker in workers:
        idle.put(worker)

    def job(item: T) -> R:
        worker = idle.get()
        try:
            return work(item, worker)
        finally:
            idle.put(worker)

    with ThreadPoolExecutor(max_workers=len(workers), thread_name_prefix="alga-job") as pool:
        futures = [pool.submit(job, item) for item in items]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            for future in futures:
                future.cancel()  # those not started; the ones under way end first
            wait(futures)
            error = failed.exception()
            assert error is not None
            raise error
        return [future.result() for future in futures]


@contextlib.contextmanager
def siblings(client: RegistryClient, count: int) -> Iterator[list[RegistryClient]]:
    """Up to ``count`` sibling clients of ``client`` (just ``client`` when it cannot have
    any: a custom transport), closed at the end with their stats added to its."""
    made: list[RegistryClient] = []
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
