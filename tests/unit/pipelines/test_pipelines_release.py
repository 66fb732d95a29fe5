"""No drift between the local run and Argo, and the two shell scripts the templates carry.

- The release DAG is ``release_steps`` task by task: names, order, dependencies and the
  exact arguments (built here from literal placeholders, not from ``pipelines``), with
  the Argo-only tasks (checkout, control-plane, control-plane-check) where they belong.
- With the placeholders filled in, the arguments are the ones ``alga-release publish``
  itself runs for the same inputs (its step list is captured before anything runs).
- Every task's arguments parse with the real ``alga-release`` parser, and the toggles
  passed as environment variables reach the parsed options.
- The control-plane task's copy and build arguments parse with the real parser too.
- The checkout script clones real git repositories (branch, tag, commit, bad ref, bad
  URL, retry over an existing checkout) and refuses bad control-plane inputs; the
  control-plane check runs with real ``python3``; the exit report runs with real ``sh``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from steps.cli.app import build_parser
from tests.unit.pipelines.test_pipelines import yaml_representers_kept

with yaml_representers_kept():
    from pipelines import common, control_plane, promote, release
from steps.release.plan import PublishParams, RegistryParams, Step, release_steps

ROOT = Path(__file__).resolve().parents[3]
OUT = "/workspace/out"

# The placeholders, written out: a change on either side shows up here.
PLACEHOLDERS = PublishParams(
    source="/workspace/src",
    version="{{workflow.parameters.version}}",
    channel="{{workflow.parameters.channel}}",
    images={
        "algaCore": "{{workflow.parameters.alga-core-tag}}",
        "workflowWorker": "{{workflow.parameters.workflow-worker-tag}}",
        "emailService": "{{workflow.parameters.email-service-tag}}",
        "temporalWorker": "{{workflow.parameters.temporal-worker-tag}}",
    },
    control_plane="{{workflow.parameters.control-plane}}",
    values_profile="{{workflow.parameters.values-profile}}",
    source_url="{{workflow.parameters.source-repo}}",
    revision="{{inputs.parameters.revision}}",
    registry=RegistryParams(
        registry="{{workflow.parameters.registry}}",
        namespace="{{workflow.parameters.namespace}}",
    ),
)

REVISION = "3f2a1b09d8c7e6f5a4b3c2d1e0f9a8b7c6d5e4f3"
VALUES = {
    "workflow.parameters.version": "1.4.0",
    "workflow.parameters.channel": "nightly",
    "workflow.parameters.alga-core-tag": "62cdce38",
    "workflow.parameters.workflow-worker-tag": "a1b2c3d",
    "workflow.parameters.email-service-tag": "0badf00d",
    "workflow.parameters.temporal-worker-tag": "1234567",
    "workflow.parameters.control-plane": "62cdce38",
    "workflow.parameters.control-plane-source": "registry.example.com/ci/control-plane:3f2a1b0",
    "workflow.parameters.values-profile": "single-node",
    "workflow.parameters.source-repo": "https://github.com/Nine-Minds/alga-psa.git",
    "workflow.parameters.registry": "ghcr.io",
    "workflow.parameters.namespace": "nine-minds",
    "inputs.parameters.revision": REVISION,
    "inputs.parameters.version": "1.4.0",
    "inputs.parameters.channel": "stable",
    "inputs.parameters.registry": "ghcr.io",
    "inputs.parameters.namespace": "nine-minds",
}

ENV_TOGGLES = (
    "ALGA_DRY_RUN",
    "ALGA_ALLOW_DOWNGRADE",
    "ALGA_REASON",
    "ALGA_RUN",
    "ALGA_RUN_ID",
    "ALGA_BUILDER_ID",
)


def fill(text: str, values: dict[str, str] = VALUES) -> str:
    filled = re.sub(r"\{\{([^}]+)\}\}", lambda m: values[m.group(1)], text)
    assert "{{" not in filled
    return filled


@cache
def load(name: str) -> dict[str, Any]:
    """A committed file, parsed once (callers must not change it)."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "workflows-generated" / name).read_text())
    return data


def templates(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in doc["spec"]["templates"]}


def release_tasks() -> list[dict[str, Any]]:
    doc = load("release.yaml")
    tasks: list[dict[str, Any]] = templates(doc)[release.ENTRYPOINT]["dag"]["tasks"]
    return tasks


def step_tasks() -> list[dict[str, Any]]:
    """The tasks that are ``release_steps``' steps, in DAG order (no Argo-only task)."""
    names = {s.name for s in expected_steps()}
    return [t for t in release_tasks() if t["name"] in names]


def expected_steps(dry_run: bool = False) -> list[Step]:
    return release_steps(PublishParams(**{**vars(PLACEHOLDERS), "dry_run": dry_run}), OUT)


def env_of(template: dict[str, Any]) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in template["container"].get("env", [])}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*ENV_TOGGLES, "ALGA_RELEASE_CONFIG", "ALGA_REGISTRY", "ALGA_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("ALGA_PLAIN_HTTP", "ALGA_CA_FILE", "ALGA_SOURCE_URL", "ALGA_SOURCE_REVISION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ALGA_CHART_PIN", raising=False)
    return monkeypatch


# -- the DAG is release_steps ----------------------------------------------------------------


def test_the_release_dag_is_release_steps_task_by_task() -> None:
    steps = expected_steps()
    tasks = release_tasks()
    names = [t["name"] for t in tasks]
    step_names = [s.name for s in steps]
    at = step_names.index("images") + 1
    assert names == [
        release.CHECKOUT,
        "control-plane",
        *step_names[:at],
        "control-plane-check",
        *step_names[at:],
        release.PROMOTE_TASK,
    ]
    assert "depends" not in tasks[0]
    for before, task in zip(names, tasks[1:], strict=False):
        assert task["depends"] == before, f"{task['name']} must run right after {before}"
    all_templates = templates(load("release.yaml"))
    for step, task in zip(steps, step_tasks(), strict=True):
        template = all_templates[task["template"]]
        container = template["container"]
        assert container["command"] == ["alga-release"], step.name
        assert container["args"] == step.argv, f"{step.name}: arguments drifted"
        (result,) = template["outputs"]["parameters"]
        assert result == {"name": "result", "valueFrom": {"path": step.output}}
        assert step.output == f"{OUT}/{step.name}.json"


def test_steps_read_the_checked_out_revision_through_an_input() -> None:
    all_templates = templates(load("release.yaml"))
    checkout = all_templates[release.CHECKOUT]
    assert checkout["outputs"]["parameters"] == [
        {"name": "revision", "valueFrom": {"path": f"{OUT}/revision"}}
    ]
    for task in release_tasks()[1:-1]:
        if task["name"] == control_plane.TASK:  # a DAG; its copy and build read no revision
            for mode in ("copy", "build"):
                template = all_templates[f"control-plane-{mode}"]
                assert "inputs" not in template
                assert not any("revision" in a for a in template["container"]["args"])
            continue
        uses = any("{{inputs.parameters.revision}}" in a for a in _args(all_templates, task))
        given = {p["name"]: p["value"] for p in task.get("arguments", {}).get("parameters", [])}
        if uses:
            assert given == {"revision": "{{tasks.checkout.outputs.parameters.revision}}"}
        else:
            assert given == {}, task["name"]


def _args(all_templates: dict[str, dict[str, Any]], task: dict[str, Any]) -> list[str]:
    args: list[str] = all_templates[task["template"]]["container"]["args"]
    return args


def test_a_dry_run_skips_what_release_steps_drops_and_toggles_the_rest_by_env() -> None:
    full, dry = expected_steps(), expected_steps(dry_run=True)
    dropped = {s.name for s in full} - {s.name for s in dry}
    assert dropped  # verify
    not_dry = "'{{workflow.parameters.dry-run}}' == 'false'"
    for task in step_tasks():
        assert (task.get("when") == not_dry) == (task["name"] in dropped), task["name"]
    # locally a dry run adds --dry-run (bundle: --dry-run DIR) and nothing else
    by_name = {s.name: s for s in full}
    for step in dry:
        argv = list(step.argv)
        if "--dry-run" in argv:
            at = argv.index("--dry-run")
            has_value = at + 1 < len(argv) and not argv[at + 1].startswith("--")
            del argv[at : at + (2 if has_value else 1)]
        assert argv == by_name[step.name].argv, step.name
    # ... which Argo passes as ALGA_DRY_RUN on every step instead
    all_templates = templates(load("release.yaml"))
    for step in full:
        assert env_of(all_templates[step.name])["ALGA_DRY_RUN"] == (
            "{{workflow.parameters.dry-run}}"
        )


def test_the_run_name_goes_to_the_channel_move_only() -> None:
    all_templates = templates(load("release.yaml"))
    with_run = [s.name for s in expected_steps() if "ALGA_RUN" in env_of(all_templates[s.name])]
    assert with_run == ["channel"]
    assert env_of(all_templates["channel"])["ALGA_RUN"] == "{{workflow.name}}"


# -- the same arguments as the local publish -------------------------------------------------


def test_the_local_publish_runs_the_same_arguments(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Fill in the placeholders; ``alga-release publish`` must plan exactly these argv."""
    import steps.release.plan

    captured: list[list[Step]] = []
    real = steps.release.plan.release_steps

    class Captured(Exception):
        pass

    def capture(params: PublishParams, outdir: str) -> list[Step]:
        captured.append(real(params, outdir))
        raise Captured

    clean_env.setattr(steps.release.plan, "release_steps", capture)
    # The preflight reads the checkout's overlay, which the Argo path does not hold here;
    # it checks inputs only and plans nothing.
    clean_env.setattr(steps.release.plan, "preflight", lambda _source, _config, profile: profile)
    # So does the precheck (every step as a dry run against the registry, before any push).
    clean_env.setattr(steps.release.plan, "precheck", lambda *_args, **_kwargs: None)
    images = [
        f"{k}={VALUES[f'workflow.parameters.{p}']}" for k, p in release.IMAGE_PARAMETERS.items()
    ]
    argv = [
        "publish",
        "--source",
        "/workspace/src",
        "--version",
        "1.4.0",
        "--channel",
        "nightly",
        *[a for image in images for a in ("--image", image)],
        "--control-plane",
        "62cdce38",
        "--values-profile",
        "single-node",
        "--source-url",
        "https://github.com/Nine-Minds/alga-psa.git",
        "--revision",
        REVISION,
        "--out-dir",
        str(tmp_path),
        "--registry",
        "ghcr.io",
        "--namespace",
        "nine-minds",
    ]
    args = build_parser().parse_args(argv)
    with pytest.raises(Captured):
        args.handler(args)
    (local,) = captured
    all_templates = templates(load("release.yaml"))
    argo = [(t["name"], _args(all_templates, t)) for t in step_tasks()]
    assert [s.name for s in local] == [name for name, _ in argo]
    for step, (name, args_) in zip(local, argo, strict=True):
        filled = [fill(a).replace(OUT, str(tmp_path)) for a in args_]
        assert filled == step.argv, f"{name}: Argo and the local publish differ"


# -- the real parser accepts every task -----------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse with the real CLI, built now (env defaults are read when it is built)."""
    try:
        return build_parser().parse_args([fill(a) for a in argv])
    except SystemExit as exc:  # argparse: unknown command or flag
        raise AssertionError(f"alga-release rejects {argv}") from exc


@pytest.mark.parametrize("step", [s.name for s in expected_steps()])
def test_every_release_task_parses_with_the_real_cli(
    clean_env: pytest.MonkeyPatch, step: str
) -> None:
    args = parse(templates(load("release.yaml"))[step]["container"]["args"])
    assert callable(args.handler)
    assert str(getattr(args, "out", "")) == f"{OUT}/{step}.json"


def changed_in_a_dry_run() -> set[str]:
    full = {s.name: s.argv for s in expected_steps()}
    return {s.name for s in expected_steps(dry_run=True) if s.argv != full[s.name]}


def test_the_steps_a_dry_run_changes_are_the_ones_checked_below() -> None:
    assert changed_in_a_dry_run() == {"charts", "bundle", "manifest", "channel"}


@pytest.mark.parametrize("step", ["charts", "bundle", "manifest", "channel"])
def test_a_dry_run_never_reaches_a_step_that_would_write(
    clean_env: pytest.MonkeyPatch, step: str
) -> None:
    """Each step that changes in a dry run reads ALGA_DRY_RUN, or the checkout refuses it."""
    all_templates = templates(load("release.yaml"))
    template = all_templates[step]
    assert env_of(template)["ALGA_DRY_RUN"] == "{{workflow.parameters.dry-run}}"
    clean_env.setenv("ALGA_DRY_RUN", "false")
    assert not getattr(parse(template["container"]["args"]), "dry_run", False)
    clean_env.setenv("ALGA_DRY_RUN", "true")
    honoured = bool(getattr(parse(template["container"]["args"]), "dry_run", False))
    checkout = env_of(all_templates[release.CHECKOUT])
    assert checkout["DRY_RUN"] == "{{workflow.parameters.dry-run}}"
    refused = (checkout["DRY_RUN_UNSUPPORTED"] or "").split()
    assert honoured != (step in refused), (
        f"{step}: ALGA_DRY_RUN honoured={honoured}, refused by the checkout={step in refused}"
    )


# -- the control-plane task: its arguments, with the real parser -----------------------------


def control_plane_args(mode: str) -> list[str]:
    args: list[str] = templates(load("release.yaml"))[f"control-plane-{mode}"]["container"]["args"]
    return args


def test_every_control_plane_argument_parses_with_the_real_cli(
    clean_env: pytest.MonkeyPatch,
) -> None:
    copy = parse(control_plane_args("copy"))
    assert copy.handler.__name__ == "cmd_control_plane_copy"
    assert copy.source_ref == "registry.example.com/ci/control-plane:3f2a1b0"
    build = parse(control_plane_args("build"))
    assert build.handler.__name__ == "cmd_control_plane_build"
    assert str(build.source) == "/workspace/src"  # the checkout
    for args in (copy, build):
        # the tag the images step then resolves: the same parameter as its --control-plane
        assert args.tag == VALUES["workflow.parameters.control-plane"]
        assert str(args.out) == f"{OUT}/control-plane.json"
        assert (args.registry, args.namespace) == ("ghcr.io", "nine-minds")
        assert not args.plain_http and args.password_file is None
    (images,) = [s for s in expected_steps() if s.name == "images"]
    at = images.argv.index("--control-plane")
    assert images.argv[at + 1] == "{{workflow.parameters.control-plane}}"
    # the tag published is the one the images step resolves, in the registry it reads
    registry_args = images.argv[images.argv.index("--registry") :]
    for mode in ("copy", "build"):
        args = control_plane_args(mode)
        assert args[args.index("--tag") + 1] == images.argv[at + 1], mode
        assert args[-len(registry_args) :] == registry_args, mode


def test_the_build_finds_its_engine_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    env = env_of(templates(load("release.yaml"))[control_plane.BUILD_TEMPLATE])
    assert env["DOCKER_HOST"] == "tcp://127.0.0.1:2375"
    clean_env.setenv("ALGA_ENGINE_WAIT", env["ALGA_ENGINE_WAIT"] or "")
    assert parse(control_plane_args("build")).engine_wait == 120.0


@pytest.mark.parametrize("mode", ["copy", "build"])
def test_a_control_plane_dry_run_is_honoured_or_refused_by_the_checkout(
    clean_env: pytest.MonkeyPatch, mode: str
) -> None:
    all_templates = templates(load("release.yaml"))
    template = all_templates[f"control-plane-{mode}"]
    assert env_of(template)["ALGA_DRY_RUN"] == "{{workflow.parameters.dry-run}}"
    clean_env.setenv("ALGA_DRY_RUN", "true")
    honoured = bool(getattr(parse(template["container"]["args"]), "dry_run", False))
    refused = env_of(all_templates[release.CHECKOUT])["CONTROL_PLANE_DRY_RUN_UNSUPPORTED"] or ""
    assert honoured != (mode in refused.split()), f"{mode}: honoured={honoured}"


def test_the_control_plane_task_writes_and_reads_no_other_step_file() -> None:
    """Its result is its own file; the steps' files stay release_steps' files."""
    outputs = {s.output for s in expected_steps()}
    assert f"{OUT}/control-plane.json" not in outputs
    for mode in ("copy", "build"):
        args = control_plane_args(mode)
        assert not [a for a in args if a in outputs], mode


def test_the_channel_move_records_the_run_from_the_environment(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("ALGA_RUN", "alga-appliance-release-x7cct")
    args = parse(templates(load("release.yaml"))["channel"]["container"]["args"])
    assert args.run == "alga-appliance-release-x7cct"


def test_the_manifest_step_attests_with_the_workflow_name_and_the_template_as_builder(
    clean_env: pytest.MonkeyPatch,
) -> None:
    from steps.release.provenance import RunDetails, workflow_template_builder_id

    all_templates = templates(load("release.yaml"))
    with_run_id = [
        s.name for s in expected_steps() if "ALGA_RUN_ID" in env_of(all_templates[s.name])
    ]
    assert with_run_id == ["manifest"]
    env = env_of(all_templates["manifest"])
    assert env["ALGA_RUN_ID"] == "{{workflow.name}}"
    assert env["ALGA_BUILDER_ID"] == workflow_template_builder_id(release.NAME)
    clean_env.setenv("ALGA_RUN_ID", "alga-appliance-release-x7cct")
    clean_env.setenv("ALGA_BUILDER_ID", env["ALGA_BUILDER_ID"])
    args = parse(all_templates["manifest"]["container"]["args"])
    run = RunDetails.parse(args.builder_id, args.run_id)
    assert run == RunDetails(env["ALGA_BUILDER_ID"], "alga-appliance-release-x7cct")


def test_promote_parses_and_takes_its_toggles_from_the_environment(
    clean_env: pytest.MonkeyPatch,
) -> None:
    template = templates(load("promote.yaml"))[promote.PROMOTE_TEMPLATE]
    env = env_of(template)
    assert env["ALGA_ALLOW_DOWNGRADE"] == "{{inputs.parameters.allow-downgrade}}"
    assert env["ALGA_REASON"] == "{{inputs.parameters.reason}}"
    assert env["ALGA_DRY_RUN"] == "{{inputs.parameters.dry-run}}"
    assert env["ALGA_RUN"] == "{{workflow.name}}"
    args = template["container"]["args"]
    for name, value in {
        "ALGA_ALLOW_DOWNGRADE": "true",
        "ALGA_REASON": "1.4.1 broke email",
        "ALGA_DRY_RUN": "true",
        "ALGA_RUN": "alga-appliance-promote-abcde",
    }.items():
        clean_env.setenv(name, value)
    parsed = parse(args)
    assert parsed.handler.__name__ == "cmd_promote"
    assert (parsed.version, parsed.channel) == ("1.4.0", "stable")
    assert parsed.allow_downgrade and parsed.dry_run
    assert (parsed.reason, parsed.run) == ("1.4.1 broke email", "alga-appliance-promote-abcde")
    # the defaults Argo passes: "false" and an empty reason
    clean_env.setenv("ALGA_ALLOW_DOWNGRADE", "false")
    clean_env.setenv("ALGA_DRY_RUN", "false")
    clean_env.setenv("ALGA_REASON", "")
    parsed = parse(args)
    assert not parsed.allow_downgrade and not parsed.dry_run and parsed.reason is None


# -- the checkout script, with real git -------------------------------------------------------


def _git(*args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A repository with history: main (2 commits), tag v1 (first), branch feature."""
    work = tmp_path_factory.mktemp("work")
    _git("init", "-q", "-b", "main", cwd=work)
    (work / "helm").mkdir()
    (work / "helm" / "Chart.yaml").write_text("name: sebastian\n")
    _git("add", ".", cwd=work)
    _git("commit", "-q", "-m", "chart", "--date", "2024-01-01T00:00:00Z", cwd=work)
    first = _git("rev-parse", "HEAD", cwd=work)
    _git("tag", "v1", cwd=work)
    (work / "README").write_text("later\n")
    _git("add", ".", cwd=work)
    _git("commit", "-q", "-m", "readme", "--date", "2024-02-01T00:00:00Z", cwd=work)
    second = _git("rev-parse", "HEAD", cwd=work)
    _git("checkout", "-q", "-b", "feature", first, cwd=work)
    (work / "feature").write_text("f\n")
    _git("add", ".", cwd=work)
    _git("commit", "-q", "-m", "feature", cwd=work)
    feature = _git("rev-parse", "HEAD", cwd=work)
    _git("checkout", "-q", "-b", "pr", first, cwd=work)
    (work / "pr").write_text("p\n")
    _git("add", ".", cwd=work)
    _git("commit", "-q", "-m", "pull request", cwd=work)
    pull = _git("rev-parse", "HEAD", cwd=work)
    _git("checkout", "-q", "main", cwd=work)
    bare = tmp_path_factory.mktemp("origin") / "alga-psa.git"
    _git("clone", "-q", "--bare", str(work), str(bare), cwd=work)
    # As on GitHub: a pull request's head is a ref a clone does not fetch, no branch reaches
    # it, any commit can be fetched by id, and partial clones fetch file contents lazily.
    _git("update-ref", "refs/pull/1/head", pull, cwd=bare)
    _git("branch", "-D", "pr", cwd=bare)
    _git("config", "uploadpack.allowFilter", "true", cwd=bare)
    _git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=bare)
    return {
        "url": bare.as_uri(),
        "path": str(bare),
        "first": first,
        "main": second,
        "feature": feature,
        "pull": pull,
    }


def checkout_script() -> str:
    script: str = templates(load("release.yaml"))[release.CHECKOUT]["container"]["args"][0]
    return script


PINNED_DIND = "docker.io/library/docker@sha256:" + "ab" * 32
SIGNING_VALUES = {
    "signing-secret": common.SIGNING_SECRET,
    "signing-secret-key": common.SIGNING_SECRET_KEY,
    "signing-secret-password-key": common.SIGNING_SECRET_PASSWORD_KEY,
}


def run_checkout(
    tmp: Path,
    repo: str,
    ref: str,
    dry_run: str = "false",
    unsupported: str = "",
    mode: str = "pin",
    source: str = "",
    cp_unsupported: str = "copy build",
    dind: str = PINNED_DIND,
    extra_env: dict[str, str] | None = None,
    git_delay: str = "0",
    signing_key: bool = True,
) -> subprocess.CompletedProcess[str]:
    # the signing secret's file, as its read-only volume shows it (or not, when missing)
    key_file = tmp / "signing" / "cosign.key"
    if signing_key:
        key_file.parent.mkdir(exist_ok=True)
        key_file.write_text("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    env = {
        "SIGNING_KEY_FILE": str(key_file),
        "SIGNING_KEY_ORIGIN": common.signing_origin(lambda name: SIGNING_VALUES[name]),
        "SIGNING_KEY_CREATE": common.signing_key_create(lambda name: SIGNING_VALUES[name]),
        "GIT_ATTEMPTS": str(common.GIT_ATTEMPTS),
        "GIT_RETRY_DELAY": git_delay,
        "DRY_RUN": dry_run,
        "DRY_RUN_UNSUPPORTED": unsupported,
        "CONTROL_PLANE_MODE": mode,
        "CONTROL_PLANE_SOURCE": source,
        "CONTROL_PLANE_DRY_RUN_UNSUPPORTED": cp_unsupported,
        "DIND_IMAGE": dind,
        "PATH": os.environ["PATH"],
        "HOME": str(tmp),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "SOURCE_REPO": repo,
        "SOURCE_REF": ref,
        "SOURCE_DIR": str(tmp / "src"),
        "OUT_DIR": str(tmp / "out"),
        **(extra_env or {}),
    }
    return subprocess.run(
        ["sh", "-c", checkout_script()], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("ref", "expect"),
    [("main", "main"), ("v1", "first"), ("feature", "feature"), ("first-sha", "first")],
)
def test_checkout_resolves_branches_tags_and_commits(
    tmp_path: Path, origin: dict[str, str], ref: str, expect: str
) -> None:
    ref = origin["first"] if ref == "first-sha" else ref
    done = run_checkout(tmp_path, origin["url"], ref)
    assert done.returncode == 0, done.stderr
    revision = (tmp_path / "out" / "revision").read_text()
    assert revision == origin[expect]  # no newline: it becomes --revision verbatim
    assert _git("rev-parse", "HEAD", cwd=tmp_path / "src") == origin[expect]
    # history is there: a chart's date is its own last commit, not HEAD's
    if expect == "main":
        last = _git("log", "-1", "--format=%H", "--", "helm", cwd=tmp_path / "src")
        assert last == origin["first"]
    # a retry starts over a previous checkout
    assert run_checkout(tmp_path, origin["url"], ref).returncode == 0


@pytest.mark.parametrize("ref", ["no-such-branch", "-x", ""])
def test_checkout_refuses_a_ref_that_is_not_there_with_exit_2(
    tmp_path: Path, origin: dict[str, str], ref: str
) -> None:
    done = run_checkout(tmp_path, origin["url"], ref)
    assert done.returncode == 2, done.stderr
    assert "source-ref" in done.stderr
    assert not (tmp_path / "out" / "revision").exists()


def test_checkout_refuses_a_dry_run_that_a_step_would_not_honour(
    tmp_path: Path, origin: dict[str, str]
) -> None:
    done = run_checkout(tmp_path, origin["url"], "main", dry_run="true", unsupported="charts")
    assert done.returncode == 2 and "refusing a dry run" in done.stderr
    assert not (tmp_path / "src").exists()
    assert run_checkout(tmp_path, origin["url"], "main", dry_run="true").returncode == 0
    done = run_checkout(tmp_path, origin["url"], "main", dry_run="false", unsupported="charts")
    assert done.returncode == 0


def test_the_checkout_gets_every_control_plane_value_from_the_environment() -> None:
    env = env_of(templates(load("release.yaml"))[release.CHECKOUT])
    assert env["CONTROL_PLANE_MODE"] == "{{workflow.parameters.control-plane-mode}}"
    assert env["CONTROL_PLANE_SOURCE"] == "{{workflow.parameters.control-plane-source}}"
    assert env["DIND_IMAGE"] == "{{workflow.parameters.dind-image}}"
    assert set((env["CONTROL_PLANE_DRY_RUN_UNSUPPORTED"] or "").split()) <= {"copy", "build"}


@pytest.mark.parametrize(
    ("mode", "source"),
    [("pin", ""), ("copy", "registry.example.com/ci/control-plane:3f2a1b0"), ("build", "")],
)
def test_checkout_accepts_each_control_plane_mode(
    tmp_path: Path, origin: dict[str, str], mode: str, source: str
) -> None:
    done = run_checkout(tmp_path, origin["url"], "main", mode=mode, source=source)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "revision").read_text() == origin["main"]


@pytest.mark.parametrize(
    ("mode", "source", "dind", "says"),
    [
        ("copy", "", PINNED_DIND, "needs control-plane-source"),
        ("copy", "--help", PINNED_DIND, "needs control-plane-source"),
        ("pin", "registry.example.com/ci/cp:1", PINNED_DIND, "only read by"),
        ("build", "registry.example.com/ci/cp:1", PINNED_DIND, "only read by"),
        ("Copy", "registry.example.com/ci/cp:1", PINNED_DIND, "invalid control-plane-mode"),
        ("", "", PINNED_DIND, "invalid control-plane-mode"),
        ("build", "", control_plane.DIND_IMAGE, "needs dind-image pinned"),
    ],
)
def test_checkout_refuses_bad_control_plane_inputs_before_cloning(
    tmp_path: Path, origin: dict[str, str], mode: str, source: str, dind: str, says: str
) -> None:
    done = run_checkout(tmp_path, origin["url"], "main", mode=mode, source=source, dind=dind)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert not (tmp_path / "src").exists()


def test_the_placeholder_dind_image_only_matters_in_build_mode(
    tmp_path: Path, origin: dict[str, str]
) -> None:
    placeholder = control_plane.DIND_IMAGE
    assert run_checkout(tmp_path, origin["url"], "main", dind=placeholder).returncode == 0
    done = run_checkout(
        tmp_path, origin["url"], "main", mode="copy", source="r.example/x:1", dind=placeholder
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("mode", ["copy", "build"])
def test_checkout_refuses_a_dry_run_the_control_plane_command_would_not_honour(
    tmp_path: Path, origin: dict[str, str], mode: str
) -> None:
    source = "r.example/x:1" if mode == "copy" else ""
    done = run_checkout(tmp_path, origin["url"], "main", dry_run="true", mode=mode, source=source)
    assert done.returncode == 2 and "refusing a dry run" in done.stderr, done.stderr
    assert f"control-plane {mode}" in done.stderr
    assert not (tmp_path / "src").exists()
    # pin mode dry-runs; a mode whose command reads ALGA_DRY_RUN would too
    assert run_checkout(tmp_path, origin["url"], "main", dry_run="true").returncode == 0
    done = run_checkout(
        tmp_path, origin["url"], "main", "true", mode=mode, source=source, cp_unsupported=""
    )
    assert done.returncode == 0, done.stderr


def test_checkout_treats_a_failed_clone_as_transient(tmp_path: Path) -> None:
    done = run_checkout(tmp_path, (tmp_path / "missing.git").as_uri(), "main")
    assert done.returncode == common.EXIT_TRANSIENT, done.stderr
    assert f"git clone of {(tmp_path / 'missing.git').as_uri()} failed 4 times" in done.stderr
    assert done.stderr.count("again in 0s") == common.GIT_ATTEMPTS - 1


# A remote that fails when asked to: git's ext:: transport runs this script as the server
# for every connection (clone, fetch, ls-remote, the lazy fetch of file contents), and it
# refuses the calls whose numbers are in FLAKY_FAIL ("all" = every call after the first),
# as a remote that drops the connection would; the others go to the real git-upload-pack.
FLAKY_SERVER = """\
#!/bin/sh
n=$(( $(cat "$FLAKY_COUNTER" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$FLAKY_COUNTER"
case " $FLAKY_FAIL " in
  *" $n "*|*" all "*) [ "$n" -gt 1 ] || [ "$FLAKY_FAIL" != all ] && {
    echo "flaky-remote: connection $n dropped" >&2; exit 1; } ;;
esac
exec git "${1#git-}" "$2"
"""


def run_flaky_checkout(
    tmp: Path, origin: dict[str, str], ref: str, fail: str, git_delay: str = "0"
) -> tuple[subprocess.CompletedProcess[str], int]:
    """The checkout against ``origin`` through a flaky remote; also how many connections."""
    server = tmp / "flaky-remote"
    server.write_text(FLAKY_SERVER)
    server.chmod(0o755)
    counter = tmp / "connections"
    env = {
        "FLAKY_COUNTER": str(counter),
        "FLAKY_FAIL": fail,
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "protocol.ext.allow",
        "GIT_CONFIG_VALUE_0": "always",
    }
    url = f"ext::{server} %S {origin['path']}"
    done = run_checkout(tmp, url, ref, extra_env=env, git_delay=git_delay)
    return done, int(counter.read_text())


@pytest.mark.parametrize(
    ("ref", "expect", "fail", "what"),
    [
        # connection 1 is the clone
        ("main", "main", "1 2", "git clone"),
        # 1 clone, 2 the lazy fetch of main's files by the checkout
        ("main", "main", "2 3", "git checkout of"),
        # 1 clone, 2 fetch of the ref (dropped), 3 ls-remote lists it: transient, 4 fetch again
        ("refs/pull/1/head", "pull", "2", "git fetch of refs/pull/1/head"),
        # a commit no branch reaches: 2 and 3 are git's own lazy fetch of it (rev-parse tries
        # twice), 4 the fetch by id (dropped), 5 that fetch again, 6 the files
        ("pull-sha", "pull", "2 3 4", "git fetch of"),
    ],
)
def test_checkout_retries_transient_git_failures_after_the_clone(
    tmp_path: Path, origin: dict[str, str], ref: str, expect: str, fail: str, what: str
) -> None:
    ref = origin["pull"] if ref == "pull-sha" else ref
    done, _ = run_flaky_checkout(tmp_path, origin, ref, fail)
    assert done.returncode == 0, done.stderr
    assert "flaky-remote: connection" in done.stderr and what in done.stderr, done.stderr
    assert (tmp_path / "out" / "revision").read_text() == origin[expect]
    assert _git("rev-parse", "HEAD", cwd=tmp_path / "src") == origin[expect]
    # the files are there (the lazy fetch did happen), with the history
    assert (tmp_path / "src" / "helm" / "Chart.yaml").read_text() == "name: sebastian\n"


@pytest.mark.parametrize("ref", ["main", "refs/pull/1/head", "pull-sha"])
def test_checkout_gives_up_on_a_remote_that_stays_down_with_exit_75(
    tmp_path: Path, origin: dict[str, str], ref: str
) -> None:
    """Everything after the clone fails: tried GIT_ATTEMPTS times, then 75 (Argo retries)."""
    ref = origin["pull"] if ref == "pull-sha" else ref
    done, connections = run_flaky_checkout(tmp_path, origin, ref, "all")
    assert done.returncode == common.EXIT_TRANSIENT, done.stderr
    assert f"failed {common.GIT_ATTEMPTS} times: giving up with exit 75" in done.stderr
    assert connections > common.GIT_ATTEMPTS
    assert not (tmp_path / "out" / "revision").exists()


@pytest.mark.parametrize("ref", ["refs/pull/9/head", "c0ffee" * 6 + "c0ff"])
def test_a_ref_the_remote_does_not_have_fails_at_once_with_exit_2(
    tmp_path: Path, origin: dict[str, str], ref: str
) -> None:
    """Bad input is not retried, nor waited for: the remote answers that it has no such ref."""
    started = time.monotonic()
    done, _ = run_flaky_checkout(tmp_path, origin, ref, "", git_delay="30")
    assert done.returncode == 2, done.stderr
    assert f"source-ref '{ref}' not found" in done.stderr
    assert "again in" not in done.stderr
    assert time.monotonic() - started < 20


# -- the exit report, with real sh ----------------------------------------------------------


def test_the_exit_report_prints_the_outcome_and_the_results(tmp_path: Path) -> None:
    template = templates(load("release.yaml"))["report"]
    (tmp_path / "charts.json").write_text('{"charts": {"sebastian": {"digest": "sha256:aa"}}}\n')
    env = {
        "PATH": os.environ["PATH"],
        "WORKFLOW_NAME": "alga-appliance-release-x7cct",
        "WORKFLOW_STATUS": "Failed",
        "WORKFLOW_FAILURES": '[{"displayName": "bundle", "message": "exit 3"}]',
        "VERSION": "$(touch pwned)",
        "CHANNEL": "nightly",
        "DRY_RUN": "false",
        "RESULTS": env_of(template)["RESULTS"] or "",
        "RESULT_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [*template["container"]["command"], *template["container"]["args"]],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0
    out = done.stdout
    assert "alga-appliance-release-x7cct: Failed (version $(touch pwned)" in out
    assert '"displayName": "bundle"' in out
    assert '--- charts\n{"charts": {"sebastian": {"digest": "sha256:aa"}}}' in out
    assert "--- bundle: no result" in out and "--- verify: no result" in out
    assert not (tmp_path / "pwned").exists()
    assert env["RESULTS"].split() == ["control-plane", *(s.name for s in expected_steps())]


# -- the control-plane check, with real python3 ------------------------------------------------

REFERENCE = "ghcr.io/nine-minds/alga-appliance-control-plane@sha256:" + "c" * 64


def run_check(
    tmp: Path, published: object | None, resolved: object | None
) -> subprocess.CompletedProcess[str]:
    """Run the check task's own argument list with the real ``alga-release``, its
    workspace paths moved under ``tmp``."""
    template = templates(load("release.yaml"))[control_plane.CHECK_TASK]
    command = template["container"]["command"]
    assert command == ["alga-release"]
    args = template["container"]["args"]
    assert args[:2] == ["control-plane", "check"]
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    flags = dict(zip(args[2::2], args[3::2], strict=True))
    for flag in ("--images", "--control-plane-result", "--reference-file", "--digest-file"):
        assert flags[flag].startswith(f"{OUT}/"), flag
    local = [a.replace(f"{OUT}/", f"{out}/") for a in args]
    for flag, data in (("--control-plane-result", published), ("--images", resolved)):
        if data is not None:
            (out / flags[flag].removeprefix(f"{OUT}/")).write_text(json.dumps(data))
    return subprocess.run(
        [sys.executable, "-m", "steps.cli", *local],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=30,
    )


def check_files(template: dict[str, Any]) -> dict[str, str]:
    args = template["container"]["args"]
    return dict(zip(args[2::2], args[3::2], strict=True))


def test_the_check_reads_the_images_result_release_steps_writes() -> None:
    check = templates(load("release.yaml"))[control_plane.CHECK_TASK]
    files = check_files(check)
    (images,) = [s for s in expected_steps() if s.name == "images"]
    assert files["--images"] == images.output
    assert files["--control-plane-result"] == f"{OUT}/control-plane.json"
    outputs = {p["name"]: p["valueFrom"]["path"] for p in check["outputs"]["parameters"]}
    assert outputs == {"reference": files["--reference-file"], "digest": files["--digest-file"]}


def test_the_check_passes_and_exposes_the_reference_the_manifest_pins(tmp_path: Path) -> None:
    published = {"reference": REFERENCE, "digest": "sha256:" + "c" * 64, "status": "copied"}
    done = run_check(tmp_path, published, {"controlPlane": REFERENCE, "images": {}})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "control-plane.reference").read_text() == REFERENCE
    assert (tmp_path / "out" / "control-plane.digest").read_text() == "sha256:" + "c" * 64


def test_the_check_refuses_a_tag_that_moved_with_exit_3(tmp_path: Path) -> None:
    published = {"reference": REFERENCE, "digest": "sha256:" + "c" * 64}
    moved = REFERENCE.replace("c" * 64, "d" * 64)
    done = run_check(tmp_path, published, {"controlPlane": moved})
    assert done.returncode == 3
    assert REFERENCE in done.stderr and moved in done.stderr
    assert not (tmp_path / "out" / "control-plane.reference").exists()
    # a reference that does not carry its own digest is refused too
    other_digest = {"reference": REFERENCE, "digest": "sha256:" + "e" * 64}
    done = run_check(tmp_path, other_digest, {"controlPlane": REFERENCE})
    assert done.returncode == 3


@pytest.mark.parametrize("missing", ["published", "resolved", "malformed"])
def test_the_check_fails_without_both_results(tmp_path: Path, missing: str) -> None:
    published: object | None = {"reference": REFERENCE, "digest": "sha256:" + "c" * 64}
    resolved: object | None = {"controlPlane": REFERENCE}
    if missing == "published":
        published = None
    elif missing == "resolved":
        resolved = None
    else:
        published = {"status": "copied"}
    done = run_check(tmp_path, published, resolved)
    assert done.returncode == 2  # bad input: the check's inputs are missing or malformed
    assert re.search(r"step('s)? result", done.stderr), done.stderr
