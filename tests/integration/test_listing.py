"""Tag lists page through the registry (``n``/``last``, ``Link``); ``list`` of releases."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from steps.oci import Digest, RegistryClient
from steps.oci import mediatypes as mt
from steps.release.listing import list_releases, listing_json, listing_text, release_versions
from tests.harness.ggcr import CraneRegistry
from tests.harness.misbehaving import MisbehavingServer, RawRequest, answer
from tests.harness.registry import Registry
from tests.harness.tools import Tools
from tests.helpers import FAST_RETRY, client_for

pytestmark = pytest.mark.integration

NAMESPACE = "nine-minds"
RELEASES = f"{NAMESPACE}/alga-appliance-release"


def _push_artifact(
    reg: Registry,
    repository: str,
    config: bytes,
    config_type: str,
    annotations: dict[str, str] | None = None,
) -> tuple[bytes, Digest]:
    layer = b"layer of " + config
    body: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": mt.RELEASE_ARTIFACT,
        "config": {"mediaType": config_type, "digest": str(Digest.of(config)), "size": len(config)},
        "layers": [
            {"mediaType": "application/json", "digest": str(Digest.of(layer)), "size": len(layer)}
        ],
    }
    if annotations:
        body["annotations"] = annotations
    data = json.dumps(body, sort_keys=True).encode()
    with client_for(reg) as client:
        client.push_blob(repository, config)
        client.push_blob(repository, layer)
        client.put_manifest(repository, Digest.of(data), data, mt.OCI_MANIFEST)
    return data, Digest.of(data)


def test_list_tags_of_the_cncf_registry_which_answers_all_at_once(registry: Registry) -> None:
    repository = "nine-minds/test/many-tags"
    data, _ = _push_artifact(registry, repository, b"{}", "application/vnd.test.config+json")
    wanted = [f"t{i:04d}" for i in range(300)]
    # One small manifest, PUT under every tag, by four clients at once (a few seconds).
    errors: list[BaseException] = []

    def put_all(part: list[str]) -> None:
        try:
            with client_for(registry) as client:
                for tag in part:
                    client.put_manifest(repository, tag, data, mt.OCI_MANIFEST)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=put_all, args=(wanted[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    pushed_in = time.monotonic() - started

    with client_for(registry) as client:
        tags = client.list_tags(repository, page_size=100)
        pages = client.stats.by_method.get("GET", 0)
    assert sorted(tags) == wanted and len(tags) == len(set(tags)) == 300
    # distribution 2.8 ignores n= for tags and answers with every tag and no Link: the
    # client asks once more from the last one (last=) and stops when nothing new comes.
    assert pages <= 2, pages
    print(f"300 tags pushed in {pushed_in:.1f}s, listed in {pages} request(s)")


def test_list_tags_pages_through_2500_tags_at_100_a_page(tools: Tools) -> None:
    """go-containerregistry's registry pages by n/last (no Link header): 25 full pages."""
    repository = "nine-minds/test/many-tags"
    config = b"{}"
    data = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": "x", "digest": str(Digest.of(config)), "size": 2},
            "layers": [],
        }
    ).encode()
    wanted = [f"t{i:04d}" for i in range(2500)]
    with CraneRegistry(tools.go_tool("crane")) as crane:
        with RegistryClient(crane.host, plain_http=True, retry=FAST_RETRY) as client:
            client.push_blob(repository, config)
            for tag in wanted:  # one small manifest, PUT under every tag
                client.put_manifest(repository, tag, data, mt.OCI_MANIFEST)
        with RegistryClient(crane.host, plain_http=True, retry=FAST_RETRY) as client:
            tags = client.list_tags(repository, page_size=100)
            pages = client.stats.by_method.get("GET", 0)
    assert tags == wanted  # every tag once, in the registry's order
    assert 25 <= pages <= 26, pages  # 25 full pages, perhaps one empty one after the last


def test_link_headers_are_followed_rfc8288() -> None:
    """A registry that pages with Link headers (relative targets, several links, quoted and
    bare rel values); the pages are a real loopback server's answers."""
    pages = {
        "/v2/ns/r/tags/list?n=2": (["a", "b"], '</v2/ns/r/tags/list?n=2&last=b>; rel="next"'),
        "/v2/ns/r/tags/list?n=2&last=b": (
            ["c", "d"],
            '<https://elsewhere.example/x>; rel="alternate", '
            "</v2/ns/r/tags/list?n=2&last=d>; rel=next",
        ),
        "/v2/ns/r/tags/list?n=2&last=d": (["e"], None),
    }

    def serve(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
        tags, link = pages[request.path]
        headers = {"Content-Type": "application/json"}
        if link:
            headers["Link"] = link
        answer(conn, 200, json.dumps({"name": "ns/r", "tags": tags}).encode(), headers)

    with MisbehavingServer(serve) as server:
        with RegistryClient(server.host, plain_http=True, retry=FAST_RETRY) as client:
            assert client.list_tags("ns/r", page_size=2) == ["a", "b", "c", "d", "e"]
        assert [r.path for r in server.requests] == list(pages)


def test_list_releases_newest_first_with_created_digest_and_channels(registry: Registry) -> None:
    digests: dict[str, Digest] = {}
    for version, created in [
        ("1.2.0", "2026-01-02T00:00:00Z"),
        ("1.10.0", "2026-03-01T00:00:00Z"),
        ("1.10.0-rc.1", "2026-02-20T00:00:00Z"),
        ("0.9.1", "2025-12-01T00:00:00Z"),
    ]:
        config = json.dumps({"version": version}).encode()
        data, digest = _push_artifact(
            registry,
            RELEASES,
            config,
            mt.RELEASE_CONFIG,
            {mt.ANNOTATION_CREATED: created, mt.ANNOTATION_VERSION: version},
        )
        digests[version] = digest
        with client_for(registry) as client:
            client.put_manifest(RELEASES, version, data, mt.OCI_MANIFEST)
    not_a_release, _ = _push_artifact(registry, RELEASES, b"{}", "application/vnd.other+json")
    with client_for(registry) as client:
        client.put_manifest(RELEASES, "2.0.0", not_a_release, mt.OCI_MANIFEST)
        client.tag(RELEASES, "1.10.0", "stable")
        client.tag(RELEASES, "1.10.0", "nightly")
        client.put_manifest(
            RELEASES, "move.nightly.20260301T000000Z.ab12", not_a_release, mt.OCI_MANIFEST
        )
        listing = list_releases(client, NAMESPACE, page_size=2)

    versions = [r.version for r in listing.releases]
    assert versions == ["2.0.0", "1.10.0", "1.10.0-rc.1", "1.2.0", "0.9.1"]
    by_version = {r.version: r for r in listing.releases}
    assert by_version["1.10.0"].channels == ("nightly", "stable")
    assert by_version["1.10.0"].digest == digests["1.10.0"]
    assert by_version["1.10.0"].created == "2026-03-01T00:00:00Z"
    assert by_version["2.0.0"].problem == "not a release manifest"
    assert by_version["1.2.0"].channels == ()
    doc = listing_json(listing)
    assert doc["channels"]["stable"] == str(digests["1.10.0"])
    assert doc["releases"][1]["created"] == "2026-03-01T00:00:00Z"
    text = listing_text(listing)
    assert text.splitlines()[2].startswith("1.10.0 ") and text.splitlines()[2].endswith(
        "nightly,stable"
    )

    with client_for(registry) as client:
        short = list_releases(client, NAMESPACE, limit=1)
    assert [r.version for r in short.releases] == ["2.0.0"]
    assert short.total == 5 and set(short.unlisted_channels) == {"nightly", "stable"}


def test_listing_a_namespace_with_nothing_published_says_so(registry: Registry) -> None:
    from steps.oci import NotFound

    with client_for(registry) as client, pytest.raises(NotFound) as err:
        list_releases(client, "nobody-here")
    assert "nobody-here/alga-appliance-release" in err.value.message


def test_release_versions_sort_semver_and_skip_other_tags() -> None:
    tags = ["stable", "1.0.0", "1.0.0-rc.2", "1.0.0-rc.10", "move.stable.x", "0.10.0", "v2"]
    assert release_versions(tags) == ["1.0.0", "1.0.0-rc.10", "1.0.0-rc.2", "0.10.0"]
