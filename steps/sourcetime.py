"""Times of source content, for reproducible artifacts: never the clock.

Every ``created`` date this project writes (chart, bundle and release
annotations, the release's ``provenance.created``) comes from git: the commit
time of a revision, or of the last commit touching a folder. Outside git it is
``SOURCE_DATE_EPOCH`` (the reproducible-builds convention), then the Unix
epoch. Results are RFC 3339 in UTC with second precision.

The module reads no environment: the CLI hands it ``SOURCE_DATE_EPOCH`` once, at start,
with :func:`configure` (a process-wide setting, as the convention is).

Inside :func:`session` (one CLI command: a whole ``publish`` with its precheck is one)
each distinct git question is asked once and its answer reused: a run reads one source
tree, and the same folder's time asked by the precheck and by the push is one answer.
Outside a session every call asks git.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

EPOCH = "1970-01-01T00:00:00Z"

_source_date_epoch: int | None = None
_answers: dict[tuple[str, ...], str | None] | None = None
_answers_lock = threading.Lock()


@contextlib.contextmanager
def session() -> Iterator[None]:
    """Reuse git's answers until the block ends (sessions do not nest: an inner one
    shares the outer one's answers)."""
    global _answers
    if _answers is not None:
        yield
        return
    _answers = {}
    try:
        yield
    finally:
        _answers = None


def configure(source_date_epoch: str | None) -> None:
    """Set the fallback time from a ``SOURCE_DATE_EPOCH`` value (digits: seconds since the
    epoch); anything else, or None, falls back to the epoch itself."""
    global _source_date_epoch
    text = (source_date_epoch or "").strip()
    _source_date_epoch = int(text) if text.isdigit() else None


def rfc3339(seconds: int) -> str:
    # time.gmtime, not datetime: the same text, and no datetime import for a step
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def git_output(path: Path, *args: str) -> str | None:
    """``git -C path args...``'s stdout, or None when git is missing or fails."""
    answers = _answers
    if answers is None:
        return _ask_git(path, *args)
    key = (str(path), *args)
    with _answers_lock:
        if key in answers:
            return answers[key]
    answer = _ask_git(path, *args)
    with _answers_lock:
        answers[key] = answer
    return answer


def _ask_git(path: Path, *args: str) -> str | None:
    import subprocess  # here: most commands never ask git

    try:
        out = subprocess.run(
            ["git", "-C", str(path), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _fallback() -> str:
    return rfc3339(_source_date_epoch) if _source_date_epoch is not None else EPOCH


def folder_time(path: Path) -> str:
    """When ``path``'s content was last committed. A folder with uncommitted changes
    has no such time (its content is not any commit's), so the fallback applies."""
    stamp = (git_output(path, "log", "-1", "--format=%ct", "--", ".") or "").strip()
    if stamp.isdigit() and git_output(path, "status", "--porcelain", "--", ".") == "":
        return rfc3339(int(stamp))
    return _fallback()


def revision_time(checkout: Path, revision: str | None) -> str:
    """Commit time of ``revision`` (or HEAD) in ``checkout``."""
    stamp = (
        git_output(checkout, "log", "-1", "--format=%ct", revision or "HEAD", "--") or ""
    ).strip()
    return rfc3339(int(stamp)) if stamp.isdigit() else _fallback()
