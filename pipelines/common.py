"""Shared defaults of every Argo template in this package: each decided once, here.

What lives here (and nowhere else):

- **The step image.** Every pod runs one image, built from this repository's
  ``Dockerfile`` or by ``make step-image`` (Python, this package, git and kubectl; non-root
  uid 10001), referenced by digest only: the ``step-image`` workflow parameter. Its default
  is the digest recorded by ``make workflows STEP_IMAGE=<repo>@sha256:...``
  (:mod:`pipelines.pins`); until one is recorded the parameter has no default, so Argo
  refuses a submission without ``-p step-image=...`` before any pod is created.
- **The Argo version.** :data:`ARGO_MINIMUM` (3.6) is the oldest Argo Workflows the
  templates are written for (``synchronization.mutexes``); no field newer than it is used
  (``tests/integration/test_argo_lint.py`` lints with the real ``argo`` CLI at 3.6 and at
  3.7), and each template says so in its ``workflows.argoproj.io/version`` annotation.
- **The service account.** Pods run as the ``service-account`` parameter (default
  :data:`SERVICE_ACCOUNT`, which ``workflows-generated/rbac.yaml`` ships with exactly the
  permissions the templates need; see :mod:`pipelines.rbac`).
- **Registry credentials.** ``ALGA_REGISTRY_USERNAME`` is the ``registry-username``
  parameter (default ``robertisaacs``); ``ALGA_REGISTRY_PASSWORD`` comes from the
  Kubernetes secret named by ``registry-secret`` (default ``github-token``), key
  ``registry-secret-key`` (default ``token``), by ``secretKeyRef`` only. The password is
  never a parameter, an argument or a literal.
- **The signing key.** Every step that signs or checks signatures (all ``alga-release``
  steps but ``control-plane check``) mounts the Kubernetes secret named by
  ``signing-secret`` (default :data:`SIGNING_SECRET`), read-only, with only the key
  ``signing-secret-key`` (default ``cosign.key``, as ``cosign generate-key-pair
  k8s://NS/NAME`` names it) as the file :data:`SIGNING_KEY_FILE`, which
  ``ALGA_SIGNING_KEY`` names; the key's password is ``ALGA_SIGNING_KEY_PASSWORD`` from the
  key ``signing-secret-password-key`` (default ``cosign.password``) by ``secretKeyRef``
  (:func:`signing_key`). Both are ``optional`` on purpose: a missing secret (or key) of a
  volume keeps the pod in ``ContainerCreating``, and of a ``secretKeyRef`` in
  ``CreateContainerConfigError``, until the step's deadline (Argo only copies the waiting
  reason into the node's message: ``getPendingReason`` in ``workflow/controller/
  operator.go``, 3.6 to 4.x). Optional, the pod starts and the first task fails at once
  (exit 2) with a message naming the secret: the release's checkout runs
  :func:`signing_guard` before cloning, and ``alga-release`` itself says so from
  ``ALGA_SIGNING_KEY_ORIGIN`` (promote, whose only task is the move). A password is not
  required: an unencrypted PKCS#8 key has none, and an encrypted key without it stops the
  step before any push (exit 2). The secret's name and keys are parameters, like the
  registry secret's (see :mod:`pipelines.control_plane` for why that secret's name is
  fixed): nothing read from this one ever leaves the pod (a key signs, a password opens
  the key), so naming another secret can only make the step fail.
- **Retries.** Only exit code 75 (transient registry or network failure, the CLI's
  contract) is retried by Argo, at once and at most :data:`RETRY_LIMIT` times; 2 (bad
  input), 3 (refused by a gate) and 1 fail at once. There is deliberately no
  ``retryStrategy.backoff``: Argo's controller (``processNodeRetries`` in
  ``workflow/controller/operator.go``, 3.6 to 4.x) waits the backoff *before* it evaluates
  ``retryStrategy.expression`` or the retry policy, so any backoff would delay every fatal
  exit too. The waiting is done inside the step instead: the OCI client retries 429, 5xx
  and dropped connections with exponential backoff (:func:`step_retry_env`: up to 8 tries,
  1 s doubling, at most 8 s each) before it gives up with 75, and the checkout retries git
  the same way (:data:`GIT_ATTEMPTS` tries).
- **Retry and resubmit.** The workspace volume is kept when a run fails
  (``volumeClaimGC: OnWorkflowSuccess``), so ``argo retry`` re-runs the failed steps on the
  files the succeeded ones left (the checkout, ``out/<step>.json``); ``argo resubmit`` starts
  over with a fresh volume and is always safe, because a re-run writes only what is missing.
- **Pod hardening.** Non-root (uid/gid 10001, ``fsGroup`` so the workspace volume is
  writable), read-only root filesystem, no privilege escalation, all capabilities
  dropped, the runtime's default seccomp profile. ``HOME``, ``TMPDIR`` and the XDG
  folders point at an ``emptyDir`` mounted on ``/tmp``; nothing else is writable but
  the workspace volume. The one exception is not a step container: the release's
  control-plane build has a privileged docker-in-docker sidecar (see
  :mod:`pipelines.control_plane`); :func:`step_container` never relaxes the step's own
  hardening for it.
- **Limits in time and space.** ``activeDeadlineSeconds`` on every step and on each
  workflow; ``podGC`` deletes the pods of successful steps (failed ones stay for
  ``kubectl logs`` until the workflow is deleted).
- **The channel mutex.** :func:`channel_mutex` names the one lock per channel that
  every channel move takes: ``alga-appliance-channel-<channel>``.
- **The exit report.** :func:`report_container` logs the outcome of a run and, for
  the release, each step's JSON result (what was published, with digests).
- **``when`` expressions** are built by :func:`quoted_equals` (and
  :func:`quoted_not_equals`), which quote both sides,
  so an empty or odd parameter value compares as a string instead of breaking the
  expression.

Every template is self-contained (its own security context, volumes, env, retry and
deadline) rather than inherited from workflow-level ``templateDefaults``: a template
that another workflow runs through ``templateRef`` (the release runs the promote
template that way) takes only the template, not its workflow's defaults.

This module does not define a workflow: ``hera generate yaml`` renders nothing from it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hera.workflows import Container, EmptyDirVolume, Env, Parameter, RetryStrategy, SecretEnv
from hera.workflows import models as m

from pipelines import pins, rbac

# -- the step image ------------------------------------------------------------------

STEP_IMAGE_REPOSITORY = "ghcr.io/nine-minds/alga-release-step"
# The digest `make workflows STEP_IMAGE=...` recorded in pipelines/pins.json, or None:
# then `step-image` has no default and a submission must pass it.
STEP_IMAGE: str | None = pins.load().step_image
ENTRYPOINT = "alga-release"
STEP_UID = 10001

# -- Argo ------------------------------------------------------------------------------

ARGO_MINIMUM = "3.6"  # synchronization.mutexes; nothing newer (see the module docstring)
VERSION_ANNOTATION = "workflows.argoproj.io/version"
SERVICE_ACCOUNT = rbac.SERVICE_ACCOUNT  # shipped in workflows-generated/rbac.yaml

# -- registry and credentials ---------------------------------------------------------

DEFAULT_REGISTRY = "ghcr.io"
DEFAULT_NAMESPACE = "nine-minds"
DEFAULT_REGISTRY_USERNAME = "robertisaacs"
REGISTRY_SECRET = "github-token"  # default of the registry-secret parameter
REGISTRY_SECRET_KEY = "token"  # default of registry-secret-key: the key holding the token

# -- the signing key (its own secret: never the registry token's) -----------------------

SIGNING_SECRET = "alga-appliance-signing"  # default of the signing-secret parameter
SIGNING_SECRET_KEY = "cosign.key"  # default of signing-secret-key: the private key
SIGNING_SECRET_PASSWORD_KEY = "cosign.password"  # default of signing-secret-password-key
SIGNING_VOLUME = "signing-key"
SIGNING_DIR = "/var/run/secrets/alga-release/signing"
SIGNING_KEY_FILE = f"{SIGNING_DIR}/cosign.key"  # whatever the secret's key is called

CHANNELS = ("nightly", "stable")
BOOLEAN = ("false", "true")

# -- files and volumes ------------------------------------------------------------------

SCRATCH_VOLUME = "scratch"
SCRATCH_DIR = "/tmp"
SCRATCH_SIZE = "1Gi"
WORKSPACE_VOLUME = "workspace"
WORKSPACE_DIR = "/workspace"
WORKSPACE_SIZE = "4Gi"
SOURCE_DIR = f"{WORKSPACE_DIR}/src"
OUT_DIR = f"{WORKSPACE_DIR}/out"

# -- retries and deadlines --------------------------------------------------------------

EXIT_TRANSIENT = 75
RETRY_LIMIT = 3  # so at most 4 attempts, each started at once (no Argo backoff: see above)
# Inside each attempt: the OCI client's own bounded retries (steps/oci RetryPolicy; each
# wait doubles from the base delay and is capped at 8 s): 1+2+4+8+8+8+8 s at most.
STEP_RETRY_ATTEMPTS = 8
STEP_RETRY_BASE_DELAY_SECONDS = 1
# The checkout's git commands: tries, and the first wait (doubling) between them.
GIT_ATTEMPTS = 4
GIT_RETRY_DELAY_SECONDS = 5
STEP_DEADLINE_SECONDS = 900
REPORT_DEADLINE_SECONDS = 120

# -- naming ----------------------------------------------------------------------------

LABEL_PREFIX = "alga-appliance/"
MUTEX_PREFIX = "alga-appliance-channel-"


def workflow_parameter(name: str) -> str:
    """``{{workflow.parameters.<name>}}``."""
    return "{{workflow.parameters." + name + "}}"


def input_parameter(name: str) -> str:
    """``{{inputs.parameters.<name>}}``."""
    return "{{inputs.parameters." + name + "}}"


def task_output(task: str, name: str) -> str:
    """``{{tasks.<task>.outputs.parameters.<name>}}``."""
    return "{{tasks." + task + ".outputs.parameters." + name + "}}"


def quoted_equals(expression: str, value: str) -> str:
    """A ``when`` test with both sides quoted: ``'<expression>' == '<value>'``."""
    return f"'{expression}' == '{value}'"


def quoted_not_equals(expression: str, value: str) -> str:
    """A ``when`` test with both sides quoted: ``'<expression>' != '<value>'``."""
    return f"'{expression}' != '{value}'"


def channel_mutex(channel: str) -> m.Synchronization:
    """The lock every move of ``channel`` takes (``channel`` may be an expression)."""
    return m.Synchronization(mutexes=[m.Mutex(name=f"{MUTEX_PREFIX}{channel}")])


# -- parameters --------------------------------------------------------------------------


def registry_arguments() -> list[Parameter]:
    """The workflow parameters every template in this package shares."""
    return [
        Parameter(
            name="registry",
            value=DEFAULT_REGISTRY,
            description="registry host the release is published to",
        ),
        Parameter(
            name="namespace",
            value=DEFAULT_NAMESPACE,
            description="namespace under the registry",
        ),
        Parameter(
            name="registry-username",
            value=DEFAULT_REGISTRY_USERNAME,
            description="registry user; the password is the registry secret's token",
        ),
        step_image_parameter(),
        Parameter(
            name="registry-secret",
            value=REGISTRY_SECRET,
            description="Kubernetes secret (in the workflow namespace) holding the registry "
            "token; whoever submits a run chooses which secret goes to the registry named",
        ),
        Parameter(
            name="registry-secret-key",
            value=REGISTRY_SECRET_KEY,
            description="key of registry-secret that holds the token",
        ),
    ]


def signing_arguments() -> list[Parameter]:
    """Where the signing key is: the secret and its two keys (never the key itself)."""
    return [
        Parameter(
            name="signing-secret",
            value=SIGNING_SECRET,
            description="Kubernetes secret (in the workflow namespace) holding the release "
            "signing key (ECDSA P-256: cosign's encrypted key file or a PKCS#8 PEM) and its "
            "password; required: a run without it fails in its first task, before any push",
        ),
        Parameter(
            name="signing-secret-key",
            value=SIGNING_SECRET_KEY,
            description="key of signing-secret that holds the private key",
        ),
        Parameter(
            name="signing-secret-password-key",
            value=SIGNING_SECRET_PASSWORD_KEY,
            description="key of signing-secret that holds the key's password (may be absent "
            "for an unencrypted PKCS#8 key)",
        ),
    ]


def signing_parameter_names() -> list[str]:
    """Names of :func:`signing_arguments`, in order."""
    return [p.name for p in signing_arguments() if p.name]


def step_image_parameter() -> Parameter:
    """``step-image``: the recorded pin as default, or required while there is none."""
    description = "the alga-release step image, pinned by digest (<repo>@sha256:<hex>)"
    if STEP_IMAGE is None:
        return Parameter(
            name="step-image",
            description=f"{description}. REQUIRED: no image is recorded yet; pass "
            "-p step-image=..., or render with `make workflows STEP_IMAGE=...`",
        )
    return Parameter(name="step-image", value=STEP_IMAGE, description=description)


def service_account_parameter() -> Parameter:
    return Parameter(
        name="service-account",
        value=SERVICE_ACCOUNT,
        description="ServiceAccount every pod runs as (workflows-generated/rbac.yaml ships "
        f"{SERVICE_ACCOUNT} with the permissions the executor needs)",
    )


def registry_parameter_names() -> list[str]:
    """Names of :func:`registry_arguments`, in order."""
    return [p.name for p in registry_arguments() if p.name]


def boolean_parameter(name: str, description: str, default: str = "false") -> Parameter:
    return Parameter(name=name, value=default, enum=list(BOOLEAN), description=description)


def channel_parameter(default: str, description: str) -> Parameter:
    return Parameter(name="channel", value=default, enum=list(CHANNELS), description=description)


# -- environment -------------------------------------------------------------------------


def scratch_env() -> list[Env]:
    """Writable HOME, TMPDIR and XDG folders on the scratch ``emptyDir``."""
    return [
        Env(name="HOME", value=SCRATCH_DIR),
        Env(name="TMPDIR", value=SCRATCH_DIR),
        Env(name="XDG_CACHE_HOME", value=f"{SCRATCH_DIR}/.cache"),
        Env(name="XDG_CONFIG_HOME", value=f"{SCRATCH_DIR}/.config"),
        Env(name="PYTHONDONTWRITEBYTECODE", value="1"),
    ]


def registry_env(parameter: Callable[[str], str]) -> list[Env | SecretEnv]:
    """Registry credentials: the user by value, the token by ``secretKeyRef`` only.

    ``parameter`` names where the values come from: :func:`workflow_parameter` or
    :func:`input_parameter` (the promote template, which another workflow may run).
    """
    return [
        Env(name="ALGA_REGISTRY_USERNAME", value=parameter("registry-username")),
        SecretEnv(
            name="ALGA_REGISTRY_PASSWORD",
            secret_name=parameter("registry-secret"),
            secret_key=parameter("registry-secret-key"),
        ),
    ]


@dataclass(frozen=True)
class MountedSecret:
    """A secret a container reads as files: the volume, its read-only mount, and the env."""

    volume: m.Volume
    mount: m.VolumeMount
    env: tuple[Env | SecretEnv, ...]


def _signing_mount(parameter: Callable[[str], str], *env: Env | SecretEnv) -> MountedSecret:
    """The signing secret's one key as a read-only file, with ``env``."""
    volume = m.Volume(
        name=SIGNING_VOLUME,
        secret=m.SecretVolumeSource(
            secret_name=parameter("signing-secret"),
            items=[m.KeyToPath(key=parameter("signing-secret-key"), path="cosign.key")],
            default_mode=0o440,  # readable by the step's group (fsGroup), no one else
            optional=True,  # missing: the first task says so (see the module docstring)
        ),
    )
    mount = m.VolumeMount(name=SIGNING_VOLUME, mount_path=SIGNING_DIR, read_only=True)
    return MountedSecret(volume=volume, mount=mount, env=env)


def signing_origin(parameter: Callable[[str], str]) -> str:
    """Where the key file comes from, in words (what a missing key's message names)."""
    return (
        f"the Kubernetes secret '{parameter('signing-secret')}' (key "
        f"'{parameter('signing-secret-key')}') in the workflow's namespace"
    )


def signing_key(parameter: Callable[[str], str]) -> MountedSecret:
    """The signing key for ``alga-release``: the mounted file, its password, its origin.

    ``parameter`` is :func:`workflow_parameter` or :func:`input_parameter`, as for
    :func:`registry_env`. Give it to :func:`step_container` (``secrets=``).
    """
    return _signing_mount(
        parameter,
        Env(name="ALGA_SIGNING_KEY", value=SIGNING_KEY_FILE),
        SecretEnv(
            name="ALGA_SIGNING_KEY_PASSWORD",
            secret_name=parameter("signing-secret"),
            secret_key=parameter("signing-secret-password-key"),
            optional=True,  # an unencrypted key has none; a needed one missing is exit 2
        ),
        Env(name="ALGA_SIGNING_KEY_ORIGIN", value=signing_origin(parameter)),
    )


def signing_key_create(parameter: Callable[[str], str]) -> str:
    """The ``kubectl`` command that creates the secret :func:`signing_key` reads."""
    return (
        f"kubectl create secret generic {parameter('signing-secret')} "
        f"--from-file={parameter('signing-secret-key')}=release.key "
        f"--from-file={parameter('signing-secret-password-key')}=release.password"
    )


def signing_key_check(parameter: Callable[[str], str]) -> MountedSecret:
    """The signing key for :func:`signing_guard` (a script): the file and what to say when
    it is missing; no password."""
    return _signing_mount(
        parameter,
        Env(name="SIGNING_KEY_FILE", value=SIGNING_KEY_FILE),
        Env(name="SIGNING_KEY_ORIGIN", value=signing_origin(parameter)),
        Env(name="SIGNING_KEY_CREATE", value=signing_key_create(parameter)),
    )


def signing_guard(task: str) -> str:
    """Shell: exit 2 naming the secret unless :func:`signing_key_check`'s file is there."""
    return f"""\
if [ ! -s "$SIGNING_KEY_FILE" ]; then
  echo "{task}: no signing key: $SIGNING_KEY_ORIGIN is missing (no such secret, or no" \\
    "such key in it), and every release is signed. Create it (alga-release keys generate" \\
    "makes release.key): $SIGNING_KEY_CREATE; or pass -p signing-secret=<name>" >&2
  exit 2
fi
"""


def step_retry_env() -> list[Env | SecretEnv]:
    """The OCI client's own retries inside one attempt (the waiting Argo does not do)."""
    return [
        Env(name="ALGA_RETRY_ATTEMPTS", value=str(STEP_RETRY_ATTEMPTS)),
        Env(name="ALGA_RETRY_BASE_DELAY", value=str(STEP_RETRY_BASE_DELAY_SECONDS)),
    ]


# -- pods ---------------------------------------------------------------------------------


def retry_strategy() -> RetryStrategy:
    """Retry exit code 75 only (``retryPolicy: Always`` + the exit-code expression).

    No ``backoff``: the controller would wait it before evaluating the expression, i.e.
    after every failure, fatal or not. Without it the expression is evaluated as soon as
    the failed attempt is seen, and a false one fails the node then.
    """
    return RetryStrategy(
        limit=RETRY_LIMIT,
        retry_policy="Always",
        expression=f"asInt(lastRetry.exitCode) == {EXIT_TRANSIENT}",
    )


def pod_security_context() -> m.PodSecurityContext:
    return m.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=STEP_UID,
        run_as_group=STEP_UID,
        fs_group=STEP_UID,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def container_security_context() -> m.SecurityContext:
    return m.SecurityContext(
        run_as_non_root=True,
        read_only_root_filesystem=True,
        allow_privilege_escalation=False,
        capabilities=m.Capabilities(drop=["ALL"]),
    )


def resources() -> m.ResourceRequirements:
    return m.ResourceRequirements(
        requests={"cpu": m.Quantity("100m"), "memory": m.Quantity("256Mi")},
        limits={"memory": m.Quantity("1Gi")},
    )


def step_container(
    name: str,
    *,
    image: str,
    args: Sequence[str],
    env: Sequence[Env | SecretEnv] = (),
    command: Sequence[str] = (ENTRYPOINT,),
    inputs: Sequence[Parameter] = (),
    outputs: Sequence[Parameter] = (),
    workspace: bool = False,
    read_only_workspace: bool = False,
    synchronization: m.Synchronization | None = None,
    retry: bool = True,
    deadline_seconds: int = STEP_DEADLINE_SECONDS,
    scratch_size: str = SCRATCH_SIZE,
    sidecars: Sequence[m.UserContainer] = (),
    sidecar_volumes: Sequence[m.Volume] = (),
    secrets: Sequence[MountedSecret] = (),
) -> Container:
    """A container template with every shared default; must be called in a workflow context.

    A container that runs ``alga-release`` also gets :func:`step_retry_env`. ``command`` is
    always explicit (Argo's emissary executor would otherwise look the
    image's entrypoint up in the registry). ``sidecars`` bring their own security
    context and mount only ``sidecar_volumes``, which the step container does not mount:
    the hardening here is the step container's and the pod's, never relaxed for a sidecar.
    ``secrets`` (e.g. :func:`signing_key`) are mounted read-only, with their env.
    """
    mounts = (
        [
            m.VolumeMount(
                name=WORKSPACE_VOLUME,
                mount_path=WORKSPACE_DIR,
                read_only=read_only_workspace or None,
            )
        ]
        if workspace
        else []
    ) + [secret.mount for secret in secrets]
    return Container(
        name=name,
        image=image,
        image_pull_policy="IfNotPresent",
        command=list(command),
        args=list(args),
        env=[
            *scratch_env(),
            *(step_retry_env() if command[0] == ENTRYPOINT else []),
            *env,
            *(e for secret in secrets for e in secret.env),
        ],
        inputs=list(inputs) or None,
        outputs=list(outputs) or None,
        volumes=[
            EmptyDirVolume(
                name=SCRATCH_VOLUME, mount_path=SCRATCH_DIR, size_limit=m.Quantity(scratch_size)
            ),
            *sidecar_volumes,
            *(secret.volume for secret in secrets),
        ],
        volume_mounts=mounts or None,
        security_context=container_security_context(),
        pod_security_context=pod_security_context(),
        resources=resources(),
        retry_strategy=retry_strategy() if retry else None,
        active_deadline_seconds=deadline_seconds,
        synchronization=synchronization,
        sidecars=list(sidecars) or None,
    )


def dry_run_parser() -> argparse.ArgumentParser:
    """The real ``alga-release`` parser, built with ``ALGA_DRY_RUN=true`` in the environment.

    Options read their environment defaults when the parser is built, so parsing a
    step's arguments with it shows whether the step would honour Argo's dry-run toggle.
    """
    from steps.cli.app import build_parser

    saved = os.environ.get("ALGA_DRY_RUN")
    os.environ["ALGA_DRY_RUN"] = "true"
    try:
        return build_parser()
    finally:
        if saved is None:
            del os.environ["ALGA_DRY_RUN"]
        else:
            os.environ["ALGA_DRY_RUN"] = saved


def reads_dry_run(parser: argparse.ArgumentParser, name: str, argv: Sequence[str]) -> bool:
    """Whether ``argv`` parsed by :func:`dry_run_parser` comes out as a dry run."""
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # argparse already printed why
        raise RuntimeError(f"alga-release rejects the {name} task: {list(argv)}") from exc
    return bool(getattr(args, "dry_run", None))


def pod_gc() -> m.PodGC:
    """Delete the pods of successful steps; keep failed ones for their logs."""
    return m.PodGC(strategy="OnPodSuccess")


def workflow_labels(**expressions: str) -> m.WorkflowMetadata:
    """Workflow labels from expressions (``labelsFrom``), e.g. the version and channel."""
    return m.WorkflowMetadata(
        labels_from={
            f"{LABEL_PREFIX}{key}": m.LabelValueFrom(expression=expression)
            for key, expression in expressions.items()
        }
    )


def workflow_settings() -> dict[str, Any]:
    """What every WorkflowTemplate here sets the same way (keyword arguments for Hera).

    Labels, the minimum Argo version annotation, the service account (a parameter), pod
    GC, and the version/channel labels of each run.
    """
    return {
        "labels": {"app.kubernetes.io/part-of": "alga-appliance"},
        "annotations": {VERSION_ANNOTATION: f">= {ARGO_MINIMUM}.0"},
        "service_account_name": workflow_parameter("service-account"),
        "pod_gc": pod_gc(),
        "workflow_metadata": workflow_labels(
            version="workflow.parameters.version", channel="workflow.parameters.channel"
        ),
    }


# -- the exit report ------------------------------------------------------------------------

REPORT_SCRIPT = """\
echo "$WORKFLOW_NAME: $WORKFLOW_STATUS (version $VERSION, channel $CHANNEL, dry-run $DRY_RUN)"
if [ "$WORKFLOW_STATUS" != Succeeded ]; then echo "failed steps: $WORKFLOW_FAILURES"; fi
for step in $RESULTS; do
  if [ -s "$RESULT_DIR/$step.json" ]; then
    echo "--- $step"
    cat "$RESULT_DIR/$step.json"
  else
    echo "--- $step: no result"
  fi
done
exit 0
"""


def report_container(
    name: str,
    *,
    image: str,
    version: str,
    channel: str,
    dry_run: str,
    results: Sequence[str] = (),
) -> Container:
    """The ``onExit`` template: log the outcome and each step result found.

    Argo values reach the script only as environment variables, never spliced into
    its text, so no parameter value can change what the shell runs. With ``results``
    the workspace is mounted read-only and ``<OUT_DIR>/<step>.json`` is printed for each.
    It always exits 0: a report must not change the run's outcome.
    """
    env: list[Env | SecretEnv] = [
        Env(name="WORKFLOW_NAME", value="{{workflow.name}}"),
        Env(name="WORKFLOW_STATUS", value="{{workflow.status}}"),
        Env(name="WORKFLOW_FAILURES", value="{{workflow.failures}}"),
        Env(name="VERSION", value=version),
        Env(name="CHANNEL", value=channel),
        Env(name="DRY_RUN", value=dry_run),
    ]
    if results:
        env += [
            Env(name="RESULTS", value=" ".join(results)),
            Env(name="RESULT_DIR", value=OUT_DIR),
        ]
    return step_container(
        name,
        image=image,
        command=("sh", "-c"),
        args=[REPORT_SCRIPT],
        env=env,
        workspace=bool(results),
        read_only_workspace=True,
        retry=False,
        deadline_seconds=REPORT_DEADLINE_SECONDS,
    )
