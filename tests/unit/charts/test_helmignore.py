"""Unit tests for steps.helmignore: helm's pkg/ignore semantics, Go's filepath.Match.

Real-helm cross-checks of the same rules live in
tests/integration/test_chartpkg_helm.py (test_helmignore_matches_helm).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from steps.charts import ignore as helmignore
from steps.charts.ignore import BadPattern, Rules, go_match, parse
from steps.errors import EXIT_BAD_INPUT, BadInput

# --------------------------------------------------------------------------
# go_match: cases from Go's path/filepath match_test.go (Unix)
# --------------------------------------------------------------------------

GO_MATCH_CASES = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", False),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a\u263ab", True),
    ("a[^a]b", "a\u263ab", True),
    ("a???b", "a\u263ab", False),
    ("a[^a][^a][^a]b", "a\u263ab", False),
    ("[a-\u03b6]*", "\u03b1", True),
    ("*[a-\u03b6]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("*x", "xxx", True),
    # '!' is not class negation in Go: [!x] is the class {'!', 'x'}.
    ("[!x]", "a", False),
    ("[!x]", "!", True),
]

GO_BAD_PATTERNS = [
    ("[]a]", "]"),
    ("[-]", "-"),
    ("[x-]", "x"),
    ("[-x]", "x"),
    ("\\", "a"),
    ("[", "a"),
    ("[^", "a"),
    ("[^bc", "a"),
    ("[a-b-c]", "a"),
    ("a[", "a"),
    ("a[", "ab"),
    # The chunk is parsed to its end even after a mismatch (Go >= 1.16) ...
    ("a[", "x"),
    ("a/b[", "x"),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), GO_MATCH_CASES)
def test_go_match(pattern: str, name: str, expected: bool) -> None:
    assert go_match(pattern, name) is expected


@pytest.mark.parametrize(("pattern", "name"), GO_BAD_PATTERNS)
def test_go_match_bad_pattern(pattern: str, name: str) -> None:
    with pytest.raises(BadPattern):
        go_match(pattern, name)


def test_go_match_does_not_check_later_chunks_after_a_mismatch() -> None:
    # ... but Go does not look at the chunks after a failed one: "x*[" is only
    # found malformed for names starting with "x" (helm accepts such a rule).
    assert go_match("x*[", "abc") is False
    with pytest.raises(BadPattern):
        go_match("x*[", "xyz")


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------


def test_parse_skips_blank_lines_and_comments_and_trims() -> None:
    rules = parse("#ignore\n\n\t#ignore\nfoo\n  bar/*  \r\nbaz/bar/foo.txt\n\none/more\n")
    assert [r.raw for r in rules.rules] == ["foo", "bar/*", "baz/bar/foo.txt", "one/more"]
    assert [r.line for r in rules.rules] == [4, 5, 6, 8]


def test_inline_hash_is_part_of_the_pattern() -> None:
    rules = parse("foo # comment\n")
    assert rules.rules[0].glob == "foo # comment"
    assert not rules.ignores("foo", is_dir=False)
    assert rules.ignores("foo # comment", is_dir=False)


def test_bom_at_start_of_file_is_dropped() -> None:
    rules = parse(b"\xef\xbb\xbf*.txt\n")
    assert rules.ignores("a.txt", is_dir=False)


def test_rule_flags() -> None:
    (neg, anchored, dironly, base, nested) = parse("!a\n/b.txt\nc/\nd*\ne/f\n").rules
    assert neg.negate and neg.glob == "a" and not neg.whole_path
    assert anchored.whole_path and anchored.glob == "b.txt" and not anchored.negate
    assert dironly.dir_only and dironly.glob == "c" and not dironly.whole_path
    assert not base.whole_path and base.glob == "d*"
    assert nested.whole_path and nested.glob == "e/f"


@pytest.mark.parametrize("text", ["foo/**/bar", "**", "docs/**", "!**.txt"])
def test_double_star_is_refused_like_helm(text: str) -> None:
    with pytest.raises(BadInput) as err:
        parse(f"# first\n{text}\n", source="demo/.helmignore")
    assert err.value.exit_code == EXIT_BAD_INPUT
    assert "demo/.helmignore line 2" in err.value.message
    assert "**" in err.value.message
    assert err.value.hint


@pytest.mark.parametrize("text", ["[z-", "a[", "x[", "abc.tx[", "[]a]", "foo\\"])
def test_malformed_glob_is_refused_like_helm(text: str) -> None:
    with pytest.raises(BadInput) as err:
        parse(text)
    assert "not a valid glob" in err.value.message
    assert repr(text) in err.value.message


def test_pattern_malformed_beyond_helms_check_is_accepted_and_never_matches() -> None:
    # helm validates with Match(rule, "abc"); "x*[" passes, and then fails to match
    # (logged by helm, "Failed to compile") for names where the bad part is reached.
    rules = parse("x*[\n")
    assert not rules.ignores("x.txt", is_dir=False)
    assert not rules.ignores("abc", is_dir=False)
    # A negated rule that cannot match ignores the path (helm: !match -> ignored).
    assert parse("!x*[\n").ignores("x.txt", is_dir=False)


# --------------------------------------------------------------------------
# Ignore: helm's own table (pkg/ignore/rules_test.go), with each name's kind
# --------------------------------------------------------------------------

HELM_TABLE = [
    # Glob tests
    ("helm.txt", "helm.txt", False, True),
    ("helm.*", "helm.txt", False, True),
    ("helm.*", "rudder.txt", False, False),
    ("*.txt", "tiller.txt", False, True),
    ("*.txt", "cargo/a.txt", False, True),
    ("cargo/*.txt", "cargo/a.txt", False, True),
    ("cargo/*.*", "cargo/a.txt", False, True),
    ("cargo/*.txt", "mast/a.txt", False, False),
    ("ru[c-e]?er.txt", "rudder.txt", False, True),
    ("templates/.?*", "templates/.dotfile", False, True),
    # "." is never ignored (helm issue 1776)
    (".*", ".", True, False),
    (".*", "./", True, False),
    (".*", ".joonix", False, True),
    (".*", "helm.txt", False, False),
    (".*", "", True, False),
    # Directory tests
    ("cargo/", "cargo", True, True),
    ("cargo/", "mast", True, False),
    ("helm.txt/", "helm.txt", False, False),
    # Negation tests
    ("!helm.txt", "helm.txt", False, False),
    ("!helm.txt", "tiller.txt", False, True),
    ("!*.txt", "cargo", True, True),
    ("!cargo/", "mast", True, True),
    # Absolute path tests
    ("/a.txt", "a.txt", False, True),
    ("/a.txt", "cargo/a.txt", False, False),
    ("/cargo/a.txt", "cargo/a.txt", False, True),
]


@pytest.mark.parametrize(("pattern", "path", "is_dir", "expected"), HELM_TABLE)
def test_helm_rules_table(pattern: str, path: str, is_dir: bool, expected: bool) -> None:
    assert parse(pattern).ignores(path, is_dir=is_dir) is expected


def test_dir_only_rule_does_not_match_files() -> None:
    rules = parse("docs/\n")
    assert rules.ignores("docs", is_dir=True)
    assert rules.ignores("sub/docs", is_dir=True)  # no '/' left: base name match
    assert not rules.ignores("docs", is_dir=False)


def test_anchored_dir_rule() -> None:
    rules = parse("/docs/\n")
    assert rules.ignores("docs", is_dir=True)
    assert not rules.ignores("sub/docs", is_dir=True)


def test_star_does_not_cross_slash_in_path_rules() -> None:
    rules = parse("templates/*.yaml\n")
    assert rules.ignores("templates/a.yaml", is_dir=False)
    assert not rules.ignores("templates/sub/a.yaml", is_dir=False)


# --------------------------------------------------------------------------
# Negation: first decision wins; "!P" ignores whatever does not match P
# --------------------------------------------------------------------------


def test_negation_alone_ignores_everything_else() -> None:
    rules = parse("!keep.txt\n")
    assert not rules.ignores("keep.txt", is_dir=False)
    assert rules.ignores("Chart.yaml", is_dir=False)
    assert rules.ignores("templates", is_dir=True)


def test_negation_after_positive_rule_cannot_rescue() -> None:
    # Unlike .gitignore, the earlier "*.txt" decides first.
    rules = parse("*.txt\n!keep.txt\n")
    assert rules.ignores("keep.txt", is_dir=False)
    assert rules.ignores("other.txt", is_dir=False)
    # Everything that is not keep.txt is ignored by the negation.
    assert rules.ignores("Chart.yaml", is_dir=False)


def test_negation_passes_matching_paths_to_later_rules() -> None:
    rules = parse("!*.yaml\nvalues.yaml\n")
    assert rules.ignores("values.yaml", is_dir=False)  # passed on, then ignored
    assert not rules.ignores("Chart.yaml", is_dir=False)
    assert rules.ignores("notes.txt", is_dir=False)


def test_negated_dir_rule_ignores_every_file() -> None:
    rules = parse("!templates/\n")
    assert rules.ignores("Chart.yaml", is_dir=False)
    assert not rules.ignores("templates", is_dir=True)
    assert rules.ignores("docs", is_dir=True)


def test_negation_as_exclusion_of_backup_files() -> None:
    rules = parse("!*[^~]\n")
    assert rules.ignores("values.yaml~", is_dir=False)
    assert rules.ignores("templates/a.yaml~", is_dir=False)
    assert not rules.ignores("values.yaml", is_dir=False)
    assert not rules.ignores("templates", is_dir=True)


# --------------------------------------------------------------------------
# Defaults and loading
# --------------------------------------------------------------------------


def test_default_rule_only_hides_dotfiles_directly_under_templates() -> None:
    rules = Rules().with_defaults()
    assert len(rules) == 1
    assert rules.ignores("templates/.scratch.yaml", is_dir=False)
    assert rules.ignores("templates/.git", is_dir=True)
    assert not rules.ignores("templates/.", is_dir=False)  # ".?*" needs 2+ characters
    assert not rules.ignores("templates/sub/.hidden", is_dir=False)
    assert not rules.ignores("charts/sub/templates/.hidden", is_dir=False)
    assert not rules.ignores(".helmignore", is_dir=False)
    assert not rules.ignores(".git", is_dir=True)


def test_defaults_come_after_the_files_rules() -> None:
    rules = parse("!*\n").with_defaults()
    assert [r.raw for r in rules.rules] == ["!*", "templates/.?*"]


def test_load_for_chart_without_helmignore(tmp_path: Path) -> None:
    rules = helmignore.load_for_chart(tmp_path)
    assert [r.raw for r in rules.rules] == list(helmignore.DEFAULT_PATTERNS)


def test_load_for_chart_reads_root_file(tmp_path: Path) -> None:
    (tmp_path / ".helmignore").write_text("# c\n*.bak\n")
    rules = helmignore.load_for_chart(tmp_path)
    assert [r.raw for r in rules.rules] == ["*.bak", "templates/.?*"]
    assert rules.ignores("a.bak", is_dir=False)


def test_load_for_chart_names_the_file_in_errors(tmp_path: Path) -> None:
    (tmp_path / ".helmignore").write_text("ok\nfoo/**\n")
    with pytest.raises(BadInput) as err:
        helmignore.load_for_chart(tmp_path)
    assert f"{tmp_path / '.helmignore'} line 2" in err.value.message


def test_simple_globs_match_as_go_matches_them() -> None:
    """Globs of literals, ``*`` and ``?`` are matched by a regular expression; it must give
    Go's answer (:func:`go_match`) for every glob and name, separators and dots included."""
    import itertools
    import random

    from steps.charts.ignore import Rule, _simple_glob, go_match

    alphabet = "ab/.*?"
    globs = ["".join(p) for n in range(1, 5) for p in itertools.product(alphabet, repeat=n)]
    globs = [g for g in globs if "**" not in g]
    names = ["".join(p) for n in range(0, 5) for p in itertools.product("ab/.", repeat=n)]
    rng = random.Random(14)
    globs += ["".join(rng.choice(alphabet) for _ in range(rng.randint(5, 9))) for _ in range(300)]
    names += ["".join(rng.choice("ab/.\n") for _ in range(rng.randint(5, 12))) for _ in range(300)]
    checked = 0
    for glob in globs:
        if "**" in glob:
            continue
        simple = _simple_glob(glob)
        assert simple is not None, glob
        for name in names:
            assert (simple.fullmatch(name) is not None) == go_match(glob, name), (glob, name)
            checked += 1
    assert checked > 500_000
    # a glob with a class or an escape stays with go_match, malformed ones included
    assert _simple_glob("*.[ch]") is None and _simple_glob("a\\*") is None
    rule = Rule("x[", "x[", negate=False, dir_only=False, whole_path=False)
    assert not rule.matches("x")  # helm: a rule that fails to compile matches nothing
