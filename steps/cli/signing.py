"""Signing at the CLI boundary: the run's signer and trusted keys, and ``keys generate``.

Every command that publishes takes ``--signing-key`` (:func:`steps.cli.options.signing`);
:func:`signer_of` turns it into one :class:`~steps.signing.cosign.Signer` per run (the key
is decrypted once: scrypt is deliberately slow) before anything is pushed, so a missing,
unreadable or wrongly-passworded key, or ``--require-signing`` without a key, stops the run
with exit 2 and nothing published. :func:`trusted_of` is the set a gate accepts: the
signing key's public key and every ``--trusted-key``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from steps.cli import options
from steps.cli.context import context_of
from steps.errors import SigningKeyRequired

log = logging.getLogger("alga_release")


def signer_of(args: argparse.Namespace) -> Any:
    """The run's Signer, or None when no ``--signing-key`` is configured.

    With ``--signing-key-origin`` (the Argo templates: the Kubernetes secret the key file
    is mounted from), a key file that does not exist is reported as that origin missing.
    """
    key_file = getattr(args, "signing_key", None)
    password_file = getattr(args, "signing_key_password_file", None)
    required = bool(getattr(args, "require_signing", False))
    if key_file is None and not required:
        return None  # nothing to load: the signing code (and cryptography) stays unimported
    origin = getattr(args, "signing_key_origin", None)
    if key_file is not None and origin and not key_file.exists():
        raise SigningKeyRequired(
            f"signing key {key_file} does not exist: it comes from {origin}, which is missing",
            hint="create it (`alga-release keys generate` makes a key pair), or point "
            "--signing-key / ALGA_SIGNING_KEY at the key",
        )
    from steps.signing.cosign import load_signer

    return context_of(args).memo(
        ("signer", str(key_file), str(password_file), required),
        lambda: load_signer(
            key_file,
            options.signing_password(password_file) if key_file else None,
            required=required,
            why="--require-signing / ALGA_REQUIRE_SIGNING",
        ),
    )


def trusted_of(args: argparse.Namespace) -> list[Any]:
    """The public keys a signature gate accepts ([] when none is configured)."""
    files = getattr(args, "trusted_key", None) or []
    if not files and signer_of(args) is None:
        return []  # no key at all: the signing code (and cryptography) stays unimported
    from steps.signing.gates import trusted_keys
    from steps.signing.keys import read_public_keys

    extra = read_public_keys(files)
    return trusted_keys(signer_of(args), extra)


def issuer_of(args: argparse.Namespace) -> Any:
    """Who issues channel statements in this run: an :class:`~steps.channels.vouch.Issuer`
    with the signing key, the trusted keys and ``--statement-expiry``; None without a
    signing key (then no statement is written)."""
    from steps.channels.vouch import DEFAULT_EXPIRY, Issuer

    signer = signer_of(args)
    if signer is None:
        return None
    expiry = getattr(args, "statement_expiry", None) or DEFAULT_EXPIRY
    return Issuer(signer, tuple(trusted_of(args)), expiry)


def signature_gate(args: argparse.Namespace, client: Any) -> Any:
    """The channel moves' signature gate as a callable ``gate(digest, release)`` (None when
    no signing or trusted key is configured): the release manifest and its bundle must
    carry a valid signature by a trusted key, re-verified on every move, never trusted from
    the run that published (exit 3 otherwise)."""
    trusted = trusted_of(args)
    if not trusted:
        return None
    from steps.signing.gates import require_signed  # with a key only (cryptography)

    namespace = args.namespace

    def gate(digest: Any, release: Any) -> None:
        require_signed(client, namespace, digest, release, trusted)
        log.info("release %s: manifest and bundle signed by a trusted key", digest)

    return gate


def channel_agreement(
    args: argparse.Namespace, client: Any, channel: str, current: Any, history: Any
) -> Any:
    """How the channel's tag, its history (``history``: its records, or None to read the
    index) and its signed statement agree
    (:func:`steps.channels.statement.agreement`); signatures judged by the trusted keys,
    when any are configured."""
    from steps.channels import audit
    from steps.channels.statement import agreement
    from steps.channels.timing import utc_now
    from steps.channels.vouch import read_statement

    if history is None:
        index = audit.read_index(client, args.namespace, channel)
        history = list(index.entries) if index else []
    seen = read_statement(client, args.namespace, channel, trusted_of(args))
    return agreement(channel, current.digest, current.version, history, seen, utc_now())


def signature_section(
    args: argparse.Namespace, client: Any, digest: Any, release: dict[str, Any]
) -> dict[str, Any] | None:
    """``inspect``/``verify``: each piece "signed by <key id>" or "UNSIGNED" (None when no
    key is configured to judge by), and image tags that moved away from ``imageDigests``."""
    from steps.release.images import image_drift

    section: dict[str, Any] = {
        "imageDrift": [d.to_json() for d in image_drift(client, args.namespace, release)]
    }
    trusted = trusted_of(args)
    if trusted:
        from steps.signing.gates import signature_report  # with a key only (cryptography)

        report = signature_report(client, args.namespace, digest, release, trusted)
        section["trustedKeys"] = [key.key_id for key in trusted]
        section["signatures"] = [piece.to_json() for piece in report]
    return section


def cmd_keys_generate(args: argparse.Namespace) -> dict[str, Any]:
    from steps.errors import SigningKeyPassword
    from steps.signing.keys import write_key_pair

    password = options.signing_password(args.signing_key_password_file)
    if password is None:
        raise SigningKeyPassword(
            "no password for the new key",
            hint=f"set {options.ENV_SIGNING_KEY_PASSWORD} or --signing-key-password-file "
            "(never on the command line)",
        )
    return write_key_pair(args.output_prefix, password).to_json()


def _human_keys(result: dict[str, Any], paint: Any = None) -> str:
    return (
        f"private key {result['privateKey']} (keep it secret; cosign's encrypted format)\n"
        f"public key  {result['publicKey']}\nkey id      {result['keyId']}"
    )


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from pathlib import Path

    actions = options.group(commands, "keys", "release signing keys", "keys_command")
    generate = options.command(
        actions,
        "generate",
        help="write a new ECDSA P-256 key pair in cosign's file format",
        description="Write <prefix>.key (cosign's encrypted private key, ENCRYPTED SIGSTORE\n"
        "PRIVATE KEY, mode 0600: what `cosign sign --key`, Flux and this tool read) and\n"
        "<prefix>.pub (the PKIX public key appliances and Flux trust). The password comes\n"
        f"from env {options.ENV_SIGNING_KEY_PASSWORD} (or {options.ENV_COSIGN_PASSWORD}) or\n"
        "--signing-key-password-file. Existing files are never overwritten.",
        epilog="example:\n"
        "  ALGA_SIGNING_KEY_PASSWORD=... alga-release keys generate --output-prefix release",
    )
    generate.add_argument(
        "--output-prefix",
        type=Path,
        default=Path("cosign"),
        metavar="PREFIX",
        help="write PREFIX.key and PREFIX.pub (default: cosign)",
    )
    options.signing_key_password_file(generate)
    options.output(generate)
    generate.set_defaults(handler=cmd_keys_generate, human=_human_keys)
