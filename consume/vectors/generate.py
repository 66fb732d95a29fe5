#!/usr/bin/env python3
"""Write the conformance vectors in this folder (deterministic; stdlib only).

    python3 consume/vectors/generate.py          # rewrite every *.json here
    python3 consume/vectors/generate.py --check  # exit 1 if a file would change

Each vector is one resolve: its input, the exact HTTP exchanges a conforming
client makes (method, URL, the headers that matter, the headers that must be
absent) with the registry's answers, and the expected outcome. The answers are
modelled on CNCF distribution 2.8 and ghcr.io (header names and shapes as they
send them); the integration tests run the same paths against the real
registry. Both implementations replay every vector and must make exactly these
requests, in this order, and reach exactly this outcome.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import release_consume as rc  # noqa: E402

NOW = 1767225600  # 2026-01-01T00:00:00Z: every vector runs at this instant
REGISTRY = "registry.test"
REPO = rc.DEFAULT_REPOSITORY
BASE = f"https://{REGISTRY}/v2/{REPO}"
REALM = "https://auth.registry.test/token"
SCOPE = f"repository:{REPO}:pull"
TOKEN_URL = (
    f"{REALM}?service={REGISTRY}&scope=repository%3Anine-minds%2Falga-appliance-release%3Apull"
)
CHALLENGE = f'Bearer realm="{REALM}",service="{REGISTRY}",scope="{SCOPE}"'
GHCR_TOKEN_URL = "https://ghcr.io/token?service=ghcr.io&scope=repository%3Anine-minds%2Falga-appliance-release%3Apull"
TOKEN = "tok-anon-1"
USER, PASSWORD = "robot", "s3cret-password"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
DIST = {"Docker-Distribution-Api-Version": "registry/2.0", "X-Content-Type-Options": "nosniff"}
UNAUTHORIZED_BODY = (
    '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":'
    '[{"Type":"repository","Class":"","Name":"nine-minds/alga-appliance-release","Action":"pull"}]}]}\n'
)


def values(service: str) -> str:
    """Small profile values files holding every key path the appliance sets."""
    if service == "alga-core":
        return (
            "# alga-core, profile single-node\nbootstrap:\n  mode: fresh\nappUrl: "
            "https://alga.appliance.local\nhost: alga.appliance.local\ndomainSuffix: "
            "appliance.local\nsetup:\n  image:\n    repository: ghcr.io/nine-minds/alga-psa-ee\n "
            "   tag: latest\nserver:\n  replicaCount: 1\n  image:\n    repository: "
            "ghcr.io/nine-minds/alga-psa-ee\n    tag: latest\n"
        )
    if service in ("workflow-worker", "email-service"):
        return f"image:\n  repository: ghcr.io/nine-minds/{service}\n  tag: latest\n"
    if service == "temporal-worker":
        return (
            "image:\n  repository: ghcr.io/nine-minds/temporal-worker\n  tag: "
            "latest\npublicBaseUrl: https://alga.appliance.local\n"
        )
    return "replicaCount: 1\n"


def release(version: str = "1.2.0", **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": "alga.appliance.release/v1",
        "version": version,
        "channel": "nightly",
        "valuesProfile": "single-node",
        "images": {
            "algaCore": "eaec6253",
            "workflowWorker": "a2cbb43",
            "emailService": "61e4a00e",
            "temporalWorker": "a2cbb43",
        },
        "controlPlane": "ghcr.io/nine-minds/alga-appliance-control-plane@sha256:" + "c" * 64,
        "config": {
            "repository": "ghcr.io/nine-minds/alga-appliance-config",
            "tag": version,
            "version": version,
            "digest": "sha256:" + "b" * 64,
        },
        "charts": {name: "0.0.1-c3f2a1b09d" for name in rc.CHARTS},
        "profileValues": {f"{name}.single-node.yaml": values(name) for name in rc.SERVICES},
        "provenance": {
            "created": "2025-12-31T12:00:00Z",
            "source": "https://github.com/Nine-Minds/alga-psa",
            "revision": "0123456789abcdef0123456789abcdef01234567",
        },
    }
    doc.update(changes)
    return doc


def config_bytes(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2) + "\n").encode()


def manifest_bytes(
    config: bytes,
    *,
    media_type: str = rc.OCI_MANIFEST,
    config_type: str = rc.RELEASE_CONFIG,
    config_size: int | None = None,
    artifact_type: str | None = rc.RELEASE_ARTIFACT,
) -> bytes:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    doc["config"] = {
        "mediaType": config_type,
        "digest": rc.compute_digest(config),
        "size": len(config) if config_size is None else config_size,
    }
    doc["layers"] = [
        {"mediaType": "application/json", "digest": rc.compute_digest(config), "size": len(config)}
    ]
    doc["annotations"] = {"org.opencontainers.image.created": "2025-12-31T12:00:00Z"}
    return json.dumps(doc, indent=2).encode()


# -- exchanges -----------------------------------------------------------------------


def req(
    method: str, url: str, headers: dict[str, str] | None = None, absent: list[str] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"method": method, "url": url}
    if headers:
        out["headers"] = headers
    if absent:
        out["absentHeaders"] = absent
    return out


def res(
    status: int, headers: dict[str, str] | None = None, body: bytes | str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"status": status, "headers": {**(headers or {})}}
    if body is not None:
        text = body.decode() if isinstance(body, bytes) else body
        out["body"] = text
        out["headers"].setdefault("Content-Length", str(len(text.encode())))
    return out


def ex(request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    return {"request": request, "response": response}


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ACCEPT = {"Accept": rc.MANIFEST_ACCEPT}


def challenge_401(method: str, url: str) -> dict[str, Any]:
    return ex(
        req(method, url, ACCEPT, ["Authorization"]),
        res(
            401,
            {
                **DIST,
                "Content-Type": "application/json; charset=utf-8",
                "WWW-Authenticate": CHALLENGE,
            },
            None if method == "HEAD" else UNAUTHORIZED_BODY,
        ),
    )


def token_exchange(
    *, url: str = TOKEN_URL, auth: str | None = None, token: str = TOKEN
) -> dict[str, Any]:
    headers = {"Accept": "application/json"}
    if auth:
        headers["Authorization"] = auth
    body = json.dumps(
        {
            "token": token,
            "access_token": token,
            "expires_in": 300,
            "issued_at": "2026-01-01T00:00:00Z",
        }
    )
    return ex(
        req("GET", url, headers, None if auth else ["Authorization"]),
        res(200, {"Content-Type": "application/json"}, body),
    )


def manifest_exchange(
    ref: str,
    manifest: bytes,
    *,
    digest: str | None = "auto",
    media_type: str = rc.OCI_MANIFEST,
    token: str | None = TOKEN,
    status: int = 200,
    registry_base: str = BASE,
) -> dict[str, Any]:
    headers = {**DIST, "Content-Type": media_type}
    if digest == "auto":
        digest = rc.compute_digest(manifest)
    if digest is not None:
        headers["Docker-Content-Digest"] = digest
    return ex(
        req(
            "GET",
            f"{registry_base}/manifests/{ref}",
            {**ACCEPT, **(bearer(token) if token else {})},
        ),
        res(status, headers, manifest),
    )


def blob_exchange(
    config: bytes,
    *,
    digest: str | None = None,
    token: str | None = TOKEN,
    body: bytes | None = None,
    registry_base: str = BASE,
) -> dict[str, Any]:
    digest = digest or rc.compute_digest(config)
    return ex(
        req(
            "GET",
            f"{registry_base}/blobs/{digest}",
            bearer(token) if token else None,
            None if token else ["Authorization"],
        ),
        res(
            200,
            {**DIST, "Content-Type": "application/octet-stream", "Docker-Content-Digest": digest},
            config if body is None else body,
        ),
    )


def head_exchange(ref: str, manifest: bytes, *, token: str = TOKEN) -> dict[str, Any]:
    digest = rc.compute_digest(manifest)
    return ex(
        req("HEAD", f"{BASE}/manifests/{ref}", {**ACCEPT, **bearer(token)}),
        res(
            200,
            {
                **DIST,
                "Content-Type": rc.OCI_MANIFEST,
                "Docker-Content-Digest": digest,
                "Content-Length": str(len(manifest)),
            },
        ),
    )


def cold(ref: str, manifest: bytes, config: bytes, **kw: Any) -> list[dict[str, Any]]:
    """The cold path against a token registry: challenge, token, manifest, blob."""
    return [
        challenge_401("GET", f"{BASE}/manifests/{ref}"),
        token_exchange(),
        manifest_exchange(ref, manifest, **kw),
        blob_exchange(config),
    ]


def cache_doc(
    entries: dict[str, tuple[bytes, bytes]],
    *,
    token_expires: float | None = NOW + 200,
    signatures: dict[str, tuple[bytes, str]] | None = None,
    statements: dict[str, tuple[bytes, bytes, tuple[bytes, str]]] | None = None,
    sequences: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A cache holding ``ref -> (manifest, config)`` (and the signature that vouched for
    it, ``ref -> (payload, signature)``) and, optionally, a live token."""
    releases: dict[str, Any] = {
        ref: {
            "manifestDigest": rc.compute_digest(manifest),
            "mediaType": rc.OCI_MANIFEST,
            "manifest": base64.b64encode(manifest).decode(),
            "config": base64.b64encode(config).decode(),
            "resolvedAt": "2025-12-31T23:00:00Z",
        }
        for ref, (manifest, config) in entries.items()
    }
    for ref, (payload, signature) in (signatures or {}).items():
        releases[ref]["signature"] = {
            "payload": base64.b64encode(payload).decode(),
            "signature": signature,
        }
    for ref, (manifest, config, (payload, signature)) in (statements or {}).items():
        releases[ref]["statement"] = {
            "digest": rc.compute_digest(manifest),
            "manifest": base64.b64encode(manifest).decode(),
            "config": base64.b64encode(config).decode(),
            "signature": {"payload": base64.b64encode(payload).decode(), "signature": signature},
        }
    doc: dict[str, Any] = {
        "schema": rc.CACHE_SCHEMA,
        "releases": {f"{REGISTRY}/{REPO}": releases},
        "challenges": {REGISTRY: {"scheme": "bearer", "realm": REALM, "service": REGISTRY}},
        "tokens": {},
    }
    if sequences is not None:
        doc["sequences"] = {f"{REGISTRY}/{REPO}": sequences}
    if token_expires is not None:
        doc["tokens"][f"{REALM}|{REGISTRY}|{SCOPE}|"] = {"token": TOKEN, "expiresAt": token_expires}
    return doc


# -- outcomes -------------------------------------------------------------------------


def resolved(
    ref: str,
    manifest: bytes,
    config: bytes,
    *,
    requests: int,
    media_type: str = rc.OCI_MANIFEST,
    pinned: bool = False,
    downgrade: bool = False,
    cached: bool = False,
    stale: bool = False,
    signed: str | None = None,
    statement: dict[str, Any] | None = None,
) -> dict[str, Any]:
    doc = json.loads(config)
    return {
        "outcome": "resolved",
        "result": {
            "reference": ref,
            "registry": REGISTRY,
            "repository": REPO,
            "manifestDigest": rc.compute_digest(manifest),
            "mediaType": media_type,
            "configDigest": rc.compute_digest(config),
            "version": doc["version"],
            "channel": doc["channel"],
            "pinned": pinned,
            "downgrade": downgrade,
            "cached": cached,
            "stale": stale,
            "requests": requests,
            "signedBy": signed,
            "statement": statement,
        },
    }


FAMILY = {
    "DigestMismatch": ("RepositoryError", 3),
    "SizeLimitExceeded": ("RepositoryError", 3),
    "UnexpectedMediaType": ("RepositoryError", 3),
    "InvalidManifest": ("RepositoryError", 3),
    "IncompleteRelease": ("RepositoryError", 3),
    "InvalidRelease": ("RepositoryError", 3),
    "RollbackRefused": ("RepositoryError", 3),
    "Unsigned": ("RepositoryError", 3),
    "UntrustedSignature": ("RepositoryError", 3),
    "SignatureDigestMismatch": ("RepositoryError", 3),
    "BadSignature": ("RepositoryError", 3),
    "StatementMissing": ("RepositoryError", 3),
    "InvalidStatement": ("RepositoryError", 3),
    "StatementDigestMismatch": ("RepositoryError", 3),
    "StatementReplay": ("RepositoryError", 3),
    "StatementExpired": ("RepositoryError", 3),
    "RegistryUnreachable": ("DownloadError", 75),
    "AuthError": ("DownloadError", 1),
    "NotFound": ("DownloadError", 1),
    "DownloadError": ("DownloadError", 1),
    "BadInput": ("BadInput", 2),
}


def failed(
    error: str, problems: list[str] | None = None, **fields: Any
) -> dict[str, Any]:
    """An expected error; ``fields`` are more keys its JSON form must hold, with these values."""
    family, code = FAMILY[error]
    out: dict[str, Any] = {"outcome": "error", "error": error, "family": family, "exitCode": code}
    if problems is not None:
        out["problems"] = problems
    if fields:
        out["fields"] = fields
    return out


def rendered(
    expect: dict[str, Any], config: bytes, keys: tuple[TestKey, ...] = ()
) -> dict[str, Any]:
    """``expect`` plus what the appliance applies for this release (``expect.rendered``).

    The Flux verification is written out here literally, not by the library: with trusted
    keys, the Secret ``alga-appliance-trusted-keys`` in flux-system (each key's PEM under
    ``sha256-<16 hex of its key id>.pub``), placed before the OCIRepository, whose
    ``spec.verify`` is cosign with that Secret; without keys neither.
    """
    items = rc.render_all(json.loads(config))  # ConfigMaps, OCIRepository, Kustomization
    if keys:
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "alga-appliance-trusted-keys", "namespace": "flux-system"},
            "type": "Opaque",
            "data": {
                f"sha256-{hashlib.sha256(k.public.der).hexdigest()[:16]}.pub": base64.b64encode(
                    k.pem().encode()
                ).decode()
                for k in keys
            },
        }
        source = items[-2]
        assert source["kind"] == "OCIRepository" and "verify" not in source["spec"]
        source["spec"]["verify"] = {
            "provider": "cosign",
            "secretRef": {"name": "alga-appliance-trusted-keys"},
        }
        items.insert(-2, secret)
    return {**expect, "rendered": items}


def inp(ref: str, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ref": ref,
        "registry": kw.pop("registry", REGISTRY),
        "repository": REPO,
        "installedVersion": kw.pop("installed", None),
        "credentials": kw.pop("credentials", None),
        "tokenRealm": kw.pop("token_realm", None),
        "attempts": kw.pop("attempts", 3),
        "now": NOW,
        "cache": kw.pop("cache", None),
        "trustedKeys": [key.pem() for key in kw.pop("trusted", ())],
    }
    assert not kw, kw
    return out


# -- signatures (cosign's format) with fixed test keys -------------------------------------
#
# Deterministic ECDSA P-256 signing for the vectors only: the nonce is a hash of the key
# and the message (fine for throw-away test keys, never for real ones). The curve
# arithmetic is the library's own; tests/unit/test_consume_signatures.py checks every
# signature here with the `cryptography` package, an independent implementation.


def _scalar_mult(k: int, point: tuple[int, int]) -> tuple[int, int]:
    acc = rc._INFINITY
    for bit in range(k.bit_length() - 1, -1, -1):
        acc = rc._double(acc)
        if (k >> bit) & 1:
            acc = rc._add(acc, (*point, 1))
    x, y, z = acc
    zinv = pow(z, -1, rc._P256_P)
    return x * zinv * zinv % rc._P256_P, y * zinv * zinv * zinv % rc._P256_P


def _der_int(value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 8) // 8, "big")  # a leading 0 if the top bit is set
    return b"\x02" + bytes([len(raw)]) + raw


class TestKey:
    """A fixed P-256 key pair derived from a name."""

    def __init__(self, name: str) -> None:
        self.d = int.from_bytes(hashlib.sha256(name.encode()).digest(), "big") % rc._P256_N
        self.public = rc.TrustedKey(_scalar_mult(self.d, rc._P256_G))

    def pem(self) -> str:
        return self.public.pem()

    def sign(self, message: bytes) -> str:
        """The base64 DER signature of SHA-256(message), as cosign's annotation holds it."""
        n = rc._P256_N
        e = int.from_bytes(hashlib.sha256(message).digest(), "big")
        seed = self.d.to_bytes(32, "big") + hashlib.sha256(message).digest()
        k = int.from_bytes(hashlib.sha256(seed).digest(), "big") % (n - 1) + 1
        r = _scalar_mult(k, rc._P256_G)[0] % n
        s = pow(k, -1, n) * (e + r * self.d) % n
        body = _der_int(r) + _der_int(s)
        return base64.b64encode(b"\x30" + bytes([len(body)]) + body).decode()


KEY_A = TestKey("alga consume vectors: release key A")
KEY_B = TestKey("alga consume vectors: release key B (the successor)")
KEY_X = TestKey("alga consume vectors: someone else's key")
SIGNED_AS = f"{REGISTRY}/{REPO}"


def sig_manifest(layers: list[tuple[bytes, str | None]]) -> bytes:
    """A ``.sig`` manifest as cosign writes it: one simple-signing layer per (payload, sig)."""
    config = (
        b'{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":'
        b'"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}'
    )
    descriptors = []
    for payload, signature in layers:
        descriptor: dict[str, Any] = {
            "mediaType": rc.SIMPLE_SIGNING,
            "size": len(payload),
            "digest": rc.compute_digest(payload),
        }
        if signature is not None:
            descriptor["annotations"] = {rc.SIGNATURE_ANNOTATION: signature}
        descriptors.append(descriptor)
    doc = {
        "schemaVersion": 2,
        "mediaType": rc.OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": len(config),
            "digest": rc.compute_digest(config),
        },
        "layers": descriptors,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def signed_by(key: TestKey, digest: str) -> tuple[bytes, str]:
    payload = rc.simple_signing_payload(SIGNED_AS, digest)
    return payload, key.sign(payload)


def signature_exchanges(
    digest: str,
    layers: list[tuple[bytes, str | None]],
    *,
    served: list[bytes] | None = None,
) -> list[dict[str, Any]]:
    """The ``.sig`` manifest GET, then one blob GET per payload (``served`` overrides bodies)."""
    sig = sig_manifest(layers)
    out = [manifest_exchange(rc.signature_tag(digest), sig)]
    for index, (payload, _signature) in enumerate(layers):
        body = payload if served is None else served[index]
        out.append(blob_exchange(payload, body=body))
    return out


def statement_doc(
    digest: str,
    *,
    version: str = "1.2.0",
    sequence: int = 7,
    channel: str = "nightly",
    issued: str = "2025-12-31T12:00:00Z",
    expires: str = "2026-01-30T12:00:00Z",
) -> dict[str, Any]:
    return {
        "channel": channel,
        "expiresAt": expires,
        "issuedAt": issued,
        "manifestDigest": digest,
        "schema": rc.STATEMENT_SCHEMA,
        "sequence": sequence,
        "version": version,
    }


def statement_manifest(config: bytes) -> bytes:
    """A channel statement artifact: the statement JSON as config, no layers."""
    doc = {
        "schemaVersion": 2,
        "mediaType": rc.OCI_MANIFEST,
        "artifactType": rc.STATEMENT_ARTIFACT,
        "config": {
            "mediaType": rc.STATEMENT_CONFIG,
            "digest": rc.compute_digest(config),
            "size": len(config),
        },
        "layers": [],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


class Statement:
    """A signed channel statement: its bytes, its signature and the exchanges serving it."""

    def __init__(self, doc: dict[str, Any], key: TestKey | None = None) -> None:
        self.doc = doc
        self.config = rc.statement_bytes(doc)
        self.manifest = statement_manifest(self.config)
        self.digest = rc.compute_digest(self.manifest)
        self.signature = signed_by(key or KEY_A, self.digest)

    def cached(self) -> tuple[bytes, bytes, tuple[bytes, str]]:
        return self.manifest, self.config, self.signature

    def exchanges(self, *, by_digest: bool = False, signed: bool = True) -> list[dict[str, Any]]:
        ref = self.digest if by_digest else rc.statement_tag(self.doc["channel"])
        if not signed:
            return [manifest_exchange(ref, self.manifest), no_signature(self.digest)]
        return [
            manifest_exchange(ref, self.manifest),
            *signature_exchanges(self.digest, [self.signature]),
            blob_exchange(self.config),
        ]

    def result(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "sequence": self.doc["sequence"],
            "issuedAt": self.doc["issuedAt"],
            "expiresAt": self.doc["expiresAt"],
            "signedBy": KEY_A.public.key_id,
        }


def no_signature(digest: str) -> dict[str, Any]:
    return ex(
        req("GET", f"{BASE}/manifests/{rc.signature_tag(digest)}", {**ACCEPT, **bearer()}),
        res(404, DIST, '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'),
    )


# -- the vectors ------------------------------------------------------------------------


def vectors() -> dict[str, dict[str, Any]]:
    cfg = config_bytes(release())
    man = manifest_bytes(cfg)
    dig = rc.compute_digest(man)
    old_cfg = config_bytes(release("1.1.0"))
    old_man = manifest_bytes(old_cfg)
    new_cfg = config_bytes(release("1.3.0"))
    new_man = manifest_bytes(new_cfg)
    out: dict[str, dict[str, Any]] = {}

    def add(
        name: str,
        description: str,
        input_: dict[str, Any],
        exchanges: list[dict[str, Any]],
        expect: dict[str, Any],
        cache_after: dict[str, str | None] | None = None,
    ) -> None:
        if cache_after is not None:
            expect = {**expect, "cacheAfter": cache_after}
        out[name] = {
            "name": name,
            "description": description,
            "input": input_,
            "exchanges": exchanges,
            "expect": expect,
        }

    # -- resolving --------------------------------------------------------------------------
    add(
        "ok-401-then-token",
        "Cold resolve of a channel on a token-auth registry: the manifest GET answers 401 with a "
        "Bearer challenge, the client asks the challenge's realm for an anonymous pull token, "
        "then fetches the manifest and the config blob with it. The installed 1.1.0 is older, so "
        "this is an upgrade.",
        inp("nightly", installed="1.1.0"),
        cold("nightly", man, cfg),
        rendered(resolved("nightly", man, cfg, requests=4), cfg),
        cache_after={"nightly": dig},
    )
    ghcr_cdn = (
        "https://pkg-containers.githubusercontent.com/ghcr1/blobs/"
        f"sha256:{rc.compute_digest(cfg)[7:]}?sig=abc"
    )
    add(
        "ok-ghcr-known-realm",
        "ghcr.io: the token realm is built in (https://ghcr.io/token, as the appliance's current "
        "code uses), so a cold resolve is token, manifest, blob; the blob answers 307 to another "
        "host and the client follows it without Authorization.",
        inp("stable", registry="ghcr.io"),
        [
            token_exchange(url=GHCR_TOKEN_URL),
            manifest_exchange("stable", man, registry_base=f"https://ghcr.io/v2/{REPO}"),
            ex(
                req("GET", f"https://ghcr.io/v2/{REPO}/blobs/{rc.compute_digest(cfg)}", bearer()),
                res(307, {"Location": ghcr_cdn}, ""),
            ),
            ex(
                req("GET", ghcr_cdn, None, ["Authorization"]),
                res(200, {"Content-Type": "application/octet-stream"}, cfg),
            ),
        ],
        {
            **resolved("stable", man, cfg, requests=4),
            "result": {**resolved("stable", man, cfg, requests=4)["result"], "registry": "ghcr.io"},
        },
    )
    add(
        "ok-with-credentials",
        "With credentials the token request carries Basic auth to the realm (and only there); "
        "the registry gets the Bearer token.",
        inp("nightly", credentials={"username": USER, "password": PASSWORD}),
        [
            challenge_401("GET", f"{BASE}/manifests/nightly"),
            token_exchange(auth=BASIC),
            manifest_exchange("nightly", man),
            blob_exchange(cfg),
        ],
        resolved("nightly", man, cfg, requests=4),
    )
    add(
        "ok-basic-auth-registry",
        "A registry that answers with a Basic challenge gets the credentials directly; no token "
        "service.",
        inp("nightly", credentials={"username": USER, "password": PASSWORD}),
        [
            ex(
                req("GET", f"{BASE}/manifests/nightly", ACCEPT, ["Authorization"]),
                res(401, {**DIST, "WWW-Authenticate": 'Basic realm="registry"'}, UNAUTHORIZED_BODY),
            ),
            manifest_exchange("nightly", man, token=None)
            | {
                "request": req(
                    "GET", f"{BASE}/manifests/nightly", {**ACCEPT, "Authorization": BASIC}
                )
            },
            ex(
                req("GET", f"{BASE}/blobs/{rc.compute_digest(cfg)}", {"Authorization": BASIC}),
                res(200, {"Content-Type": "application/octet-stream"}, cfg),
            ),
        ],
        resolved("nightly", man, cfg, requests=3),
    )
    add(
        "ok-challenge-without-realm",
        "A 401 without a usable challenge: the client falls back to https://<host>/token, as "
        "ghcr serves it.",
        inp("nightly"),
        [
            ex(
                req("GET", f"{BASE}/manifests/nightly", ACCEPT, ["Authorization"]),
                res(401, DIST, UNAUTHORIZED_BODY),
            ),
            token_exchange(
                url=f"https://{REGISTRY}/token?service={REGISTRY}&scope=repository%3Anine-minds%2Falga-appliance-release%3Apull"
            ),
            manifest_exchange("nightly", man),
            blob_exchange(cfg),
        ],
        resolved("nightly", man, cfg, requests=4),
    )
    add(
        "ok-version-pin",
        "Resolving a version tag: the tag must hold that very version.",
        inp("1.2.0"),
        cold("1.2.0", man, cfg),
        resolved("1.2.0", man, cfg, requests=4, pinned=True),
    )
    add(
        "ok-digest-pin",
        "Resolving a manifest digest: the bytes must hash to it.",
        inp(dig),
        cold(dig, man, cfg),
        resolved(dig, man, cfg, requests=4, pinned=True),
    )
    docker_man = manifest_bytes(cfg, media_type=rc.DOCKER_MANIFEST, artifact_type=None)
    add(
        "ok-docker-v2-manifest",
        "A Docker v2 image manifest is accepted too (the appliance's consumer accepts it).",
        inp("nightly"),
        cold("nightly", docker_man, cfg, media_type=rc.DOCKER_MANIFEST),
        resolved("nightly", docker_man, cfg, requests=4, media_type=rc.DOCKER_MANIFEST),
    )
    cdn = f"https://cdn.registry.test/blobs/{rc.compute_digest(cfg)}?expires=1767229200&sig=x"
    add(
        "ok-redirect-cross-host",
        "The blob GET answers 307 to another host; the client follows it and does not forward "
        "Authorization.",
        inp("nightly"),
        [
            *cold("nightly", man, cfg)[:3],
            ex(
                req("GET", f"{BASE}/blobs/{rc.compute_digest(cfg)}", bearer()),
                res(307, {**DIST, "Location": cdn}, ""),
            ),
            ex(
                req("GET", cdn, None, ["Authorization"]),
                res(200, {"Content-Type": "application/octet-stream"}, cfg),
            ),
        ],
        resolved("nightly", man, cfg, requests=5),
    )
    same = f"/v2/{REPO}/blobs/{rc.compute_digest(cfg)}?redirected=1"
    add(
        "ok-redirect-same-host",
        "A relative redirect on the same origin keeps Authorization.",
        inp("nightly"),
        [
            *cold("nightly", man, cfg)[:3],
            ex(
                req("GET", f"{BASE}/blobs/{rc.compute_digest(cfg)}", bearer()),
                res(307, {"Location": same}, ""),
            ),
            ex(req("GET", f"https://{REGISTRY}{same}", bearer()), res(200, {}, cfg)),
        ],
        resolved("nightly", man, cfg, requests=5),
    )
    add(
        "ok-retry-503",
        "A 503 and a dropped connection are retried (bounded); the third try succeeds.",
        inp("nightly"),
        [
            *cold("nightly", man, cfg)[:2],
            ex(req("GET", f"{BASE}/manifests/nightly", bearer()), res(503, DIST, '{"errors":[]}')),
            ex(req("GET", f"{BASE}/manifests/nightly", bearer()), {"error": "reset"}),
            manifest_exchange("nightly", man),
            blob_exchange(cfg),
        ],
        resolved("nightly", man, cfg, requests=6),
    )

    # -- the repository is wrong ----------------------------------------------------------------
    tampered = bytearray(cfg)
    tampered[len(tampered) // 2] ^= 0x01
    add(
        "tampered-config-blob",
        "The config blob's bytes do not match its digest (same size, one bit flipped).",
        inp("nightly"),
        [*cold("nightly", man, cfg)[:3], blob_exchange(cfg, body=bytes(tampered))],
        failed("DigestMismatch"),
        cache_after={"nightly": None},
    )
    tampered_man = man.replace(b'"size": ', b'"size":  ', 1)
    add(
        "tampered-manifest",
        "The manifest's bytes do not match the Docker-Content-Digest the registry sent with them.",
        inp("nightly"),
        [*cold("nightly", man, cfg)[:2], manifest_exchange("nightly", tampered_man, digest=dig)],
        failed("DigestMismatch"),
    )
    add(
        "tampered-manifest-by-digest",
        "Resolving by digest, the registry serves other bytes (and no digest header): refused.",
        inp(dig),
        [*cold(dig, man, cfg)[:2], manifest_exchange(dig, tampered_man, digest=None)],
        failed("DigestMismatch"),
    )
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": rc.OCI_INDEX,
            "manifests": [{"mediaType": rc.OCI_MANIFEST, "digest": dig, "size": len(man)}],
        },
        indent=2,
    ).encode()
    add(
        "index-instead-of-manifest",
        "The channel names an OCI image index: refused (the appliance needs one image manifest).",
        inp("nightly"),
        [
            *cold("nightly", man, cfg)[:2],
            manifest_exchange("nightly", index, media_type=rc.OCI_INDEX),
        ],
        failed("UnexpectedMediaType"),
    )
    mlist = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": rc.DOCKER_MANIFEST_LIST,
            "manifests": [{"mediaType": rc.DOCKER_MANIFEST, "digest": dig, "size": len(man)}],
        },
        indent=2,
    ).encode()
    add(
        "docker-manifest-list",
        "A Docker manifest list is an index too: refused.",
        inp("nightly"),
        [
            *cold("nightly", man, cfg)[:2],
            manifest_exchange("nightly", mlist, media_type=rc.DOCKER_MANIFEST_LIST),
        ],
        failed("UnexpectedMediaType"),
    )
    add(
        "wrong-config-media-type",
        "An image manifest whose config is not the release JSON (an OCI 1.1 artifact with an "
        "empty config).",
        inp("nightly"),
        [
            *cold("nightly", man, cfg)[:2],
            manifest_exchange(
                "nightly", manifest_bytes(cfg, config_type="application/vnd.oci.empty.v1+json")
            ),
        ],
        failed("UnexpectedMediaType"),
    )
    add(
        "wrong-artifact-type",
        "An artifactType other than the release's.",
        inp("nightly"),
        [
            *cold("nightly", man, cfg)[:2],
            manifest_exchange(
                "nightly",
                manifest_bytes(cfg, artifact_type="application/vnd.cncf.helm.config.v1+json"),
            ),
        ],
        failed("UnexpectedMediaType"),
    )
    big = 5 * 1024 * 1024
    add(
        "oversize-manifest",
        "A manifest body above the 4 MiB cap (no Content-Length): the client stops reading and "
        "refuses.",
        inp("nightly"),
        [
            *cold("nightly", man, cfg)[:2],
            ex(
                req("GET", f"{BASE}/manifests/nightly", {**ACCEPT, **bearer()}),
                {
                    "status": 200,
                    "headers": {**DIST, "Content-Type": rc.OCI_MANIFEST},
                    "bodyFill": {"char": " ", "length": big},
                },
            ),
        ],
        failed("SizeLimitExceeded"),
    )
    add(
        "oversize-config-descriptor",
        "The manifest announces a config blob above the cap: refused before downloading it.",
        inp("nightly"),
        [
            *cold("nightly", man, cfg)[:2],
            manifest_exchange("nightly", manifest_bytes(cfg, config_size=big)),
        ],
        failed("SizeLimitExceeded"),
    )
    add(
        "oversize-blob",
        "The blob is served with a body above the cap although the manifest announced a small one.",
        inp("nightly"),
        [
            *cold("nightly", man, cfg)[:3],
            ex(
                req("GET", f"{BASE}/blobs/{rc.compute_digest(cfg)}", bearer()),
                {
                    "status": 200,
                    "headers": {"Content-Length": str(big)},
                    "bodyFill": {"char": "{", "length": big},
                },
            ),
        ],
        failed("SizeLimitExceeded"),
    )
    add(
        "blob-longer-than-descriptor",
        "The blob is served with more bytes than the manifest's descriptor says.",
        inp("nightly"),
        [*cold("nightly", man, cfg)[:3], blob_exchange(cfg, body=cfg + b"  ")],
        failed("DigestMismatch"),
    )
    missing = release()
    del missing["images"]["temporalWorker"]
    del missing["provenance"]
    missing["extra"] = True
    m_cfg = config_bytes(missing)
    m_man = manifest_bytes(m_cfg)
    add(
        "missing-required-fields",
        "The release JSON lacks images.temporalWorker and provenance and has an unknown key.",
        inp("nightly"),
        cold("nightly", m_man, m_cfg),
        failed("InvalidRelease", rc.release_problems(missing)),
        cache_after={"nightly": None},
    )
    broken = release()
    broken["profileValues"]["email-service.single-node.yaml"] = "image:\n  repository: x\n"
    broken["config"]["tag"] = "latest"
    b_cfg = config_bytes(broken)
    b_man = manifest_bytes(b_cfg)
    add(
        "contract-violation",
        "Schema-valid, but config.tag is not the version and email-service's values lack "
        "image.tag (the appliance's setter would fail).",
        inp("nightly"),
        cold("nightly", b_man, b_cfg),
        failed("InvalidRelease", rc.release_problems(broken)),
    )
    hidden = release()
    core = "alga-core.single-node.yaml"
    hidden["profileValues"][core] = values("alga-core").replace(
        "setup:\n  image:\n", "setup:\n  image:  # the appliance sets the tag\n"
    )
    hidden["profileValues"]["email-service.single-node.yaml"] = (
        "image: \n  repository: ghcr.io/nine-minds/email-service\n  tag: latest\n"
    )
    updater_problems = [
        "/profileValues/alga-core.single-node.yaml: has setup.image.tag where the in-cluster "
        "updater cannot set it (each parent key must be a line ending in ':')",
        "/profileValues/email-service.single-node.yaml: has image.tag where the in-cluster "
        "updater cannot set it (each parent key must be a line ending in ':')",
    ]
    assert rc.release_problems(hidden) == updater_problems, rc.release_problems(hidden)
    u_cfg = config_bytes(hidden)
    u_man = manifest_bytes(u_cfg)
    add(
        "updater-cannot-set",
        "Install-time setter and YAML are fine, but the in-cluster updater (which sets the image "
        "tags on every upgrade) takes only a line ending in ':' as a parent key: 'image:  # "
        "note' and 'image: ' (a trailing space) hide the tag from it, so every upgrade would "
        "fail. Refused as invalid.",
        inp("nightly"),
        cold("nightly", u_man, u_cfg),
        failed("InvalidRelease", updater_problems),
    )
    nj_cfg = b'{"schema": "alga.appliance.release/v1",'
    nj_man = manifest_bytes(nj_cfg)
    add(
        "release-not-json",
        "The config blob verifies against its digest but is not JSON.",
        inp("nightly"),
        cold("nightly", nj_man, nj_cfg),
        failed("InvalidRelease", ["(root): the config blob is not JSON"]),
    )
    add(
        "version-tag-mismatch",
        "The tag 1.3.0 holds release 1.2.0.",
        inp("1.3.0"),
        cold("1.3.0", man, cfg),
        failed("InvalidRelease", ["/version: the tag 1.3.0 holds release version 1.2.0"]),
    )
    add(
        "config-blob-missing",
        "The manifest's config blob is not in the registry.",
        inp("nightly"),
        [
            *cold("nightly", man, cfg)[:3],
            ex(
                req("GET", f"{BASE}/blobs/{rc.compute_digest(cfg)}", bearer()),
                res(
                    404,
                    DIST,
                    '{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}',
                ),
            ),
        ],
        failed("IncompleteRelease"),
    )

    # -- anti-rollback -------------------------------------------------------------------------
    add(
        "refused-downgrade",
        "The installed release is 1.3.0 and the channel points at 1.2.0: refused, and not cached.",
        inp("nightly", installed="1.3.0"),
        cold("nightly", man, cfg),
        failed("RollbackRefused"),
        cache_after={"nightly": None},
    )
    add(
        "refused-downgrade-prerelease",
        "1.2.0-rc.1 ranks below 1.2.0 (SemVer precedence): a channel may not go there.",
        inp("nightly", installed="1.2.0"),
        cold(
            "nightly",
            manifest_bytes(config_bytes(release("1.2.0-rc.1"))),
            config_bytes(release("1.2.0-rc.1")),
        ),
        failed("RollbackRefused"),
    )
    add(
        "pinned-downgrade-version",
        "An explicit version pin may install an older release; the result says downgrade.",
        inp("1.2.0", installed="1.3.0"),
        cold("1.2.0", man, cfg),
        resolved("1.2.0", man, cfg, requests=4, pinned=True, downgrade=True),
    )
    add(
        "pinned-downgrade-digest",
        "An explicit digest pin may install an older release; the result says downgrade.",
        inp(dig, installed="1.3.0"),
        cold(dig, man, cfg),
        resolved(dig, man, cfg, requests=4, pinned=True, downgrade=True),
    )

    # -- the download failed -------------------------------------------------------------------
    down = [
        ex(req("GET", f"{BASE}/manifests/nightly", ACCEPT), {"error": "connect"}) for _ in range(3)
    ]
    add(
        "registry-down-no-cache",
        "Connections are refused on every bounded attempt and nothing is cached: exit 75.",
        inp("nightly"),
        down,
        failed("RegistryUnreachable"),
    )
    down_warm = [
        ex(req("HEAD", f"{BASE}/manifests/nightly", {**ACCEPT, **bearer()}), {"error": "connect"})
        for _ in range(3)
    ]
    add(
        "registry-down-with-cache",
        "The registry cannot be reached; the last good release comes from the cache, flagged "
        "stale.",
        inp("nightly", cache=cache_doc({"nightly": (man, cfg)})),
        down_warm,
        resolved("nightly", man, cfg, requests=3, cached=True, stale=True),
        cache_after={"nightly": dig},
    )
    add(
        "registry-5xx-with-cache",
        "The registry answers 503 on every attempt; the cached release comes back stale.",
        inp("nightly", cache=cache_doc({"nightly": (man, cfg)})),
        [ex(req("HEAD", f"{BASE}/manifests/nightly", bearer()), res(503, DIST)) for _ in range(3)],
        resolved("nightly", man, cfg, requests=3, cached=True, stale=True),
    )
    add(
        "tls-failure-not-retried",
        "A TLS verification failure is not retried (and with no cache it fails: exit 75).",
        inp("nightly"),
        [ex(req("GET", f"{BASE}/manifests/nightly"), {"error": "tls"})],
        failed("RegistryUnreachable"),
    )
    add(
        "token-refused",
        "The token service refuses an anonymous pull token (a private package).",
        inp("nightly"),
        [
            challenge_401("GET", f"{BASE}/manifests/nightly"),
            ex(
                req("GET", TOKEN_URL, None, ["Authorization"]),
                res(
                    401,
                    {"Content-Type": "application/json", "WWW-Authenticate": 'Basic realm="auth"'},
                    '{"error":"unauthorized"}',
                ),
            ),
        ],
        failed("AuthError"),
    )
    add(
        "manifest-not-found",
        "No such tag.",
        inp("1.9.0"),
        [
            challenge_401("GET", f"{BASE}/manifests/1.9.0"),
            token_exchange(),
            ex(
                req("GET", f"{BASE}/manifests/1.9.0", bearer()),
                res(
                    404,
                    DIST,
                    '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}',
                ),
            ),
        ],
        failed("NotFound"),
    )
    add(
        "redirect-to-plain-http",
        "A blob redirect to plain HTTP on a non-loopback host is refused.",
        inp("nightly"),
        [
            *cold("nightly", man, cfg)[:3],
            ex(
                req("GET", f"{BASE}/blobs/{rc.compute_digest(cfg)}", bearer()),
                res(307, {"Location": "http://cdn.registry.test/blob"}, ""),
            ),
        ],
        failed("DownloadError"),
    )

    short = ex(
        req("GET", f"{BASE}/blobs/{rc.compute_digest(cfg)}", bearer()),
        # Close-delimited (no Content-Length), cut off: the connection closed mid-body.
        {"status": 200, "headers": {**DIST}, "body": cfg[: len(cfg) // 2].decode()},
    )
    add(
        "truncated-blob-retried",
        "The config blob arrives cut short (no Content-Length, the connection closed): a lost "
        "connection, retried, not tampering; the second try is whole.",
        inp("nightly"),
        [*cold("nightly", man, cfg)[:3], short, blob_exchange(cfg)],
        resolved("nightly", man, cfg, requests=5),
    )
    add(
        "truncated-blob-gives-up",
        "The config blob is cut short on every bounded attempt: transient (exit 75), never "
        "accepted and never reported as tampering.",
        inp("nightly"),
        [*cold("nightly", man, cfg)[:3], short, short, short],
        failed("RegistryUnreachable"),
        cache_after={"nightly": None},
    )

    # -- the cache, warm -----------------------------------------------------------------------
    add(
        "warm-unchanged",
        "Warm, with a cached token and release: the channel has not moved, so one manifest HEAD "
        "and no blob download.",
        inp("nightly", cache=cache_doc({"nightly": (man, cfg)})),
        [head_exchange("nightly", man)],
        resolved("nightly", man, cfg, requests=1, cached=True),
        cache_after={"nightly": dig},
    )
    add(
        "warm-moved",
        "Warm, the channel has moved: HEAD, then the new manifest by the digest the HEAD named, "
        "then its blob.",
        inp("nightly", installed="1.2.0", cache=cache_doc({"nightly": (man, cfg)})),
        [
            head_exchange("nightly", new_man),
            manifest_exchange(rc.compute_digest(new_man), new_man),
            blob_exchange(new_cfg),
        ],
        resolved("nightly", new_man, new_cfg, requests=3),
        cache_after={"nightly": rc.compute_digest(new_man)},
    )
    add(
        "warm-token-expired",
        "Warm, the cached token expired: the cached challenge gets a new token up front, then "
        "the HEAD.",
        inp("nightly", cache=cache_doc({"nightly": (man, cfg)}, token_expires=NOW - 10)),
        [token_exchange(), head_exchange("nightly", man)],
        resolved("nightly", man, cfg, requests=2, cached=True),
    )
    add(
        "warm-digest-from-cache",
        "A digest already in the cache needs no request at all (content-addressed).",
        inp(dig, cache=cache_doc({"nightly": (man, cfg)})),
        [],
        resolved(dig, man, cfg, requests=0, pinned=True, cached=True),
    )
    add(
        "warm-refused-downgrade",
        "Warm and unmoved, but the installed version is newer than the cached channel release: "
        "refused.",
        inp("nightly", installed="1.3.0", cache=cache_doc({"nightly": (old_man, old_cfg)})),
        [head_exchange("nightly", old_man)],
        failed("RollbackRefused"),
    )

    # -- signatures: the release manifest signed in cosign's format ------------------------------
    a_id, b_id = KEY_A.public.key_id, KEY_B.public.key_id
    pin = cold("1.2.0", man, cfg)[:3]  # a version pin: no channel statement is involved
    good = signed_by(KEY_A, dig)
    add(
        "signed-ok",
        "With a trusted key, the release manifest's cosign signature (the manifest tagged "
        "sha256-<hex>.sig, one simple-signing layer) is fetched and verified before the release "
        "JSON is read; the result names the key.",
        inp("1.2.0", trusted=[KEY_A]),
        [*pin, *signature_exchanges(dig, [good]), blob_exchange(cfg)],
        rendered(
            resolved("1.2.0", man, cfg, requests=6, pinned=True, signed=a_id), cfg, (KEY_A,)
        ),
        cache_after={"1.2.0": dig},
    )
    add(
        "signed-by-second-trusted-key",
        "Two trusted keys (a rotation): a release signed by the second one is accepted, and "
        "Flux is given both keys to verify with.",
        inp("1.2.0", trusted=[KEY_A, KEY_B]),
        [*pin, *signature_exchanges(dig, [signed_by(KEY_B, dig)]), blob_exchange(cfg)],
        rendered(
            resolved("1.2.0", man, cfg, requests=6, pinned=True, signed=b_id),
            cfg,
            (KEY_A, KEY_B),
        ),
    )
    add(
        "signed-second-layer-trusted",
        "Several signatures (cosign appends one per key): an untrusted one is skipped, the "
        "trusted one accepts.",
        inp("1.2.0", trusted=[KEY_A]),
        [*pin, *signature_exchanges(dig, [signed_by(KEY_X, dig), good]), blob_exchange(cfg)],
        resolved("1.2.0", man, cfg, requests=7, pinned=True, signed=a_id),
    )
    add(
        "unsigned-missing-sig",
        "No sha256-<hex>.sig manifest: unsigned, refused before the release JSON is read.",
        inp("1.2.0", trusted=[KEY_A]),
        [*pin, no_signature(dig)],
        failed("Unsigned"),
        cache_after={"1.2.0": None},
    )
    add(
        "unsigned-no-signature-layer",
        "A sha256-<hex>.sig manifest without a simple-signing layer is no signature.",
        inp("1.2.0", trusted=[KEY_A]),
        [*pin, manifest_exchange(rc.signature_tag(dig), sig_manifest([]))],
        failed("Unsigned"),
    )
    add(
        "signed-untrusted-key",
        "Signed, but by a key that is not trusted: refused.",
        inp("1.2.0", trusted=[KEY_A]),
        [*pin, *signature_exchanges(dig, [signed_by(KEY_X, dig)])],
        failed("UntrustedSignature"),
    )
    old_dig = rc.compute_digest(old_man)
    add(
        "signed-other-digest",
        "The trusted key's signature of another release (1.1.0) placed under this one's .sig "
        "tag: the payload names another digest, refused.",
        inp("1.2.0", trusted=[KEY_A]),
        [*pin, *signature_exchanges(dig, [signed_by(KEY_A, old_dig)])],
        failed("SignatureDigestMismatch"),
    )
    payload, signature = good
    altered = payload.replace(b"cosign container", b"cosign Container")
    add(
        "signed-tampered-payload",
        "The registry serves other bytes for the signature payload than its descriptor names "
        "(altered after signing): refused.",
        inp("1.2.0", trusted=[KEY_A]),
        [*pin, *signature_exchanges(dig, [good], served=[altered])],
        failed("BadSignature"),
    )
    add(
        "signed-altered-payload-repushed",
        "A payload altered and re-pushed with a matching descriptor keeps a signature that no "
        "trusted key verifies: cryptographically the same as another key's, so refused as "
        "untrusted.",
        inp("1.2.0", trusted=[KEY_A]),
        [*pin, *signature_exchanges(dig, [(altered, signature)])],
        failed("UntrustedSignature"),
    )
    add(
        "signed-malformed-signature",
        "A signature annotation that is not an ASN.1 DER ECDSA signature: refused.",
        inp("1.2.0", trusted=[KEY_A]),
        [*pin, *signature_exchanges(dig, [(payload, base64.b64encode(b"0" * 70).decode())])],
        failed("BadSignature"),
    )
    signed_cache = cache_doc({"1.2.0": (man, cfg)}, signatures={"1.2.0": good})
    add(
        "signed-warm-unchanged",
        "Warm and unmoved: the cached signature is re-verified under the trusted keys offline; "
        "one HEAD, as without signatures.",
        inp("1.2.0", trusted=[KEY_A], cache=signed_cache),
        [head_exchange("1.2.0", man)],
        resolved("1.2.0", man, cfg, requests=1, pinned=True, cached=True, signed=a_id),
    )
    add(
        "signed-warm-signature-not-cached",
        "Warm and unmoved, but cached before keys were configured: the signature is fetched.",
        inp("1.2.0", trusted=[KEY_A], cache=cache_doc({"1.2.0": (man, cfg)})),
        [head_exchange("1.2.0", man), *signature_exchanges(dig, [good])],
        resolved("1.2.0", man, cfg, requests=3, pinned=True, cached=True, signed=a_id),
    )
    add(
        "signed-warm-key-rotated",
        "The cached signature is by key A, now only key B is trusted: the signatures are "
        "fetched again and B's (added by the rotation) accepts.",
        inp("1.2.0", trusted=[KEY_B], cache=signed_cache),
        [head_exchange("1.2.0", man), *signature_exchanges(dig, [good, signed_by(KEY_B, dig)])],
        resolved("1.2.0", man, cfg, requests=4, pinned=True, cached=True, signed=b_id),
    )
    add(
        "signed-digest-from-cache",
        "A digest in the cache with its signature: no request at all, the signature re-verified.",
        inp(dig, trusted=[KEY_A], cache=signed_cache),
        [],
        resolved(dig, man, cfg, requests=0, pinned=True, cached=True, signed=a_id),
    )
    head_down = [
        ex(req("HEAD", f"{BASE}/manifests/1.2.0", {**ACCEPT, **bearer()}), {"error": "connect"})
        for _ in range(3)
    ]
    add(
        "signed-stale-vouched",
        "The registry is down; the cached release's cached signature still verifies: stale.",
        inp("1.2.0", trusted=[KEY_A], cache=signed_cache),
        head_down,
        resolved("1.2.0", man, cfg, requests=3, pinned=True, cached=True, stale=True, signed=a_id),
    )
    add(
        "signed-stale-unvouched",
        "The registry is down and the cached release has no signature cached: nothing can be "
        "vouched for, so it fails as unreachable (exit 75).",
        inp("1.2.0", trusted=[KEY_A], cache=cache_doc({"1.2.0": (man, cfg)})),
        head_down,
        failed("RegistryUnreachable"),
    )

    # -- channel statements: a channel resolve with trusted keys ---------------------------------
    old_sig = signed_by(KEY_A, old_dig)
    release_signed = [*signature_exchanges(dig, [good]), blob_exchange(cfg)]
    current = Statement(statement_doc(dig))
    add(
        "statement-ok",
        "A channel with trusted keys: after the release (signed) the channel's statement "
        "(statement.nightly, its own cosign signature, its config blob) names the resolved "
        "digest, a sequence not below the last one seen, and is not expired.",
        inp("nightly", trusted=[KEY_A]),
        [*cold("nightly", man, cfg)[:3], *release_signed, *current.exchanges()],
        resolved("nightly", man, cfg, requests=10, signed=a_id, statement=current.result()),
        cache_after={"nightly": dig},
    )
    add(
        "statement-missing",
        "No statement.nightly: a channel nobody vouches for is refused while keys are trusted.",
        inp("nightly", trusted=[KEY_A]),
        [
            *cold("nightly", man, cfg)[:3],
            *release_signed,
            ex(
                req("GET", f"{BASE}/manifests/statement.nightly", {**ACCEPT, **bearer()}),
                res(404, DIST, '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'),
            ),
        ],
        failed("StatementMissing"),
        cache_after={"nightly": None},
    )
    add(
        "statement-unsigned",
        "A statement without a signature is no statement.",
        inp("nightly", trusted=[KEY_A]),
        [*cold("nightly", man, cfg)[:3], *release_signed, *current.exchanges(signed=False)],
        failed("Unsigned"),
    )
    old_signed = [*signature_exchanges(old_dig, [old_sig]), blob_exchange(old_cfg)]
    add(
        "statement-digest-mismatch",
        "Someone with push rights but no key re-tags nightly at an older, validly signed release "
        "(1.1.0) on a fresh appliance (no installed version): the statement still names 1.2.0, "
        "refused.",
        inp("nightly", trusted=[KEY_A]),
        [*cold("nightly", old_man, old_cfg)[:3], *old_signed, *current.exchanges()],
        failed("StatementDigestMismatch"),
    )
    replayed = Statement(statement_doc(old_dig, version="1.1.0", sequence=5))
    add(
        "statement-replay",
        "The older release re-tagged together with its own older statement (sequence 5, still "
        "unexpired): this appliance has seen sequence 7, refused as a replay.",
        inp("nightly", trusted=[KEY_A], cache=cache_doc({}, sequences={"nightly": 7})),
        [manifest_exchange("nightly", old_man), *old_signed, *replayed.exchanges()],
        failed("StatementReplay"),
    )
    other = Statement(statement_doc(dig, channel="stable"))
    add(
        "statement-other-channel",
        "stable's statement copied to statement.nightly (same digest): it names another "
        "channel, refused.",
        inp("nightly", trusted=[KEY_A]),
        [
            *cold("nightly", man, cfg)[:3],
            *release_signed,
            manifest_exchange("statement.nightly", other.manifest),
            *other.exchanges()[1:],
        ],
        failed("InvalidStatement"),
    )
    expired = Statement(
        statement_doc(dig, issued="2025-11-01T00:00:00Z", expires="2025-12-01T00:00:00Z")
    )
    add(
        "statement-expired",
        "The statement expired (a frozen channel): refused with its date.",
        inp("nightly", trusted=[KEY_A]),
        [*cold("nightly", man, cfg)[:3], *release_signed, *expired.exchanges()],
        failed(
            "StatementExpired",
            message="channel statement expired on 2025-12-01T00:00:00Z",
            expiresAt="2025-12-01T00:00:00Z",
            cachedRelease=None,
        ),
    )
    warm = cache_doc(
        {"nightly": (man, cfg)},
        signatures={"nightly": good},
        statements={"nightly": current.cached()},
        sequences={"nightly": 7},
    )
    add(
        "statement-warm-unchanged",
        "Warm: the channel and its statement are unmoved (two HEADs); the cached statement and "
        "signatures are re-verified offline and the expiry checked against the clock.",
        inp("nightly", trusted=[KEY_A], cache=warm),
        [head_exchange("nightly", man), head_exchange("statement.nightly", current.manifest)],
        resolved(
            "nightly", man, cfg, requests=2, cached=True, signed=a_id, statement=current.result()
        ),
    )
    frozen = cache_doc(
        {"nightly": (man, cfg)},
        signatures={"nightly": good},
        statements={"nightly": expired.cached()},
        sequences={"nightly": 7},
    )
    add(
        "statement-expired-stays-on-cached",
        "Warm, and the registry keeps serving the same channel and statement past its expiry "
        "(a freeze): refused, and the refusal names the cached release the appliance stays on.",
        inp("nightly", trusted=[KEY_A], cache=frozen),
        [head_exchange("nightly", man), head_exchange("statement.nightly", expired.manifest)],
        failed(
            "StatementExpired",
            message=(
                "channel statement expired on 2025-12-01T00:00:00Z; staying on release 1.2.0 "
                f"({dig})"
            ),
            expiresAt="2025-12-01T00:00:00Z",
            cachedRelease={"version": "1.2.0", "manifestDigest": dig},
        ),
    )
    refreshed = Statement(
        statement_doc(
            dig, sequence=8, issued="2025-12-31T23:00:00Z", expires="2026-01-30T23:00:00Z"
        )
    )
    add(
        "statement-warm-refreshed",
        "Warm, the publisher refreshed the statement (sequence 8, a later expiry): the HEAD "
        "names a new digest, the new statement is fetched by it and accepted.",
        inp("nightly", trusted=[KEY_A], cache=frozen),
        [
            head_exchange("nightly", man),
            head_exchange("statement.nightly", refreshed.manifest),
            *refreshed.exchanges(by_digest=True),
        ],
        resolved(
            "nightly", man, cfg, requests=6, cached=True, signed=a_id, statement=refreshed.result()
        ),
    )
    return out


README_HEAD = """\
# Conformance vectors for the consume library

Generated by `python3 consume/vectors/generate.py` (do not edit by hand; `--check` fails
when a file is stale, and `tests/unit/test_consume_vectors.py` runs it). Both twins replay
every file: `tests/unit/test_consume_vectors.py` (Python) and
`consume/test/vectors.test.mjs` (`node --test`).

## Format

```json
{
  "name": "ok-401-then-token",
  "description": "what the vector shows",
  "input": {
    "ref": "nightly", "registry": "registry.test",
    "repository": "nine-minds/alga-appliance-release",
    "installedVersion": null, "credentials": null | {"username": "...", "password": "..."},
    "tokenRealm": null, "attempts": 3,
    "now": 1767225600,
    "cache": null | {"schema": "alga.appliance.release-cache/v1", ...},
    "trustedKeys": [] | ["-----BEGIN PUBLIC KEY-----\\n..."]
  },
  "exchanges": [
    {"request": {"method": "GET", "url": "https://...",
                 "headers": {"Accept": "..."}, "absentHeaders": ["Authorization"]},
     "response": {"status": 200, "headers": {...}, "body": "exact text"}}
  ],
  "expect": {"outcome": "resolved", "result": {...}, "cacheAfter": {"nightly": "sha256:..."},
             "rendered": [...]}
}
```

- A replaying transport answers request *n* with exchange *n*. The method and URL must be
  equal, every header in `request.headers` must be sent with exactly that value (names are
  case-insensitive; headers not listed are not checked) and no header in `absentHeaders`
  may be sent. A request beyond the last exchange, or an exchange left unused, fails the
  vector: the list is the exact conversation, so it also pins the number of requests.
- `response.body` is the exact body text (UTF-8); `bodyFill: {"char", "length"}` stands for
  a large body (only `limit + 1` bytes are handed over, as the real transports read no
  more); `response.error` is `connect`, `reset` or `timeout` (retryable) or `tls` (not):
  no response arrives and the transport raises `RegistryUnreachable`.
- For a `HEAD`, or a `Content-Length` above the caller's limit, the body is empty.
- The clock is `input.now` (token expiry, cache timestamps); sleeps take no time.
- The library runs with an in-memory cache holding `input.cache` (empty when null), and
  with exactly `input.trustedKeys` as its trusted keys (PEM; an empty list: no signature
  check, whatever key file may sit next to the library).
- Signatures are cosign's legacy format made with three fixed test keys (A, B and a
  stranger's X; deterministic nonces, test keys only); `tests/unit/test_consume_signatures.py`
  checks them with `cryptography`.
- `expect.outcome` is `resolved` (every key of `expect.result` equal to the result's) or
  `error` (`error` is the class name, `family` `RepositoryError` / `DownloadError` /
  `BadInput`, `exitCode` the CLI's exit code, and for `InvalidRelease` the exact
  `problems`; `fields`, when given, are more keys the error's JSON form must hold with
  exactly those values, such as `StatementExpired`'s `message`, `expiresAt` and
  `cachedRelease`). `expect.cacheAfter` maps a reference to the manifest digest the cache must
  hold for it afterwards (`null`: none). `expect.rendered`, when given, is exactly what the
  twin renders for the resolved release with `input.trustedKeys` (`render_all(manifest,
  trusted_keys=...)` / `renderAll(manifest, {trustedKeys})`): with keys, the Secret
  `flux-system/alga-appliance-trusted-keys` of them and the OCIRepository's `spec.verify`.

Hosts: `registry.test` (token auth, realm `https://auth.registry.test/token`),
`cdn.registry.test` (blob redirects), and `ghcr.io` with `pkg-containers.githubusercontent.com`
for the built-in ghcr realm. Headers and error bodies are shaped as CNCF distribution 2.8 and
ghcr.io send them; the integration tests run the same paths against the real registry.

## The vectors

| vector | outcome | requests | what it shows |
| --- | --- | --- | --- |
"""


def readme(written: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, vector in written.items():
        expect = vector["expect"]
        outcome = "resolved" if expect["outcome"] == "resolved" else expect["error"]
        if expect.get("outcome") == "resolved" and expect["result"].get("stale"):
            outcome = "resolved (stale)"
        description = vector["description"].replace("|", "\\|")
        rows.append(f"| `{name}` | {outcome} | {len(vector['exchanges'])} | {description} |")
    return README_HEAD + "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    written = vectors()
    files = {
        f"{name}.json": json.dumps(v, indent=2, ensure_ascii=False) + "\n"
        for name, v in written.items()
    }
    files["README.md"] = readme(written)
    for filename, text in files.items():
        path = HERE / filename
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    extra = sorted(p.name for p in HERE.glob("*.json") if p.stem not in written)
    if check and (stale or extra):
        print(f"stale: {stale}; not generated: {extra}", file=sys.stderr)
        return 1
    if not check:
        for name in extra:
            (HERE / name).unlink()
        print(f"wrote {len(written)} vectors to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
