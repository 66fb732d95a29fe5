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
not slower than helm.

Then big text-heavy charts (``--big``, on by default; ``--no-big`` skips them), each
made of 1 MiB text files (helm refuses files over 5 MiB), published straight to the
registry, ours (one `charts publish` process) against `helm package` + `helm push`,
side by side: wall and CPU seconds and peak RSS of each process (``wait4``):

  50 MB chart   both publish it
  200 MB chart  over helm's 100 MiB limit: `helm push` refuses it, and so does ours,
                before packaging; the packaging itself (limit lifted) is measured
                through the library in its own process, for its peak RSS

The figures are printed, never asserted: this is not a test.
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

from bench import common as bc  # noqa: E402
from bench.common import Measured, measured  # noqa: E402
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
    env = bc.clean_env()
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


# -- big charts ----------------------------------------------------------------------

MiB = 1024 * 1024
PACKAGE_ONLY = """
import resource, sys
from pathlib import Path
from steps.charts import package as p
src = p.load_chart(Path(sys.argv[1]))
files = p.collect_files(src, max_size=1 << 40)
pkg = p.package_chart(src, files, p.immutable_version(src.version, p.content_hash(src, files)))
print(pkg.blob.size)
"""


def text_chart(root: Path, megabytes: int) -> Path:
    """A chart named sebastian with ``megabytes`` 1 MiB text files (YAML-like lines of
    pseudo-random words: deflate takes about as long on them as on real templates)."""
    import random

    rng = random.Random(megabytes)
    words = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 10)))
        for _ in range(5000)
    ]
    lines: list[str] = []
    size = 0
    while size < MiB:
        line = (
            "  " * rng.randint(0, 5)
            + rng.choice(words)
            + ": "
            + " ".join(rng.choices(words, k=rng.randint(1, 8)))
            + "\n"
        )
        lines.append(line)
        size += len(line)
    chart = root / f"text-{megabytes}mb"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: sebastian\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("replicas: 1\n")
    for i in range(megabytes):
        rng.shuffle(lines)
        (chart / "templates" / f"part-{i:03d}.txt").write_text("".join(lines)[:MiB])
    return chart


def _row(label: str, m: Measured) -> str:
    return f"{label:<22} {m.code:>4} {m.seconds:>8.2f} {m.cpu:>8.2f} {m.rss_mib:>9.1f}"


def _sum(parts: list[Measured]) -> Measured:
    """Processes run one after the other: wall and CPU add up, the peak is the largest."""
    return Measured(
        sum(m.seconds for m in parts),
        sum(m.cpu for m in parts),
        max(m.rss_mib for m in parts),
        next((m.code for m in parts if m.code), 0),
    )


def _median(runs: list[Measured]) -> Measured:
    """The median wall and CPU time of ``runs``, their highest peak, the last exit."""
    return Measured(
        bc.median([m.seconds for m in runs]),
        bc.median([m.cpu for m in runs]),
        max(m.rss_mib for m in runs),
        runs[-1].code,
    )


def big_chart(work: Path, megabytes: int, rounds: int) -> dict[str, Measured]:
    """Ours (one `charts publish`), helm (`helm package` + `helm push`) and packaging alone
    (the library, helm's size limit lifted), interleaved rounds on fresh registries."""
    env = bc.clean_env()
    chart = text_chart(work / "big", megabytes)
    config = work / f"big-{megabytes}.yaml"
    config.write_text(f"charts:\n  sebastian: {chart.relative_to(work)}\n")

    def ours(number: int) -> Measured:
        with start_registry(work / f"big-reg-ours-{megabytes}-{number}") as reg:
            argv = [CLI, "-q", "charts", "publish", "--source", str(work), "--config", str(config)]
            return measured([*argv, "--registry", reg.host, "--plain-http", "--json"], env)

    def helm(number: int) -> Measured:
        out = work / f"helm-out-{megabytes}-{number}"
        out.mkdir()
        with start_registry(work / f"big-reg-helm-{megabytes}-{number}") as reg:
            package = measured([HELM, "package", str(chart), "-d", str(out)], env)
            tgz = next(out.glob("*.tgz"), None)
            if tgz is None:
                return package
            target = f"oci://{reg.host}/helm/charts"
            push = measured([HELM, "push", str(tgz), target, "--plain-http"], env)
        shutil.rmtree(out, ignore_errors=True)
        return _sum([package, push])

    def packaging(_number: int) -> Measured:
        argv = [sys.executable, "-c", PACKAGE_ONLY, str(chart)]
        return measured(argv, bc.clean_env(PYTHONPATH=str(ROOT)))

    runs = bc.interleaved(rounds, {"ours": ours, "helm": helm, "packaging": packaging})
    shutil.rmtree(chart, ignore_errors=True)
    return {label: _median(group) for label, group in runs.items()}


def big_chart_rows(work: Path, sizes: tuple[int, int], rounds: int) -> list[bc.Row]:
    """Print the big charts' figures; the summary rows for the issue's table."""
    print(
        f"\nbig text charts (1 MiB files), straight to the registry, median of {rounds} "
        "interleaved round(s), peak RSS each process's VmHWM:"
    )
    print(f"{'run':<22} {'exit':>4} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9}")
    figures = {}
    for megabytes in sizes:
        got = big_chart(work, megabytes, rounds if megabytes == sizes[0] else 1)
        figures[megabytes] = got
        ratio = got["ours"].seconds / max(got["helm"].seconds, 1e-9)
        print(_row(f"{megabytes} MB ours", got["ours"]))
        print(_row(f"{megabytes} MB helm", got["helm"]) + f"   ours/helm wall {ratio:.2f}")
        print(_row(f"{megabytes} MB packaging*", got["packaging"]))
    small, big = (figures[size] for size in sizes)
    ours, helm = small["ours"], small["helm"]
    refused = big["ours"].code != 0
    return [
        bc.Row(
            f"one chart of {sizes[0]} MB text files, published",
            f"{bc.seconds_text(ours.seconds)}, {ours.rss_mib:.0f} MiB peak",
            f"helm {bc.seconds_text(helm.seconds)}, {helm.rss_mib:.0f} MiB peak",
            ours.seconds / helm.seconds,
            "<= 1x helm",
            ours.seconds <= helm.seconds,
        ),
        bc.Row(
            f"one chart of {sizes[1]} MB text, packaging (library, limit lifted)",
            f"{bc.seconds_text(big['packaging'].seconds)}, "
            f"{big['packaging'].rss_mib:.0f} MiB peak"
            + (f"; publish refused, exit {big['ours'].code}" if refused else ""),
            f"helm package+push {bc.seconds_text(big['helm'].seconds)}, "
            f"{big['helm'].rss_mib:.0f} MiB peak"
            + (f", exit {big['helm'].code}" if big["helm"].code else ""),
            None,
            "peak RSS <= 80 MiB",
            big["packaging"].rss_mib <= 80,
        ),
    ]


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
    parser.add_argument(
        "--big",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also publish 50 MB and 200 MB text charts, ours beside helm",
    )
    parser.add_argument(
        "--big-rounds", type=int, default=3, help="rounds of the 50 MB chart (200 MB: one)"
    )
    bc.add_common_args(parser)
    args = parser.parse_args()
    if args.quick:  # a smoke run: one round, 3 MB and 6 MB text charts
        args.rounds, args.big_rounds = 1, 1
    big_sizes = (3, 6) if args.quick else (50, 200)
    chart_dirs = dict(load_config(args.config).charts)
    work = Path(tempfile.mkdtemp(prefix="alga-bench-"))
    runs: dict[str, list[Run]] = {}
    try:
        for round_no in range(args.rounds):
            registries: list[Registry] = []
            proxies: list[FaultProxy] = []
            try:
                for side in ("ours", "helm") if round_no % 2 == 0 else ("helm", "ours"):
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
    rows = [
        bc.Row(
            "six reference charts, cold (ours: one `charts publish`)",
            f"{bc.seconds_text(cold_ours)}, {runs['ours cold'][-1].total_requests} requests",
            f"helm package+push x6 {bc.seconds_text(cold_helm)}, "
            f"{runs['helm cold'][-1].total_requests} requests",
            cold_ours / cold_helm,
            "<= 1x helm",
            cold_ours <= cold_helm,
        )
    ]
    if args.big:
        big_work = Path(tempfile.mkdtemp(prefix="alga-bench-big-"))
        try:
            rows += big_chart_rows(big_work, big_sizes, args.big_rounds)
        finally:
            shutil.rmtree(big_work, ignore_errors=True)
        print(
            "* packaging alone, through the library in its own process with helm's size limit "
            f"lifted\ntargets: ours <= helm's wall time at {big_sizes[0]} MB; packaging peak RSS "
            f"<= 80 MiB at {big_sizes[1]} MB\n(over 100 MiB helm packages, then `helm push` "
            "refuses; ours refuses before packaging, exit 2)"
        )
    bc.emit(args, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
