"""The release's SLSA provenance: an in-toto statement about the release manifest.

Every release published with a signing key gets one attestation (cosign's ``.att``
format, :mod:`steps.signing.attest`) whose statement is::

    _type          https://in-toto.io/Statement/v1
    subject        [{name: HOST/NS/alga-appliance-release, digest: {sha256: <hex>}}]
    predicateType  https://slsa.dev/provenance/v1
    predicate
      buildDefinition
        buildType             BUILD_TYPE (below; what the fields mean)
        externalParameters    version, channel, valuesProfile, images {key: {tag, digest}},
                              controlPlane (HOST/NS/...@sha256:), source {repository, commit}
        resolvedDependencies  the source (git+URL@commit, digest gitCommit), each chart,
                              the Flux bundle, the control plane and the app images
                              (oci://HOST/REPO[:TAG], digest sha256)
      runDetails
        builder.id            who ran it: the WorkflowTemplate, or the CLI by default
        metadata.invocationId the Argo workflow name, only when given

Everything but ``runDetails`` is read from the release manifest itself (which records
the inputs), so it is a function of the release digest; ``runDetails`` holds only what
the caller passes. There is no timestamp anywhere: the same release, builder and run id
give the same statement bytes (sorted keys, compact UTF-8 JSON), hence, with RFC 6979
signatures, the same envelope and the same ``.att`` digest.

:func:`statement_problems` checks an attested statement against the release it is
attached to (the subject digest, the predicate and build types, and the version,
channel, commit and pinned digests it names); :func:`check_provenance` turns the
attestations found on a release into a :class:`ProvenanceReport` and
:func:`require_provenance` into one of three failure kinds (exit 3):
``ProvenanceMissing``, ``ProvenanceUntrusted``, ``ProvenanceInvalid``.

Pure except :func:`provenance_report` (reads the ``.att`` tag). Nothing here reads the
environment or the clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from steps.errors import BadInput, ProvenanceInvalid, ProvenanceMissing, ProvenanceUntrusted
from steps.names import (
    IMAGE_REPOSITORIES,
    chart_repository,
    image_repository,
    release_repository,
)
from steps.oci.reference import Digest

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient
    from steps.signing.attest import FoundAttestation
    from steps.signing.keys import PublicKey

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
#: cosign's ``--type`` for :data:`SLSA_PROVENANCE_V1` (``cosign verify-attestation``).
COSIGN_TYPE = "slsaprovenance1"

#: This project's home: the prefix of the URIs below (documented in the README,
#: "Provenance").
PROJECT_URI = "https://github.com/Nine-Minds/alga-appliance-release"
#: What a statement's buildDefinition means: a release of the appliance published by
#: ``alga-release`` (``publish`` or the Argo steps), with the external parameters and
#: dependencies listed in this module's docstring. A new meaning gets a new version.
BUILD_TYPE = f"{PROJECT_URI}/build-types/release/v1"
#: The builder of a run that names none: the ``alga-release`` CLI run by hand.
DEFAULT_BUILDER_ID = f"{PROJECT_URI}/builders/alga-release-cli"

#: A run id is a Kubernetes object name (an Argo workflow's name), as the manifest's run.
_RUN_ID_RE = re.compile(r"^[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?$")
_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$")


def workflow_template_builder_id(template: str) -> str:
    """The builder id of the Argo WorkflowTemplate ``template`` (e.g. the release's)."""
    return f"{PROJECT_URI}/builders/argo-workflowtemplate/{template}"


@dataclass(frozen=True)
class RunDetails:
    """Who produced the release (``builder_id``) and, when given, which run."""

    builder_id: str = DEFAULT_BUILDER_ID
    invocation_id: str | None = None

    @classmethod
    def parse(cls, builder_id: str | None, invocation_id: str | None) -> RunDetails:
        """From the CLI's ``--builder-id`` and ``--run-id`` (None or blank: not given);
        :class:`BadInput` for a builder id that is not a URI or a run id that is not a
        Kubernetes object name."""
        builder = (builder_id or "").strip() or DEFAULT_BUILDER_ID
        if not _URI_RE.match(builder) or len(builder) > 2048:
            raise BadInput(
                f"--builder-id {builder!r} is not a URI",
                hint=f"e.g. {workflow_template_builder_id('alga-appliance-release')}",
            )
        run = (invocation_id or "").strip() or None
        if run is not None and (len(run) > 253 or not _RUN_ID_RE.match(run)):
            raise BadInput(
                f"--run-id {run!r} is not a run name (a Kubernetes object name: lowercase "
                "letters, digits, '-' and '.')",
                hint="pass the Argo workflow name ({{workflow.name}}), or leave it out",
            )
        return cls(builder, run)


# -- the statement (pure) --------------------------------------------------------------


def provenance_statement(
    *,
    registry: str,
    namespace: str,
    digest: Digest,
    release: Mapping[str, Any],
    run: RunDetails,
) -> dict[str, Any]:
    """The in-toto statement for the release manifest ``digest`` whose JSON is
    ``release``, published to ``registry``/``namespace`` (see the module doc)."""
    run_details: dict[str, Any] = {"builder": {"id": run.builder_id}}
    if run.invocation_id is not None:
        run_details["metadata"] = {"invocationId": run.invocation_id}
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": f"{registry}/{release_repository(namespace)}",
                "digest": {digest.algorithm: digest.hex},
            }
        ],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external_parameters(release),
                "resolvedDependencies": resolved_dependencies(registry, namespace, release),
            },
            "runDetails": run_details,
        },
    }


def statement_bytes(statement: Mapping[str, Any]) -> bytes:
    """Canonical bytes: sorted keys, no spaces, UTF-8; the same statement, the same bytes."""
    return json.dumps(
        statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def external_parameters(release: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs of the release run, as the manifest records them."""
    images = _mapping(release.get("images"))
    image_digests = _mapping(release.get("imageDigests"))
    provenance = _mapping(release.get("provenance"))
    source = {
        key: provenance[name]
        for key, name in (("repository", "source"), ("commit", "revision"))
        if isinstance(provenance.get(name), str)
    }
    params: dict[str, Any] = {
        "version": release.get("version"),
        "channel": release.get("channel"),
        "valuesProfile": release.get("valuesProfile"),
        "images": {
            str(key): {
                "tag": tag,
                **({"digest": image_digests[key]} if key in image_digests else {}),
            }
            for key, tag in images.items()
        },
        "controlPlane": release.get("controlPlane"),
        "source": source,
    }
    return {key: value for key, value in params.items() if value is not None}


def resolved_dependencies(
    registry: str, namespace: str, release: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """What the release pins, each with its digest: the source commit first, then the
    charts (in the manifest's order), the bundle, the control plane, the app images."""
    deps: list[dict[str, Any]] = []
    provenance = _mapping(release.get("provenance"))
    commit = provenance.get("revision")
    if isinstance(commit, str):
        source: dict[str, Any] = {"name": "source", "digest": {"gitCommit": commit}}
        if isinstance(provenance.get("source"), str):
            source["uri"] = f"git+{provenance['source']}@{commit}"
        deps.append(source)
    charts = _mapping(release.get("charts"))
    chart_digests = _mapping(release.get("chartDigests"))
    for name, version in charts.items():
        if name in chart_digests:
            deps.append(
                _oci(
                    f"charts/{name}",
                    f"{registry}/{chart_repository(namespace, str(name))}:{version}",
                    chart_digests[name],
                )
            )
    config = _mapping(release.get("config"))
    if config.get("repository") and config.get("digest"):
        tag = config.get("tag") or release.get("version")
        deps.append(_oci("config", f"{config['repository']}:{tag}", config["digest"]))
    control_plane = release.get("controlPlane")
    if isinstance(control_plane, str) and "@" in control_plane:
        where, _, pinned = control_plane.partition("@")
        deps.append(_oci("controlPlane", where, pinned))
    images = _mapping(release.get("images"))
    image_digests = _mapping(release.get("imageDigests"))
    for key, tag in images.items():
        if key in image_digests and key in IMAGE_REPOSITORIES:
            deps.append(
                _oci(
                    f"images/{key}",
                    f"{registry}/{image_repository(namespace, str(key))}:{tag}",
                    image_digests[key],
                )
            )
    return deps


def _oci(name: str, where: str, digest: object) -> dict[str, Any]:
    algorithm, _, value = str(digest).partition(":")
    return {"name": name, "uri": f"oci://{where}", "digest": {algorithm: value}}


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# -- checking an attested statement (pure) ------------------------------------------------


def statement_problems(statement: object, digest: Digest, release: Mapping[str, Any]) -> list[str]:
    """Why ``statement`` does not describe the release manifest ``digest`` ([] when it
    does). The registry host in names and URIs is not compared: a release read through
    a mirror or another host name is the same release."""
    if not isinstance(statement, Mapping):
        return ["the statement is not a JSON object"]
    problems: list[str] = []
    if statement.get("_type") != STATEMENT_TYPE:
        problems.append(f"_type is {statement.get('_type')!r}, expected {STATEMENT_TYPE}")
    if statement.get("predicateType") != SLSA_PROVENANCE_V1:
        problems.append(
            f"predicateType is {statement.get('predicateType')!r}, expected {SLSA_PROVENANCE_V1}"
        )
    subjects = statement.get("subject")
    digests = [
        s.get("digest", {}).get(digest.algorithm)
        for s in (subjects if isinstance(subjects, list) else [])
        if isinstance(s, Mapping) and isinstance(s.get("digest"), Mapping)
    ]
    if digest.hex not in digests:
        problems.append(f"no subject names the release manifest {digest}")
    predicate = _mapping(statement.get("predicate"))
    definition = _mapping(predicate.get("buildDefinition"))
    if definition.get("buildType") != BUILD_TYPE:
        problems.append(f"buildType is {definition.get('buildType')!r}, expected {BUILD_TYPE}")
    if not isinstance(
        _mapping(_mapping(predicate.get("runDetails")).get("builder")).get("id"), str
    ):
        problems.append("runDetails.builder.id is missing")
    expected = external_parameters(release)
    found = _mapping(definition.get("externalParameters"))
    for key in sorted(set(expected) | set(found)):
        if found.get(key) != expected.get(key):
            problems.append(
                f"externalParameters.{key} is {_short(found.get(key))}, the release says "
                f"{_short(expected.get(key))}"
            )
    pinned = {
        (dep.get("name"), json.dumps(dep.get("digest"), sort_keys=True))
        for dep in resolved_dependencies("registry", "namespace", release)  # names, digests
    }
    deps = definition.get("resolvedDependencies")
    attested = {
        (dep.get("name"), json.dumps(dep.get("digest"), sort_keys=True))
        for dep in (deps if isinstance(deps, list) else [])
        if isinstance(dep, Mapping)
    }
    for name, digest_text in sorted(pinned - attested, key=str):
        problems.append(f"resolvedDependencies lacks {name} at {digest_text}")
    return problems


def _short(value: object, limit: int = 120) -> str:
    text = json.dumps(value, sort_keys=True) if value is not None else "absent"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- what a release's attestations say --------------------------------------------------


@dataclass(frozen=True)
class CheckedAttestation:
    """One SLSA provenance attestation found on the release, judged."""

    layer_digest: str
    signed_by: str | None  # key id of the trusted key whose signature verifies
    statement: dict[str, Any] | None
    problems: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return self.signed_by is not None and self.statement is not None and not self.problems

    def describe(self) -> str:
        if self.valid:
            return f"verified, signed by {self.signed_by}"
        if self.signed_by is None and self.statement is not None:
            return (
                "UNTRUSTED: its signature verifies under no trusted key (signed by another "
                "key, or altered after signing)"
            )
        return "INVALID: " + "; ".join(self.problems)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "envelopeDigest": self.layer_digest,
            "verified": self.valid,
            "signedBy": self.signed_by,
            "status": self.describe(),
        }
        if self.statement is not None:
            predicate = _mapping(self.statement.get("predicate"))
            definition = _mapping(predicate.get("buildDefinition"))
            run = _mapping(predicate.get("runDetails"))
            out["builderId"] = _mapping(run.get("builder")).get("id")
            out["invocationId"] = _mapping(run.get("metadata")).get("invocationId")
            source = _mapping(_mapping(definition.get("externalParameters")).get("source"))
            out["sourceRepository"] = source.get("repository")
            out["sourceCommit"] = source.get("commit")
            out["statement"] = self.statement
        return out


@dataclass(frozen=True)
class ProvenanceReport:
    """The SLSA provenance attestations of one release manifest, against trusted keys."""

    reference: str  # HOST/REPO@sha256:... (the subject)
    tag: str  # sha256-<hex>.att
    trusted_keys: tuple[str, ...]
    attestations: tuple[CheckedAttestation, ...] = field(default=())
    others: int = 0  # DSSE layers with another predicate type

    @property
    def verified(self) -> tuple[CheckedAttestation, ...]:
        return tuple(a for a in self.attestations if a.valid)

    @property
    def status(self) -> str:
        if self.verified:
            return "verified"
        if not self.attestations:
            return "missing"
        if any(a.signed_by is not None or a.statement is None for a in self.attestations):
            return "invalid"
        return "untrusted"

    def describe(self) -> str:
        found = len(self.attestations)
        return {
            "verified": f"verified ({len(self.verified)} of {found} attestation(s) by a "
            "trusted key)",
            "missing": "MISSING: no SLSA provenance attestation",
            "invalid": "INVALID: no attestation by a trusted key describes this release",
            "untrusted": f"UNTRUSTED: {found} attestation(s), none signed by a trusted key",
        }[self.status]

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "attestationTag": self.tag,
            "predicateType": SLSA_PROVENANCE_V1,
            "trustedKeys": list(self.trusted_keys),
            "verified": bool(self.verified),
            "status": self.status,
            "summary": self.describe(),
            "attestations": [a.to_json() for a in self.attestations],
        }


def check_provenance(
    reference: str,
    tag: str,
    found: Sequence[FoundAttestation],
    digest: Digest,
    release: Mapping[str, Any],
    trusted: Sequence[PublicKey],
) -> ProvenanceReport:
    """Judge every DSSE layer found (pure): those whose statement is not SLSA provenance
    are counted in ``others``; each other one is verified under ``trusted`` and, when
    signed by a trusted key, checked against the release (:func:`statement_problems`)."""
    from steps.signing.dsse import INTOTO_PAYLOAD_TYPE

    checked: list[CheckedAttestation] = []
    others = 0
    for item in found:
        if item.envelope is None:
            if item.predicate_type in (None, SLSA_PROVENANCE_V1):
                checked.append(
                    CheckedAttestation(item.layer_digest, None, None, (str(item.problem),))
                )
            else:
                others += 1
            continue
        statement = _statement(item.envelope.payload)
        if statement is None or item.envelope.payload_type != INTOTO_PAYLOAD_TYPE:
            if item.predicate_type == SLSA_PROVENANCE_V1:
                checked.append(
                    CheckedAttestation(
                        item.layer_digest, None, None, ("the envelope holds no in-toto statement",)
                    )
                )
            else:
                others += 1
            continue
        if statement.get("predicateType") != SLSA_PROVENANCE_V1:
            others += 1
            continue
        key = item.verified_by(trusted)
        problems = tuple(statement_problems(statement, digest, release)) if key else ()
        checked.append(
            CheckedAttestation(item.layer_digest, key.key_id if key else None, statement, problems)
        )
    return ProvenanceReport(
        reference, tag, tuple(k.key_id for k in trusted), tuple(checked), others
    )


def _statement(payload: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def provenance_report(
    client: RegistryClient,
    namespace: str,
    digest: Digest,
    release: Mapping[str, Any],
    trusted: Sequence[PublicKey],
) -> ProvenanceReport:
    """Read the release's ``.att`` tag and judge what it holds (reads only)."""
    from steps.signing.attest import attestation_tag, read_attestations

    repository = release_repository(namespace)
    found = read_attestations(client, repository, digest)
    return check_provenance(
        f"{client.registry}/{repository}@{digest}",
        attestation_tag(digest),
        found,
        digest,
        release,
        trusted,
    )


def require_provenance(report: ProvenanceReport) -> ProvenanceReport:
    """The report when a trusted attestation describes the release; else the failure
    kind that says why (exit 3), naming the release and each attestation's problem."""
    if report.verified:
        return report
    where = f"{report.reference} ({report.tag})"
    details = "".join(f"\n  {a.layer_digest}: {a.describe()}" for a in report.attestations)
    keys = ", ".join(report.trusted_keys) or "none"
    if report.status == "missing":
        raise ProvenanceMissing(
            f"release {report.reference} has no SLSA provenance attestation ({report.tag} "
            "holds none)",
            hint="re-run the publish with --signing-key: the manifest step attests the "
            "release (idempotent)",
        )
    if report.status == "untrusted":
        raise ProvenanceUntrusted(
            f"the provenance of {where} is signed by no trusted key ({keys}):{details}",
            hint="re-run the publish with the release key, or add the signer's public key "
            "with --trusted-key if it is a rotated key",
        )
    raise ProvenanceInvalid(
        f"the provenance of {where} does not describe this release:{details}",
        hint="re-run the publish with --signing-key to attest the release as published; "
        "an attestation naming other inputs was not made for this release",
    )
