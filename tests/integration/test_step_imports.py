"""What each release step loads when Argo runs it as a process of its own.

Each of the six steps is one process per Argo task, so what a step imports is paid again
by every run (about 20-30 ms per heavy library here). The steps run here as the Argo
templates run them (the argument lists of ``steps.release.plan.release_steps``, results
passed as files), against the loopback registry, without a signing key, cold and then
unchanged; each process records the modules it ended with.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from steps.release.plan import PublishParams, RegistryParams, Step, release_steps
from tests.harness.faults import FaultProxy, start_fault_proxy
from tests.harness.registry import Registry
from tests.integration.test_publish import IMAGE_REPOS, TAG, push_images

ROOT = Path(__file__).resolve().parents[2]

#: Runs ``alga-release`` with the arguments given and writes, at exit, the top-level
#: names of every module it loaded (and the ``steps.*`` ones in full) to ``$MODULES_OUT``.
PROBE = (
    "import atexit, os, sys\n"
    "def _dump():\n"
    "    names = {m if m.startswith('steps.') else m.split('.')[0] for m in sys.modules}\n"
    "    with open(os.environ['MODULES_OUT'], 'w') as fh:\n"
    "        fh.write('\\n'.join(sorted(names)))\n"
    "atexit.register(_dump)\n"
    "from steps.cli import main\n"
    "sys.argv = ['alga-release', *sys.argv[1:]]\n"
    "sys.exit(main())\n"
)

#: Never without a signing or trusted key: the signing code and its libraries.
SIGNING = {"cryptography", "nacl", "steps.signing.cosign", "steps.signing.keys"}
#: Never: httpx's own command-line client (installed here with the test extras;
#: steps.oci.httpxlib keeps httpx from importing it).
HTTPX_CLI = {"rich", "click"}
#: What a step does not need, per step (beyond SIGNING and HTTPX_CLI).
NOT_LOADED = {
    "charts": {"jsonschema", "steps.channels.move", "steps.release.manifest"},
    "bundle": {"jsonschema", "steps.channels.move", "steps.channels.immutable"},
    "images": {"httpx", "httpcore", "yaml", "jsonschema", "steps.oci.client", "tempfile"},
    "manifest": {"jsonschema"},  # a valid manifest is accepted on the consume library's rules
    "channel": {"jsonschema"},
    "verify": {"jsonschema", "yaml", "tempfile"},  # it reads manifests, never a values text
}
#: ... and what it does not need when it finds its work done: a step whose no-op is
#: only reads answers from the quick reader (:mod:`steps.oci.quick`).
UNCHANGED_NOT_LOADED = {
    step: {"httpx", "steps.oci.client"}
    for step in ("charts", "bundle", "manifest", "channel", "verify")
}


def _params(registry: Registry | FaultProxy) -> PublishParams:
    return PublishParams(
        source=str(ROOT),
        version="1.0.0",
        channel="nightly",
        images={key: TAG for key in IMAGE_REPOS},
        control_plane=TAG,
        config=str(ROOT / "examples" / "release.yaml"),
        registry=RegistryParams(registry=registry.host, plain_http=True),
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALGA_")}
    env.update(ALGA_REGISTRY_USERNAME="", ALGA_REGISTRY_PASSWORD="", ALGA_SETTLE="0.1")
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


#: (phase, step) -> the (method, path) of each request the step sent
REQUESTS: dict[tuple[str, str], list[tuple[str, str]]] = {}
#: (phase, step) -> how many of its requests the proxy answered 503 instead of the registry
FAILED: dict[tuple[str, str], int] = {}


def _run_steps(
    registry: Registry | FaultProxy,
    work: Path,
    phase: str,
    before: Callable[[FaultProxy, str], None] | None = None,
    **extra: str,
) -> dict[str, set[str]]:
    """Runs the six steps; ``before(proxy, step)`` may set the proxy's faults for a step."""
    out = work / f"argo-{phase}"
    out.mkdir()
    env = _env(**extra)
    loaded: dict[str, set[str]] = {}
    proxy = registry if isinstance(registry, FaultProxy) else None
    for step in release_steps(_params(registry), str(out)):
        if proxy is not None:
            proxy.reset()
            if before is not None:
                before(proxy, step.name)
        modules = work / f"modules-{phase}-{step.name}.txt"
        env["MODULES_OUT"] = str(modules)
        done = subprocess.run(
            [sys.executable, "-c", PROBE, "-q", *step.argv],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{step.name} ({phase}): {done.stderr[-2000:]}"
        loaded[step.name] = set(modules.read_text(encoding="utf-8").split())
        if proxy is not None:
            REQUESTS[phase, step.name] = [(r.method, r.path) for r in proxy.requests]
            FAILED[phase, step.name] = proxy.count(status=503)
    return loaded


def _assert_same_results(steps: list[Step], work: Path, phase: str, other: str) -> None:
    """Every step's result file of ``phase`` is ``other``'s, to the byte."""
    for step in steps:
        got = (work / f"argo-{phase}" / Path(step.output).name).read_bytes()
        assert got == (work / f"argo-{other}" / Path(step.output).name).read_bytes(), step.name


@pytest.fixture(scope="module")
def step_modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, set[str]]]:
    from tests.harness.registry import start_registry

    work = tmp_path_factory.mktemp("step-imports")
    registry = start_registry(work / "registry")
    try:
        push_images(registry)
        proxy = start_fault_proxy(registry)  # counts each step's requests
        try:
            cold = _run_steps(proxy, work, "cold")
            unchanged = _run_steps(proxy, work, "unchanged")
            full = _run_steps(proxy, work, "full", ALGA_NO_QUICK_READS="1")
            steps = release_steps(_params(proxy), str(work / "argo-unchanged"))
        finally:
            proxy.stop()
        _assert_same_results(steps, work, "unchanged", "full")  # quick answers are the full's
        return {"cold": cold, "unchanged": unchanged, "full": full}
    finally:
        registry.stop()


@pytest.mark.parametrize("phase", ["cold", "unchanged"])
@pytest.mark.parametrize("step", sorted(NOT_LOADED))
def test_a_step_loads_only_what_it_needs(
    step_modules: dict[str, dict[str, set[str]]], phase: str, step: str
) -> None:
    loaded = step_modules[phase][step]
    assert "steps.cli.app" in loaded  # the probe saw the step's own process
    wanted_not = SIGNING | HTTPX_CLI | NOT_LOADED[step]
    if phase == "unchanged":
        wanted_not |= UNCHANGED_NOT_LOADED.get(step, set())
    unwanted = sorted(loaded & wanted_not)
    assert unwanted == [], f"the {step} step ({phase}) loaded {unwanted}"


def test_the_steps_that_check_a_manifest_still_check_it(
    step_modules: dict[str, dict[str, set[str]]],
) -> None:
    # the manifest step validates what it pushes; the channel step what it moves to: on
    # the consume library's rules of the schema (steps.release.manifest.schema_problems).
    # A channel already at the release moves nothing: it is answered before the gates.
    for phase, step in (("cold", "manifest"), ("unchanged", "manifest"), ("cold", "channel")):
        assert {"consume", "steps.release.manifest"} <= step_modules[phase][step], step
    unneeded = {"steps.release.manifest", "yaml", "consume", "steps.channels.vouch"}
    assert not unneeded & step_modules["unchanged"]["channel"]


def test_without_quick_reads_the_steps_use_the_full_client(
    step_modules: dict[str, dict[str, set[str]]],
) -> None:
    # ALGA_NO_QUICK_READS=1: the comparison above was against the full client indeed
    for step in UNCHANGED_NOT_LOADED:
        assert "steps.oci.client" in step_modules["full"][step], step


@pytest.mark.parametrize("phase", ["cold", "unchanged"])
def test_verify_reads_each_manifest_once(
    step_modules: dict[str, dict[str, set[str]]], phase: str
) -> None:
    """``verify`` checks each piece and then each image tag's drift: one HEAD per tag."""
    sent = REQUESTS[phase, "verify"]
    heads = [path for method, path in sent if method == "HEAD" and "/manifests/" in path]
    assert heads, sent
    assert sorted(heads) == sorted(set(heads)), sent
    images = [path for path in heads if path.endswith("/manifests/62cdce38")]
    assert len(images) == 4  # the four app image tags, once each (the control plane by digest)


WRITES = ("PUT", "POST", "PATCH", "DELETE")


def test_a_step_that_must_write_writes_once_and_an_unchanged_one_never(
    step_modules: dict[str, dict[str, set[str]]],
) -> None:
    """A cold step's quick read gives up at its first write (nothing written yet); the full
    client then does the work once. An unchanged step writes nothing at all."""
    for step in ("manifest", "channel", "verify"):
        assert [r for r in REQUESTS["unchanged", step] if r[0] in WRITES] == [], step
    for step in ("manifest", "channel"):
        puts = [path for method, path in REQUESTS["cold", step] if method == "PUT"]
        assert puts, step
        assert len(puts) == len(set(puts)), f"{step} wrote twice: {puts}"
    moves = [
        path
        for method, path in REQUESTS["cold", "channel"]
        if method == "PUT" and path.endswith("/alga-appliance-release/manifests/nightly")
    ]
    assert len(moves) == 1, REQUESTS["cold", "channel"]


def test_a_channel_already_at_the_release_reads_the_channel_alone(
    step_modules: dict[str, dict[str, set[str]]],
) -> None:
    """The unchanged channel step reads the release's tag, the channel's and its state; no
    piece of the release (the gates guard what a move writes, and it writes nothing)."""
    sent = REQUESTS["unchanged", "channel"]
    assert not [p for _, p in sent if "/charts/" in p or p.endswith("/manifests/62cdce38")], sent
    assert len(sent) <= 8, sent
    cold = REQUESTS["cold", "channel"]
    assert [p for _, p in cold if "/charts/" in p], cold  # a move checks every piece first


#: Where each step's quick read meets a registry failure it does not retry: the manifest
#: step reads the channel's current release (a blob), the channel step the channel's index
#: (a blob), verify the release's pieces (manifest HEADs; its resolve is the consume
#: library's own).
QUICK_FAULTS = {
    "manifest": ("GET", "/blobs/"),
    "channel": ("GET", "/blobs/"),
    "verify": ("HEAD", "/charts/"),
}


def test_a_quick_read_that_meets_a_failure_starts_over_on_the_full_client(
    tmp_path: Path,
) -> None:
    """A 503 in an unchanged step's quick read: the step redoes its work on the full client
    (which retries), exits 0, writes nothing, and its result is the one without the fault."""
    from tests.harness.registry import start_registry

    def fault(proxy: FaultProxy, step: str) -> None:
        if step in QUICK_FAULTS:
            method, path = QUICK_FAULTS[step]
            proxy.fail_next(1, 503, method=method, path=path)

    registry = start_registry(tmp_path / "registry")
    try:
        push_images(registry)
        proxy = start_fault_proxy(registry)
        try:
            _run_steps(proxy, tmp_path, "cold")
            clean = _run_steps(proxy, tmp_path, "unchanged")
            faulted = _run_steps(proxy, tmp_path, "faulted", before=fault)
            steps = release_steps(_params(proxy), str(tmp_path / "argo-faulted"))
        finally:
            proxy.stop()
    finally:
        registry.stop()
    _assert_same_results(steps, tmp_path, "faulted", "unchanged")
    for name in QUICK_FAULTS:
        assert FAILED["faulted", name] == 1, name  # the fault was met, once
        assert "steps.oci.client" not in clean[name], name  # quick alone without it
        assert "steps.oci.client" in faulted[name], name  # the full client took over
        assert not [r for r in REQUESTS["faulted", name] if r[0] in WRITES], name
