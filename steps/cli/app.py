"""The ``alga-release`` command line: argument parsing, output and exit codes.

This is the only module that exits or prints results. Every subcommand
returns a JSON-able result; ``--json`` prints it on stdout, otherwise a short
human summary goes to stdout. Progress and warnings go to stderr. Errors are
:class:`~steps.errors.ReleaseError` subclasses turned into exit codes:

    0 done (including "already so")     2 bad input
    3 refused by a gate                 75 transient registry/network failure
    1 anything else

Every option that has an environment variable says so in ``--help``.
Credentials come only from the environment or ``--password-file``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from steps import __version__
from steps.errors import EXIT_BAD_INPUT, EXIT_ERROR, BadInput, ReleaseError
from steps.oci.auth import ENV_PASSWORD, ENV_USERNAME, Credentials
from steps.oci.client import RegistryClient
from steps.redact import RedactingFilter, redact

log = logging.getLogger("alga_release")

Handler = Callable[[argparse.Namespace], dict[str, Any]]


# -- option helpers ------------------------------------------------------------


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_flag(name: str) -> bool:
    return (os.environ.get(name) or "").strip().lower() in ("1", "true", "yes", "on")


def add_registry_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("registry")
    group.add_argument(
        "--registry",
        default=_env("ALGA_REGISTRY", "ghcr.io"),
        metavar="HOST[:PORT]",
        help="registry host (env ALGA_REGISTRY; default ghcr.io)",
    )
    group.add_argument(
        "--namespace",
        default=_env("ALGA_NAMESPACE", "nine-minds"),
        metavar="NS",
        help="namespace under the registry (env ALGA_NAMESPACE; default nine-minds)",
    )
    group.add_argument(
        "--plain-http",
        action="store_true",
        default=_env_flag("ALGA_PLAIN_HTTP"),
        help="use plain HTTP; allowed for loopback hosts, or hosts named by "
        "--insecure-registry (env ALGA_PLAIN_HTTP=1)",
    )
    group.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST",
        help="allow plain HTTP to this non-loopback HOST (repeatable)",
    )
    group.add_argument(
        "--ca-file",
        type=Path,
        default=_env("ALGA_CA_FILE"),
        metavar="PEM",
        help="CA bundle to verify the registry's certificate (env ALGA_CA_FILE)",
    )
    group.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help=f"read the registry password or token from FILE (else env {ENV_PASSWORD}; "
        f"the username comes from env {ENV_USERNAME})",
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print the machine-readable result on stdout"
    )


def make_client(args: argparse.Namespace, *, anonymous: bool = False) -> RegistryClient:
    """A client for the registry flags in ``args``; ``anonymous`` sends no credentials
    (as an appliance pulls)."""
    credentials = None if anonymous else Credentials.from_environment(args.password_file)
    verify: bool | str = str(args.ca_file) if args.ca_file else True
    return RegistryClient(
        args.registry,
        credentials=credentials,
        plain_http=args.plain_http,
        insecure_hosts=tuple(args.insecure_registry),
        verify=verify,
    )


def write_json_file(path: Path, data: object) -> None:
    """Write JSON atomically: a reader sees the old file or the whole new one."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- commands ------------------------------------------------------------------


def cmd_charts_publish(args: argparse.Namespace) -> dict[str, Any]:
    from steps.charts import publish as charts
    from steps.config import load_config

    config = load_config(args.config)
    source: Path = args.source
    log.info("packaging charts from %s (%s)", source, config.origin)
    artifacts = charts.build_artifacts(source, config, args.version_policy, args.chart or None)
    with make_client(args) as client:
        plans = charts.plan_charts(client, args.namespace, artifacts)
        if args.dry_run:
            result = charts.dry_run_json(client.registry, plans)
        else:
            result = charts.results_json(charts.push_plan(client, args.namespace, plans))
        stats = client.stats
        log.info(
            "%d request(s), %d blob(s) uploaded (%d bytes), %d already present",
            stats.requests,
            stats.blobs_uploaded,
            stats.bytes_uploaded,
            stats.blobs_existing,
        )
    if args.out:  # a dry run writes its plan too: the next dry-run step reads it
        write_json_file(args.out, result)
    return result


def _human_charts(result: dict[str, Any]) -> str:
    lines = []
    for name, entry in sorted(result.get("charts", {}).items()):
        lines.append(f"{name:<16} {entry['version']:<28} {entry['status']:<10} {entry['digest']}")
    return "\n".join(lines)


_DRY_RUN_DEFAULT_DIR = Path("\0default")  # a sentinel no real path can equal


def _bundle_dry_run_dir(args: argparse.Namespace) -> Path | None:
    """Where a dry run renders the bundle: DIR, next to --out, or a fresh temp folder."""
    if args.dry_run != _DRY_RUN_DEFAULT_DIR:
        return args.dry_run  # type: ignore[no-any-return]
    if args.out:
        target = Path(f"{args.out}.bundle")
        shutil.rmtree(target, ignore_errors=True)  # ours: a re-run renders it afresh
        return target
    return Path(tempfile.mkdtemp(prefix="alga-bundle-"))


def cmd_bundle_publish(args: argparse.Namespace) -> dict[str, Any]:
    from steps.bundle import publish as bundle
    from steps.config import load_config
    from steps.release.plan import preflight

    config = load_config(args.config)
    # The bundle names the values profile; a profile the appliance cannot use must not
    # be published under an immutable version.
    args.values_profile = preflight(args.source, config, args.values_profile)
    args.dry_run = _bundle_dry_run_dir(args)
    prepared = bundle.prepare_bundle(
        source=args.source,
        config=config,
        charts_file=args.charts,
        registry=args.registry,
        namespace=args.namespace,
        version=args.version,
        pin=args.chart_pin,
        source_url=args.source_url,
        revision=args.revision,
        kubectl=args.kubectl,
        render_dir=args.dry_run,
        values_profile=args.values_profile,
    )
    if args.dry_run:
        result = bundle.dry_run_result(prepared, args.dry_run)
        if args.out:  # a dry-run release goes on to build its manifest from this
            write_json_file(args.out, {k: v for k, v in result.items() if k != "diff"})
        return result
    with make_client(args) as client:
        result = bundle.publish_prepared(client, prepared)
    if args.out:
        write_json_file(args.out, result)
    return result


# -- parser --------------------------------------------------------------------


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alga-release",
        formatter_class=_Formatter,
        description=(
            "Publish Alga PSA appliance releases to an OCI registry: Helm charts, the Flux\n"
            "config bundle and the release manifest; move channels safely."
        ),
        epilog=(
            "exit codes: 0 done (or already so), 2 bad input, 3 refused by a gate\n"
            "(overwrite, downgrade, incomplete release), 75 transient registry failure\n"
            "(safe to retry), 1 anything else.\n\n"
            "Credentials: ALGA_REGISTRY_USERNAME and ALGA_REGISTRY_PASSWORD (or\n"
            "--password-file); never on the command line."
        ),
    )
    parser.add_argument("--version", action="version", version=f"alga-release {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only warnings/errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    charts = commands.add_parser(
        "charts", help="package and push the Helm charts", formatter_class=_Formatter
    )
    charts_commands = charts.add_subparsers(dest="charts_command", metavar="ACTION", required=True)
    publish = charts_commands.add_parser(
        "publish",
        formatter_class=_Formatter,
        help="package every chart deterministically and push it as a Helm OCI artifact",
        description=(
            "Package each chart like `helm package` (honouring .helmignore), but\n"
            "deterministically, and push it to <registry>/<namespace>/charts/<name>.\n\n"
            "Versions are immutable: with --version-policy content (default) a chart is\n"
            "published as <Chart.yaml version>-c<content hash>, so changed content always\n"
            "gets a new version; an existing tag is never overwritten with different\n"
            "content (exit 3). An unchanged re-run uploads nothing."
        ),
        epilog=(
            "example:\n"
            "  alga-release charts publish --source ~/src/alga-psa --out charts.json\n"
            "  alga-release charts publish --source . --config release.yaml \\\n"
            "      --registry 127.0.0.1:5000 --plain-http --json"
        ),
    )
    publish.add_argument(
        "--source",
        type=Path,
        required=True,
        metavar="DIR",
        help="source checkout (alga-psa layout unless --config says otherwise)",
    )
    publish.add_argument(
        "--config",
        type=Path,
        default=_env("ALGA_RELEASE_CONFIG"),
        metavar="FILE",
        help="release config mapping chart names to folders (env ALGA_RELEASE_CONFIG; "
        "default: the alga-psa layout)",
    )
    publish.add_argument(
        "--version-policy",
        choices=("content", "exact"),
        default="content",
        help="content: <version>-c<hash> (default); exact: Chart.yaml's version as is",
    )
    publish.add_argument(
        "--chart",
        action="append",
        default=[],
        metavar="NAME",
        help="publish only this chart (repeatable; default: every chart in the config)",
    )
    publish.add_argument("--out", type=Path, metavar="FILE", help="also write the JSON result here")
    publish.add_argument(
        "--dry-run",
        action="store_true",
        default=_env_flag("ALGA_DRY_RUN"),
        help="package and compare with the registry, but push nothing (env ALGA_DRY_RUN=true)",
    )
    add_registry_options(publish)
    add_output_options(publish)
    publish.set_defaults(handler=cmd_charts_publish, human=_human_charts)

    bundle = commands.add_parser(
        "bundle",
        help="render, validate and push the Flux config bundle",
        formatter_class=_Formatter,
    )
    bundle_commands = bundle.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)
    bundle_publish = bundle_commands.add_parser(
        "publish",
        formatter_class=_Formatter,
        help="pin the overlay's HelmReleases to the published charts and push it as a Flux "
        "OCI artifact",
        description=(
            "Copy the Flux overlay (its folder is the bundle root: base/ and profiles/), pin\n"
            "every HelmRelease to the chart version (or, with --chart-pin digest, the chart\n"
            "manifest digest) in --charts and point the OCI HelmRepository at\n"
            "oci://<registry>/<namespace>/charts. Refuses git sources, unpublished charts and\n"
            "Flux Kustomizations not reading OCIRepository alga-appliance. Builds ./base and\n"
            "every Flux Kustomization path with `kubectl kustomize --load-restrictor\n"
            "LoadRestrictionsNone`, then pushes the bundle as `flux push artifact` would to\n"
            "<registry>/<namespace>/alga-appliance-config:<version>.\n\n"
            "The tag is immutable: an existing one with other content is refused (exit 3);\n"
            "the same inputs give the same digest, so a re-run pushes nothing."
        ),
        epilog=(
            "examples:\n"
            "  alga-release bundle publish --source ~/src/alga-psa --charts charts.json \\\n"
            "      --version 1.4.0 --source-url https://github.com/Nine-Minds/alga-psa \\\n"
            "      --revision main@sha1:$(git -C ~/src/alga-psa rev-parse HEAD) --out bundle.json\n"
            "  alga-release bundle publish --source . --config examples/release.yaml \\\n"
            "      --charts charts.json --version 0.1.0 --dry-run /tmp/bundle \\\n"
            "      --registry 127.0.0.1:5000 --plain-http"
        ),
    )
    bundle_publish.add_argument(
        "--source",
        type=Path,
        required=True,
        metavar="DIR",
        help="source checkout; the overlay is ee/appliance/flux in it unless --config says "
        "otherwise",
    )
    bundle_publish.add_argument(
        "--config",
        type=Path,
        default=_env("ALGA_RELEASE_CONFIG"),
        metavar="FILE",
        help="release config naming the overlay folder (env ALGA_RELEASE_CONFIG; default: "
        "the alga-psa layout)",
    )
    bundle_publish.add_argument(
        "--charts",
        type=Path,
        required=True,
        metavar="FILE",
        help="charts.json written by `charts publish --out` (same --registry/--namespace)",
    )
    bundle_publish.add_argument(
        "--version",
        required=True,
        metavar="V",
        help="release version: SemVer 2 without '+', used as the bundle's tag",
    )
    bundle_publish.add_argument(
        "--source-url",
        default=_env("ALGA_SOURCE_URL"),
        metavar="URL",
        help="org.opencontainers.image.source (env ALGA_SOURCE_URL; default: the "
        "checkout's origin remote, without credentials)",
    )
    bundle_publish.add_argument(
        "--revision",
        default=_env("ALGA_SOURCE_REVISION"),
        metavar="REV",
        help="org.opencontainers.image.revision as <ref>@sha1:<commit> (env "
        "ALGA_SOURCE_REVISION; default: the checkout's branch and HEAD)",
    )
    bundle_publish.add_argument(
        "--chart-pin",
        choices=("version", "digest"),
        default=_env("ALGA_CHART_PIN", "version"),
        help="version: pin spec.chart.spec.version (default); digest: one OCIRepository per "
        "chart pinned by manifest digest, and spec.chartRef (env ALGA_CHART_PIN)",
    )
    bundle_publish.add_argument(
        "--values-profile",
        metavar="P",
        help="profile whose values keys the HelmReleases read (valuesFrom ...<profile>.yaml); "
        "default: the release config's (single-node)",
    )
    bundle_publish.add_argument(
        "--kubectl",
        default=_env("ALGA_KUBECTL"),
        metavar="PATH",
        help="kubectl used for `kubectl kustomize` (env ALGA_KUBECTL; default: kubectl on "
        "PATH, else .tools/bin/kubectl)",
    )
    bundle_publish.add_argument(
        "--out", type=Path, metavar="FILE", help="also write the JSON result here"
    )
    bundle_publish.add_argument(
        "--dry-run",
        type=Path,
        nargs="?",
        const=_DRY_RUN_DEFAULT_DIR,
        default=_DRY_RUN_DEFAULT_DIR if _env_flag("ALGA_DRY_RUN") else None,
        metavar="DIR",
        help="write the rendered bundle to DIR (new or empty), print its diff against the "
        "overlay and the digest it would have; push nothing. Without DIR (or with env "
        "ALGA_DRY_RUN=true) the bundle goes next to --out (<out>.bundle/), else to a "
        "temporary folder",
    )
    add_registry_options(bundle_publish)
    add_output_options(bundle_publish)

    def bundle_human(result: dict[str, Any]) -> str:
        from steps.bundle.publish import human_summary

        return human_summary(result)

    bundle_publish.set_defaults(handler=cmd_bundle_publish, human=bundle_human)

    from steps.cli.release import add_release_commands

    add_release_commands(commands)

    control_plane = commands.add_parser(
        "control-plane",
        help="publish the control-plane image (setup UI and host-service), pinned by digest",
        formatter_class=_Formatter,
    )
    control_plane_commands = control_plane.add_subparsers(
        dest="control_plane_command", metavar="ACTION", required=True
    )
    cp_copy = control_plane_commands.add_parser(
        "copy",
        formatter_class=_Formatter,
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
    cp_copy.add_argument("source_ref", metavar="SOURCE_REF", help="the image to copy")
    cp_copy.add_argument(
        "--tag", required=True, metavar="TAG", help="tag at the destination (immutable)"
    )
    cp_copy.add_argument(
        "--source-plain-http",
        action="store_true",
        default=_env_flag("ALGA_SOURCE_PLAIN_HTTP"),
        help="plain HTTP to the source registry (loopback or --insecure-registry hosts; "
        "env ALGA_SOURCE_PLAIN_HTTP=1)",
    )
    cp_copy.add_argument(
        "--source-ca-file",
        type=Path,
        default=_env("ALGA_SOURCE_CA_FILE"),
        metavar="PEM",
        help="CA bundle for the source registry's certificate (env ALGA_SOURCE_CA_FILE)",
    )
    cp_copy.add_argument(
        "--dry-run",
        action="store_true",
        default=_env_flag("ALGA_DRY_RUN"),
        help="read the source and compare with the destination; push nothing "
        "(env ALGA_DRY_RUN=true)",
    )
    cp_copy.add_argument("--out", type=Path, metavar="FILE", help="also write the JSON result here")
    add_registry_options(cp_copy)
    add_output_options(cp_copy)
    cp_copy.set_defaults(handler=cmd_control_plane_copy, human=_human_control_plane)

    cp_build = control_plane_commands.add_parser(
        "build",
        formatter_class=_Formatter,
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
    cp_build.add_argument(
        "--source", type=Path, required=True, metavar="DIR", help="the alga-psa checkout"
    )
    cp_build.add_argument(
        "--tag", required=True, metavar="TAG", help="tag to push (immutable), e.g. the revision"
    )
    cp_build.add_argument(
        "--context",
        metavar="DIR",
        help="build context, relative to --source (default: the checkout root)",
    )
    cp_build.add_argument(
        "--dockerfile",
        metavar="FILE",
        help="Dockerfile, relative to --source (default ee/appliance/control-plane/Dockerfile)",
    )
    cp_build.add_argument(
        "--build-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="build argument (repeatable)",
    )
    cp_build.add_argument("--platform", metavar="OS/ARCH", help="target platform, e.g. linux/amd64")
    cp_build.add_argument(
        "--engine-wait",
        type=float,
        default=float(_env("ALGA_ENGINE_WAIT", "30") or 30),
        metavar="SECONDS",
        help="wait this long for the engine to answer (env ALGA_ENGINE_WAIT; default 30)",
    )
    cp_build.add_argument(
        "--out", type=Path, metavar="FILE", help="also write the JSON result here"
    )
    cp_build.add_argument(
        "--dry-run",
        action="store_true",
        default=_env_flag("ALGA_DRY_RUN"),
        help="assemble and check the build context and the tag; build and push nothing "
        "(env ALGA_DRY_RUN=true)",
    )
    add_registry_options(cp_build)
    add_output_options(cp_build)
    cp_build.set_defaults(handler=cmd_control_plane_build, human=_human_control_plane)
    return parser


# -- control-plane commands ----------------------------------------------------------


def cmd_control_plane_copy(args: argparse.Namespace) -> dict[str, Any]:
    from steps.controlplane import core as controlplane

    spec = controlplane.parse_source(args.source_ref)
    with make_client(args) as client:
        source_client: RegistryClient | None = None
        if (
            isinstance(spec, controlplane.RegistrySourceSpec)
            and spec.reference.registry != client.registry
        ):
            source_client = RegistryClient(
                spec.reference.registry,
                credentials=controlplane.source_credentials(),
                plain_http=args.source_plain_http,
                insecure_hosts=tuple(args.insecure_registry),
                verify=str(args.source_ca_file) if args.source_ca_file else True,
            )
        try:
            result = controlplane.copy_image(
                spec,
                client,
                args.namespace,
                args.tag,
                source_client=source_client,
                dry_run=args.dry_run,
            )
        finally:
            if source_client is not None:
                source_client.close()
        stats = client.stats
        log.info(
            "%d request(s) to %s, %d blob(s) uploaded (%d bytes), %d mounted, %d already present",
            stats.requests,
            client.registry,
            stats.blobs_uploaded,
            stats.bytes_uploaded,
            stats.blobs_mounted,
            stats.blobs_existing,
        )
    if args.out:  # a dry run writes its plan too: the next dry-run step reads it
        write_json_file(args.out, result)
    return result


def cmd_control_plane_build(args: argparse.Namespace) -> dict[str, Any]:
    from steps.controlplane import core as controlplane

    context_dir, dockerfile = controlplane.resolve_build_paths(
        args.source, args.context, args.dockerfile
    )
    context = controlplane.assemble_context(context_dir, dockerfile)
    build_args = controlplane.parse_build_args(args.build_arg)
    if args.dry_run:
        return _control_plane_build_plan(args, context)
    with make_client(args) as client:
        built = controlplane.build_and_push(
            lambda: controlplane.DockerEngine.connect(wait=args.engine_wait),
            client,
            args.namespace,
            args.tag,
            context,
            credentials=client.credentials,
            build_args=build_args,
            platform=args.platform,
        )
    result = built.to_json()
    if args.out:
        write_json_file(args.out, result)
    return result


def _control_plane_build_plan(args: argparse.Namespace, context: Any) -> dict[str, Any]:
    """What a build would do: the context is assembled and checked, the tag looked up;
    no engine is contacted and nothing is pushed."""
    from steps.controlplane import core as controlplane
    from steps.oci.reference import check_tag
    from steps.release.images import control_plane_reference

    check_tag(args.tag)
    repository = controlplane.control_plane_repository(args.namespace)
    with make_client(args) as client:
        current = client.head_manifest(repository, args.tag)
    full = f"{args.registry}/{repository}"
    result: dict[str, Any] = {
        "repository": full,
        "tag": args.tag,
        "status": "existing" if current else "would-build",
        "contextEntries": len(context.entries),
        "dryRun": True,
        "reference": control_plane_reference(args.registry, args.namespace, current.digest)
        if current
        else None,
        "digest": str(current.digest) if current else None,
    }
    if args.out:
        write_json_file(args.out, result)
    return result


def _human_control_plane(result: dict[str, Any]) -> str:
    return f"{result['status']:<10} {result['reference']}"


# -- entry point -----------------------------------------------------------------


def _setup_logging(verbose: bool, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("alga-release: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger("alga_release")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for usage errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_BAD_INPUT
    _setup_logging(args.verbose, args.quiet)
    handler: Handler = args.handler
    want_json = bool(getattr(args, "json", False))
    try:
        result = handler(args)
    except ReleaseError as exc:
        sys.stderr.write(redact(f"alga-release: error: {exc.diagnostics()}") + "\n")
        if want_json:
            sys.stdout.write(redact(json.dumps(exc.to_json(), indent=2)) + "\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("alga-release: interrupted\n")
        return 130
    except Exception:  # the boundary: anything unexpected is exit 1, redacted
        sys.stderr.write(redact("alga-release: internal error\n" + traceback.format_exc()))
        return EXIT_ERROR
    if want_json:
        sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    else:
        human = getattr(args, "human", None)
        text = human(result) if human else json.dumps(result, indent=2, sort_keys=True)
        if text:
            sys.stdout.write(text + "\n")
    return 0


def main() -> None:
    sys.exit(run())


__all__ = ["BadInput", "build_parser", "main", "run"]

if __name__ == "__main__":
    main()
