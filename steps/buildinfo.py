"""Which commit this copy of the package was built from (for ``--version``).

A wheel built by ``make step-image`` carries ``steps/data/build-commit``; a source checkout
asks git. Neither is needed: without both, the version stands alone.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def build_commit() -> str | None:
    stamped = _HERE / "data" / "build-commit"
    try:
        text = stamped.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    if text:
        return text
    if not (_HERE.parent / ".git").exists():
        return None
    commit = _git("rev-parse", "--short=12", "HEAD")
    if not commit:
        return None
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return commit + ("-dirty" if dirty else "")


def _git(*args: str) -> str | None:
    """``git -C <checkout> ARGS`` stripped output; None when git fails or is missing."""
    try:
        done = subprocess.run(
            ["git", "-C", str(_HERE.parent), *args],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
