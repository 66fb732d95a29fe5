"""Test-side signing in cosign's legacy format, with ``cryptography`` (not the library's code).

What ``cosign sign --key K --tlog-upload=false REF`` writes (checked against the real
cosign in tests/integration/test_consume_signatures.py): a simple-signing payload
blob, cosign's fixed config blob, and the OCI image manifest tagged
``sha256-<hex>.sig`` in the same repository with one layer per signature (appended
when the tag already exists), the base64 DER ECDSA signature in the layer
annotation ``dev.cosignproject.cosign/signature``.

The tests use it to make the states an attacker or a key rotation leaves behind
(a signature by another key, a moved signature, an altered payload); the consume
library has to judge them without having made them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from steps.oci import RegistryClient
from steps.oci import mediatypes as mt

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
# cosign's config blob for a signature manifest (an empty image config).
CONFIG = (
    b'{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":'
    b'"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}'
)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def key_id(key: ec.EllipticCurvePrivateKey) -> str:
    """``sha256:`` + 16 hex of the DER SubjectPublicKeyInfo (the consume library's key id)."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()[:16]


def payload(reference: str, digest: str, optional: dict[str, Any] | None = None) -> bytes:
    """The simple-signing payload, as cosign serialises it."""
    doc = {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": optional,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    """Base64 of the ASN.1 DER ECDSA P-256 signature over SHA-256 of ``data``."""
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def signature_tag(digest: str) -> str:
    return digest.replace(":", "-", 1) + ".sig"


def attach(
    client: RegistryClient,
    repository: str,
    digest: str,
    layers: list[tuple[bytes, str]],
    *,
    replace: bool = False,
) -> str:
    """Push ``(payload, base64 signature)`` layers under ``sha256-<hex>.sig`` of ``digest``
    (appended to what is there unless ``replace``); returns the signature manifest digest."""
    tag = signature_tag(digest)
    descriptors: list[dict[str, Any]] = []
    if not replace and client.head_manifest(repository, tag) is not None:
        descriptors = json.loads(client.get_manifest(repository, tag).data)["layers"]
    client.push_blob(repository, CONFIG)
    for body, signature in layers:
        client.push_blob(repository, body)
        descriptors.append(
            {
                "mediaType": SIMPLE_SIGNING,
                "size": len(body),
                "digest": sha256_digest(body),
                "annotations": {SIGNATURE_ANNOTATION: signature},
            }
        )
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": len(CONFIG),
            "digest": sha256_digest(CONFIG),
        },
        "layers": descriptors,
    }
    data = json.dumps(manifest, separators=(",", ":")).encode()
    return str(client.put_manifest(repository, tag, data, mt.OCI_MANIFEST))


def sign_artifact(
    client: RegistryClient,
    repository: str,
    digest: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    reference: str | None = None,
) -> str:
    """Sign ``digest`` as cosign does with ``key``; returns the signature manifest digest."""
    body = payload(reference or f"{client.registry}/{repository}", digest)
    return attach(client, repository, digest, [(body, sign(key, body))])


# -- channel statements (the consume library's format; see consume/README.md) ------------------

STATEMENT_ARTIFACT = "application/vnd.alga.appliance.channel-statement.v1"
STATEMENT_CONFIG = "application/vnd.alga.appliance.channel-statement.v1+json"


def statement(
    channel: str, version: str, digest: str, sequence: int, *, issued: str, expires: str
) -> dict[str, Any]:
    return {
        "channel": channel,
        "expiresAt": expires,
        "issuedAt": issued,
        "manifestDigest": digest,
        "schema": "alga.appliance.channel-statement/v1",
        "sequence": sequence,
        "version": version,
    }


def push_statement(
    client: RegistryClient,
    repository: str,
    doc: dict[str, Any],
    key: ec.EllipticCurvePrivateKey | None,
) -> str:
    """Push ``doc`` as ``statement.<channel>`` (signed with ``key`` unless None); its digest."""
    config = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": STATEMENT_ARTIFACT,
        "config": {
            "mediaType": STATEMENT_CONFIG,
            "digest": sha256_digest(config),
            "size": len(config),
        },
        "layers": [],
    }
    client.push_blob(repository, config)
    data = json.dumps(manifest, separators=(",", ":")).encode()
    digest = str(
        client.put_manifest(repository, f"statement.{doc['channel']}", data, mt.OCI_MANIFEST)
    )
    if key is not None:
        sign_artifact(client, repository, digest, key)
    return digest
