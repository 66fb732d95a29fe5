"""The real cosign CLI (v2.6.5, built into ``.tools/bin`` by the set-up) as a test oracle.

:class:`Cosign` runs ``cosign sign --key`` (no transparency log upload) and ``cosign verify
--key --insecure-ignore-tlog=true --allow-insecure-registry`` (and ``verify-attestation``) against
a loopback registry, with its own ``$HOME`` (cosign caches under ``~/.sigstore``) and the key
password in ``COSIGN_PASSWORD``. :func:`find_cosign` applies the missing-component rule
(skip, or fail under ``CI=true``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.harness.tools import PROJECT_ROOT, missing_component

COSIGN_VERSION = "2.6.5"


def find_cosign() -> Path:
    path = PROJECT_ROOT / ".tools" / "bin" / "cosign"
    if not (path.is_file() and os.access(path, os.X_OK)):
        missing_component(f"cosign {COSIGN_VERSION}", f"looked for {path}")
    return path


class Cosign:
    def __init__(self, binary: Path, home: Path, password: str) -> None:
        self.binary = binary
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "COSIGN_PASSWORD": password,
        }

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args],
            env=self.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def verify(self, reference: str, public: Path) -> subprocess.CompletedProcess[str]:
        return self.run(
            "verify",
            "--key",
            str(public),
            "--insecure-ignore-tlog=true",
            "--allow-insecure-registry",
            "--output",
            "json",
            reference,
        )

    def verify_attestation(
        self, reference: str, public: Path, predicate_type: str = "slsaprovenance1"
    ) -> subprocess.CompletedProcess[str]:
        """``cosign verify-attestation``: stdout has one verified DSSE envelope per line."""
        return self.run(
            "verify-attestation",
            "--key",
            str(public),
            "--insecure-ignore-tlog=true",
            "--allow-insecure-registry",
            "--type",
            predicate_type,
            reference,
        )

    def sign(self, reference: str, key: Path) -> subprocess.CompletedProcess[str]:
        return self.run(
            "sign",
            "--key",
            str(key),
            "--tlog-upload=false",
            "--allow-insecure-registry",
            "--yes",
            reference,
        )
