"""Registry credentials and ``WWW-Authenticate`` challenges.

Pure parsing and bookkeeping; no I/O happens here (the client does it).
:class:`Credentials` never shows its password in ``repr`` or ``str``.
"""

from __future__ import annotations

import base64
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

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
        cls, password_file: Path | None = None, env: dict[str, str] | None = None
    ) -> Credentials | None:
        """Credentials from ``ALGA_REGISTRY_USERNAME`` and ``ALGA_REGISTRY_PASSWORD``
        or ``password_file``; ``None`` for anonymous access.

        Kept for existing callers; new code calls
        :func:`steps.oci.credentials.find_credentials` (which also reads the Docker and
        podman configs) with the environment the CLI passes. ``env=None`` reads
        ``os.environ``: the one place outside the CLI that does, until every caller passes it.
        """
        from steps.oci.credentials import explicit_credentials

        return explicit_credentials(os.environ if env is None else env, password_file)


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
