"""``alga-appliance-promote``: re-point a channel (default ``stable``) at a published version.

One task, ``alga-release promote``, behind the CLI's gates (the release exists and is
complete, not a downgrade unless ``allow-downgrade`` with a ``reason``, no concurrent
move). ``allow-downgrade``, ``reason`` and ``dry-run`` reach it as the CLI's
environment defaults (``ALGA_ALLOW_DOWNGRADE``, ``ALGA_REASON``, ``ALGA_DRY_RUN``) and
the workflow name as ``ALGA_RUN`` (recorded in the channel's audit record), so its
arguments are static.

**A workflow-level mutex per channel** (``alga-appliance-channel-<channel>``, the lock
the release's channel move also takes): two promotions of one channel never run at
once, and a second one waits before it creates any pod. The whole workflow is the
move, so the whole workflow holds the lock.

The entrypoint is the container template :data:`PROMOTE_TEMPLATE` itself: its inputs
are filled from the workflow's arguments of the same names. The release template runs
the same template through ``templateRef`` (passing every input but the optional
``allow-downgrade`` and ``reason`` explicitly, so that registry and image always follow
the release's), which is why the template carries its own security context, volumes
and environment and reads only ``inputs.parameters``, never ``workflow.parameters``.
Reached that way it does not bring this workflow's lock: the release takes the lock in
its ``promote-stable`` wrapper (see :mod:`pipelines.release`).
"""

from __future__ import annotations

from hera.workflows import Env, Parameter, SecretEnv, WorkflowTemplate
from hera.workflows import models as m

from pipelines import common as c
from steps.release.plan import RegistryParams

NAME = "alga-appliance-promote"
PROMOTE_TEMPLATE = "promote"
WORKFLOW_DEADLINE_SECONDS = 1800
RESULT_FILE = f"{c.SCRATCH_DIR}/out/promote.json"


def arguments() -> list[Parameter]:
    return [
        Parameter(name="version", description="published version to promote"),
        c.channel_parameter("stable", "channel to move"),
        c.boolean_parameter(
            "allow-downgrade", "allow moving the channel to an older version (needs a reason)"
        ),
        Parameter(name="reason", value="", description="why (recorded in the channel history)"),
        c.boolean_parameter("dry-run", "check every gate, move nothing"),
        *c.registry_arguments(),
        *c.signing_arguments(),
    ]


def inputs() -> list[Parameter]:
    """The template's inputs: ``version`` is required, the rest default as the arguments."""
    return [
        Parameter(name=p.name) if p.value is None else Parameter(name=p.name, default=p.value)
        for p in arguments()
    ]


def promote_argv() -> list[str]:
    ip = c.input_parameter
    registry = RegistryParams(registry=ip("registry"), namespace=ip("namespace"))
    return [
        "promote",
        "--version",
        ip("version"),
        "--channel",
        ip("channel"),
        "--out",
        RESULT_FILE,
        *registry.argv(),
    ]


def build() -> WorkflowTemplate:
    ip = c.input_parameter
    wp = c.workflow_parameter
    with WorkflowTemplate(
        name=NAME,
        entrypoint=PROMOTE_TEMPLATE,
        arguments=[*arguments(), c.service_account_parameter()],
        on_exit="report",
        synchronization=c.channel_mutex(wp("channel")),
        active_deadline_seconds=WORKFLOW_DEADLINE_SECONDS,
        **c.workflow_settings(),
    ) as workflow:
        env: list[Env | SecretEnv] = [
            *c.registry_env(c.input_parameter),
            Env(name="ALGA_ALLOW_DOWNGRADE", value=ip("allow-downgrade")),
            Env(name="ALGA_REASON", value=ip("reason")),
            Env(name="ALGA_DRY_RUN", value=ip("dry-run")),
            Env(name="ALGA_RUN", value="{{workflow.name}}"),
        ]
        c.step_container(
            PROMOTE_TEMPLATE,
            image=ip("step-image"),
            args=promote_argv(),
            env=env,
            inputs=inputs(),
            outputs=[Parameter(name="result", value_from=m.ValueFrom(path=RESULT_FILE))],
            secrets=[c.signing_key(ip)],
        )
        c.report_container(
            "report",
            image=wp("step-image"),
            version=wp("version"),
            channel=wp("channel"),
            dry_run=wp("dry-run"),
        )
    return workflow


promote_template = build()
