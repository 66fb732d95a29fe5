"""go-containerregistry's registry (``crane registry serve``) on loopback, in memory.

A second, independent registry implementation: unlike distribution 2.8 it pages tag lists
(``n`` and ``last``), which is what the paging tests need. Plain HTTP, no auth, nothing on
disk; it lives as long as the ``with`` block.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from tests.harness.registry import free_port

__all__ = ["CraneRegistry"]


class CraneRegistry:
    def __init__(self, crane: Path, startup_timeout: float = 15.0) -> None:
        self.crane = crane
        self.host = f"127.0.0.1:{free_port()}"
        self._timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> CraneRegistry:
        self._process = subprocess.Popen(
            [str(self.crane), "registry", "serve", "--address", self.host],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"crane registry serve exited with {self._process.returncode}")
            try:
                if httpx.get(f"http://{self.host}/v2/", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"crane registry serve did not answer on {self.host}")

    def __exit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
