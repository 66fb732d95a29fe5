"""``alga-appliance-refresh`` and its weekly CronWorkflow, as rendered in workflows-generated/.

The template runs ``alga-release channel refresh <channel>`` once per channel, each task
under that channel's mutex (the lock the release's channel step and promote take), with
the signing key from its own secret; the CronWorkflow submits it weekly with the
statement expiry and the minimum age, suspended while no step image is recorded. The
template is also in the generic tests of test_pipelines.py (fresh render, strict schema,
variables, hardening) and test_pipelines_signing.py; the CronWorkflow is checked against
the strict schema of Hera's own CronWorkflow model here, and by the real ``argo lint``
(tests/integration/test_argo_lint.py).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from steps.cli import options
from tests.helpers import cli
from tests.unit.pipelines.test_pipelines import (
    GENERATED,
    container_templates,
    doc,
    templates,
    walk,
    yaml_representers_kept,
)

with yaml_representers_kept():
    from hera.workflows import models as hera_models

    from pipelines import common, pins, promote, refresh, release

Doc = dict[str, Any]


def schedule() -> Doc:
    docs = list(yaml.safe_load_all((GENERATED / "refresh.yaml").read_text(encoding="utf-8")))
    (found,) = [d for d in docs if d["kind"] == "CronWorkflow"]
    return found


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    for _, node in walk(schema):
        if isinstance(node, dict) and "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
    return schema


def test_the_schedule_is_strictly_valid_and_reads_back_unchanged() -> None:
    cron = schedule()
    schema = strict(hera_models.CronWorkflow.model_json_schema(by_alias=True))
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(cron)]
    assert errors == []
    parsed = hera_models.CronWorkflow.model_validate(cron)
    assert parsed.model_dump(by_alias=True, exclude_none=True, mode="json") == cron
    broken = {**cron, "spec": {**cron["spec"], "schedule": cron["spec"]["schedules"][0]}}
    broken["spec"].pop("schedules")
    assert any(
        "'schedule' was unexpected" in e.message
        for e in jsonschema.Draft202012Validator(schema).iter_errors(broken)
    )


def test_weekly_by_default_with_the_clis_expiry_and_minimum_age() -> None:
    spec = schedule()["spec"]
    (cron,) = spec["schedules"]
    minute, hour, day, month, weekday = cron.split()
    assert (day, month) == ("*", "*") and re.fullmatch(r"[0-6]", weekday), cron
    assert minute.isdigit() and hour.isdigit()
    assert spec["timezone"] == "UTC" and spec["concurrencyPolicy"] == "Forbid"
    assert spec["workflowSpec"]["workflowTemplateRef"] == {"name": refresh.NAME}
    passed = {p["name"]: p["value"] for p in spec["workflowSpec"]["arguments"]["parameters"]}
    assert passed["statement-expiry"] == refresh.EXPIRY == options.STATEMENT_EXPIRY_DEFAULT
    assert passed["min-age"] == refresh.MIN_AGE == options.STATEMENT_MIN_AGE_DEFAULT
    assert options.duration(passed["statement-expiry"]) == timedelta(days=30)
    # a week between runs, well inside one expiry: three missed runs still leave it valid
    assert 4 * timedelta(weeks=1) < options.duration(passed["statement-expiry"]) + timedelta(
        weeks=1
    )
    declared = {p["name"]: p for p in doc(refresh.NAME)["spec"]["arguments"]["parameters"]}
    assert set(passed) <= set(declared)
    assert declared["statement-expiry"]["value"] == refresh.EXPIRY
    assert declared["min-age"]["value"] == refresh.MIN_AGE


def test_without_a_recorded_step_image_the_schedule_is_suspended() -> None:
    spec = schedule()["spec"]
    passed = {p["name"]: p["value"] for p in spec["workflowSpec"]["arguments"]["parameters"]}
    recorded = pins.load().step_image
    if recorded is None:
        assert spec["suspend"] is True
        assert passed["step-image"].endswith("@" + pins.PLACEHOLDER_DIGEST)
    else:
        assert "suspend" not in spec and passed["step-image"] == recorded


def test_one_task_per_channel_each_under_its_channel_mutex() -> None:
    d = doc(refresh.NAME)
    dag = templates(d)[refresh.ENTRYPOINT]["dag"]["tasks"]
    assert [(t["name"], t["template"]) for t in dag] == [
        (refresh.template_name(c), refresh.template_name(c)) for c in common.CHANNELS
    ]
    assert all("depends" not in t for t in dag)  # one channel's failure never skips the other
    locks = {
        name: t.get("synchronization", {}).get("mutexes")
        for name, t in container_templates(d).items()
    }
    assert locks.pop("report") is None  # the exit report holds no lock
    for channel in common.CHANNELS:
        assert locks[refresh.template_name(channel)] == [
            {"name": f"{common.MUTEX_PREFIX}{channel}"}
        ]
    # the same names the moves take: promote's workflow lock, the release's channel step
    promote_lock = doc(promote.NAME)["spec"]["synchronization"]["mutexes"][0]["name"]
    assert promote_lock == common.MUTEX_PREFIX + "{{workflow.parameters.channel}}"
    channel_step = container_templates(doc(release.NAME))["channel"]
    assert channel_step["synchronization"]["mutexes"][0]["name"] == promote_lock


def _env(template: Doc) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in template["container"]["env"]}


def test_each_task_runs_channel_refresh_as_the_cli_parses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from steps.cli.app import build_parser

    wp = common.workflow_parameter
    for channel in common.CHANNELS:
        template = container_templates(doc(refresh.NAME))[refresh.template_name(channel)]
        assert template["container"]["command"] == [common.ENTRYPOINT]
        env = _env(template)
        assert env["ALGA_STATEMENT_EXPIRY"] == wp("statement-expiry")
        assert env["ALGA_STATEMENT_MIN_AGE"] == wp("min-age")
        assert env["ALGA_DRY_RUN"] == wp("dry-run")
        assert env["ALGA_RUN"] == "{{workflow.name}}"
        assert env["ALGA_SIGNING_KEY"] == common.SIGNING_KEY_FILE
        argv = [
            a.replace(wp("registry"), "ghcr.io").replace(wp("namespace"), "nine-minds")
            for a in template["container"]["args"]
        ]
        assert argv[:3] == ["channel", "refresh", channel]
        # the CLI reads the parameters the way the template hands them over
        monkeypatch.setenv("ALGA_STATEMENT_EXPIRY", "14d")
        monkeypatch.setenv("ALGA_STATEMENT_MIN_AGE", "6h")
        monkeypatch.setenv("ALGA_DRY_RUN", "true")
        monkeypatch.setenv("ALGA_SIGNING_KEY", common.SIGNING_KEY_FILE)
        args = build_parser().parse_args(argv)
        assert args.handler.__name__ == "cmd_channel_refresh"
        assert (args.channel, args.statement_expiry, args.min_age) == (
            channel,
            timedelta(days=14),
            timedelta(hours=6),
        )
        assert args.dry_run is True and str(args.signing_key) == common.SIGNING_KEY_FILE
        assert str(args.out) == refresh.result_file(channel)
        outputs = template["outputs"]["parameters"]
        assert outputs == [{"name": "result", "valueFrom": {"path": refresh.result_file(channel)}}]


def test_a_refresh_without_the_signing_secret_exits_2_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = container_templates(doc(refresh.NAME))[refresh.template_name("stable")]
    params = {
        p["name"]: p.get("value", "") for p in doc(refresh.NAME)["spec"]["arguments"]["parameters"]
    }
    params["registry"] = "127.0.0.1:9"  # nothing listens: no request may be made

    def fill(text: str) -> str:
        return re.sub(
            r"\{\{workflow\.parameters\.([^}]+)\}\}", lambda m: params[m.group(1)], text
        ).replace("{{workflow.name}}", "alga-appliance-refresh-x")

    for name, value in _env(template).items():
        monkeypatch.setenv(name, fill(value))
    monkeypatch.setenv("ALGA_SIGNING_KEY", str(tmp_path / "empty-mount" / "cosign.key"))
    monkeypatch.setenv("ALGA_PLAIN_HTTP", "true")
    monkeypatch.delenv("ALGA_SIGNING_KEY_PASSWORD", raising=False)
    result = cli([fill(a) for a in template["container"]["args"]])
    assert result.code == 2, result.stderr
    assert "the Kubernetes secret 'alga-appliance-signing' (key 'cosign.key')" in result.stderr
    assert "127.0.0.1:9" not in result.stderr


def test_the_schedule_names_no_secret_and_no_literal_credential() -> None:
    text = (GENERATED / "refresh.yaml").read_text(encoding="utf-8")
    assert "secretKeyRef" not in yaml.safe_dump(schedule())
    assert "password:" not in text.lower()
