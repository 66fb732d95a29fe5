"""The bounded YAML loader: the same values as yaml.safe_load, and the limits, with either
parser (libyaml's and PyYAML's pure-Python one)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from steps import yamlload
from steps.errors import BadInput, UnsafeYaml
from steps.yamlload import YamlLimits

ROOT = Path(__file__).resolve().parents[2]
PARSERS = pytest.mark.parametrize("pure", [False, True], ids=["libyaml", "pure-python"])


def alias_bomb(key: str = "bomb", levels: int = 9, width: int = 9, indent: str = "") -> str:
    """``key`` holding a "billion laughs": each level lists the previous one ``width``
    times, so the value expands to width**levels strings from a few hundred bytes."""
    lines = [f"{indent}{key}:", f"{indent}  l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"{indent}  l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_libyaml_is_used_here() -> None:
    # The fast path is the one measured and shipped; the fallback is tested below too.
    assert yamlload.WITH_LIBYAML


@PARSERS
def test_every_yaml_file_of_the_repository_loads_as_safe_load_does(pure: bool) -> None:
    paths = [
        p
        for pattern in (
            "flux/**/*.yaml",
            "examples/*.yaml",
            "examples/charts/*/*.yaml",
            "workflows-generated/*.yaml",
        )
        for p in ROOT.glob(pattern)
    ]
    assert len(paths) > 20
    for path in paths:
        data = path.read_bytes()
        assert yamlload.load_all(data, str(path), pure=pure) == list(yaml.safe_load_all(data))


@PARSERS
def test_values_tags_merges_and_marks_match_pyyaml(pure: bool) -> None:
    text = (
        "base: &base {a: 1, b: [x, y]}\n"
        "derived:\n  <<: *base\n  c: 2020-01-02\n"
        "flt: 1.5\nnul: ~\nbool: yes\nstr: !!str 12\nseq: &s [1, 2]\nagain: *s\n"
        "é: 'ü😀'\n"
    )
    assert yamlload.load(text, "t", pure=pure) == yaml.safe_load(text)
    ours = yamlload.compose_all(text, "t", pure=pure)[0][0]
    theirs = yaml.compose(text, Loader=yaml.SafeLoader)
    for (k1, v1), (k2, v2) in zip(ours.value, theirs.value, strict=True):
        assert (k1.value, k1.start_mark.index, v1.start_mark.line, v1.end_mark.index) == (
            k2.value,
            k2.start_mark.index,
            v2.start_mark.line,
            v2.end_mark.index,
        )


@PARSERS
def test_syntax_errors_are_pyyaml_errors_with_marks(pure: bool) -> None:
    with pytest.raises(yaml.MarkedYAMLError) as info:
        yamlload.load("a: [1, 2\nb: 3\n", "t", pure=pure)
    assert info.value.problem_mark is not None
    with pytest.raises(yaml.YAMLError, match="undefined alias"):
        yamlload.load("a: *nowhere\n", "t", pure=pure)
    with pytest.raises(yaml.YAMLError, match="single document"):
        yamlload.load("a: 1\n---\nb: 2\n", "t", pure=pure)
    assert yamlload.load("", "t", pure=pure) is None
    assert yamlload.load_all("---\n---\na: 1\n", "t", pure=pure) == [None, {"a": 1}]


@PARSERS
def test_an_alias_bomb_is_refused_at_once_naming_file_line_and_limit(pure: bool) -> None:
    bomb = alias_bomb()
    assert len(bomb) < 900
    started = time.monotonic()
    with pytest.raises(UnsafeYaml) as info:
        yamlload.load(bomb, "charts/x/Chart.yaml", pure=pure)
    assert time.monotonic() - started < 1
    err = info.value
    assert isinstance(err, BadInput) and err.exit_code == 2
    assert err.source == "charts/x/Chart.yaml"
    assert err.line is not None and 3 <= err.line <= 10
    assert err.message.startswith(f"charts/x/Chart.yaml:{err.line}: aliases expand to")
    assert "100000 expanded alias nodes per file" in err.message


@PARSERS
def test_the_budgets_are_per_file_across_documents(pure: bool) -> None:
    doc = "a: &a [" + ", ".join(["x"] * 500) + "]\nb: [" + ", ".join(["*a"] * 20) + "]\n"
    assert yamlload.load(doc, "t", pure=pure)["b"][19] == ["x"] * 500  # 10,000 nodes: fine
    many = "---\n".join([doc] * 12)  # 120,000 expanded nodes over 12 documents
    with pytest.raises(UnsafeYaml, match=r"t:\d+: aliases expand"):
        yamlload.load_all(many, "t", pure=pure)


@PARSERS
def test_alias_count_depth_cycles_and_size(pure: bool) -> None:
    aliases = "a: &a x\nb: [" + ", ".join(["*a"] * 1001) + "]\n"
    with pytest.raises(UnsafeYaml, match=r"t:2: more than 1000 aliases \(limit: 1000 aliases"):
        yamlload.load(aliases, "t", pure=pure)
    deep = "a:\n" + "".join("  " * i + "- \n" for i in range(1, 120)) + "  " * 120 + "- x\n"
    flow = "a: " + "[" * 150 + "]" * 150 + "\n"
    for text in (deep, flow):
        with pytest.raises(UnsafeYaml, match=r"nested more than 100 deep \(limit: depth 100\)"):
            yamlload.load(text, "t", pure=pure)
    assert yamlload.load("a: " + "[" * 99 + "]" * 99, "t", pure=pure) is not None
    # A cycle has no JSON form and no Go reader accepts it.
    with pytest.raises(UnsafeYaml, match="a cycle"):
        yamlload.load("a: &a\n  b: *a\n", "t", pure=pure)
    small = YamlLimits(max_bytes=100)
    with pytest.raises(UnsafeYaml, match=r"^t: 101 bytes of YAML \(limit: 100 bytes per file\)"):
        yamlload.load("#" * 101, "t", limits=small, pure=pure)
    # bytes count as UTF-8
    with pytest.raises(UnsafeYaml):
        yamlload.load("# " + "é" * 50, "t", limits=small, pure=pure)


def test_a_huge_flat_file_is_refused_before_parsing() -> None:
    text = "k: v\n" * (2 * 1024 * 1024)  # 10 MiB
    started = time.monotonic()
    with pytest.raises(UnsafeYaml, match=r"10\.0 MiB of YAML \(limit: 8\.0 MiB per file\)"):
        yamlload.load(text, "big.yaml")
    assert time.monotonic() - started < 0.5


def test_without_libyaml_the_pure_parser_runs_with_the_same_limits() -> None:
    import subprocess
    import sys

    script = (
        "import yaml\n"
        "yaml.__with_libyaml__ = False\n"
        "from steps import yamlload\n"
        "from steps.errors import UnsafeYaml\n"
        "assert not yamlload.WITH_LIBYAML\n"
        "assert yamlload.load('a: [1, 2]', 't') == {'a': [1, 2]}\n"
        "try:\n"
        "    yamlload.load(" + repr(alias_bomb()) + ", 'bomb.yaml')\n"
        "except UnsafeYaml as exc:\n"
        "    print(exc.message)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.startswith("bomb.yaml:7: aliases expand to more than 100000 nodes")


def test_the_primed_reader_pattern_is_pyyamls_set_of_code_points() -> None:
    """steps.yamlprime hands PyYAML a cheaper pattern for its reader's printable check:
    it matches exactly the code points PyYAML's own matches (every one of them), and a
    fresh process's PyYAML uses it; the pure reader still refuses what it refused."""
    import re
    import subprocess
    import sys

    from steps import yamlprime

    ours = re.compile(yamlprime.NON_PRINTABLE)
    theirs = re.compile(f"(?:{yamlprime.PYYAML_NON_PRINTABLE})")  # not the cached one
    text = "".join(map(chr, range(0x110000)))
    assert [m.start() for m in ours.finditer(text)] == [m.start() for m in theirs.finditer(text)]
    probe = (
        "import steps, yaml.reader\n"
        "print(yaml.reader.Reader.NON_PRINTABLE.pattern.encode('unicode_escape').decode())"
    )
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == yamlprime.NON_PRINTABLE.encode("unicode_escape").decode()
    with pytest.raises(yaml.YAMLError, match="special characters are not allowed"):
        yamlload.load("a: \x07\n", "bell.yaml", pure=True)
