"""YAML editing that keeps the original text (steps.bundle_yaml): pure, fast."""

from __future__ import annotations

import pytest
import yaml

from steps.bundle.yamledit import (
    DeleteKey,
    Edit,
    ReplaceKey,
    SetScalar,
    apply_edits,
    parse_yaml,
    render_file,
    render_scalar,
)
from steps.errors import BadInput

HR = """\
# A HelmRelease with comments everywhere.
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: pgbouncer # trailing comment
spec:
  chart:
    spec:
      chart: pgbouncer
      # the publish step pins this
      version: 0.1.0 # pinned
      reconcileStrategy: Revision  # git only
      sourceRef:
        kind: HelmRepository
        name: alga-charts
  # dependsOn comment stays
  dependsOn:
    - name: temporal
"""


def render(text: str, edits: dict[int, list[Edit]], appended: list[object] | None = None) -> str:
    f = parse_yaml("f.yaml", text.encode())
    out = render_file(f, edits, appended or [])
    expected = [apply_edits(d, edits.get(i, [])) for i, d in enumerate(f.docs)]
    expected += appended or []
    assert list(yaml.safe_load_all(out.data)) == expected  # the invariant, always
    return out.data.decode()


def test_no_edit_keeps_the_bytes() -> None:
    f = parse_yaml("f.yaml", HR.encode())
    out = render_file(f, {})
    assert out.how == "unchanged"
    assert out.data == HR.encode()


def test_set_and_delete_touch_only_their_lines() -> None:
    edits: dict[int, list[Edit]] = {
        0: [
            SetScalar(("spec", "chart", "spec", "version"), "0.1.0-c0123456789"),
            DeleteKey(("spec", "chart", "spec", "reconcileStrategy")),
        ]
    }
    out = render(HR, edits)
    expected = HR.replace("version: 0.1.0 # pinned", "version: 0.1.0-c0123456789 # pinned")
    expected = expected.replace("      reconcileStrategy: Revision  # git only\n", "")
    assert out == expected


def test_quoting_style_is_kept_and_ambiguous_values_are_quoted() -> None:
    text = "a: '1.0.0'\nb: \"x\"\nc: plain\n"
    out = render(
        text,
        {0: [SetScalar(("a",), "2.0.0"), SetScalar(("b",), "it's"), SetScalar(("c",), "1.10")]},
    )
    assert out == 'a: \'2.0.0\'\nb: "it\'s"\nc: "1.10"\n'
    assert render_scalar("0.1.0-c3f2a1b09d", None) == "0.1.0-c3f2a1b09d"
    assert render_scalar("oci://127.0.0.1:5000/ns/charts", None) == "oci://127.0.0.1:5000/ns/charts"
    assert render_scalar("true", None) == '"true"'
    assert render_scalar("a: b", None) == '"a: b"'


def test_missing_key_is_added_to_its_mapping() -> None:
    text = "spec:\n  chart:\n    spec:\n      chart: x\n      interval: 5m\nother: 1\n"
    out = render(text, {0: [SetScalar(("spec", "chart", "spec", "version"), "1.2.3")]})
    assert out == (
        "spec:\n  chart:\n    spec:\n      chart: x\n      interval: 5m\n"
        "      version: 1.2.3\nother: 1\n"
    )


def test_replace_key_keeps_position_and_indentation() -> None:
    text = (
        "spec:\n"
        "    interval: 10m\n"
        "    chart:\n"
        "        spec:\n"
        "            chart: x  # gone with the block\n"
        "    # a comment that belongs to values\n"
        "    values: {a: 1}\n"
    )
    ref = {"kind": "OCIRepository", "name": "x", "namespace": "flux-system"}
    out = render(text, {0: [ReplaceKey(("spec", "chart"), "chartRef", ref)]})
    assert out == (
        "spec:\n"
        "    interval: 10m\n"
        "    chartRef:\n"
        "        kind: OCIRepository\n"
        "        name: x\n"
        "        namespace: flux-system\n"
        "    # a comment that belongs to values\n"
        "    values: {a: 1}\n"
    )
    doc = apply_edits(yaml.safe_load(text), [ReplaceKey(("spec", "chart"), "chartRef", ref)])
    assert isinstance(doc, dict)
    assert list(doc["spec"]) == ["interval", "chartRef", "values"]


def test_replace_key_by_itself_or_an_absent_key_adds_a_block() -> None:
    """What --verify-charts does: ``verify`` replaced in place, or added after the last key."""
    verify = {"provider": "cosign", "secretRef": {"name": "keys"}}
    edit = ReplaceKey(("spec", "chart", "spec", "verify"), "verify", verify)
    out = render(HR, {0: [edit]})
    assert out == HR.replace(
        "        name: alga-charts\n",
        "        name: alga-charts\n"
        "      verify:\n        provider: cosign\n        secretRef:\n          name: keys\n",
    )
    doc = apply_edits(next(iter(yaml.safe_load_all(HR))), [edit])
    assert isinstance(doc, dict)
    assert list(doc["spec"]["chart"]["spec"])[-1] == "verify"
    own = HR.replace(
        "      sourceRef:\n", "      verify:\n        provider: notation\n      sourceRef:\n"
    )
    again = render(own, {0: [edit]})
    assert again == HR.replace(
        "      sourceRef:\n",
        "      verify:\n        provider: cosign\n        secretRef:\n          name: keys\n"
        "      sourceRef:\n",
    )
    doc = apply_edits(next(iter(yaml.safe_load_all(own))), [edit])
    assert isinstance(doc, dict)
    assert doc["spec"]["chart"]["spec"]["verify"] == verify  # not dropped
    assert list(doc["spec"]["chart"]["spec"]).index("verify") == 3  # where it was


def test_multi_document_file_stays_in_order_and_appends() -> None:
    text = "# head\n---\na: 1\n---\nb: 2 # two\n---\nc: 3\n"
    out = render(text, {1: [SetScalar(("b",), "x")]}, [{"d": 4}])
    assert out == "# head\n---\na: 1\n---\nb: x # two\n---\nc: 3\n---\nd: 4\n"


@pytest.mark.parametrize(
    "text",
    [
        "spec: {chart: {spec: {version: 1.0.0, chart: x}}}\n",  # flow mapping
        "base: &b\n  version: 0.1.0\nspec:\n  chart:\n    spec: *b\n",  # alias
        "spec:\n  chart:\n    spec:\n      version: |\n        0.1.0\n",  # block scalar
    ],
)
def test_layouts_the_splicer_avoids_are_reserialised_not_broken(text: str) -> None:
    f = parse_yaml("f.yaml", text.encode())
    edits: dict[int, list[Edit]] = {0: [SetScalar(("spec", "chart", "spec", "version"), "9.9.9")]}
    out = render_file(f, edits)
    docs = list(yaml.safe_load_all(out.data))
    assert docs == [apply_edits(f.docs[0], edits[0])]
    assert docs[0]["spec"]["chart"]["spec"]["version"] == "9.9.9"


def test_reserialised_file_keeps_key_and_document_order() -> None:
    text = "z: {b: 1, a: 2}\n---\ny: 1\nx: 2\n"
    f = parse_yaml("f.yaml", text.encode())
    out = render_file(f, {0: [SetScalar(("z", "b"), "v")]})
    assert out.how == "reserialised"
    # "y" is quoted: a YAML 1.1 reader (Go's yaml.v2, used by Helm) would take y for true.
    assert out.data.decode() == '---\nz:\n  b: v\n  a: 2\n---\n"y": 1\nx: 2\n'


def test_invalid_yaml_names_file_line_and_column() -> None:
    with pytest.raises(BadInput) as err:
        parse_yaml("base/releases/x.yaml", b"a: 1\nb: [unclosed\nc: 2\n")
    assert err.value.message.startswith("base/releases/x.yaml:3:")
    assert "invalid YAML" in err.value.message
    with pytest.raises(BadInput, match=r"x\.yaml:2:1: invalid YAML: found character"):
        parse_yaml("x.yaml", b"a:\n\tb: 1\n")


def test_non_utf8_is_bad_input() -> None:
    with pytest.raises(BadInput, match="not UTF-8"):
        parse_yaml("x.yaml", b"a: \xff\n")


def test_strings_that_yaml_1_2_reads_as_numbers_are_quoted() -> None:
    """Kustomize, Flux and Helm read YAML 1.2 (or 1.1 bools): 1e3, 0o17, .5, yes must stay
    strings when they are strings, in an edit and in a re-serialised file."""
    import yaml

    from steps.bundle.yamledit import dump_document, render_scalar

    for value in ("1e3", "1234e56", "0o17", "+1e3", ".5", "0.10", "yes", "on", "null"):
        rendered = render_scalar(value, None)
        assert rendered is not None and rendered.startswith('"'), value
        assert yaml.safe_load(rendered) == value
    assert render_scalar("0.1.0-c0123456789", None) == "0.1.0-c0123456789"
    dumped = dump_document({"tag": "1234e56", "version": "0.1.0", "count": 3})
    assert 'tag: "1234e56"' in dumped and "version: 0.1.0" in dumped and "count: 3" in dumped
