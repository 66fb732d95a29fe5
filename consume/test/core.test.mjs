// The JavaScript module's pure core, its real transport on loopback, and its CLI.
// The Python twin's tests are tests/unit/test_consume_core.py; the cases match.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as rc from '../release-consume.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(HERE, '..', '..');
const MODULE = path.join(HERE, '..', 'release-consume.mjs');
const minimal = () => JSON.parse(fs.readFileSync(path.join(ROOT, 'schemas', 'examples', 'valid', 'minimal.json'), 'utf8'));

test('the module has no dependencies: only node: imports', () => {
  const source = fs.readFileSync(MODULE, 'utf8');
  const imports = [...source.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
  assert.ok(imports.length > 0);
  for (const name of imports) assert.match(name, /^node:/);
});

test('parseRef classifies references', () => {
  const cases = [
    ['nightly', 'channel', false],
    ['stable', 'channel', false],
    ['1.4.0', 'version', true],
    ['1.5.0-rc.1', 'version', true],
    ['latest', 'tag', false],
    ['1.0-rc5.1', 'tag', false],
    [`sha256:${'a'.repeat(64)}`, 'digest', true],
  ];
  for (const [ref, kind, pinned] of cases) {
    const parsed = rc.parseRef(ref);
    assert.deepEqual([parsed.kind, parsed.pinned], [kind, pinned], ref);
  }
  for (const ref of ['', 'sha256:abc', `SHA256:${'a'.repeat(64)}`, 'a b', '-x', 'x'.repeat(129)]) {
    assert.throws(() => rc.parseRef(ref), rc.BadInput, ref);
  }
});

test('SemVer precedence follows the spec', () => {
  const ordered = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2',
    '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '1.2.0', '1.10.0', '2.0.0'];
  ordered.forEach((low, i) => {
    for (const high of ordered.slice(i + 1)) {
      assert.equal(rc.compareVersions(low, high), -1, `${low} < ${high}`);
      assert.equal(rc.compareVersions(high, low), 1, `${high} > ${low}`);
    }
    assert.equal(rc.compareVersions(low, low), 0);
  });
  assert.equal(rc.compareVersions('99999999999999999999.0.0', '99999999999999999998.0.0'), 1); // no float rounding
  assert.throws(() => rc.compareVersions('1.0', '1.0.0'), rc.BadInput);
});

test('checkRollback is the anti-rollback decision', () => {
  assert.equal(rc.checkRollback('1.2.0', null, { pinned: false }), false);
  assert.equal(rc.checkRollback('1.3.0', '1.2.0', { pinned: false }), false);
  assert.equal(rc.checkRollback('1.2.0', '1.2.0', { pinned: false }), false);
  assert.equal(rc.checkRollback('1.1.0', '1.2.0', { pinned: true }), true);
  assert.throws(() => rc.checkRollback('1.1.0', '1.2.0', { pinned: false, reference: 'stable' }), (error) => {
    assert.ok(error instanceof rc.RollbackRefused && error.message.includes('stable') && error.hint.includes('1.1.0'));
    assert.equal(error.exitCode, rc.EXIT_REFUSED);
    return true;
  });
});

test('cacheDecision', () => {
  const d1 = `sha256:${'1'.repeat(64)}`;
  const d2 = `sha256:${'2'.repeat(64)}`;
  assert.equal(rc.cacheDecision(d1, d1, { reachable: true }), 'hit');
  assert.equal(rc.cacheDecision(d1, d2, { reachable: true }), 'fetch');
  assert.equal(rc.cacheDecision(d1, null, { reachable: true }), 'fetch');
  assert.equal(rc.cacheDecision(null, d1, { reachable: true }), 'fetch');
  assert.equal(rc.cacheDecision(d1, null, { reachable: false }), 'stale');
  assert.equal(rc.cacheDecision(null, null, { reachable: false }), 'fail');
});

test('isLoopback', () => {
  const cases = [['localhost', true], ['localhost:5000', true], ['127.0.0.1:5000', true], ['127.9.9.9', true],
    ['[::1]:5000', true], ['::1', true], ['ghcr.io', false], ['10.0.0.1:5000', false],
    ['127.0.0.1.evil.com', false], ['localhost.evil.com', false]];
  for (const [host, loopback] of cases) assert.equal(rc.isLoopback(host), loopback, host);
});

test('parseChallenge', () => {
  assert.deepEqual(rc.parseChallenge('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull"'), {
    scheme: 'bearer', realm: 'https://ghcr.io/token', service: 'ghcr.io', scope: 'repository:a/b:pull',
  });
  assert.deepEqual(rc.parseChallenge('Basic realm="x"'), { scheme: 'basic', realm: 'x' });
  assert.equal(rc.parseChallenge(''), null);
});

function manifest(config = {}) {
  const blob = Buffer.from('{}');
  const descriptor = { mediaType: rc.RELEASE_CONFIG, digest: rc.computeDigest(blob), size: 2, ...config };
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: rc.OCI_MANIFEST, config: descriptor, layers: [] }));
}

test('verifyManifest accepts a release manifest', () => {
  const data = manifest();
  const info = rc.verifyManifest(data, { headerDigest: rc.computeDigest(data) });
  assert.equal(info.digest, rc.computeDigest(data));
  assert.equal(info.configSize, 2);
  const sha512 = rc.computeDigest(data, 'sha512');
  assert.equal(rc.verifyManifest(data, { expectedDigest: sha512 }).digest, sha512);
});

test('verifyManifest refuses', () => {
  const cases = [
    [manifest(), { expectedSize: 3 }, rc.DigestMismatch],
    [manifest(), { headerDigest: `sha256:${'0'.repeat(64)}` }, rc.DigestMismatch],
    [Buffer.from('\xef\xbb\xbf{}', 'latin1'), {}, rc.InvalidManifest],
    [Buffer.from('{"schemaVersion": NaN}'), {}, rc.InvalidManifest],
    [Buffer.from('[]'), {}, rc.InvalidManifest],
    [manifest(), { contentType: rc.OCI_INDEX }, rc.UnexpectedMediaType],
    [manifest(), { contentType: rc.DOCKER_MANIFEST }, rc.UnexpectedMediaType],
    [manifest({ size: -1 }), {}, rc.InvalidManifest],
    [manifest({ size: true }), {}, rc.InvalidManifest],
    [manifest({ digest: 'sha256:xyz' }), {}, rc.InvalidManifest],
    [manifest({ size: rc.MAX_BYTES + 1 }), {}, rc.SizeLimitExceeded],
    [Buffer.from('{"schemaVersion": 2, "config": {}}'), {}, rc.UnexpectedMediaType],
  ];
  for (const [data, options, error] of cases) assert.throws(() => rc.verifyManifest(data, options), error);
});

test('verifyBlob', () => {
  const abc = Buffer.from('abc');
  rc.verifyBlob(abc, rc.computeDigest(abc), 3);
  assert.throws(() => rc.verifyBlob(Buffer.from('abd'), rc.computeDigest(abc), 3), rc.DigestMismatch);
  assert.throws(() => rc.verifyBlob(abc, rc.computeDigest(abc), 4), rc.DigestMismatch);
});

test('error families and exit codes', () => {
  assert.ok(new rc.DigestMismatch('x') instanceof rc.RepositoryError);
  assert.ok(new rc.RollbackRefused('x') instanceof rc.RepositoryError);
  assert.ok(new rc.RegistryUnreachable('x') instanceof rc.DownloadError);
  assert.ok(new rc.AuthError('x') instanceof rc.DownloadError);
  assert.deepEqual(new rc.InvalidRelease(['/x: y']).toJSON().problems, ['/x: y']);
  assert.equal(new rc.RegistryUnreachable('x').exitCode, 75);
  assert.equal(new rc.NotFound('x').toJSON().family, 'DownloadError');
  assert.equal(new rc.NotFound('x').name, 'NotFound');
});

test('credentials never print their password', () => {
  const creds = new rc.Credentials('robot', 'hunter2');
  assert.ok(!JSON.stringify(creds).includes('hunter2'));
  assert.ok(!String(Object.keys(creds)).includes('password'));
  assert.equal(creds.basicHeader(), `Basic ${Buffer.from('robot:hunter2').toString('base64')}`);
});

test('contractProblems', () => {
  const doc = minimal();
  assert.deepEqual(rc.releaseProblems(doc), []);
  doc.config.tag = 'other';
  const key = `email-service.${doc.valuesProfile}.yaml`;
  doc.profileValues[key] = 'image:\n  repository: x\n';
  assert.deepEqual(rc.releaseProblems(doc), [
    `/config/tag: must equal version ${doc.version}`,
    `/profileValues/${key}: has no image.tag for the appliance to set`,
  ]);
});

test("setYamlScalar is the appliance's setter", () => {
  const text = 'a:\n  b:\n    c: 1 # note\n  d: 2\ne: 3';
  assert.equal(rc.setYamlScalar(text, ['a', 'b', 'c'], '"x"'), 'a:\n  b:\n    c: "x"\n  d: 2\ne: 3');
  assert.ok(rc.setYamlScalar(text, ['e'], '4').endsWith('e: 4'));
  assert.throws(() => rc.setYamlScalar(text, ['a', 'x'], '1'), /a\.x/);
  assert.throws(() => rc.setYamlScalar('image:\n  repository: r\n\n  tag: latest\n', ['image', 'tag'], '1'));
  assert.equal(rc.setYamlScalar('x: 1\nx: 2', ['x'], '9'), 'x: 9\nx: 2');
});

test('renderAll is what the appliance applies', () => {
  const doc = minimal();
  const docs = rc.renderAll(doc);
  assert.deepEqual(docs.map((d) => d.kind), [...Array(6).fill('ConfigMap'), 'OCIRepository', 'Kustomization']);
  assert.deepEqual(docs.slice(0, 6).map((d) => d.metadata.name), rc.SERVICES.map((n) => `appliance-values-${n}`));
  const core = docs[0].data[`alga-core.${doc.valuesProfile}.yaml`];
  assert.equal(core.split(`tag: "${doc.images.algaCore}"`).length - 1, 2);
  assert.ok(core.endsWith('\n'));
  assert.deepEqual(docs[6].metadata, { name: 'alga-appliance', namespace: 'flux-system' });
  assert.equal(docs[6].spec.url, `oci://${doc.config.repository}`);
  assert.deepEqual(docs[6].spec.ref, { digest: doc.config.digest });
  assert.equal(docs[7].spec.path, './base');
  assert.equal(docs[7].spec.prune, true);
  assert.deepEqual(docs[7].spec.sourceRef, { kind: 'OCIRepository', name: 'alga-appliance' });
  doc.profileValues[`workflow-worker.${doc.valuesProfile}.yaml`] = 'replicaCount: 1\n';
  assert.throws(() => rc.renderValuesConfigMaps(doc), /image\.tag/);
});

test('FileCache is private and atomic; a corrupt file is an empty cache', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'consume-cache-'));
  try {
    const file = path.join(dir, 'sub', 'cache.json');
    const cache = new rc.FileCache(file);
    assert.equal(cache.load(), null);
    const doc = { schema: rc.CACHE_SCHEMA, tokens: { k: { token: 't', expiresAt: 1 } } };
    cache.save(doc);
    assert.deepEqual(cache.load(), doc);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['cache.json']);
    fs.writeFileSync(file, '{not json');
    assert.equal(cache.load(), null);
    assert.equal(rc.verifyCached({ manifest: '!!', config: '', manifestDigest: 'x' }), null);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

async function withServer(routes, fn) {
  const seen = [];
  const server = http.createServer((req, res) => {
    seen.push([req.method, req.url, req.headers.authorization ?? null]);
    const [status, headers, body] = routes[req.url] ?? [404, {}, Buffer.from('nope')];
    const chunked = headers['Transfer-Encoding'] === 'chunked';
    const out = { ...headers };
    if (!chunked && out['Content-Length'] === undefined) out['Content-Length'] = String(body.length);
    if (chunked) delete out['Transfer-Encoding'];
    res.writeHead(status, out);
    if (req.method === 'HEAD') return res.end();
    if (chunked) {
      for (let i = 0; i < body.length; i += 1000) res.write(body.subarray(i, i + 1000));
      return res.end();
    }
    return res.end(body);
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  try {
    return await fn(`http://127.0.0.1:${server.address().port}`, seen);
  } finally {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  }
}

test('HttpTransport reads bodies within the limit and never follows redirects', async () => {
  await withServer({
    '/small': [200, { 'X-Test': '1' }, Buffer.from('hello')],
    '/big': [200, {}, Buffer.alloc(5000, 'x')],
    '/chunked': [200, { 'Transfer-Encoding': 'chunked' }, Buffer.alloc(5000, 'y')],
    '/redirect': [307, { Location: '/small' }, Buffer.alloc(0)],
  }, async (base) => {
    const transport = new rc.HttpTransport({ timeout: 5 });
    try {
      const small = await transport.request('GET', `${base}/small`, { Accept: 'a' }, 100);
      assert.deepEqual([small.status, small.body.toString(), small.headers['x-test']], [200, 'hello', '1']);
      const big = await transport.request('GET', `${base}/big`, {}, 100);
      assert.equal(big.body.length, 0);
      const chunked = await transport.request('GET', `${base}/chunked`, {}, 100);
      assert.equal(chunked.body.length, 101);
      const head = await transport.request('HEAD', `${base}/small`, {}, 0);
      assert.deepEqual([head.status, head.body.length], [200, 0]);
      const redirect = await transport.request('GET', `${base}/redirect`, {}, 100);
      assert.equal(redirect.status, 307);
      const again = await transport.request('GET', `${base}/small`, {}, 100);
      assert.equal(again.body.toString(), 'hello');
    } finally {
      transport.close();
    }
  });
});

test('HttpTransport reports an unreachable host', async () => {
  const transport = new rc.HttpTransport({ timeout: 2 });
  try {
    await assert.rejects(transport.request('GET', 'http://127.0.0.1:9/v2/', {}, 10), (error) => {
      assert.ok(error instanceof rc.RegistryUnreachable && error.retryable);
      return true;
    });
  } finally {
    transport.close();
  }
});

test('resolve refuses plain HTTP to a remote host', async () => {
  await assert.rejects(rc.resolve('nightly', { registry: 'ghcr.io', plainHttp: true }), rc.BadInput);
});

test('the CLI: --help, bad input, and the JSON error shape', () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ALGA_')));
  const help = spawnSync(process.execPath, [MODULE, '--help'], { encoding: 'utf8', env });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /exit codes/);
  const bad = spawnSync(process.execPath, [MODULE, 'not:a-ref'], { encoding: 'utf8', env });
  assert.equal(bad.status, rc.EXIT_BAD_INPUT);
  assert.match(bad.stderr, /not a digest/);
  const down = spawnSync(process.execPath, [MODULE, 'nightly', '--registry', '127.0.0.1:9', '--plain-http',
    '--attempts', '1', '--timeout', '2', '--json'], { encoding: 'utf8', env });
  assert.equal(down.status, rc.EXIT_UNREACHABLE, down.stderr);
  const error = JSON.parse(down.stdout);
  assert.deepEqual([error.error, error.family, error.exitCode], ['RegistryUnreachable', 'DownloadError', 75]);
});

test('plain HTTP only for loopback or named insecure hosts', async () => {
  const urls = [];
  const transport = {
    async request(method, url) {
      urls.push(url);
      throw new rc.RegistryUnreachable('stop here', { retryable: false });
    },
  };
  await assert.rejects(
    rc.resolve('nightly', { registry: 'registry.internal:5000', plainHttp: true, transport }),
    (err) => err instanceof rc.BadInput && /plain HTTP/.test(err.message),
  );
  await assert.rejects(
    rc.resolve('nightly', {
      registry: 'registry.internal:5000', plainHttp: true, insecureHosts: ['registry.internal:5000'], transport, attempts: 1,
    }),
    (err) => err instanceof rc.RegistryUnreachable,
  );
  assert.match(urls[0], /^http:\/\/registry\.internal:5000\/v2\//);
});

test('a legacy installed version cannot block an upgrade', () => {
  assert.equal(rc.checkRollback('1.0.0', '1.0-rc5.1', { pinned: false }), false);
  assert.equal(rc.checkRollback('0.0.1', '1.0-rc5.1', { pinned: false }), false);
  assert.throws(() => rc.checkRollback('1.0.0', '1.1.0', { pinned: false }), rc.RollbackRefused);
});

test('a registry that drips bytes cannot hold a request past its timeout', async () => {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Length': '1000' });
    let sent = 0;
    const timer = setInterval(() => {
      if (sent >= 1000 || res.destroyed) return clearInterval(timer);
      res.write('x');
      sent += 1;
    }, 50);
    res.on('close', () => clearInterval(timer));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const transport = new rc.HttpTransport({ timeout: 1 });
  const started = Date.now();
  try {
    await assert.rejects(
      transport.request('GET', `http://127.0.0.1:${server.address().port}/v2/`, {}, 4096),
      (err) => err instanceof rc.RegistryUnreachable && /timed out/.test(err.message),
    );
    assert.ok(Date.now() - started < 3000);
  } finally {
    transport.close();
    server.closeAllConnections?.();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('loopback spellings agree with the Python twin', () => {
  const cases = [['127.1:5000', true], ['0x7f000001', true], ['0177.0.0.1', true], ['2130706433', true],
    ['127.0.0.1', true], ['[::1]:80', true], ['localhost', true], ['10.0.0.1', false],
    ['0x0a000001', false], ['ghcr.io', false], ['127.0.0.1.example.com', false]];
  for (const [host, loopback] of cases) assert.equal(rc.isLoopback(host), loopback, host);
});
