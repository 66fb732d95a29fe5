"""Real-registry test harness: distribution 2.8 on loopback, a token server, a fault proxy.

Modules:

* :mod:`tests.harness.registry` -- start/stop ``docker-registry`` (anonymous, basic, token; TLS).
* :mod:`tests.harness.tokenserver` -- an ES256 Docker-registry token server.
* :mod:`tests.harness.faults` -- a fault-injecting reverse proxy in front of a registry.
* :mod:`tests.harness.tools` -- locate helm v4, helm v3, kubectl; skip or fail (CI) when missing.
* :mod:`tests.harness.certs` -- throw-away CA and server certificates.

Nothing here is imported by the project code (``steps``); it is test-only.
"""

from tests.harness.faults import FaultProxy, ProxiedRequest, Rule, start_fault_proxy
from tests.harness.registry import (
    AUTH_MODES,
    AuthMode,
    MissingComponentError,
    Registry,
    RegistryStartError,
    start_registry,
)
from tests.harness.tokenserver import TokenRequest, TokenServer

__all__ = [
    "AUTH_MODES",
    "AuthMode",
    "FaultProxy",
    "MissingComponentError",
    "ProxiedRequest",
    "Registry",
    "RegistryStartError",
    "Rule",
    "TokenRequest",
    "TokenServer",
    "start_fault_proxy",
    "start_registry",
]
