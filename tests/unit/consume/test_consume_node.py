"""The JavaScript twin: its own tests (``node --test consume/test/``) and parity with Python.

Node is part of the test toolchain: without it these tests skip, except under
``CI=true`` where they fail (the project rule for a missing component).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness.tools import missing_component

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "consume"))
import release_consume as rc  # noqa: E402  (a single file, not a package: see consume/README.md)

MODULE = ROOT / "consume" / "release-consume.mjs"
EXAMPLES = sorted((ROOT / "schemas").glob("examples/**/*.json"))


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        missing_component("node", "Node.js 20 runs the JavaScript twin's tests")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    major = int(version.stdout.strip().lstrip("v").split(".")[0] or 0)
    if major < 18:  # the twin targets Node 20; it needs 18.3+ (util.parseArgs)
        missing_component("node >= 18", f"found {version.stdout.strip()}")
    return node


def _cases_module() -> Any:
    """tests/unit/test_consume_schema.py, for its mutation corpus (no package to import from)."""
    spec = importlib.util.spec_from_file_location(
        "consume_schema_cases", Path(__file__).with_name("test_consume_schema.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_js(script: str, payload: Any) -> Any:
    proc = subprocess.run(
        # The module path goes by environment: as argv[1] it would look like the entry script.
        [_node(), "--input-type=module", "-e", script],
        env={**os.environ, "CONSUME_MODULE": str(MODULE)},
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_node_test_suite_passes() -> None:
    proc = subprocess.run(
        [_node(), "--test", "consume/test/"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=600,
    )
    summary = "\n".join(line for line in proc.stdout.splitlines() if line.startswith("# "))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "# fail 0" in summary, summary


_PROBLEMS_JS = """
import { pathToFileURL } from 'node:url';
const rc = await import(pathToFileURL(process.env.CONSUME_MODULE).href);
let input = '';
for await (const chunk of process.stdin) input += chunk;
const out = JSON.parse(input).map((doc) => {
  const schema = rc.schemaProblems(doc);
  const release = rc.releaseProblems(doc);
  let rendered = null;
  if (release.length === 0) {
    try { rendered = rc.renderAll(doc); } catch (error) { rendered = `error: ${error.message}`; }
  }
  return [schema, release, rendered];
});
process.stdout.write(JSON.stringify(out));
"""


def _python_problems(doc: Any) -> list[Any]:
    schema = rc.schema_problems(doc)
    release = rc.release_problems(doc)
    rendered: Any = None
    if not release:
        try:
            rendered = rc.render_all(doc)
        except ValueError as exc:
            rendered = f"error: {exc}"
    return [schema, release, rendered]


def test_twins_report_identical_problems_and_renderings() -> None:
    docs: list[Any] = [json.loads(p.read_text(encoding="utf-8")) for p in EXAMPLES]
    cases = _cases_module()
    full = json.loads((ROOT / "schemas/examples/valid/full.json").read_text(encoding="utf-8"))
    docs += [doc for _label, doc in cases._mutations(full)]
    # Contract-level mutations: YAML texts the line-based setter finds or misses.
    minimal = json.loads((ROOT / "schemas/examples/valid/minimal.json").read_text(encoding="utf-8"))
    key = f"alga-core.{minimal['valuesProfile']}.yaml"
    for text in (
        "bootstrap:\r\n  mode: x\r\nappUrl: a\r\nhost: h\r\ndomainSuffix: d\r\n"
        "setup:\r\n  image:\r\n    tag: t\r\nserver:\r\n  image:\r\n    tag: t\r\n",
        "bootstrap:\n\tmode: x\n",
        "# c\nbootstrap: {mode: x}\n",
        minimal["profileValues"][key].replace("  image:\n", "  image:\n  # note\n"),
        minimal["profileValues"][key] + "\nsetup:\n  image:\n    tag: again\n",
    ):
        docs.append({**minimal, "profileValues": {**minimal["profileValues"], key: text}})
    js = _run_js(_PROBLEMS_JS, docs)
    assert len(js) == len(docs)
    mismatches = [
        (i, _python_problems(doc), js[i])
        for i, doc in enumerate(docs)
        if _python_problems(doc) != js[i]
    ]
    assert mismatches == [], mismatches[:3]


_VERSIONS_JS = """
import { pathToFileURL } from 'node:url';
const rc = await import(pathToFileURL(process.env.CONSUME_MODULE).href);
let input = '';
for await (const chunk of process.stdin) input += chunk;
const { pairs, refs, hosts } = JSON.parse(input);
const kind = (ref) => {
  try { const r = rc.parseRef(ref); return [r.kind, r.pinned]; } catch (e) { return e.name; }
};
process.stdout.write(JSON.stringify({
  order: pairs.map(([a, b]) => rc.compareVersions(a, b)),
  refs: refs.map(kind),
  hosts: hosts.map((h) => rc.isLoopback(h)),
}));
"""


def test_twins_agree_on_versions_references_and_hosts() -> None:
    versions = [
        "0.0.1",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-0",
        "1.0.0-1a",
        "1.0.0-rc.10",
        "1.0.0-rc.9",
        "1.0.0",
        "1.2.0",
        "1.10.0",
        "10.0.0",
        "1.0.0-a.b.c.d",
    ]
    pairs = [[a, b] for a in versions for b in versions]
    refs = [
        "nightly",
        "stable",
        "Nightly",
        "1.2.3",
        "v1.2.3",
        "1.2",
        "sha256:" + "a" * 64,
        "sha512:" + "b" * 128,
        "sha256:" + "A" * 64,
        "",
        "x:y",
        "a" * 128,
        "a" * 129,
        "_x",
    ]
    hosts = [
        "localhost",
        "LOCALHOST:1",
        "127.0.0.1",
        "127.255.255.255:80",
        "128.0.0.1",
        "[::1]",
        "[0:0:0:0:0:0:0:1]:5000",
        "::1",
        "ghcr.io",
        "127.0.0.1.nip.io",
        "[::2]",
    ]
    js = _run_js(_VERSIONS_JS, {"pairs": pairs, "refs": refs, "hosts": hosts})

    def kind(ref: str) -> Any:
        try:
            parsed = rc.parse_ref(ref)
        except rc.ConsumeError as exc:
            return type(exc).__name__
        return [parsed.kind, parsed.pinned]

    assert js["order"] == [rc.compare_versions(a, b) for a, b in pairs]
    assert js["refs"] == [kind(r) for r in refs]
    assert js["hosts"] == [rc.is_loopback(h) for h in hosts]


def test_twins_share_the_cache_file(tmp_path: Path) -> None:
    """A cache written by one twin is read by the other (the same format)."""
    doc = {
        "schema": rc.CACHE_SCHEMA,
        "releases": {},
        "challenges": {},
        "tokens": {"k": {"token": "t", "expiresAt": 9.5}},
    }
    rc.FileCache(str(tmp_path / "py.json")).save(doc)
    script = """
import { pathToFileURL } from 'node:url';
const rc = await import(pathToFileURL(process.env.CONSUME_MODULE).href);
let input = '';
for await (const chunk of process.stdin) input += chunk;
const { read, write, doc } = JSON.parse(input);
new rc.FileCache(write).save(doc);
process.stdout.write(JSON.stringify(new rc.FileCache(read).load()));
"""
    read_back = _run_js(
        script, {"read": str(tmp_path / "py.json"), "write": str(tmp_path / "js.json"), "doc": doc}
    )
    assert read_back == doc
    assert rc.FileCache(str(tmp_path / "js.json")).load() == doc
    assert (tmp_path / "js.json").read_bytes() == (tmp_path / "py.json").read_bytes()


# The in-cluster updater's setter (appliance-status.yaml's setYamlValue): the publisher's
# contract check (steps/release/setters.py, which calls the Python twin's port) and the
# Node twin's port. Same texts, same verdicts.
UPDATER_TEXTS = [
    ("image:\n  repository: r\n  tag: latest # pinned\npublicBaseUrl: u\n", "image.tag"),
    ("a:\r\n  b: 1\r\n", "a.b"),
    ("image:  # note\n  tag: x\n", "image.tag"),
    ("image: \n  tag: x\n", "image.tag"),
    ("image: # pinned by the appliance\n  tag: x\n", "image.tag"),
    ("image:\n  tag:\n", "image.tag"),
    ("image:\n  tag: a\n  tag: b\n", "image.tag"),
    ("- image:\n    tag: x\n", "image.tag"),
    ("image:\n  tag:x\n", "image.tag"),
    ("image:\n\n  tag: x\n", "image.tag"),
    ("image:\n\u00a0 tag: x\n", "image.tag"),
    ("image:\n\u2003tag: x\n", "image.tag"),
    ("image :\n  tag: x\n", "image.tag"),
    ("image:\u00a0:\n  tag: x\n", "image.tag"),
    ("setup:\n  image:\n    tag: a\nserver:\n  image:\n    tag: b\n", "server.image.tag"),
    ("setup:\n  image:\n    tag: a\nserver:\n  image:\n    tag: b\n", "setup.image.tag"),
    ("tag: top\nimage:\n  tag: x\n", "image.tag"),
    ("image:\n  tag: x\n    tag: deeper\n", "image.tag"),
    ("\ufeffimage:\n  tag: x\n", "image.tag"),
]

_UPDATER_JS = """
import { pathToFileURL } from 'node:url';
const rc = await import(pathToFileURL(process.env.CONSUME_MODULE).href);
let input = '';
for await (const chunk of process.stdin) input += chunk;
const out = JSON.parse(input).map(([text, path]) => {
  try { return rc.setYamlValue(text, path.split('.'), '"v"'); } catch (error) { return null; }
});
process.stdout.write(JSON.stringify(out));
"""


def test_the_updater_setter_is_the_publisher_s_in_both_twins() -> None:
    from steps.release.setters import YamlPathNotFound, set_yaml_value_updater

    def publisher(text: str, path: str) -> str | None:
        try:
            return set_yaml_value_updater(text, path, "v")
        except YamlPathNotFound:
            return None

    def python_twin(text: str, path: str) -> str | None:
        try:
            return rc.set_yaml_value(text, path.split("."), '"v"')
        except ValueError:
            return None

    expected = [publisher(text, path) for text, path in UPDATER_TEXTS]
    assert None in expected and any(e is not None for e in expected)  # both verdicts occur
    assert [python_twin(text, path) for text, path in UPDATER_TEXTS] == expected
    assert _run_js(_UPDATER_JS, UPDATER_TEXTS) == expected


def test_the_twins_refuse_what_the_publisher_refuses_for_the_updater() -> None:
    """A release the publisher refuses because the updater cannot set a path is refused by
    both twins too (InvalidRelease, exit 3), with the same problem text in both."""
    from steps.release import manifest as rm

    minimal = json.loads((ROOT / "schemas/examples/valid/minimal.json").read_text(encoding="utf-8"))
    key = f"temporal-worker.{minimal['valuesProfile']}.yaml"
    docs = []
    for parent in ("image:  # note", "image: ", "image: # pinned"):
        text = f"{parent}\n  tag: latest\npublicBaseUrl: https://alga.appliance.local\n"
        doc = {**minimal, "profileValues": {**minimal["profileValues"], key: text}}
        assert any("in-cluster updater" in p for p in rm.manifest_problems(doc))  # publisher
        docs.append(doc)
    want = [
        [
            f"/profileValues/{key}: has image.tag where the in-cluster updater cannot set it "
            "(each parent key must be a line ending in ':')"
        ]
    ] * len(docs)
    assert [rc.release_problems(doc) for doc in docs] == want
    assert [release for _schema, release, _rendered in _run_js(_PROBLEMS_JS, docs)] == want
    with pytest.raises(rc.InvalidRelease) as refused:
        rc.validate_release(docs[0])
    assert refused.value.exit_code == rc.EXIT_REFUSED == 3
