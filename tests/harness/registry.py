"""Run the real CNCF distribution registry (``docker-registry`` 2.8) on loopback.

What it does:

* :func:`start_registry` writes a config under a working directory (storage,
  config, log, htpasswd, certificates all live there), picks a free port on
  ``127.0.0.1`` (bind to port 0, release, retry when the registry loses the
  race), starts ``docker-registry serve CONFIG`` and waits until ``GET /v2/``
  answers 200 or 401. If it does not, it raises :class:`RegistryStartError`
  carrying the tail of the registry's log.
* Auth modes: ``anonymous``; ``basic`` (bcrypt htpasswd made with
  ``htpasswd -Bbn``); ``token`` (``auth.token`` pointing at a
  :class:`~tests.harness.tokenserver.TokenServer`, started for it unless one is
  passed in). Optional TLS with a throw-away CA (:attr:`Registry.ca_file`).
* The returned :class:`Registry` stops the process (terminate, then kill) and
  waits for it. Every started process is also tracked module-wide and killed at
  interpreter exit; on Linux the child is also started through
  ``setpriv --pdeathsig TERM`` so it dies with the test process even on
  ``os._exit`` or SIGKILL.

Config choices: ``storage.delete.enabled: true``; no blob descriptor cache (a
cache can keep serving deleted blobs); access log off; upload purging and the
storage health check off; a random ``http.secret``; ``REGISTRY_*`` variables
are removed from the child's environment so they cannot override the config.
``http.host`` and ``relativeurls`` are left unset, so distribution builds
absolute ``Location`` URLs from the request's ``Host`` (and ``X-Forwarded-*``)
headers -- which is why a proxy in front of it must forward ``Host``.

What it does not do: it does not talk OCI (tests use plain httpx or the
project's client for that), manage several replicas, or use the network beyond
``127.0.0.1``. It does not decide skip-versus-fail for missing binaries: it
raises :class:`MissingComponentError` and the pytest layer decides.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import httpx
import yaml

from tests.harness.certs import write_tls_material
from tests.harness.tokenserver import TokenServer

__all__ = [
    "AUTH_MODES",
    "AuthMode",
    "MissingComponentError",
    "Registry",
    "RegistryStartError",
    "find_registry_binary",
    "free_port",
    "start_registry",
]

log = logging.getLogger(__name__)

AuthMode = Literal["anonymous", "basic", "token"]
AUTH_MODES: tuple[AuthMode, ...] = ("anonymous", "basic", "token")

DEFAULT_USERNAME = "alga-ci"
_BIND_RACE_MARKER = "address already in use"


class MissingComponentError(RuntimeError):
    """A binary the harness needs is not installed."""

    def __init__(self, component: str, detail: str) -> None:
        super().__init__(f"{component} is not available: {detail}")
        self.component = component
        self.detail = detail


class RegistryStartError(RuntimeError):
    """The registry did not come up; the message ends with its log tail."""


# -- process bookkeeping ---------------------------------------------------------

_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


def _terminate(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    with _LIVE_LOCK:
        _LIVE.discard(proc)


@atexit.register
def _kill_leftovers() -> None:
    with _LIVE_LOCK:
        leftovers = list(_LIVE)
    for proc in leftovers:
        with contextlib.suppress(Exception):
            _terminate(proc, timeout=2.0)


def _die_with_parent_prefix() -> list[str]:
    """``setpriv --pdeathsig TERM --`` when available (Linux util-linux), else nothing.

    The kernel then sends SIGTERM to the registry when the thread that started
    it dies -- even on ``os._exit`` or SIGKILL of the test process, where atexit
    handlers never run. (Unlike a ``preexec_fn`` it runs no Python between fork
    and exec, so it is safe while the harness's server threads are running.)
    Registries should therefore be started from a long-lived thread, as pytest
    fixtures are.
    """
    if not sys.platform.startswith("linux"):
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


# -- helpers -----------------------------------------------------------------------


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (bind to 0, then release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_registry_binary() -> Path:
    """Locate ``docker-registry`` (PATH, then ``/usr/bin``) or raise MissingComponentError."""
    found = shutil.which("docker-registry")
    if found:
        return Path(found)
    fallback = Path("/usr/bin/docker-registry")
    if fallback.is_file() and os.access(fallback, os.X_OK):
        return fallback
    raise MissingComponentError(
        "docker-registry", "CNCF distribution 2.8 (apt package docker-registry)"
    )


def _htpasswd_line(username: str, password: str) -> str:
    exe = shutil.which("htpasswd")
    if exe is None:
        raise MissingComponentError("htpasswd", "apache2-utils (bcrypt htpasswd for basic auth)")
    result = subprocess.run(
        [exe, "-Bbn", username, password],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    line = result.stdout.strip()
    if not line.startswith(f"{username}:$2"):
        raise RuntimeError("htpasswd -Bbn did not produce a bcrypt entry")
    return line + "\n"


def _tail(path: Path, lines: int = 40, *, since: int = 0) -> str:
    """Last ``lines`` lines of ``path``, reading from byte offset ``since``."""
    try:
        with path.open("rb") as fh:
            fh.seek(since)
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


# -- the registry ------------------------------------------------------------------


@dataclass
class Registry:
    """A running ``docker-registry`` on loopback. Stop it with :meth:`stop`."""

    host: str
    """``127.0.0.1:PORT`` -- what goes in front of a repository name."""
    base_url: str
    """``http://127.0.0.1:PORT`` or ``https://...`` when TLS is on."""
    mode: AuthMode
    username: str | None
    password: str | None
    ca_file: Path | None
    """PEM bundle that verifies the registry's TLS certificate (None without TLS)."""
    storage_dir: Path
    token_server: TokenServer | None
    log_path: Path
    config_path: Path
    workdir: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    _owns_token_server: bool = field(default=False, repr=False)
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        return int(self.host.rsplit(":", 1)[1])

    @property
    def tls(self) -> bool:
        return self.ca_file is not None

    @property
    def credentials(self) -> tuple[str, str] | None:
        """``(username, password)`` or None for an anonymous registry."""
        if self.username is None or self.password is None:
            return None
        return self.username, self.password

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What to pass as httpx ``verify=``: a context trusting :attr:`ca_file`, or True."""
        if self.ca_file is None:
            return True
        return ssl.create_default_context(cafile=str(self.ca_file))

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` (e.g. ``/v2/``) on this registry."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def ref(self, repository: str, tag_or_digest: str | None = None) -> str:
        """``127.0.0.1:PORT/repository[:tag|@digest]``."""
        base = f"{self.host}/{repository}"
        if tag_or_digest is None:
            return base
        sep = "@" if ":" in tag_or_digest else ":"
        return f"{base}{sep}{tag_or_digest}"

    def secrets_in(self, text: str | bytes) -> list[str]:
        """Names of secrets (password, issued tokens) that occur in ``text``."""
        haystack = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        found: list[str] = []
        if self.password and self.password in haystack:
            found.append("password")
        if self.token_server is not None:
            found += [f"token#{i}" for i, _ in enumerate(self.token_server.leaks_in(haystack))]
        return found

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the registry's log."""
        return _tail(self.log_path, lines)

    def is_running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Terminate the registry and wait for it; stop an owned token server (idempotent)."""
        _terminate(self.process)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._owns_token_server and self.token_server is not None:
            self.token_server.stop()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _config(
    *,
    addr: str,
    storage_dir: Path,
    auth: dict[str, object] | None,
    tls_files: tuple[Path, Path] | None,
    log_level: str,
) -> dict[str, object]:
    http: dict[str, object] = {
        "addr": addr,
        "secret": secrets.token_hex(16),
        "headers": {"X-Content-Type-Options": ["nosniff"]},
    }
    if tls_files is not None:
        http["tls"] = {"certificate": str(tls_files[0]), "key": str(tls_files[1])}
    config: dict[str, object] = {
        "version": 0.1,
        "log": {
            "level": log_level,
            "formatter": "text",
            "accesslog": {"disabled": True},
            "fields": {"service": "harness-registry"},
        },
        "storage": {
            "filesystem": {"rootdirectory": str(storage_dir)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": http,
        "health": {"storagedriver": {"enabled": False}},
    }
    if auth is not None:
        config["auth"] = auth
    return config


def _wait_ready(
    proc: subprocess.Popen[bytes], url: str, verify: ssl.SSLContext | bool, timeout: float
) -> str | None:
    """Poll ``url`` until 200/401. Returns None when ready, else a reason."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    last = "no answer"
    with httpx.Client(verify=verify, timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"exited with status {proc.returncode}"
            try:
                status = client.get(url).status_code
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if status in (200, 401):
                    return None
                last = f"GET /v2/ answered {status}"
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
    return f"not ready after {timeout:.1f}s ({last})"


def start_registry(
    workdir: Path | str,
    *,
    mode: AuthMode = "anonymous",
    tls: bool = False,
    username: str = DEFAULT_USERNAME,
    password: str | None = None,
    token_server: TokenServer | None = None,
    allow_anonymous_pull: bool = True,
    log_level: str = "info",
    startup_timeout: float = 15.0,
    port_attempts: int = 5,
) -> Registry:
    """Start a registry whose files all live under ``workdir``; return it once ready.

    ``username``/``password`` are the credentials for ``basic`` and ``token`` modes
    (a random password when None); they are ignored for ``anonymous``. In token
    mode a token server holding that user is started (and stopped with the
    registry) unless ``token_server`` is given, in which case the caller owns it
    and ``allow_anonymous_pull`` is not applied; the user is added to it unless
    it already has one of that name (whose password is then used when
    ``password`` is None).
    """
    if mode not in AUTH_MODES:
        raise ValueError(f"unknown auth mode {mode!r}; expected one of {AUTH_MODES}")
    binary = find_registry_binary()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    storage_dir = workdir / "storage"
    storage_dir.mkdir(exist_ok=True)
    log_path = workdir / "registry.log"
    config_path = workdir / "config.yml"

    user: str | None = None
    secret: str | None = None
    auth: dict[str, object] | None = None
    owns_token_server = False
    if mode == "basic":
        user, secret = username, password or secrets.token_urlsafe(12)
        htpasswd_path = workdir / "htpasswd"
        htpasswd_path.write_text(_htpasswd_line(user, secret), encoding="utf-8")
        auth = {"htpasswd": {"realm": "harness-registry", "path": str(htpasswd_path)}}
    elif mode == "token":
        if password is None and token_server is not None and username in token_server.users:
            password = token_server.users[username]
        user, secret = username, password or secrets.token_urlsafe(12)
        if token_server is None:
            token_server = TokenServer(
                workdir / "token-server",
                {user: secret},
                allow_anonymous_pull=allow_anonymous_pull,
            ).start()
            owns_token_server = True
        else:
            token_server.users.setdefault(user, secret)
            token_server.start()
        auth = {
            "token": {
                "realm": token_server.url,
                "service": token_server.service,
                "issuer": token_server.issuer,
                "rootcertbundle": str(token_server.cert_file),
            }
        }
    elif token_server is not None:
        raise ValueError("token_server is only meaningful in token mode")

    tls_files: tuple[Path, Path] | None = None
    ca_file: Path | None = None
    if tls:
        material = write_tls_material(workdir / "tls")
        tls_files = (material.cert_file, material.key_file)
        ca_file = material.ca_file
    scheme = "https" if tls else "http"
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}

    reason = "never started"
    proc: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None
    try:
        for attempt in range(1, port_attempts + 1):
            port = free_port()
            host = f"127.0.0.1:{port}"
            config = _config(
                addr=host,
                storage_dir=storage_dir,
                auth=auth,
                tls_files=tls_files,
                log_level=log_level,
            )
            config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
            log_file = log_path.open("ab")
            log_offset = log_file.tell()
            started = time.monotonic()
            proc = subprocess.Popen(
                [*_die_with_parent_prefix(), str(binary), "serve", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=workdir,
            )
            with _LIVE_LOCK:
                _LIVE.add(proc)
            base_url = f"{scheme}://{host}"
            failure = _wait_ready(proc, base_url + "/v2/", verify, startup_timeout)
            if failure is None and proc.poll() is not None:
                # something else answered on the port while our process failed to bind
                failure = f"exited with status {proc.returncode}"
            if failure is None:
                log.debug(
                    "registry %s (%s%s) ready in %.3fs",
                    base_url,
                    mode,
                    ", tls" if tls else "",
                    time.monotonic() - started,
                )
                return Registry(
                    host=host,
                    base_url=base_url,
                    mode=mode,
                    username=user,
                    password=secret,
                    ca_file=ca_file,
                    storage_dir=storage_dir,
                    token_server=token_server,
                    log_path=log_path,
                    config_path=config_path,
                    workdir=workdir,
                    process=proc,
                    _owns_token_server=owns_token_server,
                    _log_file=log_file,
                )
            _terminate(proc)
            log_file.close()
            reason = failure
            if _BIND_RACE_MARKER in _tail(log_path, 20, since=log_offset).lower():
                log.info("registry lost a port race on %s (attempt %d); retrying", host, attempt)
                continue
            break
    except BaseException:
        if proc is not None:
            _terminate(proc)
        if log_file is not None:
            log_file.close()
        if owns_token_server and token_server is not None:
            token_server.stop()
        raise
    if owns_token_server and token_server is not None:
        token_server.stop()
    raise RegistryStartError(
        f"docker-registry did not start ({reason}); config {config_path}; "
        f"last log lines from {log_path}:\n{_tail(log_path)}"
    )
