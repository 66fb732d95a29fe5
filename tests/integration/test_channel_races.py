"""Concurrent writers on the real registry: gated races replayed deterministically through a
proxy that holds one writer's request, kills, and a bounded natural race loop.

Every writer is a real ``alga-release`` process. After each race the protocol's properties
are checked (:func:`check_properties`):

1. no writer exits 0 unless its result stands at the end, or a strictly newer complete
   release superseded it on that channel;
2. the channel never ends at an older release than one a writer reported as moved;
3. a version a writer exited 0 for keeps its digest; a writer that overwrote another's
   version put the first bytes back and exited 3;
4. every move a writer made has exactly one record (its claim, a tag of its own); the move
   that stands is the history's current entry, and no entry is in the history twice.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from steps.channels import move as channels
from steps.channels.rules import parse_version
from steps.oci import Digest
from tests.harness.hold import HoldingProxy, start_holding_proxy
from tests.harness.registry import Registry
from tests.helpers import client_for, registry_args
from tests.integration.test_publish import RELEASE_REPO, publish_args, push_images

pytestmark = pytest.mark.integration

SETTLE = "1.0"  # the fast path's bound; under load a writer may take the slow path instead
#: The fixtures' writers run one at a time, with nobody racing them: a short settle only
#: sends one to the slow path when its writes are slow, and the outcome is the same.
SETUP_SETTLE = "0.2"
NS = "nine-minds"
#: Retries keep a short backoff, not none: distribution 2.8 rewrites a tag's link file in
#: place, so a HEAD of a tag another writer is putting at that moment can answer 500 (seen
#: here: a few in ten thousand HEADs while one writer re-tags); a retry 50-200 ms later
#: reads the link once written, as against a real registry's transient 5xx.
RETRY_DELAY = "0.05"


def _env(settle: str = SETTLE) -> dict[str, str]:
    return dict(
        os.environ,
        ALGA_RETRY_BASE_DELAY=RETRY_DELAY,
        ALGA_RETRY_ATTEMPTS="4",
        ALGA_SETTLE=settle,
    )


@dataclass
class Writer:
    """One ``alga-release`` process and what it reported."""

    name: str
    argv: list[str]
    version: str
    proc: subprocess.Popen[str] | None = None
    code: int | None = None
    out: dict[str, Any] = field(default_factory=dict)
    err: str = ""
    settle: str = SETTLE

    def start(self) -> Writer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "steps.cli", *self.argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(self.settle),
        )
        return self

    def setup(self) -> Writer:
        """Run as a fixture's writer: alone, with the short settle."""
        self.settle = SETUP_SETTLE
        return self.run()

    def wait(self, timeout: float = 300) -> Writer:
        assert self.proc is not None
        out, self.err = self.proc.communicate(timeout=timeout)
        self.code = self.proc.returncode
        try:
            self.out = json.loads(out) if out.strip() else {}
        except ValueError:
            self.out = {}
        return self

    def run(self) -> Writer:
        return self.start().wait()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.wait()

    # what it reported
    @property
    def moved_to(self) -> str | None:
        """The release digest this writer reported it moved the channel to."""
        if self.code != 0:
            return None
        move = self.out.get("channelMove", self.out)
        return str(move.get("to")) if move.get("moved") or move.get("to") else None

    @property
    def published(self) -> str | None:
        """The ``:<version>`` digest this writer reported it published."""
        return (
            str(self.out["manifestDigest"])
            if self.code == 0 and "manifestDigest" in self.out
            else None
        )


def publisher(
    name: str, proxy: HoldingProxy, reg: Registry, src: Path, version: str, tag: str
) -> Writer:
    return Writer(name, publish_args(reg, src, version=version, tag=tag, host=proxy.host), version)


def promoter(name: str, proxy: HoldingProxy, reg: Registry, version: str, *extra: str) -> Writer:
    argv = ["promote", "--version", version, "--channel", "stable"]
    return Writer(name, [*argv, *registry_args(reg, proxy.host), "--json", *extra], version)


def _version_of(client: Any, digest: Digest) -> str:
    _, _, _, release = channels.read_release(client, NS, digest)
    return str(release["version"])


def check_properties(
    reg: Registry,
    proxy: HoldingProxy,
    channel: str,
    writers: Sequence[Writer],
    *,
    downgrades: bool = False,
) -> Digest:
    """Assert the four properties after a race; returns where the channel ended."""
    for w in writers:
        assert w.code in (0, 3), f"{w.name} exited {w.code}:\n{w.err}"
    with client_for(reg, host=proxy.host) as client:
        head = client.head_manifest(RELEASE_REPO, channel)
        assert head is not None
        final = head.digest
        final_version = parse_version(_version_of(client, final))
        moves = channels.history(client, NS, channel)
        # 4. the move that stands has exactly one history entry; no entry is there twice
        assert moves and moves[-1].to_digest == str(final), (moves[-1:], final)
        tags = [m.tag for m in moves]
        assert len(tags) == len(set(tags)), tags
        index = channels.audit.read_index(client, NS, channel)
        assert index is not None and index.head == moves[-1]
        for w in writers:
            to = w.moved_to
            if to is not None and to != str(final):
                # 1./2. it stands, or a strictly newer release superseded it
                reported = parse_version(_version_of(client, Digest.parse(to)))
                assert final_version > reported or downgrades, (w.name, w.out, final_version)
            record = (w.out.get("channelMove") or w.out).get("record")
            if w.code == 0 and record:
                assert client.head_manifest(RELEASE_REPO, record) is not None, (w.name, record)
                mine = [t for t in tags if t == record]
                assert len(mine) <= 1, (w.name, tags)
            if w.published is not None:
                # 3. a version someone exited 0 for keeps its digest
                now = client.head_manifest(RELEASE_REPO, w.version)
                assert now is not None and str(now.digest) == w.published, (w.name, now)
    return final


@pytest.fixture
def proxy(registry: Registry) -> Iterator[HoldingProxy]:
    holding = start_holding_proxy(registry)
    try:
        yield holding
    finally:
        holding.stop()


@pytest.fixture
def on_nightly(registry: Registry, proxy: HoldingProxy, release_source: Path) -> Writer:
    """Images for two image tags; release 1.0.0 published to nightly through the proxy."""
    push_images(registry)
    push_images(registry, tag="7a7a7a7")
    first = publisher("base", proxy, registry, release_source, "1.0.0", "62cdce38").setup()
    assert first.code == 0, first.err
    return first


CHANNEL_PUT = r"/alga-appliance-release/manifests/{}$"


@pytest.mark.parametrize("held", ["lower", "higher"])
def test_gated_channel_race(
    registry: Registry, proxy: HoldingProxy, release_source: Path, on_nightly: Writer, held: str
) -> None:
    """Two publishes to nightly; one's channel PUT is held until the other has finished."""
    low = publisher("1.5.0", proxy, registry, release_source, "1.5.0", "62cdce38")
    high = publisher("1.5.1", proxy, registry, release_source, "1.5.1", "7a7a7a7")
    late, early = (low, high) if held == "lower" else (high, low)
    gate = proxy.hold("PUT", CHANNEL_PUT.format("nightly"))
    late.start()
    assert gate.wait_arrived(240), "the held writer never reached its channel PUT"
    early.run()
    gate.release()
    late.wait()
    final = check_properties(registry, proxy, "nightly", [low, high])
    assert str(final) == high.out["manifestDigest"], (low.err, high.err)
    if held == "lower":
        # 1.5.1 was decided on top of 1.5.0's (already recorded) move; 1.5.0's PUT landed
        # late on 1.5.1, which it put back: its move stood and was superseded by a newer one
        assert (late.code, early.code) == (0, 0), (late.err, early.err)
        assert late.out["channelMove"]["settled"] == "reconciled"
        versions = ["1.0.0", "1.5.0", "1.5.1"]
    else:
        # 1.5.1's move was recorded (in flight): 1.5.0 would have been a downgrade from it
        assert early.code == 3 and "in flight" in early.err, early.err
        assert late.code == 0, late.err
        versions = ["1.0.0", "1.5.1"]
    assert [m["version"] for m in cli_history(registry, proxy, "nightly")] == versions


@pytest.fixture
def promotable(
    registry: Registry, proxy: HoldingProxy, release_source: Path, on_nightly: Writer
) -> dict[str, Writer]:
    """Releases 1.0.0, 1.1.0, 1.2.0 on nightly; stable at 1.0.0."""
    out = {"1.0.0": on_nightly}
    for version in ("1.1.0", "1.2.0"):
        w = publisher(version, proxy, registry, release_source, version, "7a7a7a7").setup()
        assert w.code == 0, w.err
        out[version] = w
    first = promoter("stable", proxy, registry, "1.0.0").setup()
    assert first.code == 0, first.err
    return out


PROMOTE_CASES = {
    # (held writer, held request): (exit of 1.1.0, exit of 1.2.0, history of stable)
    ("lower", "channel"): (0, 0, ["1.0.0", "1.1.0", "1.2.0"]),
    ("higher", "channel"): (3, 0, ["1.0.0", "1.2.0"]),
    ("lower", "index"): (3, 0, ["1.0.0", "1.2.0"]),
    ("higher", "index"): (0, 0, ["1.0.0", "1.2.0"]),
}


@pytest.mark.parametrize(
    ("held", "request_"), list(PROMOTE_CASES), ids=["-".join(c) for c in PROMOTE_CASES]
)
def test_gated_promote_race(
    registry: Registry,
    proxy: HoldingProxy,
    promotable: dict[str, Writer],
    held: str,
    request_: str,
) -> None:
    """Two promotes to stable; one's channel PUT (or index PUT) is held until the other
    has finished."""
    low = promoter("1.1.0", proxy, registry, "1.1.0")
    high = promoter("1.2.0", proxy, registry, "1.2.0")
    late, early = (low, high) if held == "lower" else (high, low)
    path = CHANNEL_PUT.format(r"history\.stable" if request_ == "index" else "stable")
    gate = proxy.hold("PUT", path)
    late.start()
    assert gate.wait_arrived(120)
    early.run()
    gate.release()
    late.wait()
    final = check_properties(registry, proxy, "stable", [low, high])
    assert str(final) == promotable["1.2.0"].out["manifestDigest"]
    low_code, high_code, versions = PROMOTE_CASES[(held, request_)]
    assert (low.code, high.code) == (low_code, high_code), low.err + "\n----\n" + high.err
    assert [m["version"] for m in cli_history(registry, proxy, "stable")] == versions


def cli_history(reg: Registry, proxy: HoldingProxy, channel: str) -> list[dict[str, Any]]:
    w = Writer("history", ["history", channel, *registry_args(reg, proxy.host), "--json"], "")
    w.run()
    assert w.code == 0, w.err
    moves: list[dict[str, Any]] = w.out["moves"]
    return moves


@pytest.mark.parametrize("held", ["first", "second"])
def test_gated_same_version_race(
    registry: Registry, proxy: HoldingProxy, release_source: Path, on_nightly: Writer, held: str
) -> None:
    """Two publishes of 6.0.0 with other images: one's PUT of :6.0.0 is held until the
    other has published and moved nightly; then it lands on the first bytes."""
    a = publisher("a", proxy, registry, release_source, "6.0.0", "62cdce38")
    b = publisher("b", proxy, registry, release_source, "6.0.0", "7a7a7a7")
    late, early = (a, b) if held == "first" else (b, a)
    gate = proxy.hold("PUT", CHANNEL_PUT.format(r"6\.0\.0"))
    late.start()
    assert gate.wait_arrived(240)
    assert early.run().code == 0, early.err
    gate.release()
    late.wait()
    assert late.code == 3, late.err
    assert "were put back" in late.err or "stand, not these" in late.err, late.err
    final = check_properties(registry, proxy, "nightly", [a, b])
    assert str(final) == early.out["manifestDigest"]
    with client_for(registry, host=proxy.host) as client:
        version = client.head_manifest(RELEASE_REPO, "6.0.0")
    assert version is not None and str(version.digest) == early.out["manifestDigest"]


def test_a_writer_killed_while_its_channel_put_is_held_is_repaired_by_the_next_move(
    registry: Registry, proxy: HoldingProxy, promotable: dict[str, Writer]
) -> None:
    """The one case no writer can repair itself: its PUT lands after it died. The channel
    then disagrees with its index; the next move of the channel puts it right."""
    dead = promoter("1.1.0", proxy, registry, "1.1.0")
    gate = proxy.hold("PUT", CHANNEL_PUT.format("stable"))
    dead.start()
    assert gate.wait_arrived(120)
    dead.kill()
    winner = promoter("1.2.0", proxy, registry, "1.2.0").run()
    assert winner.code == 0, winner.err
    gate.release()  # the dead writer's PUT lands now: stable points at 1.1.0 again
    with client_for(registry, host=proxy.host) as client:
        for _ in range(100):
            head = client.head_manifest(RELEASE_REPO, "stable")
            if head is not None and str(head.digest) == promotable["1.1.0"].out["manifestDigest"]:
                break
        index = channels.audit.read_index(client, NS, "stable")
        assert index is not None and index.head is not None and index.head.version == "1.2.0"
    repair = promoter("again", proxy, registry, "1.2.0").run()
    assert repair.code == 0, repair.err
    final = check_properties(registry, proxy, "stable", [winner, repair])
    assert str(final) == promotable["1.2.0"].out["manifestDigest"]


def test_natural_races(
    registry: Registry, proxy: HoldingProxy, promotable: dict[str, Writer], release_source: Path
) -> None:
    """Twenty rounds of two or three unsynchronised promotes (with the odd reasoned
    downgrade) against stable; the properties hold after every round."""
    rng = random.Random(2026)
    versions = ["1.0.0", "1.1.0", "1.2.0"]
    for round_ in range(20):
        picks = rng.sample(versions, rng.choice([2, 3]))
        writers = []
        for version in picks:
            extra: tuple[str, ...] = ()
            if rng.random() < 0.25:
                extra = ("--allow-downgrade", "--reason", f"round {round_}")
            writers.append(promoter(f"{round_}:{version}", proxy, registry, version, *extra))
        for w in writers:
            w.start()
        for w in writers:
            w.wait()
        downgrades = any("--allow-downgrade" in w.argv for w in writers)
        check_properties(registry, proxy, "stable", writers, downgrades=downgrades)


def test_natural_same_version_races(
    registry: Registry, proxy: HoldingProxy, release_source: Path, on_nightly: Writer
) -> None:
    """Three rounds of two unsynchronised publishes of one version with different images:
    at most one exits 0, and the version keeps that one's digest."""
    for round_ in range(3):
        version = f"7.0.{round_}"
        writers = [
            publisher(f"{version}/{tag}", proxy, registry, release_source, version, tag)
            for tag in ("62cdce38", "7a7a7a7")
        ]
        for w in writers:
            w.start()
        for w in writers:
            w.wait()
        winners = [w for w in writers if w.code == 0]
        assert len(winners) <= 1, [w.err for w in writers]
        for w in writers:
            if w.code != 0:
                assert w.code == 3, w.err
        check_properties(registry, proxy, "nightly", writers)


def test_a_writer_killed_between_its_record_and_its_channel_put(
    registry: Registry, proxy: HoldingProxy, promotable: dict[str, Writer]
) -> None:
    """Its move is recorded (record and index) but never reached the tag: staying at the
    older release is refused naming it, and promoting its version completes it without a
    second record."""
    dead = promoter("1.1.0", proxy, registry, "1.1.0")
    gate = proxy.hold("PUT", CHANNEL_PUT.format("stable"), drop=True)
    dead.start()
    assert gate.wait_arrived(120)
    dead.kill()
    gate.release()  # dropped: the PUT never lands
    with client_for(registry, host=proxy.host) as client:
        index = channels.audit.read_index(client, NS, "stable")
    assert index is not None and index.head is not None and index.head.version == "1.1.0"
    stay = promoter("stay", proxy, registry, "1.0.0").run()  # what the tag still shows
    assert stay.code == 3 and "in flight" in stay.err, stay.err
    complete = promoter("complete", proxy, registry, "1.1.0").run()
    assert complete.code == 0, complete.err
    assert complete.out["moved"] is True and complete.out["record"] is None
    assert "completing the recorded move" in complete.err
    final = check_properties(registry, proxy, "stable", [complete])
    assert str(final) == promotable["1.1.0"].out["manifestDigest"]
    versions = [m["version"] for m in cli_history(registry, proxy, "stable")]
    assert versions == ["1.0.0", "1.1.0"]
