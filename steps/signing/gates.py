"""Which pieces of a release must be signed, by whom, and the gate that refuses otherwise.

A release names its pieces by digest: the release manifest itself (the digest the
channel tag resolves to), the Flux bundle (``config.digest``), each chart
(``chartDigests``, when recorded) and the control-plane image (``controlPlane``). The
app images are built elsewhere and are not signed by this key.

- :func:`release_targets` (pure): the ``(kind, name, repository, digest)`` of each piece.
- :func:`signature_report`: each piece's :class:`~steps.signing.cosign.SignatureStatus`
  against the trusted keys ("signed by <key id>" or "UNSIGNED"), for ``inspect`` and
  ``verify``. Pieces in another registry are reported as not checked.
- :func:`require_signed`: the channel gate (``channel move``, ``promote``, ``rollback``):
  refuses (:class:`~steps.errors.UnsignedRelease`, exit 3) a release whose
  manifest or bundle has no valid signature by a trusted key. Charts and the control
  plane are reported, not gated here: the appliance's Flux verifies the charts itself.

This module does not read keys or the environment and never writes to the registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from steps.errors import UnsignedRelease
from steps.names import chart_repository, release_repository
from steps.oci.errors import InvalidReference
from steps.oci.reference import Digest, Reference
from steps.signing.cosign import SignatureStatus, Signer, verify_signatures
from steps.signing.keys import PublicKey

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient

#: The pieces the channel gate requires a trusted signature on.
GATED_KINDS: tuple[str, ...] = ("release", "bundle")


@dataclass(frozen=True)
class Target:
    """One signed piece of a release, by digest."""

    kind: str  # release | bundle | chart | control-plane
    name: str
    registry: str
    repository: str
    digest: Digest

    @property
    def reference(self) -> str:
        return f"{self.registry}/{self.repository}@{self.digest}"


@dataclass(frozen=True)
class PieceSignature:
    """A piece and what its signatures say (``status`` None: not checked, with why)."""

    target: Target | None
    kind: str
    name: str
    status: SignatureStatus | None
    detail: str = ""

    @property
    def signed(self) -> bool:
        return self.status is not None and self.status.signed

    def describe(self) -> str:
        if self.status is None:
            return f"not checked ({self.detail})"
        return self.status.describe()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "reference": self.target.reference if self.target else None,
            "signed": self.signed if self.status is not None else None,
            "signedBy": list(self.status.signed_by) if self.status else [],
            "status": self.describe(),
        }


def trusted_keys(signer: Signer | None, extra: Sequence[PublicKey] = ()) -> list[PublicKey]:
    """The keys a gate accepts: the run's own signing key, then ``extra`` (rotation:
    ``--trusted-key`` for the previous key), without duplicates."""
    keys: dict[str, PublicKey] = {}
    if signer is not None:
        keys[signer.key_id] = signer.public
    for key in extra:
        keys.setdefault(key.key_id, key)
    return list(keys.values())


def release_targets(
    registry: str, namespace: str, digest: Digest, release: Mapping[str, Any]
) -> tuple[list[Target], list[PieceSignature]]:
    """The release's signed pieces (pure), and those that cannot be checked (another
    registry, no digest recorded, a malformed reference) as unchecked entries."""
    targets = [
        Target(
            "release",
            str(release.get("version") or digest),
            registry,
            release_repository(namespace),
            digest,
        )
    ]
    unchecked: list[PieceSignature] = []
    config = release.get("config")
    if isinstance(config, Mapping):
        _add_reference(
            targets,
            unchecked,
            registry,
            "bundle",
            "config",
            f"{config.get('repository')}@{config.get('digest')}",
        )
    else:
        unchecked.append(PieceSignature(None, "bundle", "config", None, "no config entry"))
    chart_digests = release.get("chartDigests")
    charts = release.get("charts")
    if isinstance(charts, Mapping):
        for name in charts:
            recorded = chart_digests.get(name) if isinstance(chart_digests, Mapping) else None
            repository = chart_repository(namespace, str(name))
            _add_reference(
                targets,
                unchecked,
                registry,
                "chart",
                str(name),
                f"{registry}/{repository}@{recorded}" if recorded else "",
                missing="no chart digest recorded",
            )
    _add_reference(
        targets, unchecked, registry, "control-plane", "controlPlane", release.get("controlPlane")
    )
    return targets, unchecked


def _add_reference(
    targets: list[Target],
    unchecked: list[PieceSignature],
    registry: str,
    kind: str,
    name: str,
    text: object,
    *,
    missing: str = "no digest reference",
) -> None:
    if not isinstance(text, str) or not text:
        unchecked.append(PieceSignature(None, kind, name, None, missing))
        return
    try:
        ref = Reference.parse(text)
    except InvalidReference:
        unchecked.append(PieceSignature(None, kind, name, None, f"not a reference: {text}"))
        return
    if ref.digest is None:
        unchecked.append(PieceSignature(None, kind, name, None, "not pinned by digest"))
    elif ref.registry != registry:
        unchecked.append(
            PieceSignature(None, kind, name, None, f"in another registry ({ref.registry})")
        )
    else:
        targets.append(Target(kind, name, ref.registry, ref.repository, ref.digest))


def signature_report(
    client: RegistryClient,
    namespace: str,
    digest: Digest,
    release: Mapping[str, Any],
    trusted: Sequence[PublicKey],
) -> list[PieceSignature]:
    """Every piece of the release with its signature status (reads only)."""
    targets, unchecked = release_targets(client.registry, namespace, digest, release)
    report = [
        PieceSignature(
            target,
            target.kind,
            target.name,
            verify_signatures(client, target.repository, target.digest, trusted),
        )
        for target in targets
    ]
    return report + unchecked


def require_signed(
    client: RegistryClient,
    namespace: str,
    digest: Digest,
    release: Mapping[str, Any],
    trusted: Sequence[PublicKey],
) -> list[PieceSignature]:
    """Refuse (exit 3) unless the release manifest ``digest`` and its bundle each carry a
    valid signature by a key in ``trusted``; returns the whole report when they do.

    Call it after the release is read and before the channel tag is written (and again
    in ``promote``: a re-verification, not a trust in the earlier run).
    """
    if not trusted:
        raise UnsignedRelease(
            "no trusted key to verify the release's signatures with",
            hint="configure --signing-key (or --trusted-key PUB) to gate channel moves",
        )
    report = signature_report(client, namespace, digest, release, trusted)
    gated = {kind: [p for p in report if p.kind == kind] for kind in GATED_KINDS}
    failures = [
        f"{p.kind} {p.target.reference if p.target else p.name}: {p.describe()}"
        for kind in GATED_KINDS
        for p in gated[kind]
        if not p.signed
    ]
    if failures:
        keys = ", ".join(key.key_id for key in trusted)
        raise UnsignedRelease(
            f"release {client.registry}/{release_repository(namespace)}@{digest} is "
            f"not signed by a trusted key ({keys}):\n  " + "\n  ".join(failures),
            pieces=tuple(failures),
            hint="re-run the publish with --signing-key (signing is idempotent), or add the "
            "signer's public key with --trusted-key if it is a rotated key",
        )
    return report
