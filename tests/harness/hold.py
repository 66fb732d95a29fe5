"""A proxy that can HOLD chosen requests until the test releases them.

:class:`HoldingProxy` is the fault proxy (:mod:`tests.harness.faults`) plus gates: a gate
matches a method and a path pattern; the first ``count`` matching requests stop before
anything is forwarded to the registry (the request has not landed) and wait until the test
calls :meth:`Gate.release`. So a race is replayed deterministically: hold writer A's channel
PUT, let writer B run to its end, then release A's PUT and watch A land late::

    with HoldingProxy(registry.base_url) as proxy:
        gate = proxy.hold("PUT", r"/manifests/nightly$")
        a = start_writer(proxy.host, "1.5.0")
        gate.wait_arrived(30)          # A's PUT is parked in the proxy
        run_writer(proxy.host, "1.5.1")  # B runs to completion
        gate.release()                 # A's PUT now reaches the registry

A held request whose client has gone (a killed writer) is still forwarded when released
(its body is already in the socket buffer): the worst case for the protocol, a write that
lands after its writer died. Released requests are recorded like any other.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tests.harness.faults import FaultProxy, _compile

if TYPE_CHECKING:
    from tests.harness.registry import Registry

__all__ = ["Gate", "HoldingProxy", "start_holding_proxy"]


@dataclass
class Gate:
    method: str | None
    path: re.Pattern[str] | None
    count: int = 1
    drop: bool = False  # when released, answer 502 instead of forwarding (it never lands)
    held: list[str] = field(default_factory=list)
    _arrived: threading.Event = field(default_factory=threading.Event)
    _released: threading.Event = field(default_factory=threading.Event)

    def matches(self, method: str, path: str) -> bool:
        if len(self.held) >= self.count:
            return False
        if self.method is not None and self.method != method.upper():
            return False
        return self.path is None or self.path.search(path) is not None

    def wait_arrived(self, timeout: float) -> bool:
        """True once ``count`` matching requests are parked at this gate."""
        return self._arrived.wait(timeout)

    def release(self) -> None:
        self._released.set()

    @property
    def released(self) -> bool:
        return self._released.is_set()


class HoldingProxy(FaultProxy):
    """A fault proxy whose gates park matching requests until released."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gates: list[Gate] = []
        self._gate_lock = threading.Lock()

    def hold(
        self,
        method: str | None,
        path: str | re.Pattern[str] | None,
        *,
        count: int = 1,
        drop: bool = False,
    ) -> Gate:
        """Park the next ``count`` requests matching ``method`` and ``path`` (a regex
        searched in the URL path) until :meth:`Gate.release`; with ``drop``, released
        requests are answered 502 and never reach the registry."""
        gate = Gate(method.upper() if method else None, _compile(path), count, drop)
        with self._gate_lock:
            self.gates.append(gate)
        return gate

    def release_all(self) -> None:
        with self._gate_lock:
            gates = list(self.gates)
        for gate in gates:
            gate.release()

    def stop(self) -> None:
        self.release_all()
        super().stop()

    def _before_forward(self, method: str, path: str) -> bool:
        with self._gate_lock:
            gate = next((g for g in self.gates if g.matches(method, path)), None)
            if gate is None:
                return False
            gate.held.append(f"{method} {path}")
            if len(gate.held) >= gate.count:
                gate._arrived.set()
        gate._released.wait(300)
        return gate.drop


def start_holding_proxy(registry: Registry) -> HoldingProxy:
    """Start a holding proxy in front of ``registry`` (trusting its CA when it uses TLS)."""
    proxy = HoldingProxy(registry.base_url, ca_file=registry.ca_file)
    proxy.start()
    return proxy
