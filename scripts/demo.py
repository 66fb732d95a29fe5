#!/usr/bin/env python3
"""Demo on the embedded default: publish the reference charts to a throw-away
loopback registry (the real CNCF distribution registry), then show that the
real helm pulls what was published.

    make demo                 # or: .venv/bin/python scripts/demo.py

Nothing leaves this machine: the registry listens on 127.0.0.1 only and its
storage lives in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness.registry import start_registry  # noqa: E402

CLI = [str(ROOT / ".venv" / "bin" / "alga-release")]
HELM = os.environ.get("ALGA_HELM", str(ROOT / ".tools" / "bin" / "helm"))


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.parse_args()
    if not Path(CLI[0]).exists():
        CLI[:] = [sys.executable, "-m", "steps.cli"]
    work = Path(tempfile.mkdtemp(prefix="alga-demo-"))
    registry = start_registry(work / "registry")
    try:
        common = ["--registry", registry.host, "--namespace", "nine-minds", "--plain-http"]
        say(f"registry: {registry.base_url} (CNCF distribution, storage in {registry.storage_dir})")
        say("alga-release charts publish --source . --config examples/release.yaml (cold)")
        out = work / "charts.json"
        subprocess.run(
            [
                *CLI,
                "charts",
                "publish",
                "--source",
                str(ROOT),
                "--config",
                str(ROOT / "examples" / "release.yaml"),
                *common,
                "--out",
                str(out),
            ],
            check=True,
            cwd=ROOT,
        )
        say("the same again: nothing changed, so nothing is uploaded")
        subprocess.run(
            [
                *CLI,
                "charts",
                "publish",
                "--source",
                str(ROOT),
                "--config",
                str(ROOT / "examples" / "release.yaml"),
                *common,
            ],
            check=True,
            cwd=ROOT,
        )
        result = json.loads(out.read_text())
        say(f"charts.json ({out}):")
        print(json.dumps(result, indent=2))
        chart = result["charts"]["sebastian"]
        repo = chart["repository"]
        say(f"helm show chart oci://{repo} --version {chart['version']} (the real helm)")
        subprocess.run(
            [HELM, "show", "chart", f"oci://{repo}", "--version", chart["version"], "--plain-http"],
            check=True,
        )
        say("done")
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
