#!/usr/bin/env python3
"""Benchmark: start-up, ours against a Go CLI (crane), process launch included.

    .venv/bin/python bench/bench_startup.py [--rounds N] [--quick] [--rows FILE]

Interleaved rounds (each round runs every command once, the order rotating), median wall
time of the whole process as a shell would see it (fork, exec, interpreter, imports,
work, exit):

  --version      `alga-release --version`   vs `crane version`
  --help         `alga-release --help`      vs `crane --help`
  a no-op step   `alga-release images check` of images that are all there (the lightest
                 release step: 4 tag HEADs and the control plane's, one connection), on a
                 loopback CNCF registry, vs `crane digest` of one tag (one HEAD)
  python itself  `python -c pass` and `python -I -S -c pass`: the floor under ours

The no-op step answers from quick reads on the standard library (steps.oci.quick); the
line "installed, full client" runs it with ALGA_NO_QUICK_READS=1, on the full client
(httpx), to show what that saves.

Each of ours runs twice: from this checkout's development virtualenv (an editable install,
whose import finder alone costs about 25 ms, with the test and pipeline extras, which make
httpx import its own CLI libraries), and **as installed in the step image**
(`bench.common.installed_cli`: a virtualenv with the runtime dependencies only, the package
copied with its commit stamped, as the image's wheel has it, and a pip-style console
script). ``--version`` in a checkout asks git for the commit (one git process); installed,
the commit is read from steps/data/build-commit. Targets (issue 14): --version and --help
<= 100 ms; a no-op step <= 250 ms. Figures only, nothing asserted.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common as bc  # noqa: E402
from tests.harness.registry import start_registry  # noqa: E402
from tests.integration.test_publish import IMAGE_REPOS, TAG, push_images  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")


def main() -> int:
    args = bc.parse_args(__doc__, 21)
    rounds = 1 if args.quick else args.rounds
    crane = bc.tool("crane")
    env = bc.clean_env()
    with tempfile.TemporaryDirectory(prefix="alga-bench-startup-") as tmp:
        work = Path(tmp)
        installed, installed_env = bc.installed_cli(work)
        with start_registry(work / "registry") as reg:
            push_images(reg)
            images = [a for key in IMAGE_REPOS for a in ("--image", f"{key}={TAG}")]
            noop_args = [
                "-q",
                "images",
                "check",
                *images,
                "--control-plane",
                TAG,
                "--registry",
                reg.host,
                "--plain-http",
            ]
            noop = [bc.CLI, *noop_args]
            cases = {
                "ours --version (checkout: git)": lambda _n: bc.measured(
                    [bc.CLI, "--version"], env, sample_rss=False
                ),
                "ours --version (as installed)": lambda _n: bc.measured(
                    [*installed, "--version"], installed_env, sample_rss=False
                ),
                "crane version": lambda _n: bc.measured([crane, "version"], env, sample_rss=False),
                "ours --help": lambda _n: bc.measured([bc.CLI, "--help"], env, sample_rss=False),
                "ours --help (as installed)": lambda _n: bc.measured(
                    [*installed, "--help"], installed_env, sample_rss=False
                ),
                "crane --help": lambda _n: bc.measured([crane, "--help"], env, sample_rss=False),
                "ours no-op step (images check)": lambda _n: bc.measured(
                    noop, env, sample_rss=False
                ),
                "ours no-op step (as installed)": lambda _n: bc.measured(
                    [*installed, *noop_args], installed_env, sample_rss=False
                ),
                "ours no-op step (installed, full client)": lambda _n: bc.measured(
                    [*installed, *noop_args],
                    {**installed_env, "ALGA_NO_QUICK_READS": "1"},
                    sample_rss=False,
                ),
                "crane digest (one HEAD)": lambda _n: bc.measured(
                    [
                        crane,
                        "digest",
                        "--insecure",
                        f"{reg.host}/nine-minds/alga-appliance-control-plane:{TAG}",
                    ],
                    env,
                    sample_rss=False,
                ),
                "python -c pass": lambda _n: bc.measured(
                    [PYTHON, "-c", "pass"], env, sample_rss=False
                ),
                "python -I -S -c pass": lambda _n: bc.measured(
                    [PYTHON, "-I", "-S", "-c", "pass"], env, sample_rss=False
                ),
            }
            for label, case in cases.items():  # warm the page cache once, unmeasured
                case(-1).check(label)
            results = bc.interleaved(rounds, cases)
    ms = {label: bc.median([m.seconds for m in runs]) * 1000 for label, runs in results.items()}
    print(f"start-up, median of {rounds} interleaved rounds (wall ms, process launch included)")
    print(f"{'command':<42} {'median ms':>10} {'best ms':>8}")
    for label, runs in results.items():
        best = min(m.seconds for m in runs) * 1000
        print(f"{label:<42} {ms[label]:>10.1f} {best:>8.1f}")

    def row(work: str, ours: str, peer: str | None, target_ms: float) -> bc.Row:
        return bc.Row(
            work,
            f"{ms[ours]:.0f} ms",
            f"{peer.split(' (')[0]} {ms[peer]:.0f} ms" if peer else "-",
            ms[ours] / ms[peer] if peer else None,
            f"<= {target_ms:.0f} ms",
            ms[ours] <= target_ms,
        )

    bc.emit(
        args,
        [
            row(
                "`alga-release --version` (checkout, asks git)",
                "ours --version (checkout: git)",
                "crane version",
                100,
            ),
            row(
                "`alga-release --version` (as installed in the step image)",
                "ours --version (as installed)",
                "crane version",
                100,
            ),
            row("`alga-release --help` (checkout)", "ours --help", "crane --help", 100),
            row(
                "`alga-release --help` (as installed in the step image)",
                "ours --help (as installed)",
                "crane --help",
                100,
            ),
            row(
                "a no-op step (`images check`, 5 HEADs; checkout)",
                "ours no-op step (images check)",
                "crane digest (one HEAD)",
                250,
            ),
            row(
                "a no-op step (`images check`, 5 HEADs; as installed in the step image)",
                "ours no-op step (as installed)",
                "crane digest (one HEAD)",
                250,
            ),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
