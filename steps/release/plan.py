"""The release run: which steps, in which order, with which arguments.

:func:`release_steps` is the single description of a release. ``alga-release
publish`` runs these steps in one process (each through the same argument
parser and handler as its standalone subcommand, passing results between
steps as files, exactly as the Argo tasks do), and the Argo WorkflowTemplate in
``pipelines/release.py`` is generated from the same list. So the local run and
the Argo run cannot drift apart.

Also here: pushing the release manifest (immutable ``:<version>``) and the
provenance of a release (source URL, revision, and the revision's commit time;
never the clock).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steps import sourcetime
from steps.channels.timing import Timing
from steps.errors import ImmutableTagConflict
from steps.names import release_repository
from steps.oci import mediatypes as mt
from steps.oci.reference import Digest
from steps.release import provenance
from steps.release.manifest import manifest_bytes, release_annotations, release_oci_manifest
from steps.release.preflight import preflight as preflight  # re-exported: publish calls it here
from steps.release.provenance import RunDetails

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient
    from steps.signing.attest import AttestResult
    from steps.signing.cosign import Signer

log = logging.getLogger("alga_release.release")


# -- the plan -----------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryParams:
    registry: str = "ghcr.io"
    namespace: str = "nine-minds"
    plain_http: bool = False
    insecure_registries: tuple[str, ...] = ()
    ca_file: str | None = None
    password_file: str | None = None

    def argv(self) -> list[str]:
        args = ["--registry", self.registry, "--namespace", self.namespace]
        if self.plain_http:
            args.append("--plain-http")
        for host in self.insecure_registries:
            args += ["--insecure-registry", host]
        if self.ca_file:
            args += ["--ca-file", self.ca_file]
        if self.password_file:
            args += ["--password-file", self.password_file]
        return args


@dataclass(frozen=True)
class SigningParams:
    """The signing key (a file path; its password stays in the environment or a file),
    ``--require-signing`` and extra trusted public keys, for every step that signs or
    gates. Empty: no signing flags at all (the Argo templates are unchanged)."""

    key: str | None = None
    password_file: str | None = None
    required: bool = False
    trusted_keys: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        args = ["--signing-key", self.key] if self.key else []
        if self.password_file:
            args += ["--signing-key-password-file", self.password_file]
        if self.required:
            args.append("--require-signing")
        for path in self.trusted_keys:
            args += ["--trusted-key", path]
        return args


@dataclass(frozen=True)
class PublishParams:
    """Everything a release run needs; strings so Argo placeholders fit too."""

    source: str
    version: str
    channel: str
    images: Mapping[str, str]
    control_plane: str
    config: str | None = None
    values_profile: str | None = None
    source_url: str | None = None
    revision: str | None = None
    version_policy: str = "content"
    chart_pin: str = "version"
    verify_charts: bool = False  # the bundle has Flux verify each chart's signature
    allow_downgrade: bool = False
    reason: str | None = None
    run: str | None = None  # recorded with the channel move only, never in the manifest
    run_id: str | None = None  # the provenance attestation's invocationId (when signing)
    builder_id: str | None = None  # the provenance attestation's builder (default: the CLI)
    dry_run: bool = False
    verify_anonymous: bool | None = None  # None: the CLI's default (on for ghcr.io)
    registry: RegistryParams = field(default_factory=RegistryParams)
    signing: SigningParams = field(default_factory=SigningParams)
    statement_expiry: str | None = None  # e.g. "30d"; None: the channel step's default


@dataclass(frozen=True)
class Step:
    """One step: its name, the ``alga-release`` arguments, and the file it writes."""

    name: str
    argv: list[str]
    output: str


def release_steps(p: PublishParams, outdir: str) -> list[Step]:
    """The release, step by step. ``outdir`` holds each step's JSON result."""

    def out(name: str) -> str:
        return f"{outdir}/{name}.json"

    def opt(flag: str, value: str | None) -> list[str]:
        return [flag, value] if value else []

    source = ["--source", p.source, *opt("--config", p.config)]
    reg = p.registry.argv()
    dry = ["--dry-run"] if p.dry_run else []
    sign = p.signing.argv()
    origin = [*opt("--source-url", p.source_url), *opt("--revision", p.revision)]
    anonymous = (
        []
        if p.verify_anonymous is None
        else ["--verify-anonymous" if p.verify_anonymous else "--no-verify-anonymous"]
    )
    steps = [
        Step(
            "charts",
            [
                "charts",
                "publish",
                *source,
                "--version-policy",
                p.version_policy,
                "--out",
                out("charts"),
                *reg,
                *dry,
                *sign,
            ],
            out("charts"),
        ),
        Step(
            "bundle",
            [
                "bundle",
                "publish",
                *source,
                "--charts",
                out("charts"),
                "--version",
                p.version,
                *opt("--values-profile", p.values_profile),
                *origin,
                "--chart-pin",
                p.chart_pin,
                *(["--verify-charts"] if p.verify_charts else []),
                "--out",
                out("bundle"),
                *reg,
                *(["--dry-run", f"{outdir}/bundle"] if p.dry_run else []),
                *sign,
            ],
            out("bundle"),
        ),
        Step(
            "images",
            [
                "images",
                "check",
                *[a for key, tag in p.images.items() for a in ("--image", f"{key}={tag}")],
                "--control-plane",
                p.control_plane,
                "--out",
                out("images"),
                *reg,
                *([] if p.dry_run else sign),  # images check signs the control plane
            ],
            out("images"),
        ),
        Step(
            "manifest",
            [
                "manifest",
                "publish",
                *source,
                "--version",
                p.version,
                "--channel",
                p.channel,
                *opt("--values-profile", p.values_profile),
                "--charts",
                out("charts"),
                "--bundle",
                out("bundle"),
                "--images",
                out("images"),
                *origin,
                *opt("--run-id", p.run_id),
                *opt("--builder-id", p.builder_id),
                "--out",
                out("manifest"),
                *reg,
                *dry,
                *sign,
            ],
            out("manifest"),
        ),
        Step(
            "channel",
            [
                "channel",
                "move",
                "--version",
                p.version,
                "--channel",
                p.channel,
                *(["--allow-downgrade"] if p.allow_downgrade else []),
                *opt("--reason", p.reason),
                "--kind",
                "publish",
                "--manifest",
                out("manifest"),
                *opt("--run", p.run),
                *opt("--statement-expiry", p.statement_expiry),
                "--out",
                out("channel"),
                *anonymous,
                *reg,
                *dry,
                *sign,
            ],
            out("channel"),
        ),
        Step(
            "verify",
            [
                "verify",
                "--channel",
                p.channel,
                "--manifest",
                out("manifest"),
                "--out",
                out("verify"),
                *anonymous,
                *reg,
                *sign,
            ],
            out("verify"),
        ),
    ]
    if p.dry_run:
        steps = [s for s in steps if s.name != "verify"]
    return steps


# -- the pre-push check phase ---------------------------------------------------------------


def precheck(
    params: PublishParams,
    outdir: str,
    run_step: Callable[[Step], Mapping[str, Any]],
    client: RegistryClient,
) -> dict[str, Mapping[str, Any]]:
    """Check everything a publish would push before it pushes anything.

    Runs the release's steps as a dry run (``params`` with ``dry_run``; each step through
    ``run_step``, exactly as the real run runs it), writing their results under ``outdir``
    (a folder of its own, not the real run's), and so refuses, before the first push:

    - bad input and unpublishable inputs (exit 2), as the real steps would;
    - an app image tag or the control plane that is not in the registry (images step, 3);
    - a chart version whose tag holds other bytes (charts step, 3);
    - the bundle's ``:<version>`` holding another bundle (checked here, 3);
    - the channel's current release unreadable where the manifest carries fields forward
      (manifest step, 3), and the release's ``:<version>`` holding other bytes (3);
    - a move the channel's gates would refuse: a downgrade, an unreadable channel, and,
      when the run does not sign (trusted keys only), a release not signed by a trusted key
      (channel step, 3).

    ``client`` reaches the registry the steps publish to. Returns each step's dry-run
    result by step name. What it cannot rule out is another writer pushing the same tags
    in between; the push protocols settle that (:mod:`steps.channels`).
    """
    dry = replace(params, dry_run=True)
    if params.signing.key:
        # The real run signs every piece before its channel step, so the channel's signature
        # gate cannot be judged before it; without a signing key (trusted keys only) it can.
        dry = replace(dry, signing=SigningParams())
    results: dict[str, Mapping[str, Any]] = {}
    for step in release_steps(dry, outdir):
        results[step.name] = run_step(step)
        if step.name == "bundle":
            _check_bundle_tag(client, params.registry.namespace, results["bundle"], outdir)
    return results


def _check_bundle_tag(
    client: RegistryClient, namespace: str, result: Mapping[str, Any], outdir: str
) -> None:
    """The bundle's ``:<version>`` is free or already holds this bundle (the same files:
    another zlib may have compressed them to other bytes)."""
    from steps.bundle.artifact import tar_files
    from steps.bundle.publish import BUNDLE_REPOSITORY, read_overlay

    repository = f"{namespace}/{BUNDLE_REPOSITORY}"
    tag = str(result.get("tag"))
    existing = client.head_manifest(repository, tag)
    if existing is None or str(existing.digest) == result.get("digest"):
        return
    layers = client.get_manifest(repository, existing.digest).json().get("layers") or []
    if isinstance(layers, list) and len(layers) == 1 and isinstance(layers[0], dict):
        layer = layers[0]
        size = int(layer.get("size", -1))
        if 0 <= size <= 64 * 1024 * 1024:
            blob = client.get_blob(repository, Digest.parse(str(layer.get("digest"))), size=size)
            if tar_files(blob) == read_overlay(Path(outdir) / "bundle"):
                return
    raise ImmutableTagConflict(
        f"bundle {client.registry}/{repository}:{tag} already exists as {existing.digest}; "
        f"this release's bundle would be {result.get('digest')} (nothing was pushed)",
        hint="a published version is immutable: publish a new --version, or re-run with "
        "exactly the same inputs",
    )


# -- provenance ------------------------------------------------------------------------


def revision_created(source: Path, revision: str | None) -> str:
    """Commit time of ``revision`` (or HEAD) in the ``source`` checkout, RFC 3339 UTC;
    never the clock (see :mod:`steps.sourcetime`)."""
    return sourcetime.revision_time(source, revision)


_SHA_RE = re.compile(r"^(?:.+@sha1:|.+/)?([a-f0-9]{40})$")


def commit_of(revision: str) -> str | None:
    """The 40-hex commit of ``sha``, ``<ref>@sha1:<sha>`` (Flux's form) or ``<ref>/<sha>``;
    None for anything else (a branch or tag name alone)."""
    match = _SHA_RE.match(revision.strip())
    return match.group(1) if match else None


def source_revision(source: Path) -> str | None:
    text = (sourcetime.git_output(source, "rev-parse", "HEAD") or "").strip()
    return text if len(text) == 40 else None


# -- the release manifest in the registry ---------------------------------------------------


@dataclass(frozen=True)
class ManifestPush:
    repository: str  # registry/namespace/alga-appliance-release
    tag: str
    digest: Digest
    config_digest: Digest
    status: str  # pushed | unchanged | would-push
    signed_by: str | None = None  # key id of the signer, when signed
    attestation: AttestResult | None = None  # the SLSA provenance, when signed
    run: RunDetails | None = None  # the attestation's runDetails

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "repository": self.repository,
            "tag": self.tag,
            "digest": str(self.digest),
            "configDigest": str(self.config_digest),
            "status": self.status,
        }
        if self.signed_by:
            out["signedBy"] = self.signed_by
        if self.attestation is not None and self.run is not None:
            out["attestation"] = {
                **self.attestation.to_json(),
                "builderId": self.run.builder_id,
                "invocationId": self.run.invocation_id,
            }
        return out


def push_release_manifest(
    client: RegistryClient,
    namespace: str,
    release: Mapping[str, Any],
    *,
    dry_run: bool = False,
    signer: Signer | None = None,
    timing: Timing | None = None,
    run: RunDetails | None = None,
) -> ManifestPush:
    """Push the release as a single OCI image manifest tagged ``:<version>``.

    Immutable: the same bytes already there is a no-op; other bytes under that tag are
    refused (exit 3) with both digests named. Two publishes of one version racing each
    other are settled by :func:`steps.channels.immutable.put_immutable`: one stands, the
    other exits 3 (putting the first bytes back if its push landed on them). With a
    ``signer`` (and not a dry run), the release digest is signed and its SLSA provenance
    attested (:mod:`steps.release.provenance`; ``run`` names the builder and run, by
    default the CLI and none), also when unchanged (both idempotent).
    """
    pushed = _push_release_manifest(client, namespace, release, dry_run=dry_run, timing=timing)
    if signer is None or dry_run:
        return pushed
    repository = release_repository(namespace)
    signed = signer.sign(client, repository, pushed.digest)
    run = run or RunDetails()
    statement = provenance.provenance_statement(
        registry=client.registry,
        namespace=namespace,
        digest=pushed.digest,
        release=release,
        run=run,
    )
    from steps.signing.attest import attach_attestation  # a signed release only

    attested = attach_attestation(
        client,
        signer,
        repository,
        pushed.digest,
        provenance.statement_bytes(statement),
        provenance.SLSA_PROVENANCE_V1,
    )
    return dataclasses.replace(pushed, signed_by=signed.key_id, attestation=attested, run=run)


def _push_release_manifest(
    client: RegistryClient,
    namespace: str,
    release: Mapping[str, Any],
    *,
    dry_run: bool,
    timing: Timing | None,
) -> ManifestPush:
    version = str(release["version"])
    config = manifest_bytes(release)
    oci = release_oci_manifest(config, annotations=release_annotations(release))
    digest = Digest.of(oci)
    repository = release_repository(namespace)
    full = f"{client.registry}/{repository}"
    existing = client.head_manifest(repository, version)
    if existing is not None and existing.digest != digest:
        raise ImmutableTagConflict(
            f"release {full}:{version} already exists as {existing.digest}; this release "
            f"would be {digest}",
            hint="a published version is immutable: publish a new version, or re-run with "
            "exactly the same inputs",
        )
    if existing is not None:
        log.info("release %s already published (%s)", version, digest.short)
        return ManifestPush(full, version, digest, Digest.of(config), "unchanged")
    if dry_run:
        return ManifestPush(full, version, digest, Digest.of(config), "would-push")
    from steps.channels.immutable import put_immutable  # a push only: not an unchanged re-run

    client.push_blob(repository, config, likely_new=True)
    status = put_immutable(
        client, repository, version, oci, mt.OCI_MANIFEST, what="release", timing=timing
    )
    log.info("release %s %s (%s)", version, status, digest.short)
    return ManifestPush(full, version, digest, Digest.of(config), status)


def run_label(run: str | None) -> str | None:
    """The run that made a release, only when given explicitly (reproducibility)."""
    return run.strip() if run and run.strip() else None
