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
    try:
        done = subprocess.run(
            ["git", "-C", str(_HERE.parent), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    if done.returncode != 0 or not commit:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(_HERE.parent), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    return commit + ("-dirty" if dirty.stdout.strip() else "")
