#!/usr/bin/env python3
"""Demo on the embedded default: publish a whole release to a throw-away
loopback registry (the real CNCF distribution registry) and show it resolved.

    make demo                 # or: .venv/bin/python scripts/demo.py

1. start the registry on 127.0.0.1 with storage in a temporary folder;
2. push five tiny demo images (the four app images and the control plane) to it,
   standing in for the images CI builds;
3. `alga-release publish` the reference charts (examples/charts) and overlay (flux/)
   as version 1.0.0 on the nightly channel;
4. publish again with the same inputs: nothing is written;
5. `alga-release inspect nightly`: what the release references, each piece present;
6. promote it to stable and show the channel's history;
7. the real helm pulls one of the published charts.

Nothing leaves this machine, and nothing is left running: the registry stops and its
storage is removed at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from steps.oci.client import RegistryClient  # noqa: E402
from tests.harness.images import push_tiny_image  # noqa: E402
from tests.harness.registry import start_registry  # noqa: E402

CLI = str(ROOT / ".venv" / "bin" / "alga-release")
HELM = os.environ.get("ALGA_HELM", str(ROOT / ".tools" / "bin" / "helm"))
IMAGE_TAG = "62cdce38"
IMAGES = {"algaCore": "alga-psa-ee", "workflowWorker": "workflow-worker",
          "emailService": "email-service", "temporalWorker": "temporal-worker"}


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def run(*args: str) -> None:
    print("$ alga-release " + " ".join(args), flush=True)
    subprocess.run([CLI, *args], check=True, cwd=ROOT)


def main() -> int:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="alga-demo-"))
    registry = start_registry(work / "registry")
    env_reg = ["--registry", registry.host, "--namespace", "nine-minds", "--plain-http"]
    try:
        say(f"registry: {registry.base_url} (CNCF distribution; storage {registry.storage_dir})")
        say(f"demo images {IMAGE_TAG} for the four app images and the control plane")
        with RegistryClient(registry.host, plain_http=True) as client:
            for repo in [*IMAGES.values(), "alga-appliance-control-plane"]:
                digest = push_tiny_image(client, f"nine-minds/{repo}", IMAGE_TAG)
                print(f"  {registry.host}/nine-minds/{repo}:{IMAGE_TAG}  {digest}")
        publish = [
            "publish", "--source", ".", "--config", "examples/release.yaml",
            "--version", "1.0.0", "--channel", "nightly",
            *[a for key in IMAGES for a in ("--image", f"{key}={IMAGE_TAG}")],
            "--control-plane", IMAGE_TAG, *env_reg,
        ]
        say("publish release 1.0.0 to nightly (charts -> bundle -> images -> manifest -> "
            "channel -> verify)")
        run(*publish)
        say("the same again: every step finds its artifact already there")
        run("-q", *publish)
        say("inspect nightly: what the release references, and whether each piece is present")
        run("inspect", "nightly", *env_reg)
        say("promote the tested release to stable, and read the channel's audit trail")
        run("promote", "--version", "1.0.0", "--channel", "stable", *env_reg)
        run("history", "stable", *env_reg)
        say("the real helm pulls the chart the release pins for alga-core")
        subprocess.run(
            [HELM, "show", "chart", f"oci://{registry.host}/nine-minds/charts/sebastian",
             "--version", _chart_version(registry.host), "--plain-http"],
            check=True, stdout=subprocess.DEVNULL,
        )
        print("  helm show chart: ok")
        say(f"done in {time.monotonic() - started:.1f}s; stopping the registry")
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _chart_version(host: str) -> str:
    import json

    out = subprocess.run(
        [CLI, "resolve", "nightly", "--registry", host, "--plain-http", "--json"],
        check=True, capture_output=True, text=True, cwd=ROOT,
    )
    return str(json.loads(out.stdout)["manifest"]["charts"]["sebastian"])


if __name__ == "__main__":
    sys.exit(main())
