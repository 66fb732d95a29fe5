"""Signing through the CLI: ``keys generate``, ``publish --signing-key``, the channel gate.

The oracle is the real ``cosign verify --key`` (v2.6.5). A whole publish with a key must
leave every chart, the bundle, the control plane and the release manifest signed (cosign
accepts each under our key, rejects it under another); a re-run writes nothing; a run
that requires a key and has none pushes nothing; moves and ``verify`` refuse a release
that is not signed by a trusted key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from steps.oci.reference import Digest
from tests.harness.cosign import Cosign, find_cosign
from tests.harness.registry import Registry
from tests.helpers import cli, client_for, registry_args, registry_env, repositories_on_disk
from tests.integration.test_publish import RELEASE_REPO, channel_digest, publish_args, push_images

pytestmark = pytest.mark.integration

PASSWORD = "cli-signing-pass-3"


@pytest.fixture
def key_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("ALGA_SIGNING_KEY_PASSWORD", PASSWORD)
    result = cli(["keys", "generate", "--output-prefix", str(tmp_path / "release"), "--json"])
    assert result.code == 0, result.stderr
    out = result.json()
    assert out["keyId"].startswith("sha256:") and len(out["keyId"]) == 23
    assert PASSWORD not in result.stdout + result.stderr
    return Path(out["privateKey"]), Path(out["publicKey"])


@pytest.fixture
def other_public(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ALGA_SIGNING_KEY_PASSWORD", PASSWORD)
    result = cli(["keys", "generate", "--output-prefix", str(tmp_path / "other"), "--json"])
    assert result.code == 0, result.stderr
    return Path(result.json()["publicKey"])


def _pieces(reg_host: str, summary: dict[str, Any]) -> list[str]:
    refs = [
        f"{reg_host}/nine-minds/charts/{name}@{c['digest']}"
        for name, c in summary["charts"].items()
    ]
    refs.append(f"{summary['config']['repository']}@{summary['config']['digest']}")
    refs.append(summary["controlPlane"])
    refs.append(f"{summary['repository']}@{summary['manifestDigest']}")
    return refs


def test_keys_generate_never_overwrites(
    tmp_path: Path, key_pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    private, _ = key_pair
    before = private.read_bytes()
    again = cli(["keys", "generate", "--output-prefix", str(tmp_path / "release")])
    assert again.code == 2
    assert "refusing to overwrite" in again.stderr
    assert private.read_bytes() == before
    monkeypatch.delenv("ALGA_SIGNING_KEY_PASSWORD")
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
    nopass = cli(["keys", "generate", "--output-prefix", str(tmp_path / "new")])
    assert nopass.code == 2 and "no password" in nopass.stderr
    assert not (tmp_path / "new.key").exists()


def test_a_signed_publish_is_accepted_by_cosign_and_a_rerun_writes_nothing(
    registry: Registry,
    release_source: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault_proxy: Any,
    key_pair: tuple[Path, Path],
    other_public: Path,
    tmp_path: Path,
) -> None:
    private, public = key_pair
    push_images(registry)
    proxy = fault_proxy(registry)
    signing = ("--signing-key", str(private))
    with registry_env(monkeypatch, registry):
        first = cli(publish_args(registry, release_source, host=proxy.host, extra=signing))
        assert first.code == 0, first.stderr
        proxy.reset()
        again = cli(publish_args(registry, release_source, host=proxy.host, extra=signing))
    assert again.code == 0, again.stderr
    writes = [r for r in proxy.requests if r.method in ("PUT", "POST", "PATCH", "DELETE")]
    assert writes == [], writes  # nothing re-signed, nothing uploaded
    summary = first.json()
    assert summary["verified"] is True
    assert again.json()["manifestDigest"] == summary["manifestDigest"]
    assert PASSWORD not in first.stdout + first.stderr + again.stdout + again.stderr

    cosign = Cosign(find_cosign(), tmp_path / "home", PASSWORD)
    pieces = _pieces(proxy.host, summary)
    assert len(pieces) == 9  # six charts, the bundle, the control plane, the release
    for reference in pieces:
        accepted = cosign.verify(reference, public)
        assert accepted.returncode == 0, (reference, accepted.stderr)
        assert cosign.verify(reference, other_public).returncode != 0, reference

    # inspect shows each piece signed by our key; under another key, UNSIGNED.
    with registry_env(monkeypatch, registry):
        shown = cli(
            [
                "inspect",
                "nightly",
                "--trusted-key",
                str(public),
                *registry_args(registry, proxy.host),
                "--json",
            ]
        )
        stranger = cli(
            [
                "inspect",
                "nightly",
                "--trusted-key",
                str(other_public),
                *registry_args(registry, proxy.host),
                "--json",
            ]
        )
    assert shown.code == 0, shown.stderr
    statuses = {(p["kind"], p["name"]): p["status"] for p in shown.json()["signatures"]}
    key_id = shown.json()["trustedKeys"][0]
    assert len(statuses) == 9
    assert set(statuses.values()) == {f"signed by {key_id}"}
    assert {p["signed"] for p in stranger.json()["signatures"]} == {False}
    assert shown.json()["imageDrift"] == []
    with registry_env(monkeypatch, registry):
        human = cli(
            [
                "inspect",
                "nightly",
                "--trusted-key",
                str(other_public),
                *registry_args(registry, proxy.host),
            ]
        )
    assert human.code == 0, human.stderr
    assert "signatures (trusted: sha256:" in human.stdout
    assert human.stdout.count("UNSIGNED") == 9


def test_a_run_requiring_a_key_without_one_pushes_nothing(
    registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_images(registry)
    before = repositories_on_disk(registry)
    with registry_env(monkeypatch, registry):
        result = cli(publish_args(registry, release_source, extra=("--require-signing",)))
    assert result.code == 2, result.stderr
    assert "--signing-key" in result.stderr and "signing is required" in result.stderr
    assert repositories_on_disk(registry) == before
    assert channel_digest(registry) is None


def test_a_wrong_password_pushes_nothing_and_is_not_shown(
    registry: Registry,
    release_source: Path,
    monkeypatch: pytest.MonkeyPatch,
    key_pair: tuple[Path, Path],
) -> None:
    private, _ = key_pair
    push_images(registry)
    before = repositories_on_disk(registry)
    monkeypatch.setenv("ALGA_SIGNING_KEY_PASSWORD", "definitely-wrong-password")
    with registry_env(monkeypatch, registry):
        result = cli(publish_args(registry, release_source, extra=("--signing-key", str(private))))
    assert result.code == 2
    assert str(private) in result.stderr and "password does not open it" in result.stderr
    assert "definitely-wrong-password" not in result.stdout + result.stderr
    assert repositories_on_disk(registry) == before


def test_moves_and_verify_refuse_an_unsigned_release_when_a_key_is_configured(
    registry: Registry,
    release_source: Path,
    monkeypatch: pytest.MonkeyPatch,
    key_pair: tuple[Path, Path],
) -> None:
    private, public = key_pair
    push_images(registry)
    with registry_env(monkeypatch, registry):
        unsigned = cli(publish_args(registry, release_source))  # no key: as before
        assert unsigned.code == 0, unsigned.stderr
        reg = registry_args(registry)
        promote = cli(
            [
                "promote",
                "--version",
                "1.0.0",
                "--channel",
                "stable",
                "--signing-key",
                str(private),
                *reg,
            ]
        )
        verify = cli(["verify", "--channel", "nightly", "--trusted-key", str(public), *reg])
        assert channel_digest(registry, "stable") is None  # the refused promote moved nothing
        # signing the same release afterwards (a re-run with the key) lets it through
        signed = cli(publish_args(registry, release_source, extra=("--signing-key", str(private))))
        promote_again = cli(
            [
                "promote",
                "--version",
                "1.0.0",
                "--channel",
                "stable",
                "--trusted-key",
                str(public),
                *reg,
                "--json",
            ]
        )
    assert promote.code == 3, promote.stderr
    assert "UnsignedRelease" in promote.stderr or "not signed by a trusted key" in promote.stderr
    assert "alga-appliance-release" in promote.stderr and "alga-appliance-config" in promote.stderr
    assert verify.code == 3 and "not signed by a trusted key" in verify.stderr
    assert signed.code == 0, signed.stderr
    assert promote_again.code == 0, promote_again.stderr
    with client_for(registry) as client:
        head = client.head_manifest(RELEASE_REPO, "stable")
    assert head is not None
    assert head.digest == Digest.parse(json.loads(signed.stdout)["manifestDigest"])


def test_control_plane_copy_signs_what_it_pushes(
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    key_pair: tuple[Path, Path],
    other_public: Path,
    tmp_path: Path,
) -> None:
    from tests.harness.images import push_tiny_image

    private, public = key_pair
    with client_for(registry) as client:
        push_tiny_image(client, "upstream/control-plane", "62cdce38")
    argv = [
        "control-plane",
        "copy",
        f"{registry.host}/upstream/control-plane:62cdce38",
        "--tag",
        "62cdce38",
        *registry_args(registry),
        "--source-plain-http",
        "--signing-key",
        str(private),
        "--json",
    ]
    with registry_env(monkeypatch, registry):
        first = cli(argv)
        again = cli(argv)
    assert first.code == 0, first.stderr
    assert first.json()["signedBy"] == again.json()["signedBy"]
    reference = first.json()["reference"]
    cosign = Cosign(find_cosign(), tmp_path / "home", PASSWORD)
    assert cosign.verify(reference, public).returncode == 0
    assert cosign.verify(reference, other_public).returncode != 0


def test_the_argo_environment_signs_the_control_plane_but_not_in_a_dry_run(
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    key_pair: tuple[Path, Path],
    other_public: Path,
    tmp_path: Path,
) -> None:
    """The templates give every step the key by environment (``ALGA_SIGNING_KEY``, the
    password as ``ALGA_SIGNING_KEY_PASSWORD``) together with ``ALGA_DRY_RUN``: the images
    step signs the control plane in a real run and pushes nothing in a dry run."""
    from tests.integration.test_publish import IMAGE_REPOS, TAG

    private, public = key_pair
    push_images(registry)
    monkeypatch.setenv("ALGA_SIGNING_KEY", str(private))
    argv = [
        "images",
        "check",
        *[a for key in IMAGE_REPOS for a in ("--image", f"{key}={TAG}")],
        "--control-plane",
        TAG,
        *registry_args(registry),
        "--json",
    ]
    repo = "nine-minds/alga-appliance-control-plane"
    with registry_env(monkeypatch, registry):
        monkeypatch.setenv("ALGA_DRY_RUN", "true")
        dry = cli(argv)
        with client_for(registry) as client:
            after_dry = sorted(client.list_tags(repo))
        monkeypatch.setenv("ALGA_DRY_RUN", "false")
        real = cli(argv)
    assert dry.code == 0, dry.stderr
    assert "controlPlaneSignedBy" not in dry.json()
    assert after_dry == [TAG]  # no sha256-<hex>.sig
    assert real.code == 0, real.stderr
    reference = real.json()["controlPlane"]
    digest = reference.split("@", 1)[1]
    with client_for(registry) as client:
        assert sorted(client.list_tags(repo)) == sorted([TAG, digest.replace(":", "-") + ".sig"])
    assert real.json()["controlPlaneSignedBy"].startswith("sha256:")
    cosign = Cosign(find_cosign(), tmp_path / "home", PASSWORD)
    assert cosign.verify(reference, public).returncode == 0
    assert cosign.verify(reference, other_public).returncode != 0


def test_publish_verify_charts_needs_a_key_and_puts_verify_in_the_pushed_bundle(
    registry: Registry,
    release_source: Path,
    monkeypatch: pytest.MonkeyPatch,
    key_pair: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    """``--verify-charts``: without a key nothing is pushed (exit 2; Flux would refuse the
    unsigned charts); with one, the pushed bundle's HelmReleases verify every chart, whose
    signature the real cosign accepts under the key Flux is given."""
    from tests.integration.test_bundle_publish import BUNDLE_REPO, pull_bundle

    private, public = key_pair
    push_images(registry)
    before = repositories_on_disk(registry)
    with registry_env(monkeypatch, registry):
        refused = cli(publish_args(registry, release_source, extra=("--verify-charts",)))
        assert refused.code == 2, refused.stderr
        assert "--verify-charts without a signing key" in refused.stderr
        assert repositories_on_disk(registry) == before
        signed = cli(
            publish_args(
                registry, release_source, extra=("--verify-charts", "--signing-key", str(private))
            )
        )
    assert signed.code == 0, signed.stderr
    summary = signed.json()
    bundle = tmp_path / "bundle"
    pull_bundle(registry, summary["config"]["digest"], bundle)
    verify = {"provider": "cosign", "secretRef": {"name": "alga-appliance-trusted-keys"}}
    releases = sorted((bundle / "base" / "releases").glob("*.yaml"))
    assert len(releases) == 6
    for path in releases:
        (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert doc["spec"]["chart"]["spec"]["verify"] == verify, path.name
    cosign = Cosign(find_cosign(), tmp_path / "home", PASSWORD)
    for name, chart in summary["charts"].items():
        reference = f"{registry.host}/nine-minds/charts/{name}@{chart['digest']}"
        assert cosign.verify(reference, public).returncode == 0, reference
    assert BUNDLE_REPO in summary["config"]["repository"]
