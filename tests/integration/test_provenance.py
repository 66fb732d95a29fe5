"""SLSA provenance attestations on the real registry, checked by the real cosign.

A publish with a signing key attaches an in-toto statement (SLSA v1 provenance) about the
release manifest, in a DSSE envelope under ``sha256-<hex>.att``. The oracle is ``cosign
verify-attestation --key PUB --insecure-ignore-tlog=true --type slsaprovenance1`` (v2.6.5):
it must accept the attestation under our key and refuse it under another; the statement
must name the exact commit of the checkout; a re-run must write nothing and leave the same
``.att`` digest; a run with ``--run-id`` adds its own attestation, which differs from the
first in ``invocationId`` only. ``verify`` refuses a release whose provenance is missing,
signed by another key, altered, or copied from another release (each its own kind).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from steps.oci import mediatypes as mt
from steps.oci.reference import Digest
from steps.release import provenance as pv
from steps.signing import attest, cosign, dsse, keys
from tests.harness.cosign import Cosign, find_cosign
from tests.harness.registry import Registry
from tests.helpers import cli, client_for, registry_args, registry_env
from tests.integration.test_publish import RELEASE_REPO, publish_args, push_images

pytestmark = pytest.mark.integration

PASSWORD = "provenance-pass-4"
SOURCE_URL = "https://github.com/Nine-Minds/alga-psa"


@pytest.fixture
def key_pair(tmp_path: Path) -> tuple[Path, Path]:
    pair = keys.write_key_pair(tmp_path / "release", PASSWORD.encode())
    return pair.private_path, pair.public_path


@pytest.fixture
def other_pair(tmp_path: Path) -> tuple[Path, Path]:
    pair = keys.write_key_pair(tmp_path / "other", PASSWORD.encode())
    return pair.private_path, pair.public_path


@pytest.fixture
def git_source(release_source: Path) -> tuple[Path, str]:
    """The reference release source as a git checkout with one commit; (path, commit)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(release_source.parent),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_AUTHOR_DATE": "2024-05-01T12:00:00Z",
        "GIT_COMMITTER_DATE": "2024-05-01T12:00:00Z",
    }
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "release source"]):
        subprocess.run(["git", *args], cwd=release_source, env=env, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=release_source, env=env, check=True, capture_output=True
    ).stdout.decode()
    return release_source, commit.strip()


def _statements(verified: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The statements of the envelopes ``cosign verify-attestation`` printed."""
    return [
        json.loads(base64.b64decode(json.loads(line)["payload"]))
        for line in verified.stdout.splitlines()
        if line.strip()
    ]


def _inspect(registry: Registry, ref: str, public: Path | None, *extra: str) -> Any:
    trusted = ["--trusted-key", str(public)] if public else []
    return cli(["inspect", ref, "--provenance", *trusted, *registry_args(registry), *extra])


def _signed_publish(
    registry: Registry, source: Path, private: Path, host: str | None = None, *extra: str
) -> list[str]:
    return publish_args(
        registry,
        source,
        host=host,
        extra=("--signing-key", str(private), "--source-url", SOURCE_URL, *extra),
    )


def test_a_signed_publish_attests_provenance_cosign_verifies_it_and_a_rerun_writes_nothing(
    registry: Registry,
    git_source: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    fault_proxy: Any,
    key_pair: tuple[Path, Path],
    other_pair: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    source, commit = git_source
    private, public = key_pair
    push_images(registry)
    proxy = fault_proxy(registry)
    monkeypatch.setenv("ALGA_SIGNING_KEY_PASSWORD", PASSWORD)
    monkeypatch.delenv("ALGA_RUN_ID", raising=False)
    with registry_env(monkeypatch, registry):
        first = cli(_signed_publish(registry, source, private, proxy.host))
        assert first.code == 0, first.stderr
        proxy.reset()
        again = cli(_signed_publish(registry, source, private, proxy.host))
    assert again.code == 0, again.stderr
    writes = [r for r in proxy.requests if r.method in ("PUT", "POST", "PATCH", "DELETE")]
    assert writes == [], writes  # nothing attested again, nothing uploaded
    summary = first.json()
    attested = summary["attestation"]
    digest = Digest.parse(summary["manifestDigest"])
    assert attested["status"] == "attested"
    assert attested["attestationTag"] == f"sha256-{digest.hex}.att"
    assert attested["predicateType"] == "https://slsa.dev/provenance/v1"
    assert attested["builderId"] == pv.DEFAULT_BUILDER_ID and attested["invocationId"] is None
    assert again.json()["attestation"] == {**attested, "status": "unchanged"}
    assert PASSWORD not in first.stdout + first.stderr

    # The real cosign accepts it under our key, and under another refuses it.
    real = Cosign(find_cosign(), tmp_path / "home", PASSWORD)
    reference = f"{proxy.host}/{RELEASE_REPO}@{digest}"
    accepted = real.verify_attestation(reference, public)
    assert accepted.returncode == 0, accepted.stderr
    (statement,) = _statements(accepted)
    assert real.verify_attestation(reference, other_pair[1]).returncode != 0

    # It names the exact commit, the release's inputs and every pinned digest.
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [
        {"name": f"{proxy.host}/{RELEASE_REPO}", "digest": {"sha256": digest.hex}}
    ]
    definition = statement["predicate"]["buildDefinition"]
    params = definition["externalParameters"]
    assert params["source"] == {"repository": SOURCE_URL, "commit": commit}
    assert params["version"] == "1.0.0" and params["channel"] == "nightly"
    assert params["controlPlane"] == summary["controlPlane"]
    assert {k: v["tag"] for k, v in params["images"].items()} == summary["images"]
    assert all(Digest.parse(v["digest"]) for v in params["images"].values())
    deps = {d["name"]: d for d in definition["resolvedDependencies"]}
    assert deps["source"] == {
        "name": "source",
        "uri": f"git+{SOURCE_URL}@{commit}",
        "digest": {"gitCommit": commit},
    }
    for name, chart in summary["charts"].items():
        assert deps[f"charts/{name}"]["digest"] == {"sha256": Digest.parse(chart["digest"]).hex}
    assert deps["config"]["digest"] == {"sha256": Digest.parse(summary["config"]["digest"]).hex}
    assert statement["predicate"]["runDetails"] == {"builder": {"id": pv.DEFAULT_BUILDER_ID}}

    # Byte-identical on the re-run: the .att manifest is the one the first run pushed.
    with client_for(registry) as client:
        att = client.get_manifest(RELEASE_REPO, attested["attestationTag"])
    assert str(att.digest) == attested["attestationDigest"]
    assert len(att.json()["layers"]) == 1


def test_a_run_id_adds_an_attestation_that_differs_in_invocation_id_only(
    registry: Registry,
    git_source: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    key_pair: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    source, commit = git_source
    private, public = key_pair
    digest = _publish_signed_release(registry, source, private, monkeypatch)
    with registry_env(monkeypatch, registry):
        monkeypatch.setenv("ALGA_RUN_ID", "alga-appliance-release-x7k2p")  # as Argo passes it
        with_run = cli(_signed_publish(registry, source, private))
        assert with_run.code == 0, with_run.stderr
        rerun = cli(_signed_publish(registry, source, private))
        assert rerun.code == 0, rerun.stderr
        monkeypatch.delenv("ALGA_RUN_ID")
        shown = _inspect(registry, "nightly", public, "--json")
        human = _inspect(registry, "1.0.0", public)
    assert with_run.json()["manifestDigest"] == str(digest)  # the same release
    assert with_run.json()["attestation"]["status"] == "attested"
    assert with_run.json()["attestation"]["invocationId"] == "alga-appliance-release-x7k2p"
    assert rerun.json()["attestation"]["status"] == "unchanged"  # the same run id: nothing new
    assert (
        rerun.json()["attestation"]["attestationDigest"]
        == (with_run.json()["attestation"]["attestationDigest"])
    )

    real = Cosign(find_cosign(), tmp_path / "home", PASSWORD)
    verified = real.verify_attestation(f"{registry.host}/{RELEASE_REPO}@{digest}", public)
    assert verified.returncode == 0, verified.stderr
    first, second = _statements(verified)
    assert second["predicate"]["runDetails"]["metadata"] == {
        "invocationId": "alga-appliance-release-x7k2p"
    }
    del second["predicate"]["runDetails"]["metadata"]
    assert second == first

    # inspect --provenance: both verified, in JSON under "provenance" and in the human form
    assert shown.code == 0, shown.stderr
    report = shown.json()["provenance"]
    assert report["verified"] is True and report["status"] == "verified"
    assert [a["invocationId"] for a in report["attestations"]] == [
        None,
        "alga-appliance-release-x7k2p",
    ]
    assert {a["sourceCommit"] for a in report["attestations"]} == {commit}
    assert {a["signedBy"] for a in report["attestations"]} == set(shown.json()["trustedKeys"])
    assert human.code == 0, human.stderr
    assert "provenance (sha256-" in human.stdout and "verified (2 of 2" in human.stdout
    assert f"{SOURCE_URL} @ {commit}" in human.stdout
    assert "alga-appliance-release-x7k2p" in human.stdout


def _publish_signed_release(
    registry: Registry, source: Path, private: Path, monkeypatch: pytest.MonkeyPatch
) -> Digest:
    monkeypatch.setenv("ALGA_SIGNING_KEY_PASSWORD", PASSWORD)
    monkeypatch.delenv("ALGA_RUN_ID", raising=False)
    push_images(registry)
    with registry_env(monkeypatch, registry):
        published = cli(_signed_publish(registry, source, private))
    assert published.code == 0, published.stderr
    return Digest.parse(published.json()["manifestDigest"])


def _verify(registry: Registry, public: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    with registry_env(monkeypatch, registry):
        return cli(
            [
                "verify",
                "--channel",
                "nightly",
                "--trusted-key",
                str(public),
                *registry_args(registry),
                "--json",
            ]
        )


def _put_attestations(registry: Registry, digest: Digest, envelopes: list[bytes]) -> None:
    """What someone with push rights but without the key can do: rewrite the .att tag."""
    layers = [attest.attestation_layer(e, pv.SLSA_PROVENANCE_V1) for e in envelopes]
    manifest, config = cosign.signature_manifest(layers)
    with client_for(registry) as client:
        for envelope in envelopes:
            client.push_blob(RELEASE_REPO, envelope)
        client.push_blob(RELEASE_REPO, config)
        client.put_manifest(RELEASE_REPO, attest.attestation_tag(digest), manifest, mt.OCI_MANIFEST)


def _our_envelope(registry: Registry, digest: Digest) -> bytes:
    """The one envelope the publish attached (its exact bytes)."""
    with client_for(registry) as client:
        (layer,) = client.get_manifest(RELEASE_REPO, attest.attestation_tag(digest)).json()[
            "layers"
        ]
        return client.get_blob(RELEASE_REPO, Digest.parse(layer["digest"]))


def test_verify_passes_a_trusted_attestation_and_names_it(
    registry: Registry,
    git_source: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    key_pair: tuple[Path, Path],
) -> None:
    source, commit = git_source
    private, public = key_pair
    _publish_signed_release(registry, source, private, monkeypatch)
    verified = _verify(registry, public, monkeypatch)
    assert verified.code == 0, verified.stderr
    out = verified.json()
    assert out["verified"] is True and "signatures" in out  # the keys verify always had
    assert out["provenance"]["status"] == "verified"
    assert out["provenance"]["attestations"][0]["sourceCommit"] == commit


def test_verify_refuses_missing_provenance(
    registry: Registry,
    git_source: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    key_pair: tuple[Path, Path],
) -> None:
    source, _ = git_source
    private, public = key_pair
    push_images(registry)
    with registry_env(monkeypatch, registry):
        unsigned = cli(publish_args(registry, source))  # no key: no signature, no attestation
    assert unsigned.code == 0, unsigned.stderr
    digest = Digest.parse(unsigned.json()["manifestDigest"])
    signer = cosign.Signer(keys.read_signing_key(private, PASSWORD.encode()))
    with client_for(registry) as client:  # signed afterwards, but never attested
        signer.sign(client, RELEASE_REPO, digest)
        config = unsigned.json()["config"]
        signer.sign(client, "nine-minds/alga-appliance-config", Digest.parse(config["digest"]))
    refused = _verify(registry, public, monkeypatch)
    assert refused.code == 3, refused.stderr
    assert refused.json()["kind"] == "ProvenanceMissing"
    assert "no SLSA provenance attestation" in refused.json()["message"]


def test_verify_refuses_provenance_by_another_key_and_an_altered_one(
    registry: Registry,
    git_source: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    key_pair: tuple[Path, Path],
    other_pair: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    source, _ = git_source
    private, public = key_pair
    digest = _publish_signed_release(registry, source, private, monkeypatch)
    ours = _our_envelope(registry, digest)
    real = Cosign(find_cosign(), tmp_path / "home", PASSWORD)
    reference = f"{registry.host}/{RELEASE_REPO}@{digest}"

    # Another key's attestation of the same statement, in place of ours.
    other = keys.read_signing_key(other_pair[0], PASSWORD.encode())
    statement = dsse.parse_envelope(ours).payload
    _put_attestations(registry, digest, [dsse.sign_envelope(other, statement)])
    untrusted = _verify(registry, public, monkeypatch)
    assert untrusted.code == 3 and untrusted.json()["kind"] == "ProvenanceUntrusted"
    assert real.verify_attestation(reference, public).returncode != 0

    # Ours, with the statement altered (another commit) and the signature kept.
    document = json.loads(ours)
    forged = json.loads(base64.b64decode(document["payload"]))
    forged["predicate"]["buildDefinition"]["externalParameters"]["source"]["commit"] = "0" * 40
    document["payload"] = base64.b64encode(pv.statement_bytes(forged)).decode()
    _put_attestations(registry, digest, [json.dumps(document).encode()])
    altered = _verify(registry, public, monkeypatch)
    assert altered.code == 3 and altered.json()["kind"] == "ProvenanceUntrusted"
    assert "altered after signing" in altered.json()["message"]
    assert real.verify_attestation(reference, public).returncode != 0

    # Putting ours back (a re-run of the publish) makes it pass again.
    _put_attestations(registry, digest, [ours])
    assert _verify(registry, public, monkeypatch).code == 0


def test_verify_refuses_an_attestation_copied_from_another_release(
    registry: Registry,
    git_source: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    key_pair: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    source, _ = git_source
    private, public = key_pair
    older = _publish_signed_release(registry, source, private, monkeypatch)
    older_envelope = _our_envelope(registry, older)
    with registry_env(monkeypatch, registry):
        newer = cli(
            publish_args(
                registry,
                source,
                version="1.1.0",
                extra=("--signing-key", str(private), "--source-url", SOURCE_URL),
            )
        )
    assert newer.code == 0, newer.stderr
    digest = Digest.parse(newer.json()["manifestDigest"])
    # A trusted signature, but about release 1.0.0: replayed onto 1.1.0's .att tag.
    _put_attestations(registry, digest, [older_envelope])
    refused = _verify(registry, public, monkeypatch)
    assert refused.code == 3, refused.stderr
    assert refused.json()["kind"] == "ProvenanceInvalid"
    assert f"no subject names the release manifest {digest}" in refused.json()["message"]
    real = Cosign(find_cosign(), tmp_path / "home", PASSWORD)
    assert (
        real.verify_attestation(f"{registry.host}/{RELEASE_REPO}@{digest}", public).returncode != 0
    )
    with registry_env(monkeypatch, registry):
        shown = _inspect(registry, "nightly", public)
        no_key = _inspect(registry, "nightly", None)
    assert shown.code == 3  # inspect --provenance gates too
    assert "INVALID" in shown.stdout
    assert no_key.code == 2 and "--trusted-key" in no_key.stderr
