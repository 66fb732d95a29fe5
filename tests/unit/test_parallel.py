"""steps.oci.parallel: order, bounds, the first error, and an interrupt."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from steps.oci.parallel import Stopped, check_stop, in_parallel


def test_results_come_in_the_items_order_with_at_most_one_item_per_worker() -> None:
    busy: set[str] = set()
    most = [0]
    lock = threading.Lock()

    def work(item: int, worker: str) -> tuple[int, str]:
        with lock:
            assert worker not in busy  # a worker serves one item at a time
            busy.add(worker)
            most[0] = max(most[0], len(busy))
        time.sleep(0.01 * (5 - item % 5))
        with lock:
            busy.discard(worker)
        return item, worker

    out = in_parallel(list(range(12)), work, ["a", "b", "c"])
    assert [item for item, _ in out] == list(range(12))
    assert most[0] == 3


def test_the_first_error_starts_nothing_more_and_is_raised() -> None:
    started: list[int] = []

    def work(item: int, worker: str) -> int:
        started.append(item)
        if item == 1:
            raise ValueError("item 1 failed")
        time.sleep(0.2 if item == 0 else 0)
        return item

    with pytest.raises(ValueError, match="item 1 failed"):
        in_parallel(list(range(20)), work, ["a", "b"])
    assert len(started) < 20  # those not started when it failed never were


def test_an_interrupt_stops_the_work_under_way_and_starts_nothing_more() -> None:
    stop = threading.Event()
    started: list[int] = []
    ended: dict[int, str] = {}

    def work(item: int, worker: str) -> int:
        started.append(item)
        if item == 0:
            time.sleep(0.1)  # every item handed out: the main thread waits
            # as Ctrl-C does: SIGINT, to the main thread waiting for the items
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                check_stop(stop)
                time.sleep(0.005)
        except Stopped:
            ended[item] = "stopped"
            raise
        ended[item] = "ran out"
        return item

    with pytest.raises(KeyboardInterrupt):
        in_parallel(list(range(10)), work, ["a", "b"], stop)
    assert sorted(started) == [0, 1]  # two workers: nothing after them started
    assert ended == {0: "stopped", 1: "stopped"}
    assert stop.is_set()
