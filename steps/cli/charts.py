"""``alga-release charts publish``: package every chart and push it as a Helm OCI artifact."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from steps.cli import options
from steps.cli.context import context_of, make_client, quick_read, write_out
from steps.cli.output import human_charts
from steps.cli.signing import signer_of

log = logging.getLogger("alga_release")


def load_config(args: argparse.Namespace) -> Any:
    """The release config named by ``--config`` (once per run)."""
    from steps.config import load_config as load

    path = args.config
    return context_of(args).memo(("config", str(path)), lambda: load(path))


def cmd_charts_publish(args: argparse.Namespace) -> dict[str, Any]:
    from steps.charts import publish as charts

    config = load_config(args)
    signer = signer_of(args)  # a bad or missing key stops the run before any push
    source: Path = args.source
    # Packaged once per run: publish's precheck (a dry run of this step) and its real run
    # push the very archives that were checked, without packaging them again.
    key = ("chart-artifacts", str(source.resolve()), repr(config), args.version_policy)
    artifacts = context_of(args).memo(
        (*key, tuple(args.chart)),
        lambda: _package(charts, source, config, args.version_policy, args.chart or None),
    )

    def quick() -> dict[str, Any]:
        # every version already holds these very bytes: nothing to push, and the standard
        # library's HEADs tell (the full client and its HTTP library stay unimported)
        with context_of(args).quick_reader(args) as reader:
            plans = charts.unchanged_plans(reader, args.namespace, artifacts)
            if args.dry_run:
                done = charts.dry_run_json(reader.registry, plans)
            else:
                done = charts.results_json(charts.unchanged_results(reader.registry, plans))
            _log_stats(reader.stats)
            return done

    # With a key, unchanged charts are signed again (idempotent): that needs the client.
    result = quick_read(args, quick) if signer is None else None
    if result is None:
        with make_client(args) as client:
            plans = charts.plan_charts(client, args.namespace, artifacts)
            if args.dry_run:
                result = charts.dry_run_json(client.registry, plans)
            else:
                result = charts.results_json(
                    charts.push_plan(client, args.namespace, plans, signer=signer)
                )
            _log_stats(client.stats)
    return write_out(args, result)


def _log_stats(stats: Any) -> None:
    log.info(
        "%d request(s), %d blob(s) uploaded (%d bytes), %d already present",
        stats.requests,
        stats.blobs_uploaded,
        stats.bytes_uploaded,
        stats.blobs_existing,
    )  # a dry run writes its plan too: the next dry-run step reads it


def _package(charts: Any, source: Path, config: Any, policy: str, only: list[str] | None) -> Any:
    log.info("packaging charts from %s (%s)", source, config.origin)
    return charts.build_artifacts(source, config, policy, only)


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    actions = options.group(
        commands, "charts", "package and push the Helm charts", "charts_command"
    )
    publish = options.command(
        actions,
        "publish",
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
    options.source(publish)
    options.config(publish)
    options.version_policy(publish)
    publish.add_argument(
        "--chart",
        action="append",
        default=[],
        metavar="NAME",
        help="publish only this chart (repeatable; default: every chart in the config)",
    )
    options.out(publish)
    options.dry_run(publish, "package and compare with the registry, but push nothing")
    options.signing(publish, "sign every chart")
    options.leaf(publish)
    publish.set_defaults(handler=cmd_charts_publish, human=human_charts)
