"""``alga-release control-plane copy|build|check``: the control-plane image, pinned by digest."""

from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from steps.cli import options
from steps.cli.context import context_of, make_client, own_client, quick_read, write_out
from steps.cli.output import BlobProgress, human_control_plane
from steps.cli.signing import signer_of

if TYPE_CHECKING:
    from steps.oci.model import ClientStats

log = logging.getLogger("alga_release")


def cmd_control_plane_copy(args: argparse.Namespace) -> dict[str, Any]:
    from steps.controlplane import copy as cp_copy
    from steps.controlplane import sources

    spec = sources.parse_source(args.source_ref)
    signer = signer_of(args)  # a bad or missing key stops the run before any push
    absent: list[bool] = []  # the quick read found the destination tag absent
    if isinstance(spec, sources.RegistrySourceSpec) and (signer is None or args.dry_run):
        # A tag that already holds the source's digest is answered by quick reads alone.
        done = quick_read(args, lambda: _quick_recopy(args, spec, absent))
        if done is not None:
            return write_out(args, done)
    with make_client(args) as client:
        other_registry = (
            isinstance(spec, sources.RegistrySourceSpec)
            and spec.reference.registry != client.registry
        )
        if other_registry:
            assert isinstance(spec, sources.RegistrySourceSpec)
            with own_client(
                **_source_settings(args, spec),
                retry=context_of(args).retry_policy(),
                flags=_source_flags(),
            ) as source_client:
                result = cp_copy.copy_image(
                    spec,
                    client,
                    args.namespace,
                    args.tag,
                    source_client=source_client,
                    dry_run=args.dry_run,
                    progress=BlobProgress(),
                    jobs=args.jobs,
                    tag_absent=absent == [True],
                )
        else:
            result = cp_copy.copy_image(
                spec,
                client,
                args.namespace,
                args.tag,
                source_client=None,
                dry_run=args.dry_run,
                progress=BlobProgress(),
                jobs=args.jobs,
                tag_absent=absent == [True],
            )
        _log_stats(client.stats, client.registry)
        if signer is not None and not args.dry_run:
            result["signedBy"] = signer.sign_reference(client, result["reference"]).key_id
    return write_out(args, result)  # a dry run writes its plan too: the next dry-run step reads it


def _quick_recopy(args: argparse.Namespace, spec: Any, absent: list[bool]) -> dict[str, Any]:
    """The no-op re-copy on quick readers (:mod:`steps.oci.quick`): the result of
    :func:`~steps.controlplane.copy.already_copied`, or :class:`~steps.oci.quick.Doubt`
    (``absent`` gets True when that was the destination tag's 404: the copy then does not
    ask again; it looks once more before it tags)."""
    from steps.controlplane import copy as cp_copy
    from steps.controlplane import sources
    from steps.oci.quick import Doubt, QuickReader

    context = context_of(args)
    with contextlib.ExitStack() as stack:
        destination = stack.enter_context(context.quick_reader(args))
        source_reader = None
        if spec.reference.registry != destination.registry:
            source_reader = stack.enter_context(
                QuickReader(**_source_settings(args, spec), budget=context.time_left(args))
            )
        # the source adapters only read manifests through these readers
        source = sources.open_source(spec, cast(Any, destination), cast(Any, source_reader))
        done, current = cp_copy.already_copied(source, destination, args.namespace, args.tag)
        if done is None:
            absent.append(current is None)
            raise Doubt("the tag does not hold the source's digest yet")
        result = cp_copy.already_copied_json(done, dry_run=args.dry_run)
        _log_stats(destination.stats, destination.registry)
        return result


def _jobs(text: str) -> int:
    """``--jobs``: a whole number from 1 to 16."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 16:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 16, got {text!r}")
    return int(text)


def _source_settings(args: argparse.Namespace, spec: Any) -> dict[str, Any]:
    """How to reach the copy's source registry, as both its full client and its quick
    reader take it."""
    from steps.controlplane import sources

    return {
        "registry": spec.reference.registry,
        "credentials": sources.source_credentials(options.environment()),
        "plain_http": bool(args.source_plain_http),
        "insecure_hosts": tuple(args.insecure_registry),
        "verify": str(args.source_ca_file) if args.source_ca_file else True,
    }


def _log_stats(stats: ClientStats, registry: str) -> None:
    log.info(
        "%d request(s) to %s, %d blob(s) uploaded (%d bytes), %d mounted, %d already present",
        stats.requests,
        registry,
        stats.blobs_uploaded,
        stats.bytes_uploaded,
        stats.blobs_mounted,
        stats.blobs_existing,
    )


def cmd_control_plane_build(args: argparse.Namespace) -> dict[str, Any]:
    from steps.controlplane import build, context, engine

    context_dir, dockerfile = context.resolve_build_paths(
        args.source, args.context, args.dockerfile
    )
    assembled = context.assemble_context(context_dir, dockerfile)
    build_args = build.parse_build_args(args.build_arg)
    if args.dry_run:
        return write_out(args, _build_plan(args, assembled))
    signer = signer_of(args)  # a bad or missing key stops the run before any push
    docker_host = options.env_str("DOCKER_HOST")
    with make_client(args) as client:
        built = build.build_and_push(
            lambda: engine.DockerEngine.connect(wait=args.engine_wait, docker_host=docker_host),
            client,
            args.namespace,
            args.tag,
            assembled,
            credentials=client.credentials,
            build_args=build_args,
            platform=args.platform,
        )
        result = built.to_json()
        if signer is not None:
            result["signedBy"] = signer.sign_reference(client, built.reference).key_id
    return write_out(args, result)


def _build_plan(args: argparse.Namespace, assembled: Any) -> dict[str, Any]:
    """What a build would do: the context is assembled and checked, the tag looked up;
    no engine is contacted and nothing is pushed."""
    from steps.names import control_plane_reference, control_plane_repository
    from steps.oci.reference import check_tag

    check_tag(args.tag)
    repository = control_plane_repository(args.namespace)
    with make_client(args) as client:
        current = client.head_manifest(repository, args.tag)
    return {
        "repository": f"{args.registry}/{repository}",
        "tag": args.tag,
        "status": "existing" if current else "would-build",
        "contextEntries": len(assembled.entries),
        "dryRun": True,
        "reference": control_plane_reference(args.registry, args.namespace, current.digest)
        if current
        else None,
        "digest": str(current.digest) if current else None,
    }


def cmd_control_plane_check(args: argparse.Namespace) -> dict[str, Any]:
    """The release DAG's control-plane-check task: the images step's control plane must be
    the one the control-plane task produced (pin, copy or build)."""
    from steps.cli.context import read_result
    from steps.controlplane.build import check_control_plane

    images = read_result(args, args.images, "images step result")
    produced = read_result(args, args.control_plane_result, "control-plane step result")
    result = check_control_plane(images, produced)
    # Argo output parameters: one value per file
    for path, value in (
        (args.reference_file, result["reference"]),
        (args.digest_file, result["digest"]),
    ):
        if path:
            path.write_text(value, encoding="utf-8")
    return write_out(args, result)


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    actions = options.group(
        commands,
        "control-plane",
        "publish the control-plane image (setup UI and host-service), pinned by digest",
        "control_plane_command",
    )
    copy = options.command(
        actions,
        "copy",
        help="copy an already built image into <registry>/<namespace>/"
        "alga-appliance-control-plane by digest",
        description=(
            "Copy an image (one platform or a multi-platform index) into\n"
            "<registry>/<namespace>/alga-appliance-control-plane with its exact manifest\n"
            "bytes, so the digest stays the same: every blob (mounted when the source is\n"
            "in the same registry, streamed otherwise), every child manifest, the index,\n"
            "then TAG last. Everything read is checked against its digest; if any piece\n"
            "fails nothing is tagged. A TAG that exists with another digest is refused\n"
            "(exit 3). A re-copy uploads nothing.\n\n"
            "SOURCE_REF: REGISTRY/REPO:TAG, REGISTRY/REPO@sha256:..., or\n"
            "oci-layout:PATH[:TAG|@sha256:...] (an OCI image layout folder).\n"
            "Credentials for another source registry: ALGA_SOURCE_REGISTRY_USERNAME and\n"
            "ALGA_SOURCE_REGISTRY_PASSWORD; in the same registry the destination's are used."
        ),
        epilog=(
            "example:\n"
            "  alga-release control-plane copy registry.example.com/ci/control-plane:3f2a1b0 \\\n"
            "      --tag 3f2a1b0 --json\n"
            "  alga-release control-plane copy oci-layout:./out/control-plane:latest \\\n"
            "      --tag 3f2a1b0 --registry 127.0.0.1:5000 --plain-http --dry-run"
        ),
    )
    copy.add_argument("source_ref", metavar="SOURCE_REF", help="the image to copy")
    copy.add_argument(
        "--tag", required=True, metavar="TAG", help="tag at the destination (immutable)"
    )
    copy.add_argument(
        "--jobs",
        type=_jobs,
        default=4,
        metavar="N",
        help="copy up to N blobs at a time, registry to registry (default 4; 1: one by one)",
    )
    options.source_registry(copy)
    options.dry_run(copy, "read the source and compare with the destination; push nothing")
    options.out(copy)
    options.signing(copy, "sign the copied image")
    options.leaf(copy)
    copy.set_defaults(handler=cmd_control_plane_copy, human=human_control_plane)

    build = options.command(
        actions,
        "build",
        help="build the control-plane Dockerfile with a Docker-API engine and push it",
        description=(
            "Build ee/appliance/control-plane/Dockerfile of the source checkout with the\n"
            "Docker-API engine at DOCKER_HOST (in Argo a docker-in-docker sidecar; podman's\n"
            "`podman system service` works too), push it to\n"
            "<registry>/<namespace>/alga-appliance-control-plane:TAG with the registry\n"
            "credentials, and return the pinned reference (the pushed digest, checked with\n"
            "a HEAD). The build context is the checkout root (as alga-psa builds it) minus\n"
            "what .dockerignore excludes. An existing TAG is kept and returned without\n"
            "building (tags are immutable; builds are not reproducible)."
        ),
        epilog=(
            "example:\n"
            "  DOCKER_HOST=tcp://localhost:2375 alga-release control-plane build \\\n"
            "      --source ~/src/alga-psa --tag 3f2a1b0 --json"
        ),
    )
    build.add_argument(
        "--source", type=Path, required=True, metavar="DIR", help="the alga-psa checkout"
    )
    build.add_argument(
        "--tag", required=True, metavar="TAG", help="tag to push (immutable), e.g. the revision"
    )
    build.add_argument(
        "--context",
        metavar="DIR",
        help="build context, relative to --source (default: the checkout root)",
    )
    build.add_argument(
        "--dockerfile",
        metavar="FILE",
        help="Dockerfile, relative to --source (default ee/appliance/control-plane/Dockerfile)",
    )
    build.add_argument(
        "--build-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="build argument (repeatable)",
    )
    build.add_argument("--platform", metavar="OS/ARCH", help="target platform, e.g. linux/amd64")
    options.engine_wait(build)
    options.out(build)
    options.dry_run(
        build, "assemble and check the build context and the tag; build and push nothing"
    )
    options.signing(build, "sign the built image")
    options.leaf(build)
    build.set_defaults(handler=cmd_control_plane_build, human=human_control_plane)

    check = options.command(
        actions,
        "check",
        help="check that the release's control plane is the one the control-plane step made",
        description=(
            "Compare the images step's controlPlane (what the release manifest will pin)\n"
            "with the control-plane step's result (pin, copy or build). Used by the release\n"
            "workflow between the images and manifest steps; refuses (exit 3) a mismatch."
        ),
    )
    check.add_argument(
        "--images", type=Path, required=True, metavar="FILE", help="the images step's result"
    )
    check.add_argument(
        "--control-plane-result",
        type=Path,
        required=True,
        metavar="FILE",
        help="the control-plane step's result (copy or build), or a pin's",
    )
    check.add_argument(
        "--reference-file", type=Path, metavar="FILE", help="write the pinned reference here"
    )
    check.add_argument("--digest-file", type=Path, metavar="FILE", help="write its digest here")
    options.out(check)
    options.output(check)
    check.set_defaults(handler=cmd_control_plane_check)


def _source_flags() -> Any:
    """The flags an error about the copy's source registry names (``--source-plain-http``)."""
    from steps.oci.model import FlagNames

    return FlagNames.source()
