"""Small helpers shared by the integration tests (no fixtures here)."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from steps.cli.app import run
from steps.oci import Credentials, RegistryClient, RetryPolicy
from tests.harness.registry import Registry

FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.0)


def client_for(
    reg: Registry,
    *,
    host: str | None = None,
    anonymous: bool = False,
    credentials: Credentials | None = None,
    **kwargs: Any,
) -> RegistryClient:
    """A project client for a harness registry (or a proxy in front of it)."""
    creds = credentials
    if creds is None and not anonymous and reg.credentials is not None:
        creds = Credentials(*reg.credentials)
    kwargs.setdefault("retry", FAST_RETRY)
    return RegistryClient(
        host or reg.host,
        credentials=creds,
        plain_http=not reg.tls,
        verify=str(reg.ca_file) if reg.ca_file else True,
        **kwargs,
    )


def registry_args(
    reg: Registry, host: str | None = None, namespace: str = "nine-minds"
) -> list[str]:
    args = ["--registry", host or reg.host, "--namespace", namespace]
    if reg.tls:
        args += ["--ca-file", str(reg.ca_file)]
    else:
        args.append("--plain-http")
    return args


@contextlib.contextmanager
def registry_env(
    monkeypatch: pytest.MonkeyPatch,
    reg: Registry,
    credentials: tuple[str, str] | bool | None = True,
) -> Iterator[None]:
    """Set (or clear) ALGA_REGISTRY_USERNAME/PASSWORD for ``reg`` and fast retries."""
    creds = reg.credentials if credentials is True else credentials or None
    if creds:
        monkeypatch.setenv("ALGA_REGISTRY_USERNAME", creds[0])
        monkeypatch.setenv("ALGA_REGISTRY_PASSWORD", creds[1])
    else:
        monkeypatch.delenv("ALGA_REGISTRY_USERNAME", raising=False)
        monkeypatch.delenv("ALGA_REGISTRY_PASSWORD", raising=False)
    monkeypatch.setenv("ALGA_RETRY_BASE_DELAY", "0")
    monkeypatch.setenv("ALGA_RETRY_ATTEMPTS", "4")
    yield


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def cli(argv: Sequence[str]) -> CliResult:
    """Run ``alga-release`` in-process, capturing stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(argv))
    return CliResult(code, out.getvalue(), err.getvalue())


def tags(reg: Registry, repository: str) -> list[str]:
    with client_for(reg) as client:
        return sorted(client.list_tags(repository))


def repositories_on_disk(reg: Registry) -> list[str]:
    """Every repository the registry has stored, read from its storage folder.

    Works in every auth mode (no catalog scope needed) and sees half-written
    repositories too, which is what "nothing was pushed" tests want.
    """
    root = reg.storage_dir / "docker" / "registry" / "v2" / "repositories"
    if not root.is_dir():
        return []
    found = []
    for marker in root.rglob("_layers"):
        found.append(str(marker.parent.relative_to(root)))
    return sorted(found)
