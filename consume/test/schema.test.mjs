// Structural validation against schemas/examples: valid/ passes, invalid/ is refused.
//
// schemas/examples/README.md says, per invalid file, whether the JSON Schema alone
// refuses it ("schema") or only the publisher's code does ("code"): schemaProblems
// must agree with that column exactly. (tests/unit/test_consume_schema.py checks
// the Python twin against the schema itself with jsonschema, and
// tests/unit/test_consume_node.py checks that both twins report identical problems.)

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as rc from '../release-consume.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const EXAMPLES = path.join(HERE, '..', '..', 'schemas', 'examples');
// Flaws only a YAML parser sees (see tests/unit/test_consume_schema.py).
// (profile-values-tag-not-scalar.json is caught without one: the in-cluster updater's setter.)
const NEEDS_YAML = new Set(['profile-values-not-yaml.json', 'profile-values-not-mapping.json']);

function checkedBy() {
  const readme = fs.readFileSync(path.join(EXAMPLES, 'README.md'), 'utf8');
  const body = readme.split('## invalid/\n')[1] ?? '';
  const out = {};
  for (const line of body.split('\n')) {
    const cells = line.split(' | ').map((cell) => cell.trim());
    const name = (cells[0] || '').replace(/^\|\s*/, '').replaceAll('`', '');
    if (name.endsWith('.json') && cells.length >= 6) out[name] = cells[4];
  }
  return out;
}

const load = (dir, name) => JSON.parse(fs.readFileSync(path.join(EXAMPLES, dir, name), 'utf8'));
const list = (dir) => (fs.existsSync(path.join(EXAMPLES, dir)) ? fs.readdirSync(path.join(EXAMPLES, dir)).filter((n) => n.endsWith('.json')).sort() : []);

test('there are examples to agree on', () => {
  assert.ok(list('valid').length > 0 && list('invalid').length > 0);
});

for (const name of list('valid')) {
  test(`valid/${name} passes the schema and the contract, and renders`, () => {
    const doc = load('valid', name);
    assert.deepEqual(rc.releaseProblems(doc), []);
    assert.equal(rc.renderAll(doc).length, 8);
  });
}

const verdicts = checkedBy();
for (const name of list('invalid')) {
  test(`invalid/${name} is refused as the examples README says`, () => {
    const doc = load('invalid', name);
    assert.ok(Object.hasOwn(verdicts, name), `${name} is not in schemas/examples/README.md`);
    assert.equal(rc.schemaProblems(doc).length > 0, verdicts[name].includes('schema'), verdicts[name]);
    assert.equal(rc.releaseProblems(doc).length > 0, !NEEDS_YAML.has(name));
  });
}
