"""Release commands: ``images check``, ``manifest publish``, ``publish``, ``verify``,
``resolve``, ``inspect`` and ``diff``.

Handlers return a JSON-able dict, raise :class:`~steps.errors.ReleaseError` on failure, and
never print or exit (:mod:`steps.cli.app` does).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steps.cli import options
from steps.cli.charts import load_config
from steps.cli.context import (
    context_of,
    make_client,
    prepare_out_dir,
    quick_first,
    quick_read,
    read_result,
    write_out,
)
from steps.cli.output import human_inspect, human_publish, human_resolve
from steps.cli.signing import channel_agreement, signature_section, signer_of, trusted_of
from steps.errors import BadInput, ReleaseError, SigningKeyRequired, UnreadableChannel

if TYPE_CHECKING:
    from steps.oci.model import ManifestReader

log = logging.getLogger("alga_release")


def access(args: argparse.Namespace) -> Any:
    """How the consume-side calls reach the registry: the run's clients and settings."""
    from steps.release.verify import Access

    ctx = context_of(args)
    return Access(
        registry=args.registry,
        namespace=args.namespace,
        plain_http=bool(args.plain_http),
        insecure_hosts=tuple(args.insecure_registry),
        ca_file=str(args.ca_file) if args.ca_file else None,
        credentials=ctx.credentials(args),
        client=lambda anonymous: ctx.client(args, anonymous=anonymous),
        deadline=ctx.deadline(args),
    )


def anonymous(args: argparse.Namespace) -> bool:
    from steps.release.verify import anonymous_default

    return anonymous_default(args.registry, getattr(args, "verify_anonymous", None))


# -- images check ---------------------------------------------------------------------


def cmd_images_check(args: argparse.Namespace) -> dict[str, Any]:
    from steps.release import images

    wanted = images.parse_image_args(args.image)
    signer = signer_of(args)
    # the release pins the control plane by digest: with a key, it is signed here
    # (not in a dry run: the Argo templates give every step the key and ALGA_DRY_RUN)
    sign = signer is not None and not args.dry_run

    def check(client: ManifestReader) -> dict[str, Any]:
        checks = images.require_images(client, args.namespace, wanted)
        control_plane = images.resolve_control_plane(client, args.namespace, args.control_plane)
        return {
            "images": {c.key: c.tag for c in checks},
            "imageDigests": {c.key: str(c.digest) for c in checks},
            "controlPlane": control_plane,
        }

    def quick() -> dict[str, Any]:
        with context_of(args).quick_reader(args) as reader:
            return check(reader)

    # Nothing to sign: every tag present is answered on the standard library alone.
    result = None if sign else quick_read(args, quick)
    if result is None:
        with make_client(args) as client:
            result = check(client)
            if sign:
                assert signer is not None
                signed = signer.sign_reference(client, result["controlPlane"])
                result["controlPlaneSignedBy"] = signed.key_id
    return write_out(args, result)


# -- manifest publish ------------------------------------------------------------------


def cmd_manifest_publish(args: argparse.Namespace) -> dict[str, Any]:
    from steps.bundle.artifact import clean_source_url
    from steps.bundle.flux import helm_release_charts
    from steps.bundle.publish import git_source_url, read_overlay
    from steps.channels.releases import channel_state
    from steps.names import Channel, ReleaseVersion
    from steps.release import manifest as rm
    from steps.release import plan as release
    from steps.release import profiles
    from steps.release.provenance import RunDetails

    version = ReleaseVersion(args.version, "--version")
    channel = Channel(args.channel)
    signer = signer_of(args)  # a bad or missing key stops the run before any push
    run = RunDetails.parse(args.builder_id, args.run_id)
    config = load_config(args)
    profile = args.values_profile or config.values_profile
    charts = read_result(args, args.charts, "charts")
    bundle = read_result(args, args.bundle, "bundle")
    imgs = read_result(args, args.images, "images")
    source: Path = args.source
    overlay = config.overlay_dir(source)
    ctx = context_of(args)
    profile_values = ctx.memo(
        ("profile-values", str(overlay), profile),
        lambda: profiles.load_profile_values(overlay, profile),
    )
    # The charts the overlay's HelmReleases install must be exactly the release's charts.
    helm_releases = helm_release_charts(read_overlay(overlay))
    revision = release.commit_of(args.revision) if args.revision else None
    revision = revision or release.source_revision(source)
    # The same canonical URL the bundle records (credential-free, https, no .git), from
    # git when not given; only an https URL is a valid provenance source.
    source_url = clean_source_url(args.source_url) if args.source_url else git_source_url(source)
    provenance = {
        "source": source_url if source_url and source_url.startswith("https://") else None,
        "revision": revision,
        "created": release.revision_created(source, revision),
        "run": release.run_label(args.run),
    }
    receipt_keys = _receipt_keys(args.support_receipt_key) if args.support_receipt_key else None

    def publish() -> dict[str, Any]:
        with make_client(args) as client:
            state = channel_state(client, args.namespace, channel)
            if state.unreadable and (args.support_agent is None or receipt_keys is None):
                raise UnreadableChannel(
                    f"cannot carry supportAgent/supportReceiptKeys forward: channel {channel}'s "
                    f"current release {state.digest} cannot be read ({state.problem})",
                    hint="give them explicitly (--support-agent REF or '' for none, "
                    "--support-receipt-key ID=PEMFILE), or repair the channel first",
                )
            manifest = rm.build_manifest(
                version=version,
                channel=channel,
                values_profile=profile,
                images=imgs.get("images") or {},
                image_digests=imgs.get("imageDigests") or None,
                control_plane=str(imgs.get("controlPlane", "")),
                config=bundle,
                charts=charts,
                profile_values=profile_values,
                provenance=provenance,
                support_agent=args.support_agent,
                support_receipt_keys=receipt_keys,
                current=state.manifest,
            )
            rm.validate_manifest(manifest, helm_releases=helm_releases)
            pushed = release.push_release_manifest(
                client,
                args.namespace,
                manifest,
                dry_run=args.dry_run,
                timing=options.timing(args),
                signer=signer,
                run=run,
            )
        return {"version": version, "channel": channel, **pushed.to_json(), "manifest": manifest}

    # Unsigned, a release already published is answered on quick reads alone (a push, or
    # anything they do not answer as the full client would, starts over on it).
    return write_out(args, quick_first(args, publish, allowed=signer is None))


def _receipt_keys(values: list[str]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for value in values:
        key_id, sep, path = value.partition("=")
        if not sep or not key_id or not path:
            raise BadInput(f"--support-receipt-key {value!r}: expected ID=PEMFILE")
        try:
            keys[key_id] = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise BadInput(f"cannot read receipt key file {path}: {exc.strerror}") from None
    return keys


# -- resolve / verify / inspect (through the consume library) ------------------------------


def cmd_verify(args: argparse.Namespace) -> dict[str, Any]:
    from steps.names import Channel
    from steps.release.verify import check_channel

    channel = Channel(args.channel)
    expected = expected_config = None
    if args.manifest:
        data = read_result(args, args.manifest, "manifest step result")
        expected, expected_config = data.get("digest"), data.get("configDigest")
        if data.get("status") == "would-push":
            raise BadInput("the manifest step was a dry run; nothing to verify")

    def verify() -> dict[str, Any]:
        client = context_of(args).client(args, anonymous=anonymous(args))
        # one view of the registry for the checks (each image tag is read once, for its
        # piece and its drift), and the release the consume library verified, not read again
        with client.snapshot():
            result, release = check_channel(
                access(args),
                channel,
                expected_digest=expected,
                expected_config=expected_config,
                anonymous=anonymous(args),
            )
            result.update(_signatures(args, result["manifestDigest"], gate=True, release=release))
        result["statement"] = _statement(args, channel)
        return result

    # Without a trusted key (no signature to judge), the reads are quick ones; a failed
    # check, or anything they do not answer as the full client would, is judged again on it.
    return write_out(args, quick_first(args, verify, allowed=not trusted_of(args)))


def _statement(args: argparse.Namespace, channel: str) -> dict[str, Any]:
    """The channel's signed statement against its tag and history. With a trusted key,
    anything but a consistent, unexpired statement refuses (exit 3, naming the half state
    and how to finish it), and then the channel is resolved once more through the consume
    library with the trusted keys, as an appliance that verifies does. Without one, the
    state is reported (appliances without keys do not read statements)."""
    from steps.channels.move import channel_state
    from steps.release.verify import resolve

    client = context_of(args).client(args, anonymous=anonymous(args))
    state = channel_state(client, args.namespace, channel)
    judged = channel_agreement(args, client, channel, state, None)
    trusted = trusted_of(args)
    if not trusted:
        if judged.state not in ("consistent", "missing", "empty"):
            log.warning("%s", judged.message)
        return dict(judged.to_json())
    if not judged.ok:
        raise judged.error()
    log.info("%s", judged.message)
    if len(trusted) <= 2:  # the consume library takes one or two trusted keys
        resolved = resolve(
            access(args),
            channel,
            anonymous=anonymous(args),
            trusted_keys=[key.pem().decode() for key in trusted],
        )
        log.info(
            "resolved %s with the trusted keys as an appliance that verifies: %s, statement "
            "sequence %s",
            channel,
            resolved.manifest_digest,
            (resolved.statement or {}).get("sequence"),
        )
    return dict(judged.to_json())


def _signatures(
    args: argparse.Namespace,
    digest_text: str,
    *,
    gate: bool,
    provenance: bool = False,
    release: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Signature status per piece and image-tag drift; with ``gate`` and a trusted key,
    refuse (exit 3) a release or bundle not signed by a trusted key, then a release whose
    SLSA provenance is missing, untrusted or invalid. ``provenance`` (or ``gate`` with a
    trusted key) adds the ``provenance`` report. ``release``: the release JSON of
    ``digest_text`` when the caller already holds it verified (else it is read)."""
    from steps.channels.move import read_release
    from steps.oci.reference import Digest
    from steps.release.provenance import provenance_report, require_provenance

    client = context_of(args).client(args, anonymous=anonymous(args))
    digest = Digest.parse(digest_text)
    if release is None:  # not already verified against the digest by the caller
        _, _, _, release = read_release(client, args.namespace, digest)
    trusted = trusted_of(args)
    if provenance and not trusted:
        raise BadInput(
            "--provenance needs a key to verify the attestation with",
            hint="pass --trusted-key PUB (the release key's public key; env ALGA_TRUSTED_KEYS)",
        )
    if gate and trusted:
        from steps.signing.gates import require_signed  # with a key only (cryptography)

        require_signed(client, args.namespace, digest, release, trusted)
    section = signature_section(args, client, digest, release) or {}
    if (gate or provenance) and trusted:
        report = provenance_report(client, args.namespace, digest, release, trusted)
        if gate:
            require_provenance(report)
        section["provenance"] = report.to_json()
    return section


def cmd_resolve(args: argparse.Namespace) -> dict[str, Any]:
    from steps.release.verify import resolve

    resolution = resolve(access(args), args.ref, anonymous=bool(args.anonymous))
    data: dict[str, Any] = resolution.to_json()
    return data


def cmd_inspect(args: argparse.Namespace) -> dict[str, Any]:
    from steps.release.verify import inspect

    result = inspect(access(args), args.ref, anonymous=bool(args.anonymous))
    result.update(
        _signatures(args, result["manifestDigest"], gate=False, provenance=bool(args.provenance))
    )
    return result


def inspect_exit_code(args: argparse.Namespace, result: dict[str, Any]) -> int:
    """``inspect`` exits 3 (refused) when a piece is missing, or (``--provenance``) when
    no trusted attestation describes the release: scripts can gate on it."""
    provenance = result.get("provenance")
    if provenance is not None and not provenance.get("verified"):
        return 3
    return 0 if result.get("complete") else 3


# -- diff ---------------------------------------------------------------------------------


def _release_for(client: Any, namespace: str, ref: str) -> tuple[Any, dict[str, Any]]:
    from steps.channels import move as channels
    from steps.names import CHANNELS, ReleaseVersion
    from steps.oci.reference import Digest

    target: Any = Digest.parse(ref) if ref.startswith("sha256:") else ref
    if isinstance(target, str) and target not in CHANNELS:
        ReleaseVersion(target, "--version")
    digest, _, _, release = channels.read_release(client, namespace, target)
    return digest, release


def cmd_diff(args: argparse.Namespace) -> dict[str, Any]:
    from steps.release import diff

    with make_client(args) as client:
        digest_a, release_a = _release_for(client, args.namespace, args.a)
        digest_b, release_b = _release_for(client, args.namespace, args.b)
        files_a = diff.bundle_files(client, release_a)
        files_b = diff.bundle_files(client, release_b)
    result = diff.diff_releases(release_a, release_b, files_a, files_b)
    result["a"] = {
        "ref": args.a,
        "version": release_a.get("version"),
        "manifestDigest": str(digest_a),
    }
    result["b"] = {
        "ref": args.b,
        "version": release_b.get("version"),
        "manifestDigest": str(digest_b),
    }
    return result


def diff_exit_code(args: argparse.Namespace, result: dict[str, Any]) -> int:
    """With ``--exit-code``: 1 when the releases differ, as ``git diff --exit-code``."""
    if not args.exit_code_wanted:
        return 0
    same = result.get("identical") or result["a"]["manifestDigest"] == result["b"]["manifestDigest"]
    return 0 if same else 1


def _human_diff(result: dict[str, Any], paint: Any = None) -> str:
    from steps.release import diff

    return diff.human_diff(result)


# -- publish (the whole release in one process) -------------------------------------------------


def cmd_publish(args: argparse.Namespace) -> dict[str, Any]:
    from steps.names import Channel, ReleaseVersion
    from steps.release import images
    from steps.release import plan as release
    from steps.release.provenance import RunDetails

    # Every check that needs no registry comes first: a push uses up immutable versions.
    wanted = images.parse_image_args(args.image)
    ReleaseVersion(args.version, "--version")
    Channel(args.channel)
    RunDetails.parse(args.builder_id, args.run_id)
    if args.source_url:
        from steps.bundle.artifact import clean_source_url

        clean_source_url(args.source_url)  # a scheme that is not recorded: before any push
    from steps.release.preflight import preflight_key

    config = load_config(args)
    context_of(args).memo(  # the bundle steps find it done (the same key)
        preflight_key(args.source, config, args.values_profile),
        lambda: release.preflight(args.source, config, args.values_profile),
    )
    signer = signer_of(args)  # a bad or missing signing key stops the run before any push
    if args.verify_charts and signer is None:
        raise SigningKeyRequired(
            "--verify-charts without a signing key: every appliance's Flux would refuse the "
            "unsigned charts",
            hint="pass --signing-key FILE (or ALGA_SIGNING_KEY), or drop --verify-charts",
        )
    params = release.PublishParams(
        source=str(args.source),
        version=args.version,
        channel=args.channel,
        images=wanted,
        control_plane=args.control_plane,
        config=str(args.config) if args.config else None,
        values_profile=args.values_profile,
        source_url=args.source_url,
        revision=args.revision,
        version_policy=args.version_policy,
        chart_pin=args.chart_pin,
        verify_charts=bool(args.verify_charts),
        allow_downgrade=args.allow_downgrade,
        reason=args.reason,
        run=args.run,
        run_id=args.run_id,
        builder_id=args.builder_id,
        dry_run=args.dry_run,
        verify_anonymous=args.verify_anonymous,
        signing=release.SigningParams(
            key=str(args.signing_key) if args.signing_key else None,
            password_file=str(args.signing_key_password_file)
            if args.signing_key_password_file
            else None,
            required=bool(args.require_signing),
            trusted_keys=tuple(str(p) for p in args.trusted_key),
        ),
        statement_expiry=f"{int(args.statement_expiry.total_seconds())}s"
        if args.statement_expiry
        else None,
        registry=release.RegistryParams(
            registry=args.registry,
            namespace=args.namespace,
            plain_http=args.plain_http,
            insecure_registries=tuple(args.insecure_registry),
            ca_file=str(args.ca_file) if args.ca_file else None,
            password_file=str(args.password_file) if args.password_file else None,
        ),
    )
    parser: argparse.ArgumentParser = args.parser
    ctx = context_of(args)
    ctx.standalone = False  # the steps share the run's client (no quick reads)
    results: dict[str, Any] = {}

    def run_step(step: Any) -> Any:
        try:
            step_args = parser.parse_args(step.argv)
        except SystemExit:  # a generated argv that does not parse is a bug here
            raise ReleaseError(
                f"internal error: the {step.name} step's arguments do not parse: {step.argv}"
            ) from None
        step_args.run_context = ctx  # one client, one token cache, results kept in memory
        return step_args.handler(step_args)

    import tempfile  # publish only: the steps on their own write where --out says

    with tempfile.TemporaryDirectory(prefix="alga-release-") as tmp:
        outdir = prepare_out_dir(args.out_dir) if args.out_dir else Path(tmp)
        steps = release.release_steps(params, str(outdir))
        if not args.dry_run:
            # Nothing is pushed before everything pushable is known good (steps.release.plan).
            log.info("[0] precheck: every step as a dry run, before the first push")
            release.precheck(params, str(outdir / "precheck"), run_step, ctx.client(args))
        for number, step in enumerate(steps, 1):
            log.info("[%d/%d] %s", number, len(steps), step.name)
            results[step.name] = run_step(step)
    charts = results["charts"].get("charts", {})
    manifest = results["manifest"]
    return {
        "version": args.version,
        "channel": args.channel,
        "manifestDigest": manifest.get("digest"),
        "configDigest": manifest.get("configDigest"),
        "repository": manifest.get("repository"),
        "charts": {
            name: {"version": c["version"], "digest": c["digest"]} for name, c in charts.items()
        },
        "config": {k: results["bundle"].get(k) for k in ("repository", "tag", "digest")},
        "controlPlane": results["images"].get("controlPlane"),
        "images": results["images"].get("images"),
        "channelMove": results["channel"],
        "verified": results.get("verify", {}).get("verified", False),
        "dryRun": bool(args.dry_run),
        **({"attestation": manifest["attestation"]} if manifest.get("attestation") else {}),
    }


# -- parsers ---------------------------------------------------------------------------


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    actions = options.group(commands, "images", "check the release's images", "images_command")
    check = options.command(
        actions,
        "check",
        help="every app image tag exists; the control plane resolves to a digest",
        description="HEAD each app image tag in <registry>/<namespace>/<repo> and resolve the\n"
        "control-plane image to <registry>/<namespace>/alga-appliance-control-plane@sha256:...\n"
        "Missing images are refused (exit 3), all named at once.",
    )
    options.images(check)
    options.out(check)
    options.dry_run(check, "check; sign nothing")
    options.signing(check, "sign the control-plane image the release pins")
    options.leaf(check)
    check.set_defaults(handler=cmd_images_check)

    actions = options.group(
        commands, "manifest", "build, validate and push the release manifest", "manifest_command"
    )
    mpub = options.command(
        actions,
        "publish",
        help="build the release manifest from the earlier steps' results and push :<version>",
        description="Build the release manifest (schema alga.appliance.release/v1) from the\n"
        "charts, bundle and images steps' JSON results and the overlay's profile values,\n"
        "validate it (JSON Schema and the appliance's consumer contract) and push it as\n"
        "<registry>/<namespace>/alga-appliance-release:<version>. A published version is\n"
        "immutable: the same bytes are a no-op, other bytes are refused (exit 3).\n"
        "supportAgent and supportReceiptKeys are carried forward from the channel's\n"
        "current release unless given.",
    )
    options.source(mpub)
    options.config(mpub)
    options.version(mpub)
    options.channel(mpub)
    options.values_profile(mpub)
    for flag, name in (("--charts", "charts"), ("--bundle", "bundle"), ("--images", "images")):
        mpub.add_argument(
            flag, type=Path, required=True, metavar="FILE", help=f"{name} step result ({name}.json)"
        )
    options.provenance(mpub)
    mpub.add_argument(
        "--run",
        metavar="NAME",
        help="record this run in the manifest's provenance (explicit only: a run name in "
        "the manifest makes every re-run a different release; the channel move records "
        "the run anyway)",
    )
    mpub.add_argument(
        "--support-agent",
        metavar="REF",
        help="support agent image (default: carried from the channel)",
    )
    mpub.add_argument(
        "--support-receipt-key",
        action="append",
        default=[],
        metavar="ID=PEMFILE",
        help="support receipt public key (repeatable, at most 2)",
    )
    options.out(mpub)
    options.dry_run(mpub, "build and validate; push nothing")
    options.settle(mpub)
    options.signing(mpub, "sign the release manifest and attest its SLSA provenance")
    options.attestation_run(mpub)
    options.leaf(mpub)
    mpub.set_defaults(handler=cmd_manifest_publish)

    verify = options.command(
        commands,
        "verify",
        help="resolve a channel as an appliance does and check every digest and piece",
        description="Resolve <channel> through the consume library (the same code appliances\n"
        "vendor), compare the manifest and config digests with what was published, and\n"
        "check that every artifact the release references is present. By default, for\n"
        "ghcr.io, all of this is done anonymously, as appliances pull: a package left\n"
        "private fails here, naming the package to make public. With a key (--signing-key\n"
        "or --trusted-key), the release and its bundle must be signed by a trusted key and\n"
        "the release's SLSA provenance attested by one (exit 3: ProvenanceMissing,\n"
        "ProvenanceUntrusted or ProvenanceInvalid).",
    )
    options.channel(verify)
    verify.add_argument(
        "--manifest",
        type=Path,
        metavar="FILE",
        help="the manifest step's result (expected digests)",
    )
    options.verify_anonymous(verify, "resolve and check")
    options.out(verify)
    options.signing(verify, "trust this key's signatures (refuse an unsigned release)")
    options.leaf(verify)
    verify.set_defaults(handler=cmd_verify)

    for name, handler, human, text, exit_code in (
        (
            "resolve",
            cmd_resolve,
            human_resolve,
            "resolve a channel, version or sha256: digest to a verified release manifest",
            None,
        ),
        (
            "inspect",
            cmd_inspect,
            human_inspect,
            "what a release references, and whether each piece is in the registry "
            "(exit 3 when a piece is missing)",
            inspect_exit_code,
        ),
    ):
        sub = options.command(
            commands,
            name,
            help=text,
            description=text,
            epilog=f"example:\n  alga-release {name} nightly\n  alga-release {name} 1.4.0 --json",
        )
        sub.add_argument("ref", metavar="REF", help="nightly, stable, a version or sha256:...")
        options.anonymous(sub)
        if name == "inspect":
            options.trusted_keys(sub)
            sub.add_argument(
                "--provenance",
                action="store_true",
                help="also show the release's SLSA provenance attestation, verified under "
                "the --trusted-key keys (exit 3 when none describes the release)",
            )
        options.leaf(sub)
        sub.set_defaults(handler=handler, human=human)
        if exit_code is not None:
            sub.set_defaults(exit_code=exit_code)

    diff_parser = options.command(
        commands,
        "diff",
        help="what changed between two releases (versions, channels or digests)",
        description="Compare two releases: chart versions, image tags, control plane, the\n"
        "rendered overlay file by file, and the profile values.",
        epilog="example:\n  alga-release diff stable nightly\n"
        "  alga-release diff 1.3.0 1.4.0 --json --exit-code",
    )
    diff_parser.add_argument("a", metavar="A", help="a version, channel or sha256: digest")
    diff_parser.add_argument("b", metavar="B", help="a version, channel or sha256: digest")
    diff_parser.add_argument(
        "--exit-code",
        dest="exit_code_wanted",
        action="store_true",
        help="exit 1 when the releases differ, 0 when they are the same (as git diff)",
    )
    options.leaf(diff_parser)
    diff_parser.set_defaults(handler=cmd_diff, human=_human_diff, exit_code=diff_exit_code)

    publish = options.command(
        commands,
        "publish",
        help="publish a whole release: charts, bundle, images, manifest, channel, verify",
        description="Run every release step in one process, in the order the Argo workflow\n"
        "runs them (charts -> bundle -> images -> manifest -> channel -> verify), each\n"
        "through the same code as its own subcommand, sharing one registry client. The\n"
        "channel moves last, only after everything it references is present; then the\n"
        "channel is resolved the way an appliance resolves it and every digest is checked.",
        epilog="example (first manual publish from a workstation):\n"
        "  ALGA_REGISTRY_USERNAME=<user> ALGA_REGISTRY_PASSWORD=$(gh auth token) \\\n"
        "    alga-release publish --source ~/src/alga-psa --version 1.4.0 --channel nightly \\\n"
        "      --image algaCore=62cdce38 --image workflowWorker=62cdce38 \\\n"
        "      --image emailService=62cdce38 --image temporalWorker=62cdce38 \\\n"
        "      --control-plane 62cdce38",
    )
    options.source(publish)
    options.config(publish)
    options.version(publish)
    options.channel(publish)
    options.images(publish)
    options.values_profile(publish)
    options.provenance(publish)
    options.version_policy(publish)
    options.chart_pin(publish)
    options.verify_charts(publish)
    options.allow_downgrade(publish)
    options.reason(publish, "why the channel moves")
    options.run(publish, "the run, recorded with the channel move (not in the manifest)")
    options.verify_anonymous(publish, "before the channel moves and after")
    publish.add_argument(
        "--out-dir",
        type=Path,
        metavar="DIR",
        help="keep each step's JSON result here (default: a temp folder)",
    )
    options.dry_run(publish, "do everything but write to the registry")
    options.signing(
        publish,
        "sign every chart, the bundle, the control plane, the release and the channel "
        "statement, and attest the release's SLSA provenance",
    )
    options.statement_expiry(publish, passed_on=True)
    options.attestation_run(publish)
    options.leaf(publish)
    publish.set_defaults(handler=cmd_publish, human=human_publish)
