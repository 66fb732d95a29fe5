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


def make_client(args: argparse.Namespace) -> RegistryClient:
    credentials = Credentials.from_environment(args.password_file)
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
    from steps import charts
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
    if args.out and not args.dry_run:
        write_json_file(args.out, result)
    return result


def _human_charts(result: dict[str, Any]) -> str:
    lines = []
    for name, entry in sorted(result.get("charts", {}).items()):
        lines.append(f"{name:<16} {entry['version']:<28} {entry['status']:<10} {entry['digest']}")
    return "\n".join(lines)


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
        help="package and compare with the registry, but push nothing",
    )
    add_registry_options(publish)
    add_output_options(publish)
    publish.set_defaults(handler=cmd_charts_publish, human=_human_charts)
    return parser


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
