"""Locate the real binaries the integration tests need, and skip or fail without them.

What it does:

* :class:`Tools` finds ``helm`` (v4) at ``.tools/bin/helm``, ``helm3`` (v3) at
  ``.tools/bin/helm3`` and ``kubectl`` at ``.tools/bin/kubectl``, falling back
  to ``PATH``. A helm found anywhere is accepted only if ``helm version``
  reports the expected major version. Lookups happen on first use and are cached.
* :meth:`Tools.go_tool` finds the pinned Go CLIs that ``scripts/go-tools.sh`` builds into
  ``.tools/bin`` (``cosign``, ``crane``, ``oras``, ``flux``, ``argo`` and ``argo-3.6``), by
  name there only: another version on ``PATH`` would not be the oracle the tests name.
  :attr:`Tools.argo` and :attr:`Tools.argo_minimum` are shortcuts for the two argo CLIs.
* :attr:`Tools.flux_crds` is the folder of Flux CRDs ``scripts/flux-crds.sh`` generates.
* :func:`missing_component` applies the project rule for a missing component:
  when the environment variable ``CI`` is ``"true"`` the test **fails** (a CI
  machine must have everything ``scripts/setup.sh`` installs); otherwise it is
  skipped. Either way the message names the component and ``scripts/setup.sh``.

What it does not do: install anything, or download anything.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cached_property
from pathlib import Path
from typing import NoReturn

import pytest

__all__ = ["GO_TOOLS", "PROJECT_ROOT", "Tools", "in_ci", "missing_component"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SETUP_HINT = "scripts/setup.sh"


#: The Go CLIs ``scripts/go-tools.sh`` builds, and the version each must report.
GO_TOOLS = {
    "cosign": "2.6.5",
    "crane": "0.22.1",
    "oras": "1.3.6",
    "flux": "2.9.5",
    "argo": "3.7.6",
    "argo-3.6": "3.6.10",
}


def in_ci() -> bool:
    """True when the ``CI`` environment variable is exactly ``"true"``."""
    return os.environ.get("CI") == "true"


def missing_component(component: str, detail: str = "") -> NoReturn:
    """Skip the current test -- or fail it when ``CI=true`` -- because ``component`` is missing."""
    message = f"{component} is missing{': ' + detail if detail else ''}; run {SETUP_HINT}"
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def _helm_major(executable: Path) -> int | None:
    try:
        result = subprocess.run(
            [str(executable), "version", "--template", "{{.Version}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"v(\d+)\.", result.stdout.strip())
    return int(match.group(1)) if match else None


class Tools:
    """Paths of real helm v4, helm v3 and kubectl; accessing a missing one skips/fails."""

    def __init__(self, root: Path = PROJECT_ROOT) -> None:
        self.root = root
        self.bin_dir = root / ".tools" / "bin"

    def _candidates(self, local_name: str, path_names: tuple[str, ...]) -> list[Path]:
        found: list[Path] = []
        local = self.bin_dir / local_name
        if local.is_file() and os.access(local, os.X_OK):
            found.append(local)
        for name in path_names:
            on_path = shutil.which(name)
            if on_path and Path(on_path) not in found:
                found.append(Path(on_path))
        return found

    def _find_helm(self, local_name: str, path_names: tuple[str, ...], major: int) -> Path | None:
        for candidate in self._candidates(local_name, path_names):
            if _helm_major(candidate) == major:
                return candidate
        return None

    @cached_property
    def helm_path(self) -> Path | None:
        """helm v4, or None."""
        return self._find_helm("helm", ("helm",), 4)

    @cached_property
    def helm3_path(self) -> Path | None:
        """helm v3, or None."""
        return self._find_helm("helm3", ("helm3", "helm"), 3)

    @cached_property
    def kubectl_path(self) -> Path | None:
        """kubectl, or None."""
        candidates = self._candidates("kubectl", ("kubectl",))
        return candidates[0] if candidates else None

    @property
    def helm(self) -> Path:
        """helm v4 (skips, or fails under CI=true, when missing)."""
        if self.helm_path is None:
            missing_component("helm v4", f"looked for {self.bin_dir / 'helm'} and helm on PATH")
        return self.helm_path

    @property
    def helm3(self) -> Path:
        """helm v3 (skips, or fails under CI=true, when missing)."""
        if self.helm3_path is None:
            missing_component(
                "helm v3", f"looked for {self.bin_dir / 'helm3'} and helm3/helm on PATH"
            )
        return self.helm3_path

    @property
    def kubectl(self) -> Path:
        """kubectl (skips, or fails under CI=true, when missing)."""
        if self.kubectl_path is None:
            missing_component("kubectl", f"looked for {self.bin_dir / 'kubectl'} and PATH")
        return self.kubectl_path

    def go_tool(self, name: str) -> Path:
        """``.tools/bin/<name>``, a pinned Go CLI (skips, or fails under CI=true, when missing)."""
        if name not in GO_TOOLS:
            raise KeyError(f"{name} is not one of the Go tools {sorted(GO_TOOLS)}")
        path = self.bin_dir / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            missing_component(
                f"{name} {GO_TOOLS[name]}", f"looked for {path} (scripts/go-tools.sh builds it)"
            )
        return path

    @property
    def argo(self) -> Path:
        """The newest Argo Workflows CLI the templates are checked with (3.7)."""
        return self.go_tool("argo")

    @property
    def argo_minimum(self) -> Path:
        """The Argo Workflows CLI at the templates' declared minimum (3.6)."""
        return self.go_tool("argo-3.6")

    @property
    def flux_crds(self) -> Path:
        """``.tools/flux-crds``: the Flux CRDs ``scripts/flux-crds.sh`` generates (skips, or
        fails under CI=true, when missing)."""
        folder = self.root / ".tools" / "flux-crds"
        if not (folder / "STAMP").is_file():
            missing_component(
                "the Flux CRDs", f"looked for {folder} (scripts/flux-crds.sh generates them)"
            )
        return folder
