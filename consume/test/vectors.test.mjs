// Replay every conformance vector (consume/vectors/*.json) against the JavaScript module.
//
// The Python twin replays the same files in tests/unit/test_consume_vectors.py. A
// vector fixes the exact requests (method, URL, headers that matter, headers that
// must be absent), their order and count, and the outcome.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as rc from '../release-consume.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const VECTORS = path.join(HERE, '..', 'vectors');
const FILES = fs.readdirSync(VECTORS).filter((name) => name.endsWith('.json')).sort();

class VectorMismatch extends Error {}

/** A transport that answers from a vector and checks every request against it. */
export class ReplayTransport {
  constructor(exchanges) {
    this.exchanges = exchanges;
    this.index = 0;
    this.problems = [];
  }

  fail(text) {
    this.problems.push(text);
    return new VectorMismatch(text);
  }

  async request(method, url, headers, limit) {
    if (this.index >= this.exchanges.length) throw this.fail(`unexpected extra request #${this.index + 1}: ${method} ${url}`);
    const exchange = this.exchanges[this.index];
    this.index += 1;
    const want = exchange.request;
    if (method !== want.method || url !== want.url) {
      throw this.fail(`request #${this.index}: got ${method} ${url}, want ${want.method} ${want.url}`);
    }
    const sent = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    for (const [name, value] of Object.entries(want.headers ?? {})) {
      if (sent[name.toLowerCase()] !== value) throw this.fail(`request #${this.index}: header ${name} is ${sent[name.toLowerCase()]}`);
    }
    for (const name of want.absentHeaders ?? []) {
      if (Object.hasOwn(sent, name.toLowerCase())) throw this.fail(`request #${this.index}: header ${name} must not be sent`);
    }
    const answer = exchange.response;
    if (answer.error) {
      throw new rc.RegistryUnreachable(`${method} ${url}: ${answer.error}`, { retryable: answer.error !== 'tls' });
    }
    const outHeaders = Object.fromEntries(Object.entries(answer.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    let body = answer.bodyFill
      ? Buffer.alloc(Math.min(answer.bodyFill.length, limit + 1), answer.bodyFill.char)
      : Buffer.from(answer.body ?? '', 'utf8');
    const declared = outHeaders['content-length'];
    if (method === 'HEAD' || (declared !== undefined && Number(declared) > limit)) body = Buffer.alloc(0);
    return { status: answer.status, headers: outHeaders, body: body.subarray(0, limit + 1) };
  }
}

/** Resolve as the vector says; return {outcome, transport, cacheDoc}. */
export async function runVector(vector) {
  const given = vector.input;
  const transport = new ReplayTransport(vector.exchanges);
  const cache = new rc.MemoryCache(given.cache);
  try {
    const result = await rc.resolve(given.ref, {
      registry: given.registry,
      repository: given.repository,
      installedVersion: given.installedVersion,
      credentials: given.credentials ? new rc.Credentials(given.credentials.username, given.credentials.password) : null,
      tokenRealm: given.tokenRealm,
      attempts: given.attempts,
      cache,
      transport,
      clock: () => given.now,
      sleep: async () => {},
      trustedKeys: given.trustedKeys,
    });
    return { outcome: { outcome: 'resolved', result }, transport, cacheDoc: cache.doc };
  } catch (error) {
    if (!(error instanceof rc.ConsumeError)) throw error;
    const outcome = { outcome: 'error', error: error.name, family: error.toJSON().family, exitCode: error.exitCode };
    if (error instanceof rc.InvalidRelease) outcome.problems = error.problems;
    outcome.json = error.toJSON();
    return { outcome, transport, cacheDoc: cache.doc };
  }
}

for (const file of FILES) {
  test(`vector ${file.replace(/\.json$/, '')}`, async () => {
    const vector = JSON.parse(fs.readFileSync(path.join(VECTORS, file), 'utf8'));
    const { outcome, transport, cacheDoc } = await runVector(vector);
    assert.deepEqual(transport.problems, []);
    assert.equal(transport.index, vector.exchanges.length, `only ${transport.index} of ${vector.exchanges.length} exchanges were used`);
    const expect = vector.expect;
    assert.equal(outcome.outcome, expect.outcome, JSON.stringify(outcome));
    if (expect.outcome === 'error') {
      for (const key of ['error', 'family', 'exitCode', 'problems']) {
        if (Object.hasOwn(expect, key)) assert.deepEqual(outcome[key], expect[key], key);
      }
      for (const [key, value] of Object.entries(expect.fields ?? {})) assert.deepEqual(outcome.json[key], value, key);
    } else {
      for (const [key, value] of Object.entries(expect.result)) assert.deepEqual(outcome.result[key], value, key);
      assert.equal(outcome.result.requests, vector.exchanges.length);
      if (Object.hasOwn(expect, 'rendered')) {
        // what the appliance applies, Flux verification included
        assert.deepEqual(rc.renderAll(outcome.result.manifest, { trustedKeys: vector.input.trustedKeys }), expect.rendered);
      }
    }
    const key = `${vector.input.registry}/${vector.input.repository}`;
    for (const [ref, digest] of Object.entries(expect.cacheAfter ?? {})) {
      const entry = cacheDoc?.releases?.[key]?.[ref];
      assert.equal(entry?.manifestDigest ?? null, digest, ref);
    }
  });
}

test('credentials never show up in a result, an error or the cache', async () => {
  for (const file of FILES) {
    const vector = JSON.parse(fs.readFileSync(path.join(VECTORS, file), 'utf8'));
    const creds = vector.input.credentials;
    if (!creds) continue;
    let { outcome, cacheDoc } = await runVector(vector);
    assert.ok(!JSON.stringify(outcome).includes(creds.password) && !JSON.stringify(cacheDoc).includes(creds.password));
    vector.exchanges = [vector.exchanges[0], { ...vector.exchanges[1], response: { error: 'tls' } }];
    ({ outcome, cacheDoc } = await runVector(vector));
    assert.equal(outcome.error, 'RegistryUnreachable');
    assert.ok(!JSON.stringify(outcome).includes(creds.password) && !JSON.stringify(cacheDoc).includes(creds.password));
  }
});
