#!/usr/bin/env node
// Resolve an Alga PSA appliance channel to a verified release: the consume library.
//
// One ES module for Node 20, no dependencies, so the control plane's Node
// host-service can vendor it as is. consume/release_consume.py is its Python
// twin: same functions (snake_case there), same error names, same CLI, and both
// pass the conformance vectors in consume/vectors. Read them side by side: the
// sections below are in the same order as there.
//
//   node consume/release-consume.mjs nightly --registry ghcr.io \
//       --repository nine-minds/alga-appliance-release --json
//
// What it does:
//
// * resolve(ref, options) turns a channel (nightly/stable), a version tag or a
//   manifest digest into a resolution: the manifest digest, the config digest
//   and the validated release JSON. On the way it authenticates with the Bearer
//   token the registry's WWW-Authenticate challenge names (falling back to
//   https://<host>/token as ghcr.io serves it), sends OCI Accept headers,
//   follows blob redirects and drops Authorization across hosts, checks the
//   manifest and the config blob against digest and size, refuses an index or
//   an unexpected media type, caps every body at 4 MiB, retries 429/5xx and
//   connection errors a bounded number of times, validates the release JSON
//   with the rules of schemas/release-manifest.v1.schema.json plus the consumer
//   contract, and refuses to roll back below the installed version unless the
//   caller pinned a version or digest.
// * An optional cache keeps the last good release per reference and the auth
//   state (the same file format as the Python twin). Warm, when the channel has
//   not moved, a resolve is one manifest HEAD and no blob download; when the
//   registry cannot be reached, the cached release comes back with stale: true.
// * render* build what the appliance applies (plain objects; JSON is YAML).
//
// Design (after python-tuf): a pure verification core -- verifyManifest,
// verifyBlob, schemaProblems, contractProblems, checkRollback, cacheDecision --
// with no network or file I/O, and all fetching behind one small transport
// interface: request(method, url, headers, limit) -> Promise<{status, headers,
// body}>, with one real adapter (HttpTransport, node:http/node:https) and a
// replay adapter in the tests. Redirects, auth and retries live here, not in
// the transport, so the library alone decides where Authorization goes.
//
// Errors form two families, and the CLI maps them to exit codes:
//
//   ConsumeError                       1  anything else
//    +-- BadInput                      2  a malformed reference, host, option
//    +-- RepositoryError               3  "the repository is wrong": refused
//    |    +-- DigestMismatch                bytes or size do not match the digest
//    |    +-- SizeLimitExceeded             a body or descriptor above the cap
//    |    +-- UnexpectedMediaType           an index, a wrong config type
//    |    +-- InvalidManifest               not an image manifest at all
//    |    +-- IncompleteRelease             the manifest's config blob is missing
//    |    +-- InvalidRelease                the release JSON breaks the rules
//    |    +-- RollbackRefused               older than the installed version
//    |    +-- SignatureError                (trusted keys given) no trusted signature:
//    |         +-- Unsigned                   no sha256-<hex>.sig, or no signature in it
//    |         +-- UntrustedSignature         signed, but by no trusted key
//    |         +-- SignatureDigestMismatch    a trusted key signed another digest
//    |         +-- BadSignature               malformed, or the payload was altered
//    |    +-- StatementError                (trusted keys, a channel) the channel statement:
//    |         +-- StatementMissing           no statement.<channel>
//    |         +-- InvalidStatement           malformed, another channel or version
//    |         +-- StatementDigestMismatch    vouches for another digest (a re-tag)
//    |         +-- StatementReplay            a lower sequence than already seen
//    |         +-- StatementExpired           past its expiresAt (a frozen channel)
//    +-- DownloadError                 1  "the download failed"
//         +-- RegistryUnreachable     75  network, timeout, TLS, 5xx after retries
//         +-- AuthError                1  401/403 after authenticating
//         +-- NotFound                 1  no such tag or digest
//
// Invariants: nothing is returned that was not checked against its digest;
// plain HTTP only for loopback hosts (registry, token realm and redirects
// alike); no credential or token ever appears in a message, a log line or the
// result; Authorization is never sent to an origin other than its own.
//
// With trusted keys (trustedKeys, --trusted-key), the release manifest must also
// carry a cosign signature (the legacy sha256-<hex>.sig format) by one of them
// naming its digest; node:crypto verifies the ECDSA P-256 signatures.
//
// What it does not do: check signatures when no key is trusted, use the
// transparency log or keyless signatures, use HTTP proxies, pull the charts,
// images or the config bundle (Flux does that, pinned by digest), or parse
// YAML (the setter is line-based, exactly like the appliance's).

import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export const VERSION = '1.0.0';

// -- constants -----------------------------------------------------------------

export const DEFAULT_REGISTRY = 'ghcr.io';
export const DEFAULT_REPOSITORY = 'nine-minds/alga-appliance-release';
export const DEFAULT_TIMEOUT = 30.0;
export const DEFAULT_ATTEMPTS = 3;
/** Every manifest, blob and token body is capped here (the OCI spec's manifest limit). */
export const MAX_BYTES = 4 * 1024 * 1024;
export const MAX_REDIRECTS = 5;
export const CHANNELS = ['nightly', 'stable'];

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const RELEASE_CONFIG = 'application/vnd.alga.appliance.release.config.v1+json';
export const RELEASE_ARTIFACT = 'application/vnd.alga.appliance.release.v1';
export const MANIFEST_TYPES = [OCI_MANIFEST, DOCKER_MANIFEST];
export const INDEX_TYPES = [OCI_INDEX, DOCKER_MANIFEST_LIST];
// The index types are accepted on the wire only so that an index is refused
// with a clear error instead of a registry's 404/406.
export const MANIFEST_ACCEPT = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST].join(', ');
// Content types some registries put on any JSON; they say nothing about the manifest kind.
const GENERIC_TYPES = ['', 'application/json', 'application/octet-stream', 'text/plain'];

/** cosign's signatures ("simple signing", as sigstore's signature specification describes). */
export const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';
/** A signature manifest, a signature payload: far above what cosign writes (about 1 KiB, 250 bytes). */
export const MAX_SIGNATURE_MANIFEST = 256 * 1024;
export const MAX_PAYLOAD = 64 * 1024;
/** Signature layers looked at per artifact (cosign appends one per signing key and run). */
export const MAX_SIGNATURES = 32;
/** At most this many trusted keys (one, or two while a key is rotated). */
export const MAX_TRUSTED_KEYS = 2;
export const ENV_TRUSTED_KEYS = 'ALGA_TRUSTED_KEYS';
/** The trusted keys shipped next to this file, used when none are given (only if it exists). */
export const DEFAULT_TRUSTED_KEYS_FILE = 'trusted-keys.pem';

/** The signed channel statement: tagged statement.<channel> in the release repository. */
/**
 * The Secret of trusted public keys (<key id>.pub entries) that Flux verifies with: the
 * OCIRepository alga-appliance here, and the bundle's chart sources when the publisher
 * asked for chart verification. Flux reads it from the verifying object's own namespace.
 */
export const TRUSTED_KEYS_SECRET = 'alga-appliance-trusted-keys';
export const FLUX_NAMESPACE = 'flux-system';

export const STATEMENT_ARTIFACT = 'application/vnd.alga.appliance.channel-statement.v1';
export const STATEMENT_CONFIG = 'application/vnd.alga.appliance.channel-statement.v1+json';
export const STATEMENT_SCHEMA = 'alga.appliance.channel-statement/v1';
export const STATEMENT_TAG_PREFIX = 'statement.';
export const MAX_STATEMENT = 64 * 1024;

export const RELEASE_SCHEMA = 'alga.appliance.release/v1';
export const CACHE_SCHEMA = 'alga.appliance.release-cache/v1';
const USER_AGENT = `alga-release-consume/${VERSION} (node)`;

export const ENV_USERNAME = 'ALGA_REGISTRY_USERNAME';
export const ENV_PASSWORD = 'ALGA_REGISTRY_PASSWORD';

/** The six services, in the order the appliance creates their values ConfigMaps. */
export const SERVICES = ['alga-core', 'pgbouncer', 'temporal', 'workflow-worker', 'email-service', 'temporal-worker'];
export const CHARTS = ['sebastian', 'pgbouncer', 'temporal', 'temporal-worker', 'workflow-worker', 'email-service'];
export const IMAGE_KEYS = ['algaCore', 'workflowWorker', 'emailService', 'temporalWorker'];
/** Every key path the appliance's setter edits, per service (it fails when one is absent). */
export const SETTER_PATHS = {
  'alga-core': [['bootstrap', 'mode'], ['appUrl'], ['host'], ['domainSuffix'], ['setup', 'image', 'tag'], ['server', 'image', 'tag']],
  'workflow-worker': [['image', 'tag']],
  'email-service': [['image', 'tag']],
  'temporal-worker': [['image', 'tag'], ['publicBaseUrl']],
};
/**
 * The key paths the in-cluster updater (the status service's update Job in
 * appliance-status.yaml) sets with its own line setter on every upgrade: the image tags.
 */
export const UPDATER_PATHS = {
  'alga-core': [['setup', 'image', 'tag'], ['server', 'image', 'tag']],
  'workflow-worker': [['image', 'tag']],
  'email-service': [['image', 'tag']],
  'temporal-worker': [['image', 'tag']],
};
/** Which image tag goes where when the values ConfigMaps are rendered. */
export const IMAGE_TAG_PATHS = [
  ['alga-core', ['setup', 'image', 'tag'], 'algaCore'],
  ['alga-core', ['server', 'image', 'tag'], 'algaCore'],
  ['workflow-worker', ['image', 'tag'], 'workflowWorker'],
  ['email-service', ['image', 'tag'], 'emailService'],
  ['temporal-worker', ['image', 'tag'], 'temporalWorker'],
];

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_BAD_INPUT = 2;
export const EXIT_REFUSED = 3;
export const EXIT_UNREACHABLE = 75;

const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
const TOKEN_MARGIN = 30.0; // refresh a token this many seconds before it expires
const MIN_TOKEN_LIFETIME = 60.0; // the distribution token spec's default and minimum
const BASE_DELAY = 0.25;
const MAX_DELAY = 4.0;

// -- errors --------------------------------------------------------------------

/** Root of every error this library raises on purpose. */
export class ConsumeError extends Error {
  static exitCode = EXIT_ERROR;

  constructor(message, { hint = null } = {}) {
    super(message);
    this.name = new.target.name;
    this.hint = hint;
  }

  get exitCode() {
    return this.constructor.exitCode;
  }

  /** The text shown to a person: the message, then what to do. */
  diagnostics() {
    return this.hint ? `${this.message}\n  hint: ${this.hint}` : this.message;
  }

  toJSON() {
    return { error: this.name, family: family(this), message: this.message, hint: this.hint, exitCode: this.exitCode };
  }
}

/** The caller asked for something malformed (reference, host, option). */
export class BadInput extends ConsumeError {
  static exitCode = EXIT_BAD_INPUT;
}

/** The repository is wrong: what it served cannot be trusted or used. Refused. */
export class RepositoryError extends ConsumeError {
  static exitCode = EXIT_REFUSED;
}

/** Bytes (or their size) do not match the digest they were asked for or announced with. */
export class DigestMismatch extends RepositoryError {}

/** A body or a descriptor's size is above the cap. */
export class SizeLimitExceeded extends RepositoryError {}

/** An index instead of an image manifest, or a media type this library does not accept. */
export class UnexpectedMediaType extends RepositoryError {}

/** The manifest is not a well-formed image manifest. */
export class InvalidManifest extends RepositoryError {}

/** The manifest exists but the registry does not have its config blob. */
export class IncompleteRelease extends RepositoryError {}

/** The release JSON breaks the schema or the consumer contract. */
export class InvalidRelease extends RepositoryError {
  constructor(problems, { what = 'the release JSON' } = {}) {
    const shown = problems.slice(0, 5).join('; ');
    const more = problems.length > 5 ? ` (and ${problems.length - 5} more)` : '';
    super(`${what} is invalid: ${shown}${more}`, {
      hint: 'the publisher must not have pushed this; republish the release',
    });
    this.problems = [...problems];
  }

  toJSON() {
    return { ...super.toJSON(), problems: this.problems };
  }
}

/** The resolved release is older than the installed one and was not pinned. */
export class RollbackRefused extends RepositoryError {}

/** With trusted keys configured: no signature by a trusted key vouches for the digest. */
export class SignatureError extends RepositoryError {}

/** No sha256-<hex>.sig manifest, or one without a simple-signing layer. */
export class Unsigned extends SignatureError {}

/** Signatures exist, but none verifies under a trusted key (another key signed). */
export class UntrustedSignature extends SignatureError {}

/** A trusted key signed, but for another digest (or not as a cosign image signature). */
export class SignatureDigestMismatch extends SignatureError {}

/** A signature or its payload is malformed, or the payload is not the bytes announced. */
export class BadSignature extends SignatureError {}

/** With trusted keys, a channel resolve: the channel's signed statement does not vouch. */
export class StatementError extends RepositoryError {}

/** No statement.<channel> artifact (or one that is not a channel statement at all). */
export class StatementMissing extends StatementError {}

/** The statement is malformed, names another channel, or another version. */
export class InvalidStatement extends StatementError {
  constructor(problems, { what = 'the channel statement' } = {}) {
    super(`${what} is invalid: ${problems.slice(0, 5).join('; ')}`, { hint: 'the publisher must re-issue the channel statement' });
    this.problems = [...problems];
  }

  toJSON() {
    return { ...super.toJSON(), problems: this.problems };
  }
}

/** The statement vouches for another manifest digest: the channel was re-tagged. */
export class StatementDigestMismatch extends StatementError {}

/** The statement's sequence is lower than one this appliance has already seen. */
export class StatementReplay extends StatementError {}

/**
 * The statement's expiresAt has passed: a frozen or abandoned channel. cachedRelease
 * names the release this appliance stays on ({version, manifestDigest}), when it has one.
 */
export class StatementExpired extends StatementError {
  constructor(message, { expiresAt, cachedRelease = null, hint = null }) {
    super(message, { hint });
    this.expiresAt = expiresAt;
    this.cachedRelease = cachedRelease;
  }

  toJSON() {
    return { ...super.toJSON(), expiresAt: this.expiresAt, cachedRelease: this.cachedRelease };
  }
}

/** The download failed: the repository may be fine, we could not read it. */
export class DownloadError extends ConsumeError {}

/** Network error, timeout, TLS failure, or 429/5xx after the bounded retries. */
export class RegistryUnreachable extends DownloadError {
  static exitCode = EXIT_UNREACHABLE;

  constructor(message, { hint = null, retryable = true } = {}) {
    super(message, { hint });
    this.retryable = retryable;
  }
}

/** The registry or its token service refused us (401/403 after authenticating). */
export class AuthError extends DownloadError {}

/** No such tag or digest in the repository. */
export class NotFound extends DownloadError {}

function family(error) {
  if (error instanceof RepositoryError) return 'RepositoryError';
  if (error instanceof DownloadError) return 'DownloadError';
  if (error instanceof BadInput) return 'BadInput';
  return 'ConsumeError';
}

// -- small values -----------------------------------------------------------------

/** A username and a password or token; the password never shows when printed. */
export class Credentials {
  #password;

  constructor(username, password) {
    this.username = username;
    this.#password = password;
  }

  get password() {
    return this.#password;
  }

  basicHeader() {
    return `Basic ${Buffer.from(`${this.username}:${this.#password}`).toString('base64')}`;
  }

  toJSON() {
    return { username: this.username, password: '***' };
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return `Credentials { username: ${JSON.stringify(this.username)}, password: *** }`;
  }
}

// -- pure: names, references, digests ------------------------------------------------

/** An anchored regular expression: the whole string must match, as Python's fullmatch. */
function full(source) {
  return new RegExp(`^(?:${source})$`);
}

const TAG_RE = full('[A-Za-z0-9_][A-Za-z0-9._-]{0,127}');
const DIGEST_RES = { sha256: full('sha256:[a-f0-9]{64}'), sha512: full('sha512:[a-f0-9]{128}') };
const REPOSITORY_RE = full('[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*');
const HOST_RE = full(
  '(?:localhost|\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?' +
    '(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)(?::[0-9]{1,5})?',
);
const SEMVER_SOURCE =
  '(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)' +
  '(?:-((?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)' +
  '(?:\\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?';
const SEMVER_RE = full(SEMVER_SOURCE);
const DIGITS = full('[0-9]+');

/** sha256:<64 hex> or sha512:<128 hex> (lower-case hex). */
export function isDigest(text) {
  if (typeof text !== 'string') return false;
  const algorithm = text.split(':', 1)[0];
  return Object.hasOwn(DIGEST_RES, algorithm) && DIGEST_RES[algorithm].test(text);
}

/** The OCI digest of data (sha256 or sha512). */
export function computeDigest(data, algorithm = 'sha256') {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

export function digestMatches(data, digest) {
  return computeDigest(data, digest.split(':', 1)[0]) === digest;
}

/** Classify a reference: sha256:... digest, a channel, a SemVer version tag, a tag. */
export function parseRef(ref) {
  if (typeof ref !== 'string' || !ref) {
    throw new BadInput('the reference is empty', { hint: 'give a channel, a version or sha256:<hex>' });
  }
  if (ref.includes(':')) {
    if (isDigest(ref)) return { kind: 'digest', value: ref, pinned: true };
    throw new BadInput(`'${ref}' is not a digest`, { hint: "a digest is sha256:<64 lower-case hex>; a tag holds no ':'" });
  }
  if (CHANNELS.includes(ref)) return { kind: 'channel', value: ref, pinned: false };
  if (!TAG_RE.test(ref)) {
    throw new BadInput(`'${ref}' is not a valid tag`, { hint: 'tags match [A-Za-z0-9_][A-Za-z0-9._-]{0,127}' });
  }
  if (SEMVER_RE.test(ref)) return { kind: 'version', value: ref, pinned: true };
  return { kind: 'tag', value: ref, pinned: false };
}

/** A registry HOST[:PORT] (no scheme, no path). */
export function checkRegistry(host) {
  if (typeof host !== 'string' || !HOST_RE.test(host)) {
    throw new BadInput(`'${host}' is not a registry host`, { hint: 'give HOST or HOST:PORT, no scheme' });
  }
  return host;
}

/** A repository path such as nine-minds/alga-appliance-release. */
export function checkRepository(name) {
  if (typeof name !== 'string' || name.length > 255 || !REPOSITORY_RE.test(name)) {
    throw new BadInput(`'${name}' is not a repository name`, {
      hint: "lower-case components separated by '/', e.g. nine-minds/alga-appliance-release",
    });
  }
  return name;
}

/** True for localhost, 127.0.0.0/8 and ::1; the port is ignored. */
export function isLoopback(host) {
  let name = host;
  if (name.startsWith('[')) name = name.slice(1, name.indexOf(']'));
  else if ((name.match(/:/g) || []).length === 1) name = name.split(':')[0];
  if (name.toLowerCase() === 'localhost') return true;
  // IPv4 shorthands (127.1, 0x7f000001, 0177.0.0.1) as the WHATWG URL parser reads them,
  // the same forms the Python twin reads with inet_aton.
  if (/^[0-9A-Fa-fXx.]+$/.test(name)) {
    try {
      name = new URL(`http://${name}/`).hostname;
    } catch {
      return false;
    }
  }
  const v4 = name.match(/^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$/);
  if (v4) return v4.slice(1).every((octet) => Number(octet) <= 255) && Number(v4[1]) === 127;
  if (name.includes(':')) {
    try {
      return new URL(`http://[${name}]/`).hostname === '[::1]';
    } catch {
      return false;
    }
  }
  return false;
}

// -- pure: versions and anti-rollback ------------------------------------------------

/** SemVer 2 without build metadata -> [major, minor, patch, prerelease identifiers]. */
export function isSemver(text) {
  return typeof text === 'string' && SEMVER_RE.test(text);
}

export function parseVersion(text) {
  const match = typeof text === 'string' ? text.match(SEMVER_RE) : null;
  if (!match) {
    throw new BadInput(`'${text}' is not a SemVer 2 version`, { hint: "e.g. 1.4.0 or 1.5.0-rc.1 (no '+')" });
  }
  const pre = match[4] ? match[4].split('.') : [];
  return [BigInt(match[1]), BigInt(match[2]), BigInt(match[3]), pre];
}

/** SemVer 2 precedence: -1 when a < b, 0 when equal, 1 when a > b. */
export function compareVersions(a, b) {
  const va = parseVersion(a);
  const vb = parseVersion(b);
  for (let i = 0; i < 3; i += 1) {
    if (va[i] !== vb[i]) return va[i] < vb[i] ? -1 : 1;
  }
  const pa = va[3];
  const pb = vb[3];
  if (pa.length === pb.length && pa.every((x, i) => x === pb[i])) return 0;
  if (!pa.length || !pb.length) return !pa.length ? 1 : -1; // a release ranks above its prereleases
  for (let i = 0; i < Math.min(pa.length, pb.length); i += 1) {
    const x = pa[i];
    const y = pb[i];
    if (x === y) continue;
    const xn = /^[0-9]+$/.test(x);
    const yn = /^[0-9]+$/.test(y);
    if (xn && yn) return BigInt(x) < BigInt(y) ? -1 : 1;
    if (xn !== yn) return xn ? -1 : 1; // numeric identifiers rank below alphanumeric ones
    return x < y ? -1 : 1;
  }
  return pa.length < pb.length ? -1 : 1;
}

/**
 * The anti-rollback decision. Returns true when this is an explicit (pinned) downgrade.
 * Throws RollbackRefused when version is older than installedVersion and the
 * reference was a channel or a plain tag rather than a version or digest.
 */
export function checkRollback(version, installedVersion, { pinned, reference = '' }) {
  // An installed version that is not SemVer (releases before this scheme, such as
  // 1.0-rc5.1) cannot be compared: every SemVer release counts as an upgrade from it.
  if (installedVersion === null || installedVersion === undefined || !isSemver(installedVersion)) return false;
  if (compareVersions(version, installedVersion) >= 0) return false;
  if (pinned) return true;
  throw new RollbackRefused(
    `${reference || 'the reference'} resolves to release ${version}, older than the ` +
      `installed ${installedVersion}; refusing to roll back`,
    { hint: `to downgrade on purpose, pin the release explicitly: resolve ${version} (the version) or its manifest digest` },
  );
}

/**
 * What to do with a cached release. Pure.
 * "hit": the registry names the cached manifest digest (the channel has not moved);
 * "fetch": download and verify; "stale": unreachable and a cached release exists;
 * "fail": unreachable and nothing cached.
 */
export function cacheDecision(cachedDigest, remoteDigest, { reachable }) {
  if (!reachable) return cachedDigest !== null && cachedDigest !== undefined ? 'stale' : 'fail';
  if (cachedDigest && remoteDigest && remoteDigest === cachedDigest) return 'hit';
  return 'fetch';
}

// -- pure: manifest and blob verification ----------------------------------------

function mediaTypeOf(header) {
  return (header || '').split(';', 1)[0].trim().toLowerCase();
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Strict JSON from UTF-8 bytes (no BOM), as the Python twin reads it. Throws Error. */
export function parseJson(data, what) {
  try {
    return JSON.parse(UTF8.decode(data));
  } catch {
    throw new Error(`${what} is not JSON`);
  }
}

const TAMPERED = 'the registry or something between us served altered content; do not trust it';

/**
 * Check a manifest's bytes and say what they are. Pure; throws a RepositoryError.
 * expectedDigest is what the caller asked for (a digest reference, or what a HEAD
 * answered); headerDigest is the registry's Docker-Content-Digest. Both must
 * match the bytes. The manifest must be one image manifest (OCI or Docker v2)
 * whose config is the release JSON.
 */
export function verifyManifest(data, { contentType = null, headerDigest = null, expectedDigest = null, expectedSize = null } = {}) {
  if (data.length > MAX_BYTES) throw new SizeLimitExceeded(`the manifest is larger than ${MAX_BYTES} bytes`);
  if (expectedSize !== null && data.length !== expectedSize) {
    throw new DigestMismatch(`the manifest is ${data.length} bytes, the registry announced ${expectedSize}`, { hint: TAMPERED });
  }
  for (const [claimed, source] of [[expectedDigest, 'requested'], [headerDigest, 'Docker-Content-Digest']]) {
    if (claimed !== null && !digestMatches(data, claimed)) {
      throw new DigestMismatch(
        `the manifest bytes do not match the ${source} digest ${claimed} ` +
          `(they hash to ${computeDigest(data, claimed.split(':', 1)[0])})`,
        { hint: TAMPERED },
      );
    }
  }
  const digest = expectedDigest || computeDigest(data);
  let doc;
  try {
    doc = parseJson(data, 'the manifest');
  } catch (error) {
    throw new InvalidManifest(error.message);
  }
  if (!isObject(doc)) throw new InvalidManifest('the manifest is not a JSON object');
  const headerType = mediaTypeOf(contentType);
  const bodyType = Object.hasOwn(doc, 'mediaType') ? doc.mediaType : null;
  if (bodyType !== null && typeof bodyType !== 'string') throw new InvalidManifest("the manifest's mediaType is not a string");
  if (INDEX_TYPES.includes(bodyType) || INDEX_TYPES.includes(headerType) || Object.hasOwn(doc, 'manifests')) {
    throw new UnexpectedMediaType(`${digest} is an index (${bodyType || headerType || 'has manifests'}), not a release manifest`, {
      hint: 'a release is a single image manifest whose config blob is the release JSON',
    });
  }
  if (bodyType !== null && !GENERIC_TYPES.includes(headerType) && headerType !== bodyType) {
    throw new UnexpectedMediaType(`${digest}: Content-Type ${headerType} disagrees with the mediaType ${bodyType}`);
  }
  const mediaType = bodyType !== null ? bodyType : headerType;
  if (!MANIFEST_TYPES.includes(mediaType)) {
    throw new UnexpectedMediaType(`${digest} has media type ${mediaType || '(none)'}; expected ${OCI_MANIFEST} or ${DOCKER_MANIFEST}`);
  }
  if (doc.schemaVersion !== 2) throw new InvalidManifest(`${digest}: schemaVersion is not 2`);
  const artifactType = Object.hasOwn(doc, 'artifactType') ? doc.artifactType : null;
  if (artifactType !== null && artifactType !== RELEASE_ARTIFACT) {
    throw new UnexpectedMediaType(`${digest} has artifactType ${artifactType}; expected ${RELEASE_ARTIFACT}`);
  }
  const config = doc.config;
  if (!isObject(config)) throw new InvalidManifest(`${digest} has no config descriptor`);
  const configType = Object.hasOwn(config, 'mediaType') ? config.mediaType : null;
  const configDigest = config.digest;
  const configSize = config.size;
  if (typeof configDigest !== 'string' || !isDigest(configDigest)) throw new InvalidManifest(`${digest}: config.digest is not a digest`);
  if (!Number.isInteger(configSize) || configSize < 0) {
    throw new InvalidManifest(`${digest}: config.size is not a non-negative integer`);
  }
  if (configType !== RELEASE_CONFIG) {
    throw new UnexpectedMediaType(`${digest}: the config media type is ${configType}; expected ${RELEASE_CONFIG}`, {
      hint: 'this is not an Alga appliance release artifact',
    });
  }
  if (configSize > MAX_BYTES) {
    throw new SizeLimitExceeded(`${digest}: the config blob is announced as ${configSize} bytes, above the ${MAX_BYTES}-byte cap`);
  }
  if (Object.hasOwn(doc, 'layers') && doc.layers !== null && !Array.isArray(doc.layers)) {
    throw new InvalidManifest(`${digest}: layers is not a list`);
  }
  return { digest, mediaType, configDigest, configSize, size: data.length };
}

/** Check a blob's bytes against its descriptor. Pure; throws a RepositoryError. */
export function verifyBlob(data, digest, size) {
  if (data.length > MAX_BYTES) throw new SizeLimitExceeded(`blob ${digest} is larger than ${MAX_BYTES} bytes`);
  if (data.length !== size) {
    throw new DigestMismatch(`blob ${digest} is ${data.length} bytes, the manifest says ${size}`, { hint: TAMPERED });
  }
  if (!digestMatches(data, digest)) {
    throw new DigestMismatch(
      `blob ${digest} does not match its digest (the bytes hash to ${computeDigest(data, digest.split(':', 1)[0])})`,
      { hint: TAMPERED },
    );
  }
}

// -- pure: signatures (cosign's format, ECDSA P-256 over SHA-256) ---------------------------
//
// The Python twin does the curve arithmetic itself (standard library only); here
// node:crypto verifies. Both parse the DER and PEM themselves first, so they accept
// and refuse exactly the same encodings.

const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const OID_EC_PUBLIC_KEY = Buffer.from('2a8648ce3d0201', 'hex'); // 1.2.840.10045.2.1
const OID_P256 = Buffer.from('2a8648ce3d030107', 'hex'); // 1.2.840.10045.3.1.7 (prime256v1)
/** DER SubjectPublicKeyInfo of a P-256 key up to its uncompressed point (0x04 || X || Y). */
const SPKI_P256_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n\t ]*?)-----END \1-----/g;

/** One DER TLV at `at`: [tag, value, end]. Minimal lengths only (DER, not BER). */
function derRead(data, at) {
  if (at + 2 > data.length) throw new Error('truncated DER');
  const tag = data[at];
  const first = data[at + 1];
  let length;
  let start = at + 2;
  if (first < 0x80) {
    length = first;
  } else {
    const count = first & 0x7f;
    if (count === 0 || count > 2 || start + count > data.length) throw new Error('bad DER length');
    length = count === 1 ? data[start] : data[start] * 256 + data[start + 1];
    if (length < 0x80 || (count === 2 && length < 0x100)) throw new Error('non-minimal DER length');
    start += count;
  }
  if (start + length > data.length) throw new Error('truncated DER');
  return [tag, data.subarray(start, start + length), start + length];
}

function derInteger(value) {
  if (value.length === 0 || value[0] & 0x80) throw new Error('not a positive DER INTEGER');
  if (value.length > 1 && value[0] === 0 && !(value[1] & 0x80)) throw new Error('non-minimal DER INTEGER');
  return BigInt(`0x${value.toString('hex')}`);
}

/** The two values that make up `body` (a SEQUENCE's content), tagged `first`, `second`. */
function derPair(body, first, second, what) {
  const [tagA, a, at] = derRead(body, 0);
  const [tagB, b, end] = derRead(body, at);
  if (tagA !== first || tagB !== second || end !== body.length) throw new Error(`not ${what}`);
  return [a, b];
}

/** The content of the DER SEQUENCE that is all of `data`. */
function derSequence(data, what) {
  const [tag, body, end] = derRead(data, 0);
  if (tag !== 0x30 || end !== data.length) throw new Error(`not ${what}`);
  return body;
}

/** An ASN.1 DER ECDSA-Sig-Value -> [r, s] (BigInt). Strict: canonical DER, nothing after it. */
export function parseDerSignature(data) {
  const what = 'a DER SEQUENCE of two INTEGERs';
  const [r, s] = derPair(derSequence(data, what), 0x02, 0x02, what);
  return [derInteger(r), derInteger(s)];
}

/** `sha256:` + the first 16 hex of SHA-256 over a key's DER SubjectPublicKeyInfo. */
export function keyId(der) {
  return `sha256:${createHash('sha256').update(der).digest('hex').slice(0, 16)}`;
}

/** An ECDSA P-256 public key; keyId is `sha256:` + 16 hex of its DER SPKI (uncompressed). */
export class TrustedKey {
  constructor(keyObject) {
    const jwk = keyObject.export({ format: 'jwk' });
    this.keyObject = keyObject;
    this.der = Buffer.concat([SPKI_P256_PREFIX, Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
    this.keyId = keyId(this.der);
  }

  pem() {
    const body = this.der.toString('base64').match(/.{1,64}/g).join('\n');
    return `-----BEGIN PUBLIC KEY-----\n${body}\n-----END PUBLIC KEY-----\n`;
  }

  /** True when `signature` (DER) is this key's over SHA-256 of `message`. */
  verify(message, signature) {
    let r;
    let s;
    try {
      [r, s] = parseDerSignature(signature);
    } catch {
      return false;
    }
    if (!(r > 0n && r < P256_N && s > 0n && s < P256_N)) return false;
    return cryptoVerify('sha256', message, { key: this.keyObject, dsaEncoding: 'der' }, signature);
  }
}

/** A DER SubjectPublicKeyInfo holding an ECDSA P-256 key (compressed point or not). */
export function parseSpki(der) {
  const what = 'a SubjectPublicKeyInfo';
  const [alg, bits] = derPair(derSequence(der, what), 0x30, 0x03, what);
  let oid = Buffer.alloc(0);
  let curve = Buffer.alloc(0);
  try {
    [oid, curve] = derPair(alg, 0x06, 0x06, 'an EC key');
  } catch {
    // not an elliptic-curve key: said below
  }
  if (!oid.equals(OID_EC_PUBLIC_KEY)) throw new Error('not an elliptic-curve key (only ECDSA P-256 keys are supported)');
  if (!curve.equals(OID_P256)) throw new Error('not a P-256 key (only ECDSA P-256 keys are supported)');
  if (bits.length === 0 || bits[0] !== 0) throw new Error('bad public key bit string');
  const point = bits.subarray(1);
  if (!((point.length === 65 && point[0] === 4) || (point.length === 33 && (point[0] === 2 || point[0] === 3)))) {
    throw new Error('bad public key point encoding');
  }
  let keyObject;
  try {
    keyObject = createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    throw new Error('the public key is not a point on P-256');
  }
  return new TrustedKey(keyObject);
}

/**
 * Every PUBLIC KEY PEM block in `text` (other text between blocks is ignored). Throws
 * BadInput for a block of another type (a private key, a certificate), a key that is
 * not ECDSA P-256, or no key at all.
 */
export function parsePublicKeys(text, { source = 'the key text' } = {}) {
  const keys = [];
  let number = 0;
  for (const match of String(text).matchAll(PEM_BLOCK)) {
    number += 1;
    if (match[1] !== 'PUBLIC KEY') {
      throw new BadInput(`${source}: PEM block ${number} is a ${match[1]}, not a PUBLIC KEY`, {
        hint: "trusted keys are PEM 'PUBLIC KEY' blocks (cosign.pub); never a private key",
      });
    }
    try {
      keys.push(parseSpki(unb64(match[2].split(/\s+/).join(''))));
    } catch (error) {
      throw new BadInput(`${source}: PEM block ${number}: ${error.message === 'not base64' ? 'Incorrect base64' : error.message}`);
    }
  }
  if (keys.length === 0) throw new BadInput(`${source} holds no PEM PUBLIC KEY block`);
  return keys;
}

/** 1 or 2 distinct keys from keys or PEM texts, in order. Throws BadInput. */
export function trustedKeySet(keys) {
  const out = [];
  for (const item of keys) {
    for (const key of typeof item === 'string' ? parsePublicKeys(item) : [item]) {
      if (!out.some((known) => known.keyId === key.keyId && known.der.equals(key.der))) out.push(key);
    }
  }
  if (out.length > MAX_TRUSTED_KEYS) {
    throw new BadInput(`${out.length} trusted keys given; at most ${MAX_TRUSTED_KEYS} (the key, and its successor while rotating)`);
  }
  return out;
}

/** The trusted key set from PEM files (each may hold several blocks). */
export function loadTrustedKeys(paths) {
  const keys = [];
  for (const file of paths) {
    let text;
    try {
      text = fs.readFileSync(file, 'latin1');
    } catch (error) {
      throw new BadInput(`cannot read the trusted key file ${file}: ${error.code || error.message}`);
    }
    keys.push(...parsePublicKeys(text, { source: file }));
  }
  return trustedKeySet(keys);
}

/** trusted-keys.pem next to this file, when it exists. */
export function defaultTrustedKeysFile() {
  const file = fileURLToPath(new URL(DEFAULT_TRUSTED_KEYS_FILE, import.meta.url));
  try {
    return fs.statSync(file).isFile() ? file : null;
  } catch {
    return null;
  }
}

/**
 * The key set a trustedKeys option means: null is the shipped trusted-keys.pem if there
 * is one (else none); an array is exactly those keys.
 */
export function configuredTrustedKeys(trustedKeys) {
  if (trustedKeys === null || trustedKeys === undefined) {
    const fallback = defaultTrustedKeysFile();
    return fallback !== null ? loadTrustedKeys([fallback]) : [];
  }
  return trustedKeySet(trustedKeys);
}

/** Where cosign stores the signatures of `digest`: the tag sha256-<hex>.sig. */
export function signatureTag(digest) {
  return `${digest.replace(':', '-')}.sig`;
}

/** The payload cosign signs for `reference` (HOST/REPO) at `digest` (its exact bytes). */
export function simpleSigningPayload(reference, digest) {
  const doc = {
    critical: { identity: { 'docker-reference': reference }, image: { 'docker-manifest-digest': digest }, type: COSIGN_SIGNATURE_TYPE },
    optional: null,
  };
  return Buffer.from(JSON.stringify(doc));
}

/** The simple-signing layers of a .sig manifest's bytes: [{digest, size, signature}]. Pure. */
export function signatureLayers(data, { headerDigest = null } = {}) {
  if (data.length > MAX_SIGNATURE_MANIFEST) throw new BadSignature(`the signature manifest is larger than ${MAX_SIGNATURE_MANIFEST} bytes`);
  if (headerDigest !== null && !digestMatches(data, headerDigest)) {
    throw new BadSignature(`the signature manifest does not match its Docker-Content-Digest ${headerDigest}`, { hint: TAMPERED });
  }
  let doc;
  try {
    doc = parseJson(data, 'the signature manifest');
  } catch (error) {
    throw new BadSignature(error.message);
  }
  const layers = isObject(doc) ? doc.layers : undefined;
  if (!Array.isArray(layers) || Object.hasOwn(doc, 'manifests')) {
    throw new BadSignature('the signature manifest is not an image manifest with layers');
  }
  const out = [];
  for (const layer of layers) {
    if (!isObject(layer) || layer.mediaType !== SIMPLE_SIGNING) continue;
    const { digest, size } = layer;
    const signature = isObject(layer.annotations) ? layer.annotations[SIGNATURE_ANNOTATION] : undefined;
    if (typeof digest !== 'string' || !isDigest(digest) || !Number.isInteger(size) || size < 0) {
      throw new BadSignature("a signature layer's descriptor has no valid digest and size");
    }
    out.push({ digest, size, signature: typeof signature === 'string' ? signature : null });
  }
  return out;
}

/** [docker-manifest-digest, critical.type] of a simple-signing payload; throws if none. */
function payloadClaims(payload) {
  const doc = parseJson(payload, 'the signature payload');
  const critical = isObject(doc) ? doc.critical : undefined;
  const image = isObject(critical) ? critical.image : undefined;
  const digest = isObject(image) ? image['docker-manifest-digest'] : undefined;
  if (typeof digest !== 'string') throw new Error('the signature payload is not a simple-signing document');
  return [digest, Object.hasOwn(critical, 'type') ? critical.type : null];
}

/**
 * The signature decision for `digest`: the key id of the trusted key that vouches for it.
 * Pure. `signatures` are [{payload, signature, problem}] as downloaded. Accepts when one
 * payload is a cosign image signature naming exactly `digest` and verifies under a trusted
 * key (the payload's docker-reference is not checked, as cosign does not: a mirror serves
 * the same signature). Otherwise throws, most telling first: SignatureDigestMismatch (a
 * trusted key signed something else), BadSignature (malformed, or a payload altered after
 * signing), UntrustedSignature (no trusted key verifies any), Unsigned (none).
 */
export function checkSignatures(signatures, digest, keys, { what }) {
  return accepted(signatures, digest, keys, { what })[1];
}

function accepted(signatures, digest, keys, { what }) {
  if (signatures.length === 0) {
    throw new Unsigned(`${what} is not signed (no cosign signature for ${digest})`, {
      hint: 'publish with the release signing key; a release without a signature is refused while trusted keys are configured',
    });
  }
  let elsewhere = null;
  let bad = null;
  for (const item of signatures) {
    if (item.problem || !item.payload || typeof item.signature !== 'string') {
      bad = bad || item.problem || 'a signature layer has no signature annotation';
      continue;
    }
    let raw;
    let claimed;
    let kind;
    try {
      raw = unb64(item.signature.trim());
      parseDerSignature(raw);
      [claimed, kind] = payloadClaims(item.payload);
    } catch (error) {
      bad = bad || `a signature cannot be read (${error.message})`;
      continue;
    }
    const signer = keys.find((key) => key.verify(item.payload, raw));
    if (signer === undefined) continue;
    if (kind !== COSIGN_SIGNATURE_TYPE || claimed !== digest) {
      elsewhere = elsewhere || [signer.keyId, claimed, kind];
      continue;
    }
    return [item, signer.keyId];
  }
  const trusted = keys.map((key) => key.keyId).join(', ');
  if (elsewhere !== null) {
    const [signerId, claimed, kind] = elsewhere;
    const covers = kind === COSIGN_SIGNATURE_TYPE ? claimed : `a ${JSON.stringify(kind)} payload`;
    throw new SignatureDigestMismatch(`${what}: the signature by trusted key ${signerId} covers ${covers}, not ${digest}`, {
      hint: 'someone with push rights moved a signature or re-tagged another artifact; do not install it',
    });
  }
  if (bad !== null) {
    throw new BadSignature(`${what}: ${bad}`, { hint: 'the signature was altered (or damaged) after signing; do not install it' });
  }
  throw new UntrustedSignature(`${what} is signed, but by no trusted key (trusted: ${trusted}); no signature verifies`, {
    hint: 'it was signed by another key, or its payload was altered and re-pushed; if the release key was rotated, add the new public key to the trusted keys',
  });
}


// -- pure: channel statements -----------------------------------------------------------------
//
// A channel statement says, signed: channel C pointed at manifest D (release V) as of
// issuedAt, it is the sequence-th statement for C, and it holds until expiresAt. It is
// an OCI image manifest tagged statement.<C> (artifactType and config media type
// below, layers []), its config blob the statement JSON, signed in cosign's format
// like a release. Only a channel resolve with trusted keys reads it; the appliance's
// own consumer reads :<C> alone and never sees it.

const UTC_TIME = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?Z$/;
const MAX_SEQUENCE = Number.MAX_SAFE_INTEGER;

/** Where the statement for `channel` lives: the tag statement.<channel>. */
export function statementTag(channel) {
  return STATEMENT_TAG_PREFIX + channel;
}

/** The canonical bytes of a statement (sorted keys, no spaces), as the publisher writes. */
export function statementBytes(doc) {
  return Buffer.from(JSON.stringify(sortDeep(doc)));
}

/** Seconds since the epoch of YYYY-MM-DDThh:mm:ss[.frac]Z; null if not a real time. */
export function utcSeconds(text) {
  const match = typeof text === 'string' ? UTC_TIME.exec(text) : null;
  if (match === null || !realDateTime(text)) return null;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number);
  const fraction = match[7] ? Number(`0${match[7]}`) : 0;
  return Date.UTC(year, month - 1, day, hour, minute, second) / 1000 + fraction;
}

/** Check a statement manifest's bytes. Pure; throws DigestMismatch or StatementMissing. */
export function verifyStatementManifest(data, { headerDigest = null, expectedDigest = null } = {}) {
  if (data.length > MAX_STATEMENT) throw new SizeLimitExceeded(`the channel statement manifest is larger than ${MAX_STATEMENT}`);
  for (const [claimed, source] of [[expectedDigest, 'requested'], [headerDigest, 'Docker-Content-Digest']]) {
    if (claimed !== null && !digestMatches(data, claimed)) {
      throw new DigestMismatch(`the channel statement manifest does not match the ${source} digest ${claimed}`, { hint: TAMPERED });
    }
  }
  const digest = expectedDigest || headerDigest || computeDigest(data);
  let doc;
  try {
    doc = parseJson(data, 'the channel statement manifest');
  } catch (error) {
    throw new StatementMissing(error.message);
  }
  const config = isObject(doc) ? doc.config : undefined;
  if (!isObject(doc) || doc.artifactType !== STATEMENT_ARTIFACT || !isObject(config) || config.mediaType !== STATEMENT_CONFIG) {
    throw new StatementMissing(`${digest} is not a channel statement (artifactType ${STATEMENT_ARTIFACT}, config ${STATEMENT_CONFIG})`);
  }
  const configDigest = config.digest;
  const size = has(config, 'size') ? config.size : -1;
  if (typeof configDigest !== 'string' || !isDigest(configDigest)) throw new InvalidStatement(['/config/digest: is not a digest'], { what: `statement ${digest}` });
  if (!Number.isInteger(size) || size < 0 || size > MAX_STATEMENT) throw new InvalidStatement([`/config/size: must be 0 to ${MAX_STATEMENT}`], { what: digest });
  return { digest, configDigest, configSize: size };
}

/**
 * What is wrong with a statement's JSON (empty when it is well-formed). Pure. Unknown
 * keys are allowed (a later publisher may add some); the seven known ones are required
 * with their types.
 */
export function statementProblems(doc) {
  const c = new Checker();
  const top = c.obj(doc, '', ['channel', 'expiresAt', 'issuedAt', 'manifestDigest', 'schema', 'sequence', 'version'], [], { closed: false });
  if (top === null) return c.problems;
  if (has(top, 'schema') && top.schema !== STATEMENT_SCHEMA) c.add('/schema', `must be ${STATEMENT_SCHEMA}`);
  if (has(top, 'channel') && !CHANNELS.includes(top.channel)) c.add('/channel', 'must be one of nightly, stable');
  if (has(top, 'version')) c.string(top.version, '/version', 'version', { maxLength: 128 });
  if (has(top, 'manifestDigest')) c.string(top.manifestDigest, '/manifestDigest', 'digest');
  if (has(top, 'sequence') && !(Number.isInteger(top.sequence) && top.sequence >= 0 && top.sequence <= MAX_SEQUENCE)) {
    c.add('/sequence', `must be an integer from 0 to ${MAX_SEQUENCE}`);
  }
  for (const key of ['issuedAt', 'expiresAt']) {
    if (has(top, key) && utcSeconds(top[key]) === null) c.add(`/${key}`, 'must be an RFC 3339 UTC time (YYYY-MM-DDThh:mm:ssZ)');
  }
  return c.problems;
}

/** The statement JSON from its config blob's bytes. Pure; throws InvalidStatement. */
export function parseStatement(data) {
  let doc;
  try {
    doc = parseJson(data, 'the statement');
  } catch (error) {
    throw new InvalidStatement([`(root): ${error.message}`]);
  }
  const problems = statementProblems(doc);
  if (problems.length > 0) throw new InvalidStatement(problems);
  return doc;
}

/**
 * The statement decision for `channel` resolved to `manifestDigest`. Pure. `doc` passed
 * statementProblems and its signature was verified. Throws InvalidStatement (another
 * channel), StatementDigestMismatch (the channel was re-tagged without a statement),
 * StatementReplay (a sequence below lastSequence, the highest accepted before) or
 * StatementExpired (expiresAt not after now), in that order.
 */
export function checkStatement(doc, { channel, manifestDigest, lastSequence, now, cachedRelease = null }) {
  if (doc.channel !== channel) throw new InvalidStatement([`/channel: the statement at ${statementTag(channel)} is for ${doc.channel}`]);
  if (doc.manifestDigest !== manifestDigest) {
    throw new StatementDigestMismatch(
      `channel ${channel} points at ${manifestDigest}, but its signed statement (sequence ${doc.sequence}) vouches for ${doc.manifestDigest}`,
      {
        hint: 'the channel tag was moved without a signed statement (a re-tag by someone without the release key, or a move that did not finish); do not install it',
      },
    );
  }
  if (lastSequence !== null && doc.sequence < lastSequence) {
    throw new StatementReplay(`channel ${channel}'s statement has sequence ${doc.sequence}, lower than ${lastSequence} already seen: an older statement replayed`, {
      hint: 'someone is serving an old channel state; do not install it',
    });
  }
  const expires = utcSeconds(doc.expiresAt);
  if (expires === null || expires <= now) {
    const staying = cachedRelease ? `; staying on release ${cachedRelease.version} (${cachedRelease.manifestDigest})` : '';
    throw new StatementExpired(`channel statement expired on ${doc.expiresAt}${staying}`, {
      expiresAt: String(doc.expiresAt),
      cachedRelease,
      hint: `the publisher must refresh the ${channel} statement (alga-release channel refresh); a channel nobody vouches for any more is not followed`,
    });
  }
}

// -- pure: the release JSON ------------------------------------------------------------

const HOSTPART =
  '(?:(?:localhost|\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?' +
  '(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+)(?::[0-9]{1,5})?' +
  '|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?:[0-9]{1,5})';
const NSPART = '(?:[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*/)+';
// Each rule: [regular expression, what a matching value is] -- the schema's patterns, verbatim.
const RULES = {
  version: [SEMVER_RE, 'a SemVer 2 version without build metadata'],
  profile: [full('[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?'), 'a values profile name (a DNS label)'],
  tag: [TAG_RE, 'an OCI tag'],
  controlPlane: [
    full(`${HOSTPART}/${NSPART}alga-appliance-control-plane@sha256:[a-f0-9]{64}`),
    '<registry>/<namespace>/alga-appliance-control-plane@sha256:<64 hex>',
  ],
  configRepository: [full(`${HOSTPART}/${NSPART}alga-appliance-config`), '<registry>/<namespace>/alga-appliance-config without a scheme'],
  digest: [full('sha256:[a-f0-9]{64}'), 'sha256:<64 lower-case hex>'],
  profileKey: [
    full('(?:alga-core|pgbouncer|temporal|workflow-worker|email-service|temporal-worker)\\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\\.yaml'),
    '<name>.<profile>.yaml for one of the six services',
  ],
  supportAgent: [
    full('ghcr\\.io/nine-minds/alga-appliance-support-agent@sha256:[a-f0-9]{64}'),
    'ghcr.io/nine-minds/alga-appliance-support-agent@sha256:<64 hex>',
  ],
  keyId: [full('[A-Za-z0-9_.-]{1,64}'), 'a key id ([A-Za-z0-9_.-]{1,64})'],
  source: [full('https://[^\\s]+'), 'an https URL'],
  revision: [full('[a-f0-9]{40}'), 'a 40-hex git commit SHA'],
  created: [
    full('[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\\.[0-9]+)?Z'),
    'an RFC 3339 UTC time (YYYY-MM-DDThh:mm:ssZ)',
  ],
  run: [full('[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?'), 'a Kubernetes object name'],
};

/**
 * The calendar half of format: date-time for a string the created pattern matched.
 * The schema's validator asserts the format (30 February fails although the
 * pattern matches); a leap second fails too, as it does there.
 */
function realDateTime(text) {
  const [year, month, day] = [Number(text.slice(0, 4)), Number(text.slice(5, 7)), Number(text.slice(8, 10))];
  const [hour, minute, second] = [Number(text.slice(11, 13)), Number(text.slice(14, 16)), Number(text.slice(17, 19))];
  if (year < 1 || month < 1 || month > 12) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  return day >= 1 && day <= days && hour <= 23 && minute <= 59 && second <= 59;
}

function pointer(at, key) {
  return `${at}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
}

function show(at) {
  return at || '(root)';
}

function length(text) {
  return [...text].length; // code points, as JSON Schema (and Python's len) counts
}

/** Code-point order, as Python's sorted() sorts strings. */
function byCodePoint(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i += 1) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d) return d;
  }
  return x.length - y.length;
}

function sortedKeys(obj) {
  return Object.keys(obj).sort(byCodePoint);
}

/** Collects problems as "<JSON pointer>: <what is wrong>" in a fixed order. */
class Checker {
  constructor() {
    this.problems = [];
  }

  add(at, text) {
    this.problems.push(`${show(at)}: ${text}`);
  }

  obj(value, at, required, optional = [], { closed = true } = {}) {
    if (!isObject(value)) {
      this.add(at, 'must be an object');
      return null;
    }
    for (const key of required) {
      if (!Object.hasOwn(value, key)) this.add(pointer(at, key), 'is required');
    }
    if (closed) {
      const known = new Set([...required, ...optional]);
      for (const key of sortedKeys(value).filter((k) => !known.has(k))) this.add(pointer(at, key), 'is not allowed (unknown key)');
    }
    return value;
  }

  string(value, at, rule = null, { maxLength = null, minLength = null, prefix = null, valid = null } = {}) {
    if (typeof value !== 'string') {
      this.add(at, 'must be a string');
      return;
    }
    if (maxLength !== null && length(value) > maxLength) this.add(at, `must be at most ${maxLength} characters`);
    if (minLength !== null && length(value) < minLength) {
      this.add(at, minLength === 1 ? 'must not be empty' : `needs ${minLength}+ characters`);
    }
    if (prefix !== null && !value.startsWith(prefix)) this.add(at, `must start with ${prefix}`);
    if (rule !== null) {
      const [pattern, what] = RULES[rule];
      if (!pattern.test(value) || (valid !== null && !valid(value))) this.add(at, `must be ${what}`);
    }
  }

  count(value, at, low, high) {
    const n = Object.keys(value).length;
    if (n < low || n > high) this.add(at, `must have ${low === high ? `exactly ${low}` : `${low} to ${high}`} keys, has ${n}`);
  }
}

const has = (obj, key) => Object.hasOwn(obj, key);

/**
 * The rules of schemas/release-manifest.v1.schema.json, as code. Pure.
 * Returns the problems found (empty when the schema accepts doc), in the same
 * fixed order as the Python twin.
 */
export function schemaProblems(doc) {
  const c = new Checker();
  const top = c.obj(
    doc,
    '',
    ['schema', 'version', 'channel', 'valuesProfile', 'images', 'controlPlane', 'config', 'charts', 'profileValues', 'provenance'],
    ['imageDigests', 'chartDigests', 'supportAgent', 'supportReceiptKeys'],
  );
  if (top === null) return c.problems;
  if (has(top, 'schema') && top.schema !== RELEASE_SCHEMA) c.add('/schema', `must be ${RELEASE_SCHEMA}`);
  if (has(top, 'version')) c.string(top.version, '/version', 'version', { maxLength: 128 });
  if (has(top, 'channel') && !CHANNELS.includes(top.channel)) c.add('/channel', 'must be one of nightly, stable');
  if (has(top, 'valuesProfile')) c.string(top.valuesProfile, '/valuesProfile', 'profile');
  for (const [name, rule] of [['images', 'tag'], ['imageDigests', 'digest']]) {
    if (has(top, name)) {
      const table = c.obj(top[name], `/${name}`, IMAGE_KEYS);
      for (const key of IMAGE_KEYS) {
        if (table !== null && has(table, key)) c.string(table[key], `/${name}/${key}`, rule);
      }
    }
  }
  if (has(top, 'controlPlane')) c.string(top.controlPlane, '/controlPlane', 'controlPlane', { maxLength: 512 });
  if (has(top, 'config')) {
    const config = c.obj(top.config, '/config', ['repository', 'tag', 'version', 'digest']);
    if (config !== null) {
      if (has(config, 'repository')) c.string(config.repository, '/config/repository', 'configRepository', { maxLength: 512 });
      if (has(config, 'tag')) c.string(config.tag, '/config/tag', 'tag');
      if (has(config, 'version')) c.string(config.version, '/config/version', 'version', { maxLength: 128 });
      if (has(config, 'digest')) c.string(config.digest, '/config/digest', 'digest');
    }
  }
  for (const [name, rule, limit] of [['charts', 'version', 128], ['chartDigests', 'digest', null]]) {
    if (has(top, name)) {
      const table = c.obj(top[name], `/${name}`, CHARTS);
      for (const chart of CHARTS) {
        if (table !== null && has(table, chart)) c.string(table[chart], pointer(`/${name}`, chart), rule, { maxLength: limit });
      }
    }
  }
  if (has(top, 'profileValues')) {
    const values = c.obj(top.profileValues, '/profileValues', [], [], { closed: false });
    if (values !== null) {
      c.count(values, '/profileValues', 6, 6);
      for (const key of sortedKeys(values)) {
        const at = pointer('/profileValues', key);
        if (!RULES.profileKey[0].test(key)) c.add(at, `is not an allowed key (expected ${RULES.profileKey[1]})`);
        c.string(values[key], at, null, { minLength: 1 });
      }
    }
  }
  if (has(top, 'supportAgent')) c.string(top.supportAgent, '/supportAgent', 'supportAgent');
  if (has(top, 'supportReceiptKeys')) {
    const keys = c.obj(top.supportReceiptKeys, '/supportReceiptKeys', [], [], { closed: false });
    if (keys !== null) {
      c.count(keys, '/supportReceiptKeys', 1, 2);
      for (const key of sortedKeys(keys)) {
        const at = pointer('/supportReceiptKeys', key);
        if (!RULES.keyId[0].test(key)) c.add(at, `is not an allowed key (expected ${RULES.keyId[1]})`);
        c.string(keys[key], at, null, { maxLength: 8192, prefix: '-----BEGIN PUBLIC KEY-----' });
      }
    }
  }
  if (has(top, 'provenance')) {
    const prov = c.obj(top.provenance, '/provenance', ['created'], ['source', 'revision', 'run']);
    if (prov !== null) {
      if (has(prov, 'source')) c.string(prov.source, '/provenance/source', 'source', { maxLength: 2048 });
      if (has(prov, 'revision')) c.string(prov.revision, '/provenance/revision', 'revision');
      if (has(prov, 'created')) c.string(prov.created, '/provenance/created', 'created', { valid: realDateTime });
      if (has(prov, 'run')) c.string(prov.run, '/provenance/run', 'run', { maxLength: 253 });
    }
  }
  return c.problems;
}

/**
 * The consumer-contract rules JSON Schema cannot say. Pure; doc passed the schema.
 * (1) profileValues holds exactly <name>.<valuesProfile>.yaml for the six services;
 * (2) config.tag and config.version equal version; (3) the appliance's
 * line-based setter finds every key path it edits; (4) so does the in-cluster
 * updater's (setYamlValue) for the image tags it sets on every upgrade (a path the
 * first setter misses is reported once, by (3)).
 */
export function contractProblems(doc) {
  const c = new Checker();
  const { version, valuesProfile: profile } = doc;
  for (const key of ['tag', 'version']) {
    if (doc.config[key] !== version) c.add(`/config/${key}`, `must equal version ${version}`);
  }
  const values = doc.profileValues;
  const wanted = SERVICES.map((name) => `${name}.${profile}.yaml`);
  for (const key of wanted) {
    if (!has(values, key)) c.add(pointer('/profileValues', key), `is required for valuesProfile ${profile}`);
  }
  for (const key of sortedKeys(values).filter((k) => !wanted.includes(k))) {
    c.add(pointer('/profileValues', key), `does not belong to valuesProfile ${profile}`);
  }
  for (const [name, paths] of Object.entries(SETTER_PATHS)) {
    const key = `${name}.${profile}.yaml`;
    if (!has(values, key)) continue;
    for (const keyPath of paths) {
      try {
        setYamlScalar(values[key], keyPath, '""');
      } catch {
        c.add(pointer('/profileValues', key), `has no ${keyPath.join('.')} for the appliance to set`);
        continue;
      }
      if (!(UPDATER_PATHS[name] ?? []).some((p) => p.join('.') === keyPath.join('.'))) continue;
      try {
        setYamlValue(values[key], keyPath, '""');
      } catch {
        c.add(
          pointer('/profileValues', key),
          `has ${keyPath.join('.')} where the in-cluster updater cannot set it (each parent key must be a line ending in ':')`,
        );
      }
    }
  }
  return c.problems;
}

/** Everything wrong with a release JSON: the schema's rules, then the contract's. */
export function releaseProblems(doc) {
  const problems = schemaProblems(doc);
  return problems.length ? problems : contractProblems(doc);
}

/** Return doc when it is a valid release; throw InvalidRelease otherwise. */
export function validateRelease(doc) {
  const problems = releaseProblems(doc);
  if (problems.length) throw new InvalidRelease(problems);
  return doc;
}

/** Parse and validate the config blob's bytes. Pure. */
export function parseRelease(data) {
  let doc;
  try {
    doc = parseJson(data, 'the config blob');
  } catch (error) {
    throw new InvalidRelease([`(root): ${error.message}`]);
  }
  return validateRelease(doc);
}

// -- pure: rendering what the appliance applies --------------------------------------

const KEY_LINE = /^(\s*)([A-Za-z0-9_-]+):(?:\s|$)/;

/**
 * Set path to the YAML scalar value with the appliance's line-based setter.
 * A line-for-line port of setYamlScalar in the appliance's setup-engine.mjs so
 * that what renders here renders there: keys match [A-Za-z0-9_-]+:, nesting is
 * tracked by indentation (a blank or comment line resets it, exactly as the
 * appliance does), the first match is replaced by "<indent><key>: <value>" (a
 * trailing comment is dropped), and a path that is not found throws.
 */
export function setYamlScalar(text, keyPath, value) {
  const output = [];
  const stack = [];
  let replaced = false;
  for (const line of text.split(/\r?\n/)) {
    const match = line.match(KEY_LINE);
    const indent = line.match(/^\s*/)?.[0].length || 0;
    while (stack.length && stack[stack.length - 1].indent >= indent) stack.pop();
    if (match) {
      const key = match[2];
      const parents = stack.map((entry) => entry.key);
      if (
        !replaced &&
        parents.length === keyPath.length - 1 &&
        parents.every((part, index) => part === keyPath[index]) &&
        key === keyPath[keyPath.length - 1]
      ) {
        output.push(`${line.slice(0, indent)}${key}: ${value}`);
        replaced = true;
        stack.push({ indent, key });
        continue;
      }
      stack.push({ indent, key });
    }
    output.push(line);
  }
  if (!replaced) throw new Error(`Failed to update YAML value ${keyPath.join('.')}`);
  return output.join('\n');
}

/**
 * Set keyPath to the YAML scalar value with the in-cluster updater's setter.
 * A port of setYamlValue in the appliance's appliance-status.yaml (the update Job that
 * upgrades a running appliance), which differs from setYamlScalar: a line's leading
 * whitespace is its indentation and pops every open key at the same or a deeper one;
 * only a line that ends in ':' (and does not start with '- ') opens a key -- the rest of
 * the line, trimmed -- so 'image:  # note' or 'image: ' opens nothing and hides the keys
 * under it; every other line under the path's parents that starts with '<last key>:' is
 * replaced by '<indent><key>: <value>' (every such line, not only the first). No line
 * replaced: it throws.
 */
export function setYamlValue(text, keyPath, value) {
  const parents = keyPath.slice(0, -1).join('.');
  const leaf = keyPath[keyPath.length - 1];
  const output = [];
  const stack = [];
  let replaced = false;
  for (const line of text.split(/\r?\n/)) {
    const stripped = line.trimStart();
    const indent = line.length - stripped.length;
    while (stack.length && indent <= stack[stack.length - 1].indent) stack.pop();
    if (stripped.endsWith(':') && !stripped.startsWith('- ')) {
      stack.push({ indent, key: stripped.slice(0, -1).trim() });
      output.push(line);
      continue;
    }
    if (stack.map((entry) => entry.key).join('.') === parents && stripped.startsWith(`${leaf}:`)) {
      replaced = true;
      output.push(`${line.slice(0, indent)}${leaf}: ${value}`);
      continue;
    }
    output.push(line);
  }
  if (!replaced) throw new Error(`Failed to update YAML value ${keyPath.join('.')}`);
  return output.join('\n');
}

/** A double-quoted YAML scalar (JSON's string form, as the appliance writes it). */
export function yamlString(value) {
  return JSON.stringify(String(value));
}

/**
 * The Flux OCIRepository the appliance applies: the config bundle pinned by digest.
 * With trustedKeys, spec.verify has source-controller check the bundle's cosign signature
 * (provider cosign, a static key: no transparency log) against the *.pub entries of the
 * Secret TRUSTED_KEYS_SECRET in the same namespace (renderTrustedKeysSecret): one key
 * that verifies is enough.
 */
export function renderOciRepository(release, { name = 'alga-appliance', namespace = FLUX_NAMESPACE, interval = '1m0s', trustedKeys = [] } = {}) {
  const spec = { interval, url: `oci://${release.config.repository}`, ref: { digest: release.config.digest } };
  if (trustedKeySet(trustedKeys).length > 0) spec.verify = { provider: 'cosign', secretRef: { name: TRUSTED_KEYS_SECRET } };
  // v1, as the appliance's setup-engine writes it: served from Flux 2.6 on; v1beta2 was
  // removed in Flux 2.8 (source-controller 1.8.0)
  return { apiVersion: 'source.toolkit.fluxcd.io/v1', kind: 'OCIRepository', metadata: { name, namespace }, spec };
}

/** The Secret key a trusted key is stored under: sha256-<16 hex>.pub (its key id). */
export function trustedKeyEntry(key) {
  return `${key.keyId.replace(':', '-')}.pub`;
}

/**
 * The Secret Flux verifies with: each trusted key's PEM under <key id>.pub.
 * Flux reads a verification Secret from the namespace of the object that verifies
 * (source-controller: the OCIRepository's or the HelmChart's, which helm-controller
 * creates in the namespace of the chart's HelmRepository): flux-system for
 * OCIRepository alga-appliance and for the bundle's charts alike.
 * Throws BadInput for no key or more than two.
 */
export function renderTrustedKeysSecret(trustedKeys, { namespace = FLUX_NAMESPACE } = {}) {
  const keys = trustedKeySet(trustedKeys);
  if (keys.length === 0) throw new BadInput('no trusted key: nothing for Flux to verify with');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: TRUSTED_KEYS_SECRET, namespace },
    type: 'Opaque',
    data: Object.fromEntries(keys.map((key) => [trustedKeyEntry(key), Buffer.from(key.pem(), 'ascii').toString('base64')])),
  };
}

/** The Flux Kustomization the appliance applies: ./base of the bundle, pruned. */
export function renderKustomization(release, { name = 'alga-appliance', namespace = 'flux-system', interval = '5m0s', path: at = './base' } = {}) {
  return {
    apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
    kind: 'Kustomization',
    metadata: { name, namespace },
    spec: { interval, path: at, prune: true, sourceRef: { kind: 'OCIRepository', name } },
  };
}

/** The six profile values texts with the image tags injected, keyed as in profileValues. Throws naming the path. */
/**
 * What each image.tag value is set to: the bare tag, or with imageDigests
 * <tag>@sha256:<hex> -- the charts build <repository>:<tag>, so the image is
 * <repository>:<tag>@sha256:<hex>, which Kubernetes pulls by the digest alone.
 */
export function imageReferences(release) {
  const digests = release.imageDigests;
  return Object.fromEntries(IMAGE_KEYS.map((key) => [key, digests ? `${release.images[key]}@${digests[key]}` : String(release.images[key])]));
}

/**
 * The six profile values texts with the image tags injected, keyed as in profileValues.
 * With imageDigests each tag is pinned by its digest (see imageReferences).
 */
export function renderValues(release) {
  const profile = release.valuesProfile;
  const images = imageReferences(release);
  const values = {};
  for (const name of SERVICES) {
    const key = `${name}.${profile}.yaml`;
    const text = release.profileValues[key];
    if (typeof text !== 'string') throw new Error(`Release manifest is missing profileValues["${key}"].`);
    values[key] = text;
  }
  for (const [name, keyPath, image] of IMAGE_TAG_PATHS) {
    const key = `${name}.${profile}.yaml`;
    values[key] = setYamlScalar(values[key], keyPath, yamlString(images[image]));
  }
  return Object.fromEntries(Object.entries(values).map(([key, text]) => [key, text.endsWith('\n') ? text : `${text}\n`]));
}

/** The six appliance-values-<name> ConfigMaps, in the appliance's order. */
export function renderValuesConfigMaps(release, { namespace = 'alga-system' } = {}) {
  const profile = release.valuesProfile;
  const values = renderValues(release);
  return SERVICES.map((name) => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: `appliance-values-${name}`, namespace },
    data: { [`${name}.${profile}.yaml`]: values[`${name}.${profile}.yaml`] },
  }));
}

/**
 * What the appliance applies for a release: six ConfigMaps, (with trustedKeys) the Secret
 * of trusted keys, the source (verifying the bundle with them), the Kustomization.
 */
export function renderAll(release, { trustedKeys = [] } = {}) {
  const keys = trustedKeySet(trustedKeys);
  return [
    ...renderValuesConfigMaps(release),
    ...(keys.length > 0 ? [renderTrustedKeysSecret(keys)] : []),
    renderOciRepository(release, { trustedKeys: keys }),
    renderKustomization(release),
  ];
}

// -- transport ----------------------------------------------------------------------------

// A transport is any object with
//   request(method, url, headers, limit) -> Promise<{status, headers, body}>
// (header names lower case, body a Buffer): one HTTP exchange, no redirects
// followed, at most limit + 1 body bytes read. It throws RegistryUnreachable
// when no response arrives (retryable false for TLS verification failures) and
// returns every response, whatever its status.

const TLS_HINT = "the registry's certificate is not trusted; pass --ca-file PEM for a private CA";
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

class StaleSocket extends Error {}

/** The real transport: node:http/node:https (TLS verified) with keep-alive agents. */
export class HttpTransport {
  constructor({ caFile = null, timeout = DEFAULT_TIMEOUT } = {}) {
    this.timeout = timeout;
    let ca;
    if (caFile) {
      try {
        ca = fs.readFileSync(caFile);
      } catch (error) {
        throw new BadInput(`cannot read the CA file ${caFile}: ${error.code || error.message}`);
      }
    }
    this.agents = {
      'https:': new https.Agent({ keepAlive: true, ca }),
      'http:': new http.Agent({ keepAlive: true }),
    };
  }

  close() {
    for (const agent of Object.values(this.agents)) agent.destroy();
  }

  async request(method, url, headers, limit) {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      try {
        return await this.#once(method, url, headers, limit);
      } catch (error) {
        // The server closed an idle keep-alive connection: one fresh try.
        if (error instanceof StaleSocket && attempt === 0) continue;
        if (error instanceof StaleSocket) throw new RegistryUnreachable(`${method} ${url.split('?')[0]}: connection lost`);
        throw error;
      }
    }
    throw new RegistryUnreachable(`${method} ${url.split('?')[0]}: connection lost`);
  }

  #once(method, url, headers, limit) {
    const target = new URL(url);
    const where = `${method} ${target.origin}${target.pathname}`;
    const module = target.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      let settled = false;
      let timedOut = false;
      let deadline = null;
      const done = (fn, value) => {
        if (!settled) {
          settled = true;
          clearTimeout(deadline);
          fn(value);
        }
      };
      const req = module.request(target, { method, headers: { ...headers }, agent: this.agents[target.protocol] }, (res) => {
        const out = {};
        for (const [name, value] of Object.entries(res.headers)) out[name] = Array.isArray(value) ? value.join(', ') : String(value);
        const declared = out['content-length'];
        if (method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304) {
          res.resume();
          res.on('end', () => done(resolve, { status: res.statusCode, headers: out, body: Buffer.alloc(0) }));
        } else if (declared !== undefined && DIGITS.test(declared) && Number(declared) > limit) {
          res.destroy(); // do not read what we would refuse anyway
          done(resolve, { status: res.statusCode, headers: out, body: Buffer.alloc(0) });
        } else {
          const chunks = [];
          let total = 0;
          res.on('data', (chunk) => {
            chunks.push(chunk);
            total += chunk.length;
            if (total > limit) {
              res.destroy();
              done(resolve, { status: res.statusCode, headers: out, body: Buffer.concat(chunks).subarray(0, limit + 1) });
            }
          });
          res.on('end', () => done(resolve, { status: res.statusCode, headers: out, body: Buffer.concat(chunks) }));
          res.on('close', () => {
            if (timedOut) done(reject, new RegistryUnreachable(`${where}: timed out after ${this.timeout}s`));
            else if (!res.complete) done(reject, new RegistryUnreachable(`${where}: connection lost mid-body`));
          });
          res.on('error', () => done(reject, new RegistryUnreachable(`${where}: connection lost mid-body`)));
        }
      });
      const expire = () => {
        timedOut = true;
        req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT_ALGA' }));
      };
      // Idle sockets and the whole request are both bounded: a registry that drips a byte
      // at a time must not hold a resolve for longer than the timeout.
      req.setTimeout(this.timeout * 1000, expire);
      deadline = setTimeout(expire, this.timeout * 1000);
      req.on('error', (error) => {
        const code = error.code || '';
        if (code === 'ETIMEDOUT_ALGA') {
          done(reject, new RegistryUnreachable(`${where}: timed out after ${this.timeout}s`));
        } else if (TLS_CODES.has(code) || code.startsWith('ERR_TLS_CERT')) {
          done(reject, new RegistryUnreachable(`${where}: TLS verification failed (${code})`, { hint: TLS_HINT, retryable: false }));
        } else if (req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) {
          done(reject, new StaleSocket(code));
        } else {
          done(reject, new RegistryUnreachable(`${where}: ${code || error.message}`));
        }
      });
      req.end();
    });
  }
}

// -- caches --------------------------------------------------------------------------------

// A cache is any object with load() -> doc | null and save(doc) (sync or async).

function cloneJson(value) {
  return value === null || value === undefined ? null : JSON.parse(JSON.stringify(value));
}

/** A cache held in memory (tests, or one process resolving many times). */
export class MemoryCache {
  constructor(doc = null) {
    this.doc = cloneJson(doc);
  }

  load() {
    return cloneJson(this.doc);
  }

  save(doc) {
    this.doc = cloneJson(doc);
  }
}

/**
 * A JSON cache file (mode 0600, replaced atomically); the Python twin reads the same file.
 * It holds bearer tokens, so keep it where only the appliance's service user can
 * read it. A missing, unreadable or corrupt file is an empty cache.
 */
export class FileCache {
  constructor(file) {
    this.path = file;
  }

  load() {
    try {
      const doc = parseJson(fs.readFileSync(this.path), 'the cache');
      return isObject(doc) ? doc : null;
    } catch {
      return null;
    }
  }

  save(doc) {
    const dir = path.dirname(path.resolve(this.path));
    fs.mkdirSync(dir, { recursive: true });
    const tmp = path.join(dir, `.release-cache-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    try {
      fs.writeFileSync(tmp, JSON.stringify(sortDeep(doc)), { mode: 0o600 });
      fs.renameSync(tmp, this.path);
    } catch (error) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // nothing to clean up
      }
      throw error;
    }
  }
}

function sortDeep(value) {
  if (Array.isArray(value)) return value.map(sortDeep);
  if (isObject(value)) return Object.fromEntries(sortedKeys(value).map((key) => [key, sortDeep(value[key])]));
  return value;
}

function emptyState() {
  return { schema: CACHE_SCHEMA, releases: {}, challenges: {}, tokens: {}, sequences: {} };
}

function normaliseState(doc) {
  const state = emptyState();
  if (isObject(doc) && doc.schema === CACHE_SCHEMA) {
    for (const name of ['releases', 'challenges', 'tokens', 'sequences']) {
      if (isObject(doc[name])) state[name] = doc[name];
    }
  }
  return state;
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function unb64(text) {
  if (typeof text !== 'string' || !BASE64_RE.test(text)) throw new Error('not base64');
  return Buffer.from(text, 'base64');
}

function timestamp(now) {
  return new Date(Math.floor(now) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Re-verify a cache entry from its bytes (digests, media types, rules); null if unusable. */
export function verifyCached(entry) {
  if (!isObject(entry)) return null;
  try {
    const manifest = unb64(entry.manifest);
    const config = unb64(entry.config);
    const digest = entry.manifestDigest;
    if (typeof digest !== 'string' || !isDigest(digest)) return null;
    const info = verifyManifest(manifest, { contentType: String(entry.mediaType || ''), expectedDigest: digest });
    verifyBlob(config, info.configDigest, info.configSize);
    const release = parseRelease(config);
    return {
      manifest,
      info,
      config,
      release,
      cached: true,
      stale: false,
      signature: cachedSignature(entry.signature),
      signedBy: null,
      statement: null,
      cachedStatement: entry.statement ?? null,
    };
  } catch {
    return null;
  }
}

/** A cached statement re-verified from its bytes under keys; null if unusable. */
function cachedStatementOf(entry, keys) {
  if (!isObject(entry) || keys.length === 0) return null;
  try {
    const manifest = unb64(entry.manifest);
    const config = unb64(entry.config);
    const { digest } = entry;
    if (typeof digest !== 'string' || !isDigest(digest)) return null;
    const info = verifyStatementManifest(manifest, { expectedDigest: digest });
    verifyBlob(config, info.configDigest, info.configSize);
    const signature = cachedSignature(entry.signature);
    if (signature === null) return null;
    const [, signedBy] = accepted([signature], digest, keys, { what: `the cached channel statement ${digest}` });
    return { info, manifest, config, doc: parseStatement(config), signature, signedBy };
  } catch {
    return null;
  }
}

function statementJson(statement) {
  return {
    digest: statement.info.digest,
    sequence: statement.doc.sequence,
    issuedAt: statement.doc.issuedAt,
    expiresAt: statement.doc.expiresAt,
    signedBy: statement.signedBy,
  };
}

/** The highest statement sequence accepted for channel of key (null: none yet). */
function lastSequence(state, key, channel) {
  const sequences = state.sequences[key];
  const value = isObject(sequences) ? sequences[channel] : undefined;
  return Number.isInteger(value) ? value : null;
}

/** A cached signature (payload and base64 signature); null when absent or unusable. */
function cachedSignature(entry) {
  if (!isObject(entry) || typeof entry.signature !== 'string') return null;
  try {
    return { payload: unb64(entry.payload), signature: entry.signature, problem: null };
  } catch {
    return null;
  }
}

function signatureEntry(signature) {
  if (!signature || !signature.payload || typeof signature.signature !== 'string') return null;
  return { payload: signature.payload.toString('base64'), signature: signature.signature };
}

/** The cached release for target (for a digest: any entry holding that manifest). */
function findCached(state, key, target) {
  const entries = state.releases[key];
  if (!isObject(entries)) return null;
  if (target.kind === 'digest') {
    for (const entry of Object.values(entries)) {
      if (isObject(entry) && entry.manifestDigest === target.value) return verifyCached(entry);
    }
    return null;
  }
  return has(entries, target.value) ? verifyCached(entries[target.value]) : null;
}

const MAX_ENTRIES = 16; // per repository; channels are few, pinned versions and digests accumulate

/** Record a verified release under ref; drop expired tokens and the oldest entries. */
function remember(state, key, ref, outcome, now) {
  let entries = state.releases[key];
  if (!isObject(entries)) entries = state.releases[key] = {};
  entries[ref] = {
    manifestDigest: outcome.info.digest,
    mediaType: outcome.info.mediaType,
    manifest: outcome.manifest.toString('base64'),
    config: outcome.config.toString('base64'),
    resolvedAt: timestamp(now),
  };
  const signature = signatureEntry(outcome.signature);
  if (signature !== null) entries[ref].signature = signature;
  if (outcome.statement) {
    const { statement } = outcome;
    entries[ref].statement = {
      digest: statement.info.digest,
      manifest: statement.manifest.toString('base64'),
      config: statement.config.toString('base64'),
      signature: signatureEntry(statement.signature),
    };
    if (!isObject(state.sequences[key])) state.sequences[key] = {};
    state.sequences[key][ref] = Math.max(statement.doc.sequence, lastSequence(state, key, ref) ?? 0);
  }
  while (Object.keys(entries).length > MAX_ENTRIES) {
    const when = (k) => (isObject(entries[k]) ? String(entries[k].resolvedAt ?? '') : '');
    const candidates = Object.keys(entries).filter((k) => !CHANNELS.includes(k) && k !== ref);
    const oldest = candidates.reduce((a, b) => (when(b) < when(a) ? b : a));
    delete entries[oldest];
  }
  state.tokens = Object.fromEntries(
    Object.entries(state.tokens).filter(([, v]) => isObject(v) && typeof v.expiresAt === 'number' && v.expiresAt > now),
  );
}

// -- the resolver: auth, redirects, retries ---------------------------------------------------

const CHALLENGE_PARAM = /([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)/g;
const TOKEN_RE = full('[\\x21-\\x7e]+');

/** The first challenge of a WWW-Authenticate header: {scheme, realm, service, ...}. */
export function parseChallenge(header) {
  const text = (header || '').trim();
  if (!text) return null;
  const space = text.indexOf(' ');
  const scheme = space < 0 ? text : text.slice(0, space);
  const rest = space < 0 ? '' : text.slice(space + 1);
  const out = { scheme: scheme.toLowerCase() };
  for (const match of rest.matchAll(CHALLENGE_PARAM)) {
    const name = match[1].toLowerCase();
    let value = match[2];
    if (value.length >= 2 && value[0] === '"' && value[value.length - 1] === '"') value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    if (name !== 'scheme' && !has(out, name)) out[name] = value;
  }
  return out;
}

function origin(url) {
  const u = new URL(url);
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return `${u.protocol.slice(0, -1)}://${u.hostname.toLowerCase()}:${port}`;
}

function checkUrl(url, what, insecureHosts = []) {
  let u;
  try {
    u = new URL(url);
  } catch {
    throw new DownloadError(`refusing ${what}: ${url.split('?')[0]} is not a URL`);
  }
  if (u.protocol === 'https:') return;
  if (u.protocol === 'http:' && (isLoopback(u.host) || insecureHosts.includes(u.host))) return;
  throw new DownloadError(`refusing ${what} over ${u.protocol.slice(0, -1) || 'no scheme'}: ${u.protocol}//${u.hostname}`, {
    hint: 'only https (or plain http to a loopback host) is allowed',
  });
}

/** One resolve's conversation with a registry: auth state, retries, redirects, counts. */
class Session {
  constructor(transport, { registry, repository, scheme, credentials, state, clock, sleep, attempts, tokenRealm, tokenService, insecureHosts = [] }) {
    this.transport = transport;
    this.insecureHosts = [...insecureHosts];
    this.registry = registry;
    this.repository = repository;
    this.base = `${scheme}://${registry}`;
    this.credentials = credentials;
    this.state = state;
    this.clock = clock;
    this.sleep = sleep;
    this.attempts = Math.max(1, attempts);
    this.scope = `repository:${repository}:pull`;
    this.requests = 0;
    this.token = null;
    this.basic = false;
    this.challenge = null;
    let known = state.challenges[registry];
    if (tokenRealm) known = { scheme: 'bearer', realm: tokenRealm, service: tokenService || registry };
    else if (!isObject(known) && registry === 'ghcr.io') known = { scheme: 'bearer', realm: 'https://ghcr.io/token', service: 'ghcr.io' };
    if (isObject(known)) {
      if (known.scheme === 'basic') {
        this.basic = credentials !== null;
      } else if (known.scheme === 'bearer' && typeof known.realm === 'string') {
        this.challenge = Object.fromEntries(Object.entries(known).map(([k, v]) => [k, String(v)]));
        this.token = this.cachedToken();
      }
    }
  }

  // -- auth state ---------------------------------------------------------

  tokenKey() {
    const user = this.credentials ? this.credentials.username : '';
    return [this.challenge.realm, this.challenge.service ?? '', this.scope, user].join('|');
  }

  cachedToken() {
    const entry = this.state.tokens[this.tokenKey()];
    if (!isObject(entry)) return null;
    const { token, expiresAt } = entry;
    if (typeof token !== 'string' || !TOKEN_RE.test(token)) return null;
    if (typeof expiresAt !== 'number' || expiresAt - TOKEN_MARGIN <= this.clock()) return null;
    return token;
  }

  authorization() {
    if (this.token !== null) return { Authorization: `Bearer ${this.token}` };
    if (this.basic && this.credentials !== null) return { Authorization: this.credentials.basicHeader() };
    return {};
  }

  /** Ask the token service for a pull token. False when an optimistic guess was wrong. */
  async fetchToken({ optimistic }) {
    const { realm } = this.challenge;
    checkUrl(realm, 'the token service', this.insecureHosts);
    const query = this.challenge.service ? { service: this.challenge.service, scope: this.scope } : { scope: this.scope };
    const url = realm + (realm.includes('?') ? '&' : '?') + new URLSearchParams(query).toString();
    const headers = { Accept: 'application/json' };
    if (this.credentials !== null) headers.Authorization = this.credentials.basicHeader();
    const resp = await this.retrying('GET', url, headers, MAX_BYTES, { follow: true });
    if (resp.status === 401 || resp.status === 403) {
      const who = this.credentials ? `as ${this.credentials.username}` : 'anonymously';
      throw new AuthError(`the token service refused a pull token for ${this.registry}/${this.repository} ${who} (${resp.status})`, {
        hint: this.credentials ? 'check the credentials' : 'the package may be private: make it public, or pass credentials',
      });
    }
    if (resp.status !== 200) {
      if (optimistic) return false;
      throw new DownloadError(`the token service answered ${resp.status}`);
    }
    let body;
    try {
      body = parseJson(resp.body, 'the token response');
    } catch {
      if (optimistic) return false;
      throw new DownloadError("the token service's answer is not JSON");
    }
    const token = isObject(body) ? body.token || body.access_token : null;
    if (typeof token !== 'string' || !TOKEN_RE.test(token)) {
      if (optimistic) return false;
      throw new DownloadError("the token service's answer holds no usable token");
    }
    let lifetime = MIN_TOKEN_LIFETIME;
    if (typeof body.expires_in === 'number') lifetime = Math.max(body.expires_in, MIN_TOKEN_LIFETIME);
    this.token = token;
    this.state.tokens[this.tokenKey()] = { token, expiresAt: this.clock() + lifetime };
    this.state.challenges[this.registry] = { ...this.challenge };
    return true;
  }

  async authenticate(resp) {
    let challenge = parseChallenge(resp.headers['www-authenticate'] || '');
    if (challenge !== null && challenge.scheme === 'basic') {
      if (this.credentials === null) {
        throw new AuthError(`${this.registry} requires credentials (Basic auth)`, { hint: `set ${ENV_USERNAME} and ${ENV_PASSWORD}` });
      }
      this.basic = true;
      this.token = null;
      this.state.challenges[this.registry] = { scheme: 'basic' };
      return;
    }
    if (challenge !== null && challenge.scheme !== 'bearer') {
      throw new AuthError(`${this.registry} asks for unsupported auth '${challenge.scheme}'`);
    }
    if (challenge === null || !challenge.realm) {
      // No usable challenge: the token endpoint where ghcr.io serves it.
      challenge = { scheme: 'bearer', realm: `${this.base}/token`, service: this.registry };
    }
    this.challenge = Object.fromEntries(Object.entries(challenge).filter(([k]) => ['scheme', 'realm', 'service'].includes(k)));
    this.token = null;
    await this.fetchToken({ optimistic: false });
  }

  // -- HTTP ----------------------------------------------------------------

  async hop(method, url, headers, limit) {
    this.requests += 1;
    return this.transport.request(method, url, headers, limit);
  }

  /** One request, following redirects; Authorization never leaves its origin. */
  async follow(method, url, headers, limit, { follow }) {
    const start = origin(url);
    let current = { ...headers };
    let at = url;
    for (let i = 0; i <= MAX_REDIRECTS; i += 1) {
      const resp = await this.hop(method, at, current, limit);
      const location = resp.headers.location;
      if (!follow || ![301, 302, 303, 307, 308].includes(resp.status) || !location) return resp;
      at = new URL(location, at).toString();
      checkUrl(at, 'a redirect', this.insecureHosts);
      if (origin(at) !== start) current = Object.fromEntries(Object.entries(current).filter(([k]) => k.toLowerCase() !== 'authorization'));
    }
    throw new DownloadError(`more than ${MAX_REDIRECTS} redirects for ${method} ${at.split('?')[0]}`);
  }

  /**
   * Bounded retries with backoff on 429, 5xx and connection errors. With expectSize (a
   * descriptor's size), a 200 body that ends short of it without a Content-Length (a
   * close-delimited body cut off) is a lost connection too, retried like one:
   * truncation is transient, never tampering.
   */
  async retrying(method, url, headers, limit, { follow, expectSize = null }) {
    let last = '';
    let delay = 0;
    for (let attempt = 0; attempt < this.attempts; attempt += 1) {
      if (attempt) await this.sleep(delay);
      delay = Math.min(BASE_DELAY * 2 ** attempt, MAX_DELAY);
      let resp;
      try {
        resp = await this.follow(method, url, headers, limit, { follow });
      } catch (error) {
        if (!(error instanceof RegistryUnreachable) || !error.retryable) throw error;
        last = error.message;
        continue;
      }
      if (truncated(resp, expectSize)) {
        last = `${method} ${url.split('?')[0]}: the body ended after ${resp.body.length} of ${expectSize} bytes`;
        continue;
      }
      if (!RETRY_STATUSES.has(resp.status)) return resp;
      last = `${method} ${url.split('?')[0]} answered ${resp.status}`;
      const retryAfter = resp.headers['retry-after'] || '';
      if (DIGITS.test(retryAfter)) delay = Math.min(Number(retryAfter), MAX_DELAY);
    }
    throw new RegistryUnreachable(`${this.registry} cannot be reached after ${this.attempts} attempts: ${last}`, {
      hint: "check the network and the registry's status; the appliance will retry",
    });
  }

  /** A request to the registry, authenticated as it asks (at most one challenge round). */
  async registryRequest(method, at, accept, limit, { follow, expectSize = null }) {
    const url = this.base + at;
    const needToken = this.token === null && !this.basic && this.challenge !== null;
    if (needToken && !(await this.fetchToken({ optimistic: true }))) {
      this.challenge = null; // the guessed or cached realm was wrong: ask the registry
    }
    let answeredChallenge = false;
    for (;;) {
      const headers = { 'User-Agent': USER_AGENT, ...this.authorization() };
      if (accept) headers.Accept = accept;
      const resp = await this.retrying(method, url, headers, limit, { follow, expectSize });
      if (resp.status === 401 && !answeredChallenge) {
        answeredChallenge = true;
        await this.authenticate(resp);
        continue;
      }
      if (resp.status === 401 || resp.status === 403) {
        throw new AuthError(`${this.registry} refused ${method} ${at} (${resp.status}) after authenticating`, {
          hint: 'check the credentials and that the package is readable by them',
        });
      }
      return resp;
    }
  }
}

/** A 200 body shorter than its descriptor says, with no Content-Length to have kept. */
function truncated(resp, expectSize) {
  return expectSize !== null && resp.status === 200 && resp.body.length < expectSize && !Object.hasOwn(resp.headers, 'content-length');
}

function contentLength(resp) {
  const value = (resp.headers['content-length'] || '').trim();
  return DIGITS.test(value) ? Number(value) : null;
}

function headerDigest(resp) {
  const value = (resp.headers['docker-content-digest'] || '').trim();
  return isDigest(value) ? value : null;
}

/** Fetch and verify the manifest, its signature and the config blob, or confirm the cache. */
async function fetchRelease(session, target, cached, keys) {
  const where = `${session.registry}/${session.repository}`;
  const manifests = `/v2/${session.repository}/manifests/`;
  let manifestRef = target.value;
  let expectedDigest = null;
  let expectedSize = null;
  if (target.kind === 'digest') {
    expectedDigest = target.value;
  } else if (cached !== null) {
    const head = await session.registryRequest('HEAD', manifests + target.value, MANIFEST_ACCEPT, 0, { follow: false });
    if (head.status === 404) throw new NotFound(`${where}:${target.value} does not exist`);
    if (head.status !== 200) throw new DownloadError(`HEAD ${where}:${target.value} answered ${head.status}`);
    const remote = headerDigest(head);
    if (cacheDecision(cached.info.digest, remote, { reachable: true }) === 'hit') return vouched(session, cached, keys);
    if (remote !== null) {
      // Fetch exactly what the HEAD named, even if the tag moves meanwhile.
      [manifestRef, expectedDigest, expectedSize] = [remote, remote, contentLength(head)];
    }
  }
  const resp = await session.registryRequest('GET', manifests + manifestRef, MANIFEST_ACCEPT, MAX_BYTES, { follow: true, expectSize: expectedSize });
  if (resp.status === 404) {
    throw new NotFound(`${where}${manifestRef.includes(':') ? '@' : ':'}${manifestRef} does not exist`, {
      hint: 'check the channel or version; nightly and stable are the channels',
    });
  }
  if (resp.status !== 200) throw new DownloadError(`GET ${where} manifest ${manifestRef} answered ${resp.status}`);
  const declared = contentLength(resp);
  if ((declared !== null && declared > MAX_BYTES) || resp.body.length > MAX_BYTES) {
    throw new SizeLimitExceeded(`the manifest ${manifestRef} is larger than ${MAX_BYTES} bytes`);
  }
  const info = verifyManifest(resp.body, {
    contentType: resp.headers['content-type'] ?? null,
    headerDigest: headerDigest(resp),
    expectedDigest,
    expectedSize,
  });
  // Trust before content: the signature is checked before the release JSON is read.
  const [signature, signedBy] = keys.length > 0 ? await fetchSignature(session, info.digest, keys) : [null, null];
  // Reuse a cached config blob only when it was verified against this very digest.
  const config =
    cached !== null && cached.info.configDigest === info.configDigest
      ? cached.config
      : await fetchBlob(session, info.configDigest, info.configSize, { of: info.digest });
  const release = parseRelease(config);
  if (target.kind === 'version' && release.version !== target.value) {
    throw new InvalidRelease([`/version: the tag ${target.value} holds release version ${release.version}`]);
  }
  return { manifest: resp.body, info, config, release, cached: false, stale: false, signature, signedBy };
}

/** A blob's bytes (`of` names the manifest), checked against its descriptor. */
async function fetchBlob(session, digest, size, { of }) {
  const where = `${session.registry}/${session.repository}`;
  const blob = await session.registryRequest('GET', `/v2/${session.repository}/blobs/${digest}`, null, size, { follow: true, expectSize: size });
  if (blob.status === 404) {
    throw new IncompleteRelease(`${where}@${of} names blob ${digest}, which the registry lacks`, {
      hint: 'the release was not pushed completely; republish it',
    });
  }
  if (blob.status !== 200) throw new DownloadError(`GET ${where} blob ${digest} answered ${blob.status}`);
  const declared = contentLength(blob);
  if (declared !== null && declared > MAX_BYTES) throw new SizeLimitExceeded(`blob ${digest} is ${declared} bytes, above the ${MAX_BYTES}-byte cap`);
  if (blob.body.length > size || (declared !== null && declared !== size)) {
    throw new DigestMismatch(`blob ${digest} is served as ${Math.max(declared || 0, blob.body.length)} bytes, the manifest says ${size}`, {
      hint: TAMPERED,
    });
  }
  verifyBlob(blob.body, digest, size);
  return blob.body;
}

function what(session, digest) {
  return `${session.registry}/${session.repository}@${digest}`;
}

/**
 * Download digest's cosign signatures and pick the one a trusted key made. The .sig
 * manifest and each simple-signing payload are bounded and checked against their
 * digests; a payload that is not the bytes its descriptor names is a BadSignature for
 * that layer, and checkSignatures decides.
 */
async function fetchSignature(session, digest, keys, { what: named = null } = {}) {
  const name = named || what(session, digest);
  const resp = await session.registryRequest('GET', `/v2/${session.repository}/manifests/${signatureTag(digest)}`, MANIFEST_ACCEPT, MAX_SIGNATURE_MANIFEST, {
    follow: true,
  });
  if (resp.status === 404) return accepted([], digest, keys, { what: name }); // throws Unsigned
  if (resp.status !== 200) throw new DownloadError(`GET ${name} signatures answered ${resp.status}`);
  const declared = contentLength(resp);
  if (declared !== null && declared > MAX_SIGNATURE_MANIFEST) {
    throw new BadSignature(`${name}: the signature manifest is ${declared} bytes, above the ${MAX_SIGNATURE_MANIFEST}-byte cap`);
  }
  const signatures = [];
  for (const layer of signatureLayers(resp.body, { headerDigest: headerDigest(resp) }).slice(0, MAX_SIGNATURES)) {
    if (layer.size > MAX_PAYLOAD) {
      signatures.push({ payload: null, signature: layer.signature, problem: `a signature payload is announced as ${layer.size} bytes (cap ${MAX_PAYLOAD})` });
      continue;
    }
    try {
      const payload = await fetchBlob(session, layer.digest, layer.size, { of: signatureTag(digest) });
      signatures.push({ payload, signature: layer.signature, problem: null });
    } catch (error) {
      if (!(error instanceof DigestMismatch || error instanceof SizeLimitExceeded || error instanceof IncompleteRelease)) throw error;
      signatures.push({ payload: null, signature: layer.signature, problem: `a signature payload: ${error.message}` });
    }
  }
  return accepted(signatures, digest, keys, { what: name });
}

/**
 * The channel's statement, its bytes and signature verified (not yet its claims). With
 * a cached statement, a HEAD says whether it is still the current one (then nothing is
 * downloaded); otherwise the manifest, its signature and its config blob are fetched.
 */
async function fetchStatement(session, channel, keys, cached) {
  const where = `${session.registry}/${session.repository}:${statementTag(channel)}`;
  const at = `/v2/${session.repository}/manifests/${statementTag(channel)}`;
  const missing = () =>
    new StatementMissing(`${where} does not exist: channel ${channel} has no signed statement`, {
      hint: 'with trusted keys, a channel is followed only while a signed statement vouches for it; the publisher writes one with every channel move',
    });
  let ref = statementTag(channel);
  let expected = null;
  if (cached !== null) {
    const head = await session.registryRequest('HEAD', at, MANIFEST_ACCEPT, 0, { follow: false });
    if (head.status === 404) throw missing();
    if (head.status !== 200) throw new DownloadError(`HEAD ${where} answered ${head.status}`);
    const remote = headerDigest(head);
    if (remote === cached.info.digest) return cached;
    if (remote !== null) [ref, expected] = [remote, remote];
  }
  const resp = await session.registryRequest('GET', `/v2/${session.repository}/manifests/${ref}`, MANIFEST_ACCEPT, MAX_STATEMENT, { follow: true });
  if (resp.status === 404) throw missing();
  if (resp.status !== 200) throw new DownloadError(`GET ${where} answered ${resp.status}`);
  const info = verifyStatementManifest(resp.body, { headerDigest: headerDigest(resp), expectedDigest: expected });
  const [signature, signedBy] = await fetchSignature(session, info.digest, keys, { what: `the channel statement ${where}@${info.digest}` });
  const config = await fetchBlob(session, info.configDigest, info.configSize, { of: info.digest });
  return { info, manifest: resp.body, config, doc: parseStatement(config), signature, signedBy };
}

/** outcome once the channel's signed statement vouches for it (see checkStatement). */
async function withStatement(session, channel, outcome, keys, { lastSequence: last, now, previous }) {
  const cached = outcome.cached ? cachedStatementOf(outcome.cachedStatement, keys) : null;
  const statement = await fetchStatement(session, channel, keys, cached);
  checkStatement(statement.doc, {
    channel,
    manifestDigest: outcome.info.digest,
    lastSequence: last,
    now,
    cachedRelease: previous !== null ? { version: String(previous.release.version), manifestDigest: previous.info.digest } : null,
  });
  if (statement.doc.version !== outcome.release.version) {
    throw new InvalidStatement([`/version: the statement names ${statement.doc.version}, the release it vouches for is ${outcome.release.version}`]);
  }
  return { ...outcome, statement };
}

/**
 * outcome once a trusted signature vouches for it: the cached one if it still verifies
 * under keys (no request), else downloaded (not possible offline: session null).
 */
async function vouched(session, outcome, keys) {
  if (keys.length === 0) return outcome;
  if (outcome.signature) {
    try {
      const [, signedBy] = accepted([outcome.signature], outcome.info.digest, keys, { what: `the cached release ${outcome.info.digest}` });
      return { ...outcome, signedBy };
    } catch (error) {
      if (!(error instanceof SignatureError)) throw error;
    }
  }
  if (session === null) throw new Unsigned(`the cached release ${outcome.info.digest} has no trusted signature cached`);
  const [signature, signedBy] = await fetchSignature(session, outcome.info.digest, keys);
  return { ...outcome, signature, signedBy };
}

/** Credentials from ALGA_REGISTRY_USERNAME/ALGA_REGISTRY_PASSWORD; null if unset. */
export function credentialsFromEnv(env = process.env) {
  const username = (env[ENV_USERNAME] || '').trim();
  const password = env[ENV_PASSWORD] || '';
  if (!username && !password) return null;
  if (!username || !password) throw new BadInput(`incomplete registry credentials: set ${ENV_USERNAME} and ${ENV_PASSWORD}, or neither`);
  return new Credentials(username, password);
}

const defaultSleep = (seconds) => new Promise((done) => setTimeout(done, seconds * 1000));

/**
 * Resolve ref (channel, version or sha256: digest) to a verified release.
 * installedVersion turns on anti-rollback: an older release is refused
 * (RollbackRefused) unless ref pins a version or a digest. cache keeps the last
 * good release and the auth state: warm resolves of an unmoved channel cost one
 * manifest HEAD, and when the registry cannot be reached the cached release is
 * returned with stale: true. tokenRealm (with tokenService, default the registry
 * host) names the token service up front, as is built in for ghcr.io, to save the
 * challenge round trip; a wrong guess costs one request and falls back to the
 * challenge. plainHttp is refused for non-loopback hosts.
 * Returns the same object the Python twin's Resolution.to_json() returns.
 */
export async function resolve(ref, options = {}) {
  const {
    registry = DEFAULT_REGISTRY,
    repository = DEFAULT_REPOSITORY,
    installedVersion = null,
    cache = null,
    transport = null,
    caFile = null,
    plainHttp = false,
    insecureHosts = [],
    timeout = DEFAULT_TIMEOUT,
    attempts = DEFAULT_ATTEMPTS,
    tokenRealm = null,
    tokenService = null,
    clock = () => Date.now() / 1000,
    sleep = defaultSleep,
    trustedKeys = null,
  } = options;
  let { credentials = null } = options;
  const target = parseRef(ref);
  checkRegistry(registry);
  checkRepository(repository);
  if (plainHttp && !(isLoopback(registry) || insecureHosts.includes(registry))) {
    throw new BadInput(`refusing plain HTTP to ${registry}: only loopback hosts may use it`, {
      hint: 'drop --plain-http; use --ca-file for a private CA',
    });
  }
  if (installedVersion !== null && typeof installedVersion !== 'string') {
    throw new BadInput('the installed version must be a string');
  }
  if (tokenRealm !== null) checkUrl(tokenRealm, 'the token service', insecureHosts);
  if (credentials !== null && !(credentials instanceof Credentials)) credentials = new Credentials(credentials.username, credentials.password);
  const keys = configuredTrustedKeys(trustedKeys);
  const state = normaliseState(cache !== null ? await cache.load() : null);
  const key = `${registry}/${repository}`;
  const cached = findCached(state, key, target);
  const actual = transport !== null ? transport : new HttpTransport({ caFile, timeout });
  const session = new Session(actual, {
    registry,
    repository,
    scheme: plainHttp ? 'http' : 'https',
    credentials,
    state,
    clock,
    sleep,
    attempts,
    tokenRealm,
    tokenService,
    insecureHosts,
  });
  let outcome;
  let downgrade;
  try {
    if (target.kind === 'digest' && cached !== null) {
      // Content-addressed: the cached bytes verify against the digest.
      outcome = await vouched(session, cached, keys);
    } else {
      try {
        outcome = await fetchRelease(session, target, cached, keys);
      } catch (error) {
        const digest = cached !== null ? cached.info.digest : null;
        if (!(error instanceof RegistryUnreachable) || cached === null || cacheDecision(digest, null, { reachable: false }) !== 'stale') throw error;
        try {
          outcome = { ...(await vouched(null, cached, keys)), stale: true };
        } catch (unvouched) {
          if (unvouched instanceof SignatureError) throw error; // nothing cached is vouched for by these keys
          throw unvouched;
        }
      }
    }
    if (keys.length > 0 && target.kind === 'channel' && !outcome.stale) {
      outcome = await withStatement(session, target.value, outcome, keys, {
        lastSequence: lastSequence(state, key, target.value),
        now: clock(),
        previous: cached,
      });
    }
    downgrade = checkRollback(String(outcome.release.version), installedVersion, { pinned: target.pinned, reference: target.value });
    if (!outcome.stale) remember(state, key, target.value, outcome, clock());
  } finally {
    if (transport === null) actual.close();
    if (cache !== null) {
      // The cache is an optimisation: a read-only disk must not fail a resolve.
      try {
        await cache.save(state);
      } catch {
        // ignored on purpose
      }
    }
  }
  return {
    reference: target.value,
    registry,
    repository,
    manifestDigest: outcome.info.digest,
    mediaType: outcome.info.mediaType,
    configDigest: outcome.info.configDigest,
    version: outcome.release.version,
    channel: outcome.release.channel,
    manifest: outcome.release,
    pinned: target.pinned,
    downgrade,
    cached: outcome.cached,
    stale: outcome.stale,
    requests: session.requests,
    signedBy: outcome.signedBy ?? null,
    statement: outcome.statement ? statementJson(outcome.statement) : null,
  };
}

// -- CLI -----------------------------------------------------------------------------------------

function env(name, fallback = null) {
  const value = process.env[name];
  return value ? value : fallback;
}

const HELP = `usage: release-consume.mjs [-h] [--registry HOST[:PORT]] [--repository REPO]
                          [--installed-version V] [--cache FILE] [--ca-file PEM]
                          [--plain-http] [--insecure-registry HOST]
                          [--token-realm URL] [--token-service NAME]
                          [--trusted-key FILE] [--username USERNAME]
                          [--password-file FILE] [--timeout TIMEOUT] [--attempts ATTEMPTS]
                          [--render] [--json] [--version]
                          REF

Resolve an Alga appliance channel, version or digest to a verified release.

positional arguments:
  REF                   nightly, stable, a version (1.4.0) or sha256:<hex>

options:
  -h, --help            show this help message and exit
  --registry HOST[:PORT]
                        registry host (env ALGA_REGISTRY; default ${DEFAULT_REGISTRY})
  --repository REPO     release repository (env ALGA_RELEASE_REPOSITORY; default ${DEFAULT_REPOSITORY})
  --installed-version V the installed release version; an older channel release is refused
                        (env ALGA_INSTALLED_VERSION)
  --cache FILE          cache file for the last good release and tokens (env ALGA_RELEASE_CACHE)
  --ca-file PEM         trust this CA bundle for TLS (env ALGA_CA_FILE)
  --plain-http          plain HTTP, loopback hosts only (env ALGA_PLAIN_HTTP=1)
  --insecure-registry HOST
                        also allow plain HTTP to this non-loopback HOST (repeatable)
  --token-realm URL     the registry's token service, to skip the challenge round trip
                        (env ALGA_TOKEN_REALM; built in for ghcr.io)
  --token-service NAME  the service name the token service expects with --token-realm
                        (env ALGA_TOKEN_SERVICE; default the registry host, as ghcr.io uses)
  --trusted-key FILE    a PEM file of trusted release public keys (ECDSA P-256, cosign.pub;
                        repeatable, 1 or 2 keys in all): the release must carry a cosign
                        signature by one of them (env ${ENV_TRUSTED_KEYS}, files separated by ':';
                        default ${DEFAULT_TRUSTED_KEYS_FILE} next to this file if present, else no
                        signature check)
  --username USERNAME   registry user (else env ${ENV_USERNAME})
  --password-file FILE  password file (else env ${ENV_PASSWORD})
  --timeout TIMEOUT     seconds per request (default 30)
  --attempts ATTEMPTS   tries per request (default 3)
  --render              print what the appliance applies (a v1 List: six values ConfigMaps, with
                        trusted keys the Secret of them that Flux verifies with, the
                        OCIRepository (with spec.verify when keys are trusted) and the
                        Kustomization) instead of the release
  --json                machine-readable result on stdout
  --version             show program's version number and exit

exit codes: 0 resolved, 2 bad input, 3 refused (invalid, tampered, rollback, unsigned or not
signed by a trusted key), 75 registry unreachable and nothing cached, 1 anything else. Credentials come from ${ENV_USERNAME}/
${ENV_PASSWORD} or --username with --password-file, never argv.
`;

function cliCredentials(values) {
  if (values.username === undefined && values['password-file'] === undefined) return credentialsFromEnv();
  let password = process.env[ENV_PASSWORD] || '';
  if (values['password-file'] !== undefined) {
    try {
      password = fs.readFileSync(values['password-file'], 'utf8').trim();
    } catch (error) {
      throw new BadInput(`cannot read the password file ${values['password-file']}: ${error.code || error.message}`);
    }
  }
  const username = values.username || process.env[ENV_USERNAME] || '';
  if (!username || !password) throw new BadInput('incomplete registry credentials: a username and a password are both needed');
  return new Credentials(username, password);
}

/** --trusted-key files, else ALGA_TRUSTED_KEYS, else null (the default file, if any). */
function cliTrustedKeys(values) {
  const files = values['trusted-key']?.length ? values['trusted-key'] : (env(ENV_TRUSTED_KEYS) || '').split(':').filter(Boolean);
  return files.length > 0 ? loadTrustedKeys(files) : null;
}

function human(result) {
  const release = result.manifest;
  const lines = [
    `${result.reference} -> release ${release.version} (channel ${release.channel})`,
    `  manifest  ${result.registry}/${result.repository}@${result.manifestDigest}`,
    `  config    ${result.configDigest}`,
    `  bundle    oci://${release.config.repository}@${release.config.digest}`,
    `  images    ${Object.entries(imageReferences(release)).map(([k, v]) => `${k}=${v}`).join(', ')}`,
  ];
  if (result.signedBy !== null) lines.push(`  signed    by trusted key ${result.signedBy}`);
  if (result.statement !== null) {
    const st = result.statement;
    lines.push(`  statement sequence ${st.sequence}, issued ${st.issuedAt}, expires ${st.expiresAt} (signed by ${st.signedBy})`);
  }
  if (result.downgrade) lines.push('  note      an explicitly pinned downgrade');
  if (result.stale) lines.push('  STALE     the registry could not be reached; this is the last good release');
  return lines.join('\n');
}

function number(text, name) {
  const value = Number(text);
  if (!Number.isFinite(value)) throw new BadInput(`--${name}: '${text}' is not a number`);
  return value;
}

/** The command line; resolves to the exit code. */
export async function main(argv = process.argv.slice(2), { stdout = process.stdout, stderr = process.stderr } = {}) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        registry: { type: 'string' },
        repository: { type: 'string' },
        'installed-version': { type: 'string' },
        cache: { type: 'string' },
        'ca-file': { type: 'string' },
        'plain-http': { type: 'boolean' },
        'insecure-registry': { type: 'string', multiple: true },
        'token-realm': { type: 'string' },
        'token-service': { type: 'string' },
        'trusted-key': { type: 'string', multiple: true },
        username: { type: 'string' },
        'password-file': { type: 'string' },
        timeout: { type: 'string' },
        attempts: { type: 'string' },
        render: { type: 'boolean' },
        json: { type: 'boolean' },
        version: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    stderr.write(`${HELP.split('\n\n')[0]}\nrelease-consume.mjs: error: ${error.message}\n`);
    return EXIT_BAD_INPUT;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    stdout.write(HELP);
    return EXIT_OK;
  }
  if (values.version) {
    stdout.write(`release-consume.mjs ${VERSION}\n`);
    return EXIT_OK;
  }
  if (positionals.length !== 1) {
    stderr.write(`${HELP.split('\n\n')[0]}\nrelease-consume.mjs: error: exactly one REF is required\n`);
    return EXIT_BAD_INPUT;
  }
  let result;
  let output;
  try {
    const cacheFile = values.cache ?? env('ALGA_RELEASE_CACHE');
    result = await resolve(positionals[0], {
      registry: values.registry ?? env('ALGA_REGISTRY', DEFAULT_REGISTRY),
      repository: values.repository ?? env('ALGA_RELEASE_REPOSITORY', DEFAULT_REPOSITORY),
      installedVersion: values['installed-version'] ?? env('ALGA_INSTALLED_VERSION'),
      credentials: cliCredentials(values),
      cache: cacheFile ? new FileCache(cacheFile) : null,
      caFile: values['ca-file'] ?? env('ALGA_CA_FILE'),
      plainHttp: values['plain-http'] ?? ['1', 'true', 'yes', 'on'].includes((env('ALGA_PLAIN_HTTP') || '').toLowerCase()),
      insecureHosts: values['insecure-registry'] ?? [],
      timeout: values.timeout !== undefined ? number(values.timeout, 'timeout') : DEFAULT_TIMEOUT,
      attempts: values.attempts !== undefined ? number(values.attempts, 'attempts') : DEFAULT_ATTEMPTS,
      tokenRealm: values['token-realm'] ?? env('ALGA_TOKEN_REALM'),
      tokenService: values['token-service'] ?? env('ALGA_TOKEN_SERVICE'),
      trustedKeys: cliTrustedKeys(values),
    });
  } catch (error) {
    if (!(error instanceof ConsumeError)) throw error;
    stderr.write(`error: ${error.diagnostics()}\n`);
    if (values.json) stdout.write(`${JSON.stringify(error.toJSON(), null, 2)}\n`);
    return error.exitCode;
  }
  output = result;
  if (values.render) {
    try {
      // the keys the resolve trusted (already read once: no error left to throw here)
      const keys = configuredTrustedKeys(cliTrustedKeys(values));
      output = { apiVersion: 'v1', kind: 'List', items: renderAll(result.manifest, { trustedKeys: keys }) };
    } catch (error) {
      stderr.write(`error: ${error.message}\n`); // the release cannot be applied as it is
      return EXIT_REFUSED;
    }
  }
  if (result.stale) stderr.write('warning: the registry could not be reached; returning the cached release\n');
  if (values.json || values.render) stdout.write(`${JSON.stringify(output, null, 2)}\n`);
  else stdout.write(`${human(result)}\n`);
  return EXIT_OK;
}

const invokedAs = process.argv[1] ? pathToFileURL(fs.realpathSync(process.argv[1])).href : '';
if (invokedAs === import.meta.url || fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main();
}
