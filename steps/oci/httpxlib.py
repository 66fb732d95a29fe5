"""httpx, as the client and the transport import it: without its command-line client.

httpx's ``__init__`` imports ``httpx._main`` (rich and click, about 50 ms) whenever those
two are installed, for a command this tool never runs. Marking that module absent first
makes the import fail at once, and httpx defines its stand-in instead; nothing else in
httpx uses it.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import httpx  # noqa: E402

__all__ = ["httpx"]
