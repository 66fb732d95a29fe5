"""Release-level subcommands: images, manifest, channel, promote, publish and friends.

Wired into the parser by :func:`steps.cli.build_parser`; kept apart from
``cli.py`` only to keep that file small. Same rules: handlers return a
JSON-able dict, raise :class:`~steps.errors.ReleaseError` on failure, and
never print or exit.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from steps.errors import BadInput, Refused, ReleaseError

log = logging.getLogger("alga_release")


def _cli() -> Any:
    from steps.cli import app as cli

    return cli


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(f"cannot read the {what} file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise BadInput(f"the {what} file {path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadInput(f"the {what} file {path} must hold a JSON object")
    return data


def _write_out(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    if getattr(args, "out", None):
        _cli().write_json_file(args.out, result)
    return result


def _version(text: str) -> str:
    from steps.channels.move import parse_version
    from steps.oci.errors import InvalidReference
    from steps.oci.reference import check_tag

    parse_version(text, "--version")
    try:
        check_tag(text)
    except InvalidReference as exc:
        raise BadInput(f"--version {text!r} is not a valid OCI tag: {exc.message}") from None
    return text


# -- images check ---------------------------------------------------------------------


def cmd_images_check(args: argparse.Namespace) -> dict[str, Any]:
    from steps.release import images

    wanted = images.parse_image_args(args.image)
    with _cli().make_client(args) as client:
        checks = images.require_images(client, args.namespace, wanted)
        control_plane = images.resolve_control_plane(client, args.namespace, args.control_plane)
    result = {
        "images": {c.key: c.tag for c in checks},
        "imageDigests": {c.key: str(c.digest) for c in checks},
        "controlPlane": control_plane,
    }
    return _write_out(args, result)


# -- manifest publish ------------------------------------------------------------------


def cmd_manifest_publish(args: argparse.Namespace) -> dict[str, Any]:
    from steps.bundle.artifact import clean_source_url
    from steps.bundle.flux import helm_release_charts
    from steps.bundle.publish import git_source_url, read_overlay
    from steps.channels.move import channel_state, check_channel
    from steps.config import load_config
    from steps.release import manifest as rm
    from steps.release import plan as release
    from steps.release import profiles

    version = _version(args.version)
    channel = check_channel(args.channel)
    config = load_config(args.config)
    profile = args.values_profile or config.values_profile
    charts = _read_json(args.charts, "charts")
    bundle = _read_json(args.bundle, "bundle")
    imgs = _read_json(args.images, "images")
    source: Path = args.source
    profile_values = profiles.load_profile_values(config.overlay_dir(source), profile)
    # The charts the overlay's HelmReleases install must be exactly the release's charts.
    helm_releases = helm_release_charts(read_overlay(config.overlay_dir(source)))
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
    with _cli().make_client(args) as client:
        state = channel_state(client, args.namespace, channel)
        if state.unreadable and (args.support_agent is None or receipt_keys is None):
            raise Refused(
                f"cannot carry supportAgent/supportReceiptKeys forward: channel {channel}'s "
                f"current release {state.digest} cannot be read ({state.problem})",
                hint="give them explicitly (--support-agent REF or '' for none, "
                "--support-receipt-key ID=PEMFILE), or repair the channel first",
            )
        current = state.manifest
        manifest = rm.build_manifest(
            version=version,
            channel=channel,
            values_profile=profile,
            images=imgs.get("images") or {},
            control_plane=str(imgs.get("controlPlane", "")),
            config=bundle,
            charts=charts,
            profile_values=profile_values,
            provenance=provenance,
            support_agent=args.support_agent,
            support_receipt_keys=receipt_keys,
            current=current,
        )
        rm.validate_manifest(manifest, helm_releases=helm_releases)
        pushed = release.push_release_manifest(
            client, args.namespace, manifest, dry_run=args.dry_run, timing=_timing(args)
        )
    result = {"version": version, "channel": channel, **pushed.to_json(), "manifest": manifest}
    return _write_out(args, result)


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


# -- channel move / promote --------------------------------------------------------------


def _move(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    from steps.channels import move as channels
    from steps.oci.reference import Digest

    version = _version(args.version)
    channel = channels.check_channel(args.channel)
    if args.reason is not None and not args.reason.strip():
        args.reason = None  # an empty Argo parameter means "no reason"
    with _cli().make_client(args) as client:
        repository = channels.release_repository(args.namespace)
        head = client.head_manifest(repository, version)
        if head is None and args.dry_run and getattr(args, "manifest", None):
            return _write_out(args, _dry_move(client, args, channel, version))
        if head is None:
            raise Refused(
                f"release {client.registry}/{repository}:{version} does not exist",
                hint="publish it first (alga-release publish), or check the version",
            )
        if not args.dry_run:
            _anonymous_precheck(args, version)
        verify = None
        if kind != "publish" and not args.dry_run:

            def verify(digest: Digest) -> None:
                _verify_channel(args, channel, digest)

        result = channels.move_channel(
            client,
            args.namespace,
            channel,
            head.digest,
            kind=kind,  # type: ignore[arg-type]
            allow_downgrade=args.allow_downgrade,
            reason=args.reason,
            run=getattr(args, "run", None),
            dry_run=args.dry_run,
            verify=verify,
            timing=_timing(args),
        )
    data = result.to_json()
    data["dryRun"] = bool(args.dry_run)
    return _write_out(args, data)


def _anonymous_precheck(args: argparse.Namespace, version: str) -> None:
    """Before a channel moves: when appliances pull anonymously (``--verify-anonymous``,
    default for ghcr.io), the release and every piece it references must be pullable
    without credentials. A package left private is refused here, named, before the move."""
    from steps.channels import move as channels

    if not _anonymous(args):
        return
    try:
        resolution = resolve_ref(args, version, anonymous=True)
    except ReleaseError as exc:
        raise Refused(
            f"release {version} cannot be pulled anonymously: {exc.message}",
            hint=f"appliances pull without credentials: make the package "
            f"{args.namespace}/{channels.RELEASE_REPOSITORY_NAME} public",
        ) from None
    with _cli().make_client(args, anonymous=True) as anonymous:
        pieces = channels.release_pieces(anonymous, args.namespace, resolution.manifest)
    private = [p for p in pieces if p.present is False]
    if private:
        packages = sorted({p.reference.rsplit("@", 1)[0].rsplit(":", 1)[0] for p in private})
        raise Refused(
            f"release {version}: {len(private)} piece(s) cannot be pulled anonymously: "
            + ", ".join(p.reference for p in private),
            hint="appliances pull without credentials: make these packages public (or push "
            "what is missing): " + ", ".join(packages),
        )
    log.info("release %s: every piece pullable anonymously", version)


def _dry_move(client: Any, args: argparse.Namespace, channel: str, version: str) -> dict[str, Any]:
    """A dry-run release: the release is not in the registry; judge the move from the
    manifest step's result (the downgrade gate; completeness needs the pushed pieces)."""
    from steps.channels import move as channels

    data = _read_json(args.manifest, "manifest step result")
    before = channels.channel_state(client, args.namespace, channel)
    if before.unreadable and not (args.allow_downgrade and args.reason):
        raise Refused(
            f"channel {channel}'s current release {before.digest} cannot be read "
            f"({before.problem}); a move would have no downgrade check",
            hint="to move anyway: --allow-downgrade --reason '<why>'",
        )
    problem = channels.downgrade_problem(
        before.version, version, allow_downgrade=args.allow_downgrade, reason=args.reason
    )
    if problem:
        raise Refused(
            f"channel {channel}: {problem}",
            hint="to roll back on purpose: --allow-downgrade --reason '<why>'",
        )
    return {
        "channel": channel,
        "from": str(before.digest) if before.digest else None,
        "fromVersion": before.version,
        "to": data.get("digest"),
        "version": version,
        "moved": False,
        "record": None,
        "dryRun": True,
    }


def _human_move(result: dict[str, Any]) -> str:
    what = (
        "would move" if result.get("dryRun") else "moved" if result.get("moved") else "already at"
    )
    head = f"{result['channel']}: {what} "
    if result.get("moved") or result.get("dryRun"):
        head += f"{result.get('fromVersion') or '(none)'} -> "
    lines = [head + f"{result['version']} ({result['to']})"]
    if result.get("record"):
        lines.append(f"recorded as {result['record']}")
    return "\n".join(lines)


def cmd_channel_move(args: argparse.Namespace) -> dict[str, Any]:
    return _move(args, args.kind)


def cmd_promote(args: argparse.Namespace) -> dict[str, Any]:
    return _move(args, "promote")


def _verify_channel(args: argparse.Namespace, channel: str, digest: Any) -> None:
    """After a move: resolve the channel as an appliance does and compare digests."""
    verify_release(args, channel, expected_digest=str(digest))


# -- resolve / verify / inspect (through the consume library) ------------------------------


def _consume() -> Any:
    from consume import release_consume

    return release_consume


def _anonymous(args: argparse.Namespace) -> bool:
    choice = getattr(args, "verify_anonymous", None)
    if choice is None:  # default: anonymous where appliances pull anonymously
        return bool(args.registry == "ghcr.io")
    return bool(choice)


def resolve_ref(args: argparse.Namespace, ref: str, *, anonymous: bool = False) -> Any:
    """Resolve ``ref`` exactly as an appliance would (the consume library)."""
    from steps.channels.move import release_repository
    from steps.errors import Transient
    from steps.oci.auth import Credentials

    rc = _consume()
    credentials = None if anonymous else Credentials.from_environment(args.password_file)
    try:
        return rc.resolve(
            ref,
            registry=args.registry,
            repository=release_repository(args.namespace),
            credentials=(credentials.username, credentials.password) if credentials else None,
            ca_file=str(args.ca_file) if args.ca_file else None,
            plain_http=args.plain_http,
            insecure_hosts=tuple(args.insecure_registry),
        )
    except rc.ConsumeError as exc:
        kind = {2: BadInput, 3: Refused, 75: Transient}.get(exc.exit_code)
        message = f"resolving {ref} as an appliance would: {exc.message}"
        hint = exc.hint
        if anonymous and isinstance(exc, rc.AuthError):
            hint = (
                f"appliances pull anonymously: make the package "
                f"{args.namespace}/alga-appliance-release (and every package it references) "
                "public, or verify with --no-verify-anonymous"
            )
        if kind is None:
            from steps.errors import ReleaseError

            raise ReleaseError(message, hint=hint) from None
        raise kind(message, hint=hint) from None


def verify_release(
    args: argparse.Namespace,
    channel: str,
    *,
    expected_digest: str | None,
    expected_config: str | None = None,
) -> dict[str, Any]:
    from steps.channels import move as channels

    anonymous = _anonymous(args)
    resolution = resolve_ref(args, channel, anonymous=anonymous)
    problems = []
    if expected_digest and resolution.manifest_digest != expected_digest:
        problems.append(
            f"channel {channel} resolves to {resolution.manifest_digest}, expected "
            f"{expected_digest}"
        )
    if expected_config and resolution.config_digest != expected_config:
        problems.append(
            f"the release's config digest is {resolution.config_digest}, expected {expected_config}"
        )
    with _cli().make_client(args, anonymous=anonymous) as client:
        pieces = channels.release_pieces(client, args.namespace, resolution.manifest)
    for piece in pieces:
        if piece.present is False:
            problems.append(
                f"{piece.kind} {piece.name} missing: {piece.reference}"
                + (f" ({piece.detail})" if piece.detail else "")
            )
    if problems:
        raise Refused(
            f"verification of channel {channel} failed:\n  " + "\n  ".join(problems),
            hint="the channel may have moved concurrently, or a piece is private or deleted"
            + ("; appliances pull anonymously, so make every package public" if anonymous else ""),
        )
    log.info(
        "verified: %s -> %s (%s), %d pieces present%s",
        channel,
        resolution.version,
        resolution.manifest_digest,
        len(pieces),
        " anonymously" if anonymous else "",
    )
    return {
        "verified": True,
        "channel": channel,
        "version": resolution.version,
        "manifestDigest": resolution.manifest_digest,
        "configDigest": resolution.config_digest,
        "anonymous": anonymous,
        "pieces": [p.to_json() for p in pieces],
    }


def cmd_verify(args: argparse.Namespace) -> dict[str, Any]:
    from steps.channels.move import check_channel

    channel = check_channel(args.channel)
    expected = expected_config = None
    if args.manifest:
        data = _read_json(args.manifest, "manifest step result")
        expected, expected_config = data.get("digest"), data.get("configDigest")
        if data.get("status") == "would-push":
            raise BadInput("the manifest step was a dry run; nothing to verify")
    result = verify_release(
        args, channel, expected_digest=expected, expected_config=expected_config
    )
    return _write_out(args, result)


def cmd_resolve(args: argparse.Namespace) -> dict[str, Any]:
    resolution = resolve_ref(args, args.ref, anonymous=bool(args.anonymous))
    data: dict[str, Any] = resolution.to_json()
    return data


def _human_resolve(result: dict[str, Any]) -> str:
    m = result.get("manifest", {})
    rows = [
        ("reference", result.get("reference")),
        ("version", result.get("version")),
        ("channel", m.get("channel")),
        ("manifest digest", result.get("manifestDigest")),
        ("config digest", result.get("configDigest")),
        ("bundle", f"{m.get('config', {}).get('repository')}@{m.get('config', {}).get('digest')}"),
        ("control plane", m.get("controlPlane")),
        ("values profile", m.get("valuesProfile")),
    ]
    rows += [(f"image {k}", v) for k, v in sorted((m.get("images") or {}).items())]
    rows += [(f"chart {k}", v) for k, v in sorted((m.get("charts") or {}).items())]
    return "\n".join(f"{k:<24} {v}" for k, v in rows)


def cmd_inspect(args: argparse.Namespace) -> dict[str, Any]:
    from steps.channels import move as channels

    resolution = resolve_ref(args, args.ref, anonymous=bool(args.anonymous))
    with _cli().make_client(args, anonymous=bool(args.anonymous)) as client:
        pieces = channels.release_pieces(client, args.namespace, resolution.manifest)
    return {
        "reference": args.ref,
        "version": resolution.version,
        "channel": resolution.manifest.get("channel"),
        "manifestDigest": resolution.manifest_digest,
        "configDigest": resolution.config_digest,
        "complete": all(p.present is not False for p in pieces),
        "pieces": [p.to_json() for p in pieces],
    }


def _human_inspect(result: dict[str, Any]) -> str:
    lines = [
        f"release {result['version']} ({result['reference']})",
        f"  manifest {result['manifestDigest']}",
        f"  config   {result['configDigest']}",
        "",
        f"{'kind':<14} {'name':<16} {'present':<8} reference",
    ]
    for p in result["pieces"]:
        mark = {True: "yes", False: "MISSING", None: "n/a"}[p["present"]]
        lines.append(
            f"{p['kind']:<14} {p['name']:<16} {mark:<8} {p['reference']}"
            + (f"  ({p['detail']})" if p["detail"] else "")
        )
    lines.append("")
    lines.append("complete" if result["complete"] else "INCOMPLETE: some pieces are missing")
    return "\n".join(lines)


# -- history / rollback / diff ---------------------------------------------------------


def cmd_history(args: argparse.Namespace) -> dict[str, Any]:
    from steps.channels import move as channels

    channel = channels.check_channel(args.channel)
    with _cli().make_client(args) as client:
        records = channels.history(client, args.namespace, channel)
        current = channels.channel_state(client, args.namespace, channel)
    return {
        "channel": channel,
        "current": {
            "digest": str(current.digest) if current.digest else None,
            "version": current.version,
        },
        "moves": [r.to_json() for r in records],
    }


def _human_history(result: dict[str, Any]) -> str:
    lines = [
        f"channel {result['channel']}: now {result['current']['version'] or '(none)'}"
        f" {result['current']['digest'] or ''}".rstrip(),
        "",
    ]
    if not result["moves"]:
        return "\n".join([*lines, "(no recorded moves)"])
    lines.append(f"{'time (UTC)':<28} {'kind':<9} {'from':<14} {'to':<14} {'actor':<24} reason")
    for m in result["moves"]:
        lines.append(
            f"{m['time']:<28} {m['kind']:<9} {m.get('fromVersion') or '(none)':<14} "
            f"{m['version']:<14} {m['actor']:<24} {m.get('reason') or ''}"
            + (f"  [run {m['run']}]" if m.get("run") else "")
        )
    return "\n".join(lines)


def cmd_rollback(args: argparse.Namespace) -> dict[str, Any]:
    from steps.channels import move as channels
    from steps.oci.reference import Digest

    channel = channels.check_channel(args.channel)
    if not args.reason or not args.reason.strip():
        raise BadInput("rollback needs a non-empty --reason (it is recorded in the history)")
    with _cli().make_client(args) as client:
        verify = None
        if not args.dry_run:

            def verify(digest: Digest) -> None:
                _verify_channel(args, channel, digest)

        result = channels.rollback_channel(
            client,
            args.namespace,
            channel,
            reason=args.reason,
            run=args.run,
            dry_run=args.dry_run,
            verify=verify,
            timing=_timing(args),
        )
    data = result.to_json()
    data["dryRun"] = bool(args.dry_run)
    return _write_out(args, data)


def _release_for(client: Any, namespace: str, ref: str) -> tuple[Any, dict[str, Any]]:
    from steps.channels import move as channels
    from steps.oci.reference import Digest

    target: Any = Digest.parse(ref) if ref.startswith("sha256:") else ref
    if isinstance(target, str) and target not in channels.CHANNELS:
        _version(target)
    digest, _, _, release = channels.read_release(client, namespace, target)
    return digest, release


def cmd_diff(args: argparse.Namespace) -> dict[str, Any]:
    from steps.release import diff

    with _cli().make_client(args) as client:
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


def _human_diff(result: dict[str, Any]) -> str:
    from steps.release import diff

    return diff.human_diff(result)


# -- publish (the whole release in one process) -------------------------------------------------


def cmd_publish(args: argparse.Namespace) -> dict[str, Any]:
    from steps.channels.move import check_channel
    from steps.config import load_config
    from steps.release import images
    from steps.release import plan as release

    # Every check that needs no registry comes first: a push uses up immutable versions.
    wanted = images.parse_image_args(args.image)
    _version(args.version)
    check_channel(args.channel)
    release.preflight(args.source, load_config(args.config), args.values_profile)
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
        allow_downgrade=args.allow_downgrade,
        reason=args.reason,
        run=args.run,
        dry_run=args.dry_run,
        verify_anonymous=args.verify_anonymous,
        registry=release.RegistryParams(
            registry=args.registry,
            namespace=args.namespace,
            plain_http=args.plain_http,
            insecure_registries=tuple(args.insecure_registry),
            ca_file=str(args.ca_file) if args.ca_file else None,
            password_file=str(args.password_file) if args.password_file else None,
        ),
    )
    parser = _cli().build_parser()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="alga-release-") as tmp:
        outdir = str(args.out_dir) if args.out_dir else tmp
        Path(outdir).mkdir(parents=True, exist_ok=True)
        steps = release.release_steps(params, outdir)
        for number, step in enumerate(steps, 1):
            log.info("[%d/%d] %s", number, len(steps), step.name)
            try:
                step_args = parser.parse_args(step.argv)
            except SystemExit:  # a generated argv that does not parse is a bug here
                raise ReleaseError(
                    f"internal error: the {step.name} step's arguments do not parse: {step.argv}"
                ) from None
            results[step.name] = step_args.handler(step_args)
    charts = results["charts"].get("charts", {})
    manifest = results["manifest"]
    summary: dict[str, Any] = {
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
    }
    return summary


def _human_publish(result: dict[str, Any]) -> str:
    move = result.get("channelMove") or {}
    config = result.get("config") or {}
    lines = [
        f"release {result['version']} -> {result['channel']}"
        + (" (dry run: nothing written)" if result.get("dryRun") else ""),
        f"  manifest       {result.get('repository')}@{result.get('manifestDigest')}",
        f"  bundle         {config.get('repository')}@{config.get('digest')}",
        f"  control plane  {result.get('controlPlane')}",
    ]
    for key, tag in sorted((result.get("images") or {}).items()):
        lines.append(f"  image          {key}={tag}")
    for name, chart in sorted((result.get("charts") or {}).items()):
        lines.append(f"  chart          {name} {chart['version']}")
    if move.get("moved"):
        lines.append(
            f"  channel        {result['channel']}: {move.get('fromVersion') or '(none)'}"
            f" -> {move.get('version')}"
        )
    elif not result.get("dryRun"):
        lines.append(f"  channel        {result['channel']} already at {move.get('version')}")
    if result.get("verified"):
        lines.append("  verified       resolved as an appliance does; every piece present")
    return "\n".join(lines)


# -- parsers ---------------------------------------------------------------------------


# -- shared options ----------------------------------------------------------------------


def _opt_out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, metavar="FILE", help="also write the JSON result here")


def _opt_run(p: argparse.ArgumentParser, what: str = "the run recorded with the move") -> None:
    p.add_argument(
        "--run", default=_cli()._env("ALGA_RUN"), metavar="NAME", help=f"{what} (env ALGA_RUN)"
    )


def _opt_dry_run(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--dry-run",
        action="store_true",
        default=_cli()._env_flag("ALGA_DRY_RUN"),
        help=f"{what} (env ALGA_DRY_RUN=true)",
    )


def _opt_reason(p: argparse.ArgumentParser, what: str = "why") -> None:
    p.add_argument(
        "--reason",
        default=_cli()._env("ALGA_REASON"),
        metavar="TEXT",
        help=f"{what} (recorded in the channel history; env ALGA_REASON)",
    )


def _opt_allow_downgrade(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-downgrade",
        action="store_true",
        default=_cli()._env_flag("ALGA_ALLOW_DOWNGRADE"),
        help="allow the channel to move to an older version (needs --reason; "
        "env ALGA_ALLOW_DOWNGRADE=true)",
    )


def _opt_verify_anonymous(p: argparse.ArgumentParser, when: str) -> None:
    p.add_argument(
        "--verify-anonymous",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"{when}, resolve without credentials as appliances pull (default: on for ghcr.io)",
    )


# -- the channels protocol's settle delay (helper "channels"; to move into options.py) ------


def _opt_settle(p: argparse.ArgumentParser) -> None:
    from steps.channels.move import DEFAULT_SETTLE

    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not 0 <= value <= 600:
            raise argparse.ArgumentTypeError(f"{text} is outside 0..600 seconds")
        return value

    p.add_argument(
        "--settle",
        type=seconds,
        default=seconds(_cli()._env("ALGA_SETTLE") or str(DEFAULT_SETTLE)),
        metavar="SECONDS",
        help="wait this long after writing a channel or version tag before reading it back, "
        f"to see concurrent writers (default {DEFAULT_SETTLE}; env ALGA_SETTLE)",
    )


def _timing(args: argparse.Namespace) -> Any:
    from steps.channels.move import DEFAULT_SETTLE, Timing

    return Timing(settle=getattr(args, "settle", DEFAULT_SETTLE))


def add_release_commands(commands: Any) -> None:
    cli = _cli()
    formatter = cli._Formatter

    def source_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--source",
            type=Path,
            required=True,
            metavar="DIR",
            help="source checkout (alga-psa layout unless --config says otherwise)",
        )
        p.add_argument(
            "--config",
            type=Path,
            default=cli._env("ALGA_RELEASE_CONFIG"),
            metavar="FILE",
            help="release config (env ALGA_RELEASE_CONFIG)",
        )

    def image_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--image",
            action="append",
            default=[],
            metavar="KEY=TAG",
            help="an app image tag: algaCore=, workflowWorker=, emailService=, "
            "temporalWorker= (all four required; bare tags)",
        )
        p.add_argument(
            "--control-plane",
            required=True,
            metavar="TAG|sha256:D",
            help="control-plane image in <registry>/<ns>/alga-appliance-control-plane, "
            "by tag or digest; pinned by digest in the release",
        )

    def move_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--version", required=True, metavar="V", help="release version")
        p.add_argument("--channel", required=True, metavar="C", help="nightly or stable")
        _opt_allow_downgrade(p)
        _opt_reason(p)
        _opt_dry_run(p, "check every gate, move nothing")
        _opt_out(p)
        _opt_verify_anonymous(p, "before and after the move")
        _opt_settle(p)

    # images check
    images = commands.add_parser(
        "images", help="check the release's images", formatter_class=formatter
    )
    images_sub = images.add_subparsers(dest="images_command", metavar="ACTION", required=True)
    check = images_sub.add_parser(
        "check",
        formatter_class=formatter,
        help="every app image tag exists; the control plane resolves to a digest",
        description="HEAD each app image tag in <registry>/<namespace>/<repo> and resolve the\n"
        "control-plane image to <registry>/<namespace>/alga-appliance-control-plane@sha256:...\n"
        "Missing images are refused (exit 3), all named at once.",
    )
    image_options(check)
    _opt_out(check)
    cli.add_registry_options(check)
    cli.add_output_options(check)
    check.set_defaults(handler=cmd_images_check)

    # manifest publish
    manifest = commands.add_parser(
        "manifest", help="build, validate and push the release manifest", formatter_class=formatter
    )
    manifest_sub = manifest.add_subparsers(dest="manifest_command", metavar="ACTION", required=True)
    mpub = manifest_sub.add_parser(
        "publish",
        formatter_class=formatter,
        help="build the release manifest from the earlier steps' results and push :<version>",
        description="Build the release manifest (schema alga.appliance.release/v1) from the\n"
        "charts, bundle and images steps' JSON results and the overlay's profile values,\n"
        "validate it (JSON Schema and the appliance's consumer contract) and push it as\n"
        "<registry>/<namespace>/alga-appliance-release:<version>. A published version is\n"
        "immutable: the same bytes are a no-op, other bytes are refused (exit 3).\n"
        "supportAgent and supportReceiptKeys are carried forward from the channel's\n"
        "current release unless given.",
    )
    source_options(mpub)
    mpub.add_argument("--version", required=True, metavar="V")
    mpub.add_argument("--channel", required=True, metavar="C", help="nightly or stable")
    mpub.add_argument(
        "--values-profile",
        metavar="P",
        help="profile whose values go into the manifest (default: the config's)",
    )
    mpub.add_argument(
        "--charts",
        type=Path,
        required=True,
        metavar="FILE",
        help="charts step result (charts.json)",
    )
    mpub.add_argument(
        "--bundle",
        type=Path,
        required=True,
        metavar="FILE",
        help="bundle step result (bundle.json)",
    )
    mpub.add_argument(
        "--images",
        type=Path,
        required=True,
        metavar="FILE",
        help="images step result (images.json)",
    )
    mpub.add_argument("--source-url", metavar="URL", help="source repository URL (provenance)")
    mpub.add_argument("--revision", metavar="REV", help="source git revision (provenance)")
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
    _opt_out(mpub)
    _opt_dry_run(mpub, "build and validate; push nothing")
    _opt_settle(mpub)
    cli.add_registry_options(mpub)
    cli.add_output_options(mpub)
    mpub.set_defaults(handler=cmd_manifest_publish)

    # channel move
    channel = commands.add_parser(
        "channel", help="move a channel tag (the last step)", formatter_class=formatter
    )
    channel_sub = channel.add_subparsers(dest="channel_command", metavar="ACTION", required=True)
    move = channel_sub.add_parser(
        "move",
        formatter_class=formatter,
        help="point a channel at a published version, behind the promote gates",
        description="Point <registry>/<namespace>/alga-appliance-release:<channel> at :<version>\n"
        "by re-putting the exact manifest bytes, after checking that the release is\n"
        "complete and not a downgrade; records the move in the channel history.",
    )
    move_options(move)
    move.add_argument(
        "--manifest",
        type=Path,
        metavar="FILE",
        help="the manifest step's result; lets a dry run judge a release that was not pushed",
    )
    move.add_argument(
        "--kind",
        choices=("publish", "promote"),
        default="publish",
        help="how the move is recorded in the history",
    )
    _opt_run(move)
    cli.add_registry_options(move)
    cli.add_output_options(move)
    move.set_defaults(handler=cmd_channel_move, human=_human_move)

    # promote
    promote = commands.add_parser(
        "promote",
        formatter_class=formatter,
        help="re-point a channel (default stable) at a published, complete version",
        description="Promote a published version to a channel. Gates (exit 3 when one fails):\n"
        "the release manifest exists and validates; every artifact it references exists;\n"
        "the channel's current release is not newer (unless --allow-downgrade --reason);\n"
        "the channel did not move concurrently. Promoting the release the channel already\n"
        "points at is a successful no-op.",
        epilog="example:\n  alga-release promote --version 1.4.0 --channel stable",
    )
    move_options(promote)
    promote.set_defaults(channel="stable")
    for action in promote._actions:
        if action.dest == "channel":
            action.required = False
            action.help = "channel to move (default stable)"
    _opt_run(promote)
    cli.add_registry_options(promote)
    cli.add_output_options(promote)
    promote.set_defaults(handler=cmd_promote, human=_human_move)

    # history / rollback / diff
    hist = commands.add_parser(
        "history",
        formatter_class=formatter,
        help="every recorded move of a channel (who, when, from, to, why)",
        description="List the channel's recorded moves, oldest first. Every publish, promote\n"
        "and rollback records its move as a small OCI artifact in the release repository.",
        epilog="example:\n  alga-release history stable",
    )
    hist.add_argument("channel", metavar="CHANNEL", help="nightly or stable")
    cli.add_registry_options(hist)
    cli.add_output_options(hist)
    hist.set_defaults(handler=cmd_history, human=_human_history)

    rollback = commands.add_parser(
        "rollback",
        formatter_class=formatter,
        help="re-point a channel at the release it pointed at before its last move",
        description="Find, in the channel's history, the move that brought it to its current\n"
        "release, and move it back to where it was before (a recorded downgrade). The\n"
        "same gates as promote apply, except the downgrade one.",
        epilog="example:\n  alga-release rollback stable --reason 'login broken in 1.4.0'",
    )
    rollback.add_argument("channel", metavar="CHANNEL", help="nightly or stable")
    _opt_reason(rollback, "why (required)")
    _opt_run(rollback)
    _opt_dry_run(rollback, "check, move nothing")
    _opt_out(rollback)
    _opt_verify_anonymous(rollback, "after the move")
    _opt_settle(rollback)
    cli.add_registry_options(rollback)
    cli.add_output_options(rollback)
    rollback.set_defaults(handler=cmd_rollback, human=_human_move)

    diff_parser = commands.add_parser(
        "diff",
        formatter_class=formatter,
        help="what changed between two releases (versions, channels or digests)",
        description="Compare two releases: chart versions, image tags, control plane, the\n"
        "rendered overlay file by file, and the profile values.",
        epilog="example:\n  alga-release diff stable nightly\n"
        "  alga-release diff 1.3.0 1.4.0 --json",
    )
    diff_parser.add_argument("a", metavar="A", help="a version, channel or sha256: digest")
    diff_parser.add_argument("b", metavar="B", help="a version, channel or sha256: digest")
    cli.add_registry_options(diff_parser)
    cli.add_output_options(diff_parser)
    diff_parser.set_defaults(handler=cmd_diff, human=_human_diff)

    # verify
    verify = commands.add_parser(
        "verify",
        formatter_class=formatter,
        help="resolve a channel as an appliance does and check every digest and piece",
        description="Resolve <channel> through the consume library (the same code appliances\n"
        "vendor), compare the manifest and config digests with what was published, and\n"
        "check that every artifact the release references is present. By default, for\n"
        "ghcr.io, all of this is done anonymously, as appliances pull: a package left\n"
        "private fails here, naming the package to make public.",
    )
    verify.add_argument("--channel", required=True, metavar="C", help="nightly or stable")
    verify.add_argument(
        "--manifest",
        type=Path,
        metavar="FILE",
        help="the manifest step's result (expected digests)",
    )
    _opt_verify_anonymous(verify, "resolve and check")
    _opt_out(verify)
    cli.add_registry_options(verify)
    cli.add_output_options(verify)
    verify.set_defaults(handler=cmd_verify)

    # resolve / inspect
    for name, handler, human, text in (
        (
            "resolve",
            cmd_resolve,
            _human_resolve,
            "resolve a channel, version or sha256: digest to a verified release manifest",
        ),
        (
            "inspect",
            cmd_inspect,
            _human_inspect,
            "what a release references, and whether each piece is in the registry",
        ),
    ):
        sub = commands.add_parser(
            name,
            formatter_class=formatter,
            help=text,
            description=text,
            epilog=f"example:\n  alga-release {name} nightly\n  alga-release {name} 1.4.0 --json",
        )
        sub.add_argument("ref", metavar="REF", help="nightly, stable, a version or sha256:...")
        sub.add_argument(
            "--anonymous",
            action="store_true",
            help="do not send credentials (as an appliance pulls)",
        )
        cli.add_registry_options(sub)
        cli.add_output_options(sub)
        sub.set_defaults(handler=handler, human=human)

    # publish
    publish = commands.add_parser(
        "publish",
        formatter_class=formatter,
        help="publish a whole release: charts, bundle, images, manifest, channel, verify",
        description="Run every release step in one process, in the order the Argo workflow\n"
        "runs them (charts -> bundle -> images -> manifest -> channel -> verify), each\n"
        "through the same code as its own subcommand. The channel moves last, only after\n"
        "everything it references is present; then the channel is resolved the way an\n"
        "appliance resolves it and every digest is checked.",
        epilog="example (first manual publish from a workstation):\n"
        "  ALGA_REGISTRY_USERNAME=<user> ALGA_REGISTRY_PASSWORD=$(gh auth token) \\\n"
        "    alga-release publish --source ~/src/alga-psa --version 1.4.0 --channel nightly \\\n"
        "      --image algaCore=62cdce38 --image workflowWorker=62cdce38 \\\n"
        "      --image emailService=62cdce38 --image temporalWorker=62cdce38 \\\n"
        "      --control-plane 62cdce38",
    )
    source_options(publish)
    publish.add_argument("--version", required=True, metavar="V")
    publish.add_argument("--channel", required=True, metavar="C", help="nightly or stable")
    image_options(publish)
    publish.add_argument("--values-profile", metavar="P", help="default: the config's profile")
    publish.add_argument("--source-url", metavar="URL", help="source repository URL (provenance)")
    publish.add_argument("--revision", metavar="REV", help="source git revision (provenance)")
    publish.add_argument(
        "--version-policy",
        choices=("content", "exact"),
        default="content",
        help="chart versions (see `charts publish --help`)",
    )
    publish.add_argument(
        "--chart-pin",
        choices=("version", "digest"),
        default="version",
        help="pin HelmReleases by chart version (default) or digest",
    )
    _opt_allow_downgrade(publish)
    _opt_reason(publish, "why the channel moves")
    _opt_run(publish, "the run, recorded with the channel move (not in the manifest)")
    _opt_verify_anonymous(publish, "before the channel moves and after")
    publish.add_argument(
        "--out-dir",
        type=Path,
        metavar="DIR",
        help="keep each step's JSON result here (default: a temp folder)",
    )
    _opt_dry_run(publish, "do everything but write to the registry")
    cli.add_registry_options(publish)
    cli.add_output_options(publish)
    publish.set_defaults(handler=cmd_publish, human=_human_publish)
