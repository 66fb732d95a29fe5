"""Attestations in cosign's format: DSSE envelopes under the ``sha256-<hex>.att`` tag.

``cosign attest --key`` (without the new bundle format) stores the attestations of
``HOST/REPO@sha256:HEX`` in the same repository, as one OCI image manifest tagged
``sha256-HEX.att``, built exactly like the ``.sig`` manifest
(:func:`steps.signing.cosign.signature_manifest`: the zero-time config, one history
entry and one diff id per layer). Each attestation is one layer:

- media type ``application/vnd.dsse.envelope.v1+json``;
- blob: the DSSE envelope's bytes (:mod:`steps.signing.dsse`), whose payload is the
  in-toto statement;
- annotations ``dev.cosignproject.cosign/signature`` (present and empty: the signature
  is inside the envelope) and ``predicateType`` (the statement's predicate type URI).

``cosign verify-attestation --key PUB --type T`` reads that tag, verifies each envelope
under the key, keeps the statements whose subject digest is the artifact's and whose
``predicateType`` is T's URI.

Invariants: attaching appends a layer and keeps every existing one as it was (another
key's attestation, an older run's); attaching a statement this key already attested
(the same envelope bytes, or an envelope over the same statement that verifies under the
key) changes nothing: no upload, no manifest put. The run id is part of the statement,
so a run with another run id attests again, beside the first, as ``cosign attest`` would.

What this module does not do: build statements (:mod:`steps.release.provenance`) or
decide what a release's provenance must say.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from steps.oci.errors import InvalidReference, NotFound
from steps.oci.reference import Digest, check_repository
from steps.signing.cosign import SIGNATURE_ANNOTATION, Signer, append_layer, read_cosign_image
from steps.signing.dsse import (
    MAX_ENVELOPE_SIZE,
    Envelope,
    InvalidEnvelope,
    parse_envelope,
    sign_envelope,
)
from steps.signing.keys import PublicKey

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient

log = logging.getLogger("alga_release.signing")

DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
PREDICATE_TYPE_ANNOTATION = "predicateType"


def attestation_tag(digest: Digest) -> str:
    """``sha256-<hex>.att``: where cosign looks for the attestations of ``digest``."""
    return f"{digest.algorithm}-{digest.hex}.att"


def attestation_layer(envelope: bytes, predicate_type: str) -> dict[str, Any]:
    """The layer descriptor of one attestation (what ``cosign attest`` writes)."""
    return {
        "mediaType": DSSE_MEDIA_TYPE,
        "size": len(envelope),
        "digest": str(Digest.of(envelope)),
        "annotations": {SIGNATURE_ANNOTATION: "", PREDICATE_TYPE_ANNOTATION: predicate_type},
    }


# -- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FoundAttestation:
    """One DSSE layer of an ``.att`` manifest: its envelope (None with ``problem`` when
    it cannot be read as one) and the ``predicateType`` its annotation claims."""

    layer_digest: str
    predicate_type: str | None
    envelope: Envelope | None
    problem: str | None = None

    def verified_by(self, keys: Sequence[PublicKey]) -> PublicKey | None:
        return self.envelope.verified_by(keys) if self.envelope is not None else None


def read_attestations(
    client: RegistryClient, repository: str, digest: Digest
) -> list[FoundAttestation]:
    """Every DSSE layer attached to ``repository@digest`` ([] when there is no ``.att``)."""
    image = read_cosign_image(client, repository, attestation_tag(digest))
    if image is None:
        return []
    return [read_layer(client, repository, layer) for layer in _dsse_layers(image.layers)]


def _dsse_layers(layers: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [layer for layer in layers if layer.get("mediaType") == DSSE_MEDIA_TYPE]


def read_layer(
    client: RegistryClient, repository: str, layer: Mapping[str, Any]
) -> FoundAttestation:
    """One DSSE layer's envelope (its blob checked against digest and size)."""
    annotations = layer.get("annotations")
    claimed = (
        annotations.get(PREDICATE_TYPE_ANNOTATION) if isinstance(annotations, Mapping) else None
    )
    claimed = claimed if isinstance(claimed, str) else None
    name = str(layer.get("digest"))
    try:
        layer_digest = Digest.parse(name)
        size = int(layer.get("size", -1))
    except (InvalidReference, ValueError, TypeError):
        return FoundAttestation(name, claimed, None, "a malformed layer descriptor")
    if not 0 <= size <= MAX_ENVELOPE_SIZE:
        return FoundAttestation(name, claimed, None, f"a layer of {size} bytes")
    try:
        blob = client.get_blob(repository, layer_digest, size=size)
    except NotFound:
        return FoundAttestation(name, claimed, None, "its blob is missing")
    try:
        return FoundAttestation(name, claimed, parse_envelope(blob))
    except InvalidEnvelope as exc:
        return FoundAttestation(name, claimed, None, f"not a DSSE envelope ({exc})")


# -- attaching -------------------------------------------------------------------------


@dataclass(frozen=True)
class AttestResult:
    reference: str  # HOST/REPO@sha256:... that was attested
    key_id: str
    tag: str  # sha256-<hex>.att
    attestation_digest: Digest  # the .att manifest's digest after attaching
    envelope_digest: Digest  # this attestation's layer (the envelope's digest)
    predicate_type: str
    status: Literal["attested", "unchanged"]

    def to_json(self) -> dict[str, str]:
        return {
            "reference": self.reference,
            "keyId": self.key_id,
            "attestationTag": self.tag,
            "attestationDigest": str(self.attestation_digest),
            "envelopeDigest": str(self.envelope_digest),
            "predicateType": self.predicate_type,
            "status": self.status,
        }


def attach_attestation(
    client: RegistryClient,
    signer: Signer,
    repository: str,
    digest: Digest,
    statement: bytes,
    predicate_type: str,
) -> AttestResult:
    """Attest ``statement`` (an in-toto statement's bytes) about ``repository@digest``
    with ``signer``'s key, the way ``cosign attest --key`` does (idempotent; see the
    module doc)."""
    check_repository(repository)
    reference = f"{client.registry}/{repository}@{digest}"
    tag = attestation_tag(digest)
    envelope = sign_envelope(signer.key, statement)
    layer = attestation_layer(envelope, predicate_type)
    envelope_digest = Digest.of(envelope)
    image = read_cosign_image(client, repository, tag)
    existing = list(image.layers) if image else []
    if image is not None and _already_attested(
        client, repository, existing, envelope_digest, statement, signer.public
    ):
        log.info("%s: provenance already attested by %s", reference, signer.key_id)
        return AttestResult(
            reference,
            signer.key_id,
            tag,
            image.digest,
            envelope_digest,
            predicate_type,
            "unchanged",
        )
    pushed = append_layer(
        client, repository, tag, image, [*existing, layer], envelope, what=f"attesting {reference}"
    )
    log.info("%s: provenance attested by %s", reference, signer.key_id)
    return AttestResult(
        reference, signer.key_id, tag, pushed, envelope_digest, predicate_type, "attested"
    )


def _already_attested(
    client: RegistryClient,
    repository: str,
    layers: Sequence[Mapping[str, Any]],
    envelope_digest: Digest,
    statement: bytes,
    key: PublicKey,
) -> bool:
    """Is ``statement`` attested by ``key`` already: our exact envelope (no read), or
    another envelope over the same statement that verifies under the key (cosign's
    signatures are randomised, ours are not)?"""
    dsse = _dsse_layers(layers)
    if any(layer.get("digest") == str(envelope_digest) for layer in dsse):
        return True
    for layer in dsse:
        envelope = read_layer(client, repository, layer).envelope
        if (
            envelope is not None
            and envelope.payload == statement
            and envelope.verified_by([key]) is not None
        ):
            return True
    return False
