"""Registry commands: ``login``, ``logout`` (the Docker config, as helm and oras use it) and
``list`` (the published versions and where each channel points)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from steps.cli import options
from steps.cli.context import make_client
from steps.errors import BadInput


def cmd_login(args: argparse.Namespace) -> dict[str, Any]:
    from steps.oci.auth import Credentials
    from steps.oci.client import RegistryClient
    from steps.oci.credentials import login

    if not args.password_stdin:
        raise BadInput(
            "login reads the password or token from standard input only",
            hint=f'echo "$TOKEN" | alga-release login {args.server} -u {args.username or "USER"} '
            "--password-stdin (ghcr.io: a token with write:packages; "
            "`gh auth refresh -s write:packages`, then `gh auth token`)",
        )
    password = sys.stdin.read().strip()
    if not password:
        raise BadInput("login: nothing was read from standard input")
    if not args.username:
        raise BadInput("login needs -u/--username", hint="for ghcr.io: your GitHub user name")
    credentials = Credentials(args.username, password)

    def verify(creds: Credentials) -> None:
        # the credentials must open the registry before they are stored
        client = RegistryClient(
            _server_host(args.server),
            credentials=creds,
            plain_http=args.plain_http,
            insecure_hosts=tuple(args.insecure_registry),
            verify=str(args.ca_file) if args.ca_file else True,
        )
        with client:
            client.ping()

    stored = login(args.server, credentials, env=options.environment(), verify=verify)
    return {
        "server": args.server,
        "username": args.username,
        "stored": str(stored.path),
        "helper": stored.helper,
    }


def cmd_logout(args: argparse.Namespace) -> dict[str, Any]:
    from steps.oci.credentials import logout

    removed = logout(args.server, env=options.environment())
    return {"server": args.server, "removed": removed}


def cmd_list(args: argparse.Namespace) -> dict[str, Any]:
    from steps.release.listing import list_releases, listing_json

    with make_client(args) as client:
        listing = list_releases(client, args.namespace, limit=args.limit)
    return listing_json(listing)


def _human_list(result: dict[str, Any], paint: Any = None) -> str:
    """The table: version, created, digest, channels (from the JSON result)."""
    rows = [("VERSION", "CREATED", "DIGEST", "CHANNELS")]
    for release in result["releases"]:
        digest = release["digest"] or "-"
        rows.append(
            (
                release["version"],
                release["created"] or "-",
                digest[:19] if digest != "-" else "-",
                ",".join(release["channels"])
                or (f"({release['problem']})" if release["problem"] else ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        (
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        ).rstrip()
        for row in rows
    ]
    hidden = result["total"] - len(result["releases"])
    if hidden > 0:
        lines.append(f"({hidden} older version(s) not shown)")
    for channel in result["unlistedChannels"]:
        lines.append(f"{channel} -> {result['channels'][channel]} (not among those shown)")
    return "\n".join(lines)


def _human_login(result: dict[str, Any], paint: Any = None) -> str:
    where = f"credential helper {result['helper']}" if result.get("helper") else result["stored"]
    return f"login to {result['server']} as {result['username']} succeeded (stored in {where})"


def _human_logout(result: dict[str, Any], paint: Any = None) -> str:
    if result["removed"]:
        return f"removed the login for {result['server']}"
    return f"no login was stored for {result['server']}"


def _server_host(text: str) -> str:
    """``https://ghcr.io/`` or ``ghcr.io`` -> ``ghcr.io`` (what the client talks to)."""
    host = text.strip()
    for prefix in ("https://", "http://"):
        if host.startswith(prefix):
            host = host[len(prefix) :]
    return host.split("/", 1)[0]


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    login = options.command(
        commands,
        "login",
        help="store registry credentials in the Docker config (as helm and oras do)",
        description="Check the credentials against the registry (GET /v2/), then store them\n"
        "in the Docker config ($DOCKER_CONFIG/config.json or ~/.docker/config.json, mode\n"
        "0600), through its credential helper when one is configured. Every alga-release\n"
        "command finds them there when ALGA_REGISTRY_* and --password-file are not given.",
        epilog="example:\n"
        "  gh auth refresh -s write:packages   # ghcr.io needs a token with write:packages\n"
        "  gh auth token | alga-release login ghcr.io -u <github-user> --password-stdin",
    )
    login.add_argument("server", metavar="SERVER", help="registry host, e.g. ghcr.io")
    login.add_argument("-u", "--username", metavar="USER", help="user name")
    login.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password or token from standard input (the only way: never argv)",
    )
    _tls(login)
    options.output(login)
    login.set_defaults(handler=cmd_login, human=_human_login)

    logout = options.command(
        commands,
        "logout",
        help="remove stored registry credentials from the Docker config",
        description="Remove SERVER's entry from the Docker config (and from its credential\n"
        "helper). Logging out of a server with no stored login is not an error.",
    )
    logout.add_argument("server", metavar="SERVER", help="registry host, e.g. ghcr.io")
    options.output(logout)
    logout.set_defaults(handler=cmd_logout, human=_human_logout)

    listing = options.command(
        commands,
        "list",
        help="published versions, newest first, and which channels point at each",
        description="List the release versions in <registry>/<namespace>/alga-appliance-release\n"
        "(SemVer tags, newest first) with their created time, manifest digest and the\n"
        "channels pointing at them. The tag list is read page by page, so any number of\n"
        "tags works.",
        epilog="example:\n  alga-release list\n  alga-release list --limit 5 --json",
    )
    listing.add_argument("--limit", type=int, metavar="N", help="show only the N newest versions")
    options.leaf(listing)
    listing.set_defaults(handler=cmd_list, human=_human_list)


def _tls(parser: argparse.ArgumentParser) -> None:
    """The TLS options of a command that names its server as an argument."""
    parser.add_argument(
        "--plain-http",
        action="store_true",
        default=options.env_bool("ALGA_PLAIN_HTTP"),
        help="plain HTTP (loopback hosts, or hosts named by --insecure-registry)",
    )
    parser.add_argument(
        "--insecure-registry", action="append", default=[], metavar="HOST", help="allow HOST"
    )
    parser.add_argument("--ca-file", metavar="PEM", help="CA bundle for the registry")
