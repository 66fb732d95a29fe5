"""The publisher's channel statements on the real registry, judged by both consume twins.

Every release here is published by ``alga-release publish --signing-key`` and every move
(publish's channel step, ``promote``, ``rollback``) issues ``statement.<channel>``; then
someone with push rights but without the key moves things around. Both twins (the Node
CLI and the Python CLI under ``python3 -S -I``) with the trusted key must refuse, fresh
and warm, while the same twins without keys -- what the appliance's existing consumer
does -- follow the channel as before. ``alga-release verify`` names each half state, and
re-running the interrupted move finishes it without changing anything else. The real
``cosign verify --key`` accepts the statement's signature.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from steps.oci import Digest
from tests.harness.cosign import Cosign, find_cosign
from tests.harness.hold import HoldingProxy, start_holding_proxy
from tests.harness.registry import Registry
from tests.helpers import cli, client_for, registry_args, tags
from tests.integration.test_consume_registry import run_js, run_py_cli
from tests.integration.test_publish import RELEASE_REPO, channel_digest, publish_args, push_images

pytestmark = pytest.mark.integration

PASSWORD = "statement-pass-4"


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The release key pair and a stranger's public key (``keys generate``)."""
    monkeypatch.setenv("ALGA_SIGNING_KEY_PASSWORD", PASSWORD)
    out = {}
    for name in ("release", "other"):
        made = cli(["keys", "generate", "--output-prefix", str(tmp_path / name), "--json"])
        assert made.code == 0, made.stderr
        out[f"{name}.key"] = Path(made.json()["privateKey"])
        out[f"{name}.pub"] = Path(made.json()["publicKey"])
    return out


@dataclass
class Site:
    """The registry and the holding proxy in front of it, through which everything is
    published and read (a release names the host it was published to, so the proxy is
    its host from the start; a test holds requests only where it says so)."""

    registry: Registry
    proxy: HoldingProxy

    @property
    def host(self) -> str:
        return self.proxy.host


@pytest.fixture
def site(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    proxy = start_holding_proxy(registry)
    try:
        yield Site(registry, proxy)
    finally:
        proxy.stop()


def _publish(at: Site, src: Path, version: str, key: Path | None, **kw: Any) -> Any:
    extra: tuple[str, ...] = ("--signing-key", str(key)) if key else ()
    argv = publish_args(
        at.registry, src, version=version, host=at.host, extra=extra + kw.pop("extra", ()), **kw
    )
    result = cli(argv)
    assert result.code == 0, result.stderr
    return result.json()


@pytest.fixture
def released(site: Site, release_source: Path, keys: dict[str, Path]) -> dict[str, Any]:
    """1.0.0 then 1.1.0 published signed to nightly (two statements, sequence 1 and 2);
    ``old-statement`` keeps the bytes of the first."""
    push_images(site.registry)
    push_images(site.registry, tag="7a7a7a7")
    first = _publish(site, release_source, "1.0.0", keys["release.key"])
    with client_for(site.registry) as client:
        old = client.get_manifest(RELEASE_REPO, "statement.nightly")
    values = release_source / "examples" / "charts" / "pgbouncer" / "values.yaml"
    values.write_text(values.read_text() + "\n# 1.1.0\n")
    second = _publish(site, release_source, "1.1.0", keys["release.key"], tag="7a7a7a7")
    return {"1.0.0": first, "1.1.0": second, "old-statement": old}


def twins(at: Site, ref: str, *args: str) -> list[tuple[int, Any]]:
    """(exit code, JSON) of the Node CLI and the Python CLI (``python3 -S -I``)."""
    out = []
    for run in (run_js, run_py_cli):
        code, doc, stderr = run(ref, at.proxy, *args)
        assert doc is not None, stderr
        out.append((code, doc))
    return out


def run(at: Site, *argv: str) -> Any:
    return cli([*argv, *registry_args(at.registry, at.host), "--json"])


def statement_of(at: Site, channel: str) -> dict[str, Any]:
    """The statement's manifest digest and config JSON, read raw."""
    with client_for(at.registry) as client:
        manifest = client.get_manifest(RELEASE_REPO, f"statement.{channel}")
        config = manifest.json()["config"]
        blob = client.get_blob(RELEASE_REPO, Digest.parse(config["digest"]), size=config["size"])
    return {"digest": str(manifest.digest), "manifest": manifest.json(), **json.loads(blob)}


def test_every_move_issues_a_statement_and_a_re_tag_without_the_key_is_refused(
    site: Site, released: dict[str, Any], keys: dict[str, Path], tmp_path: Path
) -> None:
    new, old = released["1.1.0"]["manifestDigest"], released["1.0.0"]["manifestDigest"]
    nightly = statement_of(site, "nightly")
    assert nightly["manifest"]["layers"] == [] and nightly["manifest"]["artifactType"] == (
        "application/vnd.alga.appliance.channel-statement.v1"
    )
    assert (nightly["sequence"], nightly["manifestDigest"], nightly["version"]) == (2, new, "1.1.0")
    assert nightly["issuedAt"].endswith("Z") and len(nightly["issuedAt"]) == 20
    history = run(site, "history", "nightly", "--trusted-key", str(keys["release.pub"]))
    assert history.code == 0, history.stderr
    assert [m.get("statementSequence") for m in history.json()["moves"]] == [1, 2]
    assert history.json()["statement"]["state"] == "consistent"
    assert history.json()["refreshes"] == []

    promoted = run(site, "promote", "--version", "1.1.0", "--signing-key", str(keys["release.key"]))
    assert promoted.code == 0, promoted.stderr
    assert promoted.json()["statement"]["status"] == "issued"
    assert promoted.json()["statement"]["sequence"] == 1  # per channel
    stable = statement_of(site, "stable")
    assert (
        stable["manifestDigest"] == new
        and stable["digest"] == promoted.json()["statement"]["digest"]
    )

    # The real cosign accepts the statement manifest's signature, under our key only.
    real = Cosign(find_cosign(), tmp_path / "home", PASSWORD)
    reference = f"{site.host}/{RELEASE_REPO}@{stable['digest']}"
    assert real.verify(reference, keys["release.pub"]).returncode == 0
    assert real.verify(reference, keys["other.pub"]).returncode != 0

    cache = tmp_path / "cache.json"
    trusted = ["--trusted-key", str(keys["release.pub"])]
    for code, doc in twins(site, "stable", *trusted, "--cache", str(cache)):
        assert code == 0 and doc["manifestDigest"] == new and doc["statement"]["sequence"] == 1

    with client_for(site.registry) as client:  # push rights, no key: stable back to 1.0.0
        client.tag(RELEASE_REPO, Digest.parse(old), "stable")
    for args in (trusted, [*trusted, "--cache", str(cache)]):  # a fresh appliance, a warm one
        for code, doc in twins(site, "stable", *args):
            assert code == 3 and doc["error"] == "StatementDigestMismatch", doc
    # The appliance's existing consumer (no keys) follows :stable as before.
    for code, doc in twins(site, "stable"):
        assert code == 0 and doc["manifestDigest"] == old and doc["statement"] is None

    verify = run(site, "verify", "--channel", "stable", *trusted)
    assert verify.code == 3
    error = json.loads(verify.stdout)
    assert error["kind"] == "ChannelAhead" and error["state"] == "channel-ahead"
    assert "channel ahead of statement" in error["message"]
    assert "no recorded move leads there" in error["message"]
    # Putting the vouched-for release back is the same promote: the tag follows, the
    # statement is kept.
    again = run(site, "promote", "--version", "1.1.0", "--signing-key", str(keys["release.key"]))
    assert again.code == 0, again.stderr
    assert again.json()["statement"]["status"] == "kept"
    assert statement_of(site, "stable")["digest"] == stable["digest"]
    for code, doc in twins(site, "stable", *trusted, "--cache", str(cache)):
        assert code == 0 and doc["manifestDigest"] == new
    verified = run(site, "verify", "--channel", "stable", *trusted)
    assert verified.code == 0, verified.stderr
    assert verified.json()["statement"]["state"] == "consistent"


def test_a_replayed_statement_with_its_release_is_refused_and_the_move_re_issues(
    site: Site, released: dict[str, Any], keys: dict[str, Path], tmp_path: Path
) -> None:
    old = released["1.0.0"]["manifestDigest"]
    cache = tmp_path / "cache.json"
    trusted = ["--trusted-key", str(keys["release.pub"])]
    for code, doc in twins(site, "nightly", *trusted, "--cache", str(cache)):
        assert code == 0 and doc["statement"]["sequence"] == 2, doc

    replayed = released["old-statement"]  # 1.0.0's own, validly signed statement
    with client_for(site.registry) as client:
        client.put_manifest(RELEASE_REPO, "statement.nightly", replayed.data, replayed.media_type)
        client.tag(RELEASE_REPO, Digest.parse(old), "nightly")
    for code, doc in twins(site, "nightly", *trusted, "--cache", str(cache)):
        assert code == 3 and doc["error"] == "StatementReplay", doc
    # The publisher sees it too: the history's current move (1.1.0) is not on the channel.
    verify = run(site, "verify", "--channel", "nightly", *trusted)
    assert verify.code == 3 and json.loads(verify.stdout)["state"] == "behind", verify.stdout
    assert "channel behind its history" in verify.stderr

    # Finishing the move issues a statement above every sequence the history knows.
    finish = run(
        site, "promote", "--version", "1.1.0", "--channel", "nightly",
        "--signing-key", str(keys["release.key"]),
    )  # fmt: skip
    assert finish.code == 0, finish.stderr
    assert finish.json()["statement"]["sequence"] == 3
    for code, doc in twins(site, "nightly", *trusted, "--cache", str(cache)):
        assert code == 0 and doc["statement"]["sequence"] == 3, doc


def test_an_expired_statement_is_refused_with_its_date_until_channel_refresh(
    site: Site,
    release_source: Path,
    keys: dict[str, Path],
    tmp_path: Path,
) -> None:
    push_images(site.registry)
    signing = ("--signing-key", str(keys["release.key"]))
    # Short-lived: the statement is read back and resolved about a second after it is
    # issued, then the test waits out the rest of its life.
    _publish(site, release_source, "1.0.0", None, extra=(*signing, "--statement-expiry", "10s"))
    short = statement_of(site, "nightly")
    cache = tmp_path / "cache.json"
    trusted = ["--trusted-key", str(keys["release.pub"]), "--cache", str(cache)]
    for code, doc in twins(site, "nightly", *trusted):
        assert code == 0, doc
    expires = datetime.strptime(short["expiresAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 1.0)
    for code, doc in twins(site, "nightly", *trusted):
        assert code == 3 and doc["error"] == "StatementExpired", doc
        assert doc["message"].startswith(f"channel statement expired on {short['expiresAt']}")
    verify = run(site, "verify", "--channel", "nightly", "--trusted-key", str(keys["release.pub"]))
    assert verify.code == 3 and json.loads(verify.stdout)["kind"] == "ChannelStatementExpired"
    assert f"expired on {short['expiresAt']}" in verify.stderr

    before = tags(site.registry, RELEASE_REPO)
    dry = run(site, "channel", "refresh", "nightly", *signing, "--dry-run")
    assert dry.code == 0 and dry.json()["status"] == "would-refresh", dry.stderr
    assert tags(site.registry, RELEASE_REPO) == before
    refreshed = run(site, "channel", "refresh", "nightly", *signing)
    assert refreshed.code == 0, refreshed.stderr
    out = refreshed.json()
    assert out["status"] == "refreshed" and out["refreshed"] is True
    assert (out["previous"]["sequence"], out["statement"]["sequence"]) == (1, 2)
    now = statement_of(site, "nightly")
    assert now["sequence"] == 2 and now["manifestDigest"] == short["manifestDigest"]
    assert now["expiresAt"] > now["issuedAt"]
    # 30 days by default: nothing but the statement (and its signature, its record) changed
    assert channel_digest(site.registry) == Digest.parse(short["manifestDigest"])
    for code, doc in twins(site, "nightly", *trusted):
        assert code == 0 and doc["statement"]["sequence"] == 2, doc

    # Within --min-age (1 day by default) a refresh is a no-op that says so.
    tags_after = tags(site.registry, RELEASE_REPO)
    again = run(site, "channel", "refresh", "nightly", *signing)
    assert again.code == 0 and again.json()["status"] == "fresh", again.stderr
    assert tags(site.registry, RELEASE_REPO) == tags_after
    assert statement_of(site, "nightly")["digest"] == now["digest"]
    human = cli(
        ["channel", "refresh", "nightly", *signing, *registry_args(site.registry, site.host)]
    )
    assert human.code == 0 and "left as it is" in human.stdout

    history = run(site, "history", "nightly")
    assert history.code == 0
    moves, refreshes = history.json()["moves"], history.json()["refreshes"]
    assert [m["kind"] for m in moves] == ["publish"]
    assert [(r["kind"], r["statementSequence"]) for r in refreshes] == [("refresh", 2)]
    assert set(moves[0]) >= {"channel", "kind", "from", "to", "version", "actor", "time", "tag"}
    text = cli(["history", "nightly", *registry_args(site.registry, site.host)]).stdout
    assert "refresh" in text and "statement sequence 1 -> 2" in text


def _writer(argv: list[str]) -> subprocess.Popen[str]:
    # a short backoff, as in test_channel_races: distribution 2.8 can answer 500 to a HEAD
    # of a tag another writer is putting at that moment
    env = dict(os.environ, ALGA_RETRY_BASE_DELAY="0.05", ALGA_RETRY_ATTEMPTS="4", ALGA_SETTLE="0.2")
    return subprocess.Popen(
        [sys.executable, "-m", "steps.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_a_move_killed_between_its_statement_and_its_tag_is_reported_and_finished(
    site: Site, released: dict[str, Any], keys: dict[str, Path]
) -> None:
    new = released["1.1.0"]["manifestDigest"]
    signing = ["--signing-key", str(keys["release.key"])]
    trusted = ["--trusted-key", str(keys["release.pub"])]
    first = run(site, "promote", "--version", "1.0.0", *signing)
    assert first.code == 0, first.stderr
    stable_before = channel_digest(site.registry, "stable")

    gate = site.proxy.hold("PUT", r"/manifests/stable$", drop=True)  # the tag never lands
    writer = _writer(
        ["promote", "--version", "1.1.0", *signing, *registry_args(site.registry, site.host)]
    )
    if not gate.wait_arrived(120):
        writer.kill()
        pytest.fail(f"the writer never reached its tag PUT: {writer.communicate()[1]}")
    writer.kill()  # killed between its statement and its tag
    writer.communicate(timeout=30)
    gate.release()
    assert channel_digest(site.registry, "stable") == stable_before
    half = statement_of(site, "stable")
    assert (half["manifestDigest"], half["sequence"]) == (new, 2)
    before = tags(site.registry, RELEASE_REPO)
    with client_for(site.registry) as client:
        index_before = client.head_manifest(RELEASE_REPO, "history.stable")

    verify = run(site, "verify", "--channel", "stable", *trusted)
    assert verify.code == 3, verify.stderr
    error = json.loads(verify.stdout)
    assert error["kind"] == "StatementAhead" and error["state"] == "statement-ahead"
    assert "statement ahead of channel" in error["message"] and new in error["message"]
    history = run(site, "history", "stable", *trusted)
    assert history.json()["statement"]["state"] == "statement-ahead"
    for code, doc in twins(site, "stable", *trusted):  # appliances stay where they are
        assert code == 3 and doc["error"] == "StatementDigestMismatch", doc

    rerun = run(site, "promote", "--version", "1.1.0", *signing)
    assert rerun.code == 0, rerun.stderr
    assert rerun.json()["statement"]["status"] == "kept"
    assert str(channel_digest(site.registry, "stable")) == new
    # Nothing else changed: the same tags, the same statement, the same history index.
    assert tags(site.registry, RELEASE_REPO) == before
    assert statement_of(site, "stable")["digest"] == half["digest"]
    with client_for(site.registry) as client:
        index_after = client.head_manifest(RELEASE_REPO, "history.stable")
    assert index_before is not None and index_after is not None
    assert index_after.digest == index_before.digest
    assert run(site, "verify", "--channel", "stable", *trusted).code == 0
    for code, doc in twins(site, "stable", *trusted):
        assert code == 0 and doc["manifestDigest"] == new, doc


def test_a_move_without_the_key_leaves_the_channel_ahead_and_the_keyed_re_run_vouches(
    site: Site, released: dict[str, Any], keys: dict[str, Path]
) -> None:
    trusted = ["--trusted-key", str(keys["release.pub"])]
    keyless = run(site, "promote", "--version", "1.0.0", *trusted)  # gated, not vouched
    assert keyless.code == 0, keyless.stderr
    assert keyless.json()["statement"] is None
    assert "without a signed statement" in keyless.stderr
    verify = run(site, "verify", "--channel", "stable", *trusted)
    assert verify.code == 3 and json.loads(verify.stdout)["state"] == "missing"
    assert "channel ahead of statement" in verify.stderr
    before = tags(site.registry, RELEASE_REPO)
    vouched = run(site, "promote", "--version", "1.0.0", "--signing-key", str(keys["release.key"]))
    assert vouched.code == 0, vouched.stderr
    assert vouched.json()["moved"] is False and vouched.json()["statement"]["status"] == "issued"
    statement = statement_of(site, "stable")
    added = set(tags(site.registry, RELEASE_REPO)) - set(before)
    assert added == {"statement.stable", f"sha256-{statement['digest'].split(':')[1]}.sig"}
    assert run(site, "verify", "--channel", "stable", *trusted).code == 0


def test_rollback_is_signature_gated_and_issues_a_statement(
    site: Site,
    release_source: Path,
    keys: dict[str, Path],
    tmp_path: Path,
) -> None:
    push_images(site.registry)
    push_images(site.registry, tag="7a7a7a7")
    _publish(site, release_source, "1.0.0", None)  # unsigned
    values = release_source / "examples" / "charts" / "pgbouncer" / "values.yaml"
    values.write_text(values.read_text() + "\n# 1.1.0\n")
    second = _publish(site, release_source, "1.1.0", keys["release.key"], tag="7a7a7a7")
    signing = ["--signing-key", str(keys["release.key"])]
    refused = run(site, "rollback", "nightly", "--reason", "broken", *signing)
    assert refused.code == 3, refused.stderr
    assert "not signed by a trusted key" in refused.stderr
    assert str(channel_digest(site.registry)) == second["manifestDigest"]
    # Once the real cosign has signed 1.0.0 (its manifest and its bundle), it goes through.
    real = Cosign(find_cosign(), tmp_path / "home", PASSWORD)
    with client_for(site.registry) as client:
        first = client.head_manifest(RELEASE_REPO, "1.0.0")
        assert first is not None
        config = client.get_manifest(RELEASE_REPO, first.digest).json()["config"]
        release = json.loads(client.get_blob(RELEASE_REPO, Digest.parse(config["digest"])))
    for reference in (
        f"{site.host}/{RELEASE_REPO}@{first.digest}",
        f"{release['config']['repository']}@{release['config']['digest']}",
    ):
        signed = real.sign(reference, keys["release.key"])
        assert signed.returncode == 0, signed.stderr
    rolled = run(site, "rollback", "nightly", "--reason", "broken", *signing)
    assert rolled.code == 0, rolled.stderr
    assert rolled.json()["statement"]["status"] == "issued"
    assert rolled.json()["statement"]["manifestDigest"] == str(first.digest)
    assert rolled.json()["statement"]["sequence"] == 2  # above 1.1.0's
    trusted = ["--trusted-key", str(keys["release.pub"])]
    history = run(site, "history", "nightly", *trusted)
    assert history.json()["statement"]["state"] == "consistent", history.stdout
    assert history.json()["moves"][-1]["kind"] == "rollback"
    for code, doc in twins(site, "nightly", *trusted):  # cosign's signature, our statement
        assert code == 0 and doc["manifestDigest"] == str(first.digest), doc
    # Repeated, the rollback is a no-op, and keeps its statement.
    again = run(site, "rollback", "nightly", "--reason", "broken", *signing)
    assert again.code == 0 and again.json()["statement"]["status"] == "kept", again.stderr


def test_a_late_statement_from_a_losing_writer_is_put_right_by_its_slow_path(
    site: Site, released: dict[str, Any], keys: dict[str, Path]
) -> None:
    """Writer A's statement for 1.0.0 is held; B moves stable to 1.1.0 and ends; A's
    statement and tag then land on B's. A's read-back fails, its slow path puts B's move
    back and re-issues the statement for it: the channel ends consistent."""
    new = released["1.1.0"]["manifestDigest"]
    signing = ["--signing-key", str(keys["release.key"])]
    trusted = ["--trusted-key", str(keys["release.pub"])]
    gate = site.proxy.hold("PUT", r"/manifests/statement\.stable$")
    argv = ["promote", "--version", "1.0.0", *signing, "--json"]
    a = _writer([*argv, *registry_args(site.registry, site.host)])
    if not gate.wait_arrived(120):
        a.kill()
        pytest.fail(f"writer A never reached its statement PUT: {a.communicate()[1]}")
    b = run(site, "promote", "--version", "1.1.0", *signing)
    assert b.code == 0, b.stderr
    gate.release()
    out, err = a.communicate(timeout=300)
    assert a.returncode == 0, err
    result = json.loads(out)
    assert result["supersededBy"]["to"] == new and result["settled"] == "reconciled"
    assert str(channel_digest(site.registry, "stable")) == new
    final = statement_of(site, "stable")
    assert final["manifestDigest"] == new and final["sequence"] >= 2
    assert result["statement"]["manifestDigest"] == new
    assert run(site, "verify", "--channel", "stable", *trusted).code == 0
    for code, doc in twins(site, "stable", *trusted):
        assert code == 0 and doc["manifestDigest"] == new, doc
