"""``.helmignore`` rules with exactly helm's semantics (``helm.sh/helm/v4/pkg/ignore``).

What this module does: parse the text of a ``.helmignore`` file into an immutable
:class:`Rules` value and answer "would ``helm package`` leave this path out?" for a
path relative to the chart root. It mirrors helm v4.1 and v3.17, which behave the same
(checked against both binaries with ``helm package`` and a tar listing):

* Lines are split like Go's ``bufio.Scanner`` (``\\n``, an optional ``\\r`` before it is
  dropped), a UTF-8 byte order mark at the start of the file is dropped, and each line is
  trimmed of leading and trailing white space (Go's ``strings.TrimSpace``; there is no
  escape for a trailing space). Blank lines and lines starting with ``#`` are skipped; an
  inline ``#`` is part of the pattern.
* A pattern containing ``**`` is an **error** (helm fails the whole package with
  "double-star (**) syntax is not supported"), and so is a pattern Go's
  ``filepath.Match`` reports malformed when helm test-matches it against ``"abc"``
  ("syntax error in pattern", e.g. ``a[``). Both raise :class:`~steps.errors.BadInput`
  here, naming the line. A malformed part that this test does not reach (``x*[``) is
  accepted, and the rule then simply does not match paths that reach it (helm logs
  "Failed to compile" and goes on); mirrored.
* ``!`` negates, but **not** like ``.gitignore``: rules are evaluated in order and the
  first decision wins. A positive rule that matches ignores the path. A negated rule
  ``!P`` *ignores every path that does not match* ``P`` and lets a matching path go on to
  the next rule. So ``!keep.txt`` on its own ignores everything but files called
  ``keep.txt`` (Chart.yaml included, so helm then fails), and ``*.txt`` followed by
  ``!keep.txt`` still ignores ``keep.txt``. A negated directory rule (``!docs/``)
  ignores every file that reaches it.
* A trailing ``/`` makes the rule apply to directories only. A leading ``/`` anchors the
  pattern to the chart root. A pattern with a ``/`` anywhere is matched against the whole
  path relative to the chart root; one without is matched against the base name only.
* Globs are Go's ``path/filepath.Match`` (``*`` and ``?`` never cross ``/``; classes are
  ``[...]`` with ``^`` for negation (``[!x]`` is a class of ``!`` and ``x``); ``\\``
  escapes), reimplemented in :func:`go_match`.
* helm always appends one default rule, ``templates/.?*``: hidden files directly under
  the chart's own ``templates/`` (not under a subchart's ``templates/``, and not hidden
  files elsewhere). Helm ignores **nothing else by default**: ``.helmignore`` itself,
  ``.git/`` and other dot-files at the root are packaged unless a rule says otherwise.

Directory rules and the walk: when a directory is ignored, helm skips its whole
subtree (nothing below it is looked at), so a later rule cannot bring a file back out of
an ignored directory. That pruning is the walker's job (:mod:`steps.chartpkg`); this
module answers for one path at a time.

What this module does not do: read the file system (except :func:`load_for_chart`,
which only reads the ``.helmignore`` file), follow ``.helmignore`` files in
subdirectories (helm reads only the chart root's), or support ``**``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from steps.errors import BadInput

HELMIGNORE = ".helmignore"

#: The rule helm adds after the file's own rules (``Rules.AddDefaults``).
DEFAULT_PATTERNS: tuple[str, ...] = ("templates/.?*",)

# Go's unicode.IsSpace for the code points strings.TrimSpace removes.
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


class BadPattern(ValueError):
    """Go's ``filepath.ErrBadPattern``: the glob is malformed."""


# --------------------------------------------------------------------------
# Go's path/filepath.Match (Unix flavour: '/' separator, '\\' escapes)
# --------------------------------------------------------------------------


def go_match(pattern: str, name: str) -> bool:
    """Go's ``filepath.Match(pattern, name)`` on Unix.

    Returns whether ``name`` matches all of ``pattern``; raises :class:`BadPattern` when a
    malformed part of the pattern is reached. Like Go, a chunk (the text between stars)
    is parsed to its end even after a mismatch, but later chunks are not looked at once
    the answer is "no". Works on code points, which gives Go's byte-wise answers for
    valid UTF-8.
    """
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and chunk == "":
            # Trailing * matches the rest of the string unless it has a /.
            return "/" not in name
        rest, ok = _match_chunk(chunk, name)
        # If this is the last chunk, the name must be used up; otherwise a star may
        # still find a later match.
        if ok and (rest == "" or pattern):
            name = rest
            continue
        if star:
            matched = False
            i = 0
            while i < len(name) and name[i] != "/":
                rest, ok = _match_chunk(chunk, name[i + 1 :])
                if ok:
                    if not pattern and rest:
                        i += 1
                        continue
                    name = rest
                    matched = True
                    break
                i += 1
            if matched:
                continue
        # No check of the rest of the pattern here: Go does not do one either, so
        # "x*[" passes helm's parse-time check and only fails on names starting "x".
        return False
    return name == ""


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern and pattern[0] == "*":
        pattern = pattern[1:]
        star = True
    in_range = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif c == "[":
            in_range = True
        elif c == "]":
            in_range = False
        elif c == "*" and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _match_chunk(chunk: str, s: str) -> tuple[str, bool]:
    """Match ``chunk`` (no ``*``) at the start of ``s``; parse all of it even on failure."""
    failed = False
    while chunk:
        if not failed and s == "":
            failed = True
        c = chunk[0]
        if c == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk = chunk[1:]
            negated = False
            if chunk and chunk[0] == "^":
                negated = True
                chunk = chunk[1:]
            match = False
            nrange = 0
            while True:
                if chunk and chunk[0] == "]" and nrange > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _get_esc(chunk[1:])
                if not failed and lo <= r <= hi:
                    match = True
                nrange += 1
            if match == negated:
                failed = True
        elif c == "?":
            if not failed:
                if s[0] == "/":
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
        else:
            if c == "\\":
                chunk = chunk[1:]
                if chunk == "":
                    raise BadPattern("syntax error in pattern")
            if not failed:
                if chunk[0] != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    if failed:
        return "", False
    return s, True


def _get_esc(chunk: str) -> tuple[str, str]:
    if chunk == "" or chunk[0] in "-]":
        raise BadPattern("syntax error in pattern")
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if chunk == "":
            raise BadPattern("syntax error in pattern")
    r, rest = chunk[0], chunk[1:]
    if rest == "":
        raise BadPattern("syntax error in pattern")
    return r, rest


# --------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One parsed line. ``glob`` is the pattern with ``!``, trailing ``/`` and leading ``/``
    removed; ``whole_path`` says it is matched against the full relative path (it had a
    ``/``), otherwise against the base name."""

    raw: str
    glob: str
    negate: bool
    dir_only: bool
    whole_path: bool
    line: int = 0

    def matches(self, path: str) -> bool:
        """Whether the glob matches ``path`` (ignores ``negate`` and ``dir_only``).

        A glob that turns out malformed for this path (it passed the parse-time check
        against ``"abc"``) does not match, as in helm."""
        subject = path if self.whole_path else path.rsplit("/", 1)[-1]
        simple = _simple_glob(self.glob)
        if simple is not None:
            return simple.fullmatch(subject) is not None
        try:
            return go_match(self.glob, subject)
        except BadPattern:
            # helm logs "Failed to compile" and treats the rule as not matching.
            return False


@functools.cache
def _simple_glob(glob: str) -> re.Pattern[str] | None:
    """``glob`` as a regular expression when it has only literals, ``*`` and ``?`` (what
    nearly every ``.helmignore`` line is), else None (:func:`go_match` decides).

    For such a glob :func:`go_match` is exactly a full match of this expression: ``*`` is
    any run of characters but ``/``, ``?`` one character but ``/``, anything else itself,
    and no such glob is malformed. One compiled match per path instead of Go's matcher
    written out in Python: packaging the reference charts spent 37 ms in it
    (``tests/unit/charts/test_helmignore.py`` checks that both agree)."""
    if "[" in glob or "\\" in glob:
        return None
    parts = ["[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in glob]
    return re.compile("".join(parts), re.DOTALL)


def parse_rule(text: str, *, line: int = 0, source: str = HELMIGNORE) -> Rule | None:
    """Parse one line; ``None`` for a blank line or a comment; :class:`BadInput` for a
    line helm refuses (``**`` or a malformed glob)."""
    rule = text.strip(_GO_SPACE)
    if rule == "" or rule.startswith("#"):
        return None
    where = f"{source} line {line}" if line else source
    if "**" in rule:
        raise BadInput(
            f"{where}: pattern {rule!r} uses '**', which helm does not support "
            "(helm package fails with 'double-star (**) syntax is not supported')",
            hint="use one '*' per directory level, a pattern without '/' (matched against "
            "every base name), or a directory rule such as 'docs/'",
        )
    try:
        go_match(rule, "abc")
    except BadPattern:
        raise BadInput(
            f"{where}: pattern {rule!r} is not a valid glob "
            "(helm package fails with 'syntax error in pattern')",
            hint="close every '[' with ']' and do not end a pattern with a lone '\\'",
        ) from None
    negate = rule.startswith("!")
    if negate:
        rule = rule[1:]
    dir_only = rule.endswith("/")
    if dir_only:
        rule = rule[:-1]
    if rule.startswith("/"):
        return Rule(text.strip(_GO_SPACE), rule[1:], negate, dir_only, True, line)
    return Rule(text.strip(_GO_SPACE), rule, negate, dir_only, "/" in rule, line)


@dataclass(frozen=True)
class Rules:
    """An ordered, immutable rule set; :meth:`ignores` is helm's ``Rules.Ignore``."""

    rules: tuple[Rule, ...] = ()

    def with_defaults(self) -> Rules:
        """These rules followed by helm's defaults (``templates/.?*``)."""
        extra = tuple(r for p in DEFAULT_PATTERNS if (r := parse_rule(p, source="default")))
        return Rules(self.rules + extra)

    def ignores(self, path: str, *, is_dir: bool) -> bool:
        """Would helm leave ``path`` (relative to the chart root, ``/``-separated, no
        leading ``./``) out of the package? ``is_dir`` describes what the path resolves to
        (helm follows symbolic links before asking)."""
        if path in ("", ".", "./"):
            return False
        for rule in self.rules:
            if rule.negate:
                if rule.dir_only and not is_dir:
                    return True
                if not rule.matches(path):
                    return True
                continue
            if rule.dir_only and not is_dir:
                continue
            if rule.matches(path):
                return True
        return False

    def __len__(self) -> int:
        return len(self.rules)


def parse(text: str | bytes, *, source: str = HELMIGNORE) -> Rules:
    """Parse the text of a ``.helmignore`` file (without helm's default rule)."""
    if isinstance(text, bytes):
        text = text.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="surrogateescape")
    text = text.removeprefix("\ufeff")
    rules: list[Rule] = []
    for number, line in enumerate(text.split("\n"), start=1):
        rule = parse_rule(line.removesuffix("\r"), line=number, source=source)
        if rule is not None:
            rules.append(rule)
    return Rules(tuple(rules))


def load_for_chart(chart_dir: Path) -> Rules:
    """What helm's directory loader uses for ``chart_dir``: the root ``.helmignore`` (if
    there is one) followed by the default rule. Reads only that one file."""
    path = chart_dir / HELMIGNORE
    if not path.exists():
        return Rules().with_defaults()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(
            f"cannot read {path}: {exc.strerror or exc}",
            hint="make the chart's .helmignore a readable regular file",
        ) from None
    return parse(data, source=str(path)).with_defaults()
