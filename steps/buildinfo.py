"""Which commit this copy of the package was built from (for ``--version``).

A wheel built by ``make step-image`` carries ``steps/data/build-commit``; a source checkout
asks git (one process). Neither is needed: without both, the version stands alone.
"""

from __future__ import annotations

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
    return checkout_commit(_HERE.parent)


def checkout_commit(checkout: Path) -> str | None:
    """``<12 hex>`` or ``<12 hex>-dirty`` (a tracked file differs from HEAD) for a git
    checkout, None when ``checkout`` is not one or git fails. One git process: ``describe``
    with every tag excluded names the commit itself, and ``--dirty`` checks the work tree
    as ``status --untracked-files=no`` would (untracked files do not count)."""
    if not (checkout / ".git").exists():
        return None
    from steps.sourcetime import git_output

    out = git_output(checkout, "describe", "--always", "--abbrev=12", "--dirty", "--exclude=*")
    text = (out or "").strip()
    return text or None
