#!/usr/bin/env python3
"""Benchmark: what the channel protocol costs, in requests and time, on a loopback registry.

    .venv/bin/python bench/bench_channels.py [--rounds N] [--settle S] [--quick] [--rows FILE]

One real CNCF distribution registry (anonymous) behind the counting proxy of the test
harness. Three releases are published with ``alga-release publish`` (in process); then, per
round, measured through the proxy:

  promote (fast path)      a promote whose read-back proves it (settle S)
  promote (slow path)      the same with settle 0, which always reconciles: tag listing,
                           the records, a second settle-less round
  no-op promote            the channel already there
  :<version> push          the immutable-tag protocol alone (first read, claim, tag,
                           settle, read-back, confirmation, re-read); a plain push is 2
  history, 1,000 moves     ``history`` of a channel whose index holds 1,000 entries (all
                           pages), and the index alone (the last 100-199, what rollback
                           and the gates read)

It prints requests and wall time (median of N rounds; the settle is included in the time
and printed beside it). The figures are printed, never asserted: this is not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common as bc  # noqa: E402
from bench.bench_requests import source_tree  # noqa: E402
from steps.channels import audit  # noqa: E402
from steps.channels.audit import ChannelIndex, MoveRecord  # noqa: E402
from steps.cli.app import run  # noqa: E402
from tests.harness.faults import start_fault_proxy  # noqa: E402
from tests.harness.registry import start_registry  # noqa: E402
from tests.helpers import client_for, registry_args  # noqa: E402
from tests.integration.test_publish import publish_args, push_images  # noqa: E402


def cli(argv: list[str]) -> int:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(argv)
    if code != 0:
        raise SystemExit(f"alga-release {' '.join(argv[:2])} failed ({code}):\n{err.getvalue()}")
    return code


def measure(proxy: Any, argv: list[str]) -> tuple[int, int, float]:
    """Requests, of which writes, and wall time of one command through the proxy."""
    proxy.reset()
    started = time.perf_counter()
    cli(argv)
    wall = time.perf_counter() - started
    writes = sum(1 for r in proxy.requests if r.method in ("PUT", "POST", "PATCH"))
    return len(proxy.requests), writes, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--settle", type=float, default=0.2)
    bc.add_common_args(parser)
    opts = parser.parse_args()
    if opts.quick:
        opts.rounds = 1
    os.environ["ALGA_RETRY_BASE_DELAY"] = "0"
    with tempfile.TemporaryDirectory(prefix="bench-channels-") as tmp_text:
        tmp = Path(tmp_text)
        with start_registry(tmp / "registry") as reg:
            proxy = start_fault_proxy(reg)
            src = source_tree(tmp)
            push_images(reg)
            os.environ["ALGA_SETTLE"] = str(opts.settle)
            for n in range(3):
                values = src / "examples" / "charts" / "pgbouncer" / "values.yaml"
                values.write_text(values.read_text() + f"\n# {n}\n")
                cli(publish_args(reg, src, version=f"1.{n}.0", host=proxy.host))
            rows: dict[str, list[tuple[int, int, float]]] = {}
            reg_args = registry_args(reg, proxy.host)

            def promote(version: str, settle: float) -> list[str]:
                return [
                    "promote",
                    "--version",
                    version,
                    "--channel",
                    "stable",
                    "--settle",
                    str(settle),
                    *reg_args,
                ]

            back = ["--allow-downgrade", "--reason", "bench"]
            for r in range(opts.rounds):
                rows.setdefault("promote (fast path)", []).append(
                    measure(proxy, [*promote("1.1.0", opts.settle), *back])
                )
                rows.setdefault("promote --dry-run (gates, first read)", []).append(
                    measure(proxy, [*promote("1.2.0", opts.settle), "--dry-run"])
                )
                rows.setdefault("no-op promote", []).append(
                    measure(proxy, promote("1.1.0", opts.settle))
                )
                rows.setdefault("promote (slow path, settle 0)", []).append(
                    measure(proxy, [*promote("1.2.0" if r % 2 == 0 else "1.0.0", 0), *back])
                )
            # :<version> through the immutable-tag protocol (the bytes of 1.0.0 under new tags)
            from steps.channels.immutable import put_immutable
            from steps.channels.move import Timing
            from steps.oci import mediatypes as mt

            with client_for(reg, host=proxy.host) as client:
                data = client.get_manifest("nine-minds/alga-appliance-release", "1.0.0").data
                for r in range(opts.rounds):
                    proxy.reset()
                    started = time.perf_counter()
                    put_immutable(
                        client,
                        "nine-minds/alga-appliance-release",
                        f"9.9.{r}",
                        data,
                        mt.OCI_MANIFEST,
                        what="release",
                        timing=Timing(settle=opts.settle),
                    )
                    wall = time.perf_counter() - started
                    writes = sum(1 for q in proxy.requests if q.method == "PUT")
                    rows.setdefault(":<version> push (protocol only)", []).append(
                        (len(proxy.requests), writes, wall)
                    )
            # history of 1,000 moves: an index written whole (its pages archived)
            with client_for(reg, host=proxy.host) as client:
                head = client.head_manifest("nine-minds/alga-appliance-release", "1.0.0")
                assert head is not None
                entries = tuple(
                    MoveRecord(
                        "nightly",
                        "promote",
                        str(head.digest),
                        "1.0.0",
                        actor="bench",
                        tag=f"move.nightly.20260101T{i // 3600 % 24:02d}{i // 60 % 60:02d}"
                        f"{i % 60:02d}.000000Z.{i:06x}",
                    )
                    for i in range(1000)
                )
                audit.write_index(client, "nine-minds", ChannelIndex("nightly", entries))
            for _ in range(opts.rounds):
                rows.setdefault("history, 1,000 moves (all pages)", []).append(
                    measure(proxy, ["history", "nightly", *reg_args, "--json"])
                )
                proxy.reset()
                started = time.perf_counter()
                with client_for(reg, host=proxy.host) as client:
                    index = audit.read_index(client, "nine-minds", "nightly")
                assert index is not None
                rows.setdefault("index alone (rollback, gates)", []).append(
                    (len(proxy.requests), 0, time.perf_counter() - started)
                )
            proxy.stop()
    print(f"channel protocol on loopback, settle {opts.settle}s, median of {opts.rounds} rounds")
    print("(a promote's requests include its gates and its verify, ~30, not only the move)")
    print(f"{'operation':<36} {'requests':>8} {'writes':>7} {'wall s':>8}")
    for name, values in rows.items():
        requests = statistics.median(v[0] for v in values)
        writes = statistics.median(v[1] for v in values)
        wall = statistics.median(v[2] for v in values)
        print(f"{name:<36} {requests:>8.0f} {writes:>7.0f} {wall:>8.3f}")
    history = rows["history, 1,000 moves (all pages)"]
    index = rows["index alone (rollback, gates)"]
    history_requests = statistics.median(v[0] for v in history)
    index_requests = statistics.median(v[0] for v in index)
    bc.emit(
        opts,
        [
            bc.Row(
                "`history` with 1,000 records (every page)",
                f"{bc.seconds_text(statistics.median(v[2] for v in history))}, "
                f"{history_requests:.0f} requests",
                "-",
                None,
                "not linear in records",
                history_requests < 100,
            ),
            bc.Row(
                "  the channel's index alone (rollback, the gates)",
                f"{bc.seconds_text(statistics.median(v[2] for v in index))}, "
                f"{index_requests:.0f} requests",
                "-",
                None,
                "O(1) requests",
                index_requests <= 5,
            ),
        ],
    )


if __name__ == "__main__":
    main()
