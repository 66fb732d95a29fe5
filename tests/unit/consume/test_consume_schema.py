"""The consume library's structural validation agrees with the JSON Schema on every example.

The reference verdict is the published schema (schemas/release-manifest.v1.schema.json)
evaluated by jsonschema as the schema's users evaluate it: draft 2020-12, patterns
with ECMA-262 semantics (``$`` is the very end of the string) and the ``date-time``
format asserted. Every file under schemas/examples/ is checked, then a few hundred
single-field mutations of the full example. The JavaScript twin is held to exactly
the same problem lists by tests/unit/test_consume_node.py.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "consume"))
import release_consume as rc  # noqa: E402  (a single file, not a package: see consume/README.md)

SCHEMA = ROOT / "schemas" / "release-manifest.v1.schema.json"
EXAMPLES = sorted((ROOT / "schemas").glob("examples/**/*.json"))

# Invalid examples whose flaw only a YAML parser sees (the publisher parses the values
# texts; the consume library, stdlib-only, checks them with the appliance's own
# line-based setter and nothing more). Listed so that a new one cannot slip in unseen.
NEEDS_YAML = {
    "profile-values-not-yaml.json",  # pgbouncer values that do not parse; no setter path there
    "profile-values-not-mapping.json",  # temporal values that are a YAML list; no setter path
    # (profile-values-tag-not-scalar.json, image.tag a mapping, is caught without a parser:
    # "tag:" opens a key for the in-cluster updater's setter, which then sets no tag)
}


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    if validator.is_type(instance, "string") and not re.search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@cache
def _validator() -> Any:
    checker = FormatChecker()
    checker.checks("date-time")(_date_time)
    cls = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})
    return cls(json.loads(SCHEMA.read_text(encoding="utf-8")), format_checker=checker)


def schema_accepts(doc: Any) -> bool:
    return not any(True for _ in _validator().iter_errors(doc))


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT / "schemas" / "examples"))


def test_there_are_examples_to_agree_on() -> None:
    assert SCHEMA.is_file()
    assert any("/valid/" in str(p) for p in EXAMPLES)
    assert any("/invalid/" in str(p) for p in EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=[_id(p) for p in EXAMPLES])
def test_structural_validation_agrees_with_the_json_schema(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    ours = rc.schema_problems(doc)
    assert (ours == []) == schema_accepts(doc), ours or "the JSON Schema refuses it, we accept it"


@pytest.mark.parametrize("path", EXAMPLES, ids=[_id(p) for p in EXAMPLES])
def test_full_validation_matches_the_examples_verdict(path: Path) -> None:
    """valid/ passes schema and contract; invalid/ is refused, except what needs YAML."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    problems = rc.release_problems(doc)
    if path.parent.name == "valid":
        assert problems == []
        for document in rc.render_all(doc):  # and the appliance could apply it
            assert document["metadata"]["name"]
    elif path.name in NEEDS_YAML:
        assert problems == [], "caught after all: drop it from NEEDS_YAML"
    else:
        assert problems != []


def test_schema_edges_the_examples_pin() -> None:
    """The two places where a naive port of the schema goes wrong."""
    base = json.loads((ROOT / "schemas/examples/valid/minimal.json").read_text(encoding="utf-8"))
    trailing = {**base, "version": base["version"] + "\n"}
    assert rc.schema_problems(trailing) and not schema_accepts(trailing)
    impossible = {**base, "provenance": {**base["provenance"], "created": "2026-02-30T00:00:00Z"}}
    assert rc.schema_problems(impossible) and not schema_accepts(impossible)
    leap_day = {**base, "provenance": {**base["provenance"], "created": "2024-02-29T23:59:59Z"}}
    assert rc.schema_problems(leap_day) == [] and schema_accepts(leap_day)


def _mutations(doc: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Single-field changes around every rule of the schema (beyond the example files)."""
    yield "not an object", []
    yield "null", None
    for key in list(doc):
        yield f"without {key}", {k: v for k, v in doc.items() if k != key}
        for bad in (None, 1, True, [], {}, "", "x" * 600, "UPPER", "a b"):
            yield f"{key}={bad!r}"[:60], {**doc, key: bad}
    for key in ("images", "imageDigests", "config", "charts", "provenance"):
        inner = doc[key]
        for sub in list(inner):
            yield f"{key} without {sub}", {**doc, key: {k: v for k, v in inner.items() if k != sub}}
            for bad in (None, 7, "", "sha256:" + "A" * 64, "1.2.3+x", "a/b:c", "0.0.1-c3f2a1b09d"):
                yield f"{key}.{sub}={bad!r}", {**doc, key: {**inner, sub: bad}}
        yield f"{key} with extra", {**doc, key: {**inner, "extra": "x"}}
    values = doc["profileValues"]
    first = next(iter(values))
    yield "profileValues empty text", {**doc, "profileValues": {**values, first: ""}}
    yield (
        "profileValues 7 keys",
        {**doc, "profileValues": {**values, "pgbouncer.other.yaml": "a: 1"}},
    )
    yield (
        "profileValues bad key",
        {
            **doc,
            "profileValues": {**{k: v for k, v in values.items() if k != first}, "x.yaml": "a: 1"},
        },
    )
    pem = "-----BEGIN PUBLIC KEY-----\nMFk=\n-----END PUBLIC KEY-----\n"
    for keys in (
        {},
        {"a": pem},
        {"a": pem, "b": pem},
        {"a": pem, "b": pem, "c": pem},
        {"a b": pem},
        {"a": "x"},
        {"a": pem + "x" * 9000},
        {"a": 1},
        {"k" * 65: pem},
    ):
        yield f"supportReceiptKeys={list(keys)}", {**doc, "supportReceiptKeys": keys}
    for agent in (
        "ghcr.io/nine-minds/alga-appliance-support-agent@sha256:" + "a" * 64,
        "ghcr.io/nine-minds/alga-appliance-support-agent:1.0",
        5,
    ):
        yield f"supportAgent={agent!r}"[:60], {**doc, "supportAgent": agent}
    for cp in (
        "127.0.0.1:5000/ns/alga-appliance-control-plane@sha256:" + "a" * 64,
        "localhost/ns/alga-appliance-control-plane@sha256:" + "a" * 64,
        "registry:5000/ns/deep/alga-appliance-control-plane@sha256:" + "a" * 64,
        "registry/ns/alga-appliance-control-plane@sha256:" + "a" * 64,
        "[::1]:5000/ns/alga-appliance-control-plane@sha256:" + "a" * 64,
        "ghcr.io/Nine/alga-appliance-control-plane@sha256:" + "a" * 64,
    ):
        yield f"controlPlane={cp[:30]}", {**doc, "controlPlane": cp}
    for created in (
        "2025-01-01T00:00:00.5Z",
        "2025-01-01t00:00:00Z",
        "2025-13-01T00:00:00Z",
        "2025-01-01T24:00:00Z",
        "2025-01-01T00:00:60Z",
        "0000-01-01T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2000-02-29T00:00:00Z",
    ):
        yield f"created={created}", {**doc, "provenance": {**doc["provenance"], "created": created}}
    for run in ("argo-1", "Argo", "a" * 254, "a.b-c", "-a"):
        yield f"run={run[:20]}", {**doc, "provenance": {**doc["provenance"], "run": run}}
    for source in ("https://github.com/x", "http://github.com/x", "https://a b", "x" * 3000):
        yield (
            f"source={source[:20]}",
            {**doc, "provenance": {**doc["provenance"], "source": source}},
        )
    for version in ("1.0.0-rc.1", "01.0.0", "1.0.0-01", "1.0.0-0a", "1.0", "9" * 130 + ".0.0"):
        yield f"version={version[:20]}", {**doc, "version": version}


def test_structural_validation_agrees_on_mutations() -> None:
    base = json.loads((ROOT / "schemas/examples/valid/full.json").read_text(encoding="utf-8"))
    disagreements = []
    for label, doc in _mutations(base):
        if (rc.schema_problems(doc) == []) != schema_accepts(doc):
            disagreements.append(label)
    assert disagreements == []


# -- the publisher's fast accept ---------------------------------------------------------
# steps.release.manifest.schema_problems accepts what this library accepts without
# importing jsonschema, and asks jsonschema otherwise: its verdict must stay the schema's.


def test_the_publishers_verdict_is_the_schemas_on_examples_and_mutations() -> None:
    from steps.release import manifest as rm

    base = json.loads((ROOT / "schemas/examples/valid/full.json").read_text(encoding="utf-8"))
    docs = [(_id(p), json.loads(p.read_text(encoding="utf-8"))) for p in EXAMPLES]
    docs += list(_mutations(base))
    assert len(docs) > 200
    wrong = [label for label, doc in docs if (rm.schema_problems(doc) == []) != schema_accepts(doc)]
    assert wrong == []


#: Validates a valid manifest, then an invalid one, printing each time whether jsonschema
#: was imported by then.
_IMPORT_PROBE = """
import json, sys
from steps.release import manifest as rm
doc = json.loads(open(sys.argv[1]).read())
assert rm.schema_problems(doc) == []
print('jsonschema' in sys.modules)
doc['version'] = '01.0.0'
assert rm.schema_problems(doc)
print('jsonschema' in sys.modules)
"""


def test_a_valid_manifest_is_accepted_without_importing_jsonschema() -> None:
    import subprocess

    full = str(ROOT / "schemas/examples/valid/full.json")
    argv = [sys.executable, "-c", _IMPORT_PROBE, full]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True)
    assert done.returncode == 0, done.stderr
    # the refused one is judged (and described) by jsonschema
    assert done.stdout.split() == [b"False", b"True"]


def test_what_the_appliance_refuses_is_refused_even_if_jsonschema_accepted_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from steps.release import manifest as rm

    class Lenient:
        def iter_errors(self, _doc: Any) -> Iterator[Any]:
            return iter(())

    monkeypatch.setattr(rm, "_validator", Lenient)
    base = json.loads((ROOT / "schemas/examples/valid/full.json").read_text(encoding="utf-8"))
    doc = {**base, "images": {**base["images"], "algaCore": "a b"}}
    assert rm.schema_problems(base) == []
    problems = rm.schema_problems(doc)
    assert problems and all(p.endswith("(the appliance's rules)") for p in problems), problems
    assert problems[0].startswith("images.algaCore: "), problems
