#!/usr/bin/env python3
"""Benchmark: publish the six reference charts, ours against the real helm.

    make bench          # or: .venv/bin/python bench/bench_charts.py [--rounds N]

Four runs, each against the real CNCF distribution registry on loopback, each
through a counting proxy (so both tools pay the same proxy cost):

  ours cold       one `alga-release charts publish` process, empty registry
  ours unchanged  the same command again
  helm cold       `helm package` + `helm push` per chart, another empty registry
  helm unchanged  the same again

It prints wall time, HTTP requests and request-body bytes uploaded, per chart
and in total. Targets: the unchanged re-run uploads 0 bytes; the cold run is
not slower than helm. The figures are printed, never asserted: this is not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from steps.config import KNOWN_CHARTS, load_config  # noqa: E402
from tests.harness.faults import FaultProxy, start_fault_proxy  # noqa: E402
from tests.harness.registry import Registry, start_registry  # noqa: E402

HELM = os.environ.get("ALGA_HELM", str(ROOT / ".tools" / "bin" / "helm"))
CLI = str(ROOT / ".venv" / "bin" / "alga-release")


@dataclass
class Run:
    label: str
    seconds: float
    requests: dict[str, int]
    uploaded: dict[str, int]

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def total_uploaded(self) -> int:
        return sum(self.uploaded.values())


def _by_chart(proxy: FaultProxy) -> tuple[dict[str, int], dict[str, int]]:
    requests = {name: 0 for name in KNOWN_CHARTS}
    uploaded = {name: 0 for name in KNOWN_CHARTS}
    for r in proxy.requests:
        for name in KNOWN_CHARTS:
            if f"/charts/{name}/" in r.path:
                requests[name] += 1
                uploaded[name] += r.body_bytes
                break
        else:
            requests.setdefault("(other)", 0)
            requests["(other)"] += 1
    return requests, uploaded


def ours(label: str, proxy: FaultProxy, source: Path, config: Path) -> Run:
    proxy.reset()
    env = dict(os.environ, ALGA_REGISTRY_USERNAME="", ALGA_REGISTRY_PASSWORD="")
    start = time.perf_counter()
    subprocess.run(
        [
            CLI,
            "-q",
            "charts",
            "publish",
            "--source",
            str(source),
            "--config",
            str(config),
            "--registry",
            proxy.host,
            "--plain-http",
            "--json",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    seconds = time.perf_counter() - start
    return Run(label, seconds, *_by_chart(proxy))


def helm(
    label: str, proxy: FaultProxy, source: Path, chart_dirs: dict[str, str], work: Path
) -> Run:
    proxy.reset()
    out = work / label.replace(" ", "-")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = time.perf_counter()
    for name in KNOWN_CHARTS:
        subprocess.run(
            [HELM, "package", str(source / chart_dirs[name]), "-d", str(out)],
            check=True,
            capture_output=True,
        )
        tgz = next(out.glob(f"{name}-*.tgz"))
        subprocess.run(
            [HELM, "push", str(tgz), f"oci://{proxy.host}/nine-minds/charts", "--plain-http"],
            check=True,
            capture_output=True,
        )
        tgz.unlink()
    seconds = time.perf_counter() - start
    return Run(label, seconds, *_by_chart(proxy))


def source_sizes(source: Path, chart_dirs: dict[str, str]) -> dict[str, tuple[int, int]]:
    sizes = {}
    for name in KNOWN_CHARTS:
        files = [p for p in (source / chart_dirs[name]).rglob("*") if p.is_file()]
        sizes[name] = (sum(p.stat().st_size for p in files), len(files))
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=ROOT)
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "release.yaml")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="repeat each run on fresh registries; median times are shown",
    )
    args = parser.parse_args()
    chart_dirs = dict(load_config(args.config).charts)
    work = Path(tempfile.mkdtemp(prefix="alga-bench-"))
    runs: dict[str, list[Run]] = {}
    try:
        for round_no in range(args.rounds):
            registries: list[Registry] = []
            proxies: list[FaultProxy] = []
            try:
                for side in ("ours", "helm"):
                    reg = start_registry(work / f"{side}-{round_no}")
                    registries.append(reg)
                    proxy = start_fault_proxy(reg)
                    proxies.append(proxy)
                    for phase in ("cold", "unchanged"):
                        label = f"{side} {phase}"
                        if side == "ours":
                            run = ours(label, proxy, args.source, args.config)
                        else:
                            run = helm(label, proxy, args.source, chart_dirs, work)
                        runs.setdefault(label, []).append(run)
            finally:
                for proxy in proxies:
                    proxy.stop()
                for reg in registries:
                    reg.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    sizes = source_sizes(args.source, chart_dirs)
    print(
        "charts (source bytes / files): "
        + ", ".join(f"{n} {s // 1024} KB/{c}" for n, (s, c) in sizes.items())
    )
    helm_version = subprocess.run(
        [HELM, "version", "--short"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(
        f"helm: {helm_version}; "
        f"rounds: {args.rounds}; registry: CNCF distribution on 127.0.0.1 behind a counting proxy\n"
    )
    header = f"{'run':<16} {'wall s (median)':>16} {'requests':>9} {'uploaded bytes':>15}"
    print(header)
    print("-" * len(header))
    for label, group in runs.items():
        last = group[-1]
        median = statistics.median(r.seconds for r in group)
        print(f"{label:<16} {median:>16.3f} {last.total_requests:>9} {last.total_uploaded:>15}")
    print("\nper chart (last round): requests / uploaded bytes")
    labels = list(runs)
    print(f"{'chart':<16} " + " ".join(f"{lbl:>22}" for lbl in labels))
    for name in KNOWN_CHARTS:
        cells = [
            f"{runs[lbl][-1].requests[name]:>5} / {runs[lbl][-1].uploaded[name]:>12}"
            for lbl in labels
        ]
        print(f"{name:<16} " + " ".join(f"{c:>22}" for c in cells))
    cold_ours = statistics.median(r.seconds for r in runs["ours cold"])
    cold_helm = statistics.median(r.seconds for r in runs["helm cold"])
    print(
        f"\ntarget: unchanged re-run uploads 0 bytes: "
        f"{'met' if runs['ours unchanged'][-1].total_uploaded == 0 else 'NOT met'} "
        f"({runs['ours unchanged'][-1].total_uploaded} bytes)"
    )
    print(
        f"target: cold run not slower than helm: "
        f"{'met' if cold_ours <= cold_helm else 'NOT met'} "
        f"(ours {cold_ours:.3f}s vs helm {cold_helm:.3f}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
