"""DSSE envelopes: the signed wrapper of an in-toto attestation, as cosign writes it.

The Dead Simple Signing Envelope (DSSE v1.0) signs a payload together with its type,
through the pre-authentication encoding (PAE)::

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

(``LEN`` in ASCII decimal, ``SP`` one space), so a signature over one payload type can
never be replayed as another. The envelope is JSON; ours has exactly the bytes cosign's
``dsse.WrapSigner`` marshals (go-securesystemslib's struct order)::

    {"payloadType":"application/vnd.in-toto+json","payload":"<base64>",
     "signatures":[{"keyid":"","sig":"<base64 of the DER ECDSA P-256 signature>"}]}

``keyid`` is empty, as cosign leaves it: go-securesystemslib skips a signature whose
non-empty key id differs from the verifier's own (an SSH-style fingerprint), so any other
value would make ``cosign verify-attestation`` ignore the signature. Signatures are
RFC 6979 (:meth:`steps.signing.keys.SigningKey.sign`): the same key and payload always
give the same envelope bytes.

Pure: nothing here reads a file, the environment, the clock or a registry. Reading
accepts standard and URL-safe base64 (DSSE allows both).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass

from steps.signing.keys import PublicKey, SigningKey

#: The payload type of an in-toto statement (what cosign checks before anything else).
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
#: An envelope larger than this is not one of ours (a release's is ~3 KiB).
MAX_ENVELOPE_SIZE = 1024 * 1024


class InvalidEnvelope(ValueError):
    """The bytes are not a DSSE envelope (the message says what is wrong)."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """The pre-authentication encoding: the bytes that are actually signed."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign_envelope(
    key: SigningKey, payload: bytes, payload_type: str = INTOTO_PAYLOAD_TYPE
) -> bytes:
    """The envelope of ``payload`` signed by ``key``, in cosign's exact byte form."""
    signature = key.sign(pae(payload_type, payload))
    document = {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
    }
    # No character here needs Go's HTML escaping: the type is ASCII without <>&, the
    # rest is base64.
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass(frozen=True)
class EnvelopeSignature:
    key_id: str
    signature: bytes


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope: the payload (decoded) and each signature (decoded)."""

    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...]

    def verified_by(self, keys: Sequence[PublicKey]) -> PublicKey | None:
        """The first key with a valid signature over this envelope's PAE, if any."""
        signed = pae(self.payload_type, self.payload)
        for key in keys:
            for found in self.signatures:
                if key.verifies(signed, found.signature):
                    return key
        return None


def parse_envelope(data: bytes) -> Envelope:
    """An envelope from its JSON bytes; :class:`InvalidEnvelope` when it is not one."""
    if len(data) > MAX_ENVELOPE_SIZE:
        raise InvalidEnvelope(f"{len(data)} bytes, over the {MAX_ENVELOPE_SIZE} byte limit")
    try:
        document = json.loads(data)
    except ValueError:
        raise InvalidEnvelope("not JSON") from None
    if not isinstance(document, dict):
        raise InvalidEnvelope("not a JSON object")
    payload_type = document.get("payloadType")
    if not isinstance(payload_type, str):
        raise InvalidEnvelope("no payloadType")
    payload = _b64(document.get("payload"), "payload")
    signatures = document.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise InvalidEnvelope("no signatures")
    parsed = []
    for entry in signatures:
        if not isinstance(entry, dict):
            raise InvalidEnvelope("a signature entry is not an object")
        key_id = entry.get("keyid", "")
        parsed.append(
            EnvelopeSignature(
                key_id if isinstance(key_id, str) else "", _b64(entry.get("sig"), "sig")
            )
        )
    return Envelope(payload_type, payload, tuple(parsed))


def _b64(value: object, field: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidEnvelope(f"no {field}")
    for altchars in (None, b"-_"):  # standard, then URL-safe
        try:
            return base64.b64decode(value.encode("ascii"), altchars=altchars, validate=True)
        except (binascii.Error, UnicodeEncodeError):
            continue
    raise InvalidEnvelope(f"{field} is not base64")
