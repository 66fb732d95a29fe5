"""The benchmarks of issue 14 run (``--quick``: one round, small sizes) and report every row
of their summary, so they cannot rot between two ``make bench`` runs. Only that they work is
checked here, never their figures: a timed test on a shared machine would be a flaky test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.tools import GO_TOOLS, Tools, missing_component

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, rows: Path, timeout: float = 300) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--quick", "--rows", str(rows)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, f"{script}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def summary(rows: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in rows.read_text().splitlines()]


@pytest.fixture
def bench_tools() -> Tools:
    found = Tools()
    for name in ("crane", "oras", "flux"):
        if not (found.bin_dir / name).is_file():
            missing_component(name, f"the pinned Go CLI ({GO_TOOLS[name]})")
    if shutil.which("skopeo") is None:
        missing_component("skopeo", "install it with apt (scripts/setup.sh does)")
    found.helm  # noqa: B018 - skips, or fails under CI=true, without helm and kubectl
    found.kubectl  # noqa: B018
    return found


def test_the_release_benchmark_reports_ours_beside_the_standard_tools(
    bench_tools: Tools, tmp_path: Path
) -> None:
    out = run_bench("bench_release.py", tmp_path / "rows")
    got = summary(tmp_path / "rows")
    assert [r["work"] for r in got] == [
        "whole release, one process, cold (settle 0.1 s)",
        "whole release, six processes (as Argo), cold (settle 0.1 s)",
        "unchanged re-run, one process (settle 0.1 s)",
        "unchanged re-run, six processes (as Argo) (settle 0.1 s)",
    ]
    for r in got:
        assert isinstance(r["ratio"], float) and r["ratio"] > 0, r
        assert " requests" in str(r["ours"]) and " requests" in str(r["peer"]), r
    for part in ("helm push", "kubectl kustomize", "flux push artifact", "oras push", "oras tag"):
        assert part in out
    for step in ("charts", "bundle", "images", "manifest", "channel", "verify"):
        assert f"{step} " in out


def test_the_copy_benchmark_reports_skopeo_and_crane_and_peak_rss(
    bench_tools: Tools, tmp_path: Path
) -> None:
    run_bench("bench_copy.py", tmp_path / "rows")
    got = summary(tmp_path / "rows")
    # cold, many layers and the re-copy, each from the checkout and as installed, x2 peers
    assert len(got) == 12
    assert sum("layers of" in str(r["work"]) and "--jobs 1:" in str(r["ours"]) for r in got) == 4
    assert sum("as installed in the step image" in str(r["work"]) for r in got) == 6
    assert {str(r["peer"]).split()[0] for r in got} == {"skopeo", "crane"}
    for r in got:
        assert "MiB peak" in str(r["ours"]) and "MiB peak" in str(r["peer"]), r
        assert isinstance(r["ratio"], float) and r["ratio"] > 0, r


def test_the_startup_benchmark_reports_version_help_and_a_no_op_step(
    bench_tools: Tools, tmp_path: Path
) -> None:
    run_bench("bench_startup.py", tmp_path / "rows")
    got = summary(tmp_path / "rows")
    works = [str(r["work"]) for r in got]
    assert any("--version" in w for w in works) and any("--help" in w for w in works)
    assert any("no-op step" in w for w in works)
    # each measured from the checkout and as the step image installs the package
    assert sum("as installed in the step image" in w for w in works) == 3
    assert all(str(r["ours"]).endswith(" ms") for r in got)


def test_the_chart_benchmark_prints_the_packaging_peak_rss(
    bench_tools: Tools, tmp_path: Path
) -> None:
    out = run_bench("bench_charts.py", tmp_path / "rows")
    got = summary(tmp_path / "rows")
    packaging = [r for r in got if "packaging" in str(r["work"])]
    assert len(packaging) == 1 and "MiB peak" in str(packaging[0]["ours"])
    assert "packaging*" in out


def test_the_summary_table_prints_every_row(tmp_path: Path) -> None:
    rows = tmp_path / "rows"
    rows.write_text(
        json.dumps(
            {"work": "w", "ours": "1 s", "peer": "p 2 s", "ratio": 0.5, "target": "t", "met": True}
        )
        + "\n"
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "table.py"), str(rows)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "0.50x" in done.stdout and "t: met" in done.stdout
    assert "cores" in done.stdout
