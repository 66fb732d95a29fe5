"""promote, history, rollback and diff on the real registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from steps.oci import Digest
from tests.harness.registry import Registry
from tests.helpers import cli, client_for, registry_args, registry_env
from tests.integration.test_publish import (  # the same fixtures and helpers
    RELEASE_REPO,
    channel_digest,
    publish_args,
    push_images,
)

pytestmark = pytest.mark.integration


def publish(
    reg: Registry, src: Path, version: str, *, tag: str = "62cdce38", change: str | None = None
) -> dict[str, Any]:
    """Publish ``version`` to nightly; ``change`` names a chart to change first."""
    if change:
        values = src / "examples" / "charts" / change / "values.yaml"
        values.write_text(values.read_text() + f"\n# {version}\n")
    result = cli(publish_args(reg, src, version=version, tag=tag))
    assert result.code == 0, result.stderr
    out: dict[str, Any] = result.json()
    return out


def promote(reg: Registry, version: str, *extra: str, channel: str = "stable") -> Any:
    return cli(
        [
            "promote",
            "--version",
            version,
            "--channel",
            channel,
            *registry_args(reg),
            "--json",
            *extra,
        ]
    )


@pytest.fixture
def released(
    registry: Registry, release_source: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Releases 1.0.0 and 1.1.0 (pgbouncer changed) on nightly; nothing on stable."""
    push_images(registry)
    push_images(registry, tag="7a7a7a7")
    registry_env(monkeypatch, registry).__enter__()
    first = publish(registry, release_source, "1.0.0")
    second = publish(registry, release_source, "1.1.0", tag="7a7a7a7", change="pgbouncer")
    return {"1.0.0": first, "1.1.0": second}


def test_promote_nightly_to_stable_keeps_the_manifest_digest(
    registry: Registry, released: dict[str, Any]
) -> None:
    result = promote(registry, "1.1.0")
    assert result.code == 0, result.stderr
    assert str(channel_digest(registry, "stable")) == released["1.1.0"]["manifestDigest"]
    assert channel_digest(registry, "stable") == channel_digest(registry, "nightly")
    again = promote(registry, "1.1.0")
    assert again.code == 0
    assert again.json()["moved"] is False  # already so


def test_promote_older_is_refused_unless_allowed_with_a_reason(
    registry: Registry, released: dict[str, Any]
) -> None:
    assert promote(registry, "1.1.0").code == 0
    stable = channel_digest(registry, "stable")
    older = promote(registry, "1.0.0")
    assert older.code == 3
    assert "older" in older.stderr and "1.1.0" in older.stderr
    assert channel_digest(registry, "stable") == stable
    no_reason = promote(registry, "1.0.0", "--allow-downgrade")
    assert no_reason.code == 3 and "--reason" in no_reason.stderr
    assert channel_digest(registry, "stable") == stable
    allowed = promote(registry, "1.0.0", "--allow-downgrade", "--reason", "1.1.0 breaks login")
    assert allowed.code == 0, allowed.stderr
    assert str(channel_digest(registry, "stable")) == released["1.0.0"]["manifestDigest"]
    history = cli(["history", "stable", *registry_args(registry), "--json"]).json()
    last = history["moves"][-1]
    assert last["reason"] == "1.1.0 breaks login"
    assert (last["fromVersion"], last["version"]) == ("1.1.0", "1.0.0")


def test_incomplete_or_unknown_releases_are_refused(
    registry: Registry, released: dict[str, Any]
) -> None:
    assert promote(registry, "1.0.0").code == 0
    stable = channel_digest(registry, "stable")
    config = released["1.1.0"]["config"]
    with client_for(registry) as client:
        client.delete_manifest(
            config["repository"].split("/", 1)[1], Digest.parse(config["digest"])
        )
    incomplete = promote(registry, "1.1.0")
    assert incomplete.code == 3
    assert "incomplete" in incomplete.stderr and config["digest"] in incomplete.stderr
    assert channel_digest(registry, "stable") == stable
    never = promote(registry, "9.9.9")
    assert never.code == 3 and "9.9.9" in never.stderr
    assert channel_digest(registry, "stable") == stable


def test_two_racing_promotes_end_at_a_verified_release_and_tell_the_truth(
    registry: Registry,
    release_source: Path,
    released: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    third = publish(registry, release_source, "1.2.0", change="temporal")
    candidates = {released["1.1.0"]["manifestDigest"]: "1.1.0", third["manifestDigest"]: "1.2.0"}
    assert promote(registry, "1.0.0").code == 0
    # a short backoff, as in test_channel_races: distribution 2.8 can answer 500 to a HEAD
    # of a tag another writer is putting at that moment
    env = dict(os.environ, ALGA_RETRY_BASE_DELAY="0.05")
    cmd = [
        sys.executable,
        "-m",
        "steps.cli",
        "promote",
        "--channel",
        "stable",
        *registry_args(registry),
        "--json",
    ]
    procs = [
        subprocess.Popen(
            [*cmd, "--version", v],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for v in ("1.1.0", "1.2.0")
    ]
    outcomes = []
    for version, proc in zip(("1.1.0", "1.2.0"), procs, strict=True):
        out, err = proc.communicate(timeout=120)
        outcomes.append((version, proc.returncode, json.loads(out), err))
    final = channel_digest(registry, "stable")
    assert str(final) in candidates  # one of the two verified releases
    history = cli(["history", "stable", *registry_args(registry), "--json"]).json()["moves"]
    for version, code, out, err in outcomes:
        assert code in (0, 3), err
        if code == 0:
            # It says it moved the channel to its release, and the history records that move.
            assert out["version"] == version and out["moved"] is True
            assert any(m["version"] == version and m["to"] == out["to"] for m in history)
        else:
            # Refused: a concurrent move, or the other promote already made it a downgrade.
            assert ("moved" in err) or ("older" in err), err
    winners = [v for v, code, _, _ in outcomes if code == 0]
    assert winners, "at least one promote must succeed"
    assert candidates[str(final)] in winners or len(winners) == 2
    # The channel resolves, as an appliance would, to what it points at.
    resolved = cli(["resolve", "stable", *registry_args(registry), "--json"]).json()
    assert resolved["manifestDigest"] == str(final)


def test_history_and_rollback_round_trip(registry: Registry, released: dict[str, Any]) -> None:
    assert promote(registry, "1.0.0").code == 0
    assert promote(registry, "1.1.0").code == 0
    no_reason = cli(["rollback", "stable", *registry_args(registry), "--json"])
    assert no_reason.code == 2
    back = cli(
        ["rollback", "stable", "--reason", "bad upgrade", *registry_args(registry), "--json"]
    )
    assert back.code == 0, back.stderr
    assert str(channel_digest(registry, "stable")) == released["1.0.0"]["manifestDigest"]
    moves = cli(["history", "stable", *registry_args(registry), "--json"]).json()["moves"]
    assert [(m["kind"], m["version"]) for m in moves] == [
        ("promote", "1.0.0"),
        ("promote", "1.1.0"),
        ("rollback", "1.0.0"),
    ]
    assert moves[-1]["reason"] == "bad upgrade"
    assert moves[-1]["from"] == released["1.1.0"]["manifestDigest"]
    human = cli(["history", "stable", *registry_args(registry)])
    assert "rollback" in human.stdout and "bad upgrade" in human.stdout
    # nightly's history holds the two publishes
    nightly = cli(["history", "nightly", *registry_args(registry), "--json"]).json()["moves"]
    assert [(m["kind"], m["version"]) for m in nightly] == [
        ("publish", "1.0.0"),
        ("publish", "1.1.0"),
    ]


def test_diff_shows_exactly_what_changed(registry: Registry, released: dict[str, Any]) -> None:
    result = cli(["diff", "1.0.0", "1.1.0", *registry_args(registry), "--json"])
    assert result.code == 0, result.stderr
    d = result.json()
    assert set(d["charts"]) == {"pgbouncer"}
    assert d["charts"]["pgbouncer"]["a"] != d["charts"]["pgbouncer"]["b"]
    assert set(d["images"]) == {"algaCore", "workflowWorker", "emailService", "temporalWorker"}
    assert d["images"]["algaCore"] == {"a": "62cdce38", "b": "7a7a7a7"}
    assert d["controlPlane"] is not None  # another control-plane image
    assert d["profileValues"] == {}
    assert list(d["bundle"]["changed"]) == ["base/releases/pgbouncer.yaml"]
    assert d["bundle"]["added"] == [] and d["bundle"]["removed"] == []
    assert d["identical"] is False
    same = cli(["diff", "nightly", "1.1.0", *registry_args(registry), "--json"]).json()
    assert same["identical"] is True
    human = cli(["diff", "1.0.0", "1.1.0", *registry_args(registry)])
    assert "chart pgbouncer" in human.stdout and "base/releases/pgbouncer.yaml" in human.stdout
    with client_for(registry) as client:
        assert client.head_manifest(RELEASE_REPO, "1.0.0") is not None


def test_an_invalid_release_manifest_is_never_promoted(
    registry: Registry, released: dict[str, Any]
) -> None:
    """A manifest pushed by something else that breaks the contract (here: no
    temporalWorker image, so appliances would keep running `latest`) is refused."""
    from steps.oci import mediatypes as mt
    from steps.release import manifest as rm

    assert promote(registry, "1.0.0").code == 0
    stable = channel_digest(registry, "stable")
    with client_for(registry) as client:
        head = client.head_manifest(RELEASE_REPO, "1.1.0")
        assert head is not None
        blob_digest = Digest.parse(
            client.get_manifest(RELEASE_REPO, "1.1.0").json()["config"]["digest"]
        )
        release = json.loads(client.get_blob(RELEASE_REPO, blob_digest))
        del release["images"]["temporalWorker"]
        release["version"] = release["config"]["tag"] = release["config"]["version"] = "1.2.0"
        config = rm.manifest_bytes(release)
        client.push_blob(RELEASE_REPO, config)
        client.put_manifest(RELEASE_REPO, "1.2.0", rm.release_oci_manifest(config), mt.OCI_MANIFEST)
    result = promote(registry, "1.2.0")
    assert result.code == 3
    assert "temporalWorker" in result.stderr
    assert channel_digest(registry, "stable") == stable


def test_a_move_whose_audit_record_fails_stands_and_says_so(
    registry: Registry, released: dict[str, Any], fault_proxy: Any
) -> None:
    # Publishing through another host name would make another release; the releases here
    # were published directly, so promote through the proxy only touches the channel.
    proxy = fault_proxy(registry)
    proxy.fail_always(status=503, method="PUT", path=r"/manifests/move\.")
    result = cli(
        [
            "promote",
            "--version",
            "1.0.0",
            "--channel",
            "stable",
            *registry_args(registry, proxy.host),
            "--json",
        ]
    )
    assert result.code == 0, result.stderr
    assert result.json()["moved"] is True and result.json()["record"] is None
    assert "audit record could not be written" in result.stderr
    assert str(channel_digest(registry, "stable")) == released["1.0.0"]["manifestDigest"]


def _config_blob_path(reg: Registry, ref: str) -> str:
    with client_for(reg) as client:
        digest = client.get_manifest(RELEASE_REPO, ref).json()["config"]["digest"]
    return f"/{RELEASE_REPO}/blobs/{digest}"


def test_an_unreadable_current_release_never_allows_a_silent_downgrade(
    registry: Registry, released: dict[str, Any], fault_proxy: Any
) -> None:
    """nightly is at 1.1.0. When its release cannot be read, moving it to 1.0.0 must not
    pass as "no current release": transient errors are retried (75), a corrupt release
    is refused (3) unless the downgrade is explicit and reasoned."""
    proxy = fault_proxy(registry)
    blob = _config_blob_path(registry, "1.1.0")
    args = [
        "promote",
        "--version",
        "1.0.0",
        "--channel",
        "nightly",
        *registry_args(registry, proxy.host),
        "--json",
    ]
    proxy.fail_always(status=503, method="GET", path=blob)
    flaky = cli(args)
    assert flaky.code == 75, flaky.stderr
    proxy.reset()
    proxy.corrupt_always(path=blob)
    corrupt = cli(args)
    assert corrupt.code == 3, corrupt.stderr
    assert "cannot be read" in corrupt.stderr
    assert str(channel_digest(registry, "nightly")) == released["1.1.0"]["manifestDigest"]
    forced = cli([*args, "--allow-downgrade", "--reason", "nightly's release is corrupt"])
    assert forced.code == 0, forced.stderr
    assert str(channel_digest(registry, "nightly")) == released["1.0.0"]["manifestDigest"]


def test_support_fields_are_never_dropped_because_the_current_release_is_unreadable(
    registry: Registry, release_source: Path, released: dict[str, Any], fault_proxy: Any
) -> None:
    proxy = fault_proxy(registry)
    proxy.corrupt_always(path=_config_blob_path(registry, "nightly"))
    result = cli(publish_args(registry, release_source, version="1.2.0", host=proxy.host))
    assert result.code == 3, result.stderr
    assert "cannot carry supportAgent/supportReceiptKeys forward" in result.stderr
    with client_for(registry) as client:
        assert client.head_manifest(RELEASE_REPO, "1.2.0") is None


def test_an_unrecorded_move_is_recorded_when_the_channel_is_next_confirmed(
    registry: Registry, released: dict[str, Any]
) -> None:
    """A run that moved the channel but died before its audit record (or a move by hand):
    the retry finds the channel already there and writes the missing record."""
    with client_for(registry) as client:
        client.tag(RELEASE_REPO, "1.0.0", "stable")  # moved outside the tool: no record
    result = promote(registry, "1.0.0")
    assert result.code == 0, result.stderr
    assert result.json()["moved"] is False and result.json()["record"]
    moves = cli(["history", "stable", *registry_args(registry), "--json"]).json()["moves"]
    assert [(m["version"], m["reason"]) for m in moves] == [("1.0.0", "recorded after the move")]
    again = promote(registry, "1.0.0")
    assert again.json()["record"] is None  # in order now: nothing more is written
