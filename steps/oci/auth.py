"""Registry credentials and ``WWW-Authenticate`` challenges.

Pure parsing and bookkeeping; no network I/O happens here (the client does it), only the
reading of a ``--password-file``. Finding credentials in the Docker and podman configs is
:mod:`steps.oci.credentials`.
:class:`Credentials` never shows its password in ``repr`` or ``str``.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from steps.errors import BadInput
from steps.redact import register_credentials, register_secret

ENV_USERNAME = "ALGA_REGISTRY_USERNAME"
ENV_PASSWORD = "ALGA_REGISTRY_PASSWORD"


@dataclass(frozen=True)
class Credentials:
    """A username and a password or token. The password is never printed.

    ``identity_token``: the password is an OAuth2 refresh token (Docker's ``identitytoken``),
    exchanged at the registry's token service with ``grant_type=refresh_token``.
    """

    username: str
    password: str = field(repr=False)
    identity_token: bool = False

    def __post_init__(self) -> None:
        register_credentials(self.username, self.password)

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        encoded = base64.b64encode(raw).decode("ascii")
        register_secret(encoded)
        return f"Basic {encoded}"

    def __str__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***)"

    @classmethod
    def from_environment(
        cls, password_file: Path | None = None, env: Mapping[str, str] | None = None
    ) -> Credentials | None:
        """Credentials from ``ALGA_REGISTRY_USERNAME`` and ``ALGA_REGISTRY_PASSWORD`` in
        ``env`` (or ``password_file``); ``None`` for anonymous access.

        Only the explicit settings: :func:`steps.oci.credentials.find_credentials` also
        reads the Docker and podman configs. ``env`` is required (only the CLI reads
        ``os.environ``); the default exists for the signature's sake.
        """
        if env is None:
            raise TypeError("Credentials.from_environment needs the environment (env=...)")
        return explicit_credentials(env, password_file)


def read_password_file(path: Path, stdin: TextIO | None = None) -> str:
    """The password in ``path`` (``-``: standard input), stripped of surrounding whitespace."""
    if str(path) == "-":
        if stdin is None:
            raise BadInput("--password-file - reads standard input, which is not available")
        text = stdin.read()
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise BadInput(f"cannot read the password file {path}: {exc.strerror}") from None
    password = text.strip()
    register_secret(password)
    if not password:
        raise BadInput(f"the password file {path} is empty")
    return password


def explicit_credentials(
    env: Mapping[str, str], password_file: Path | None = None, stdin: TextIO | None = None
) -> Credentials | None:
    """Credentials from ``ALGA_REGISTRY_USERNAME`` with ``ALGA_REGISTRY_PASSWORD`` or
    ``password_file``; None when neither is set; half of them is :class:`BadInput`."""
    username = env.get(ENV_USERNAME, "").strip()
    password: str | None = env.get(ENV_PASSWORD)
    if password_file is not None:
        password = read_password_file(password_file, stdin)
    if password:
        register_secret(password)
    if not username and not password:
        return None
    if not username or not password:
        missing = ENV_USERNAME if not username else f"{ENV_PASSWORD} (or --password-file)"
        raise BadInput(
            f"incomplete registry credentials: {missing} is not set",
            hint="set both the username and the password, or neither to use the Docker "
            "config (alga-release login) or anonymous access",
        )
    return Credentials(username, password)


_PARAM_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')


@dataclass(frozen=True)
class Challenge:
    """One parsed ``WWW-Authenticate`` challenge, e.g. ``Bearer realm=...,service=...``."""

    scheme: str
    params: dict[str, str]

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> list[str]:
        scope = self.params.get("scope")
        return scope.split(" ") if scope else []


def parse_challenge(header: str) -> Challenge | None:
    """Parse the first challenge of a ``WWW-Authenticate`` header (None if empty)."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    for match in _PARAM_RE.finditer(rest):
        key, value = match.group(1).lower(), match.group(2)
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[key] = value
    return Challenge(scheme.lower(), params)


def scope_for(repository: str, actions: tuple[str, ...]) -> str:
    return f"repository:{repository}:{','.join(actions)}"


@dataclass
class _Token:
    value: str
    expires_at: float


class TokenCache:
    """Bearer tokens cached per set of scopes, with their expiry.

    A token granted for ``pull,push`` on a repository also serves a later
    ``pull`` on that repository, so a publish asks the token service once
    per repository, not once per request.
    """

    # Refresh a token this many seconds before it expires.
    _MARGIN = 30.0

    def __init__(self) -> None:
        self._tokens: dict[frozenset[str], _Token] = {}

    def get(self, scopes: list[str]) -> str | None:
        now = time.monotonic()
        wanted = _expand(scopes)
        for key, token in self._tokens.items():
            if token.expires_at - self._MARGIN > now and wanted <= _expand(sorted(key)):
                return token.value
        return None

    def put(self, scopes: list[str], value: str, expires_in: float) -> None:
        register_secret(value)
        self._tokens[frozenset(scopes)] = _Token(value, time.monotonic() + max(expires_in, 60.0))

    def clear(self) -> None:
        self._tokens.clear()

    def adopt(self, other: TokenCache) -> None:
        """Start with ``other``'s tokens (a sibling client's; each cache is then its own)."""
        self._tokens.update(dict(other._tokens))


def _expand(scopes: list[str]) -> set[tuple[str, str, str]]:
    """``repository:r:pull,push`` -> {(repository, r, pull), (repository, r, push)}."""
    out: set[tuple[str, str, str]] = set()
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        for action in actions.split(","):
            if action:
                out.add((kind, name, action))
    return out


def authorization(
    tokens: TokenCache, scopes: list[str], basic: bool, credentials: Credentials | None
) -> str | None:
    """The ``Authorization`` header for a request needing ``scopes``: a cached Bearer token
    that covers them, else Basic when the registry asked for it, else none (anonymous)."""
    token = tokens.get(scopes)
    if token is not None:
        return f"Bearer {token}"
    if basic and credentials is not None:
        return credentials.basic_header()
    return None


def token_query(
    challenge: Challenge, scopes: list[str], credentials: Credentials | None
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The query parameters and headers of a token ``GET`` at ``challenge``'s realm (the
    Docker token protocol): service, each scope, and the account with Basic credentials."""
    params: list[tuple[str, str]] = []
    if challenge.service:
        params.append(("service", challenge.service))
    params.extend(("scope", scope) for scope in scopes)
    headers: dict[str, str] = {}
    if credentials is not None:
        headers["Authorization"] = credentials.basic_header()
        params.append(("account", credentials.username))
    return params, headers
