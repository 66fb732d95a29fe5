"""The real Argo CLI lints ``workflows-generated/`` at the declared minimum and at the newest.

``argo lint --offline`` (the flag exists in both 3.6 and 3.7; references between the given
files resolve among them) runs the same validation as a submission: strict decoding of
every field, the templates and their references, parameters, expressions. Two CLIs, built
by ``scripts/go-tools.sh`` from argo-workflows' own sources:

- ``argo-3.6`` (v3.6.10), the minimum the README, ``pipelines.common.ARGO_MINIMUM`` and each
  template's ``workflows.argoproj.io/version`` annotation declare. It rejects fields its API
  does not have, so it is the test that fails if a field newer than 3.6 appears (shown with
  ``retryStrategy.backoff.cap``, which only 3.7 has);
- ``argo`` (v3.7.6), the newest v3 the module proxy serves.

Also linted: Workflows that submit the templates as the README does (``workflowTemplateRef``
with parameters), so a parameter the templates need and the submission lacks is found.
Nothing here runs a controller.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness.tools import GO_TOOLS, PROJECT_ROOT, Tools

GENERATED = PROJECT_ROOT / "workflows-generated"
VERSIONS = ("argo-3.6", "argo")
PINNED = "ghcr.io/nine-minds/alga-release-step@sha256:" + "ab" * 32
RELEASE_ARGS = {
    "version": "1.4.0",
    "alga-core-tag": "62cdce38",
    "workflow-worker-tag": "62cdce38",
    "email-service-tag": "62cdce38",
    "temporal-worker-tag": "62cdce38",
    "control-plane": "62cdce38",
}


def lint(tools: Tools, name: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    """``<name> lint --offline`` of ``paths``; never contacts a cluster."""
    env = {**os.environ, "KUBECONFIG": os.devnull, "ARGO_SERVER": ""}
    return subprocess.run(
        [
            str(tools.go_tool(name)),
            "lint",
            "--offline",
            "--no-color",
            "-o",
            "simple",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((GENERATED / name).read_text(encoding="utf-8"))
    return doc


def submission(tmp: Path, template: str, params: dict[str, str]) -> Path:
    """A Workflow that runs ``template`` with ``params``, as `argo submit --from` creates it."""
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": f"{template}-"},
        "spec": {
            "workflowTemplateRef": {"name": template},
            "arguments": {"parameters": [{"name": k, "value": v} for k, v in params.items()]},
        },
    }
    path = tmp / f"submit-{template}-{len(params)}.yaml"
    path.write_text(yaml.safe_dump(workflow), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", VERSIONS)
def test_the_cli_is_the_pinned_version(tools: Tools, name: str) -> None:
    done = subprocess.run(
        [str(tools.go_tool(name)), "version", "--short"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(rf"\bv{re.escape(GO_TOOLS[name])}\b", done.stdout), done.stdout


@pytest.mark.parametrize("name", VERSIONS)
def test_workflows_generated_passes_argo_lint_offline(tools: Tools, name: str) -> None:
    done = lint(tools, name, GENERATED)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no linting errors found" in done.stdout


def test_the_declared_minimum_is_the_one_linted_and_the_readme_says_so() -> None:
    from pipelines import common

    minor = GO_TOOLS["argo-3.6"].rsplit(".", 1)[0]
    assert common.ARGO_MINIMUM == minor == "3.6"
    for name in ("release.yaml", "promote.yaml"):
        annotations = load(name)["metadata"]["annotations"]
        assert annotations[common.VERSION_ANNOTATION] == f">= {minor}.0"
    refresh = (GENERATED / "refresh.yaml").read_text(encoding="utf-8")
    for doc in yaml.safe_load_all(refresh):  # the refresh template and its CronWorkflow
        assert doc["metadata"]["annotations"][common.VERSION_ANNOTATION] == f">= {minor}.0"
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert f"Argo Workflows {minor} or newer" in readme
    assert not re.search(r"Argo(?: Workflows)? 3\.[0-57-9] or newer", readme)


def test_a_field_newer_than_the_minimum_fails_the_minimum_lint(
    tools: Tools, tmp_path: Path
) -> None:
    """The oracle catches what it must: ``backoff.cap`` (3.7 only) is refused by 3.6."""
    doc = copy.deepcopy(load("promote.yaml"))
    doc["spec"]["templates"][0]["retryStrategy"]["backoff"] = {
        "duration": "15s",
        "factor": 2,
        "cap": "2m",
    }
    mutant = tmp_path / "promote-with-cap.yaml"
    mutant.write_text(yaml.safe_dump(doc), encoding="utf-8")
    old = lint(tools, "argo-3.6", mutant)
    assert old.returncode != 0
    assert 'unknown field "spec.templates[0].retryStrategy.backoff.cap"' in old.stdout + old.stderr
    new = lint(tools, "argo", mutant)
    assert new.returncode == 0, new.stdout + new.stderr


@pytest.mark.parametrize("name", VERSIONS)
def test_the_readme_submissions_lint(tools: Tools, tmp_path: Path, name: str) -> None:
    release = submission(tmp_path, "alga-appliance-release", {**RELEASE_ARGS, "step-image": PINNED})
    promote = submission(
        tmp_path, "alga-appliance-promote", {"version": "1.4.0", "step-image": PINNED}
    )
    refresh = submission(tmp_path, "alga-appliance-refresh", {"step-image": PINNED})
    done = lint(
        tools,
        name,
        GENERATED / "release.yaml",
        GENERATED / "promote.yaml",
        GENERATED / "refresh.yaml",
        release,
        promote,
        refresh,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", VERSIONS)
def test_the_refresh_schedule_lints_and_a_broken_one_does_not(
    tools: Tools, tmp_path: Path, name: str
) -> None:
    """The CronWorkflow is linted as the Workflow it creates: the template it names must
    exist and get every parameter it needs (here: a schedule naming no template fails)."""
    docs = list(yaml.safe_load_all((GENERATED / "refresh.yaml").read_text(encoding="utf-8")))
    kinds = [d["kind"] for d in docs]
    assert kinds == ["WorkflowTemplate", "CronWorkflow"]
    alone = tmp_path / "refresh-schedule-alone.yaml"
    alone.write_text(yaml.safe_dump(docs[1]), encoding="utf-8")
    done = lint(tools, name, alone)  # without its WorkflowTemplate
    assert done.returncode != 0
    assert "alga-appliance-refresh" in done.stdout + done.stderr
    both = lint(tools, name, GENERATED / "refresh.yaml")
    assert both.returncode == 0, both.stdout + both.stderr


@pytest.mark.parametrize("name", VERSIONS)
def test_a_submission_without_the_step_image_is_refused_while_none_is_recorded(
    tools: Tools, tmp_path: Path, name: str
) -> None:
    """No placeholder to pull: with no recorded digest the image is a required parameter.

    Lint reports it for the promote template (its entrypoint's input); for the release
    Argo's submit-time validation refuses the value-less workflow parameter
    (``spec.arguments.step-image.value ... is required``; ``argo lint`` allows empty
    workflow parameters by design, see ``validateArgumentsValues`` in
    workflow/validate/validate.go).
    """
    from pipelines import pins

    params = {p["name"]: p for p in load("promote.yaml")["spec"]["arguments"]["parameters"]}
    if pins.load().step_image is not None:
        assert params["step-image"]["value"] == pins.load().step_image
        return
    assert "value" not in params["step-image"]
    promote = submission(tmp_path, "alga-appliance-promote", {"version": "1.4.0"})
    done = lint(tools, name, GENERATED / "promote.yaml", promote)
    assert done.returncode != 0
    assert "inputs.parameters.step-image was not supplied" in done.stdout + done.stderr
