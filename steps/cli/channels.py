"""Channel commands: ``channel move``, ``channel refresh``, ``promote``, ``history`` and
``rollback``.

The gates and the move itself live in :mod:`steps.channels`; this module turns flags into
calls and results into output.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from steps.cli import options
from steps.cli.context import make_client, quick_first, read_result, write_out
from steps.cli.output import human_history, human_move, human_refresh
from steps.cli.release import access, anonymous
from steps.cli.signing import (
    channel_agreement,
    issuer_of,
    signature_gate,
    signer_of,
    trusted_of,
)
from steps.errors import BadInput, Downgrade, ReleaseNotFound, UnreadableChannel

log = logging.getLogger("alga_release")


def _move(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    from steps.names import Channel, ReleaseVersion

    version = ReleaseVersion(args.version, "--version")
    channel = Channel(args.channel)
    if args.reason is not None and not args.reason.strip():
        args.reason = None  # an empty Argo parameter means "no reason"
    signer = signer_of(args)  # a bad or missing signing key stops the move before the registry
    # Without keys (no statement to issue, no signature gate), a channel already at the
    # release is answered on quick reads alone; the first write, or anything they do not
    # answer as the full client would, starts the move over on the full client.
    unkeyed = signer is None and not trusted_of(args)
    return write_out(
        args,
        quick_first(
            args, lambda: _moved(args, kind, version, channel, unkeyed=unkeyed), allowed=unkeyed
        ),
    )


def _moved(
    args: argparse.Namespace, kind: str, version: str, channel: str, *, unkeyed: bool
) -> dict[str, Any]:
    from steps.channels import move as channels
    from steps.names import release_repository
    from steps.release.verify import require_anonymous_pull

    with make_client(args) as client:
        repository = release_repository(args.namespace)
        head = client.head_manifest(repository, version)
        if head is None and args.dry_run and getattr(args, "manifest", None):
            return _dry_move(client, args, channel, version)
        if head is None:
            raise ReleaseNotFound(
                f"release {client.registry}/{repository}:{version} does not exist",
                hint="publish it first (alga-release publish), or check the version",
            )
        if unkeyed:  # no statement to issue, no signature gate
            there = channels.already_there(client, args.namespace, channel, head.digest)
            if there is not None:
                return {**there.to_json(), "dryRun": bool(args.dry_run)}
        if not args.dry_run and anonymous(args):
            require_anonymous_pull(access(args), version)
        # a publish's dry run (its precheck) comes before the steps that sign this release
        precheck = args.dry_run and kind == "publish" and signer_of(args) is not None
        gate = None if precheck else signature_gate(args, client)
        verify = _verifier(args, channel) if kind != "publish" and not args.dry_run else None
        result = channels.move_channel(
            client,
            args.namespace,
            channel,
            head.digest,
            kind=kind,  # type: ignore[arg-type]
            allow_downgrade=args.allow_downgrade,
            reason=args.reason,
            actor=options.actor(),
            run=getattr(args, "run", None),
            dry_run=args.dry_run,
            verify=verify,
            timing=options.timing(args),
            issuer=None if precheck else issuer_of(args),
            gate=gate,
        )
    data = result.to_json()
    data["dryRun"] = bool(args.dry_run)
    return data


def _verifier(args: argparse.Namespace, channel: str) -> Callable[[Any], None]:
    """After a move: resolve the channel as an appliance does and compare digests."""
    from steps.release.verify import verify_channel

    def verify(digest: Any) -> None:
        verify_channel(
            access(args), channel, expected_digest=str(digest), anonymous=anonymous(args)
        )

    return verify


def _dry_move(client: Any, args: argparse.Namespace, channel: str, version: str) -> dict[str, Any]:
    """A dry-run release: the release is not in the registry; judge the move from the
    manifest step's result (the downgrade gate; completeness needs the pushed pieces)."""
    from steps.channels import move as channels

    data = read_result(args, args.manifest, "manifest step result")
    before = channels.channel_state(client, args.namespace, channel)
    if before.unreadable and not (args.allow_downgrade and args.reason):
        raise UnreadableChannel(
            f"channel {channel}'s current release {before.digest} cannot be read "
            f"({before.problem}); a move would have no downgrade check",
            hint="to move anyway: --allow-downgrade --reason '<why>'",
        )
    problem = channels.downgrade_problem(
        before.version, version, allow_downgrade=args.allow_downgrade, reason=args.reason
    )
    if problem:
        raise Downgrade(
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


def cmd_channel_move(args: argparse.Namespace) -> dict[str, Any]:
    return _move(args, args.kind)


def cmd_promote(args: argparse.Namespace) -> dict[str, Any]:
    return _move(args, "promote")


def cmd_history(args: argparse.Namespace) -> dict[str, Any]:
    from steps.channels import audit
    from steps.channels import move as channels
    from steps.names import Channel

    channel = Channel(args.channel)
    with make_client(args) as client:
        records = channels.history(client, args.namespace, channel)
        current = channels.channel_state(client, args.namespace, channel)
        refreshes = audit.read_refreshes(client, args.namespace, channel)
        judged = channel_agreement(args, client, channel, current, records)
    return {
        "channel": channel,
        "current": {
            "digest": str(current.digest) if current.digest else None,
            "version": current.version,
        },
        "moves": [r.to_json() for r in records],
        "refreshes": [r.to_json() for r in refreshes.entries] if refreshes else [],
        "statement": judged.to_json(),
    }


def cmd_rollback(args: argparse.Namespace) -> dict[str, Any]:
    from steps.channels import move as channels
    from steps.names import Channel

    channel = Channel(args.channel)
    if not args.reason or not args.reason.strip():
        raise BadInput("rollback needs a non-empty --reason (it is recorded in the history)")
    signer_of(args)  # a bad key, or --require-signing without one, stops here (exit 2)
    with make_client(args) as client:
        verify = None if args.dry_run else _verifier(args, channel)

        result = channels.rollback_channel(
            client,
            args.namespace,
            channel,
            reason=args.reason,
            actor=options.actor(),
            run=args.run,
            dry_run=args.dry_run,
            verify=verify,
            timing=options.timing(args),
            issuer=issuer_of(args),
            gate=signature_gate(args, client),
        )
    data = result.to_json()
    data["dryRun"] = bool(args.dry_run)
    return write_out(args, data)


def cmd_channel_refresh(args: argparse.Namespace) -> dict[str, Any]:
    from steps.channels.refresh import refresh_channel
    from steps.errors import SigningKeyRequired
    from steps.names import Channel

    channel = Channel(args.channel)
    issuer = issuer_of(args)
    if issuer is None:
        raise SigningKeyRequired(
            "channel refresh signs a new statement: it needs the release signing key",
            hint="pass --signing-key FILE (or ALGA_SIGNING_KEY) with its password in "
            "ALGA_SIGNING_KEY_PASSWORD or --signing-key-password-file",
        )
    with make_client(args) as client:
        result = refresh_channel(
            client,
            args.namespace,
            channel,
            issuer,
            min_age=args.min_age,
            actor=options.actor() or "",
            run=args.run,
            dry_run=args.dry_run,
            timing=options.timing(args),
            gate=signature_gate(args, client),
        )
    data = result.to_json()
    data["dryRun"] = bool(args.dry_run)
    return write_out(args, data)


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    def move_options(p: argparse.ArgumentParser, *, channel_required: bool = True) -> None:
        options.version(p)
        options.channel(p, required=channel_required)
        options.allow_downgrade(p)
        options.reason(p)
        options.dry_run(p, "check every gate, move nothing")
        options.out(p)
        options.verify_anonymous(p, "before and after the move")
        options.settle(p)
        options.signing(
            p,
            "refuse a release not signed by this key (or a --trusted-key), and sign the "
            "channel statement",
        )
        options.statement_expiry(p)

    actions = options.group(
        commands, "channel", "move a channel tag (the last step)", "channel_command"
    )
    move = options.command(
        actions,
        "move",
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
    options.run(move)
    options.leaf(move)
    move.set_defaults(handler=cmd_channel_move, human=human_move)

    promote = options.command(
        commands,
        "promote",
        help="re-point a channel (default stable) at a published, complete version",
        description="Promote a published version to a channel. Gates (exit 3 when one fails):\n"
        "the release manifest exists and validates; every artifact it references exists;\n"
        "the channel's current release is not newer (unless --allow-downgrade --reason);\n"
        "the channel did not move concurrently. Promoting the release the channel already\n"
        "points at is a successful no-op.",
        epilog="example:\n  alga-release promote --version 1.4.0 --channel stable",
    )
    move_options(promote, channel_required=False)
    options.run(promote)
    options.leaf(promote)
    promote.set_defaults(handler=cmd_promote, human=human_move)

    hist = options.command(
        commands,
        "history",
        help="every recorded move of a channel (who, when, from, to, why)",
        description="List the channel's recorded moves, oldest first. Every publish, promote\n"
        "and rollback records its move as a small OCI artifact in the release repository.",
        epilog="example:\n  alga-release history stable",
    )
    hist.add_argument("channel", metavar="CHANNEL", help="nightly or stable")
    options.trusted_keys(hist)
    options.leaf(hist)
    hist.set_defaults(handler=cmd_history, human=human_history)

    rollback = options.command(
        commands,
        "rollback",
        help="re-point a channel at the release it pointed at before its last move",
        description="Find, in the channel's history, the move that brought it to its current\n"
        "release, and move it back to where it was before (a recorded downgrade). The\n"
        "same gates as promote apply, except the downgrade one.",
        epilog="example:\n  alga-release rollback stable --reason 'login broken in 1.4.0'",
    )
    rollback.add_argument("channel", metavar="CHANNEL", help="nightly or stable")
    options.reason(rollback, "why (required)")
    options.run(rollback)
    options.dry_run(rollback, "check, move nothing")
    options.out(rollback)
    options.verify_anonymous(rollback, "after the move")
    options.settle(rollback)
    options.signing(
        rollback,
        "refuse to go back to a release not signed by this key (or a --trusted-key), "
        "and sign the channel statement",
    )
    options.statement_expiry(rollback)
    options.leaf(rollback)
    rollback.set_defaults(handler=cmd_rollback, human=human_move)

    refresh = options.command(
        actions,
        "refresh",
        help="re-issue a channel's signed statement with a new sequence and expiry",
        description="Re-issue <registry>/<namespace>/alga-appliance-release:statement.<channel>\n"
        "for the release the channel points at: the next sequence, issued now, expiring\n"
        "after --statement-expiry; nothing else changes (the tag, the release, the move\n"
        "history). A statement younger than --min-age is left as it is (exit 0). Refused\n"
        "(exit 3) when the channel tag and its statement disagree (finish the move first)\n"
        "or the release is not signed by the key. Recorded in `history` as a refresh.",
        epilog="example (weekly, as the CronWorkflow runs it):\n"
        "  alga-release channel refresh stable --signing-key release.key --json",
    )
    refresh.add_argument("channel", metavar="CHANNEL", help="nightly or stable")
    options.signing(refresh, "sign the statement")
    options.statement_expiry(refresh)
    options.statement_min_age(refresh)
    options.run(refresh, "the run recorded with the refresh")
    options.dry_run(refresh, "judge the channel and show the statement it would issue")
    options.out(refresh)
    options.settle(refresh)
    options.leaf(refresh)
    refresh.set_defaults(handler=cmd_channel_refresh, human=human_refresh)
