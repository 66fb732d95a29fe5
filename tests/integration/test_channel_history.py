"""history and rollback through the channel index, on the real registry."""

from __future__ import annotations

from typing import Any

import pytest

from steps.channels import audit
from tests.harness.registry import Registry
from tests.helpers import cli, client_for, registry_args
from tests.integration import test_promote
from tests.integration.test_promote import promote
from tests.integration.test_publish import RELEASE_REPO, channel_digest

pytestmark = pytest.mark.integration
released = test_promote.released  # the fixture: releases 1.0.0 and 1.1.0 on nightly


def rollback(reg: Registry, *extra: str) -> Any:
    return cli(
        ["rollback", "stable", "--reason", "bad upgrade", *registry_args(reg), "--json", *extra]
    )


def test_rollback_is_idempotent(registry: Registry, released: dict[str, Any]) -> None:
    assert promote(registry, "1.0.0").code == 0
    assert promote(registry, "1.1.0").code == 0
    first = rollback(registry)
    assert first.code == 0, first.stderr
    assert first.json()["moved"] is True
    assert str(channel_digest(registry, "stable")) == released["1.0.0"]["manifestDigest"]
    again = rollback(registry)
    assert again.code == 0, again.stderr
    assert again.json()["moved"] is False and again.json()["record"] is None
    assert "already rolled back" in again.stderr
    assert str(channel_digest(registry, "stable")) == released["1.0.0"]["manifestDigest"]
    moves = cli(["history", "stable", *registry_args(registry), "--json"]).json()["moves"]
    assert [(m["kind"], m["version"]) for m in moves] == [
        ("promote", "1.0.0"),
        ("promote", "1.1.0"),
        ("rollback", "1.0.0"),
    ]
    assert moves[-1]["rollbackOf"] == moves[-2]["tag"]
    assert moves[-1]["era"] == 1 and moves[-1]["downgrade"] is True
    # a newer promote after the rollback, then a rollback again: back to 1.0.0, once
    assert promote(registry, "1.1.0").code == 0
    assert rollback(registry).json()["moved"] is True
    assert rollback(registry).json()["moved"] is False


def test_history_of_a_repository_that_does_not_exist_says_so(
    registry: Registry,
    released: dict[str, Any],
) -> None:
    result = cli(["history", "stable", *registry_args(registry, namespace="nine-mind"), "--json"])
    assert result.code == 2, result.stderr
    assert "nine-mind/alga-appliance-release does not exist" in result.stderr
    empty = cli(["history", "stable", *registry_args(registry), "--json"])
    assert empty.code == 0 and empty.json()["moves"] == []


def test_history_and_rollback_read_the_index_not_the_tag_list(
    registry: Registry,
    released: dict[str, Any],
    fault_proxy: Any,
) -> None:
    """Two requests for the history (the index), whatever the number of records; the tag
    list is never read once the channel has an index."""
    proxy = fault_proxy(registry)
    args = registry_args(registry, proxy.host)
    proxy.reset()
    result = cli(["history", "nightly", *args, "--json"])
    assert result.code == 0, result.stderr
    assert [m["version"] for m in result.json()["moves"]] == ["1.0.0", "1.1.0"]
    assert proxy.count(path=r"/tags/list") == 0
    assert proxy.count("GET", r"/manifests/history\.nightly$") == 1
    # the legacy records are still there, one per move
    with client_for(registry) as client:
        records = audit.list_record_tags(client, "nine-minds", "nightly")
        index = audit.read_index(client, "nine-minds", "nightly")
    assert index is not None and [e.tag for e in index.entries] == records
    assert client_for(registry).head_manifest(RELEASE_REPO, records[0]) is not None
