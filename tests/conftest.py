"""Shared pytest fixtures: real registries on loopback, a fault proxy, real tool binaries.

Fixtures (all function-scoped; each registry gets its own storage under ``tmp_path``):

* ``registry`` -- anonymous docker-registry (CNCF distribution 2.8).
* ``basic_registry`` -- htpasswd (bcrypt) Basic auth; ``.username``/``.password``.
* ``token_registry`` -- token auth backed by the harness token server
  (``.token_server``); anonymous pull is allowed by the token server.
* ``tls_token_registry`` -- token auth and HTTPS (``.ca_file``, ``.ssl_context()``).
* ``any_registry`` -- parametrized over ``anonymous``/``basic``/``token``.
* ``protected_registry`` -- parametrized over ``basic``/``token`` (credentials required).
* ``registry_factory`` -- ``start(mode="anonymous", *, tls=False, **kwargs)`` for
  anything else (several registries, a shared token server, basic+TLS, ...).
* ``fault_proxy`` -- factory: ``fault_proxy(registry) -> FaultProxy``.
* ``tools`` -- session-scoped :class:`~tests.harness.tools.Tools` (helm, helm3, kubectl).

Why function scope: a registry starts in ~20-30 ms here (median of 10 starts:
anonymous 19 ms, basic 21 ms, token 25 ms, token+TLS 26 ms; stop 1-30 ms), so
every test gets a fresh, empty one and no test can see another's repositories.
If that ever gets slow, switch to session scope and unique repository names.

Missing components (docker-registry, htpasswd, helm, helm3, kubectl) skip the
test, except when ``CI=true``: then the test fails, naming the component and
``scripts/setup.sh``. Tests that use any of these fixtures are marked
``integration`` automatically; when such a test fails, the tail of each
registry's log is attached to the report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.faults import FaultProxy, start_fault_proxy
from tests.harness.registry import (
    AUTH_MODES,
    AuthMode,
    MissingComponentError,
    Registry,
    start_registry,
)
from tests.harness.tools import Tools, missing_component

# The project's tool folder first on PATH, as `make` does, so a test run started without
# make (`.venv/bin/python -m pytest ...`) finds the same helm, kubectl and Go tools.
_TOOLS_BIN = Path(__file__).resolve().parents[1] / ".tools" / "bin"
if _TOOLS_BIN.is_dir() and str(_TOOLS_BIN) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = f"{_TOOLS_BIN}{os.pathsep}{os.environ.get('PATH', '')}"

# The channel protocol's settle delay (seconds between a tag write and its read-back): on
# loopback every write is answered in milliseconds, so a short one keeps the suite fast.
# The race tests set their own.
os.environ.setdefault("ALGA_SETTLE", "0.1")

RegistryFactory = Callable[..., Registry]
FaultProxyFactory = Callable[[Registry], FaultProxy]

_HARNESS_FIXTURES = frozenset(
    {
        "registry",
        "basic_registry",
        "token_registry",
        "tls_token_registry",
        "any_registry",
        "protected_registry",
        "registry_factory",
        "fault_proxy",
        "tools",
    }
)
_STARTED = pytest.StashKey[list[Registry]]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a harness fixture as ``integration``."""
    for item in items:
        if _HARNESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the registries' log tails to a failing test's report."""
    report = yield
    if report.failed and report.when in ("setup", "call"):
        for reg in item.stash.get(_STARTED, []):
            report.sections.append((f"docker-registry log {reg.host}", reg.log_tail(40)))
    return report


@pytest.fixture
def registry_factory(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[RegistryFactory]:
    """Start registries on demand; all are stopped (and waited for) at teardown."""
    started: list[Registry] = []
    request.node.stash[_STARTED] = started

    def start(mode: AuthMode = "anonymous", *, tls: bool = False, **kwargs: Any) -> Registry:
        workdir = tmp_path_factory.mktemp(f"registry-{mode}{'-tls' if tls else ''}")
        try:
            reg = start_registry(workdir, mode=mode, tls=tls, **kwargs)
        except MissingComponentError as exc:
            missing_component(exc.component, exc.detail)
        started.append(reg)
        return reg

    yield start
    for reg in reversed(started):
        reg.stop()


@pytest.fixture
def registry(registry_factory: RegistryFactory) -> Registry:
    """An anonymous registry."""
    return registry_factory("anonymous")


@pytest.fixture
def basic_registry(registry_factory: RegistryFactory) -> Registry:
    """A registry with htpasswd Basic auth."""
    return registry_factory("basic")


@pytest.fixture
def token_registry(registry_factory: RegistryFactory) -> Registry:
    """A registry with token auth (``.token_server`` issues the tokens)."""
    return registry_factory("token")


@pytest.fixture
def tls_token_registry(registry_factory: RegistryFactory) -> Registry:
    """A token-auth registry served over HTTPS with a throw-away CA (``.ca_file``)."""
    return registry_factory("token", tls=True)


@pytest.fixture(params=AUTH_MODES, ids=list(AUTH_MODES))
def any_registry(request: pytest.FixtureRequest, registry_factory: RegistryFactory) -> Registry:
    """One registry per auth mode: anonymous, basic, token."""
    mode: AuthMode = request.param
    return registry_factory(mode)


@pytest.fixture
def fault_proxy() -> Iterator[FaultProxyFactory]:
    """Factory: ``fault_proxy(registry)`` starts a fault-injecting proxy in front of it."""
    proxies: list[FaultProxy] = []

    def start(target: Registry) -> FaultProxy:
        proxy = start_fault_proxy(target)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in reversed(proxies):
        proxy.stop()


@pytest.fixture(scope="session")
def tools() -> Tools:
    """Real helm v4 (``tools.helm``), helm v3 (``tools.helm3``), kubectl (``tools.kubectl``)."""
    return Tools()


@pytest.fixture
def helm(tools: Tools) -> str:
    """Path of the real helm v4."""
    return str(tools.helm)


@pytest.fixture
def helm3(tools: Tools) -> str:
    """Path of the real helm v3."""
    return str(tools.helm3)


@pytest.fixture(params=["basic", "token"])
def protected_registry(
    request: pytest.FixtureRequest, registry_factory: RegistryFactory
) -> Registry:
    """One registry per mode that checks credentials: basic, token."""
    mode: AuthMode = request.param
    return registry_factory(mode)


@pytest.fixture
def release_source(tmp_path: Path) -> Path:
    """A private copy of the embedded default: the reference charts, the flux/ overlay
    and a release config for them (``release.yaml`` at its root)."""
    import shutil

    root = Path(__file__).resolve().parents[1]
    src = tmp_path / "release-source"
    shutil.copytree(root / "examples" / "charts", src / "examples" / "charts")
    shutil.copytree(root / "flux", src / "flux")
    shutil.copy(root / "examples" / "release.yaml", src / "release.yaml")
    return src
