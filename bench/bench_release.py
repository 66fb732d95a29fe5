#!/usr/bin/env python3
"""Benchmark: a whole release, ours against the standard tools doing the same work.

    .venv/bin/python bench/bench_release.py [--rounds N] [--quick] [--rows FILE]

The reference inputs (what `make demo` publishes: the six charts of examples/charts and the
overlay in flux/, `--source . --config examples/release.yaml`), each run against a fresh CNCF
distribution registry on loopback (anonymous), cold and then unchanged (the same again):

  ours, one process     `alga-release publish` (precheck, charts, bundle, images, manifest,
                        channel, verify), the channel protocol's default settle (1 s)
  ours, settle 0.1 s    the same with ALGA_SETTLE=0.1 (`--settle`): the settle is a wait
                        for concurrent writers that the standard tools do not have; also
                        as the step image installs it (bench.common.installed_cli)
  ours, six processes   the steps as Argo runs them: one `alga-release` process per step,
                        as installed in the step image (bench.common.installed_cli), with
                        the argument lists of steps.release.plan.release_steps (the list
                        pipelines/release.py renders into workflows-generated/), results
                        passed as files; no precheck (the Argo template has none)
  standard tools        what the old release script ran: `helm package` + `helm push` per
                        chart, `kubectl kustomize` of ./base and of the three Flux
                        Kustomization paths, `flux push artifact` of the overlay, `oras push`
                        of the release manifest (config + layer, as ours) and `oras tag` for
                        the channel. It does less than ours: no pinning of the overlay to the
                        pushed charts, no image checks, no immutability or concurrency
                        checks, no audit record, no verification.

Interleaved rounds (each round runs every contender, the order rotating), medians. Before
them, one round through a counting proxy gives the HTTP requests of each (not timed; it also
warms the page and bytecode caches). Figures only, nothing asserted.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common as bc  # noqa: E402
from steps.config import load_config  # noqa: E402
from steps.release.plan import PublishParams, RegistryParams, release_steps  # noqa: E402
from tests.harness.faults import start_fault_proxy  # noqa: E402
from tests.harness.registry import Registry, start_registry  # noqa: E402
from tests.integration.test_publish import IMAGE_REPOS, TAG, push_images  # noqa: E402

CONFIG = ROOT / "examples" / "release.yaml"
VERSION = "1.0.0"
CHANNEL = "nightly"
#: The folders the bundle step builds (./base and the paths of the overlay's three Flux
#: Kustomizations, flux/base/flux/kustomizations.yaml).
KUSTOMIZE_PATHS = ("base", "base/platform", "base/core", "base/background")
SOURCE_URL = "https://github.com/Nine-Minds/alga-psa"


@dataclass
class Run:
    """One contender's cold or unchanged run: total wall/CPU, peak RSS, its parts."""

    seconds: float = 0.0
    cpu: float = 0.0
    rss_mib: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)

    def add(self, part: str, m: bc.Measured) -> None:
        self.seconds += m.seconds
        self.cpu += m.cpu
        self.rss_mib = max(self.rss_mib, m.rss_mib)
        self.parts[part] = self.parts.get(part, 0.0) + m.seconds


def _publish_argv(host: str) -> list[str]:
    argv = [
        bc.CLI,
        "-q",
        "publish",
        "--source",
        str(ROOT),
        "--config",
        str(CONFIG),
        "--version",
        VERSION,
        "--channel",
        CHANNEL,
        *[a for key in IMAGE_REPOS for a in ("--image", f"{key}={TAG}")],
        "--control-plane",
        TAG,
        "--registry",
        host,
        "--plain-http",
        "--json",
    ]
    return argv


class Contender:
    """Does its cold or unchanged work against a registry host it is given."""

    label = ""
    needs_images = True  # the app images and the control plane pushed first

    def phase(self, host: str, work: Path, phase: str) -> Run:
        raise NotImplementedError


class OursOneProcess(Contender):
    """``alga-release publish`` from the checkout, or (``installed``) as the step image
    installs it (bench.common.installed_cli)."""

    def __init__(self, settle: float | None = None, *, installed: bool = False) -> None:
        self.settle = settle
        self.installed = installed
        self.label = (
            "ours, one process"
            + ("" if settle is None else f", settle {settle:g} s")
            + (", installed" if installed else "")
        )
        self._installed: tuple[list[str], dict[str, str]] | None = None

    def phase(self, host: str, work: Path, phase: str) -> Run:
        run = Run()
        settle = {} if self.settle is None else {"ALGA_SETTLE": str(self.settle)}
        argv, env = _publish_argv(host), bc.clean_env(**settle)
        if self.installed:
            if self._installed is None:
                self._installed = bc.installed_cli(work.parent)
            cli, installed_env = self._installed
            argv, env = [*cli, *argv[1:]], {**installed_env, **settle}
        m = bc.measured(argv, env)
        run.add("publish", m.check(f"{self.label} ({phase})"))
        return run


class OursSixProcesses(Contender):
    def __init__(self, settle: float | None = None) -> None:
        self.settle = settle
        self.label = "ours, six processes (Argo)" + (
            "" if settle is None else f", settle {settle:g} s"
        )
        self._installed: tuple[list[str], dict[str, str]] | None = None

    def phase(self, host: str, work: Path, phase: str) -> Run:
        outdir = work / f"argo-{phase}"  # a new workflow run: new, empty volumes
        outdir.mkdir()
        params = PublishParams(
            source=str(ROOT),
            version=VERSION,
            channel=CHANNEL,
            images={key: TAG for key in IMAGE_REPOS},
            control_plane=TAG,
            config=str(CONFIG),
            registry=RegistryParams(registry=host, plain_http=True),
        )
        run = Run()
        if self._installed is None:  # the step image's install, made once in the bench's
            self._installed = bc.installed_cli(work.parent)  # folder (a round's is removed)
        cli, installed_env = self._installed
        env = dict(installed_env)
        if self.settle is not None:
            env["ALGA_SETTLE"] = str(self.settle)
        for step in release_steps(params, str(outdir)):
            m = bc.measured([*cli, "-q", *step.argv], env)
            run.add(step.name, m.check(f"{self.label}: {step.name} ({phase})"))
        return run


class StandardTools(Contender):
    label = "standard tools"
    needs_images = False

    def __init__(self) -> None:
        self.helm = bc.tool("helm")
        self.kubectl = bc.tool("kubectl")
        self.flux = bc.tool("flux")
        self.oras = bc.tool("oras")
        self.charts = dict(load_config(CONFIG).charts)
        head = bc.run_quiet(["git", "-C", str(ROOT), "rev-parse", "HEAD"]).strip()
        self.revision = f"main@sha1:{head}"

    @staticmethod
    def release_json(work: Path) -> Path:
        """A release manifest of the real shape (the schema's example), as oras pushes it."""
        folder = work / "oras"
        folder.mkdir(exist_ok=True)
        release = json.loads((ROOT / "schemas/examples/valid/minimal.json").read_text())
        path = folder / "release.json"
        path.write_text(json.dumps(release, indent=2, sort_keys=True) + "\n")
        return path

    def phase(self, host: str, work: Path, phase: str) -> Run:
        env = bc.clean_env()
        release = self.release_json(work)
        run = Run()
        packages = work / f"helm-{phase}"
        packages.mkdir()
        for name, rel in self.charts.items():
            argv = [self.helm, "package", str(ROOT / rel), "-d", str(packages)]
            run.add("helm package", bc.measured(argv, env).check(f"helm package {name}"))
            tgz = next(packages.glob(f"{name}-*.tgz"))
            argv = [self.helm, "push", str(tgz), f"oci://{host}/nine-minds/charts", "--plain-http"]
            run.add("helm push", bc.measured(argv, env).check(f"helm push {name}"))
        for rel in KUSTOMIZE_PATHS:
            argv = [
                self.kubectl,
                "kustomize",
                "--load-restrictor",
                "LoadRestrictionsNone",
                str(ROOT / "flux" / rel),
            ]
            run.add("kubectl kustomize", bc.measured(argv, env).check(f"kubectl kustomize {rel}"))
        argv = [
            self.flux,
            "push",
            "artifact",
            f"oci://{host}/nine-minds/alga-appliance-config:{VERSION}",
            f"--path={ROOT / 'flux'}",
            f"--source={SOURCE_URL}",
            f"--revision={self.revision}",
            "--insecure-registry",
        ]
        run.add("flux push artifact", bc.measured(argv, env).check("flux push artifact"))
        ref = f"{host}/nine-minds/alga-appliance-release"
        argv = [
            self.oras,
            "push",
            "--plain-http",
            "--artifact-type",
            "application/vnd.alga.appliance.release.v1",
            "--config",
            "release.json:application/vnd.alga.appliance.release.config.v1+json",
            f"{ref}:{VERSION}",
            "release.json:application/json",
        ]
        run.add("oras push", bc.measured(argv, env, cwd=release.parent).check("oras push"))
        argv = [self.oras, "tag", "--plain-http", f"{ref}:{VERSION}", CHANNEL]
        run.add("oras tag", bc.measured(argv, env).check("oras tag"))
        return run


@dataclass
class Round:
    cold: Run
    unchanged: Run
    requests: tuple[int, int] = (0, 0)  # cold, unchanged (counting rounds only)


def one_round(contender: Contender, work: Path, *, count: bool = False) -> Round:
    """Cold, then unchanged, against a fresh registry; with ``count`` through a counting
    proxy, the requests of each phase."""
    folder = Path(tempfile.mkdtemp(prefix="round-", dir=work))
    reg: Registry = start_registry(folder / "registry")
    proxy = start_fault_proxy(reg) if count else None
    try:
        if contender.needs_images:
            push_images(reg)
        host = proxy.host if proxy is not None else reg.host
        if proxy is not None:
            proxy.reset()
        cold = contender.phase(host, folder, "cold")
        cold_requests = len(proxy.requests) if proxy is not None else 0
        if proxy is not None:
            proxy.reset()
        unchanged = contender.phase(host, folder, "unchanged")
        requests = (cold_requests, len(proxy.requests) if proxy is not None else 0)
        return Round(cold, unchanged, requests)
    finally:
        if proxy is not None:
            proxy.stop()
        reg.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    args = bc.parse_args(__doc__, 5)
    # --quick: a smoke run, the counting round alone (through the proxy, timed too), every
    # contender of ours with a 0.1 s settle
    quick = 0.1 if args.quick else None
    one, six, peer = OursOneProcess(quick), OursSixProcesses(quick), StandardTools()
    contenders: list[Contender] = [one, six, peer]
    short = None if args.quick else OursOneProcess(settle=0.1)
    # the same as the step image runs it (the other rows' one-process figures: a checkout)
    short_installed = None if args.quick else OursOneProcess(settle=0.1, installed=True)
    if short is not None and short_installed is not None:
        contenders[1:1] = [short, short_installed]
    with tempfile.TemporaryDirectory(prefix="alga-bench-release-") as tmp:
        work = Path(tmp)
        counted = {c.label: one_round(c, work, count=True) for c in contenders}
        requests = {label: r.requests for label, r in counted.items()}
        if args.quick:
            results = {label: [r] for label, r in counted.items()}
        else:
            results = bc.interleaved(
                args.rounds, {c.label: (lambda _n, c=c: one_round(c, work)) for c in contenders}
            )
    rounds = len(next(iter(results.values())))
    print(
        f"whole release, reference inputs (6 charts, flux/), loopback CNCF registry; median of "
        f"{rounds} interleaved round(s); requests from one extra round through a counting proxy"
    )
    header = (
        f"{'contender':<34} {'phase':<10} {'wall s':>7} {'cpu s':>6} {'peak MiB':>8} "
        f"{'requests':>8}"
    )
    bc.print_header(header)
    wall: dict[tuple[str, str], float] = {}
    for label, group in results.items():
        for index, phase in enumerate(("cold", "unchanged")):
            runs = [r.cold if phase == "cold" else r.unchanged for r in group]
            wall[label, phase] = bc.median([r.seconds for r in runs])
            print(
                f"{label:<34} {phase:<10} {wall[label, phase]:>7.2f} "
                f"{bc.median([r.cpu for r in runs]):>6.2f} {max(r.rss_mib for r in runs):>8.1f} "
                f"{requests[label][index]:>8}"
            )
    print("\nparts (median wall s): the six processes per step, the standard tools per tool")
    for label in (six.label, peer.label):
        for phase in ("cold", "unchanged"):
            runs = [r.cold if phase == "cold" else r.unchanged for r in results[label]]
            parts = {name: bc.median([r.parts[name] for r in runs]) for name in runs[0].parts}
            print(f"  {label}, {phase}: " + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()))

    def row(work_text: str, ours: Contender, phase: str) -> bc.Row:
        mine, theirs = wall[ours.label, phase], wall[peer.label, phase]
        index = 0 if phase == "cold" else 1
        return bc.Row(
            work_text,
            f"{bc.seconds_text(mine)}, {requests[ours.label][index]} requests",
            f"{bc.seconds_text(theirs)}, {requests[peer.label][index]} requests",
            mine / theirs,
            "<= 1x the standard tools",
            mine <= theirs,
        )

    settle = "" if quick is None else f" (settle {quick:g} s)"
    rows = [row(f"whole release, one process, cold{settle}", one, "cold")]
    if short is not None and short_installed is not None:
        rows.append(
            row(
                "  the same, settle 0.1 s (the wait for concurrent writers; default 1 s)",
                short,
                "cold",
            )
        )
        rows.append(
            row(
                "  the same, settle 0.1 s, as installed in the step image",
                short_installed,
                "cold",
            )
        )
    rows += [
        row(f"whole release, six processes (as Argo), cold{settle}", six, "cold"),
        row(f"unchanged re-run, one process{settle}", one, "unchanged"),
    ]
    if short_installed is not None:
        rows.append(row("  the same, as installed in the step image", short_installed, "unchanged"))
    rows.append(row(f"unchanged re-run, six processes (as Argo){settle}", six, "unchanged"))
    bc.emit(args, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
