#!/usr/bin/env python3
"""Benchmark: HTTP requests of one whole `publish` against a token-auth registry.

    .venv/bin/python bench/bench_requests.py [--baseline REV] [--quick]

A real CNCF registry in token mode (the harness token server) behind a counting proxy; the
four app images and the control plane are pushed first; then one `alga-release publish`
of the reference charts and overlay runs in a process of its own. Printed: registry
requests, token requests, and the distinct (repository, actions) scopes those tokens were
for. Target (issue 11): token requests <= distinct scopes, i.e. one token per scope for the
whole run. With ``--baseline REV`` the same publish is also run with the package as it was
at that commit (a temporary git worktree), side by side. Figures only, nothing asserted.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common as bc  # noqa: E402
from tests.harness.faults import start_fault_proxy  # noqa: E402
from tests.harness.images import push_tiny_image  # noqa: E402
from tests.harness.registry import start_registry  # noqa: E402
from tests.helpers import client_for  # noqa: E402

TAG = "62cdce38"
IMAGES = {
    "algaCore": "alga-psa-ee",
    "workflowWorker": "workflow-worker",
    "emailService": "email-service",
    "temporalWorker": "temporal-worker",
}


def source_tree(work: Path) -> Path:
    src = work / "release-source"
    shutil.copytree(ROOT / "examples" / "charts", src / "examples" / "charts")
    shutil.copytree(ROOT / "flux", src / "flux")
    shutil.copy(ROOT / "examples" / "release.yaml", src / "release.yaml")
    return src


def measure(label: str, package_root: Path, work: Path) -> dict[str, object]:
    registry = start_registry(work / f"registry-{label}", mode="token")
    proxy = start_fault_proxy(registry)
    try:
        with client_for(registry) as client:
            for repo in IMAGES.values():
                push_tiny_image(client, f"nine-minds/{repo}", TAG)
            push_tiny_image(client, "nine-minds/alga-appliance-control-plane", TAG)
        assert registry.token_server is not None
        registry.token_server.reset()
        proxy.reset()
        src = source_tree(work / label)
        username, password = registry.credentials
        env = bc.clean_env(
            PYTHONPATH=str(package_root),
            ALGA_REGISTRY_USERNAME=username,
            ALGA_REGISTRY_PASSWORD=password,
        )
        argv = [
            sys.executable,
            "-c",
            "import sys; from steps.cli import main; sys.argv[0] = 'alga-release'; main()",
            "-q",
            "publish",
            "--source",
            str(src),
            "--config",
            str(src / "release.yaml"),
            "--version",
            "1.0.0",
            "--channel",
            "nightly",
            *[a for key in IMAGES for a in ("--image", f"{key}={TAG}")],
            "--control-plane",
            TAG,
            "--registry",
            proxy.host,
            "--plain-http",
            "--json",
        ]
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=work)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{label}: publish failed ({done.returncode}):\n{done.stderr}")
        tokens = list(registry.token_server.requests)
        scopes = {scope for t in tokens for scope in t.scopes}
        return {
            "label": label,
            "seconds": seconds,
            "requests": len(proxy.requests),
            "tokens": len(tokens),
            "scopes": len(scopes),
        }
    finally:
        proxy.stop()
        registry.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", metavar="REV", help="also measure the package at REV")
    bc.add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.baseline = None  # a smoke run: the package as it is only
    rows = []
    with tempfile.TemporaryDirectory(prefix="alga-bench-requests-") as tmp:
        work = Path(tmp)
        if args.baseline:
            tree = work / "baseline-tree"
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(ROOT),
                    "worktree",
                    "add",
                    "--detach",
                    "-q",
                    str(tree),
                    args.baseline,
                ],
                check=True,
            )
            try:
                rows.append(measure(f"before ({args.baseline})", tree, work))
            finally:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                    check=False,
                )
        rows.append(measure("now", ROOT, work))
    print("\npublish against a token-auth registry (one process, requests through a proxy)")
    print(
        f"{'run':<22} {'wall s':>7} {'registry requests':>18} {'token requests':>15}"
        f" {'distinct scopes':>16}"
    )
    for r in rows:
        print(
            f"{r['label']:<22} {r['seconds']:>7.2f} {r['requests']:>18} {r['tokens']:>15}"
            f" {r['scopes']:>16}"
        )


if __name__ == "__main__":
    main()
