#!/usr/bin/env python3
"""Benchmark: resolve a release with both consume twins against the loopback TLS registry.

    .venv/bin/python bench/bench_consume.py [--rounds N] [--quick]

One real CNCF distribution registry on loopback, behind TLS, with token auth
(the harness token server, anonymous pull allowed), holding a release pushed as
the publisher pushes it and tagged ``:nightly``. For each twin (Python in
process, Node in process; the CLIs once each, with process start-up) it runs:

  cold            no cache at all: the 401 that names the token realm, the token,
                  the manifest, the config blob
  cold, realm     no cached release, but the token realm known up front, as it is
                  built in for ghcr.io (the appliance's current code hard-codes it):
                  token, manifest, blob
  warm            a cached token and a cached release, the channel unmoved:
                  one manifest HEAD, no blob download
  warm, moved     the channel moved since the cached release: HEAD, manifest, blob

and prints HTTP requests per resolve (the library's own count, checked against
what the registry and the token server logged) and wall time per resolve
(median and best of N). Targets: cold no more requests than the appliance's
current code (token, manifest, blob: 3); warm 1 request and no blob download.
The figures are printed, never asserted: this is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "consume"))

import release_consume as rc  # noqa: E402

from bench import common as bc  # noqa: E402
from steps.oci import Credentials, RegistryClient  # noqa: E402
from steps.oci import mediatypes as mt  # noqa: E402
from steps.release import manifest as rm  # noqa: E402
from tests.harness.registry import Registry, start_registry  # noqa: E402

REPO = "nine-minds/alga-appliance-release"
JS_MODULE = ROOT / "consume" / "release-consume.mjs"
EXAMPLE = ROOT / "schemas" / "examples" / "valid" / "minimal.json"
SCENARIOS = ("cold", "cold, realm", "warm", "warm, moved")


def publish(reg: Registry, version: str) -> str:
    release = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    release["version"] = version
    release["config"] = {**release["config"], "tag": version, "version": version}
    config = rm.manifest_bytes(release)
    manifest = rm.release_oci_manifest(config, annotations=rm.release_annotations(release))
    assert reg.credentials is not None and reg.ca_file is not None
    with RegistryClient(
        reg.host, credentials=Credentials(*reg.credentials), verify=str(reg.ca_file)
    ) as client:
        client.push_blob(REPO, config)
        client.put_manifest(REPO, version, manifest, mt.OCI_MANIFEST)
        return str(client.put_manifest(REPO, "nightly", manifest, mt.OCI_MANIFEST))


class RegistryLog:
    """Requests the registry itself logged since the last mark (an independent count)."""

    def __init__(self, reg: Registry) -> None:
        self.path = reg.log_path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def since(self) -> dict[str, int]:
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            lines = fh.read().decode("utf-8", "replace").splitlines()
        counted = [
            line
            for line in lines
            if (f"uri=/v2/{REPO}/" in line or f'uri="/v2/{REPO}/' in line)
            and ('msg="response completed' in line or 'msg="error authorizing context' in line)
        ]
        return {
            "requests": len(counted),
            "blob downloads": sum(
                1
                for line in counted
                if "/blobs/" in line and "method=GET" in line and "status=200" in line
            ),
        }


def py_round(reg: Registry, scenario: str, cache_file: Path) -> tuple[int, float]:
    assert reg.token_server is not None and reg.ca_file is not None
    kwargs: dict[str, Any] = {}
    if scenario == "cold, realm":
        kwargs = {"token_realm": reg.token_server.url, "token_service": reg.token_server.service}
    if scenario.startswith("warm"):
        kwargs["cache"] = rc.FileCache(str(cache_file))
    start = time.perf_counter()
    result = rc.resolve(
        "nightly", registry=reg.host, repository=REPO, ca_file=str(reg.ca_file), **kwargs
    )
    return result.requests, time.perf_counter() - start


_NODE_WORKER = """
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import readline from 'node:readline';
const rc = await import(pathToFileURL(process.env.CONSUME_MODULE).href);
const repository = 'nine-minds/alga-appliance-release';
for await (const line of readline.createInterface({ input: process.stdin })) {
  const { host, ca, realm, service, scenario, cacheFile } = JSON.parse(line);
  const options = { registry: host, repository, caFile: ca };
  if (scenario === 'cold, realm') {
    Object.assign(options, { tokenRealm: realm, tokenService: service });
  }
  if (scenario.startsWith('warm')) options.cache = new rc.FileCache(cacheFile);
  const start = performance.now();
  const result = await rc.resolve('nightly', options);
  const seconds = (performance.now() - start) / 1000;
  process.stdout.write(`${JSON.stringify({ requests: result.requests, seconds })}\\n`);
}
"""


class NodeWorker:
    """One long-lived Node process resolving on request, as the control plane's host-service."""

    def __init__(self, node: str) -> None:
        self.proc = subprocess.Popen(
            [node, "--input-type=module", "-e", _NODE_WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "CONSUME_MODULE": str(JS_MODULE)},
        )

    def __call__(self, reg: Registry, scenario: str, cache_file: Path) -> tuple[int, float]:
        assert reg.token_server is not None and reg.ca_file is not None
        assert self.proc.stdin is not None and self.proc.stdout is not None
        payload = {
            "host": reg.host,
            "ca": str(reg.ca_file),
            "realm": reg.token_server.url,
            "service": reg.token_server.service,
            "scenario": scenario,
            "cacheFile": str(cache_file),
        }
        self.proc.stdin.write(json.dumps(payload) + "\n")
        self.proc.stdin.flush()
        out = json.loads(self.proc.stdout.readline())
        return int(out["requests"]), float(out["seconds"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def cli_round(argv: list[str]) -> tuple[int, float]:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    return int(json.loads(proc.stdout)["requests"]), time.perf_counter() - start


def prepare(reg: Registry, scenario: str, cache_file: Path, versions: list[str]) -> None:
    """Put the cache (and the channel) in the state the scenario starts from."""
    if scenario == "warm":
        cache_file.unlink(missing_ok=True)
        py_round(reg, "warm", cache_file)  # fills the cache: token and release
    elif scenario == "warm, moved":
        cache_file.unlink(missing_ok=True)
        py_round(reg, "warm", cache_file)
        versions.append(f"1.0.{len(versions)}")
        publish(reg, versions[-1])  # the channel moves after the cache was filled


def measure(
    reg: Registry, log: RegistryLog, runner: Any, rounds: int, versions: list[str]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache_file = Path(tmp) / "cache.json"
        for scenario in SCENARIOS:
            counts, times, seen = [], [], []
            assert reg.token_server is not None
            for _ in range(rounds):
                prepare(reg, scenario, cache_file, versions)
                log.mark()
                tokens_before = len(reg.token_server.requests)
                requests, seconds = runner(reg, scenario, cache_file)
                time.sleep(0.01)  # let the registry flush its log line
                logged = log.since()
                logged["tokens"] = len(reg.token_server.requests) - tokens_before
                counts.append(requests)
                times.append(seconds)
                seen.append(logged)
            out[scenario] = {"requests": counts, "times": times, "logged": seen}
    return out


def report(title: str, results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(
        f"  {'scenario':<13} {'requests':>8} {'registry+token saw':>19} {'blob GETs':>9}"
        f" {'median ms':>10} {'best ms':>8}"
    )
    for scenario, data in results.items():
        counts = sorted(set(data["requests"]))
        logged = data["logged"]
        seen = sorted({entry["requests"] + entry["tokens"] for entry in logged})
        blobs = sorted({entry["blob downloads"] for entry in logged})
        print(
            f"  {scenario:<13} {'/'.join(map(str, counts)):>8} {'/'.join(map(str, seen)):>19}"
            f" {'/'.join(map(str, blobs)):>9} {statistics.median(data['times']) * 1000:>10.1f}"
            f" {min(data['times']) * 1000:>8.1f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="resolves per scenario")
    bc.add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.rounds = 2
    node = shutil.which("node")
    with tempfile.TemporaryDirectory() as workdir:
        reg = start_registry(Path(workdir), mode="token", tls=True)
        try:
            versions = ["1.0.0"]
            publish(reg, "1.0.0")
            log = RegistryLog(reg)
            realm = reg.token_server.url if reg.token_server else None
            print(f"registry {reg.base_url} (TLS, token auth at {realm})")
            print(f"{args.rounds} resolves of :nightly per scenario; requests are per resolve")
            report(
                f"Python (in process; python {sys.version.split()[0]})",
                measure(reg, log, py_round, args.rounds, versions),
            )
            if node:
                node_version = subprocess.run(
                    [node, "--version"], capture_output=True, text=True, check=False
                ).stdout.strip()
                worker = NodeWorker(node)
                try:
                    results = measure(reg, log, worker, args.rounds, versions)
                finally:
                    worker.close()
                report(f"Node (in one process, as the host-service; node {node_version})", results)
            else:
                print("\nNode: not found on PATH; skipped")
            # The interpreter itself (not a pyenv shim or a venv): what an appliance would run.
            python = os.path.realpath(sys.executable)
            assert reg.ca_file is not None
            flags = [
                "nightly",
                "--registry",
                reg.host,
                "--repository",
                REPO,
                "--ca-file",
                str(reg.ca_file),
                "--json",
            ]
            cli = [
                (
                    "python3 -S -I CLI, cold",
                    [python, "-S", "-I", str(ROOT / "consume/release_consume.py"), *flags],
                )
            ]
            if node:
                cli.append(("node CLI, cold", [node, str(JS_MODULE), *flags]))
            print("\nCLIs (one process per resolve, start-up included)")
            for label, argv in cli:
                runs = [cli_round(argv) for _ in range(max(3, args.rounds // 3))]
                print(
                    f"  {label:<26} {runs[0][0]} requests, median"
                    f" {statistics.median(t for _, t in runs) * 1000:.0f} ms"
                )
            print(
                "\ntargets: cold <= 3 requests (token, manifest, blob: the appliance's current"
                " code); warm 1 request (a manifest HEAD), no blob download"
            )
        finally:
            reg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
