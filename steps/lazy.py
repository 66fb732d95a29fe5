"""Package attributes that load their module on first use (PEP 562).

A package whose ``__init__`` re-exports names from heavy modules (the HTTP client, the
signing code) would load them for anyone importing one light submodule. Instead its
``__init__`` names where each attribute lives and lets :func:`attributes` fetch it on first
access, then keeps it in the package's namespace.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def attributes(
    package: str, namespace: dict[str, Any], homes: Mapping[str, str]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``homes`` maps each name to the module
    (absolute) that defines it; the value is stored in ``namespace`` once fetched."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    return __getattr__
