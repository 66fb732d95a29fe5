"""Signed channel statements against the real registry: re-tags, replays, freezes.

Releases are pushed and signed as in test_consume_signatures; each channel move
also writes ``statement.<channel>`` (tests/cosign_format's ``push_statement``, the
format consume/README.md documents for the publisher). Then someone with push rights
but without the release key moves the tags. Both twins (Python API, ``python3 -S -I``
CLI, Node CLI) must refuse on a fresh appliance and on a warm one sharing a cache
file, while a resolve without trusted keys -- what the appliance's existing consumer
does -- still follows ``:<channel>`` and never sees the statement.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests import cosign_format as cf
from tests.harness.registry import Registry
from tests.helpers import client_for, tags
from tests.integration.test_consume_registry import (
    REPO,
    publish,
    rc,
    resolve_py,
    run_js,
    run_py_cli,
)
from tests.integration.test_consume_signatures import key_file

pytestmark = pytest.mark.integration


def utc(offset: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


DAY = 86400.0


def release(reg: Registry, version: str, key: Any, *, channel: str | None, sequence: int) -> str:
    """Publish ``version``, sign it, and (with ``channel``) move the channel with a statement."""
    pub = publish(reg, version, [version])
    with client_for(reg) as client:
        cf.sign_artifact(client, REPO, pub.manifest_digest, key)
        if channel is not None:
            doc = cf.statement(
                channel,
                version,
                pub.manifest_digest,
                sequence,
                issued=utc(-60),
                expires=utc(30 * DAY),
            )
            cf.push_statement(client, REPO, doc, key)
            client.tag(REPO, pub.manifest_digest, channel)
    return pub.manifest_digest


@pytest.fixture
def signed(tls_token_registry: Registry, tmp_path: Path) -> tuple[Registry, Any, Path]:
    """The TLS token registry, a release key and the PEM file trusting it."""
    key = cf.new_key()
    return tls_token_registry, key, key_file(tmp_path, "release", key)


def twins(reg: Registry, ref: str, *args: str) -> list[tuple[int, Any]]:
    """(exit code, JSON) of the Node CLI and the Python CLI (python3 -S -I)."""
    out = []
    for run in (run_js, run_py_cli):
        code, doc, _stderr = run(ref, reg, *args)
        out.append((code, doc))
    return out


def test_a_re_tag_to_an_older_signed_release_is_refused_fresh_and_warm(
    signed: tuple[Registry, Any, Path], tmp_path: Path
) -> None:
    reg, key, keys = signed
    old = release(reg, "1.0.0", key, channel="nightly", sequence=1)
    new = release(reg, "1.1.0", key, channel="nightly", sequence=2)
    cache = tmp_path / "cache.json"
    trusted = ["--trusted-key", str(keys)]
    for code, doc in twins(reg, "nightly", *trusted, "--cache", str(cache)):
        assert code == 0 and doc["manifestDigest"] == new, doc
        assert doc["statement"]["sequence"] == 2 and doc["signedBy"] == cf.key_id(key)
    assert "statement.nightly" in tags(reg, REPO)

    with client_for(reg) as client:  # push rights, no key: nightly back to 1.0.0
        client.tag(REPO, old, "nightly")
    for args in (trusted, [*trusted, "--cache", str(cache)]):  # fresh, then warm
        for code, doc in twins(reg, "nightly", *args):
            assert code == 3 and doc["error"] == "StatementDigestMismatch", doc
    with pytest.raises(rc.StatementDigestMismatch):
        resolve_py("nightly", reg, trusted_keys=[keys.read_text()])
    # What the appliance's existing consumer does (no keys): it follows :nightly as ever.
    for code, doc in twins(reg, "nightly"):
        assert code == 0 and doc["manifestDigest"] == old and doc["statement"] is None


def test_a_replayed_older_statement_is_refused_by_its_sequence(
    signed: tuple[Registry, Any, Path], tmp_path: Path
) -> None:
    reg, key, keys = signed
    old = release(reg, "1.0.0", key, channel="nightly", sequence=1)
    with client_for(reg) as client:
        old_statement = client.get_manifest(REPO, "statement.nightly")
    release(reg, "1.1.0", key, channel="nightly", sequence=2)
    cache = tmp_path / "cache.json"
    trusted = ["--trusted-key", str(keys), "--cache", str(cache)]
    code, doc, stderr = run_py_cli("nightly", reg, *trusted)
    assert code == 0 and doc["statement"]["sequence"] == 2, stderr
    state = json.loads(cache.read_text())
    assert state["sequences"][f"{reg.host}/{REPO}"] == {"nightly": 2}

    with client_for(reg) as client:  # the old release and its own old, valid statement
        client.put_manifest(REPO, "statement.nightly", old_statement.data, old_statement.media_type)
        client.tag(REPO, old, "nightly")
    # The Node twin reads the cache the Python twin wrote, and the other way round.
    code, doc, stderr = run_js("nightly", reg, *trusted)
    assert code == 3 and doc["error"] == "StatementReplay", stderr
    code, doc, stderr = run_py_cli("nightly", reg, *trusted)
    assert code == 3 and doc["error"] == "StatementReplay", stderr
    # A fresh appliance has seen no sequence: the old statement is consistent and valid.
    code, doc, stderr = run_js("nightly", reg, "--trusted-key", str(keys))
    assert code == 0 and doc["manifestDigest"] == old, stderr


def test_an_expired_statement_is_refused_until_the_channel_is_refreshed(
    signed: tuple[Registry, Any, Path], tmp_path: Path
) -> None:
    reg, key, keys = signed
    digest = release(reg, "1.0.0", key, channel="nightly", sequence=1)
    cache = tmp_path / "cache.json"
    trusted = ["--trusted-key", str(keys), "--cache", str(cache)]
    for code, doc in twins(reg, "nightly", *trusted):
        assert code == 0, doc

    expired_on = utc(-DAY)
    with client_for(reg) as client:
        doc = cf.statement("nightly", "1.0.0", digest, 2, issued=utc(-31 * DAY), expires=expired_on)
        cf.push_statement(client, REPO, doc, key)
    for code, out in twins(reg, "nightly", *trusted):
        assert code == 3 and out["error"] == "StatementExpired", out
        assert out["message"].startswith(f"channel statement expired on {expired_on}")
        assert out["expiresAt"] == expired_on
        # With a cached release, the appliance stays on it, and the refusal says so.
        assert out["cachedRelease"] == {"version": "1.0.0", "manifestDigest": digest}
        assert f"staying on release 1.0.0 ({digest})" in out["message"]
    code, out, _ = run_js("nightly", reg, "--trusted-key", str(keys))  # fresh: nothing cached
    assert code == 3 and out["cachedRelease"] is None

    with client_for(reg) as client:  # channel refresh: same release, new sequence and expiry
        doc = cf.statement("nightly", "1.0.0", digest, 3, issued=utc(-60), expires=utc(30 * DAY))
        cf.push_statement(client, REPO, doc, key)
    for code, out in twins(reg, "nightly", *trusted):
        assert code == 0 and out["statement"]["sequence"] == 3, out


def test_a_pin_skips_the_statement_but_not_the_release_signature(
    signed: tuple[Registry, Any, Path], tmp_path: Path
) -> None:
    reg, key, keys = signed
    digest = release(reg, "1.0.0", key, channel=None, sequence=0)
    with client_for(reg) as client:
        client.tag(REPO, digest, "nightly")  # a channel without a statement
    trusted = ["--trusted-key", str(keys)]
    for code, doc in twins(reg, "nightly", *trusted):
        assert code == 3 and doc["error"] == "StatementMissing", doc
    for ref in ("1.0.0", digest):
        for code, doc in twins(reg, ref, *trusted):
            assert code == 0 and doc["signedBy"] == cf.key_id(key) and doc["statement"] is None
    unsigned = publish(reg, "1.1.0", ["1.1.0"])
    for code, doc in twins(reg, unsigned.manifest_digest, *trusted):
        assert code == 3 and doc["error"] == "Unsigned", doc
