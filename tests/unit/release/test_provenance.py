"""steps.release.provenance: the SLSA v1 statement of a release, pure.

The statement is a function of the release manifest, the registry it is published to and
the run details given: the same inputs give the same bytes, no clock enters, and a run id
changes runDetails.metadata.invocationId and nothing else.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from steps.errors import BadInput, ProvenanceInvalid, ProvenanceMissing, ProvenanceUntrusted
from steps.oci.reference import Digest
from steps.release import provenance as pv
from steps.signing import dsse, keys
from steps.signing.attest import FoundAttestation

ROOT = Path(__file__).resolve().parents[3]
RELEASE: dict[str, Any] = json.loads((ROOT / "schemas/examples/valid/full.json").read_text())
DIGEST = Digest.parse("sha256:" + "9" * 64)
REGISTRY = "ghcr.io"
NS = "nine-minds"
COMMIT = RELEASE["provenance"]["revision"]


def statement(run: pv.RunDetails | None = None, release: dict[str, Any] | None = None) -> Any:
    return pv.provenance_statement(
        registry=REGISTRY,
        namespace=NS,
        digest=DIGEST,
        release=release or RELEASE,
        run=run or pv.RunDetails(),
    )


def test_statement_fields() -> None:
    st = statement()
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == "https://slsa.dev/provenance/v1"
    assert st["subject"] == [
        {"name": "ghcr.io/nine-minds/alga-appliance-release", "digest": {"sha256": "9" * 64}}
    ]
    definition = st["predicate"]["buildDefinition"]
    assert definition["buildType"] == pv.BUILD_TYPE
    assert definition["externalParameters"] == {
        "version": "1.4.0",
        "channel": "nightly",
        "valuesProfile": "single-node",
        "images": {
            key: {"tag": RELEASE["images"][key], "digest": RELEASE["imageDigests"][key]}
            for key in RELEASE["images"]
        },
        "controlPlane": RELEASE["controlPlane"],
        "source": {"repository": "https://github.com/Nine-Minds/alga-psa", "commit": COMMIT},
    }
    deps = definition["resolvedDependencies"]
    assert deps[0] == {
        "name": "source",
        "uri": f"git+https://github.com/Nine-Minds/alga-psa@{COMMIT}",
        "digest": {"gitCommit": COMMIT},
    }
    by_name = {d["name"]: d for d in deps}
    assert by_name["charts/sebastian"] == {
        "name": "charts/sebastian",
        "uri": "oci://ghcr.io/nine-minds/charts/sebastian:0.0.1-c3f2a1b09d",
        "digest": {"sha256": "a" * 64},
    }
    assert by_name["config"]["uri"] == "oci://ghcr.io/nine-minds/alga-appliance-config:1.4.0"
    assert by_name["config"]["digest"] == {"sha256": "2" * 64}
    assert by_name["controlPlane"] == {
        "name": "controlPlane",
        "uri": "oci://ghcr.io/nine-minds/alga-appliance-control-plane",
        "digest": {"sha256": "1" * 64},
    }
    assert (
        by_name["images/emailService"]["uri"] == "oci://ghcr.io/nine-minds/email-service:9f1e2d3c"
    )
    assert len(deps) == 1 + 6 + 1 + 1 + 4
    assert st["predicate"]["runDetails"] == {"builder": {"id": pv.DEFAULT_BUILDER_ID}}


def test_no_clock_and_the_same_inputs_give_the_same_bytes() -> None:
    first = pv.statement_bytes(statement())
    # another dict order of the same release, built again: the same bytes
    shuffled = dict(reversed(list(copy.deepcopy(RELEASE).items())))
    assert pv.statement_bytes(statement(release=shuffled)) == first
    assert pv.statement_bytes(json.loads(first)) == first
    text = first.decode()
    for word in ("startedOn", "finishedOn", "created", "timestamp", "2026-"):
        assert word not in text
    assert b" " not in first.replace(b"Nine-Minds", b"")  # compact


def test_a_run_id_changes_the_invocation_id_only() -> None:
    plain = statement()
    with_run = statement(pv.RunDetails(invocation_id="alga-appliance-release-x7k2p"))
    assert with_run["predicate"]["runDetails"]["metadata"] == {
        "invocationId": "alga-appliance-release-x7k2p"
    }
    del with_run["predicate"]["runDetails"]["metadata"]
    assert with_run == plain
    builder = statement(pv.RunDetails(pv.workflow_template_builder_id("alga-appliance-release")))
    assert builder["predicate"]["runDetails"]["builder"]["id"] == (
        f"{pv.PROJECT_URI}/builders/argo-workflowtemplate/alga-appliance-release"
    )
    assert builder["predicate"]["buildDefinition"] == plain["predicate"]["buildDefinition"]


def test_the_manifests_own_run_is_not_a_parameter() -> None:
    # provenance.run (manifest publish --run) is in the manifest, so in the digest, but the
    # attestation's run id comes from the caller only.
    without = copy.deepcopy(RELEASE)
    del without["provenance"]["run"]
    assert statement(release=without) == statement()


def test_a_release_without_source_url_still_names_its_commit() -> None:
    release = copy.deepcopy(RELEASE)
    del release["provenance"]["source"]
    st = statement(release=release)
    definition = st["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["source"] == {"commit": COMMIT}
    assert definition["resolvedDependencies"][0] == {
        "name": "source",
        "digest": {"gitCommit": COMMIT},
    }


@pytest.mark.parametrize(
    ("builder", "run", "problem"),
    [
        ("not a uri", None, "--builder-id"),
        ("https://x/" + "a" * 2048, None, "--builder-id"),
        (None, "Has Spaces", "--run-id"),
        (None, "UPPER", "--run-id"),
        (None, "-leading", "--run-id"),
        (None, "a" * 254, "--run-id"),
    ],
)
def test_run_details_refuse_bad_input(builder: str | None, run: str | None, problem: str) -> None:
    with pytest.raises(BadInput, match=problem):
        pv.RunDetails.parse(builder, run)


def test_run_details_defaults() -> None:
    assert pv.RunDetails.parse(None, None) == pv.RunDetails(pv.DEFAULT_BUILDER_ID, None)
    assert pv.RunDetails.parse("  ", " ") == pv.RunDetails(pv.DEFAULT_BUILDER_ID, None)
    assert pv.RunDetails.parse("urn:x:y", "wf-1.2") == pv.RunDetails("urn:x:y", "wf-1.2")


# -- checking attested statements ------------------------------------------------------------


def test_statement_problems_accepts_its_own_statement_through_another_host() -> None:
    st = pv.provenance_statement(
        registry="127.0.0.1:5000", namespace=NS, digest=DIGEST, release=RELEASE, run=pv.RunDetails()
    )
    assert pv.statement_problems(st, DIGEST, RELEASE) == []


def test_statement_problems_name_what_disagrees() -> None:
    other = Digest.parse("sha256:" + "8" * 64)
    assert pv.statement_problems(statement(), other, RELEASE) == [
        f"no subject names the release manifest {other}"
    ]
    older = copy.deepcopy(RELEASE)
    older["version"] = "1.3.0"
    older["provenance"]["revision"] = "0" * 40
    problems = pv.statement_problems(statement(release=older), DIGEST, RELEASE)
    assert any(p.startswith('externalParameters.version is "1.3.0"') for p in problems)
    assert any(p.startswith("externalParameters.source is") for p in problems)
    assert any("resolvedDependencies lacks source" in p for p in problems)
    assert pv.statement_problems([], DIGEST, RELEASE) == ["the statement is not a JSON object"]
    wrong_type = dict(statement(), predicateType="https://slsa.dev/provenance/v0.2")
    assert any("predicateType" in p for p in pv.statement_problems(wrong_type, DIGEST, RELEASE))


def _found(key: keys.SigningKey, st: Any, name: str = "sha256:" + "1" * 64) -> FoundAttestation:
    envelope = dsse.parse_envelope(dsse.sign_envelope(key, pv.statement_bytes(st)))
    return FoundAttestation(name, pv.SLSA_PROVENANCE_V1, envelope)


def _report(found: list[FoundAttestation], trusted: list[keys.PublicKey]) -> pv.ProvenanceReport:
    return pv.check_provenance("ref", "sha256-x.att", found, DIGEST, RELEASE, trusted)


def test_check_provenance_outcomes() -> None:
    ours, theirs = keys.SigningKey.generate(), keys.SigningKey.generate()
    good = _found(ours, statement())
    report = _report([_found(theirs, statement()), good], [ours.public])
    assert report.status == "verified" and len(report.verified) == 1
    assert pv.require_provenance(report) is report
    (verified,) = report.verified
    assert verified.signed_by == ours.key_id
    assert verified.to_json()["sourceCommit"] == COMMIT
    assert verified.to_json()["invocationId"] is None

    missing = _report([], [ours.public])
    assert missing.status == "missing"
    with pytest.raises(ProvenanceMissing) as refused:
        pv.require_provenance(missing)
    assert refused.value.exit_code == 3 and "--signing-key" in str(refused.value.hint)

    untrusted = _report([_found(theirs, statement())], [ours.public])
    assert untrusted.status == "untrusted"
    with pytest.raises(ProvenanceUntrusted, match="signed by no trusted key"):
        pv.require_provenance(untrusted)

    older = copy.deepcopy(RELEASE)
    older["version"] = "1.3.0"
    wrong = _report([_found(ours, statement(release=older))], [ours.public])
    assert wrong.status == "invalid"
    with pytest.raises(ProvenanceInvalid, match=r"externalParameters\.version"):
        pv.require_provenance(wrong)

    junk = FoundAttestation(
        "sha256:" + "2" * 64, pv.SLSA_PROVENANCE_V1, None, "not a DSSE envelope"
    )
    assert _report([junk], [ours.public]).status == "invalid"


def test_other_predicate_types_are_not_provenance() -> None:
    key = keys.SigningKey.generate()
    sbom = dict(statement(), predicateType="https://spdx.dev/Document")
    report = _report([_found(key, sbom)], [key.public])
    assert report.status == "missing" and report.others == 1
    assert report.to_json()["attestations"] == []


def test_a_tampered_statement_is_untrusted() -> None:
    key = keys.SigningKey.generate()
    document = json.loads(dsse.sign_envelope(key, pv.statement_bytes(statement())))
    forged = statement()
    forged["predicate"]["buildDefinition"]["externalParameters"]["source"]["commit"] = "0" * 40
    document["payload"] = base64.b64encode(pv.statement_bytes(forged)).decode()
    found = FoundAttestation(
        "sha256:" + "3" * 64,
        pv.SLSA_PROVENANCE_V1,
        dsse.parse_envelope(json.dumps(document).encode()),
    )
    report = _report([found], [key.public])
    assert report.status == "untrusted"
    assert "altered after signing" in report.attestations[0].describe()
