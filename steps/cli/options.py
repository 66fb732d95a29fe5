"""Every command-line option, declared once, with its environment default.

This is the only module under ``steps/`` that reads the process environment (through
:data:`ENVIRON`, which tests may replace). An option with an environment variable says so
in its ``--help``; a boolean variable is read by :func:`env_bool`, which knows exactly
``1/true/yes/on`` and ``0/false/no/off`` (any case) and refuses anything else with exit 2,
naming the variable: ``ALGA_DRY_RUN=maybe`` must never mean "publish for real".

A command group module asks for the options it takes (``options.registry(parser)``,
``options.dry_run(parser, "...")``, ...); the flag, its metavar, its env variable and its
default exist only here, so ``publish`` and ``bundle publish`` cannot read
``ALGA_CHART_PIN`` differently again.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steps.errors import BadInput

if TYPE_CHECKING:
    from datetime import timedelta

#: the environment the options read; replaced in tests
ENVIRON: Mapping[str, str] = os.environ

ENV_USERNAME = "ALGA_REGISTRY_USERNAME"
ENV_PASSWORD = "ALGA_REGISTRY_PASSWORD"

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


class InvalidEnvironment(BadInput):
    """An environment variable holds a value its option cannot take."""

    _kind = True


def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's value; unset or empty is ``default``."""
    value = ENVIRON.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str) -> bool:
    """A boolean variable, strictly: unknown words are an error, never "false"."""
    raw = ENVIRON.get(name)
    if raw is None:
        return False
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise InvalidEnvironment(
        f"environment variable {name}={raw!r} is not a boolean",
        hint=f"use one of {', '.join(TRUE_WORDS)} (true) or "
        f"{', '.join(w for w in FALSE_WORDS if w)} (false), or unset it",
    )


def env_float(name: str, default: float) -> float:
    raw = env_str(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidEnvironment(
            f"environment variable {name}={raw!r} is not a number", hint=f"e.g. {name}={default:g}"
        ) from None
    if value < 0:
        raise InvalidEnvironment(f"environment variable {name}={raw!r} must not be negative")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: expected a positive number of seconds")
    return value


def _env_timeout() -> float | None:
    raw = env_str("ALGA_TIMEOUT")
    if raw is None:
        return None
    try:
        return _positive_seconds(raw)
    except argparse.ArgumentTypeError as exc:
        raise InvalidEnvironment(f"environment variable ALGA_TIMEOUT: {exc}") from None


def environment() -> Mapping[str, str]:
    """The environment, for the few domain calls that take one as a parameter."""
    return ENVIRON


# -- registry and output -------------------------------------------------------------


def registry(parser: argparse.ArgumentParser) -> None:
    """``--registry``, ``--namespace``, TLS and credential options of every registry command."""
    group = parser.add_argument_group("registry")
    group.add_argument(
        "--registry",
        default=env_str("ALGA_REGISTRY", "ghcr.io"),
        metavar="HOST[:PORT]",
        help="registry host (env ALGA_REGISTRY; default ghcr.io)",
    )
    group.add_argument(
        "--namespace",
        default=env_str("ALGA_NAMESPACE", "nine-minds"),
        metavar="NS",
        help="namespace under the registry (env ALGA_NAMESPACE; default nine-minds)",
    )
    group.add_argument(
        "--plain-http",
        action="store_true",
        default=env_bool("ALGA_PLAIN_HTTP"),
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
        default=env_str("ALGA_CA_FILE"),
        metavar="PEM",
        help="CA bundle to verify the registry's certificate (env ALGA_CA_FILE)",
    )
    group.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=_env_timeout(),
        metavar="SECONDS",
        help="give up (exit 75) when the whole command has talked to registries this long; "
        "each request also has its own connect, header and body deadlines (env "
        "ALGA_TIMEOUT; default: none)",
    )
    group.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help=f"read the registry password or token from FILE, '-' for standard input (else env "
        f"{ENV_PASSWORD}; the username comes from env {ENV_USERNAME})",
    )


def output(parser: argparse.ArgumentParser) -> None:
    """``--json``, ``-v`` and ``-q`` after the subcommand (they also work before it)."""
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the machine-readable result on stdout",
    )
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )
    verbosity.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="only warnings and errors",
    )


def out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, metavar="FILE", help="also write the JSON result here")


def dry_run(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=env_bool("ALGA_DRY_RUN"),
        help=f"{what} (env ALGA_DRY_RUN=true)",
    )


def dry_run_wanted() -> bool:
    """``ALGA_DRY_RUN`` alone (for options whose ``--dry-run`` takes a value)."""
    return env_bool("ALGA_DRY_RUN")


# -- source and release inputs --------------------------------------------------------------


def source(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    parser.add_argument(
        "--source",
        type=Path,
        required=True,
        metavar="DIR",
        help=help or "source checkout (alga-psa layout unless --config says otherwise)",
    )


def config(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=env_str("ALGA_RELEASE_CONFIG"),
        metavar="FILE",
        help=help
        or "release config mapping chart names to folders and naming the overlay "
        "(env ALGA_RELEASE_CONFIG; default: the alga-psa layout)",
    )


def version_policy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--version-policy",
        choices=("content", "exact"),
        default=env_str("ALGA_VERSION_POLICY", "content"),
        help="content: <Chart.yaml version>-c<hash> (default); exact: Chart.yaml's version as "
        "is (env ALGA_VERSION_POLICY)",
    )


def chart_pin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--chart-pin",
        choices=("version", "digest"),
        default=env_str("ALGA_CHART_PIN", "version"),
        help="version: pin spec.chart.spec.version (default); digest: one OCIRepository per "
        "chart pinned by manifest digest, and spec.chartRef (env ALGA_CHART_PIN)",
    )


def verify_charts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verify-charts",
        action="store_true",
        default=env_bool("ALGA_VERIFY_CHARTS"),
        help="have Flux verify each chart's cosign signature: spec.chart.spec.verify of each "
        "HelmRelease (version pin) or spec.verify of each chart OCIRepository (digest pin), "
        "with the Secret alga-appliance-trusted-keys that appliances with trusted keys create "
        "in flux-system; charts must be signed (--signing-key) (env ALGA_VERIFY_CHARTS=true)",
    )


def values_profile(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    parser.add_argument(
        "--values-profile",
        default=env_str("ALGA_VALUES_PROFILE"),
        metavar="P",
        help=help
        or "values profile (env ALGA_VALUES_PROFILE; default: the release config's, single-node)",
    )


def provenance(parser: argparse.ArgumentParser) -> None:
    """``--source-url`` and ``--revision``: recorded in the bundle and the release alike."""
    parser.add_argument(
        "--source-url",
        default=env_str("ALGA_SOURCE_URL"),
        metavar="URL",
        help="source repository URL, recorded in the bundle and the release's provenance "
        "(env ALGA_SOURCE_URL; default: the checkout's origin remote, without credentials)",
    )
    parser.add_argument(
        "--revision",
        default=env_str("ALGA_SOURCE_REVISION"),
        metavar="REV",
        help="source revision as <ref>@sha1:<commit> or a commit (env ALGA_SOURCE_REVISION; "
        "default: the checkout's HEAD)",
    )


def kubectl(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubectl",
        default=env_str("ALGA_KUBECTL"),
        metavar="PATH",
        help="kubectl used for `kubectl kustomize` (env ALGA_KUBECTL; default: kubectl on PATH)",
    )


def version(parser: argparse.ArgumentParser, help: str = "release version") -> None:
    parser.add_argument("--version", required=True, metavar="V", help=help)


def channel(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "--channel",
        required=required,
        default=None if required else "stable",
        metavar="C",
        help="nightly or stable" if required else "channel to move (default stable)",
    )


def images(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="KEY=TAG",
        help="an app image tag: algaCore=, workflowWorker=, emailService=, "
        "temporalWorker= (all four required; bare tags)",
    )
    parser.add_argument(
        "--control-plane",
        required=True,
        metavar="TAG|sha256:D",
        help="control-plane image in <registry>/<ns>/alga-appliance-control-plane, "
        "by tag or digest; pinned by digest in the release",
    )


# -- channel moves -----------------------------------------------------------------------


def run(parser: argparse.ArgumentParser, what: str = "the run recorded with the move") -> None:
    parser.add_argument(
        "--run", default=env_str("ALGA_RUN"), metavar="NAME", help=f"{what} (env ALGA_RUN)"
    )


def attestation_run(parser: argparse.ArgumentParser) -> None:
    """``--run-id`` and ``--builder-id``: the provenance attestation's ``runDetails``."""
    group = parser.add_argument_group("provenance (with --signing-key)")
    group.add_argument(
        "--run-id",
        default=env_str("ALGA_RUN_ID"),
        metavar="NAME",
        help="the run, recorded as the provenance attestation's invocationId (env "
        "ALGA_RUN_ID; the Argo template passes the workflow name; default: none, so that a "
        "re-run gives the same attestation bytes)",
    )
    group.add_argument(
        "--builder-id",
        default=env_str("ALGA_BUILDER_ID"),
        metavar="URI",
        help="who builds the release, recorded as the attestation's builder id (env "
        "ALGA_BUILDER_ID; the Argo template passes its own; default: the alga-release CLI's "
        "URI)",
    )


def actor() -> str | None:
    """Who moves a channel, when set (``ALGA_ACTOR``); else the channel code asks the system."""
    return env_str("ALGA_ACTOR")


def reason(parser: argparse.ArgumentParser, what: str = "why") -> None:
    parser.add_argument(
        "--reason",
        default=env_str("ALGA_REASON"),
        metavar="TEXT",
        help=f"{what} (recorded in the channel history; env ALGA_REASON)",
    )


def allow_downgrade(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-downgrade",
        action="store_true",
        default=env_bool("ALGA_ALLOW_DOWNGRADE"),
        help="allow the channel to move to an older version (needs --reason; "
        "env ALGA_ALLOW_DOWNGRADE=true)",
    )


def verify_anonymous(parser: argparse.ArgumentParser, when: str) -> None:
    parser.add_argument(
        "--verify-anonymous",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"{when}, resolve without credentials as appliances pull (default: on for ghcr.io)",
    )


def anonymous(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--anonymous",
        action="store_true",
        help="do not send credentials (as an appliance pulls)",
    )


#: ``steps.channels.move.DEFAULT_SETTLE``, spelt here so that building the parser imports
#: no registry code (``--help`` stays fast); a unit test keeps the two equal.
SETTLE_DEFAULT = 1.0


def settle(parser: argparse.ArgumentParser) -> None:
    """The channels protocol's settle delay: how long a writer waits before reading back a
    tag it wrote, to see concurrent writers."""

    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not 0 <= value <= 600:
            raise argparse.ArgumentTypeError(f"{text} is outside 0..600 seconds")
        return value

    parser.add_argument(
        "--settle",
        type=seconds,
        default=env_float("ALGA_SETTLE", SETTLE_DEFAULT),
        metavar="SECONDS",
        help="wait this long after writing a channel or version tag before reading it back, "
        f"to see concurrent writers (default {SETTLE_DEFAULT:g}; env ALGA_SETTLE)",
    )


# -- channel statements --------------------------------------------------------------------

ENV_STATEMENT_EXPIRY = "ALGA_STATEMENT_EXPIRY"
ENV_STATEMENT_MIN_AGE = "ALGA_STATEMENT_MIN_AGE"
#: ``steps.channels.vouch.DEFAULT_EXPIRY`` and ``DEFAULT_MIN_AGE``, spelt here as
#: durations (a unit test keeps them equal)
STATEMENT_EXPIRY_DEFAULT = "30d"
STATEMENT_MIN_AGE_DEFAULT = "1d"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration(text: str) -> timedelta:
    """``<number><unit>`` with unit s, m, h, d or w (``30d``, ``12h``, ``1.5d``): a positive
    duration of at most ten years."""
    raw = text.strip().lower()
    unit = raw[-1:] if raw[-1:] in _UNITS else ""
    try:
        value = float(raw[: -1 if unit else None])
    except ValueError:
        value = float("nan")
    if not unit or not 0 < value <= 3650 * 86400 / _UNITS[unit]:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: expected a positive number and a unit, e.g. 30d, "
            "12h, 90m (s, m, h, d or w; at most 10 years)"
        )
    from datetime import timedelta  # only where a duration is given

    return timedelta(seconds=value * _UNITS[unit])


def statement_expiry(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, passed_on: bool = False
) -> None:
    """How long a channel statement this command issues is valid (``expiresAt``). With
    ``passed_on`` (``publish``) the default is None: the value is handed to the channel
    step only when given, and the step applies the environment and the default itself."""
    parser.add_argument(
        "--statement-expiry",
        type=duration,
        default=None if passed_on else env_str(ENV_STATEMENT_EXPIRY, STATEMENT_EXPIRY_DEFAULT),
        metavar="DURATION",
        help="with --signing-key, the channel statement this move issues expires after this "
        f"long (e.g. 30d, 12h; env {ENV_STATEMENT_EXPIRY}; default "
        f"{STATEMENT_EXPIRY_DEFAULT}); appliances that verify stop following a channel whose "
        "statement expired, so refresh it (alga-release channel refresh) more often than this",
    )


def statement_min_age(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--min-age",
        type=duration,
        default=env_str(ENV_STATEMENT_MIN_AGE, STATEMENT_MIN_AGE_DEFAULT),
        metavar="DURATION",
        help="leave a statement younger than this as it is (exit 0: a repeated or retried "
        f"refresh changes nothing; env {ENV_STATEMENT_MIN_AGE}; default "
        f"{STATEMENT_MIN_AGE_DEFAULT}); an expired statement is always refreshed",
    )


def timing(args: argparse.Namespace) -> Any:
    from steps.channels.timing import DEFAULT_SETTLE, Timing

    return Timing(settle=getattr(args, "settle", DEFAULT_SETTLE))


# -- the control plane ---------------------------------------------------------------------


def source_registry(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source-plain-http",
        action="store_true",
        default=env_bool("ALGA_SOURCE_PLAIN_HTTP"),
        help="plain HTTP to the source registry (loopback or --insecure-registry hosts; "
        "env ALGA_SOURCE_PLAIN_HTTP=1)",
    )
    parser.add_argument(
        "--source-ca-file",
        type=Path,
        default=env_str("ALGA_SOURCE_CA_FILE"),
        metavar="PEM",
        help="CA bundle for the source registry's certificate (env ALGA_SOURCE_CA_FILE)",
    )


def engine_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine-wait",
        type=float,
        default=env_float("ALGA_ENGINE_WAIT", 30.0),
        metavar="SECONDS",
        help="wait this long for the engine to answer (env ALGA_ENGINE_WAIT; default 30)",
    )


# -- parsers ----------------------------------------------------------------------------------


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' and epilogs' line breaks (they hold examples). As wide as
    argparse's own (``COLUMNS``, else the terminal's, else 80; see :func:`columns`), but
    without importing shutil for it: argparse makes a formatter per ``add_argument``."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


def columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size().columns`` finds it."""
    try:
        wanted = int(ENVIRON.get("COLUMNS", ""))
    except ValueError:
        wanted = 0
    if wanted > 0:
        return wanted
    import sys

    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


def command(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]  # argparse's own type
    name: str,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """A subcommand parser: no flag abbreviations, examples kept as written."""
    kwargs.setdefault("formatter_class", Formatter)
    parser: argparse.ArgumentParser = subparsers.add_parser(name, allow_abbrev=False, **kwargs)
    return parser


def group(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]  # argparse's own type
    name: str,
    help: str,
    dest: str,
) -> argparse._SubParsersAction:  # type: ignore[type-arg]  # argparse's own type
    """A command group (``charts``, ``bundle``, ...) and the subparsers of its actions."""
    parser = command(subparsers, name, help=help)
    return parser.add_subparsers(dest=dest, metavar="ACTION", required=True)


def leaf(parser: argparse.ArgumentParser, *, registry_options: bool = True) -> None:
    """The options every command that talks to a registry ends with."""
    if registry_options:
        registry(parser)
    output(parser)


# -- signing (steps/signing) -------------------------------------------------------------------

ENV_SIGNING_KEY = "ALGA_SIGNING_KEY"
ENV_SIGNING_KEY_PASSWORD = "ALGA_SIGNING_KEY_PASSWORD"
ENV_SIGNING_KEY_PASSWORD_FILE = "ALGA_SIGNING_KEY_PASSWORD_FILE"
#: cosign's own variable, read when ours is unset (a key made with cosign keeps working)
ENV_COSIGN_PASSWORD = "COSIGN_PASSWORD"
ENV_TRUSTED_KEYS = "ALGA_TRUSTED_KEYS"
ENV_SIGNING_KEY_ORIGIN = "ALGA_SIGNING_KEY_ORIGIN"


def signing(parser: argparse.ArgumentParser, what: str = "sign what this step publishes") -> None:
    """``--signing-key``, its password file, ``--require-signing`` and ``--trusted-key``."""
    group = parser.add_argument_group("signing")
    group.add_argument(
        "--signing-key",
        type=Path,
        default=env_str(ENV_SIGNING_KEY),
        metavar="FILE",
        help=f"{what} with this ECDSA P-256 key: cosign's encrypted key file or a PKCS#8 PEM "
        f"(env {ENV_SIGNING_KEY}); its password comes from env {ENV_SIGNING_KEY_PASSWORD} "
        f"(or {ENV_COSIGN_PASSWORD}) or --signing-key-password-file, never the command line",
    )
    signing_key_password_file(group)
    group.add_argument(
        "--signing-key-origin",
        default=env_str(ENV_SIGNING_KEY_ORIGIN),
        metavar="TEXT",
        help="where the --signing-key file comes from, named when it is missing (env "
        f"{ENV_SIGNING_KEY_ORIGIN}; the Argo templates name their Kubernetes secret)",
    )
    group.add_argument(
        "--require-signing",
        action="store_true",
        default=env_bool("ALGA_REQUIRE_SIGNING"),
        help="refuse to run (exit 2, before any push) without --signing-key "
        "(env ALGA_REQUIRE_SIGNING=true)",
    )
    trusted_keys(group)


def signing_key_password_file(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--signing-key-password-file",
        type=Path,
        default=env_str(ENV_SIGNING_KEY_PASSWORD_FILE),
        metavar="FILE",
        help=f"read the signing key's password from FILE (env {ENV_SIGNING_KEY_PASSWORD_FILE})",
    )


def trusted_keys(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    env = env_str(ENV_TRUSTED_KEYS)
    parser.add_argument(
        "--trusted-key",
        type=Path,
        action="append",
        default=[Path(p) for p in env.split(os.pathsep) if p] if env else [],
        metavar="PUB",
        help="also trust signatures by this public key (PEM; repeatable, e.g. the previous "
        f"key during a rotation; env {ENV_TRUSTED_KEYS}, {os.pathsep!r}-separated); "
        "--signing-key's own public key is always trusted",
    )


def signing_password(password_file: Path | None) -> bytes | None:
    """The signing key's password: the file, else ``ALGA_SIGNING_KEY_PASSWORD``, else
    ``COSIGN_PASSWORD``; None when none is set. One trailing newline of a file is dropped."""
    from steps.redact import register_secret

    text: str | None
    if password_file is not None:
        try:
            text = password_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise BadInput(
                f"cannot read the signing key password file {password_file}: {exc.strerror}"
            ) from None
        text = text[:-1] if text.endswith("\n") else text
    else:
        found = ENVIRON.get(ENV_SIGNING_KEY_PASSWORD)
        text = found if found is not None else ENVIRON.get(ENV_COSIGN_PASSWORD)
    if text is None:
        return None
    register_secret(text)
    return text.encode()
