"""The channel protocol's clock and settle delay, shared by every writer of the release
repository (moves, statements, immutable tags); tests shorten or instrument them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

DEFAULT_SETTLE = 1.0
"""Seconds a writer waits between its last write and its read-back (``--settle``)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Timing:
    """The protocol's clock and its settle delay (tests shorten or instrument them)."""

    settle: float = DEFAULT_SETTLE
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    clock: Callable[[], datetime] = utc_now
