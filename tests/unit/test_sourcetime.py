"""Source times come from git (or SOURCE_DATE_EPOCH), never the clock."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from steps import sourcetime


def _git(repo: Path, *args: str, when: str = "2026-03-04T05:06:07+00:00") -> None:
    env = dict(
        os.environ,
        GIT_AUTHOR_DATE=when,
        GIT_COMMITTER_DATE=when,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "chart").mkdir()
    (tmp_path / "chart" / "a.txt").write_text("a\n")
    (tmp_path / "other.txt").write_text("o\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "one")
    (tmp_path / "other.txt").write_text("o2\n")
    _git(tmp_path, "commit", "-qam", "two", when="2026-05-06T07:08:09+00:00")
    return tmp_path


def test_folder_time_is_the_last_commit_touching_it(repo: Path) -> None:
    assert sourcetime.folder_time(repo / "chart") == "2026-03-04T05:06:07Z"
    assert sourcetime.revision_time(repo, None) == "2026-05-06T07:08:09Z"
    assert sourcetime.revision_time(repo, "HEAD~1") == "2026-03-04T05:06:07Z"


def test_uncommitted_changes_and_no_git_fall_back(
    repo: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sourcetime.configure(None)  # the CLI passes SOURCE_DATE_EPOCH from the environment
    (repo / "chart" / "a.txt").write_text("changed\n")
    assert sourcetime.folder_time(repo / "chart") == sourcetime.EPOCH
    sourcetime.configure("1700000000")
    monkeypatch.setattr(sourcetime, "_source_date_epoch", 1700000000)  # undone after the test
    assert sourcetime.folder_time(repo / "chart") == "2023-11-14T22:13:20Z"
    plain = tmp_path_factory.mktemp("plain")
    assert sourcetime.revision_time(plain, None) == "2023-11-14T22:13:20Z"
    assert sourcetime.revision_time(repo, "no-such-revision") == "2023-11-14T22:13:20Z"


def test_a_session_asks_git_each_question_once_and_forgets_after(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, ...]] = []
    real = sourcetime._ask_git

    def counting(path: Path, *args: str) -> str | None:
        asked.append(args)
        return real(path, *args)

    monkeypatch.setattr(sourcetime, "_ask_git", counting)
    chart = repo / "chart"
    with sourcetime.session():
        first = sourcetime.folder_time(chart)
        with sourcetime.session():  # nested: the same answers
            assert sourcetime.folder_time(chart) == first
        (chart / "a.txt").write_text("changed\n")  # one run reads one source tree
        assert sourcetime.folder_time(chart) == first
    assert len(asked) == 2  # log and status, once each
    # Outside a session git is asked again, and sees the change.
    assert sourcetime.folder_time(chart) == sourcetime._fallback() != first
    assert len(asked) == 4


@pytest.mark.parametrize(
    "seconds", [0, 1, -1, 59, 86399, 951782400, 1772600767, 4102444800, 253402300799]
)
def test_rfc3339_is_the_utc_second_datetime_would_write(seconds: int) -> None:
    from datetime import UTC, datetime

    expected = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert sourcetime.rfc3339(seconds) == expected
