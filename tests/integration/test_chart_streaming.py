"""Packaging streams: a chart's peak memory does not grow with its size, and big charts
are deflated at helm's level while ordinary ones keep their bytes."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from steps.charts import package as chartpkg

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
CHILD = """
import sys
from pathlib import Path
from steps.charts import package as p
src = p.load_chart(Path(sys.argv[1]))
files = p.collect_files(src, max_size=1 << 40)
pkg = p.package_chart(src, files, p.immutable_version(src.version, p.content_hash(src, files)))
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print(int(hwm) // 1024, pkg.blob.size, pkg.blob.sha256)
"""


def text_chart(root: Path, megabytes: int) -> Path:
    chart = root / f"chart-{megabytes}"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: big\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("a: 1\n")
    for i in range(megabytes):
        line = f"key-{i}: " + "value " * 10 + "\n"
        (chart / "templates" / f"f{i:03d}.txt").write_text((line * (MiB // len(line) + 1))[:MiB])
    return chart


def package_in_child(chart: Path) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(chart)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=600,
    ).stdout.split()
    return int(out[0]), int(out[1])


def test_peak_memory_of_packaging_does_not_grow_with_the_chart(tmp_path: Path) -> None:
    small_peak, _ = package_in_child(text_chart(tmp_path, 10))
    big_peak, big_size = package_in_child(text_chart(tmp_path, 200))
    assert big_size > 0
    assert big_peak <= 80, big_peak  # MiB, for 200 MiB of files
    assert big_peak - small_peak <= 10, (small_peak, big_peak)


def test_big_charts_use_helms_level_and_small_ones_keep_their_bytes(tmp_path: Path) -> None:
    big = chartpkg.load_chart(text_chart(tmp_path, 5))
    files = chartpkg.collect_files(big)
    pkg = chartpkg.package_chart(big, files, "0.1.0")
    assert sum(f.size for f in files) > chartpkg.LARGE_CHART
    assert pkg.tarball[8] == 0  # XFL of Go's default level, as helm writes it
    level6 = gzip.decompress(pkg.tarball)
    assert len(level6) > 5 * MiB
    assert chartpkg.gzip_level(chartpkg.LARGE_CHART) == 9
    assert chartpkg.gzip_level(chartpkg.LARGE_CHART + 1) == 6
