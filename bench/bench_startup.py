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

``--version`` in a source checkout asks git for the commit (two git processes); in the
step image the commit is stamped in the wheel (steps/data/build-commit), so both are
measured. Targets (issue 14): --version and --help <= 100 ms; a no-op step <= 250 ms.
Figures only, nothing asserted.
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


def stamped_version_env(work: Path) -> dict[str, str]:
    """An environment whose `alga-release` reads a stamped commit, as the step image's
    wheel does: a copy of the package with steps/data/build-commit written."""
    import shutil

    copy = work / "stamped"
    shutil.copytree(ROOT / "steps", copy / "steps", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "steps" / "data" / "build-commit").write_text("0123456789ab\n", encoding="utf-8")
    return bc.clean_env(PYTHONPATH=str(copy))


def main() -> int:
    args = bc.parse_args(__doc__, 21)
    rounds = 1 if args.quick else args.rounds
    crane = bc.tool("crane")
    env = bc.clean_env()
    with tempfile.TemporaryDirectory(prefix="alga-bench-startup-") as tmp:
        work = Path(tmp)
        stamped = stamped_version_env(work)
        module = [
            PYTHON,
            "-c",
            "import sys; from steps.cli import main; sys.argv[0]='alga-release'; main()",
        ]
        with start_registry(work / "registry") as reg:
            push_images(reg)
            images = [a for key in IMAGE_REPOS for a in ("--image", f"{key}={TAG}")]
            noop = [
                bc.CLI,
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
            cases = {
                "ours --version (checkout: git)": lambda _n: bc.measured(
                    [bc.CLI, "--version"], env, sample_rss=False
                ),
                "ours --version (stamped, as the image)": lambda _n: bc.measured(
                    [*module, "--version"], stamped, sample_rss=False
                ),
                "crane version": lambda _n: bc.measured([crane, "version"], env, sample_rss=False),
                "ours --help": lambda _n: bc.measured([bc.CLI, "--help"], env, sample_rss=False),
                "crane --help": lambda _n: bc.measured([crane, "--help"], env, sample_rss=False),
                "ours no-op step (images check)": lambda _n: bc.measured(
                    noop, env, sample_rss=False
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
                "`alga-release --version` (stamped, as in the image)",
                "ours --version (stamped, as the image)",
                "crane version",
                100,
            ),
            row("`alga-release --help`", "ours --help", "crane --help", 100),
            row(
                "a no-op step (`images check`, 5 HEADs)",
                "ours no-op step (images check)",
                "crane digest (one HEAD)",
                250,
            ),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
