"""``alga-release bundle publish``: pin the overlay to the published charts, push it."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steps.cli import options
from steps.cli.charts import load_config
from steps.cli.context import context_of, make_client, quick_first, quick_read, write_out
from steps.cli.signing import signer_of

if TYPE_CHECKING:
    from steps.oci.reference import Digest

_DRY_RUN_DEFAULT_DIR = Path("\0default")  # a sentinel no real path can equal


def _dry_run_dir(args: argparse.Namespace) -> Path | None:
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
    from steps.release.preflight import preflight, preflight_key

    config = load_config(args)
    signer = signer_of(args)  # a bad or missing key stops the run before any push
    # The bundle names the values profile; a profile the appliance cannot use must not
    # be published under an immutable version.
    # once per run: publish's own preflight and its precheck's bundle step ask the same
    args.values_profile = context_of(args).memo(
        preflight_key(args.source, config, args.values_profile),
        lambda: preflight(args.source, config, args.values_profile),
    )
    standalone_dry_run = bool(args.dry_run) and context_of(args).standalone
    args.dry_run = _dry_run_dir(args)
    charts = context_of(args).kept_result(args.charts)
    held: list[bool] = []  # what the probe found: the quick unchanged answer needs it True

    def published(digest: Digest) -> bool:
        """The version tag holds these bytes: one HEAD, on a quick reader when the step
        runs on its own, on the run's client inside publish (its precheck is a dry run).
        A dry run on its own asks nothing: it may run with no registry at all."""
        repository = f"{args.namespace}/{bundle.BUNDLE_REPOSITORY}"

        def look() -> bool:
            found = context_of(args).client(args).head_manifest(repository, args.version)
            return found is not None and found.digest == digest

        held.append(quick_first(args, look))
        return held[-1]

    prepared = bundle.prepare_bundle(
        source=args.source,
        config=config,
        charts_file=args.charts,
        charts_data=charts,
        registry=args.registry,
        namespace=args.namespace,
        version=args.version,
        pin=args.chart_pin,
        source_url=args.source_url,
        revision=args.revision,
        kubectl=args.kubectl,
        render_dir=args.dry_run,
        values_profile=args.values_profile,
        verify_charts=args.verify_charts,
        memo=context_of(args).memo,
        tool_env=bundle.kustomize_env(options.environment()),
        published=None if standalone_dry_run else published,
    )
    if args.dry_run:
        result = bundle.dry_run_result(prepared, args.dry_run)
        # a dry-run release goes on to build its manifest from this
        write_out(args, {k: v for k, v in result.items() if k != "diff"})
        return result

    def quick() -> dict[str, Any]:
        # already published with these bytes: the standard library's HEADs tell
        with context_of(args).quick_reader(args) as reader:
            return bundle.unchanged_result(reader, prepared)

    # With a key, an unchanged bundle is signed again (idempotent): that needs the client;
    # a tag the probe found missing or other is the full client's to push or refuse.
    done = quick_read(args, quick) if signer is None and held == [True] else None
    if done is None:
        with make_client(args) as client:
            done = bundle.publish_prepared(client, prepared, signer=signer)
    return write_out(args, done)


def _human(result: dict[str, Any], paint: Any = None) -> str:
    from steps.bundle.publish import human_summary

    return human_summary(result)


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    actions = options.group(
        commands, "bundle", "render, validate and push the Flux config bundle", "bundle_command"
    )
    publish = options.command(
        actions,
        "publish",
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
    options.source(
        publish,
        "source checkout; the overlay is ee/appliance/flux in it unless --config says otherwise",
    )
    options.config(publish)
    publish.add_argument(
        "--charts",
        type=Path,
        required=True,
        metavar="FILE",
        help="charts.json written by `charts publish --out` (same --registry/--namespace)",
    )
    options.version(publish, "release version: SemVer 2 without '+', used as the bundle's tag")
    options.provenance(publish)
    options.chart_pin(publish)
    options.verify_charts(publish)
    options.values_profile(
        publish,
        "profile whose values keys the HelmReleases read (valuesFrom ...<profile>.yaml); "
        "default: the release config's (single-node)",
    )
    options.kubectl(publish)
    options.out(publish)
    publish.add_argument(
        "--dry-run",
        type=Path,
        nargs="?",
        const=_DRY_RUN_DEFAULT_DIR,
        default=_DRY_RUN_DEFAULT_DIR if options.dry_run_wanted() else None,
        metavar="DIR",
        help="write the rendered bundle to DIR (new or empty), print its diff against the "
        "overlay and the digest it would have; push nothing. Without DIR (or with env "
        "ALGA_DRY_RUN=true) the bundle goes next to --out (<out>.bundle/), else to a "
        "temporary folder",
    )
    options.signing(publish, "sign the bundle")
    options.leaf(publish)
    publish.set_defaults(handler=cmd_bundle_publish, human=_human)
