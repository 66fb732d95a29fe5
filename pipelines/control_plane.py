"""The release's ``control-plane`` task: pin, copy or build the control-plane image.

Three modes, chosen by the release parameter ``control-plane-mode``:

- **pin** (default): ``control-plane`` is the tag or ``sha256:`` digest of an image already
  in ``<registry>/<namespace>/alga-appliance-control-plane``. The ``control-plane`` task is
  skipped; the images step resolves it to a digest, as before.
- **copy**: ``alga-release control-plane copy <control-plane-source> --tag <control-plane>``
  copies an already built image (another registry or repository) there by digest.
- **build**: ``alga-release control-plane build --source <checkout> --tag <control-plane>``
  builds the checkout's ``ee/appliance/control-plane/Dockerfile`` with a docker-in-docker
  sidecar and pushes it there.

In copy and build mode ``control-plane`` is the tag the task publishes (tags are
immutable: use the source revision). The task writes ``/workspace/out/control-plane.json``
(its ``result`` output parameter; the exit report prints it).

**How it reaches the manifest.** The images step is ``release_steps``' step, unchanged:
``images check --control-plane <control-plane>`` resolves the tag the task just published
to ``<registry>/<namespace>/alga-appliance-control-plane@sha256:...``, and ``manifest
publish`` copies that into the manifest's ``controlPlane``. So every mode reaches the
manifest the same way, and the task's argument lists (Argo-only, like ``checkout``) leave
the ``release_steps`` tasks exactly as the local ``publish`` runs them. The DAG::

    checkout -> control-plane -> charts -> bundle -> images -> control-plane-check -> manifest

``control-plane`` runs before anything is published, so a failed copy or build stops
the release before its charts are pushed. ``control-plane-check`` (copy and build mode)
compares the reference the task published with the one the images step resolved, both
read from their result files on the workspace, and fails with exit 3 before the manifest
if they differ (the tag was moved in between; our own copy and build never move a tag).
It exposes the checked ``reference`` and ``digest`` as output parameters. Reading the files
needs no Argo expression and no change to the images step's arguments; a pod costs a few
seconds, next to minutes of copy or build. In pin mode there is nothing to compare.

**One task, two templates.** ``control-plane`` is a small DAG with a ``copy`` and a
``build`` task, each with a ``when`` on the mode, because only the build needs the sidecar:
the copy pod stays an ordinary step pod. Pin mode skips the whole ``control-plane`` task
(``when`` ``'<mode>' != 'pin'``), so the node shows as skipped.

**Input checks in the checkout.** :data:`CHECKOUT_GUARD` is part of the checkout script and
refuses, with exit 2 before cloning: an unknown mode (the parameter is an enum, this is the
backstop), ``control-plane-source`` given outside copy mode or missing (or starting with
``-``) in copy mode, a dry run in a mode whose command does not read ``ALGA_DRY_RUN`` (found
by asking the real parser when the templates are rendered, as for the release steps; today
both ``control-plane copy`` and ``build`` read it, so the list is empty), and build mode
while ``dind-image`` is still the all-zero placeholder (the sidecar would never start and
the build would only time out).

**Source-registry credentials (copy).** ``ALGA_SOURCE_REGISTRY_USERNAME`` and
``ALGA_SOURCE_REGISTRY_PASSWORD`` come by ``secretKeyRef`` from the secret
:data:`SOURCE_SECRET` (keys ``username`` and ``password``), marked ``optional``: without
the secret the source is read anonymously. The secret's name is fixed rather than a
parameter: Kubernetes rejects an empty ``secretKeyRef`` name, so "empty = anonymous"
cannot be expressed, and a name parameter would let whoever submits a run send any secret
of the namespace to a registry they name. A source in the destination registry is read
with the destination's credentials (``github-token``), as the CLI does.

**The build's docker-in-docker sidecar** follows Argo's documented ``sidecar-dind``
example (``dockerd-entrypoint.sh`` in a ``docker:dind`` image, ``privileged``), with
these differences:

- dockerd listens on ``tcp://127.0.0.1:2375`` only (``args: [dockerd, --host=...]``,
  which makes the entrypoint skip its defaults of ``tcp://0.0.0.0:2375`` plus a unix
  socket), so the unauthenticated Docker API is reachable from inside the pod only,
  never from another pod. The step container's ``DOCKER_HOST`` is that address (IPv4
  literally: ``localhost`` might resolve to ``::1``, where nothing listens).
- No ``mirrorVolumeMounts``: the CLI sends the build context as a tar over the API, so
  the engine needs neither the workspace nor the scratch folder; it mounts only its own
  ``emptyDir`` at ``/var/lib/docker`` (:data:`DOCKER_DATA_SIZE`).
- The image is a parameter (``dind-image``) pinned by digest, like the step image.

The security trade-off: the sidecar is a privileged root container, i.e. root on the node
if dockerd, the kernel, or a ``RUN`` step of the built Dockerfile exploits it. Only the
build pod has it; only in build mode does it run; the step container next to it keeps
every hardening of the other steps (non-root, read-only root filesystem, no privilege
escalation, no capabilities). The namespace must admit privileged pods (Pod Security
``privileged`` level) for build mode; copy and pin need nothing of the kind. Where that is
not acceptable, build the image elsewhere and copy it.

The step container also waits for the engine (``ALGA_ENGINE_WAIT``, :data:`ENGINE_WAIT_SECONDS`:
dockerd takes some seconds to start) and assembles the context tar in its scratch folder,
which is :data:`BUILD_SCRATCH_SIZE` for this template. The build has
:data:`BUILD_DEADLINE_SECONDS`; an engine that never answers is exit 75 (retried).
The step image must include the Docker SDK (the package's ``docker`` extra) for a build
of a new tag; an existing tag is returned without the engine.
"""

from __future__ import annotations

from hera.workflows import DAG, Container, Env, Parameter, SecretEnv, Task
from hera.workflows import models as m

from pipelines import common as c
from pipelines import pins
from steps.controlplane.sources import ENV_SOURCE_PASSWORD, ENV_SOURCE_USERNAME
from steps.release.plan import RegistryParams

TASK = "control-plane"  # the DAG task, and its DAG template
COPY_TEMPLATE = "control-plane-copy"
BUILD_TEMPLATE = "control-plane-build"
CHECK_TASK = "control-plane-check"  # the task and its template
CHECK_AFTER = "images"  # the release step whose result the check compares with

MODE = "control-plane-mode"
SOURCE = "control-plane-source"
TAG = "control-plane"
DIND_PARAMETER = "dind-image"
MODES = ("pin", "copy", "build")
WRITING_MODES = ("copy", "build")  # the modes that run the task

RESULT_FILE = f"{c.OUT_DIR}/control-plane.json"
REFERENCE_FILE = f"{c.OUT_DIR}/control-plane.reference"
DIGEST_FILE = f"{c.OUT_DIR}/control-plane.digest"

# Optional: without it a copy reads its source anonymously.
SOURCE_SECRET = "alga-appliance-control-plane-source"
SOURCE_SECRET_USERNAME_KEY = "username"
SOURCE_SECRET_PASSWORD_KEY = "password"

# -- the docker-in-docker sidecar of the build ---------------------------------------------

DIND_IMAGE_REPOSITORY = "docker.io/library/docker"
# All zeros = not chosen yet: the checkout refuses build mode until the dind-image
# parameter (or its recorded default) names a published docker:<version>-dind digest.
DIND_IMAGE_DIGEST = pins.PLACEHOLDER_DIGEST
DIND_PLACEHOLDER = f"{DIND_IMAGE_REPOSITORY}@{DIND_IMAGE_DIGEST}"
# `make workflows DIND_IMAGE=...` records the real one in pipelines/pins.json.
DIND_IMAGE = pins.load().dind_image or DIND_PLACEHOLDER
DIND_CONTAINER = "dind"
DOCKER_HOST = "tcp://127.0.0.1:2375"
DOCKER_DATA_VOLUME = "docker-data"
DOCKER_DATA_DIR = "/var/lib/docker"
DOCKER_DATA_SIZE = "20Gi"
ENGINE_WAIT_SECONDS = 120
BUILD_DEADLINE_SECONDS = 1800
BUILD_SCRATCH_SIZE = "4Gi"

CHECKOUT_GUARD = f"""\
case "$CONTROL_PLANE_MODE" in
  pin|build)
    if [ -n "$CONTROL_PLANE_SOURCE" ]; then
      echo "checkout: control-plane-source is only read by control-plane-mode=copy" \\
        "(control-plane-mode is $CONTROL_PLANE_MODE)" >&2
      exit 2
    fi ;;
  copy)
    case "$CONTROL_PLANE_SOURCE" in
      ''|-*) echo "checkout: control-plane-mode=copy needs control-plane-source, the image" \\
               "to copy (got '$CONTROL_PLANE_SOURCE')" >&2; exit 2 ;;
    esac ;;
  *) echo "checkout: invalid control-plane-mode '$CONTROL_PLANE_MODE' (pin, copy or build)" >&2
     exit 2 ;;
esac
if [ "$DRY_RUN" = true ]; then
  for mode in $CONTROL_PLANE_DRY_RUN_UNSUPPORTED; do
    if [ "$mode" = "$CONTROL_PLANE_MODE" ]; then
      echo "checkout: refusing a dry run: alga-release control-plane $mode would still write" \\
        "(it does not read ALGA_DRY_RUN yet); dry-run with control-plane-mode=pin" >&2
      exit 2
    fi
  done
fi
if [ "$CONTROL_PLANE_MODE" = build ] && [ "${{DIND_IMAGE##*@}}" = "{DIND_IMAGE_DIGEST}" ]; then
  echo "checkout: control-plane-mode=build needs dind-image pinned to a published" \\
    "docker:dind digest (the default is a placeholder): pass -p dind-image=<repo>@sha256:..." \\
    "or render with make workflows DIND_IMAGE=<repo>@sha256:..." >&2
  exit 2
fi
"""


def arguments() -> list[Parameter]:
    """The release parameters of the control-plane task (``control-plane`` is the release's)."""
    return [
        Parameter(
            name=MODE,
            value="pin",
            enum=list(MODES),
            description="pin: control-plane is already in <registry>/<namespace>/"
            "alga-appliance-control-plane; copy: copy control-plane-source there as "
            ":<control-plane>; build: build the checkout's control-plane Dockerfile and push "
            "it as :<control-plane>",
        ),
        Parameter(
            name=SOURCE,
            value="",
            description="copy mode only: the image to copy, REGISTRY/REPO:TAG or "
            "REGISTRY/REPO@sha256:... (credentials: the optional secret "
            f"{SOURCE_SECRET}, keys {SOURCE_SECRET_USERNAME_KEY} and "
            f"{SOURCE_SECRET_PASSWORD_KEY})",
        ),
    ]


def dind_argument() -> Parameter:
    return Parameter(
        name=DIND_PARAMETER,
        value=DIND_IMAGE,
        description="build mode only: the docker:dind sidecar image, pinned by digest",
    )


def not_pinned() -> str:
    """The ``when`` of the tasks that run only in copy and build mode."""
    return c.quoted_not_equals(c.workflow_parameter(MODE), "pin")


def registry() -> RegistryParams:
    wp = c.workflow_parameter
    return RegistryParams(registry=wp("registry"), namespace=wp("namespace"))


def copy_argv() -> list[str]:
    wp = c.workflow_parameter
    return [
        "control-plane",
        "copy",
        wp(SOURCE),
        "--tag",
        wp(TAG),
        "--out",
        RESULT_FILE,
        *registry().argv(),
    ]


def build_argv() -> list[str]:
    return [
        "control-plane",
        "build",
        "--source",
        c.SOURCE_DIR,
        "--tag",
        c.workflow_parameter(TAG),
        "--out",
        RESULT_FILE,
        *registry().argv(),
    ]


def mode_argv() -> dict[str, list[str]]:
    """What each writing mode runs (``alga-release <argv>``)."""
    return {"copy": copy_argv(), "build": build_argv()}


def dry_run_unsupported() -> list[str]:
    """Modes whose command does not read ``ALGA_DRY_RUN``: the checkout refuses their dry runs."""
    parser = c.dry_run_parser()
    return [
        mode
        for mode, argv in mode_argv().items()
        if not c.reads_dry_run(parser, f"{TASK} ({mode})", argv)
    ]


def checkout_env() -> list[Env | SecretEnv]:
    """What :data:`CHECKOUT_GUARD` reads."""
    wp = c.workflow_parameter
    return [
        Env(name="CONTROL_PLANE_MODE", value=wp(MODE)),
        Env(name="CONTROL_PLANE_SOURCE", value=wp(SOURCE)),
        Env(name="CONTROL_PLANE_DRY_RUN_UNSUPPORTED", value=" ".join(dry_run_unsupported())),
        Env(name="DIND_IMAGE", value=wp(DIND_PARAMETER)),
    ]


def step_env() -> list[Env | SecretEnv]:
    """As every release step: registry credentials and the dry-run toggle."""
    wp = c.workflow_parameter
    return [
        *c.registry_env(c.workflow_parameter),
        Env(name="ALGA_DRY_RUN", value=wp("dry-run")),
    ]


def source_credentials_env() -> list[Env | SecretEnv]:
    """The source registry's credentials for a copy: the optional secret, or anonymous."""
    return [
        SecretEnv(
            name=ENV_SOURCE_USERNAME,
            secret_name=SOURCE_SECRET,
            secret_key=SOURCE_SECRET_USERNAME_KEY,
            optional=True,
        ),
        SecretEnv(
            name=ENV_SOURCE_PASSWORD,
            secret_name=SOURCE_SECRET,
            secret_key=SOURCE_SECRET_PASSWORD_KEY,
            optional=True,
        ),
    ]


def result_output() -> Parameter:
    return Parameter(name="result", value_from=m.ValueFrom(path=RESULT_FILE))


def dind_sidecar(image: str) -> m.UserContainer:
    """dockerd, privileged, on the pod's loopback only; its data on its own ``emptyDir``."""
    return m.UserContainer(
        name=DIND_CONTAINER,
        image=image,
        image_pull_policy="IfNotPresent",
        command=["dockerd-entrypoint.sh"],
        args=["dockerd", f"--host={DOCKER_HOST}"],
        security_context=m.SecurityContext(
            privileged=True,
            run_as_user=0,
            run_as_group=0,
            run_as_non_root=False,
        ),
        volume_mounts=[m.VolumeMount(name=DOCKER_DATA_VOLUME, mount_path=DOCKER_DATA_DIR)],
        resources=m.ResourceRequirements(
            requests={"cpu": m.Quantity("500m"), "memory": m.Quantity("1Gi")},
            limits={"memory": m.Quantity("4Gi")},
        ),
    )


def copy_template(image: str) -> Container:
    return c.step_container(
        COPY_TEMPLATE,
        image=image,
        args=copy_argv(),
        env=[*step_env(), *source_credentials_env()],
        outputs=[result_output()],
        workspace=True,
        secrets=[c.signing_key(c.workflow_parameter)],
    )


def build_template(image: str) -> Container:
    return c.step_container(
        BUILD_TEMPLATE,
        image=image,
        args=build_argv(),
        env=[
            *step_env(),
            Env(name="DOCKER_HOST", value=DOCKER_HOST),
            Env(name="ALGA_ENGINE_WAIT", value=str(ENGINE_WAIT_SECONDS)),
        ],
        outputs=[result_output()],
        workspace=True,
        deadline_seconds=BUILD_DEADLINE_SECONDS,
        scratch_size=BUILD_SCRATCH_SIZE,
        secrets=[c.signing_key(c.workflow_parameter)],
        sidecars=[dind_sidecar(c.workflow_parameter(DIND_PARAMETER))],
        sidecar_volumes=[
            m.Volume(
                name=DOCKER_DATA_VOLUME,
                empty_dir=m.EmptyDirVolumeSource(size_limit=m.Quantity(DOCKER_DATA_SIZE)),
            )
        ],
    )


def check_template(image: str, images_result: str) -> Container:
    """Compare the published reference with what the images step resolved (exit 3 if not)."""
    return c.step_container(
        CHECK_TASK,
        image=image,
        args=[
            "control-plane",
            "check",
            "--images",
            images_result,
            "--control-plane-result",
            RESULT_FILE,
            "--reference-file",
            REFERENCE_FILE,
            "--digest-file",
            DIGEST_FILE,
        ],
        outputs=[
            Parameter(name="reference", value_from=m.ValueFrom(path=REFERENCE_FILE)),
            Parameter(name="digest", value_from=m.ValueFrom(path=DIGEST_FILE)),
        ],
        workspace=True,
    )


def control_plane_dag(image: str) -> DAG:
    """The ``control-plane`` DAG: ``copy`` or ``build``, by mode; must be in a workflow context."""
    copy = copy_template(image)
    build = build_template(image)
    mode = c.workflow_parameter(MODE)
    with DAG(name=TASK) as dag:
        Task(name="copy", template=copy, when=c.quoted_equals(mode, "copy"))
        Task(name="build", template=build, when=c.quoted_equals(mode, "build"))
    return dag
