"""Deployable as shipped: the render-time image pins and the ServiceAccount/RBAC manifest.

- ``pipelines.pins``: what ``make workflows STEP_IMAGE=... DIND_IMAGE=...`` accepts and
  records, and a real ``hera generate yaml`` of a copy of ``pipelines/`` with pins recorded:
  the digests become the parameters' defaults (without pins, see ``test_pipelines``: the
  step image is required and the dind image is the placeholder the checkout refuses).
- ``workflows-generated/rbac.yaml``: one ServiceAccount (the templates' default
  ``service-account``), one Role with exactly the executor's ``workflowtaskresults``
  create/patch, one RoleBinding between them; and the templates need nothing more (no
  resource templates, artifacts, or other API use). The real ``kubectl kustomize`` puts the
  whole file in a namespace, the binding's subject included.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness.tools import Tools
from tests.unit.pipelines.test_pipelines import committed, templates, walk, yaml_representers_kept

with yaml_representers_kept():
    from pipelines import common, control_plane, pins, rbac

ROOT = Path(__file__).resolve().parents[3]
GENERATED = ROOT / "workflows-generated"
STEP = "ghcr.io/nine-minds/alga-release-step@sha256:" + "5e" * 32
DIND = "docker.io/library/docker@sha256:" + "d1" * 32


# -- pins -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        STEP,
        DIND,
        "127.0.0.1:5000/nine-minds/alga-release-step@sha256:" + "0a" * 32,
    ],
)
def test_a_pin_is_a_repository_by_real_digest(value: str) -> None:
    assert pins.check_pinned("STEP_IMAGE", value) == value


@pytest.mark.parametrize(
    "value",
    [
        "ghcr.io/nine-minds/alga-release-step:0.1.0",  # a tag
        "ghcr.io/nine-minds/alga-release-step@" + pins.PLACEHOLDER_DIGEST,  # the placeholder
        "ghcr.io/nine-minds/alga-release-step@sha256:" + "AB" * 32,  # not lowercase
        "alga-release-step@sha256:" + "ab" * 32,  # no registry
        "ghcr.io/nine-minds/alga-release-step@sha256:abc",  # short
    ],
)
def test_anything_else_is_refused(value: str) -> None:
    with pytest.raises(pins.PinError):
        pins.check_pinned("STEP_IMAGE", value)


def test_make_workflows_records_given_pins_keeps_the_rest_and_clears_on_empty(
    tmp_path: Path,
) -> None:
    file = tmp_path / "pins.json"
    assert pins.main(["--file", str(file), "--step-image", STEP]) == 0
    assert pins.load(file) == pins.Pins(step_image=STEP)
    assert pins.main(["--file", str(file), "--dind-image", DIND]) == 0
    assert pins.load(file) == pins.Pins(step_image=STEP, dind_image=DIND)
    assert pins.main(["--file", str(file), "--step-image", ""]) == 0
    assert pins.load(file) == pins.Pins(dind_image=DIND)
    before = file.read_text()
    assert pins.main(["--file", str(file), "--dind-image", "docker:27-dind"]) == 2
    assert file.read_text() == before  # a refused value changes nothing


def test_the_committed_pins_file_is_what_the_templates_were_rendered_with() -> None:
    recorded = pins.load()
    assert pins.PINS_FILE.read_text() == recorded.as_json()
    assert recorded.step_image == common.STEP_IMAGE
    assert (recorded.dind_image or control_plane.DIND_PLACEHOLDER) == control_plane.DIND_IMAGE


def test_a_render_with_pins_makes_them_the_defaults(tmp_path: Path) -> None:
    """``make workflows STEP_IMAGE=... DIND_IMAGE=...``, on a copy of ``pipelines/``."""
    shutil.copytree(
        ROOT / "pipelines", tmp_path / "pipelines", ignore=shutil.ignore_patterns("__pycache__")
    )
    (tmp_path / "pipelines" / "pins.json").write_text(
        pins.Pins(step_image=STEP, dind_image=DIND).as_json()
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "hera"), "generate", "yaml", "pipelines", "--to", "out"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    docs = {
        d["metadata"]["name"]: d
        for path in sorted((tmp_path / "out").glob("*.yaml"))
        for d in yaml.safe_load_all(path.read_text())
    }
    for d in docs.values():
        if d["kind"] != "WorkflowTemplate":
            continue
        params = {p["name"]: p for p in d["spec"]["arguments"]["parameters"]}
        assert params["step-image"]["value"] == STEP
        assert "REQUIRED" not in params["step-image"]["description"]
    # the refresh schedule runs the pinned image, no longer suspended
    schedule = docs["alga-appliance-refresh-weekly"]["spec"]
    assert "suspend" not in schedule
    passed = {p["name"]: p["value"] for p in schedule["workflowSpec"]["arguments"]["parameters"]}
    assert passed["step-image"] == STEP
    release = {
        p["name"]: p for p in docs["alga-appliance-release"]["spec"]["arguments"]["parameters"]
    }
    assert release["dind-image"]["value"] == DIND
    # the checkout still refuses the placeholder if a submission passes it
    checkout = templates(docs["alga-appliance-release"])["checkout"]["container"]["args"][0]
    assert pins.PLACEHOLDER_DIGEST in checkout


# -- the ServiceAccount and its Role ---------------------------------------------------


def rbac_docs() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((GENERATED / rbac.FILE_NAME).read_text()))


def test_rbac_yaml_is_the_render() -> None:
    assert (GENERATED / rbac.FILE_NAME).read_text() == rbac.render()


def test_the_service_account_role_and_binding() -> None:
    sa, role, binding = rbac_docs()
    assert (sa["kind"], role["kind"], binding["kind"]) == ("ServiceAccount", "Role", "RoleBinding")
    assert sa["metadata"]["name"] == rbac.SERVICE_ACCOUNT == common.SERVICE_ACCOUNT
    assert sa["automountServiceAccountToken"] is True  # the executor needs the token
    assert role["rules"] == [
        {
            "apiGroups": ["argoproj.io"],
            "resources": ["workflowtaskresults"],
            "verbs": ["create", "patch"],
        }
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"]}]
    for d in (sa, role, binding):
        assert "namespace" not in d["metadata"]  # applied in the workflow namespace


def test_every_template_runs_as_the_service_account_parameter() -> None:
    for d in committed().values():
        assert d["spec"]["serviceAccountName"] == "{{workflow.parameters.service-account}}"
        params = {p["name"]: p for p in d["spec"]["arguments"]["parameters"]}
        assert params["service-account"]["value"] == rbac.SERVICE_ACCOUNT
        for _, node in walk(d["spec"]["templates"]):
            if isinstance(node, dict):
                # no template overrides it, nor the executor's account
                assert "serviceAccountName" not in node and "executor" not in node
                assert node.get("automountServiceAccountToken") is not False


def test_the_templates_need_nothing_from_the_api_but_the_executor_s_task_results() -> None:
    """What would need more RBAC: resource templates, artifacts (and their repository),
    daemons or HTTP/plugin templates (the agent), container sets; none is used."""
    for d in committed().values():
        for name, template in templates(d).items():
            assert (
                set(template) & {"resource", "http", "plugin", "containerSet", "data"} == set()
            ), name
            assert not template.get("daemon"), name
            for side in ("inputs", "outputs"):
                assert "artifacts" not in template.get(side, {}), name
        assert "artifactRepositoryRef" not in d["spec"]
        assert "artifactGC" not in d["spec"]


def test_kustomize_puts_the_manifest_and_its_subject_in_one_namespace(tmp_path: Path) -> None:
    shutil.copy(GENERATED / rbac.FILE_NAME, tmp_path / rbac.FILE_NAME)
    (tmp_path / "kustomization.yaml").write_text(
        f"namespace: alga-workflows\nresources: [{rbac.FILE_NAME}]\n"
    )
    done = subprocess.run(
        [str(Tools().kubectl), "kustomize", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    built = {d["kind"]: d for d in yaml.safe_load_all(done.stdout)}
    assert {d["metadata"]["namespace"] for d in built.values()} == {"alga-workflows"}
    assert built["RoleBinding"]["subjects"][0]["namespace"] == "alga-workflows"


# -- the README's "What the cluster needs" ---------------------------------------------

# The Flux release each (apiVersion, kind) first served (Flux 2.3: HelmRelease v2 and
# HelmRepository v1 GA; 2.6: OCIRepository v1 GA).
FLUX_SINCE = {
    ("helm.toolkit.fluxcd.io/v2", "HelmRelease"): (2, 3),
    ("source.toolkit.fluxcd.io/v1", "HelmRepository"): (2, 3),
    ("source.toolkit.fluxcd.io/v1", "OCIRepository"): (2, 6),
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"): (2, 0),
}


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"### {title}\n")
    end = text.find("\n### ", start + 1)
    return text[start:end]


def test_the_readme_flux_minimums_match_the_bundle_and_the_appliance() -> None:
    used: set[tuple[str, str]] = set()
    for path in (ROOT / "flux").rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and "fluxcd.io" in str(doc.get("apiVersion", "")):
                used.add((doc["apiVersion"], doc["kind"]))
    assert used <= set(FLUX_SINCE), used - set(FLUX_SINCE)
    bundle = max(FLUX_SINCE[u] for u in used)
    # the appliance's setup-engine creates OCIRepository alga-appliance as v1, in every mode
    appliance = max(bundle, FLUX_SINCE[("source.toolkit.fluxcd.io/v1", "OCIRepository")])
    assert (bundle, appliance) == ((2, 3), (2, 6))
    needs = " ".join(readme_section("What the cluster needs").split())
    assert "**Flux on the appliance**: 2.6 or newer. The bundle's objects need 2.3" in needs
    assert "`--chart-pin digest` 2.6" in needs


def test_the_readme_names_the_rbac_the_secrets_and_retry_vs_resubmit() -> None:
    needs = " ".join(readme_section("What the cluster needs").split())
    assert "**Argo Workflows 3.6 or newer**" in needs
    assert f"`workflows-generated/{rbac.FILE_NAME}`" in needs
    assert "`workflowtaskresults` (`argoproj.io`) `create` and `patch`" in needs
    assert f"default `{rbac.SERVICE_ACCOUNT}`" in needs
    assert "`github-token`, key `token`" in needs
    assert "`registry-secret` and `registry-secret-key`" in needs
    assert control_plane.SOURCE_SECRET in needs
    retries = " ".join(readme_section("Failures, retries and resubmits").split())
    assert "**`argo retry` works; `argo resubmit` is the recovery that always does.**" in retries
    assert "`volumeClaimGC: OnWorkflowSuccess`" in retries


def test_a_failed_release_keeps_its_workspace_for_argo_retry() -> None:
    """``OnWorkflowSuccess``: the controller's ``deletePVCs`` skips a failed or errored
    workflow, and ``argo retry`` re-creates the claim under the same name, which
    ``createPVCs`` finds with the same owner and reuses (workflow/controller/operator.go)."""
    spec = committed()["alga-appliance-release"]["spec"]
    assert spec["volumeClaimGC"] == {"strategy": "OnWorkflowSuccess"}
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == common.WORKSPACE_VOLUME
    assert "volumeClaimTemplates" not in committed()["alga-appliance-promote"]["spec"]
