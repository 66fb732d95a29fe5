"""``alga-appliance-release``: the release run, generated from ``steps.release.release_steps``.

The DAG::

    checkout -> control-plane -> charts -> bundle -> images -> control-plane-check
             -> manifest -> channel -> verify -> promote-stable

**One description of a release.** Every task but ``checkout`` and the two control-plane
tasks is one :class:`steps.release.Step` of :func:`steps.release.release_steps`, the list
that ``alga-release publish`` runs in-process, called here with Argo expressions as
parameters (:func:`placeholder_params`). Each such task's template runs
``alga-release <step.argv>`` exactly, in the same order; the task names are the step
names and each task depends on the one before. ``tests/unit/test_pipelines_release.py``
rebuilds the list and compares it with the rendered YAML task by task, and checks
that the local ``publish`` runs the same arguments once the expressions are filled in.

**Static arguments, toggles by environment.** What is a flag locally but a run-time
choice in Argo is passed as the CLI's environment default, so the argument lists stay
exactly ``release_steps``' lists: ``ALGA_DRY_RUN`` (the ``dry-run`` parameter) on every
step, ``ALGA_VERIFY_CHARTS`` (the ``verify-charts`` parameter) on the bundle step,
``ALGA_RUN`` (the workflow name) on the channel move only, so that the run is
recorded in the channel's audit record but never in the manifest (a re-run with the
same inputs must give the same manifest bytes), and ``ALGA_RUN_ID`` (the workflow name)
with ``ALGA_BUILDER_ID`` (this template's URI) on the manifest step, the runDetails of
the release's provenance attestation (the only run-dependent part of it). The steps
that ``release_steps`` drops in a dry run (``verify``) get a ``when`` on ``dry-run``
instead. A step whose dry run
the CLI does not yet take from ``ALGA_DRY_RUN`` would write in a "dry" run, so
:func:`dry_run_unsupported` asks the real parser at render time, and while any such
step is left the checkout task refuses ``dry-run=true`` (exit 2, before cloning).

**Files and parameters.** ``checkout`` clones ``source-repo`` at ``source-ref`` into a
per-run volume (``volumeClaimTemplates``; deleted when the workflow completes) and
writes the commit it checked out; that commit is the ``revision`` output parameter,
passed to the tasks whose arguments use it (``--revision``, as an input parameter). It
is the bare 40-hex commit: the bundle step normalises it to Flux's ``sha1:<hex>`` and the
manifest step can ``git log`` it for the release's date.
Each step writes its JSON result to ``/workspace/out/<step>.json`` (``--out``), where
the later steps read it, exactly as the local run does in its ``--out-dir``; the same
file is also the task's ``result`` output parameter (visible per node), and the exit
handler prints every result (the digests of what was published).

The clone is a partial clone (``--filter=blob:none``): the full commit history, so
that chart and overlay dates from ``git log`` match a local full clone, with file
contents fetched only for the checked-out tree. Every git command that talks to the
remote is tried up to ``GIT_ATTEMPTS`` times, waiting ``GIT_RETRY_DELAY`` seconds (doubling)
in between: the clone, the fetch of a ref the clone did not bring (a commit or
``refs/pull/...``) and the checkout, which fetches the tree's file contents lazily. When
they keep failing the script exits 75 (Argo then retries the whole task). A ref that does not
exist exits 2 at once: when a fetch fails, ``git ls-remote`` tells an unreachable remote
(transient, tried again) from a reachable one that has no such ref.

**Retry and resubmit.** A failed run keeps its workspace volume (``volumeClaimGC:
OnWorkflowSuccess``; the controller deletes it only after a success, or with the
Workflow), so ``argo retry`` of a failed release re-runs the failed tasks on the same
checkout and ``out/<step>.json`` files the succeeded tasks left. ``argo resubmit`` runs
everything again on a new volume; a re-run uploads only what is missing, so it is
always safe, and it is the recovery when the old volume is gone.

**No fan-out for charts.** One ``charts`` task publishes the six charts: locally the
whole step takes about 0.4 s, while a pod per chart costs seconds of scheduling, image
start and volume attach each; and the step checks every chart against the registry
before it pushes any, so one refused chart stops them all, which a fan-out would lose.

**Channel moves are serialised** by a mutex per channel
(``alga-appliance-channel-<channel>``), the one ``alga-appliance-promote`` takes:
here on the ``channel`` template only, not the whole workflow, so a release holds the
lock for the seconds of the move rather than the minutes of packaging (and release
runs never queue behind each other). ``promote=true`` runs the promote template by
``templateRef`` after ``verify``, for ``stable``, inside ``promote-stable``: a
DAG that takes the ``stable`` mutex itself, because a template reached by
``templateRef`` does not bring its workflow's workflow-level lock, and the promote
template cannot hold a template-level copy of it (the promote workflow would then wait
on its own lock).

**The control plane** (:mod:`pipelines.control_plane`): ``control-plane-mode`` pin
(default) skips the ``control-plane`` and ``control-plane-check`` tasks; copy and build
publish ``:<control-plane>`` before anything else is pushed, and the unchanged images
step resolves that tag for the manifest's ``controlPlane``; ``control-plane-check`` makes
sure it resolved what the task published. Like ``checkout``, these tasks are Argo-only:
``alga-release publish`` takes an image that is already published.

What this module does not do: decide anything a step could decide. Gates, versions
and digests are the steps'. The short scripts (checkout, the exit report in
:mod:`pipelines.common`, and the control-plane check) read every Argo value from the
environment, never from their own text, and are tested with real ``git``, ``sh`` and
``python3``.
"""

from __future__ import annotations

from dataclasses import replace

from hera.workflows import DAG, Env, Parameter, SecretEnv, Task, WorkflowTemplate
from hera.workflows import models as m

from pipelines import common as c
from pipelines import control_plane as cp
from pipelines import promote
from steps.release.plan import PublishParams, RegistryParams, Step, release_steps
from steps.release.provenance import workflow_template_builder_id

NAME = "alga-appliance-release"
ENTRYPOINT = "release"
CHECKOUT = "checkout"
PROMOTE_TASK = "promote-stable"
PROMOTE_CHANNEL = "stable"
WORKFLOW_DEADLINE_SECONDS = 3600
CHECKOUT_DEADLINE_SECONDS = 1200
REVISION_FILE = f"{c.OUT_DIR}/revision"
DEFAULT_SOURCE_REPO = "https://github.com/Nine-Minds/alga-psa.git"

# manifest key -> workflow parameter
IMAGE_PARAMETERS = {
    "algaCore": "alga-core-tag",
    "workflowWorker": "workflow-worker-tag",
    "emailService": "email-service-tag",
    "temporalWorker": "temporal-worker-tag",
}

# Input parameters a step template may use, and the task output each comes from.
STEP_INPUTS = {"revision": c.task_output(CHECKOUT, "revision")}

CHECKOUT_SCRIPT = (
    """\
set -eu
"""
    + c.signing_guard(CHECKOUT)
    + """\
if [ "$DRY_RUN" = true ] && [ -n "$DRY_RUN_UNSUPPORTED" ]; then
  echo "checkout: refusing a dry run: alga-release $DRY_RUN_UNSUPPORTED would still write" \\
    "(they do not read ALGA_DRY_RUN yet)" >&2
  exit 2
fi
"""
    + cp.CHECKOUT_GUARD
    + """\
case "$SOURCE_REF" in
  ''|-*) echo "checkout: invalid source-ref '$SOURCE_REF'" >&2; exit 2 ;;
esac
# again WHAT: after a failed try of WHAT, wait and return 0, or return 1 when none is left
# (GIT_ATTEMPTS tries of each WHAT, GIT_RETRY_DELAY seconds doubling in between).
again() {
  if [ "$1" != "${failing:-}" ]; then
    failing=$1
    try=1
    pause=$GIT_RETRY_DELAY
  fi
  if [ "$try" -ge "$GIT_ATTEMPTS" ]; then
    echo "checkout: $1 failed $try times: giving up with exit 75 (transient)" >&2
    return 1
  fi
  echo "checkout: $1 failed (try $try of $GIT_ATTEMPTS), again in ${pause}s" >&2
  sleep "$pause"
  try=$((try + 1))
  pause=$((pause * 2))
}
mkdir -p "$OUT_DIR"
until rm -rf "$SOURCE_DIR" \\
    && git clone --quiet --filter=blob:none --no-checkout -- "$SOURCE_REPO" "$SOURCE_DIR"; do
  again "git clone of $SOURCE_REPO" || exit 75
done
cd "$SOURCE_DIR"
commit=$(git rev-parse --verify --quiet "refs/remotes/origin/$SOURCE_REF^{commit}" \\
  || git rev-parse --verify --quiet "refs/tags/$SOURCE_REF^{commit}" \\
  || git rev-parse --verify --quiet "$SOURCE_REF^{commit}" || true)
if [ -z "$commit" ]; then
  # Not a branch, tag or commit of the clone: a ref such as refs/pull/N/head, or a commit no
  # branch reaches. A failed fetch is "not found" (exit 2, at once) only on evidence from a
  # remote that answers: it lists no such ref, or says it has no such commit.
  full_sha=$(printf '%s' "$SOURCE_REF" | grep -Ex '[0-9a-f]{40}' || true)
  fetch_error="${TMPDIR:-/tmp}/checkout-fetch.err"
  until git fetch --quiet --filter=blob:none origin "$SOURCE_REF" 2>"$fetch_error"; do
    cat "$fetch_error" >&2
    if [ -z "$full_sha" ]; then
      listed=0
      git ls-remote --quiet --exit-code origin "$SOURCE_REF" >/dev/null || listed=$?
    elif grep -Eqi "not our ref|unadvertised object|no such remote ref|couldn't find remote ref" \\
        "$fetch_error" && git ls-remote --quiet origin HEAD >/dev/null; then
      listed=2
    else
      listed=1
    fi
    if [ "$listed" = 2 ]; then
      echo "checkout: source-ref '$SOURCE_REF' not found in $SOURCE_REPO" >&2
      exit 2
    fi
    again "git fetch of $SOURCE_REF" || exit 75
  done
  rm -f "$fetch_error"
  commit=$(git rev-parse --verify --quiet "FETCH_HEAD^{commit}" || true)
fi
if [ -z "$commit" ]; then
  echo "checkout: source-ref '$SOURCE_REF' in $SOURCE_REPO is not a commit" >&2
  exit 2
fi
until git -c advice.detachedHead=false checkout --quiet --force --detach "$commit"; do
  again "git checkout of $commit (fetching its files)" || exit 75
done
printf '%s' "$commit" > "$OUT_DIR/revision"
echo "checkout: $SOURCE_REPO $SOURCE_REF -> $commit"
"""
)


def placeholder_params(*, dry_run: bool = False) -> PublishParams:
    """The release's parameters as Argo expressions (what each task's arguments hold)."""
    wp = c.workflow_parameter
    return PublishParams(
        source=c.SOURCE_DIR,
        version=wp("version"),
        channel=wp("channel"),
        images={key: wp(name) for key, name in IMAGE_PARAMETERS.items()},
        control_plane=wp("control-plane"),
        values_profile=wp("values-profile"),
        source_url=wp("source-repo"),
        revision=c.input_parameter("revision"),
        dry_run=dry_run,
        registry=RegistryParams(registry=wp("registry"), namespace=wp("namespace")),
    )


def planned_steps() -> list[Step]:
    """The steps every release run runs (the dry-run toggle is an env var, see above)."""
    return release_steps(placeholder_params(), c.OUT_DIR)


def dry_run_skipped() -> set[str]:
    """Steps that ``release_steps`` leaves out of a dry run."""
    params = placeholder_params()
    kept = {s.name for s in release_steps(replace(params, dry_run=True), c.OUT_DIR)}
    return {s.name for s in release_steps(params, c.OUT_DIR)} - kept


def dry_run_unsupported() -> list[str]:
    """Steps that change in a dry run but do not read ``ALGA_DRY_RUN`` from the environment.

    Found by asking the real ``alga-release`` parser: each such step's argument list
    (as Argo passes it) is parsed with ``ALGA_DRY_RUN=true``. While any is left, the
    checkout task refuses ``dry-run=true`` (exit 2) rather than let that step write.
    """
    dry = {s.name: s.argv for s in release_steps(placeholder_params(dry_run=True), c.OUT_DIR)}
    changed = [s for s in planned_steps() if s.name in dry and dry[s.name] != s.argv]
    parser = c.dry_run_parser()
    return [s.name for s in changed if not c.reads_dry_run(parser, s.name, s.argv)]


def step_inputs(step: Step) -> list[str]:
    """The input parameters (of :data:`STEP_INPUTS`) that ``step``'s arguments use."""
    return [name for name in STEP_INPUTS if any(c.input_parameter(name) in a for a in step.argv)]


def arguments() -> list[Parameter]:
    return [
        Parameter(
            name="source-repo",
            value=DEFAULT_SOURCE_REPO,
            description="git URL of the alga-psa repository",
        ),
        Parameter(name="source-ref", value="main", description="branch, tag or commit to release"),
        Parameter(name="version", description="release version (the manifest's :<version> tag)"),
        c.channel_parameter("nightly", "channel to move to the new release"),
        *[
            Parameter(name=name, description=f"{key} image tag (bare tag, e.g. a short git SHA)")
            for key, name in IMAGE_PARAMETERS.items()
        ],
        Parameter(
            name=cp.TAG,
            description="control-plane image: pin mode, a tag or sha256:<digest> already in "
            "<registry>/<namespace>/alga-appliance-control-plane; copy and build mode, the tag "
            "to publish (immutable, e.g. the short source revision). Pinned by digest",
        ),
        *cp.arguments(),
        Parameter(
            name="values-profile",
            value="single-node",
            description="profile whose values go into the manifest",
        ),
        c.boolean_parameter(
            "promote",
            f"after a successful release, also promote it to {PROMOTE_CHANNEL}",
        ),
        c.boolean_parameter(
            "dry-run", "check every step and gate, write nothing (steps read ALGA_DRY_RUN)"
        ),
        c.boolean_parameter(
            "verify-charts",
            "the bundle has Flux verify each chart's signature with the Secret "
            "alga-appliance-trusted-keys, which appliances with trusted keys create in "
            "flux-system (the bundle step reads ALGA_VERIFY_CHARTS)",
        ),
        *c.registry_arguments(),
        *c.signing_arguments(),
        cp.dind_argument(),
    ]


def step_env(step: Step) -> list[Env | SecretEnv]:
    env: list[Env | SecretEnv] = [
        *c.registry_env(c.workflow_parameter),
        Env(name="ALGA_DRY_RUN", value=c.workflow_parameter("dry-run")),
    ]
    if step.name == "channel":
        env.append(Env(name="ALGA_RUN", value="{{workflow.name}}"))
    if step.name == "bundle":
        env.append(Env(name="ALGA_VERIFY_CHARTS", value=c.workflow_parameter("verify-charts")))
    if step.name == "manifest":
        # The provenance attestation's runDetails (it is made only when the step signs).
        env.append(Env(name="ALGA_RUN_ID", value="{{workflow.name}}"))
        env.append(Env(name="ALGA_BUILDER_ID", value=workflow_template_builder_id(NAME)))
    return env


def build() -> WorkflowTemplate:
    wp = c.workflow_parameter
    image = wp("step-image")
    steps = planned_steps()
    skipped_in_dry_run = dry_run_skipped()
    not_dry_run = c.quoted_equals(wp("dry-run"), "false")
    with WorkflowTemplate(
        name=NAME,
        entrypoint=ENTRYPOINT,
        arguments=[*arguments(), c.service_account_parameter()],
        on_exit="report",
        active_deadline_seconds=WORKFLOW_DEADLINE_SECONDS,
        **c.workflow_settings(),
        volume_claim_templates=[
            m.PersistentVolumeClaim(
                metadata=m.ObjectMeta(name=c.WORKSPACE_VOLUME),
                spec=m.PersistentVolumeClaimSpec(
                    access_modes=["ReadWriteOnce"],
                    resources=m.VolumeResourceRequirements(
                        requests={"storage": m.Quantity(c.WORKSPACE_SIZE)}
                    ),
                ),
            )
        ],
        # Kept after a failure, for `argo retry` (see the module docstring).
        volume_claim_gc=m.VolumeClaimGC(strategy="OnWorkflowSuccess"),
    ) as workflow:
        checkout = c.step_container(
            CHECKOUT,
            image=image,
            command=("sh", "-c"),
            args=[CHECKOUT_SCRIPT],
            env=[
                Env(name="SOURCE_REPO", value=wp("source-repo")),
                Env(name="SOURCE_REF", value=wp("source-ref")),
                Env(name="SOURCE_DIR", value=c.SOURCE_DIR),
                Env(name="OUT_DIR", value=c.OUT_DIR),
                Env(name="DRY_RUN", value=wp("dry-run")),
                Env(name="DRY_RUN_UNSUPPORTED", value=" ".join(dry_run_unsupported())),
                Env(name="GIT_ATTEMPTS", value=str(c.GIT_ATTEMPTS)),
                Env(name="GIT_RETRY_DELAY", value=str(c.GIT_RETRY_DELAY_SECONDS)),
                *cp.checkout_env(),
            ],
            outputs=[Parameter(name="revision", value_from=m.ValueFrom(path=REVISION_FILE))],
            workspace=True,
            deadline_seconds=CHECKOUT_DEADLINE_SECONDS,
            secrets=[c.signing_key_check(wp)],
        )
        templates = {
            step.name: c.step_container(
                step.name,
                image=image,
                args=step.argv,
                env=step_env(step),
                inputs=[Parameter(name=name) for name in step_inputs(step)],
                outputs=[Parameter(name="result", value_from=m.ValueFrom(path=step.output))],
                workspace=True,
                synchronization=c.channel_mutex(wp("channel")) if step.name == "channel" else None,
                secrets=[c.signing_key(wp)],
            )
            for step in steps
        }
        control_plane = cp.control_plane_dag(image)
        outputs = {step.name: step.output for step in steps}
        control_plane_check = cp.check_template(image, outputs[cp.CHECK_AFTER])
        with DAG(name=PROMOTE_TASK, synchronization=c.channel_mutex(PROMOTE_CHANNEL)) as wrapper:
            Task(
                name="promote",
                template_ref=m.TemplateRef(name=promote.NAME, template=promote.PROMOTE_TEMPLATE),
                arguments=[
                    Parameter(name="version", value=wp("version")),
                    Parameter(name="channel", value=PROMOTE_CHANNEL),
                    Parameter(name="dry-run", value=wp("dry-run")),
                    *[Parameter(name=n, value=wp(n)) for n in c.registry_parameter_names()],
                    *[Parameter(name=n, value=wp(n)) for n in c.signing_parameter_names()],
                ],
            )
        c.report_container(
            "report",
            image=image,
            version=wp("version"),
            channel=wp("channel"),
            dry_run=wp("dry-run"),
            results=[cp.TASK, *(s.name for s in steps)],
        )
        with DAG(name=ENTRYPOINT):
            previous = Task(name=CHECKOUT, template=checkout)
            task = Task(name=cp.TASK, template=control_plane, when=cp.not_pinned())
            previous >> task
            previous = task
            for step in steps:
                task = Task(
                    name=step.name,
                    template=templates[step.name],
                    arguments=[
                        Parameter(name=name, value=STEP_INPUTS[name]) for name in step_inputs(step)
                    ]
                    or None,
                    when=not_dry_run if step.name in skipped_in_dry_run else None,
                )
                previous >> task
                previous = task
                if step.name == cp.CHECK_AFTER:
                    task = Task(
                        name=cp.CHECK_TASK, template=control_plane_check, when=cp.not_pinned()
                    )
                    previous >> task
                    previous = task
            promote_task = Task(
                name=PROMOTE_TASK,
                template=wrapper,
                when=f"{c.quoted_equals(wp('promote'), 'true')} && {not_dry_run}",
            )
            previous >> promote_task
    return workflow


release_template = build()
