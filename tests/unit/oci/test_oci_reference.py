"""Parsed OCI names: what is accepted, what is refused, and how they print."""

from __future__ import annotations

import io

import pytest

from steps.oci import Digest, InvalidReference, Reference
from steps.oci.reference import check_repository, check_tag, digest_stream

HEX = "a" * 64


def test_digest_parse_and_str_round_trip() -> None:
    d = Digest.parse(f"sha256:{HEX}")
    assert d.algorithm == "sha256"
    assert str(d) == f"sha256:{HEX}"
    assert d.short == HEX[:12]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256",
        f"sha256:{HEX[:-1]}",
        f"sha256:{HEX.upper()}",
        f"md5:{HEX}",
        f"sha256:{HEX}0",
        f"sha512:{HEX}",
    ],
)
def test_digest_rejects_malformed(text: str) -> None:
    with pytest.raises(InvalidReference) as err:
        Digest.parse(text)
    assert err.value.exit_code == 2


def test_digest_of_and_matches() -> None:
    d = Digest.of(b"hello")
    assert str(d) == "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert d.matches(b"hello")
    assert not d.matches(b"hellp")


def test_digest_stream_reads_in_chunks() -> None:
    data = b"x" * 3_000_001
    digest, size = digest_stream(io.BytesIO(data), chunk_size=1000)
    assert size == len(data)
    assert digest == Digest.of(data)


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        (
            "ghcr.io/nine-minds/charts/sebastian:0.0.1",
            "ghcr.io",
            "nine-minds/charts/sebastian",
            "0.0.1",
            None,
        ),
        ("oci://ghcr.io/nine-minds/x:1.0-rc5.1", "ghcr.io", "nine-minds/x", "1.0-rc5.1", None),
        (f"127.0.0.1:5000/a/b@sha256:{HEX}", "127.0.0.1:5000", "a/b", None, f"sha256:{HEX}"),
        (f"localhost/a:t@sha256:{HEX}", "localhost", "a", "t", f"sha256:{HEX}"),
        ("[::1]:5000/ns/repo:latest", "[::1]:5000", "ns/repo", "latest", None),
    ],
)
def test_reference_parse(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = Reference.parse(text)
    assert ref.registry == registry
    assert ref.repository == repository
    assert ref.tag == tag
    assert (str(ref.digest) if ref.digest else None) == digest
    assert Reference.parse(str(ref)) == ref


def test_reference_default_registry_only_when_no_host() -> None:
    assert Reference.parse("nine-minds/x:1", default_registry="ghcr.io").registry == "ghcr.io"
    with pytest.raises(InvalidReference):
        Reference.parse("nine-minds/x:1")


@pytest.mark.parametrize(
    "text",
    [
        "ghcr.io/nine-minds/x",  # no tag or digest
        "ghcr.io/Nine-Minds/x:1",  # uppercase repository
        "ghcr.io/nine-minds/x:1.0+build",  # '+' in tag
        "ghcr.io/nine-minds/x:-bad",
        "ghcr.io/nine-minds/x@sha256:abc",
        "ghcr.io/nine-minds//x:1",
        "ghcr.io/:1",
    ],
)
def test_reference_rejects_malformed(text: str) -> None:
    with pytest.raises(InvalidReference):
        Reference.parse(text)


def test_plus_in_tag_gets_a_hint() -> None:
    with pytest.raises(InvalidReference) as err:
        check_tag("1.0.0+abc")
    assert err.value.hint and "+" in err.value.hint


def test_tag_length_limit() -> None:
    assert check_tag("a" * 128)
    with pytest.raises(InvalidReference):
        check_tag("a" * 129)


@pytest.mark.parametrize("name", ["a", "nine-minds/charts/temporal-worker", "a.b/c__d/e--f"])
def test_valid_repositories(name: str) -> None:
    assert check_repository(name) == name


@pytest.mark.parametrize("name", ["", "A", "a/", "/a", "a..b", "a_", "-a"])
def test_invalid_repositories(name: str) -> None:
    with pytest.raises(InvalidReference):
        check_repository(name)
