"""The shared folder walk of the chart packager and the overlay reader."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from steps.errors import BadInput
from steps.fstree import Entry, Wording, walk

WORDING = Wording(
    "test folder",
    ("dangles", "fix the link"),
    ("contains itself", "remove the link"),
    ("is special", "remove it"),
)


def _rels(root: Path, keep: object = None) -> list[str]:
    def keeps(entry: Entry) -> bool:
        return keep(entry) if callable(keep) else True

    return [e.rel for e in walk(root, WORDING, check_name=lambda rel: None, keep=keeps)]


def test_walk_is_sorted_by_bytes_and_descends(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.txt").write_text("z")
    (tmp_path / "B.txt").write_text("B")
    (tmp_path / "a.txt").write_text("a")
    assert _rels(tmp_path) == ["B.txt", "a.txt", "b/z.txt"]


def test_keep_false_leaves_a_folder_and_what_is_below(tmp_path: Path) -> None:
    (tmp_path / "skip").mkdir()
    (tmp_path / "skip" / "inner.txt").write_text("x")
    (tmp_path / "kept.txt").write_text("x")
    assert _rels(tmp_path, lambda e: e.rel != "skip") == ["kept.txt"]


def test_links_take_their_targets_kind_and_say_where_they_resolve(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f.txt").write_text("12345")
    os.symlink("real", tmp_path / "via")
    entries = {
        e.rel: e for e in walk(tmp_path, WORDING, check_name=lambda r: None, keep=lambda e: True)
    }
    assert sorted(entries) == ["real/f.txt", "via/f.txt"]
    via = entries["via/f.txt"]
    assert via.st.st_size == 5
    assert via.real == (tmp_path / "real" / "f.txt").resolve()


def test_leaves_is_true_only_for_a_link_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.txt").write_text("x")
    (root / "inside.txt").write_text("x")
    os.symlink("../outside.txt", root / "out")
    os.symlink("inside.txt", root / "in")
    seen = {
        e.rel: e.leaves(root.resolve())
        for e in walk(root, WORDING, check_name=lambda r: None, keep=lambda e: True)
    }
    assert seen == {"in": False, "inside.txt": False, "out": True}


def test_a_dangling_link_is_refused_in_the_callers_words(tmp_path: Path) -> None:
    os.symlink("nowhere", tmp_path / "dead")
    with pytest.raises(BadInput) as caught:
        _rels(tmp_path)
    assert caught.value.message == "test folder: symbolic link dead -> nowhere dangles"
    assert caught.value.hint == "fix the link"


def test_a_link_to_a_folder_that_contains_it_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    os.symlink("..", tmp_path / "d" / "up")
    with pytest.raises(BadInput, match=r"symbolic link d/up -> \.\. contains itself"):
        _rels(tmp_path)


def test_a_pipe_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(BadInput, match="test folder: pipe is special"):
        _rels(tmp_path)


def test_check_name_runs_before_anything_is_read(tmp_path: Path) -> None:
    (tmp_path / "bad").write_text("x")

    def refuse(rel: str) -> None:
        raise BadInput(f"name {rel} refused")

    with pytest.raises(BadInput, match="name bad refused"):
        list(walk(tmp_path, WORDING, check_name=refuse, keep=lambda e: True))
