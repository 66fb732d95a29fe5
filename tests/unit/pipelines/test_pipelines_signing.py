"""The signing key in the Argo templates: its own secret, mounted read-only, checked first.

- Every template that runs an ``alga-release`` command that signs or checks signatures
  mounts the secret named by ``signing-secret`` (never the registry token's) as one file,
  read-only, ``optional`` (so a missing secret cannot leave a pod waiting), with
  ``ALGA_SIGNING_KEY`` naming the file and the password by an optional ``secretKeyRef``;
  nothing else mounts it.
- A run without the secret fails in its first task with exit 2 and a message naming the
  secret, before anything is cloned or pushed: the release's checkout (real ``sh``), and
  the promote task itself (the real CLI, with an unreachable registry: it fails before it).
- With the environment the templates set, the real CLI reads the key and the dry-run
  toggle (the images step signs nothing in a dry run).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from steps.cli.app import build_parser
from tests.helpers import cli
from tests.unit.pipelines.test_pipelines import (
    committed,
    container_templates,
    doc,
    templates,
    yaml_representers_kept,
)
from tests.unit.pipelines.test_pipelines_release import fill, run_checkout

with yaml_representers_kept():
    from pipelines import common, control_plane, promote, refresh, release

Doc = dict[str, Any]

SIGNING_PARAMS = ["signing-secret", "signing-secret-key", "signing-secret-password-key"]
DEFAULTS = {
    "signing-secret": "alga-appliance-signing",
    "signing-secret-key": "cosign.key",
    "signing-secret-password-key": "cosign.password",
}
# release.yaml: every alga-release task but the control-plane check (which compares files)
RELEASE_SIGNERS = {
    "charts",
    "bundle",
    "images",
    "manifest",
    "channel",
    "verify",
    control_plane.COPY_TEMPLATE,
    control_plane.BUILD_TEMPLATE,
}


def _scope(name: str) -> str:
    return "inputs.parameters" if name == promote.NAME else "workflow.parameters"


def _param(scope: str, name: str) -> str:
    return "{{" + scope + "." + name + "}}"


def _signers(name: str) -> set[str]:
    if name == refresh.NAME:
        return {refresh.template_name(channel) for channel in refresh.CHANNELS}
    return RELEASE_SIGNERS if name == release.NAME else {promote.PROMOTE_TEMPLATE}


def test_both_templates_have_the_signing_parameters_with_cosign_s_key_names() -> None:
    for d in committed().values():
        params = {p["name"]: p for p in d["spec"]["arguments"]["parameters"]}
        for name in SIGNING_PARAMS:
            assert params[name]["value"] == DEFAULTS[name], name
        # its own secret: never the registry's
        assert params["signing-secret"]["value"] != params["registry-secret"]["value"]
    assert [DEFAULTS[n] for n in SIGNING_PARAMS] == [
        common.SIGNING_SECRET,
        common.SIGNING_SECRET_KEY,
        common.SIGNING_SECRET_PASSWORD_KEY,
    ]
    # promote's inputs default like its arguments (the release passes them explicitly)
    entry = templates(doc(promote.NAME))[promote.PROMOTE_TEMPLATE]
    inputs = {p["name"]: p.get("default") for p in entry["inputs"]["parameters"]}
    assert {n: inputs[n] for n in SIGNING_PARAMS} == DEFAULTS


@pytest.mark.parametrize("name", [release.NAME, promote.NAME, refresh.NAME])
def test_every_signing_step_mounts_the_signing_secret_read_only_and_optional(name: str) -> None:
    d = doc(name)
    seen = set()
    for tname, template in container_templates(d).items():
        volumes = {v["name"]: v for v in template.get("volumes", [])}
        container = template["container"]
        mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
        env = {e["name"]: e for e in container.get("env", [])}
        if common.SIGNING_VOLUME not in volumes:
            assert common.SIGNING_VOLUME not in mounts, tname
            assert not {"ALGA_SIGNING_KEY", "ALGA_SIGNING_KEY_PASSWORD"} & set(env), tname
            continue
        seen.add(tname)
        scope = _scope(name)
        assert volumes[common.SIGNING_VOLUME] == {
            "name": common.SIGNING_VOLUME,
            "secret": {
                "secretName": _param(scope, "signing-secret"),
                "items": [{"key": _param(scope, "signing-secret-key"), "path": "cosign.key"}],
                "defaultMode": 0o440,
                "optional": True,
            },
        }
        assert mounts[common.SIGNING_VOLUME] == {
            "name": common.SIGNING_VOLUME,
            "mountPath": common.SIGNING_DIR,
            "readOnly": True,
        }
        if tname == release.CHECKOUT:  # the guard: the file and the words, no password
            assert env["SIGNING_KEY_FILE"]["value"] == common.SIGNING_KEY_FILE
            assert "ALGA_SIGNING_KEY_PASSWORD" not in env
            continue
        assert env["ALGA_SIGNING_KEY"] == {
            "name": "ALGA_SIGNING_KEY",
            "value": common.SIGNING_KEY_FILE,
        }
        assert env["ALGA_SIGNING_KEY_PASSWORD"] == {
            "name": "ALGA_SIGNING_KEY_PASSWORD",
            "valueFrom": {
                "secretKeyRef": {
                    "name": _param(scope, "signing-secret"),
                    "key": _param(scope, "signing-secret-password-key"),
                    "optional": True,
                }
            },
        }
        origin = env["ALGA_SIGNING_KEY_ORIGIN"]["value"]
        assert _param(scope, "signing-secret") in origin
        assert _param(scope, "signing-secret-key") in origin
        assert container["command"] == [common.ENTRYPOINT], tname
    expected = _signers(name) | ({release.CHECKOUT} if name == release.NAME else set())
    assert seen == expected


@pytest.mark.parametrize("name", [release.NAME, promote.NAME, refresh.NAME])
def test_the_key_file_is_inside_the_read_only_mount_and_never_an_argument(name: str) -> None:
    assert common.SIGNING_KEY_FILE.startswith(common.SIGNING_DIR + "/")
    for tname, template in container_templates(doc(name)).items():
        if template["container"]["command"] == [common.ENTRYPOINT]:
            assert not any("sign" in a for a in template["container"]["args"]), tname
        # the registry token's secret is never the signing one, and vice versa
        for env in template["container"].get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref and env["name"] == "ALGA_SIGNING_KEY_PASSWORD":
                assert "registry-secret" not in ref["name"]
            elif ref:
                assert "signing-secret" not in ref["name"], tname


def test_the_release_passes_the_signing_secret_to_promote() -> None:
    task = templates(doc(release.NAME))[release.PROMOTE_TASK]["dag"]["tasks"][0]
    given = {p["name"]: p["value"] for p in task["arguments"]["parameters"]}
    for name in common.signing_parameter_names():
        assert given[name] == common.workflow_parameter(name)
    assert common.signing_parameter_names() == SIGNING_PARAMS


# -- a run without the secret -------------------------------------------------------------


def test_the_checkout_refuses_a_run_without_the_signing_secret_before_cloning(
    tmp_path: Path,
) -> None:
    origin_url = (tmp_path / "never-cloned.git").as_uri()
    done = run_checkout(tmp_path, origin_url, "main", signing_key=False)
    assert done.returncode == 2, done.stderr
    assert "checkout: no signing key" in done.stderr
    assert "the Kubernetes secret 'alga-appliance-signing' (key 'cosign.key')" in done.stderr
    assert (
        "kubectl create secret generic alga-appliance-signing --from-file=cosign.key="
        in done.stderr
    )
    assert not (tmp_path / "src").exists() and not (tmp_path / "out").exists()
    # an empty file (a key of the secret with no bytes) is no key either
    (tmp_path / "signing" / "cosign.key").parent.mkdir()
    (tmp_path / "signing" / "cosign.key").write_text("")
    empty = subprocess.run(
        ["sh", "-c", common.signing_guard("checkout")],
        env={
            "SIGNING_KEY_FILE": str(tmp_path / "signing" / "cosign.key"),
            "SIGNING_KEY_ORIGIN": "the Kubernetes secret 'x' (key 'y')",
            "SIGNING_KEY_CREATE": "kubectl create secret generic x",
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert empty.returncode == 2 and "the Kubernetes secret 'x' (key 'y')" in empty.stderr


def test_the_checkout_guard_reads_its_values_from_the_environment_only() -> None:
    script = templates(doc(release.NAME))[release.CHECKOUT]["container"]["args"][0]
    assert script.index(common.signing_guard(release.CHECKOUT)) < script.index("git clone")
    assert "{{" not in script
    env = {
        e["name"]: e.get("value")
        for e in templates(doc(release.NAME))[release.CHECKOUT]["container"]["env"]
    }
    assert env["SIGNING_KEY_ORIGIN"] == common.signing_origin(common.workflow_parameter)
    assert env["SIGNING_KEY_CREATE"] == common.signing_key_create(common.workflow_parameter)


def _filled_env(template: Doc, values: dict[str, str]) -> dict[str, str]:
    """The template's plain-value environment, Argo expressions filled in."""
    env = {}
    for e in template["container"].get("env", []):
        if "value" in e:
            env[e["name"]] = re.sub(r"\{\{([^}]+)\}\}", lambda m: values[m.group(1)], e["value"])
    return env


def test_promote_without_the_signing_secret_exits_2_naming_it_before_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promote's only task is the move: the CLI itself names the missing secret."""
    template = templates(doc(promote.NAME))[promote.PROMOTE_TEMPLATE]
    values = {
        f"inputs.parameters.{p['name']}": p.get("default", "")
        for p in template["inputs"]["parameters"]
    }
    values["inputs.parameters.version"] = "1.4.0"
    values["inputs.parameters.registry"] = "127.0.0.1:9"  # nothing listens: no request is made
    values["workflow.name"] = "alga-appliance-promote-abcde"
    env = _filled_env(template, values)
    # the optional volume of a missing secret is an empty folder
    env["ALGA_SIGNING_KEY"] = str(tmp_path / "empty-mount" / "cosign.key")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ALGA_PLAIN_HTTP", "true")
    monkeypatch.delenv("ALGA_SIGNING_KEY_PASSWORD", raising=False)
    args = [
        re.sub(r"\{\{([^}]+)\}\}", lambda m: values[m.group(1)], a)
        for a in template["container"]["args"]
    ]
    result = cli(args)
    assert result.code == 2, result.stderr
    assert "SigningKeyRequired" in result.stderr or "does not exist" in result.stderr
    assert "the Kubernetes secret 'alga-appliance-signing' (key 'cosign.key')" in result.stderr
    assert "127.0.0.1:9" not in result.stderr  # it never reached for the registry


def test_the_images_step_signs_nothing_in_a_dry_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every step gets the key and ALGA_DRY_RUN; the images check reads both."""
    template = templates(doc(release.NAME))["images"]
    env = {e["name"]: e.get("value") for e in template["container"]["env"]}
    assert env["ALGA_DRY_RUN"] == "{{workflow.parameters.dry-run}}"
    monkeypatch.setenv("ALGA_SIGNING_KEY", common.SIGNING_KEY_FILE)
    for toggle, expected in (("true", True), ("false", False)):
        monkeypatch.setenv("ALGA_DRY_RUN", toggle)
        args = build_parser().parse_args([fill(a) for a in template["container"]["args"]])
        assert args.dry_run is expected
        assert str(args.signing_key) == common.SIGNING_KEY_FILE


def test_the_bundle_step_verifies_charts_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """``verify-charts`` reaches the bundle step (only) as ALGA_VERIFY_CHARTS."""
    all_templates = templates(doc(release.NAME))
    with_toggle = [
        name
        for name, t in container_templates(doc(release.NAME)).items()
        if any(e["name"] == "ALGA_VERIFY_CHARTS" for e in t["container"].get("env", []))
    ]
    assert with_toggle == ["bundle"]
    args = all_templates["bundle"]["container"]["args"]
    for toggle, expected in (("true", True), ("false", False)):
        monkeypatch.setenv("ALGA_VERIFY_CHARTS", toggle)
        assert build_parser().parse_args([fill(a) for a in args]).verify_charts is expected
