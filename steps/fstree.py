"""Walk a source folder the way the packagers need: sorted, links resolved, loops refused.

Two packagers read a folder from disk: the chart packager (helm's ``sympath.Walk``) and
the bundle's overlay reader (``flux push artifact``). They agree on the walk and differ
only in what they ignore, what they accept a link to point at and how they word a
refusal. :func:`walk` is the shared walk; its arguments are the part that differs.

The walk lists each folder in byte order of names, follows symbolic links (the entry takes
the link target's kind and size), refuses a dangling or looping link, a link to a folder
that contains it and anything that is neither a folder nor a regular file, and yields the
regular files in walk order. Each refusal is a :class:`~steps.errors.BadInput` in the
packager's own :class:`Wording`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from steps.errors import BadInput

__all__ = ["Entry", "Wording", "walk"]


@dataclass(frozen=True)
class Entry:
    """One walked name: ``rel`` is its posix path below the root, ``path`` the path that
    was walked, ``real`` where it resolves, ``st`` the stat of what it resolves to,
    ``link`` the link text when the entry is a symbolic link."""

    rel: str
    path: Path
    real: Path
    st: os.stat_result
    link: str | None

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    def leaves(self, real_root: Path) -> bool:
        """True when the entry is a symbolic link resolving outside ``real_root``."""
        real = self.real
        return self.link is not None and real != real_root and real_root not in real.parents


@dataclass(frozen=True)
class Wording:
    """How one packager words the walk's refusals: ``what`` names the folder ("overlay
    /src/flux"); each refusal is (the end of the sentence, the fix)."""

    what: str
    dangling: tuple[str, str]
    contains_itself: tuple[str, str]
    special: tuple[str, str]

    def refuse(self, subject: str, words: tuple[str, str]) -> BadInput:
        return BadInput(f"{self.what}: {subject} {words[0]}", hint=words[1])


def walk(
    root: Path,
    wording: Wording,
    *,
    check_name: Callable[[str], None],
    keep: Callable[[Entry], bool],
) -> Iterator[Entry]:
    """The regular files below ``root`` in walk order. ``check_name`` raises for a name
    that cannot be stored; ``keep`` returns False to leave an entry (and what is below it)
    out, or raises to refuse it."""
    real_root = root.resolve()
    yield from _visit(root, real_root, "", frozenset({real_root}), wording, check_name, keep)


def _visit(
    fs_dir: Path,
    real_dir: Path,
    rel_dir: str,
    chain: frozenset[Path],
    wording: Wording,
    check_name: Callable[[str], None],
    keep: Callable[[Entry], bool],
) -> Iterator[Entry]:
    try:
        names = sorted(os.listdir(fs_dir))
    except OSError as exc:
        raise BadInput(f"cannot list {fs_dir}: {exc.strerror or exc}") from None
    for name in names:
        rel = f"{rel_dir}/{name}" if rel_dir else name
        check_name(rel)
        entry = _entry(fs_dir / name, real_dir / name, rel, wording)
        if not keep(entry):
            continue
        if entry.is_dir:
            if entry.real in chain:
                link = f"symbolic link {rel} -> {entry.link}"
                raise wording.refuse(link, wording.contains_itself)
            below = chain | {entry.real}
            yield from _visit(entry.path, entry.real, rel, below, wording, check_name, keep)
        elif stat.S_ISREG(entry.st.st_mode):
            yield entry
        else:
            raise wording.refuse(rel, wording.special)


def _entry(fs_path: Path, real: Path, rel: str, wording: Wording) -> Entry:
    try:
        st = os.lstat(fs_path)
    except OSError as exc:
        raise BadInput(f"cannot read {fs_path}: {exc.strerror or exc}") from None
    if not stat.S_ISLNK(st.st_mode):
        return Entry(rel, fs_path, real, st, None)
    link = os.readlink(fs_path)
    try:
        real = Path(os.path.realpath(fs_path, strict=True))
        st = os.stat(real)
    except OSError:
        raise wording.refuse(f"symbolic link {rel} -> {link}", wording.dangling) from None
    return Entry(rel, fs_path, real, st, link)
