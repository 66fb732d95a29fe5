"""What the benchmarks share: tools, timed processes with their peak RSS, interleaved rounds,
and the rows of the summary table (``bench/table.py``).

Not a test helper: nothing here asserts. Every benchmark prints its own figures; with
``--rows FILE`` it also appends its summary rows (ours, the peer, the ratio) to FILE as
JSON lines, and ``make bench`` prints them all as one table at the end.

Why interleaved rounds: the machine is shared (2 cores, other jobs), so a slow minute
must hit every contender alike. Each round runs every contender once, in an order that
rotates from round to round; the figure shown is the median over rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools" / "bin"
CLI = str(ROOT / ".venv" / "bin" / "alga-release")
MiB = 1024 * 1024
T = TypeVar("T")


def tool(name: str) -> str:
    """``.tools/bin/NAME`` (what scripts/setup.sh installs), else NAME on PATH; exits
    naming the set-up step when neither is there."""
    local = TOOLS / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"bench: {name} is missing; run scripts/setup.sh (make setup)")
    return found


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a measured process: no ``ALGA_*`` settings but anonymous
    registry access (every other option at its default), tools on PATH,
    and bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed: an installed package
    has its ``.pyc`` files, so a checkout must be allowed to write them, or every run
    would compile the package from source and the start-up figures would be wrong)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALGA_")}  # defaults only
    env.update(ALGA_REGISTRY_USERNAME="", ALGA_REGISTRY_PASSWORD="")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PATH"] = f"{TOOLS}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


# -- the package as the step image installs it ------------------------------------------

RUNTIME_VENVS = ROOT / ".tools" / "bench"


def _runtime_requirements() -> list[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["docker"]]


#: Interpreters built as the step image's is (``python:3.11-slim``: configured with
#: ``--enable-optimizations --with-lto``), tried first for the runtime virtualenv: this
#: machine's pyenv build (the checkout's) has neither, and starts a step 20 % slower.
#: ``ALGA_BENCH_PYTHON`` names another; the first that runs and is a 3.11 is taken.
OPTIMISED_PYTHONS = ("/usr/bin/python3.11", "/usr/local/bin/python3.11")


def _runtime_base() -> str:
    """The interpreter the runtime virtualenv is made from (see OPTIMISED_PYTHONS)."""
    wanted = os.environ.get("ALGA_BENCH_PYTHON")
    for candidate in ([wanted] if wanted else []) + list(OPTIMISED_PYTHONS):
        if not Path(candidate).is_file():
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys, venv, ensurepip; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 11)":
            return candidate
    return sys.executable


def runtime_python() -> str:
    """A virtualenv with the package's runtime dependencies only, as the step image has
    them (``alga-appliance-release[docker]``: no test or pipeline extras, so none of the
    CLI libraries httpx imports when they are installed), on an interpreter built as the
    image's (:func:`_runtime_base`), made once per machine under ``.tools/bench/`` and
    keyed by the requirement list and that interpreter."""
    import hashlib

    requirements = _runtime_requirements()
    base = _runtime_base()
    key = hashlib.sha256("\n".join([base, *requirements]).encode()).hexdigest()[:12]
    venv = RUNTIME_VENVS / f"runtime-{key}"
    python = venv / "bin" / "python"
    if not python.is_file():
        print(f"bench: making {venv} ({base}, runtime dependencies only, once)", file=sys.stderr)
        shutil.rmtree(venv, ignore_errors=True)
        run_quiet([base, "-m", "venv", str(venv)])
        run_quiet([str(python), "-m", "pip", "install", "-q", *requirements])
    return str(python)


def installed_cli(work: Path) -> tuple[list[str], dict[str, str]]:
    """``alga-release`` as the step image runs it: the runtime virtualenv's interpreter, a
    copy of this checkout's package (``steps``, ``consume``) with its commit stamped as the
    image's wheel has it, started by a console script like the one pip writes. Returns
    the command and the environment (``clean_env`` plus the copy on ``PYTHONPATH``)."""
    python = runtime_python()
    home = work / "installed"
    if not home.is_dir():
        ignore = shutil.ignore_patterns("__pycache__")
        for package in ("steps", "consume"):
            shutil.copytree(ROOT / package, home / package, ignore=ignore)
        (home / "steps" / "data" / "build-commit").write_text("0123456789ab\n", encoding="utf-8")
        script = home / "alga-release"
        script.write_text(
            f"#!{python}\nimport sys\nfrom steps.cli import main\n\n"
            'if __name__ == "__main__":\n    sys.exit(main())\n',
            encoding="utf-8",
        )
        script.chmod(0o755)
    return [str(home / "alga-release")], clean_env(PYTHONPATH=str(home))


# -- one process, measured --------------------------------------------------------------


@dataclass
class Measured:
    """One process: wall and CPU seconds (user + sys, from wait4), peak RSS (MiB), exit."""

    seconds: float
    cpu: float
    rss_mib: float
    code: int
    stdout: str = ""
    stderr: str = ""

    def check(self, what: str) -> Measured:
        if self.code != 0:
            raise SystemExit(f"bench: {what} failed (exit {self.code}):\n{self.stderr[-3000:]}")
        return self


def _vm_hwm(pid: int) -> float:
    """The process's own peak RSS (VmHWM, MiB), or 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measured(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
    capture: bool = False,
    sample_rss: bool = True,
) -> Measured:
    """Run ``argv``; its wall time, CPU time and peak RSS.

    The peak is the process's VmHWM, sampled every 5 ms while it runs (so growth in its
    last few milliseconds can be missed): wait4's ru_maxrss would report at least this
    benchmark's own RSS, which a child inherits as its high-water mark across fork and
    exec. ``capture`` keeps stdout and stderr (else stdout is discarded, stderr kept).
    Without ``sample_rss`` the wait blocks (the wall time exact to the microsecond, for
    start-up times) and the peak is not known (0).
    """
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        stdout=out,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        cwd=cwd,
    )
    # Drained by threads: a chatty process must not block on a full pipe.
    import threading

    chunks: dict[str, bytes] = {"out": b"", "err": b""}

    def drain(name: str, stream: object) -> None:
        chunks[name] = stream.read()  # type: ignore[attr-defined]

    readers = [threading.Thread(target=drain, args=("err", proc.stderr))]
    if capture:
        readers.append(threading.Thread(target=drain, args=("out", proc.stdout)))
    for reader in readers:
        reader.start()
    peak = 0.0
    while sample_rss:
        peak = max(peak, _vm_hwm(proc.pid))
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.005)
    else:
        pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    for reader in readers:
        reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        seconds,
        usage.ru_utime + usage.ru_stime,
        peak,
        proc.returncode,
        chunks["out"].decode("utf-8", "replace"),
        chunks["err"].decode("utf-8", "replace"),
    )


def run_quiet(argv: Sequence[str], env: Mapping[str, str] | None = None, **kw: object) -> str:
    """Run a set-up command (not measured); its stdout; exit with its stderr on failure."""
    done = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else None,
        check=False,
        **kw,  # type: ignore[arg-type]
    )
    if done.returncode != 0:
        raise SystemExit(
            f"bench: {' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        )
    return done.stdout


# -- rounds ------------------------------------------------------------------------------


def interleaved(rounds: int, cases: Mapping[str, Callable[[int], T]]) -> dict[str, list[T]]:
    """Run every case once per round, the order rotating by one each round; each case's
    results in round order. A case gets the round number (for fresh registries, names)."""
    labels = list(cases)
    results: dict[str, list[T]] = {label: [] for label in labels}
    for number in range(rounds):
        shift = number % len(labels)
        for label in labels[shift:] + labels[:shift]:
            results[label].append(cases[label](number))
    return results


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- summary rows ------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the issue's table: the work, ours, the peer, ours / peer, the target."""

    work: str
    ours: str
    peer: str = "-"
    ratio: float | None = None
    target: str = ""
    met: bool | None = None

    def ratio_text(self) -> str:
        return "-" if self.ratio is None else f"{self.ratio:.2f}x"

    def verdict(self) -> str:
        if self.met is None:
            return self.target
        return f"{self.target}: {'met' if self.met else 'NOT met'}"


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: one round, small sizes (checks the benchmark works, not the figures)",
    )
    parser.add_argument(
        "--rows",
        type=Path,
        metavar="FILE",
        help="append the summary rows to FILE (JSON lines) for bench/table.py",
    )


def parse_args(
    doc: str | None,
    rounds: int,
    more: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """A benchmark's arguments: ``--rounds`` (default ``rounds``), ``--quick``, ``--rows``
    and what ``more`` adds; the module docstring is its help."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=rounds)
    if more is not None:
        more(parser)
    add_common_args(parser)
    return parser.parse_args()


def print_header(header: str) -> None:
    print(header)
    print("-" * len(header))


def emit(args: argparse.Namespace, rows: Sequence[Row]) -> None:
    """Print the summary rows, and append them to ``--rows FILE`` when given."""
    print_rows(rows)
    if getattr(args, "rows", None):
        with args.rows.open("a", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(asdict(row)) + "\n")


def print_rows(rows: Sequence[Row]) -> None:
    if not rows:
        return
    widths = [
        max(len(h), *(len(c) for c in cells))
        for h, *cells in zip(
            ("work", "ours", "peer", "ours/peer"),
            *[(r.work, r.ours, r.peer, r.ratio_text()) for r in rows],
            strict=True,
        )
    ]
    header = ("work", "ours", "peer", "ours/peer", "target")
    print("\n" + "  ".join(h.ljust(w) for h, w in zip(header, [*widths, 0], strict=True)))
    print("  ".join("-" * w for w in widths) + "  " + "-" * 6)
    for r in rows:
        cells = (r.work, r.ours, r.peer, r.ratio_text())
        print(
            "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + "  " + r.verdict()
        )
    sys.stdout.flush()


def read_rows(path: Path) -> list[Row]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(Row(**json.loads(line)))
    return rows


def seconds_text(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
