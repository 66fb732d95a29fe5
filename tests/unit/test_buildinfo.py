"""``--version``'s commit: stamped in a wheel, else asked of git in one process."""

from __future__ import annotations

import subprocess
from pathlib import Path

from steps.buildinfo import checkout_commit


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_a_checkout_names_its_commit_and_whether_a_tracked_file_changed(tmp_path: Path) -> None:
    repo = tmp_path / "checkout"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.txt").write_text("one\n")
    git(repo, "add", "a.txt")
    git(repo, "commit", "-q", "-m", "one")
    git(repo, "tag", "v1.0.0")  # a tag never replaces the commit's name
    head = git(repo, "rev-parse", "--short=12", "HEAD")
    assert len(head) >= 12
    assert checkout_commit(repo) == head
    (repo / "untracked.txt").write_text("x\n")
    assert checkout_commit(repo) == head  # untracked files do not count
    (repo / "a.txt").write_text("two\n")
    assert checkout_commit(repo) == f"{head}-dirty"
    git(repo, "commit", "-q", "-am", "two")
    assert checkout_commit(repo) == git(repo, "rev-parse", "--short=12", "HEAD")


def test_no_checkout_no_commit(tmp_path: Path) -> None:
    assert checkout_commit(tmp_path) is None
    (tmp_path / ".git").mkdir()  # not a repository git can read
    assert checkout_commit(tmp_path) is None
