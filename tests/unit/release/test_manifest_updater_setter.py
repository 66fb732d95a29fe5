"""The in-cluster updater's line setter (appliance-status.yaml's update Job), reproduced:
it differs from setup-engine's, and the publisher's contract check applies both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from steps.release import manifest as rm
from steps.release.setters import YamlPathNotFound, set_yaml_path, set_yaml_value_updater

ROOT = Path(__file__).resolve().parents[3]
MINIMAL = ROOT / "schemas" / "examples" / "valid" / "minimal.json"
WORKER = "temporal-worker.single-node.yaml"


def test_sets_the_value_as_a_json_string_dropping_the_comment() -> None:
    text = "image:\n  repository: r\n  tag: latest # pinned\npublicBaseUrl: u\n"
    assert set_yaml_value_updater(text, "image.tag", "62cdce38") == (
        'image:\n  repository: r\n  tag: "62cdce38"\npublicBaseUrl: u\n'
    )
    assert set_yaml_value_updater("a:\r\n  b: 1\r\n", "a.b", "x") == 'a:\n  b: "x"\n'


@pytest.mark.parametrize(
    "text",
    [
        "image:  # note\n  tag: x\n",  # a comment after the parent key
        "image: \n  tag: x\n",  # a space after it
        "image: # pinned by the appliance\n  tag: x\n",
    ],
)
def test_a_parent_line_that_does_not_end_with_a_colon_hides_the_path(text: str) -> None:
    # setup-engine's setter finds these; the updater's does not (issue 16, finding 6).
    assert set_yaml_path(text, "image.tag", "v").endswith('tag: "v"\n')
    with pytest.raises(YamlPathNotFound):
        set_yaml_value_updater(text, "image.tag", "v")


def test_other_differences_from_setup_engine() -> None:
    # An empty 'tag:' opens a key instead of being replaced.
    with pytest.raises(YamlPathNotFound):
        set_yaml_value_updater("image:\n  tag:\n", "image.tag", "v")
    # Every matching line is replaced, not only the first.
    twice = "image:\n  tag: a\n  tag: b\n"
    assert set_yaml_value_updater(twice, "image.tag", "v") == 'image:\n  tag: "v"\n  tag: "v"\n'
    assert set_yaml_path(twice, "image.tag", "v") == 'image:\n  tag: "v"\n  tag: b\n'
    # '- key:' opens nothing; 'tag:x' counts as the key (it starts with 'tag:').
    with pytest.raises(YamlPathNotFound):
        set_yaml_value_updater("- image:\n    tag: x\n", "image.tag", "v")
    assert set_yaml_value_updater("image:\n  tag:x\n", "image.tag", "v") == 'image:\n  tag: "v"\n'
    # A blank line inside the block closes it, as in setup-engine's setter.
    with pytest.raises(YamlPathNotFound):
        set_yaml_value_updater("image:\n\n  tag: x\n", "image.tag", "v")
    # JS whitespace (a no-break space) counts as indentation.
    assert set_yaml_value_updater("image:\n\u00a0 tag: x\n", "image.tag", "v").endswith(
        'tag: "v"\n'
    )


def _manifest_with_worker(text: str) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(MINIMAL.read_text())
    manifest["profileValues"][WORKER] = text
    return manifest


def test_the_contract_check_reports_what_breaks_in_cluster_upgrades() -> None:
    bad = "image:  # note\n  tag: latest\npublicBaseUrl: https://alga.appliance.local\n"
    (problem,) = rm.manifest_problems(_manifest_with_worker(bad))
    assert f'profileValues["{WORKER}"]' in problem
    assert "image.tag exists but the in-cluster updater's line setter cannot find it" in problem
    assert "every upgrade of a running appliance would fail" in problem
    good = "image:\n  tag: latest  # c\npublicBaseUrl: https://alga.appliance.local\n"
    assert rm.manifest_problems(_manifest_with_worker(good)) == []


def test_a_repeated_key_the_updater_would_rewrite_twice_is_reported() -> None:
    text = "image:\n  tag: latest\n  note: |\n    tag: kept\npublicBaseUrl: https://a.local\n"
    # setup-engine's setter stops at the first 'tag:'; the updater's also rewrites the line
    # inside the block scalar, changing the note.
    assert set_yaml_path(text, "image.tag", "v").count('"v"') == 1
    problems = rm.manifest_problems(_manifest_with_worker(text))
    assert any("also changes other values" in p for p in problems), problems
