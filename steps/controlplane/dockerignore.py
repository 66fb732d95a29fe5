"""``.dockerignore`` rules (pure), as the Docker CLI reads them: patterns with ``*``,
``?``, ``**`` and character classes, ``!`` exceptions, the last match winning.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from steps.errors import BadInput

log = logging.getLogger("alga_release.controlplane")

# -- .dockerignore (pure) --------------------------------------------------------------


def read_dockerignore(text: str) -> list[str]:
    """Patterns of a ``.dockerignore``, as the Docker CLI reads them.

    Lines starting with ``#`` are comments; surrounding blanks are dropped; a
    pattern is cleaned like a path (``./a//b/`` -> ``a/b``) and a leading ``/``
    removed; ``!`` marks an exception.
    """
    patterns: list[str] = []
    for number, raw in enumerate(text.splitlines()):
        line = raw.removeprefix("\ufeff") if number == 0 else raw
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = _clean_path(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append(("!" if invert else "") + line)
    return patterns


def _clean_path(path: str) -> str:
    """Go's ``filepath.Clean`` for ``/``-separated paths."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


@dataclass(frozen=True)
class _Pattern:
    text: str
    exclusion: bool
    kind: Literal["exact", "prefix", "suffix", "regexp"]
    regex: re.Pattern[str] | None

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        assert self.regex is not None
        return self.regex.fullmatch(path) is not None


_ESCAPE = set(".+()|{}$")


def _compile(pattern: str) -> _Pattern:
    """Compile one pattern the way moby's ``patternmatcher`` does (``/`` separators)."""
    exclusion = pattern.startswith("!")
    text = pattern[1:] if exclusion else pattern
    out = ""
    kind: Literal["exact", "prefix", "suffix", "regexp"] = "exact"
    i = 0
    position = 0
    while i < len(text):
        ch = text[i]
        i += 1
        if ch == "*":
            if i < len(text) and text[i] == "*":
                i += 1
                if i < len(text) and text[i] == "/":
                    i += 1
                if i >= len(text):
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        out += ".*"
                        kind = "regexp"
                else:
                    out += "(.*/)?"
                    kind = "regexp"
                if position == 0:
                    kind = "suffix"
            else:
                out += "[^/]*"
                kind = "regexp"
        elif ch == "?":
            out += "[^/]"
            kind = "regexp"
        elif ch in _ESCAPE:
            out += "\\" + ch
        elif ch == "\\":
            if i < len(text):
                out += re.escape(text[i])
                i += 1
                kind = "regexp"
            else:
                out += "\\\\"
        elif ch in "[]":
            out += ch
            kind = "regexp"
        else:
            out += ch
        position += 1
    regex = None
    if kind == "regexp":
        try:
            regex = re.compile(out)
        except re.error as exc:
            raise BadInput(f".dockerignore pattern {pattern!r} is invalid: {exc}") from None
    return _Pattern(text, exclusion, kind, regex)


class IgnoreMatcher:
    """Decides whether a context path is excluded, with Docker's semantics.

    Patterns match the whole path relative to the context (``*.md`` matches only
    top-level files; use ``**/*.md`` for any depth). A path is excluded when it,
    or one of its parent folders, matches; later patterns override earlier ones,
    and ``!`` patterns re-include.
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        compiled = []
        for raw in patterns:
            pattern = raw.strip()
            exclusion = pattern.startswith("!")
            body = pattern[1:] if exclusion else pattern
            if not body:
                if exclusion:
                    raise BadInput('.dockerignore: "!" alone is not a pattern')
                continue
            compiled.append(_compile(("!" if exclusion else "") + _clean_path(body)))
        self.patterns = compiled
        self._parents: dict[str, tuple[bool, ...]] = {}

    def may_reinclude_below(self, folder: str) -> bool:
        """Whether an exception pattern may bring back something below an excluded
        ``folder``; if not, the folder need not be walked at all.

        Docker's own test: some ``!pattern`` starts with ``folder/``. So
        ``!packages/core/dist/**`` keeps ``packages/core/dist`` walked, while
        ``node_modules`` is skipped whole.
        """
        prefix = folder + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)

    def excluded(self, path: str) -> bool:
        parent = path.rpartition("/")[0]
        in_parents = self._parent_hits(parent) if parent else None
        matched = False
        for i, pattern in enumerate(self.patterns):
            if pattern.exclusion != matched:
                continue
            if pattern.match(path) or (in_parents is not None and in_parents[i]):
                matched = not pattern.exclusion
        return matched

    def _parent_hits(self, folder: str) -> tuple[bool, ...]:
        """For each pattern: does it match ``folder`` or one of its parents? (memoised:
        every file of a folder asks the same question)."""
        cached = self._parents.get(folder)
        if cached is None:
            parent = folder.rpartition("/")[0]
            above = self._parent_hits(parent) if parent else (False,) * len(self.patterns)
            cached = tuple(a or p.match(folder) for a, p in zip(above, self.patterns, strict=True))
            self._parents[folder] = cached
        return cached
