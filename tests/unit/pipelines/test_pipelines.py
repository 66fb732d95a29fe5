"""The rendered Argo WorkflowTemplates: fresh, strictly valid, wired, hardened, secret-free.

Every test reads the committed files in ``workflows-generated/`` (what GitOps applies),
except the golden test, which renders ``pipelines/`` in-process the way
``hera generate yaml`` does and compares the text exactly (``make check-workflows`` runs
the real CLI).

The strict schema is Hera's own pydantic models' JSON schema
(``hera.workflows.models.WorkflowTemplate``) with ``additionalProperties: false``
added to every object that lists its properties, so an unknown or misspelt key
(``containr:``) is an error, not silently dropped as Argo and pydantic would drop it.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
import yaml.dumper
import yaml.representer


@contextlib.contextmanager
def yaml_representers_kept() -> Iterator[None]:
    """Undo what importing Hera does to PyYAML for the whole process.

    Hera registers its own ``str`` representer on PyYAML's dumpers when it is imported
    (quoting ``y``/``n``, block style for multi-line strings). Other tests dump YAML
    with PyYAML and must not see that, so it is undone right after the import.
    """
    classes = {
        cls
        for module in (yaml, yaml.representer, yaml.dumper)
        for cls in vars(module).values()
        if isinstance(cls, type) and hasattr(cls, "yaml_representers")
    }
    own = {
        cls: dict(cls.__dict__["yaml_representers"])
        for cls in classes
        if "yaml_representers" in cls.__dict__
    }
    try:
        yield
    finally:
        for cls in classes:
            if cls in own:
                cls.yaml_representers = own[cls]
            elif "yaml_representers" in cls.__dict__:
                delattr(cls, "yaml_representers")


with yaml_representers_kept():
    from hera.workflows import models as hera_models

    from pipelines import common, control_plane, pins, promote, rbac, refresh, release

ROOT = Path(__file__).resolve().parents[3]
GENERATED = ROOT / "workflows-generated"

Doc = dict[str, Any]


# -- loading -------------------------------------------------------------------------


@cache
def committed() -> dict[str, Doc]:
    """Every committed WorkflowTemplate by ``metadata.name``."""
    docs: dict[str, Doc] = {}
    for path in sorted(GENERATED.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc["kind"] == "WorkflowTemplate":
                docs[doc["metadata"]["name"]] = doc
    return docs


def doc(name: str) -> Doc:
    return copy.deepcopy(committed()[name])


def templates(d: Doc) -> dict[str, Doc]:
    return {t["name"]: t for t in d["spec"]["templates"]}


def container_templates(d: Doc) -> dict[str, Doc]:
    return {n: t for n, t in templates(d).items() if "container" in t}


def walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, value) pair, depth first; list items get their index as a key."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, str(index)))


def strings(node: Any) -> Iterator[tuple[tuple[str, ...], str]]:
    for path, value in walk(node):
        if isinstance(value, str):
            yield path, value


# -- fresh --------------------------------------------------------------------------


def test_the_committed_yaml_is_a_fresh_render(tmp_path: Path) -> None:
    """What ``make check-workflows`` checks: the real ``hera generate yaml``, compared exactly."""
    out = tmp_path / "render"
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "hera"),
            "generate",
            "yaml",
            "pipelines",
            "--to",
            str(out),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert rbac.main([str(out)]) == 0  # the other half of `make workflows`
    fresh = {p.name: p.read_text(encoding="utf-8") for p in out.glob("*.yaml")}
    found = {p.name: p.read_text(encoding="utf-8") for p in GENERATED.glob("*.yaml")}
    assert sorted(found) == sorted(fresh), "run `make workflows` (stale or missing files)"
    for name, text in fresh.items():
        if found[name] != text:
            diff = "".join(
                difflib.unified_diff(
                    found[name].splitlines(True), text.splitlines(True), name, "fresh render"
                )
            )
            pytest.fail(f"workflows-generated/{name} is stale; run `make workflows`:\n{diff}")


def test_rendering_is_deterministic() -> None:
    assert release.build().to_dict() == release.build().to_dict()
    assert promote.build().to_dict() == promote.build().to_dict()
    assert release.build().to_dict() == committed()[release.NAME]
    assert promote.build().to_dict() == committed()[promote.NAME]
    assert refresh.build().to_dict() == refresh.build().to_dict() == committed()[refresh.NAME]
    assert refresh.build_schedule().to_dict() == refresh.build_schedule().to_dict()


def test_importing_the_pipelines_leaves_pyyaml_alone() -> None:
    # with Hera's representer this would be "'n': 'y'\n'y': |-\n  a\n  b\n"
    assert yaml.safe_dump({"y": "a\nb", "n": "y"}) == "n: y\ny: 'a\n\n  b'\n"
    assert yaml.dump({"n": "y"}) == "n: y\n"


def test_there_are_exactly_the_three_templates_and_the_schedule() -> None:
    assert sorted(p.name for p in GENERATED.iterdir()) == [
        "promote.yaml",
        rbac.FILE_NAME,
        "refresh.yaml",
        "release.yaml",
    ]
    assert sorted(committed()) == sorted([release.NAME, promote.NAME, refresh.NAME])
    kinds = [
        (d["kind"], d["metadata"]["name"])
        for d in yaml.safe_load_all((GENERATED / "refresh.yaml").read_text(encoding="utf-8"))
    ]
    assert kinds == [("WorkflowTemplate", refresh.NAME), ("CronWorkflow", refresh.SCHEDULE_NAME)]
    for d in committed().values():
        assert d["apiVersion"] == "argoproj.io/v1alpha1"
        assert d["kind"] == "WorkflowTemplate"


# -- strictly valid -------------------------------------------------------------------


@cache
def strict_schema() -> dict[str, Any]:
    schema = hera_models.WorkflowTemplate.model_json_schema(by_alias=True)
    for _, node in walk(schema):
        if isinstance(node, dict) and "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def schema_errors(d: Doc) -> list[str]:
    """Every message, including those nested in ``anyOf`` branches."""

    def flatten(errors: Any) -> Iterator[str]:
        for error in errors:
            yield error.message
            yield from flatten(error.context or [])

    validator = jsonschema.Draft202012Validator(strict_schema())
    return list(flatten(validator.iter_errors(d)))


@pytest.mark.parametrize("name", [release.NAME, promote.NAME, refresh.NAME])
def test_every_template_is_valid_under_the_strict_schema(name: str) -> None:
    assert schema_errors(doc(name)) == []


@pytest.mark.parametrize("name", [release.NAME, promote.NAME, refresh.NAME])
def test_hera_models_read_every_template_back_unchanged(name: str) -> None:
    d = doc(name)
    parsed = hera_models.WorkflowTemplate.model_validate(d)
    assert parsed.model_dump(by_alias=True, exclude_none=True, mode="json") == d


def _rename(d: Doc, path: list[str | int], new_key: str) -> None:
    node: Any = d
    for key in path[:-1]:
        node = node[key]
    node[new_key] = node.pop(path[-1])


@pytest.mark.parametrize(
    ("path", "typo"),
    [
        (["spec", "templates", 0, "container"], "containr"),
        (["spec", "entrypoint"], "entrypiont"),
        (["spec", "templates", 0, "retryStrategy", "limit"], "limt"),
        (["spec", "templates", 1, "container", "securityContext", "readOnlyRootFilesystem"], "ro"),
        (["spec", "workflowMetadata", "labelsFrom"], "labelFrom"),
    ],
)
def test_a_misspelt_key_fails_the_strict_schema(path: list[str | int], typo: str) -> None:
    d = doc(release.NAME)
    _rename(d, path, typo)
    errors = schema_errors(d)
    assert any(f"'{typo}' was unexpected" in e for e in errors), errors[:5]


def test_the_strict_schema_rejects_a_misspelt_secret_key_ref() -> None:
    d = doc(release.NAME)
    env = templates(d)["charts"]["container"]["env"]
    (password,) = [e for e in env if e["name"] == "ALGA_REGISTRY_PASSWORD"]
    password["valueFrom"]["secretRef"] = password["valueFrom"].pop("secretKeyRef")
    assert any("'secretRef' was unexpected" in e for e in schema_errors(d))


def test_the_strict_schema_also_rejects_a_misspelt_key_in_a_task() -> None:
    d = doc(release.NAME)
    dag = templates(d)[release.ENTRYPOINT]["dag"]
    dag["tasks"][1]["depend"] = dag["tasks"][1].pop("depends")
    assert any("'depend' was unexpected" in e for e in schema_errors(d))


# -- wired: references, DAGs, templateRefs ------------------------------------------------

_VARIABLE = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
_GLOBALS = {"workflow.name", "workflow.status", "workflow.failures"}


def variables(node: Any) -> set[str]:
    return {match for _, text in strings(node) for match in _VARIABLE.findall(text)}


def _ref_targets() -> set[tuple[str, str]]:
    """(WorkflowTemplate, template) pairs reached from another workflow by templateRef."""
    out: set[tuple[str, str]] = set()
    for d in committed().values():
        for _, node in walk(d):
            if isinstance(node, dict) and "templateRef" in node:
                out.add((node["templateRef"]["name"], node["templateRef"]["template"]))
    return out


@pytest.mark.parametrize("name", [release.NAME, promote.NAME, refresh.NAME])
def test_every_variable_names_something_that_exists(name: str) -> None:
    d = doc(name)
    declared = {p["name"] for p in d["spec"]["arguments"]["parameters"]}
    referenced = _ref_targets()
    for tname, template in templates(d).items():
        inputs = {p["name"] for p in template.get("inputs", {}).get("parameters", [])}
        for var in variables(template):
            if var.startswith("workflow.parameters."):
                assert (name, tname) not in referenced, (
                    f"{tname} is run by templateRef from other workflows, so it must read "
                    f"inputs, not {var}"
                )
                assert var.removeprefix("workflow.parameters.") in declared, (tname, var)
            elif var.startswith("inputs.parameters."):
                assert var.removeprefix("inputs.parameters.") in inputs, (tname, var)
            elif var.startswith("tasks."):
                assert "dag" in template, (tname, var)
            else:
                assert var in _GLOBALS, (tname, var)
    # the workflow-level fields may use workflow parameters and globals only
    spec_rest = {k: v for k, v in d["spec"].items() if k not in ("templates", "arguments")}
    for var in variables(spec_rest):
        assert var in _GLOBALS or var.removeprefix("workflow.parameters.") in declared, var
    for label in d["spec"]["workflowMetadata"]["labelsFrom"].values():
        assert label["expression"].removeprefix("workflow.parameters.") in declared


def _ancestors(tasks: dict[str, Doc], name: str) -> set[str]:
    seen: set[str] = set()
    stack = [name]
    while stack:
        for parent in re.findall(r"[A-Za-z0-9-]+", tasks[stack.pop()].get("depends", "")):
            if parent in tasks and parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


@pytest.mark.parametrize("name", [release.NAME, promote.NAME, refresh.NAME])
def test_dags_depend_on_existing_earlier_tasks_and_read_only_their_outputs(name: str) -> None:
    d = doc(name)
    all_templates = templates(d)
    for template in all_templates.values():
        if "dag" not in template:
            continue
        tasks = {t["name"]: t for t in template["dag"]["tasks"]}
        for tname, task in tasks.items():
            ancestors = _ancestors(tasks, tname)
            assert tname not in ancestors, f"cycle through {tname}"
            for parent in re.findall(r"[A-Za-z0-9-]+", task.get("depends", "")):
                assert parent in tasks or parent in {"Succeeded", "Failed", "Skipped"}, parent
            for var in variables(task):
                match = re.fullmatch(r"tasks\.([^.]+)\.outputs\.parameters\.(.+)", var)
                if not match:
                    continue
                source, output = match.groups()
                assert source in ancestors, f"{tname} reads {source} without depending on it"
                produced = all_templates[tasks[source]["template"]]["outputs"]["parameters"]
                assert output in {p["name"] for p in produced}, var
            if "template" in task:
                assert task["template"] in all_templates, task["template"]
                callee = all_templates[task["template"]]
                _check_arguments(task, callee, where=f"{name}/{tname}")


def _check_arguments(task: Doc, callee: Doc, where: str) -> None:
    given = {p["name"] for p in task.get("arguments", {}).get("parameters", [])}
    inputs = callee.get("inputs", {}).get("parameters", [])
    known = {p["name"] for p in inputs}
    required = {p["name"] for p in inputs if "default" not in p and "value" not in p}
    assert given <= known, f"{where} passes unknown inputs {sorted(given - known)}"
    assert required <= given, f"{where} leaves required inputs out: {sorted(required - given)}"


def test_every_template_ref_names_a_template_and_inputs_that_exist() -> None:
    found = 0
    for name, d in committed().items():
        for _, node in walk(d):
            if not (isinstance(node, dict) and "templateRef" in node):
                continue
            found += 1
            ref = node["templateRef"]
            assert "clusterScope" not in ref
            assert ref["name"] in committed(), f"{name}: no WorkflowTemplate {ref['name']}"
            target = templates(committed()[ref["name"]])
            assert ref["template"] in target, f"{name}: {ref['name']} has no {ref['template']}"
            callee = target[ref["template"]]
            _check_arguments(node, callee, where=f"{name}/{node['name']}")
            # a referenced template brings only itself: every volume it mounts is its own
            own = {v["name"] for v in callee.get("volumes", [])}
            for mount in callee.get("container", {}).get("volumeMounts", []):
                assert mount["name"] in own, f"{ref['template']} mounts {mount['name']}"
    assert found >= 1


def test_the_release_passes_registry_and_image_to_promote_explicitly() -> None:
    task = templates(doc(release.NAME))[release.PROMOTE_TASK]["dag"]["tasks"][0]
    given = {p["name"]: p["value"] for p in task["arguments"]["parameters"]}
    for name in common.registry_parameter_names():
        assert given[name] == common.workflow_parameter(name)
    assert given["version"] == "{{workflow.parameters.version}}"
    assert given["channel"] == release.PROMOTE_CHANNEL


_WHEN_CLAUSE = r"'[^']*' (?:==|!=) '[^']*'"
_WHEN = re.compile(rf"{_WHEN_CLAUSE}(?: (?:&&|\|\|) {_WHEN_CLAUSE})*")


def test_when_expressions_quote_both_sides() -> None:
    whens = [
        (name, node["when"])
        for name, d in committed().items()
        for _, node in walk(d)
        if isinstance(node, dict) and "when" in node
    ]
    assert whens
    for name, when in whens:
        assert _WHEN.fullmatch(when), f"{name}: {when!r}"


def test_the_exit_handler_exists_and_cannot_fail_the_run() -> None:
    for d in committed().values():
        handler = templates(d)[d["spec"]["onExit"]]
        assert "retryStrategy" not in handler
        assert handler["container"]["args"][0].rstrip().endswith("exit 0")


# -- the secret ----------------------------------------------------------------------------


def _secret_refs(node: Any) -> list[Doc]:
    return [
        n["valueFrom"]["secretKeyRef"]
        for _, n in walk(node)
        if isinstance(n, dict) and "secretKeyRef" in n.get("valueFrom", {})
    ]


def test_the_secret_is_only_ever_a_secret_key_ref() -> None:
    """Its name and key are parameters (defaults ``github-token`` / ``token``), read by refs."""
    for name, d in committed().items():
        source = [r for r in _secret_refs(d) if r["name"] == control_plane.SOURCE_SECRET]
        # the signing key's password: its own secret (test_pipelines_signing.py)
        signing = [r for r in _secret_refs(d) if r["name"].endswith(".signing-secret}}")]
        refs = [r for r in _secret_refs(d) if r not in source and r not in signing]
        assert refs, name
        scopes = {"workflow.parameters", "inputs.parameters"}
        for ref in refs:
            scope = re.fullmatch(r"\{\{(.+)\.registry-secret\}\}", ref["name"])
            assert scope and scope[1] in scopes, ref
            assert ref["key"] == "{{" + scope[1] + ".registry-secret-key}}", ref
        params = {p["name"]: p for p in d["spec"]["arguments"]["parameters"]}
        assert params["registry-secret"]["value"] == "github-token" == common.REGISTRY_SECRET
        assert params["registry-secret-key"]["value"] == "token" == common.REGISTRY_SECRET_KEY
        # the default name appears only as a default (of the parameter or a template input)
        for path, value in strings(d):
            if "github-token" in value:
                assert path[-1] in ("value", "default"), f"{name}: github-token at {path}"


def test_the_copy_reads_its_source_credentials_from_an_optional_secret_only() -> None:
    """Only the copy template has them; no secret means an anonymous source, not a failure."""
    from steps.controlplane.sources import ENV_SOURCE_PASSWORD, ENV_SOURCE_USERNAME

    all_templates = templates(doc(release.NAME))
    for tname, template in all_templates.items():
        refs = [r for r in _secret_refs(template) if r["name"] == control_plane.SOURCE_SECRET]
        assert bool(refs) == (tname == control_plane.COPY_TEMPLATE), tname
    env = {e["name"]: e for e in all_templates[control_plane.COPY_TEMPLATE]["container"]["env"]}
    secret = control_plane.SOURCE_SECRET
    assert env[ENV_SOURCE_USERNAME] == {
        "name": ENV_SOURCE_USERNAME,
        "valueFrom": {"secretKeyRef": {"name": secret, "key": "username", "optional": True}},
    }
    assert env[ENV_SOURCE_PASSWORD] == {
        "name": ENV_SOURCE_PASSWORD,
        "valueFrom": {"secretKeyRef": {"name": secret, "key": "password", "optional": True}},
    }
    # the secret's name appears in its secretKeyRefs and, for operators, in one description
    for path, value in strings(doc(release.NAME)):
        if secret in value:
            assert path[-2:] == ("secretKeyRef", "name") or value.startswith("copy mode only"), (
                ".".join(path)
            )


_SIGNING_PARAMS = ("signing-secret", "signing-secret-key", "signing-secret-password-key")


def test_credentials_never_travel_as_values_or_arguments() -> None:
    for name, d in committed().items():
        for tname, template in container_templates(d).items():
            container = template["container"]
            for env in container.get("env", []):
                if re.search(r"PASSWORD|TOKEN|SECRET", env["name"]):
                    assert "value" not in env, f"{name}/{tname}: {env['name']} has a value"
                    assert set(env["valueFrom"]) == {"secretKeyRef"}
            for arg in container.get("args", []):
                assert "password" not in arg.lower(), f"{name}/{tname}: {arg!r}"
            # every alga-release step talks to the registry, but the control-plane check,
            # which compares two result files
            registry_step = container["command"] == [common.ENTRYPOINT] and tname != (
                "control-plane-check"
            )
            names = {e["name"] for e in container.get("env", [])}
            if registry_step:
                assert {"ALGA_REGISTRY_USERNAME", "ALGA_REGISTRY_PASSWORD"} <= names, tname
        # no credential is a parameter; the two secret parameters only name where it is
        for param in d["spec"]["arguments"]["parameters"]:
            if param["name"] in ("registry-secret", "registry-secret-key", *_SIGNING_PARAMS):
                assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*", param["value"]), param
                continue
            assert not re.search(r"password|token|secret", param["name"]), param["name"]


# -- shared defaults --------------------------------------------------------------------


@pytest.mark.parametrize("name", [release.NAME, promote.NAME, refresh.NAME])
def test_every_pod_is_hardened(name: str) -> None:
    for tname, template in container_templates(doc(name)).items():
        pod = template["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert pod["runAsUser"] == common.STEP_UID and pod["fsGroup"] == common.STEP_UID
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        container = template["container"]
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True, tname
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["runAsNonRoot"] is True
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        # the only writable places: the scratch emptyDir and (for steps) the workspace
        size = "4Gi" if tname == control_plane.BUILD_TEMPLATE else "1Gi"
        assert {"name": "scratch", "emptyDir": {"sizeLimit": size}} in template["volumes"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts["/tmp"] == "scratch"
        writable = {m["name"] for m in container["volumeMounts"] if not m.get("readOnly")}
        assert writable <= {"scratch", "workspace"}, tname
        # the rest: the signing secret, read-only (test_pipelines_signing.py)
        assert set(mounts.values()) - {"scratch", "workspace"} <= {common.SIGNING_VOLUME}
        assert "privileged" not in ctx and "runAsUser" not in ctx, tname
        env = {e["name"]: e.get("value") for e in container["env"]}
        for var in ("HOME", "TMPDIR"):
            assert env[var] == "/tmp"
        assert env["XDG_CACHE_HOME"].startswith("/tmp/")
        assert template["activeDeadlineSeconds"] > 0
        assert container["command"], f"{tname}: the command must be explicit"
        assert container["image"] in (
            "{{workflow.parameters.step-image}}",
            "{{inputs.parameters.step-image}}",
        )
        assert "limits" in container["resources"]


@pytest.mark.parametrize("name", [release.NAME, promote.NAME, refresh.NAME])
def test_only_exit_code_75_is_retried_and_fatal_exits_wait_for_nothing(name: str) -> None:
    """Argo waits ``backoff`` before it evaluates the expression, so there is none.

    ``processNodeRetries`` (workflow/controller/operator.go, v3.6.10 and v3.7.6 alike)
    handles a failed attempt in this order: shutdown / workflow deadline; then, only if
    ``retryStrategy.backoff`` is set, maxDuration and the backoff wait (requeue, return);
    then the retry policy, ``CanRetry``, ``limit``, and last ``expression``. With no
    ``backoff`` the first pass that sees the failed attempt reaches the expression, and a
    false one marks the node failed in that pass: exits 1/2/3 fail at once. The waiting
    between tries of a transient failure happens inside the attempt instead.
    """
    d = doc(name)
    assert "retryStrategy" not in d["spec"]
    for tname, template in container_templates(d).items():
        if tname == d["spec"]["onExit"]:
            assert "retryStrategy" not in template
            continue
        retry = template["retryStrategy"]
        assert retry == {
            "expression": "asInt(lastRetry.exitCode) == 75",
            "limit": common.RETRY_LIMIT,
            "retryPolicy": "Always",
        }, tname
        env = {e["name"]: e.get("value") for e in template["container"].get("env", [])}
        if template["container"]["command"] == [common.ENTRYPOINT]:
            # the OCI client's own backoff: up to 8 tries, 1 s doubling (capped at 8 s)
            assert env["ALGA_RETRY_ATTEMPTS"] == "8" and env["ALGA_RETRY_BASE_DELAY"] == "1"
        else:
            assert "ALGA_RETRY_ATTEMPTS" not in env
    for _, node in walk(d):
        assert not (isinstance(node, dict) and "backoff" in node)


@pytest.mark.parametrize("name", [release.NAME, promote.NAME])
def test_workflow_level_defaults(name: str) -> None:
    spec = doc(name)["spec"]
    assert spec["activeDeadlineSeconds"] > max(
        t["activeDeadlineSeconds"] for t in container_templates(doc(name)).values()
    )
    assert spec["podGC"] == {"strategy": "OnPodSuccess"}
    assert spec["onExit"] in templates(doc(name))
    assert spec["workflowMetadata"]["labelsFrom"] == {
        "alga-appliance/version": {"expression": "workflow.parameters.version"},
        "alga-appliance/channel": {"expression": "workflow.parameters.channel"},
    }


# -- the control-plane task ----------------------------------------------------------------


def test_only_the_build_has_a_sidecar_and_only_the_sidecar_is_privileged() -> None:
    for name, d in committed().items():
        for tname, template in templates(d).items():
            if tname != control_plane.BUILD_TEMPLATE:
                assert "sidecars" not in template, f"{name}/{tname}"
                assert "initContainers" not in template, f"{name}/{tname}"
        privileged = [
            ".".join(path) for path, value in walk(d) if path[-1:] == ("privileged",) and value
        ]
        expected = [] if name != release.NAME else [_build_sidecar_path(d) + ".securityContext"]
        assert [p.rsplit(".", 1)[0] for p in privileged] == expected, name


def _build_sidecar_path(d: Doc) -> str:
    index = [t["name"] for t in d["spec"]["templates"]].index(control_plane.BUILD_TEMPLATE)
    return f"spec.templates.{index}.sidecars.0"


def test_the_dind_sidecar_serves_the_pod_loopback_only_and_sees_no_workspace() -> None:
    build = templates(doc(release.NAME))[control_plane.BUILD_TEMPLATE]
    (sidecar,) = build["sidecars"]
    assert sidecar["name"] == "dind"
    assert sidecar["image"] == "{{workflow.parameters.dind-image}}"
    # Argo's sidecar-dind pattern, but dockerd on 127.0.0.1 only (no 0.0.0.0, no socket):
    # a first argument `dockerd` makes dockerd-entrypoint.sh skip its default --host flags
    assert sidecar["command"] == ["dockerd-entrypoint.sh"]
    assert sidecar["args"] == ["dockerd", "--host=tcp://127.0.0.1:2375"]
    assert sidecar["securityContext"] == {
        "privileged": True,
        "runAsUser": 0,
        "runAsGroup": 0,
        "runAsNonRoot": False,
    }
    assert "mirrorVolumeMounts" not in sidecar
    assert sidecar["volumeMounts"] == [{"name": "docker-data", "mountPath": "/var/lib/docker"}]
    assert {"name": "docker-data", "emptyDir": {"sizeLimit": "20Gi"}} in build["volumes"]
    assert "limits" in sidecar["resources"]
    env = {e["name"]: e.get("value") for e in build["container"]["env"]}
    assert env["DOCKER_HOST"] == "tcp://127.0.0.1:2375"
    # the step container beside it is hardened as every other (test_every_pod_is_hardened)
    assert build["container"]["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_dind_image_is_a_parameter_pinned_by_digest() -> None:
    pinned = re.compile(r"[a-z0-9.-]+(?::\d+)?(?:/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}")
    assert pinned.fullmatch(control_plane.DIND_IMAGE)
    params = {p["name"]: p for p in doc(release.NAME)["spec"]["arguments"]["parameters"]}
    assert params["dind-image"]["value"] == control_plane.DIND_IMAGE
    assert "dind-image" not in {
        p["name"] for p in doc(promote.NAME)["spec"]["arguments"]["parameters"]
    }


def test_the_control_plane_task_runs_by_mode_and_pin_skips_it() -> None:
    all_templates = templates(doc(release.NAME))
    tasks = {t["name"]: t for t in all_templates[release.ENTRYPOINT]["dag"]["tasks"]}
    not_pinned = "'{{workflow.parameters.control-plane-mode}}' != 'pin'"
    assert tasks["control-plane"]["when"] == not_pinned
    assert tasks["control-plane"]["template"] == "control-plane"
    assert tasks["control-plane-check"]["when"] == not_pinned
    inner = {t["name"]: t for t in all_templates["control-plane"]["dag"]["tasks"]}
    assert inner == {
        "copy": {
            "name": "copy",
            "template": control_plane.COPY_TEMPLATE,
            "when": "'{{workflow.parameters.control-plane-mode}}' == 'copy'",
        },
        "build": {
            "name": "build",
            "template": control_plane.BUILD_TEMPLATE,
            "when": "'{{workflow.parameters.control-plane-mode}}' == 'build'",
        },
    }
    # every mode of the enum is decided: pin skips both, copy and build run one each
    params = {p["name"]: p for p in doc(release.NAME)["spec"]["arguments"]["parameters"]}
    for mode in params["control-plane-mode"]["enum"]:
        ran = [
            name
            for name, task in inner.items()
            if _when_holds(task["when"], mode) and _when_holds(not_pinned, mode)
        ]
        assert ran == ([] if mode == "pin" else [mode]), mode
    # nothing else is conditional on the mode
    for name, task in tasks.items():
        if name not in ("control-plane", "control-plane-check"):
            assert "control-plane-mode" not in task.get("when", ""), name


def _when_holds(when: str, mode: str) -> bool:
    left, op, right = when.replace("{{workflow.parameters.control-plane-mode}}", mode).split(" ")
    return (left == right) == (op == "==")


def test_the_images_step_runs_after_the_control_plane_and_is_checked_before_the_manifest() -> None:
    tasks = {t["name"]: t for t in templates(doc(release.NAME))[release.ENTRYPOINT]["dag"]["tasks"]}
    assert "control-plane" in _ancestors(tasks, "images")
    assert "checkout" in _ancestors(tasks, "control-plane")
    assert tasks["control-plane-check"]["depends"] == "images"
    assert "control-plane-check" in _ancestors(tasks, "manifest")
    check = templates(doc(release.NAME))[control_plane.CHECK_TASK]
    assert [p["name"] for p in check["outputs"]["parameters"]] == ["reference", "digest"]


def test_the_step_image_is_the_recorded_pin_or_required() -> None:
    """Never a placeholder: without a recorded digest Argo refuses a run that names none."""
    recorded = pins.load().step_image
    assert recorded == common.STEP_IMAGE
    for d in committed().values():
        params = {p["name"]: p for p in d["spec"]["arguments"]["parameters"]}
        if recorded is None:
            assert "value" not in params["step-image"]
            assert "REQUIRED" in params["step-image"]["description"]
        else:
            assert params["step-image"]["value"] == recorded
        # the all-zero digest is only ever the dind image's (and the checkout's test of it)
        for path, value in strings(d):
            if pins.PLACEHOLDER_DIGEST in value:
                assert value == control_plane.DIND_PLACEHOLDER or "DIND_IMAGE" in value, path
        for template in templates(d).values():
            if "container" in template:
                image = template["container"]["image"]
                assert image in (
                    "{{workflow.parameters.step-image}}",
                    "{{inputs.parameters.step-image}}",
                )


def test_release_parameters() -> None:
    params = {p["name"]: p for p in doc(release.NAME)["spec"]["arguments"]["parameters"]}
    assert list(params) == [
        "source-repo",
        "source-ref",
        "version",
        "channel",
        "alga-core-tag",
        "workflow-worker-tag",
        "email-service-tag",
        "temporal-worker-tag",
        "control-plane",
        "control-plane-mode",
        "control-plane-source",
        "values-profile",
        "promote",
        "dry-run",
        "verify-charts",
        "registry",
        "namespace",
        "registry-username",
        "step-image",
        "registry-secret",
        "registry-secret-key",
        "signing-secret",
        "signing-secret-key",
        "signing-secret-password-key",
        "dind-image",
        "service-account",
    ]
    assert params["control-plane-mode"]["value"] == "pin"
    assert params["control-plane-mode"]["enum"] == ["pin", "copy", "build"]
    assert params["control-plane-source"]["value"] == ""
    assert params["channel"]["enum"] == ["nightly", "stable"]
    assert params["values-profile"]["value"] == "single-node"
    assert params["registry-username"]["value"] == "robertisaacs"
    assert params["registry"]["value"] == "ghcr.io"
    assert params["namespace"]["value"] == "nine-minds"
    for flag in ("promote", "dry-run", "verify-charts"):
        assert params[flag]["value"] == "false" and params[flag]["enum"] == ["false", "true"]
    for required in ("version", "alga-core-tag", "control-plane"):
        assert "value" not in params[required]


def test_promote_parameters() -> None:
    params = {p["name"]: p for p in doc(promote.NAME)["spec"]["arguments"]["parameters"]}
    assert list(params)[:5] == ["version", "channel", "allow-downgrade", "reason", "dry-run"]
    assert params["channel"]["value"] == "stable"
    assert params["channel"]["enum"] == ["nightly", "stable"]
    assert params["allow-downgrade"]["value"] == "false"
    assert params["reason"]["value"] == ""
    assert "value" not in params["version"]
    # the entrypoint's inputs are filled from these arguments: same names, same defaults
    entry = templates(doc(promote.NAME))[promote.PROMOTE_TEMPLATE]
    inputs = {p["name"]: p.get("default") for p in entry["inputs"]["parameters"]}
    # (the service account is the workflow's, not the template's: no input for it)
    assert inputs == {n: p.get("value") for n, p in params.items() if n != "service-account"}
    assert list(params)[-1] == "service-account"
    assert doc(promote.NAME)["spec"]["entrypoint"] == promote.PROMOTE_TEMPLATE


# -- the channel mutex ---------------------------------------------------------------------


def _mutexes(node: Doc) -> list[str]:
    return [m["name"] for m in node.get("synchronization", {}).get("mutexes", [])]


def _moves_a_channel(template: Doc) -> bool:
    args = template.get("container", {}).get("args", [])
    return args[:2] == ["channel", "move"] or args[:1] == ["promote"]


def test_every_channel_move_holds_the_channel_mutex() -> None:
    channel = "alga-appliance-channel-{{workflow.parameters.channel}}"
    rel, pro = doc(release.NAME), doc(promote.NAME)
    # promote: workflow-level, and not again at template level (that would deadlock)
    assert _mutexes(pro["spec"]) == [channel]
    assert "synchronization" not in pro["spec"]["templates"][0]
    assert all("synchronization" not in t for t in pro["spec"]["templates"])
    # release: the channel move itself, not the whole workflow
    assert "synchronization" not in rel["spec"]
    movers = [n for n, t in templates(rel).items() if _moves_a_channel(t)]
    assert movers == ["channel"]
    assert _mutexes(templates(rel)["channel"]) == [channel]
    # release -> promote by templateRef: the wrapper holds the lock of the promoted channel
    wrapper = templates(rel)[release.PROMOTE_TASK]
    assert _mutexes(wrapper) == [f"alga-appliance-channel-{release.PROMOTE_CHANNEL}"]
    (task,) = wrapper["dag"]["tasks"]
    assert task["templateRef"] == {"name": promote.NAME, "template": promote.PROMOTE_TEMPLATE}
    assert _moves_a_channel(templates(pro)[promote.PROMOTE_TEMPLATE])
    # every lock in either file is a channel lock
    for d in (rel, pro):
        for _, node in walk(d):
            if isinstance(node, dict) and "mutexes" in node:
                assert all(m["name"].startswith(common.MUTEX_PREFIX) for m in node["mutexes"])


def test_scripts_take_argo_values_only_from_the_environment() -> None:
    for name, d in committed().items():
        for tname, template in container_templates(d).items():
            container = template["container"]
            if container["command"][0] in ("sh", "bash", "python3"):
                assert not variables(container["args"]), f"{name}/{tname} splices a value in"
