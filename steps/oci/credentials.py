"""Registry credentials found the way the container ecosystem finds them.

Order (first hit wins), as :func:`find_credentials` applies it:

1. ``--password-file`` (``-`` reads standard input) and/or ``ALGA_REGISTRY_USERNAME`` /
   ``ALGA_REGISTRY_PASSWORD``: explicit settings always win; half of them is bad input.
2. The Docker config: ``$DOCKER_CONFIG/config.json``, else ``$HOME/.docker/config.json``.
   ``credHelpers[host]`` (then ``credsStore``) runs ``docker-credential-<name> get`` with the
   server on standard input; a helper that knows nothing (or is not installed) falls back to
   the ``auths`` entry: ``auth`` (base64 of ``user:password``), ``username``/``password``, or
   ``identitytoken`` (an OAuth2 refresh token, exchanged at the token service).
3. Podman's auth file: ``$REGISTRY_AUTH_FILE``, else ``$XDG_RUNTIME_DIR/containers/auth.json``,
   else ``$HOME/.config/containers/auth.json`` (same format, ``credHelpers`` included).
   Podman's repository-scoped keys (``ghcr.io/nine-minds``) count when they are a path prefix
   of the ``scope`` asked for; the most specific key wins, in every file.
4. Anonymous (``None``).

:func:`login` and :func:`logout` write and remove an entry in the same Docker config file that
``docker login``, ``helm registry login`` and ``oras login`` use: through the configured
credential helper when there is one, else inline as ``auths[host].auth``. The file is
rewritten atomically with mode 0600 and every other key kept as it was.

Everything here is a function of its arguments: the environment arrives as a mapping (only
:mod:`steps.cli` reads ``os.environ``), helpers run through a replaceable ``runner``. Every
secret found is registered with :mod:`steps.redact` before it can reach a message; error
messages name files, keys and helpers, never values.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from steps.errors import BadInput
from steps.oci.auth import (
    ENV_PASSWORD,
    ENV_USERNAME,
    Credentials,
    explicit_credentials,
)
from steps.oci.reference import check_registry
from steps.redact import redact, register_secret

log = logging.getLogger("alga_release.oci")

ENV_DOCKER_CONFIG = "DOCKER_CONFIG"
ENV_REGISTRY_AUTH_FILE = "REGISTRY_AUTH_FILE"
#: The user name credential helpers (and Docker) use for an identity token.
TOKEN_USERNAME = "<token>"
#: Docker Hub's historical key in config files and helpers.
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
_DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_HELPER_TIMEOUT = 30.0


class CredentialConfigError(BadInput):
    """A credentials file is unreadable or malformed, or a credential helper failed."""


@dataclass(frozen=True)
class FoundCredentials:
    """What :func:`find_credentials` found: the credentials (None: anonymous) and where."""

    credentials: Credentials | None
    source: str


@dataclass(frozen=True)
class HelperResult:
    returncode: int
    stdout: str
    stderr: str


#: ``runner(executable, action, stdin_text, env) -> HelperResult``
HelperRunner = Callable[[str, str, str, Mapping[str, str]], HelperResult]


def run_helper(
    executable: str, action: str, stdin_text: str, env: Mapping[str, str]
) -> HelperResult:
    """Run ``executable action`` with ``stdin_text`` on standard input (the real runner)."""
    import subprocess  # here, as shutil and tempfile below: most runs use no helper

    try:
        done = subprocess.run(
            [executable, action],
            input=stdin_text,
            capture_output=True,
            text=True,
            env=dict(env),
            timeout=_HELPER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CredentialConfigError(
            f"credential helper {Path(executable).name} {action} did not answer within "
            f"{_HELPER_TIMEOUT:g} s"
        ) from None
    except OSError as exc:
        raise CredentialConfigError(
            f"cannot run credential helper {executable}: {exc.strerror}"
        ) from None
    return HelperResult(done.returncode, done.stdout, done.stderr)


# -- paths -------------------------------------------------------------------


def docker_config_path(env: Mapping[str, str]) -> Path | None:
    """``$DOCKER_CONFIG/config.json``, else ``$HOME/.docker/config.json`` (None: no home)."""
    directory = env.get(ENV_DOCKER_CONFIG, "").strip()
    if directory:
        return Path(directory) / "config.json"
    home = env.get("HOME", "").strip()
    return Path(home) / ".docker" / "config.json" if home else None


def podman_auth_paths(env: Mapping[str, str]) -> list[Path]:
    """Podman's auth files in the order podman reads them."""
    explicit = env.get(ENV_REGISTRY_AUTH_FILE, "").strip()
    if explicit:
        return [Path(explicit)]
    paths: list[Path] = []
    runtime = env.get("XDG_RUNTIME_DIR", "").strip()
    if runtime:
        paths.append(Path(runtime) / "containers" / "auth.json")
    home = env.get("HOME", "").strip()
    if home:
        paths.append(Path(home) / ".config" / "containers" / "auth.json")
    return paths


# -- finding -----------------------------------------------------------------


def find_credentials(
    registry: str,
    *,
    env: Mapping[str, str],
    password_file: Path | None = None,
    stdin: TextIO | None = None,
    scope: str | None = None,
    runner: HelperRunner = run_helper,
) -> FoundCredentials:
    """Credentials for ``registry`` (``host[:port]``) in the order the module docstring
    gives; ``scope`` (``namespace/repository``) selects podman's repository-scoped keys."""
    explicit = explicit_credentials(env, password_file, stdin)
    if explicit is not None:
        where = "--password-file" if password_file is not None else f"{ENV_PASSWORD}"
        return FoundCredentials(explicit, f"{ENV_USERNAME} and {where}")
    files: list[Path] = []
    docker = docker_config_path(env)
    if docker is not None:
        files.append(docker)
    files.extend(podman_auth_paths(env))
    for path in files:
        config = load_config(path)
        if config is None:
            continue
        found = _from_config(config, path, registry, scope, env, runner)
        if found is not None:
            return found
    return FoundCredentials(None, "anonymous")


def load_config(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialConfigError(f"cannot read {path}: {exc.strerror}") from None
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CredentialConfigError(
            f"{path} is not valid JSON (line {getattr(exc, 'lineno', '?')})",
            hint="fix or remove the file; docker, podman and helm read it too",
        ) from None
    if not isinstance(value, dict):
        raise CredentialConfigError(f"{path}: expected a JSON object at the top")
    return value


def _from_config(
    config: Mapping[str, Any],
    path: Path,
    registry: str,
    scope: str | None,
    env: Mapping[str, str],
    runner: HelperRunner,
) -> FoundCredentials | None:
    helper = _helper_for(config, registry)
    if helper is not None:
        creds = helper_get(helper, registry, env=env, runner=runner)
        if creds is not None:
            return FoundCredentials(creds, f"docker-credential-{helper} (from {path})")
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return None
    key = _best_key(auths, registry, scope)
    if key is None:
        return None
    entry = auths[key]
    if not isinstance(entry, dict):
        raise CredentialConfigError(f"{path}: auths[{key!r}] is not an object")
    creds = entry_credentials(entry, f"{path}: auths[{key!r}]")
    if creds is None:
        return None
    return FoundCredentials(creds, str(path))


def _helper_for(config: Mapping[str, Any], registry: str) -> str | None:
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _same_host(_key_host(key), registry) and isinstance(name, str) and name:
                return name
    store = config.get("credsStore")
    return store if isinstance(store, str) and store else None


def _key_host(key: str) -> str:
    """``https://ghcr.io/v1/`` -> ``ghcr.io``; ``ghcr.io/nine-minds`` -> ``ghcr.io/nine-minds``."""
    text = key.strip()
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = text.rstrip("/")
    for suffix in ("/v1", "/v2"):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    return text


def _same_host(a: str, b: str) -> bool:
    if a in _DOCKER_HUB_HOSTS and b in _DOCKER_HUB_HOSTS:
        return True
    return a == b


def _best_key(auths: Mapping[str, Any], registry: str, scope: str | None) -> str | None:
    """The most specific ``auths`` key for ``registry`` (and ``scope``), or None."""
    best: tuple[int, str] | None = None
    wanted = f"{registry}/{scope.strip('/')}" if scope else registry
    for key in auths:
        name = _key_host(key)
        host, _, path = name.partition("/")
        if not _same_host(host, registry):
            continue
        if path and not (wanted == name or wanted.startswith(name + "/")):
            continue
        rank = len(path) + 1 if path else 0
        if best is None or rank > best[0]:
            best = (rank, key)
    return best[1] if best else None


def entry_credentials(entry: Mapping[str, Any], where: str) -> Credentials | None:
    """Credentials in one ``auths`` entry; None for an empty placeholder (``{}``)."""
    username = entry.get("username")
    password = entry.get("password")
    auth = entry.get("auth")
    identity = entry.get("identitytoken")
    if isinstance(auth, str) and auth.strip():
        register_secret(auth.strip())
        try:
            decoded = base64.b64decode(auth.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialConfigError(
                f"{where}.auth is not base64 of user:password",
                hint="log in again (alga-release login, docker login) to rewrite it",
            ) from None
        user, sep, secret = decoded.partition(":")
        register_secret(secret)
        if not sep:
            raise CredentialConfigError(f"{where}.auth holds no ':' between user and password")
        username, password = user, secret
    if isinstance(identity, str) and identity:
        register_secret(identity)
        name = username if isinstance(username, str) and username else TOKEN_USERNAME
        return Credentials(name, identity, identity_token=True)
    if isinstance(password, str):
        register_secret(password)
    if isinstance(username, str) and username and isinstance(password, str) and password:
        return Credentials(username, password)
    return None


# -- helpers -----------------------------------------------------------------


def helper_server(registry: str) -> str:
    """The server name a credential helper is asked about (Docker's own for Docker Hub)."""
    return DOCKER_HUB_SERVER if registry in _DOCKER_HUB_HOSTS else registry


def _helper_executable(name: str, env: Mapping[str, str]) -> str | None:
    import shutil

    return shutil.which(f"docker-credential-{name}", path=env.get("PATH") or os.defpath)


def helper_get(
    name: str, registry: str, *, env: Mapping[str, str], runner: HelperRunner = run_helper
) -> Credentials | None:
    """``docker-credential-<name> get`` for ``registry``; None when the helper has nothing
    (or is not installed: a config copied from another machine must not break pulls)."""
    executable = _helper_executable(name, env)
    if executable is None:
        log.warning(
            "credential helper docker-credential-%s is not on PATH; ignoring it for %s",
            name,
            registry,
        )
        return None
    result = runner(executable, "get", helper_server(registry), env)
    if result.returncode != 0:
        if "not found" in (result.stdout + result.stderr).lower():
            return None
        raise _helper_failed(name, "get", registry, result)
    try:
        body = json.loads(result.stdout)
        username, secret = body.get("Username"), body.get("Secret")
    except (ValueError, AttributeError):
        raise CredentialConfigError(
            f"docker-credential-{name} get for {registry} printed no JSON object"
        ) from None
    if not isinstance(secret, str) or not secret:
        return None
    register_secret(secret)
    if not isinstance(username, str) or not username or username == TOKEN_USERNAME:
        return Credentials(TOKEN_USERNAME, secret, identity_token=True)
    return Credentials(username, secret)


def _helper_failed(name: str, action: str, registry: str, result: HelperResult) -> BadInput:
    said = (result.stderr.strip() or result.stdout.strip()).splitlines()
    detail = redact(said[0][:200]) if said else f"exit {result.returncode}"
    return CredentialConfigError(
        f"docker-credential-{name} {action} for {registry} failed: {detail}",
        hint="fix the credential helper, or remove it from credHelpers/credsStore",
    )


# -- login and logout ----------------------------------------------------------


def server_name(text: str) -> str:
    """What ``login``/``logout`` were given (``ghcr.io``, ``https://ghcr.io/``,
    ``127.0.0.1:5000``) as the ``host[:port]`` the config keys use; malformed is bad input."""
    return check_registry(_key_host(text))


@dataclass(frozen=True)
class LoginResult:
    """Where a login was stored: the config file, and the helper when one holds it."""

    path: Path
    helper: str | None


def login(
    registry: str,
    credentials: Credentials,
    *,
    env: Mapping[str, str],
    verify: Callable[[Credentials], None] | None = None,
    runner: HelperRunner = run_helper,
) -> LoginResult:
    """Check ``credentials`` with ``verify`` (e.g. ``RegistryClient.ping``), then store them
    for ``registry`` in the Docker config (through its credential helper when configured).

    Nothing is written when ``verify`` raises.
    """
    registry = server_name(registry)
    path = docker_config_path(env)
    if path is None:
        raise BadInput(
            "cannot tell where the Docker config lives: neither DOCKER_CONFIG nor HOME is set"
        )
    if verify is not None:
        verify(credentials)
    config = load_config(path) or {}
    auths = config.get("auths")
    if not isinstance(auths, dict):
        auths = {}
    for key in [k for k in auths if _same_host(_key_host(k), registry)]:
        del auths[key]
    helper = _helper_for(config, registry)
    executable = _helper_executable(helper, env) if helper is not None else None
    if helper is not None and executable is not None:
        payload = json.dumps(
            {
                "ServerURL": helper_server(registry),
                "Username": credentials.username,
                "Secret": credentials.password,
            }
        )
        result = runner(executable, "store", payload, env)
        if result.returncode != 0:
            raise _helper_failed(helper, "store", registry, result)
        auths[registry] = {}  # Docker's placeholder: "the helper holds these"
    else:
        if helper is not None:
            raise CredentialConfigError(
                f"{path} names the credential helper docker-credential-{helper} for "
                f"{registry}, which is not on PATH",
                hint="install the helper, or remove it from credHelpers/credsStore",
            )
        entry: dict[str, str] = {"auth": _basic(credentials)}
        if credentials.identity_token:
            entry = {"identitytoken": credentials.password}
        auths[registry] = entry
    config["auths"] = auths
    write_config(path, config)
    return LoginResult(path, helper)


def logout(registry: str, *, env: Mapping[str, str], runner: HelperRunner = run_helper) -> bool:
    """Remove ``registry``'s entry (and the helper's copy); False when there was none."""
    registry = server_name(registry)
    path = docker_config_path(env)
    if path is None:
        return False
    config = load_config(path)
    if config is None:
        return False
    removed = False
    helper = _helper_for(config, registry)
    executable = _helper_executable(helper, env) if helper is not None else None
    if helper is not None and executable is not None:
        result = runner(executable, "erase", helper_server(registry), env)
        if result.returncode == 0:
            removed = True
        elif "not found" not in (result.stdout + result.stderr).lower():
            raise _helper_failed(helper, "erase", registry, result)
    auths = config.get("auths")
    if not isinstance(auths, dict):
        auths = {}
    keys = [k for k in auths if _same_host(_key_host(k), registry)]
    for key in keys:
        removed = removed or bool(auths[key])
        del auths[key]
    if keys:
        write_config(path, config)
    return removed


def _basic(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    encoded = base64.b64encode(raw).decode("ascii")
    register_secret(encoded)
    return encoded


def write_config(path: Path, config: Mapping[str, Any]) -> None:
    """Write ``config`` to ``path`` atomically, mode 0600 (a symlinked file is followed)."""
    target = path.resolve() if path.is_symlink() else path
    if not target.parent.exists():
        target.parent.mkdir(parents=True, mode=0o700)
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(config, fh, indent="\t")
            fh.write("\n")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise
