"""The release manifest schema and its examples, checked against schemas/examples/README.md."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from steps.errors import BadInput
from steps.release import manifest as rm
from steps.release.profiles import HELM_RELEASE_CHARTS

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = ROOT / "schemas" / "release-manifest.v1.schema.json"
PACKAGED = ROOT / "steps" / "data" / "release-manifest.v1.schema.json"
EXAMPLES = ROOT / "schemas" / "examples"
README = EXAMPLES / "README.md"


def _table(section: str) -> list[list[str]]:
    """Rows of the table under ``## <section>`` in the examples README, cells unquoted."""
    text = README.read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in body.splitlines():
        if line.startswith("| `") and ".json`" in line:
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows.append([c[1:-1] if c.startswith("`") and c.endswith("`") else c for c in cells])
    return rows


INVALID_ROWS = _table("invalid/")
VALID_ROWS = _table("valid/")


def _load(path: Path) -> dict[str, Any]:
    return rm.parse_manifest(path.read_bytes())


def _problem_field(problem: str) -> str:
    field = problem.split(": ", 1)[0]
    return field.split(" (", 1)[0]


# -- the schema file -------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://nine-minds.com/schemas/alga.appliance.release/v1"
    assert schema["properties"]["schema"]["const"] == rm.MANIFEST_SCHEMA


def test_packaged_schema_is_byte_identical_to_the_published_one() -> None:
    # schemas/ is the source of truth; steps/data/ ships it inside the package.
    assert PACKAGED.read_bytes() == SCHEMA.read_bytes(), (
        "steps/data/ is stale: cp schemas/release-manifest.v1.schema.json steps/data/"
    )
    assert rm.load_schema() == json.loads(SCHEMA.read_text(encoding="utf-8"))


def _objects(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            yield where, node
        for key, value in node.items():
            yield from _objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _objects(value, f"{where}/{index}")


def test_every_object_is_strict_and_every_property_is_described() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    objects = list(_objects(schema, "#"))
    assert len(objects) >= 8
    for where, node in objects:
        assert "additionalProperties" in node, f"{where} must refuse unknown keys"
        assert node["additionalProperties"] is not True, where
        for name, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"{where}/properties/{name} has no description"
    for name, definition in schema["$defs"].items():
        assert definition.get("description") and definition.get("title"), name


def test_schema_description_names_the_rules_checked_in_code() -> None:
    description = json.loads(SCHEMA.read_text(encoding="utf-8"))["description"]
    for rule in ("<name>.<valuesProfile>.yaml", "config.tag", "line-based setter", "charts"):
        assert rule in description


# -- valid examples ----------------------------------------------------------------


def test_readme_lists_exactly_the_example_files() -> None:
    assert {row[0] for row in VALID_ROWS} == {p.name for p in (EXAMPLES / "valid").glob("*.json")}
    assert {row[0] for row in INVALID_ROWS} == {
        p.name for p in (EXAMPLES / "invalid").glob("*.json")
    }
    assert {"minimal.json", "full.json", "talos-profile.json"} <= {r[0] for r in VALID_ROWS}


@pytest.mark.parametrize("name", sorted(p.name for p in (EXAMPLES / "valid").glob("*.json")))
def test_valid_example_passes_schema_and_contract(name: str) -> None:
    manifest = _load(EXAMPLES / "valid" / name)
    assert rm.manifest_problems(manifest, helm_releases=HELM_RELEASE_CHARTS) == []
    rm.validate_manifest(manifest, helm_releases=HELM_RELEASE_CHARTS)
    # A stock validator (any other user of the published schema) agrees.
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    stock = Draft202012Validator(schema, format_checker=FormatChecker())
    assert [e.message for e in stock.iter_errors(manifest)] == []


def test_full_example_uses_every_optional_field() -> None:
    full = _load(EXAMPLES / "valid" / "full.json")
    assert set(full) == set(json.loads(SCHEMA.read_text(encoding="utf-8"))["properties"])
    assert len(full["supportReceiptKeys"]) == 2
    assert set(full["provenance"]) == {"source", "revision", "created", "run"}


# -- invalid examples ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fields", "checked_by", "expected"),
    [(r[0], r[3], r[4], r[5]) for r in INVALID_ROWS],
    ids=[r[0] for r in INVALID_ROWS],
)
def test_invalid_example_fails_with_the_expected_error(
    name: str, fields: str, checked_by: str, expected: str
) -> None:
    manifest = _load(EXAMPLES / "invalid" / name)
    with pytest.raises(BadInput) as err:
        rm.validate_manifest(manifest, helm_releases=HELM_RELEASE_CHARTS)
    assert err.value.exit_code == 2
    assert expected in err.value.message
    problems = rm.manifest_problems(manifest, helm_releases=HELM_RELEASE_CHARTS)
    assert any(expected in p for p in problems), problems
    # The file breaks one rule: every problem reported concerns the listed field(s).
    allowed = [f.strip().strip("`") for f in fields.split(",")]
    for problem in problems:
        field = _problem_field(problem)
        assert any(field == f or re.match(rf"{re.escape(f)}[.\[]", field) for f in allowed), problem
    # "Checked by" is truthful: the schema alone fails the file exactly when it says so.
    assert bool(rm.schema_problems(manifest)) == ("schema" in checked_by), checked_by


def test_invalid_examples_cover_the_rules_the_brief_names() -> None:
    names = {row[0] for row in INVALID_ROWS}
    for required in (
        "missing-temporal-worker-image.json",
        "bare-control-plane-tag.json",
        "config-repository-with-scheme.json",
        "five-charts.json",
        "unknown-top-level-key.json",
        "wrong-schema.json",
        "three-receipt-keys.json",
        "support-agent-other-repo.json",
        "image-with-repo.json",
        "version-with-plus.json",
        "profile-values-missing-key.json",
        "bad-channel.json",
    ):
        assert required in names
    minimal = _load(EXAMPLES / "invalid" / "profile-values-missing-key.json")
    assert len(minimal["profileValues"]) == 5
