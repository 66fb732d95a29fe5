"""`alga-release publish` end to end on the real registry (token auth), and its gates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from steps.oci import Digest
from steps.oci import mediatypes as mt
from steps.release import manifest as rm
from tests.harness.images import push_tiny_image
from tests.harness.registry import Registry
from tests.helpers import cli, client_for, registry_args, registry_env, repositories_on_disk

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TAG = "62cdce38"
IMAGE_REPOS = {
    "algaCore": "alga-psa-ee",
    "workflowWorker": "workflow-worker",
    "emailService": "email-service",
    "temporalWorker": "temporal-worker",
}
RELEASE_REPO = "nine-minds/alga-appliance-release"


def push_images(reg: Registry, tag: str = TAG, control_plane: bool = True) -> None:
    with client_for(reg) as client:
        for repo in IMAGE_REPOS.values():
            push_tiny_image(client, f"nine-minds/{repo}", tag)
        if control_plane:
            push_tiny_image(client, "nine-minds/alga-appliance-control-plane", tag)


def publish_args(
    reg: Registry,
    src: Path,
    version: str = "1.0.0",
    channel: str = "nightly",
    tag: str = TAG,
    host: str | None = None,
    extra: tuple[str, ...] = (),
) -> list[str]:
    return [
        "publish",
        "--source",
        str(src),
        "--config",
        str(src / "release.yaml"),
        "--version",
        version,
        "--channel",
        channel,
        *[a for key in IMAGE_REPOS for a in ("--image", f"{key}={tag}")],
        "--control-plane",
        tag,
        *registry_args(reg, host),
        "--json",
        *extra,
    ]


def channel_digest(reg: Registry, channel: str = "nightly") -> Digest | None:
    with client_for(reg) as client:
        head = client.head_manifest(RELEASE_REPO, channel)
    return head.digest if head else None


def test_publish_end_to_end_on_a_token_registry(
    token_registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_images(token_registry)
    with registry_env(monkeypatch, token_registry):
        result = cli(publish_args(token_registry, release_source))
    assert result.code == 0, result.stderr
    out = result.json()
    assert out["verified"] is True
    assert out["channelMove"]["moved"] is True
    with client_for(token_registry) as client:
        # The channel tag's Docker-Content-Digest is the reported manifest digest.
        head = client.head_manifest(RELEASE_REPO, "nightly")
        assert head is not None and str(head.digest) == out["manifestDigest"]
        manifest = client.get_manifest(RELEASE_REPO, "nightly")
        body = manifest.json()
        assert body["mediaType"] == mt.OCI_MANIFEST  # a single image manifest, not an index
        assert body["artifactType"] == mt.RELEASE_ARTIFACT
        assert body["config"]["mediaType"] == mt.RELEASE_CONFIG
        config_digest = Digest.parse(body["config"]["digest"])
        blob = client.get_blob(RELEASE_REPO, config_digest)
        assert str(Digest.of(blob)) == body["config"]["digest"] == out["configDigest"]
        assert body["layers"][0]["digest"] == body["config"]["digest"]
        release = json.loads(blob)
        rm.validate_manifest(release)
        # every referenced piece exists
        for name, version in release["charts"].items():
            chart = client.head_manifest(f"nine-minds/charts/{name}", version)
            assert chart is not None and str(chart.digest) == release["chartDigests"][name]
        bundle_repo = release["config"]["repository"].split("/", 1)[1]
        assert client.head_manifest(bundle_repo, Digest.parse(release["config"]["digest"]))
        for key, repo in IMAGE_REPOS.items():
            assert client.head_manifest(f"nine-minds/{repo}", release["images"][key])
        cp_repo, _, cp_digest = release["controlPlane"].partition("@")
        assert client.head_manifest(cp_repo.split("/", 1)[1], Digest.parse(cp_digest))
    assert token_registry.secrets_in(result.stdout + result.stderr) == []


def test_identical_rerun_writes_nothing(
    registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch, fault_proxy: Any
) -> None:
    push_images(registry)
    proxy = fault_proxy(registry)  # every run goes through it: the registry's name is its
    with registry_env(monkeypatch, registry):
        first = cli(publish_args(registry, release_source, host=proxy.host))
        assert first.code == 0, first.stderr
        proxy.reset()
        again = cli(publish_args(registry, release_source, host=proxy.host))
    assert again.code == 0, again.stderr
    writes = [r for r in proxy.requests if r.method in ("PUT", "POST", "PATCH", "DELETE")]
    assert writes == [], writes
    assert again.json()["manifestDigest"] == first.json()["manifestDigest"]
    assert again.json()["channelMove"]["moved"] is False
    # the bundle the tag holds byte for byte was validated before its push: not built again
    assert "kustomize built ./base" in first.stderr
    assert "kustomize built" not in again.stderr
    assert "holds these bytes: validated when they were pushed" in again.stderr


def test_a_publish_checks_its_inputs_once(
    registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preflight (every overlay file parsed, the profile values checked) runs once per
    publish, not again in its precheck's and its run's bundle steps."""
    import steps.release.plan
    import steps.release.preflight

    calls: list[str | None] = []
    real = steps.release.preflight.preflight

    def counting(source: Path, config: Any, profile: str | None) -> str:
        calls.append(profile)
        return real(source, config, profile)

    monkeypatch.setattr(steps.release.preflight, "preflight", counting)
    monkeypatch.setattr(steps.release.plan, "preflight", counting)
    push_images(registry)
    with registry_env(monkeypatch, registry):
        done = cli(publish_args(registry, release_source))
    assert done.code == 0, done.stderr
    assert calls == [None]
    # a bundle step on its own still checks
    calls.clear()
    with registry_env(monkeypatch, registry):
        alone = cli(
            [
                "bundle",
                "publish",
                "--source",
                str(release_source),
                "--config",
                str(release_source / "release.yaml"),
                "--charts",
                str(release_source / "missing.json"),
                "--version",
                "1.0.0",
                *registry_args(registry),
            ]
        )
    assert alone.code == 2 and "missing.json" in alone.stderr, alone.stderr
    assert calls == [None]


def test_registry_failing_mid_publish_leaves_the_channel_and_a_rerun_finishes(
    registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch, fault_proxy: Any
) -> None:
    push_images(registry)
    proxy = fault_proxy(registry)
    with registry_env(monkeypatch, registry):
        assert (
            cli(publish_args(registry, release_source, version="1.0.0", host=proxy.host)).code == 0
        )
        before = channel_digest(registry)
        # 1.1.0 changes one chart; the registry fails when the release manifest is pushed.
        values = release_source / "examples" / "charts" / "pgbouncer" / "values.yaml"
        values.write_text(values.read_text() + "\n# 1.1.0\n")
        proxy.fail_always(status=503, method="PUT", path=r"/alga-appliance-release/manifests/")
        failed = cli(publish_args(registry, release_source, version="1.1.0", host=proxy.host))
        assert failed.code == 75, failed.stderr
        assert channel_digest(registry) == before  # still the previous, complete release
        proxy.reset()
        rerun = cli(publish_args(registry, release_source, version="1.1.0", host=proxy.host))
    assert rerun.code == 0, rerun.stderr
    uploads = [
        r
        for r in proxy.requests
        if r.method in ("POST", "PATCH") or (r.method == "PUT" and "/blobs/" in r.path)
    ]
    # Only the release manifest's config blob was missing; every chart and the bundle were there.
    assert all("/alga-appliance-release/" in r.path for r in uploads), uploads
    assert str(channel_digest(registry)) == rerun.json()["manifestDigest"]
    assert rerun.json()["version"] == "1.1.0"


def test_no_channel_yet_when_the_first_publish_fails(
    registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch, fault_proxy: Any
) -> None:
    push_images(registry)
    proxy = fault_proxy(registry)
    proxy.fail_always(status=503, path=r"/alga-appliance-config/")
    with registry_env(monkeypatch, registry):
        failed = cli(publish_args(registry, release_source, host=proxy.host))
    assert failed.code == 75
    assert channel_digest(registry) is None


def _break(release_source: Path, case: str) -> tuple[list[str], dict[str, Any]]:
    """Arguments changes for each bad-input case: (extra args, overrides)."""
    if case == "profile values lacking a key":
        f = (
            release_source
            / "flux"
            / "profiles"
            / "single-node"
            / "values"
            / "alga-core.single-node.yaml"
        )
        f.write_text(
            "\n".join(
                line
                for line in f.read_text().splitlines()
                if not line.strip().startswith("domainSuffix:")
            )
            + "\n"
        )
        return [], {}
    if case == "missing profile":
        return ["--values-profile", "edge-cluster"], {}
    overrides = {
        "version not SemVer": {"version": "1.0-rc5.1"},
        "version not a tag": {"version": "1.0.0+build.5"},
        "channel not stable/nightly": {"channel": "beta"},
        "image tag missing": {"tag": "deadbee"},
    }
    return [], overrides.get(case, {})


@pytest.mark.parametrize(
    ("case", "code", "expect"),
    [
        ("version not SemVer", 2, "1.0-rc5.1"),
        ("version not a tag", 2, "+"),
        ("channel not stable/nightly", 2, "beta"),
        ("image tag missing", 3, "deadbee"),
        ("missing control plane", 3, "alga-appliance-control-plane"),
        ("profile values lacking a key", 2, "domainSuffix"),
        ("missing profile", 2, "edge-cluster"),
    ],
)
def test_bad_input_moves_no_channel(
    registry: Registry,
    release_source: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    code: int,
    expect: str,
) -> None:
    push_images(registry, control_plane=case != "missing control plane")
    extra, overrides = _break(release_source, case)
    args = publish_args(registry, release_source, **overrides, extra=tuple(extra))
    with registry_env(monkeypatch, registry):
        result = cli(args)
    assert result.code == code, (case, result.stderr)
    assert expect in result.stderr
    assert "Traceback" not in result.stderr
    assert channel_digest(registry) is None
    if code == 2:
        # Bad input is caught before any push: no version is used up by a failed attempt.
        pushed = repositories_on_disk(registry)
        assert not [r for r in pushed if "/charts/" in r or r.endswith("alga-appliance-config")]


def test_dry_run_writes_nothing(
    registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch, fault_proxy: Any
) -> None:
    push_images(registry)
    proxy = fault_proxy(registry)
    with registry_env(monkeypatch, registry):
        result = cli(publish_args(registry, release_source, host=proxy.host, extra=("--dry-run",)))
    assert result.code == 0, result.stderr
    assert result.json()["dryRun"] is True
    assert result.json()["manifestDigest"].startswith("sha256:")
    assert [r for r in proxy.requests if r.method in ("PUT", "POST", "PATCH")] == []
    assert channel_digest(registry) is None


def test_a_private_package_fails_before_the_channel_moves(
    registry_factory: Any, release_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Appliances pull without credentials: with --verify-anonymous (the default for
    ghcr.io) a registry that refuses anonymous pulls fails the run before the move,
    naming the packages to make public."""
    private = registry_factory("token", allow_anonymous_pull=False)
    push_images(private)
    with registry_env(monkeypatch, private):
        result = cli(publish_args(private, release_source, extra=("--verify-anonymous",)))
        assert result.code == 3, result.stderr
        assert "public" in result.stderr
        assert "alga-appliance-release" in result.stderr
        assert channel_digest(private) is None
        # Everything else was published; without the anonymous check the re-run completes.
        again = cli(publish_args(private, release_source, extra=("--no-verify-anonymous",)))
    assert again.code == 0, again.stderr
    assert str(channel_digest(private)) == again.json()["manifestDigest"]


def test_a_failed_attempt_does_not_use_up_the_version(
    registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_images(registry)
    values = release_source / "flux" / "profiles" / "single-node" / "values"
    worker = values / "temporal-worker.single-node.yaml"
    good = worker.read_text()
    worker.write_text(
        "\n".join(line for line in good.splitlines() if not line.startswith("publicBaseUrl:"))
        + "\n"
    )
    with registry_env(monkeypatch, registry):
        bad = cli(publish_args(registry, release_source, version="3.0.0"))
        assert bad.code == 2 and "publicBaseUrl" in bad.stderr
        worker.write_text(good)
        fixed = cli(publish_args(registry, release_source, version="3.0.0"))
    assert fixed.code == 0, fixed.stderr


def test_the_run_goes_to_the_audit_record_not_the_manifest(
    registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_images(registry)
    with registry_env(monkeypatch, registry):
        monkeypatch.setenv("ALGA_RUN", "alga-appliance-release-abc12")
        first = cli(publish_args(registry, release_source))
        monkeypatch.setenv("ALGA_RUN", "alga-appliance-release-zz999")
        again = cli(publish_args(registry, release_source))
    assert first.code == 0 and again.code == 0, again.stderr
    assert first.json()["manifestDigest"] == again.json()["manifestDigest"]
    history = cli(["history", "nightly", *registry_args(registry), "--json"]).json()["moves"]
    assert [m["run"] for m in history] == ["alga-appliance-release-abc12"]
