#!/usr/bin/env python3
"""Benchmark: control-plane copy of a big single-layer image, ours against skopeo and crane.

    .venv/bin/python bench/bench_copy.py [--size-mb 500] [--rounds N] [--quick] [--rows FILE]

A source CNCF distribution registry on loopback holds a linux/amd64 image with one layer of
``--size-mb`` MB (a valid tar.gz of incompressible bytes; stored, not deflated). Per round,
each contender copies it to a fresh destination registry (cold) and then again (nothing to
do), one process each, start-up included:

  ours     `alga-release control-plane copy SRC --tag T` (streams registry to registry)
  skopeo   `skopeo copy --preserve-digests docker://SRC docker://DST`
  crane    `crane copy SRC DST`

Printed: wall and CPU seconds and peak RSS of each process (VmHWM sampled every 5 ms; the
peers' too), medians of interleaved rounds; and from one extra, untimed round through two
counting proxies (source and destination), the HTTP requests each sends and the bytes it
uploads. Targets (issue 14): cold <= 1x skopeo and crane; the no-op re-copy <= 2x of them.
Figures only, nothing asserted.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common as bc  # noqa: E402
from steps.oci import mediatypes as mt  # noqa: E402
from steps.oci.client import RegistryClient  # noqa: E402
from steps.oci.reference import Digest  # noqa: E402
from tests.harness.faults import FaultProxy, start_fault_proxy  # noqa: E402
from tests.harness.images import image_config, image_manifest  # noqa: E402
from tests.harness.registry import Registry, start_registry  # noqa: E402

SOURCE_REPO = "ci/control-plane"
TAG = "3f2a1b0"
DEST_REPO = "nine-minds/alga-appliance-control-plane"


class _Tee:
    """A write-only file that hashes what passes and writes it on (the layer's digest)."""

    def __init__(self, fh: object) -> None:
        self.fh = fh
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.fh.write(data)  # type: ignore[attr-defined, no-any-return]

    def flush(self) -> None:
        self.fh.flush()  # type: ignore[attr-defined]


def make_layer(path: Path, megabytes: int, seed: int = 0) -> tuple[Digest, int, str]:
    """A gzip tar with one file of ``megabytes`` MB of pseudo-random bytes, stored blocks
    (level 0: random bytes do not compress). Its digest, size and diff_id."""
    rng = random.Random(megabytes * 1000 + seed)
    diff = hashlib.sha256()
    with path.open("wb") as raw:
        tee = _Tee(raw)
        with gzip.GzipFile(fileobj=tee, mode="wb", compresslevel=0, mtime=0) as gz:  # type: ignore[arg-type]

            class _Hashing:
                def write(self, data: bytes) -> int:
                    diff.update(data)
                    return gz.write(data)

            with tarfile.open(fileobj=_Hashing(), mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                info = tarfile.TarInfo("opt/control-plane/blob.bin")
                info.size, info.mtime, info.mode = megabytes * bc.MiB, 0, 0o644

                class _Random:
                    left = info.size

                    def read(self, n: int = -1) -> bytes:
                        n = self.left if n < 0 else min(n, self.left)
                        self.left -= n
                        return rng.randbytes(n)

                tar.addfile(info, _Random())  # type: ignore[arg-type]
    return Digest.parse(f"sha256:{tee.sha.hexdigest()}"), tee.size, f"sha256:{diff.hexdigest()}"


def push_source(
    reg: Registry, work: Path, megabytes: int, *, layers: int = 1, tag: str = TAG
) -> Digest:
    """A linux/amd64 image of ``layers`` layers of ``megabytes`` MB each, as ``tag``."""
    made = []
    for n in range(layers):
        layer_path = work / f"layer-{n}.tar.gz"
        made.append((layer_path, *make_layer(layer_path, megabytes, n)))
    config = image_config([d for *_, d in made], {"Entrypoint": ["/opt/control-plane/run"]})
    manifest = image_manifest(config, [(layer, size) for _, layer, size, _ in made])
    with RegistryClient(reg.host, plain_http=True) as client:
        client.push_blob(SOURCE_REPO, config)
        for layer_path, layer, _, _ in made:
            client.push_blob(SOURCE_REPO, layer_path, digest=layer)
            layer_path.unlink()
        digest = client.put_manifest(SOURCE_REPO, tag, manifest, mt.OCI_MANIFEST)
    return digest


@dataclass
class Round:
    cold: bc.Measured
    again: bc.Measured
    requests: tuple[int, int] = (0, 0)  # cold, again (counting round only)
    uploaded: int = 0  # request-body bytes of the cold copy (counting round only)


#: ``alga-release`` as the step image installs it (set by main: bench.common.installed_cli)
INSTALLED: tuple[list[str], dict[str, str]] | None = None


def copy_argv(
    name: str, source_host: str, dest_host: str, cli: str = bc.CLI, tag: str = TAG
) -> list[str]:
    src = f"{source_host}/{SOURCE_REPO}:{tag}"
    dst = f"{dest_host}/{DEST_REPO}:{tag}"
    if name in ("ours", "ours --jobs 1"):
        jobs = ["--jobs", "1"] if name == "ours --jobs 1" else []
        return [
            cli,
            "-q",
            "control-plane",
            "copy",
            src,
            "--tag",
            tag,
            "--registry",
            dest_host,
            "--plain-http",
            "--source-plain-http",
            "--json",
            *jobs,
        ]
    if name == "skopeo":
        return [
            bc.tool("skopeo"),
            "copy",
            "-q",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            f"docker://{src}",
            f"docker://{dst}",
        ]
    return [bc.tool("crane"), "copy", "--insecure", src, dst]


def one_round(
    name: str, source: Registry, work: Path, number: int, *, count: bool = False
) -> Round:
    folder = work / f"dest-{name}-{number}"
    dest = start_registry(folder)
    proxies: list[FaultProxy] = []
    try:
        source_host, dest_host = source.host, dest.host
        if count:
            proxies = [start_fault_proxy(source), start_fault_proxy(dest)]
            source_host, dest_host = proxies[0].host, proxies[1].host
        argv, env = _contender(name, source_host, dest_host)
        cold = bc.measured(argv, env).check(f"{name} copy (cold)")
        cold_requests = sum(len(p.requests) for p in proxies)
        uploaded = sum(r.body_bytes for r in proxies[1].requests) if proxies else 0
        for proxy in proxies:
            proxy.reset()
        again = bc.measured(argv, env).check(f"{name} copy (again)")
        again_requests = sum(len(p.requests) for p in proxies)
        return Round(cold, again, (cold_requests, again_requests), uploaded)
    finally:
        for proxy in proxies:
            proxy.stop()
        dest.stop()
        shutil.rmtree(folder, ignore_errors=True)


#: ``ours-installed``: the same copy by ``alga-release`` as the step image installs it. The
#: checkout's virtualenv has the test extras, with which httpx's import also loads rich
#: and click (its command-line client's): about 45 ms more per process than an install.
CONTENDERS = ("ours", "ours-installed", "skopeo", "crane")


def _contender(
    name: str, source_host: str, dest_host: str, tag: str = TAG
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of contender ``name``."""
    if name == "ours-installed":
        assert INSTALLED is not None
        command, installed_env = INSTALLED
        argv = copy_argv("ours", source_host, dest_host, tag=tag)
        return [*command, *argv[1:]], installed_env
    return copy_argv(name, source_host, dest_host, tag=tag), bc.clean_env()


#: The many-layer image: blobs in parallel (ours --jobs 4, the default; skopeo and crane
#: copy layers in parallel too) against one at a time.
MULTI_TAG = "multi"
MULTI_CONTENDERS = ("ours", "ours-installed", "ours --jobs 1", "skopeo", "crane")


def multi_round(name: str, source: Registry, work: Path, number: int) -> bc.Measured:
    """A cold copy of the many-layer image to a fresh registry."""
    folder = work / f"multi-{name.replace(' ', '')}-{number}"
    dest = start_registry(folder)
    try:
        argv, env = _contender(name, source.host, dest.host, tag=MULTI_TAG)
        return bc.measured(argv, env).check(f"{name} copy (many layers)")
    finally:
        dest.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    args = bc.parse_args(
        __doc__,
        5,
        lambda p: p.add_argument("--size-mb", type=int, default=500, help="the layer's size (MB)"),
    )
    rounds = 1 if args.quick else args.rounds
    megabytes = 4 if args.quick else args.size_mb
    for name in ("ours", "skopeo", "crane"):
        copy_argv(name, "a:1", "b:1")  # every tool there before anything starts
    global INSTALLED
    with tempfile.TemporaryDirectory(prefix="alga-bench-copy-") as tmp:
        work = Path(tmp)
        INSTALLED = bc.installed_cli(work)
        with start_registry(work / "source") as source:
            digest = push_source(source, work, megabytes)
            multi_layers, multi_mb = (3, 2) if args.quick else (8, 32)
            push_source(source, work, multi_mb, layers=multi_layers, tag=MULTI_TAG)
            multi = bc.interleaved(
                rounds,
                {
                    name: (lambda n, name=name: multi_round(name, source, work, n))
                    for name in MULTI_CONTENDERS
                },
            )
            counted = {name: one_round(name, source, work, -1, count=True) for name in CONTENDERS}
            # --quick: the counting round alone, timed through the proxies
            results = (
                {name: [r] for name, r in counted.items()}
                if args.quick
                else bc.interleaved(
                    rounds,
                    {
                        name: (lambda n, name=name: one_round(name, source, work, n))
                        for name in CONTENDERS
                    },
                )
            )
    print(
        f"\ncontrol-plane copy: one linux/amd64 image, one {megabytes} MB layer ({digest.short}), "
        f"loopback registry to registry;\nmedian of {rounds} interleaved round(s); requests and "
        "bytes uploaded from one extra round through counting proxies"
    )
    header = (
        f"{'copy':<14} {'phase':<7} {'wall s':>7} {'cpu s':>6} {'peak MiB':>9} {'requests':>8} "
        f"{'uploaded MB':>11}"
    )
    bc.print_header(header)
    wall: dict[tuple[str, str], float] = {}
    rss: dict[tuple[str, str], float] = {}
    for name, group in results.items():
        for index, phase in enumerate(("cold", "again")):
            runs = [r.cold if phase == "cold" else r.again for r in group]
            wall[name, phase] = bc.median([m.seconds for m in runs])
            rss[name, phase] = max(m.rss_mib for m in runs)
            uploaded = counted[name].uploaded / 1e6 if phase == "cold" else 0.0
            print(
                f"{name:<14} {phase:<7} {wall[name, phase]:>7.2f} "
                f"{bc.median([m.cpu for m in runs]):>6.2f} {rss[name, phase]:>9.1f} "
                f"{counted[name].requests[index]:>8} {uploaded:>11.1f}"
            )
    print(
        f"\nmany layers: {multi_layers} layers of {multi_mb} MB, cold, median of {rounds} "
        "interleaved round(s)"
    )
    bc.print_header(f"{'copy':<14} {'wall s':>7} {'cpu s':>6} {'peak MiB':>9}")
    for name, runs in multi.items():
        wall[name, "multi"] = bc.median([m.seconds for m in runs])
        rss[name, "multi"] = max(m.rss_mib for m in runs)
        print(
            f"{name:<14} {wall[name, 'multi']:>7.2f} {bc.median([m.cpu for m in runs]):>6.2f} "
            f"{rss[name, 'multi']:>9.1f}"
        )

    def multi_row(peer: str, who: str = "ours") -> bc.Row:
        ours, theirs = wall[who, "multi"], wall[peer, "multi"]
        where = " (as installed in the step image)" if who == "ours-installed" else ""
        return bc.Row(
            f"control-plane copy, {multi_layers} layers of {multi_mb} MB, cold{where}",
            f"{bc.seconds_text(ours)}, {rss[who, 'multi']:.0f} MiB peak "
            f"(--jobs 1: {bc.seconds_text(wall['ours --jobs 1', 'multi'])})",
            f"{peer} {bc.seconds_text(theirs)}, {rss[peer, 'multi']:.0f} MiB peak",
            ours / theirs,
            f"<= 1x {peer}",
            ours <= theirs,
        )

    def row(work_text: str, phase: str, peer: str, limit: float, who: str = "ours") -> bc.Row:
        ours, theirs = wall[who, phase], wall[peer, phase]
        index = 0 if phase == "cold" else 1
        return bc.Row(
            work_text,
            f"{bc.seconds_text(ours)}, {rss[who, phase]:.0f} MiB peak, "
            f"{counted['ours'].requests[index]} requests",
            f"{peer} {bc.seconds_text(theirs)}, {rss[peer, phase]:.0f} MiB peak, "
            f"{counted[peer].requests[index]} requests",
            ours / theirs,
            f"<= {limit:g}x {peer}",
            ours <= limit * theirs,
        )

    size = f"{megabytes} MB"
    bc.emit(
        args,
        [
            row(f"control-plane copy, one {size} layer, cold", "cold", "skopeo", 1),
            row(f"control-plane copy, one {size} layer, cold", "cold", "crane", 1),
            row(
                f"control-plane copy, one {size} layer, cold (as installed in the step image)",
                "cold",
                "skopeo",
                1,
                "ours-installed",
            ),
            row(
                f"control-plane copy, one {size} layer, cold (as installed in the step image)",
                "cold",
                "crane",
                1,
                "ours-installed",
            ),
            multi_row("skopeo"),
            multi_row("crane"),
            multi_row("skopeo", "ours-installed"),
            multi_row("crane", "ours-installed"),
            row("re-copy, nothing to do (checkout)", "again", "skopeo", 2),
            row("re-copy, nothing to do (checkout)", "again", "crane", 2),
            row(
                "re-copy, nothing to do (as installed in the step image)",
                "again",
                "skopeo",
                2,
                "ours-installed",
            ),
            row(
                "re-copy, nothing to do (as installed in the step image)",
                "again",
                "crane",
                2,
                "ours-installed",
            ),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
