"""``alga-appliance-refresh`` (a WorkflowTemplate) and ``alga-appliance-refresh-weekly`` (the
CronWorkflow that submits it): both channels re-vouched every week.

A channel statement (``statement.<channel>``, see ``steps/channels/__init__.py``) expires
(``expiresAt``, 30 days after a move by default), so that a registry or a cache that keeps
serving an old channel stops moving appliances. A channel that does not move for that
long must be refreshed: this CronWorkflow runs ``alga-release channel refresh <channel>``
for each channel (:data:`CHANNELS`), which re-issues the current statement with the next
sequence and a new expiry and changes nothing else.

- **Schedule** (:func:`build_schedule`): :data:`SCHEDULE` (weekly: Mondays 03:17 UTC),
  ``concurrencyPolicy: Forbid``, submitting the WorkflowTemplate by ``workflowTemplateRef``
  with ``statement-expiry`` and ``min-age``. Four refreshes fit in one 30-day expiry, so
  three missed runs in a row still leave the channels vouched for. A schedule is a field
  of the CronWorkflow, not a workflow parameter: change it (and the parameters it passes)
  in the rendered YAML (a kustomize patch, or ``kubectl patch cronworkflow
  alga-appliance-refresh-weekly --type merge -p '{"spec":{"schedules":["0 4 * * *"]}}'``).
  Without a recorded step image it is rendered suspended (see :func:`build_schedule`).
- **Parameters** of the template (``argo submit --from
  workflowtemplate/alga-appliance-refresh -p statement-expiry=14d`` for a run by hand):
  ``statement-expiry`` (default :data:`EXPIRY`, the CLI's own default) and ``min-age``
  (default :data:`MIN_AGE`: a retried or repeated run the same day is a no-op), both
  reaching the step as the CLI's environment defaults (``ALGA_STATEMENT_EXPIRY``,
  ``ALGA_STATEMENT_MIN_AGE``), ``dry-run`` (``ALGA_DRY_RUN``), and the registry and
  signing-secret parameters every template shares.
- **The channel mutex**: each channel's task is its own template holding
  ``alga-appliance-channel-<channel>``, the lock the release's channel step and the
  promote workflow take, so a refresh never runs beside a move of the same channel.
- **The signing key** comes from its own Kubernetes secret (``signing-secret``), mounted
  read-only by :func:`pipelines.common.signing_key`, as for the release and promote; a run
  without the secret fails in its first step (exit 2) naming it, before any write.

Each task's JSON result is its ``result`` output parameter; the exit handler logs the
outcome. Nothing here decides anything: the refresh's rules are in
``steps/channels/refresh.py``.
"""

from __future__ import annotations

from hera.workflows import DAG, CronWorkflow, Env, Parameter, SecretEnv, Task, WorkflowTemplate
from hera.workflows import models as m

from pipelines import common as c
from pipelines import pins
from steps.release.plan import RegistryParams

NAME = "alga-appliance-refresh"
SCHEDULE_NAME = "alga-appliance-refresh-weekly"
ENTRYPOINT = "refresh"
CHANNELS = c.CHANNELS
SCHEDULE = "17 3 * * 1"  # weekly, Monday 03:17
TIMEZONE = "UTC"
EXPIRY = "30d"  # steps.cli.options.STATEMENT_EXPIRY_DEFAULT (a unit test keeps them equal)
MIN_AGE = "1d"  # steps.cli.options.STATEMENT_MIN_AGE_DEFAULT
WORKFLOW_DEADLINE_SECONDS = 1800
STARTING_DEADLINE_SECONDS = 3600  # a run missed by up to an hour (a controller restart) still runs
HISTORY_LIMIT = 4


def template_name(channel: str) -> str:
    return f"refresh-{channel}"


def result_file(channel: str) -> str:
    return f"{c.SCRATCH_DIR}/out/refresh-{channel}.json"


def arguments() -> list[Parameter]:
    return [
        Parameter(
            name="statement-expiry",
            value=EXPIRY,
            description="each re-issued statement expires after this long (e.g. 30d, 14d, "
            "12h); keep it longer than the schedule's interval",
        ),
        Parameter(
            name="min-age",
            value=MIN_AGE,
            description="a statement younger than this is left as it is (a retried or "
            "repeated run is a no-op)",
        ),
        c.boolean_parameter("dry-run", "judge each channel, write nothing"),
        *c.registry_arguments(),
        *c.signing_arguments(),
    ]


def refresh_argv(channel: str) -> list[str]:
    wp = c.workflow_parameter
    registry = RegistryParams(registry=wp("registry"), namespace=wp("namespace"))
    return ["channel", "refresh", channel, "--out", result_file(channel), *registry.argv()]


def refresh_env() -> list[Env | SecretEnv]:
    wp = c.workflow_parameter
    return [
        *c.registry_env(wp),
        Env(name="ALGA_STATEMENT_EXPIRY", value=wp("statement-expiry")),
        Env(name="ALGA_STATEMENT_MIN_AGE", value=wp("min-age")),
        Env(name="ALGA_DRY_RUN", value=wp("dry-run")),
        Env(name="ALGA_RUN", value="{{workflow.name}}"),
    ]


def build() -> WorkflowTemplate:
    """The refresh itself (one task per channel): what the schedule submits, and what
    ``argo submit --from workflowtemplate/alga-appliance-refresh`` runs by hand."""
    wp = c.workflow_parameter
    settings = c.workflow_settings()
    # No version or channel parameters here: the run is labelled by what it is instead.
    settings["workflow_metadata"] = m.WorkflowMetadata(
        labels={f"{c.LABEL_PREFIX}run": "refresh"},
        labels_from={
            f"{c.LABEL_PREFIX}dry-run": m.LabelValueFrom(expression="workflow.parameters.dry-run")
        },
    )
    with WorkflowTemplate(
        name=NAME,
        entrypoint=ENTRYPOINT,
        arguments=[*arguments(), c.service_account_parameter()],
        on_exit="report",
        active_deadline_seconds=WORKFLOW_DEADLINE_SECONDS,
        **settings,
    ) as workflow:
        templates = {
            channel: c.step_container(
                template_name(channel),
                image=wp("step-image"),
                args=refresh_argv(channel),
                env=refresh_env(),
                outputs=[
                    Parameter(name="result", value_from=m.ValueFrom(path=result_file(channel)))
                ],
                synchronization=c.channel_mutex(channel),
                secrets=[c.signing_key(wp)],
            )
            for channel in CHANNELS
        }
        c.report_container(
            "report",
            image=wp("step-image"),
            version="(statement refresh)",
            channel=" ".join(CHANNELS),
            dry_run=wp("dry-run"),
        )
        with DAG(name=ENTRYPOINT):
            for channel in CHANNELS:
                Task(name=template_name(channel), template=templates[channel])
    return workflow


def build_schedule() -> CronWorkflow:
    """The schedule: submits :data:`NAME` weekly with the expiry and the minimum age.

    A scheduled run has no one to pass ``-p step-image=...``, so the schedule passes the
    recorded pin; while none is recorded it is rendered **suspended** (``suspend: true``),
    passing the unpublished placeholder (``<step image repository>@sha256:0…0``: Argo
    refuses an empty image even in a suspended schedule): nothing runs until ``make
    workflows STEP_IMAGE=...`` records one (or the CronWorkflow is patched with an image
    and unsuspended; unsuspended with the placeholder, its pods could not pull it)."""
    pinned = c.STEP_IMAGE
    image = pinned or f"{c.STEP_IMAGE_REPOSITORY}@{pins.PLACEHOLDER_DIGEST}"
    return CronWorkflow(
        name=SCHEDULE_NAME,
        labels={"app.kubernetes.io/part-of": "alga-appliance"},
        annotations={c.VERSION_ANNOTATION: f">= {c.ARGO_MINIMUM}.0"},
        schedules=[SCHEDULE],
        timezone=TIMEZONE,
        concurrency_policy="Forbid",
        starting_deadline_seconds=STARTING_DEADLINE_SECONDS,
        successful_jobs_history_limit=HISTORY_LIMIT,
        failed_jobs_history_limit=HISTORY_LIMIT,
        cron_suspend=True if pinned is None else None,
        workflow_template_ref=m.WorkflowTemplateRef(name=NAME),
        arguments=[
            Parameter(name="statement-expiry", value=EXPIRY),
            Parameter(name="min-age", value=MIN_AGE),
            Parameter(name="step-image", value=image),
        ],
    )


refresh_template = build()
refresh_schedule = build_schedule()
