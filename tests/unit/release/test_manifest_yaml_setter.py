"""set_yaml_path: the appliance's line-based setter, reproduced (including where it fails)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from steps.errors import BadInput
from steps.release.setters import YamlPathNotFound, set_yaml_path

ALGA_CORE = """\
# alga-core values
global:
  storageClass: local-path
bootstrap:
  mode: fresh
appUrl: https://alga.appliance.local
setup:
  image:
    repository: ghcr.io/nine-minds/alga-psa-ee
    tag: latest
    pullPolicy: IfNotPresent
server:
  replicaCount: 1
  image:
    repository: ghcr.io/nine-minds/alga-psa-ee
    tag: latest
"""


def _at(text: str, path: str) -> Any:
    data: Any = yaml.safe_load(text)
    for part in path.split("."):
        data = data[part]
    return data


def test_sets_nested_and_top_level_paths_and_changes_nothing_else() -> None:
    out = set_yaml_path(ALGA_CORE, "server.image.tag", "62cdce38")
    assert _at(out, "server.image.tag") == "62cdce38"
    assert _at(out, "setup.image.tag") == "latest"
    changed = [
        (a, b) for a, b in zip(ALGA_CORE.split("\n"), out.split("\n"), strict=True) if a != b
    ]
    assert changed == [("    tag: latest", '    tag: "62cdce38"')]

    out = set_yaml_path(ALGA_CORE, "appUrl", "https://psa.example.com")
    assert _at(out, "appUrl") == "https://psa.example.com"
    out = set_yaml_path(ALGA_CORE, "bootstrap.mode", "recover")
    assert _at(out, "bootstrap.mode") == "recover"


def test_value_is_written_as_a_json_string_like_the_appliance() -> None:
    tricky = 'a "quoted" # not a comment: {x}'
    out = set_yaml_path(ALGA_CORE, "setup.image.tag", tricky)
    assert '    tag: "a \\"quoted\\" # not a comment: {x}"' in out.split("\n")
    assert _at(out, "setup.image.tag") == tricky
    assert _at(set_yaml_path(ALGA_CORE, "setup.image.tag", ""), "setup.image.tag") == ""
    # A tag made of digits stays a string (quoted), as the chart expects.
    assert _at(set_yaml_path(ALGA_CORE, "setup.image.tag", "12345678"), "setup.image.tag") == (
        "12345678"
    )


def test_quoted_old_values_are_replaced() -> None:
    text = "image:\n  tag: \"latest\"\n  other: 'x'\n"
    assert _at(set_yaml_path(text, "image.tag", "v2"), "image.tag") == "v2"
    text = "image:\n  tag: 'it''s'\n"
    assert _at(set_yaml_path(text, "image.tag", "v2"), "image.tag") == "v2"


def test_comments_same_or_deeper_indentation_are_fine_trailing_comment_is_dropped() -> None:
    text = (
        "image:\n"
        "  # the repository\n"
        "  repository: r\n"
        "      # a deeper comment\n"
        "  tag: latest  # set by the appliance\n"
    )
    out = set_yaml_path(text, "image.tag", "v2")
    assert _at(out, "image.tag") == "v2"
    assert '  tag: "v2"' in out.split("\n")  # the appliance drops the trailing comment


def test_comment_or_blank_line_at_a_lower_indentation_hides_the_rest_of_the_block() -> None:
    # Valid YAML both, but the appliance pops its key stack on any line, so it
    # fails here; the publisher must fail the same way.
    with pytest.raises(YamlPathNotFound):
        set_yaml_path("image:\n  repository: r\n# note\n  tag: latest\n", "image.tag", "v")
    with pytest.raises(YamlPathNotFound):
        set_yaml_path("image:\n  repository: r\n\n  tag: latest\n", "image.tag", "v")
    # Between top-level blocks they do no harm.
    text = "replicaCount: 1\n\n# image\nimage:\n  tag: latest\n"
    assert _at(set_yaml_path(text, "image.tag", "v"), "image.tag") == "v"


def test_absent_path_raises_naming_it() -> None:
    with pytest.raises(YamlPathNotFound) as err:
        set_yaml_path(ALGA_CORE, "server.image.digest", "x")
    assert err.value.path == "server.image.digest"
    assert "server.image.digest" in err.value.message
    assert isinstance(err.value, BadInput) and err.value.exit_code == 2
    with pytest.raises(YamlPathNotFound):
        set_yaml_path(ALGA_CORE, "domainSuffix", "x")
    with pytest.raises(YamlPathNotFound):
        set_yaml_path("", "image.tag", "x")


def test_a_key_at_another_depth_is_not_mistaken_for_the_path() -> None:
    text = "tag: top\nother:\n  image:\n    tag: nested\nimage:\n  repository: r\n"
    with pytest.raises(YamlPathNotFound):
        set_yaml_path(text, "image.tag", "v")
    text += "  tag: real\n"
    out = set_yaml_path(text, "image.tag", "v")
    assert _at(out, "image.tag") == "v"
    assert _at(out, "tag") == "top"
    assert _at(out, "other.image.tag") == "nested"
    # And the top-level key is found as itself.
    assert _at(set_yaml_path(text, "tag", "v"), "tag") == "v"


def test_flow_mappings_and_quoted_keys_are_not_walked() -> None:
    with pytest.raises(YamlPathNotFound):
        set_yaml_path("image: {repository: r, tag: latest}\n", "image.tag", "v")
    with pytest.raises(YamlPathNotFound):
        set_yaml_path('image:\n  "tag": latest\n', "image.tag", "v")


def test_only_the_first_match_is_replaced() -> None:
    text = "image:\n  tag: a\nimage:\n  tag: b\n"
    out = set_yaml_path(text, "image.tag", "v")
    assert out.split("\n") == ["image:", '  tag: "v"', "image:", "  tag: b", ""]


def test_crlf_input_comes_back_with_lf() -> None:
    out = set_yaml_path("image:\r\n  tag: latest\r\n", "image.tag", "v")
    assert out == 'image:\n  tag: "v"\n'


def test_a_mapping_header_is_replaced_like_a_scalar_leaving_invalid_yaml() -> None:
    # The appliance does this too; validate_manifest catches it by parsing the result.
    out = set_yaml_path("image:\n  tag:\n    value: x\n", "image.tag", "v")
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(out)


@pytest.mark.parametrize("path", ["", "image..tag", "image.tag.", "image tag", "image.t@g"])
def test_invalid_paths_are_refused(path: str) -> None:
    with pytest.raises(BadInput, match="invalid key path"):
        set_yaml_path(ALGA_CORE, path, "v")
