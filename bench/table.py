#!/usr/bin/env python3
"""Print the summary rows the benchmarks appended to FILE (``--rows FILE``) as one table:
the issue's rows, ours beside the peer, the ratio and the target, from one run.

    .venv/bin/python bench/table.py FILE [--markdown]

``make bench`` runs every benchmark with ``--rows`` and then this. ``--markdown`` prints
the table as the README's performance section has it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common as bc  # noqa: E402


def machine() -> str:
    cpus = os.cpu_count() or 0
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    return f"{platform.machine()}, {cpus} cores, load average {load}"


def markdown(rows: list[bc.Row]) -> str:
    lines = ["| work | ours | peer | ours/peer | target |", "| --- | --- | --- | ---: | --- |"]
    for r in rows:
        cells = (r.work.strip(), r.ours, r.peer, r.ratio_text(), r.verdict())
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=Path)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows = bc.read_rows(args.rows)
    print(f"\n== summary ({machine()}); medians of interleaved rounds, see each benchmark above")
    if args.markdown:
        print(markdown(rows))
    else:
        bc.print_rows(rows)
    met = sum(1 for r in rows if r.met)
    missed = sum(1 for r in rows if r.met is False)
    print(f"\ntargets met: {met}, not met: {missed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
