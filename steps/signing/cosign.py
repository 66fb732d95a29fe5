"""Signatures in cosign's format (the legacy "simple signing" tag scheme).

For an artifact ``HOST/REPO@sha256:HEX`` the signatures live in the same repository,
as one OCI image manifest tagged ``sha256-HEX.sig`` (sigstore's signature
specification, "tag-based discovery"). Each signature is one layer of that manifest:

- media type ``application/vnd.dev.cosign.simplesigning.v1+json``;
- blob: the simple-signing payload, exactly these bytes (what ``cosign sign`` writes)::

      {"critical":{"identity":{"docker-reference":"HOST/REPO"},
       "image":{"docker-manifest-digest":"sha256:HEX"},
       "type":"cosign container image signature"},"optional":null}

- annotation ``dev.cosignproject.cosign/signature``: base64 of the DER ECDSA P-256
  signature over SHA-256 of the payload bytes.

The manifest and its config blob mirror what cosign (go-containerregistry) writes, field
order included: config ``application/vnd.oci.image.config.v1+json`` with an empty
architecture/os, the zero ``created`` time, one ``history`` entry and one ``diff_ids``
entry per layer. With one signature, our manifest differs from the one ``cosign sign``
would push only in the signature value (cosign's ECDSA nonce is random; ours is
RFC 6979, so re-signing gives the same bytes).

Invariants: adding a signature appends a layer and keeps every existing layer as it
was (other keys' signatures, cosign's certificate or bundle annotations); re-signing a
digest with a key that already signed it changes nothing (no upload, no manifest
put); a signature is only counted for a digest when its payload names that digest and
it verifies under the key. Verification needs no transparency log (``cosign verify
--insecure-ignore-tlog``, Flux's static-key ``spec.verify``).

What this module does not do: decide which artifacts must be signed or which keys are
trusted (:mod:`steps.signing.gates`), or read key files (:mod:`steps.signing.keys`).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from steps.errors import (
    ConcurrentSignature,
    NotASignatureManifest,
    Refused,
    SigningKeyRequired,
)
from steps.oci import mediatypes as mt
from steps.oci.errors import InvalidReference, NotFound
from steps.oci.reference import Digest, Reference, check_repository
from steps.signing.keys import PublicKey, SigningKey, read_signing_key

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient

log = logging.getLogger("alga_release.signing")

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PAYLOAD_TYPE = "cosign container image signature"
OCI_IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
#: The zero time Go writes for an unset ``time.Time`` (cosign's signature images).
ZERO_TIME = "0001-01-01T00:00:00Z"
#: A payload blob larger than this is not a simple-signing payload (ours are ~250 bytes).
MAX_PAYLOAD_SIZE = 64 * 1024


# -- pure ------------------------------------------------------------------------------


def signature_tag(digest: Digest) -> str:
    """``sha256-<hex>.sig``: where cosign looks for the signatures of ``digest``."""
    return f"{digest.algorithm}-{digest.hex}.sig"


def simple_signing_payload(docker_reference: str, digest: Digest) -> bytes:
    """The payload cosign signs for ``docker_reference@digest`` (``HOST/REPO``), exact bytes."""
    return _go_json(
        {
            "critical": {
                "identity": {"docker-reference": docker_reference},
                "image": {"docker-manifest-digest": str(digest)},
                "type": PAYLOAD_TYPE,
            },
            "optional": None,
        }
    )


def payload_claims(payload: bytes) -> tuple[str | None, str | None]:
    """``(docker-reference, docker-manifest-digest)`` of a simple-signing payload, or
    ``(None, None)`` when it is not one (wrong type, not JSON)."""
    try:
        value = json.loads(payload)
        critical = value["critical"]
        if critical["type"] != PAYLOAD_TYPE:
            return None, None
        reference = critical["identity"]["docker-reference"]
        digest = critical["image"]["docker-manifest-digest"]
    except (ValueError, KeyError, TypeError):
        return None, None
    return (
        reference if isinstance(reference, str) else None,
        digest if isinstance(digest, str) else None,
    )


def signature_layer(payload: bytes, signature: bytes) -> dict[str, Any]:
    """The layer descriptor of one signature (Go's descriptor field order)."""
    return {
        "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
        "size": len(payload),
        "digest": str(Digest.of(payload)),
        "annotations": {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()},
    }


def signature_manifest(
    layers: Sequence[Mapping[str, Any]], *, media_type: str = mt.OCI_MANIFEST
) -> tuple[bytes, bytes]:
    """``(manifest bytes, config bytes)`` of the signature image holding ``layers`` (pure)."""
    config = _go_json(
        {
            "architecture": "",
            "created": ZERO_TIME,
            "history": [{"created": ZERO_TIME} for _ in layers],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [str(layer["digest"]) for layer in layers]},
            "config": {},
        }
    )
    manifest = _go_json(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": OCI_IMAGE_CONFIG,
                "size": len(config),
                "digest": str(Digest.of(config)),
            },
            "layers": [_go_descriptor(layer) for layer in layers],
        }
    )
    return manifest, config


_DESCRIPTOR_ORDER = (
    "mediaType",
    "size",
    "digest",
    "data",
    "urls",
    "annotations",
    "platform",
    "artifactType",
)


def _go_descriptor(layer: Mapping[str, Any]) -> dict[str, Any]:
    """A descriptor with go-containerregistry's field order (what it re-serialises)."""
    out = {key: layer[key] for key in _DESCRIPTOR_ORDER if key in layer}
    if isinstance(out.get("annotations"), Mapping):
        out["annotations"] = dict(sorted(out["annotations"].items()))
    return out


def _go_json(value: object) -> bytes:
    """Compact JSON as Go's ``encoding/json`` writes it: insertion order kept, UTF-8, and
    ``<``, ``>``, ``&`` escaped (they can only occur inside strings)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
        .encode()
    )


# -- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FoundSignature:
    """One layer of a ``.sig`` manifest: the payload (verified against its digest) and
    the signature bytes (None when the annotation is missing or not base64)."""

    payload: bytes
    signature: bytes | None

    def covers(self, digest: Digest) -> bool:
        """Does the payload name ``digest`` (and is it a cosign image signature)?"""
        return payload_claims(self.payload)[1] == str(digest)

    def verified_by(self, keys: Sequence[PublicKey]) -> PublicKey | None:
        if self.signature is None:
            return None
        for key in keys:
            if key.verifies(self.payload, self.signature):
                return key
        return None


@dataclass(frozen=True)
class SignatureImage:
    """The ``.sig`` manifest of an artifact as stored: its raw layers and digest."""

    digest: Digest
    media_type: str
    layers: tuple[dict[str, Any], ...]


def read_signature_image(
    client: RegistryClient, repository: str, digest: Digest
) -> SignatureImage | None:
    """The ``sha256-<hex>.sig`` manifest of ``repository@digest``; None when absent."""
    return read_cosign_image(client, repository, signature_tag(digest))


def read_cosign_image(client: RegistryClient, repository: str, tag: str) -> SignatureImage | None:
    """The cosign image (signatures ``.sig`` or attestations ``.att``) under ``tag``; None
    when absent. Anything else under that tag is :class:`NotASignatureManifest`."""
    try:
        manifest = client.get_manifest(repository, tag)
    except NotFound:
        return None
    where = f"{client.registry}/{repository}:{tag}"
    try:
        body = manifest.json()
    except ValueError:
        body = {}
    layers = body.get("layers")
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        raise NotASignatureManifest(
            f"{where} is not a cosign signature manifest (no layer list)",
            hint="something else was pushed under the signature tag; delete it (or push a "
            "cosign manifest there) before signing",
        )
    if manifest.media_type not in (mt.OCI_MANIFEST, mt.DOCKER_MANIFEST):
        raise NotASignatureManifest(
            f"{where} is a {manifest.media_type or 'manifest of unknown type'}, not an image "
            "manifest"
        )
    return SignatureImage(manifest.digest, manifest.media_type, tuple(layers))


def read_signatures(
    client: RegistryClient, repository: str, digest: Digest
) -> list[FoundSignature]:
    """Every simple-signing signature attached to ``repository@digest`` ([] when none)."""
    image = read_signature_image(client, repository, digest)
    if image is None:
        return []
    found = []
    for layer in image.layers:
        if layer.get("mediaType") != SIMPLE_SIGNING_MEDIA_TYPE:
            continue
        try:
            payload_digest = Digest.parse(str(layer.get("digest")))
            size = int(layer.get("size", -1))
        except (InvalidReference, ValueError, TypeError):  # a malformed layer counts for nothing
            continue
        if not 0 <= size <= MAX_PAYLOAD_SIZE:
            continue
        try:
            payload = client.get_blob(repository, payload_digest, size=size)
        except NotFound:
            continue
        found.append(FoundSignature(payload, _signature_bytes(layer)))
    return found


def _signature_bytes(layer: Mapping[str, Any]) -> bytes | None:
    annotations = layer.get("annotations")
    if not isinstance(annotations, Mapping):
        return None
    text = annotations.get(SIGNATURE_ANNOTATION)
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return None


@dataclass(frozen=True)
class SignatureStatus:
    """What the signatures of one artifact say, against a set of trusted keys."""

    reference: str  # HOST/REPO@sha256:...
    found: int  # simple-signing layers found
    signed_by: tuple[str, ...]  # key ids of trusted keys with a valid signature over it

    @property
    def signed(self) -> bool:
        return bool(self.signed_by)

    def describe(self) -> str:
        if self.signed_by:
            return "signed by " + ", ".join(self.signed_by)
        if self.found:
            return f"UNSIGNED (by any trusted key; {self.found} other signature(s))"
        return "UNSIGNED"

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "signed": self.signed,
            "signedBy": list(self.signed_by),
            "signatures": self.found,
            "status": self.describe(),
        }


def verify_signatures(
    client: RegistryClient,
    repository: str,
    digest: Digest,
    trusted_keys: Sequence[PublicKey],
) -> SignatureStatus:
    """Which trusted keys signed ``repository@digest`` (a signature over another digest,
    or that verifies under no trusted key, counts for nothing)."""
    signatures = read_signatures(client, repository, digest)
    signed_by: list[str] = []
    for found in signatures:
        if not found.covers(digest):
            continue
        key = found.verified_by(trusted_keys)
        if key is not None and key.key_id not in signed_by:
            signed_by.append(key.key_id)
    return SignatureStatus(
        f"{client.registry}/{repository}@{digest}", len(signatures), tuple(signed_by)
    )


# -- signing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SignResult:
    reference: str  # HOST/REPO@sha256:... that was signed
    key_id: str
    tag: str  # sha256-<hex>.sig
    signature_digest: Digest  # the .sig manifest's digest after signing
    status: Literal["signed", "unchanged"]

    def to_json(self) -> dict[str, str]:
        return {
            "reference": self.reference,
            "keyId": self.key_id,
            "signatureTag": self.tag,
            "signatureDigest": str(self.signature_digest),
            "status": self.status,
        }


class Signer:
    """Signs manifest digests with one key. ``None`` in place of a Signer means "do not
    sign" everywhere a publish function takes one."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key

    @property
    def key_id(self) -> str:
        return self.key.key_id

    @property
    def public(self) -> PublicKey:
        return self.key.public

    def __repr__(self) -> str:
        return f"Signer({self.key_id})"

    def sign(self, client: RegistryClient, repository: str, digest: Digest) -> SignResult:
        """Attach our signature of ``repository@digest`` (idempotent; see the module doc)."""
        check_repository(repository)
        reference = f"{client.registry}/{repository}@{digest}"
        tag = signature_tag(digest)
        payload = simple_signing_payload(f"{client.registry}/{repository}", digest)
        payload_digest = Digest.of(payload)
        image = read_signature_image(client, repository, digest)
        existing = list(image.layers) if image else []
        for layer in existing:
            if (
                layer.get("mediaType") == SIMPLE_SIGNING_MEDIA_TYPE
                and layer.get("digest") == str(payload_digest)
                and (signature := _signature_bytes(layer)) is not None
                and self.public.verifies(payload, signature)
            ):
                assert image is not None
                log.info("%s: already signed by %s", reference, self.key_id)
                return SignResult(reference, self.key_id, tag, image.digest, "unchanged")
        layers = [*existing, signature_layer(payload, self.key.sign(payload))]
        pushed = append_layer(
            client, repository, tag, image, layers, payload, what=f"signing {reference}"
        )
        log.info("%s: signed by %s (%d signature(s))", reference, self.key_id, len(layers))
        return SignResult(reference, self.key_id, tag, pushed, "signed")

    def sign_reference(self, client: RegistryClient, reference: str) -> SignResult:
        """Sign ``HOST/REPO@sha256:...`` (e.g. the control-plane reference a copy returns)."""
        ref = Reference.parse(reference)
        if ref.digest is None or ref.registry != client.registry:
            raise Refused(
                f"cannot sign {reference}: expected {client.registry}/<repository>@sha256:...",
                hint="sign the artifact in the registry the run publishes to, by digest",
            )
        return self.sign(client, ref.repository, ref.digest)


def append_layer(
    client: RegistryClient,
    repository: str,
    tag: str,
    image: SignatureImage | None,
    layers: Sequence[Mapping[str, Any]],
    blob: bytes,
    *,
    what: str,
) -> Digest:
    """Put the cosign image ``tag`` holding ``layers`` (``image``'s, plus one new layer
    whose ``blob`` is uploaded here), in ``image``'s media type; the new manifest's digest.

    Read back at once: a tag that changed meanwhile (another writer appending its own
    layer) is :class:`ConcurrentSignature` (transient: the re-run appends again).
    """
    media_type = image.media_type if image else mt.OCI_MANIFEST
    manifest, config = signature_manifest(layers, media_type=media_type)
    client.push_blob(repository, blob, digest=Digest.of(blob))
    client.push_blob(repository, config)
    pushed = client.put_manifest(repository, tag, manifest, media_type)
    now = client.head_manifest(repository, tag)
    if now is None or now.digest != pushed:
        raise ConcurrentSignature(
            f"{client.registry}/{repository}:{tag} changed while {what}",
            hint="another signer wrote at the same time; re-run (it is idempotent)",
        )
    return pushed


def load_signer(
    key_file: Path | None, password: bytes | None, *, required: bool = False, why: str = ""
) -> Signer | None:
    """The run's :class:`Signer` from ``--signing-key`` (None when no key is configured).

    Call it before anything is pushed: a key that cannot be read or opened, or a missing
    key when ``required`` (``why`` says who requires it, e.g. "ALGA_REQUIRE_SIGNING"),
    is bad input (exit 2) and the run pushes nothing.
    """
    if key_file is None:
        if required:
            raise SigningKeyRequired(
                "signing is required" + (f" ({why})" if why else "") + " but no signing key "
                "was given",
                hint="pass --signing-key FILE (or ALGA_SIGNING_KEY) with its password in "
                "ALGA_SIGNING_KEY_PASSWORD or --signing-key-password-file",
            )
        return None
    return Signer(read_signing_key(key_file, password))
