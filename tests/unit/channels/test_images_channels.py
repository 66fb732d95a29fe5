"""Pure rules of the images and channels steps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from steps.channels.move import (
    _AUDIT_TAG_RE,
    MoveRecord,
    audit_tag,
    check_channel,
    downgrade_problem,
    parse_version,
    previous_release,
)
from steps.errors import BadInput
from steps.oci.reference import check_tag
from steps.release.images import check_bare_tag, parse_image_args

FOUR = [
    "algaCore=62cdce38",
    "workflowWorker=a1b2c3d",
    "emailService=0badf00d",
    "temporalWorker=1234567",
]


def test_parse_image_args_requires_all_four() -> None:
    assert parse_image_args(FOUR) == {
        "algaCore": "62cdce38",
        "workflowWorker": "a1b2c3d",
        "emailService": "0badf00d",
        "temporalWorker": "1234567",
    }
    with pytest.raises(BadInput, match="temporalWorker"):
        parse_image_args(FOUR[:3])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*FOUR, "nginx=1"], "unknown image 'nginx'"),
        (["algaCore"], "KEY=TAG"),
        ([*FOUR[1:], "algaCore=ghcr.io/nine-minds/alga-psa-ee:62cdce38"], "not a bare tag"),
        ([*FOUR, "algaCore=other"], "given twice"),
        ([*FOUR[1:], "algaCore=-bad"], "invalid tag"),
    ],
)
def test_parse_image_args_errors(args: list[str], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        parse_image_args(args)


def test_bare_tag() -> None:
    assert check_bare_tag("algaCore", "62cdce38") == "62cdce38"
    with pytest.raises(BadInput):
        check_bare_tag("algaCore", "62cdce38@sha256:" + "a" * 64)


def test_channels() -> None:
    assert check_channel("stable") == "stable"
    with pytest.raises(BadInput, match="nightly, stable"):
        check_channel("beta")


def test_versions() -> None:
    assert str(parse_version("1.4.0-rc.1")) == "1.4.0-rc.1"
    for bad in ("1.0-rc5.1", "v1.2.3", "1.2", "1.2.3+build"):
        with pytest.raises(BadInput):
            parse_version(bad)


@pytest.mark.parametrize(
    ("current", "new", "allow", "reason", "refused"),
    [
        (None, "1.0.0", False, None, False),
        ("1.0.0", "1.0.1", False, None, False),
        ("1.0.0", "1.0.0", False, None, False),
        ("1.1.0", "1.0.9", False, None, True),
        ("1.0.0", "1.0.0-rc.1", False, None, True),  # a prerelease is older
        ("1.1.0", "1.0.9", True, None, True),  # allowed but no reason
        ("1.1.0", "1.0.9", True, "   ", True),
        ("1.1.0", "1.0.9", True, "bad 1.1.0", False),
    ],
)
def test_downgrade_rule(
    current: str | None, new: str, allow: bool, reason: str | None, refused: bool
) -> None:
    problem = downgrade_problem(current, new, allow_downgrade=allow, reason=reason)
    assert (problem is not None) is refused


def test_audit_tags_are_valid_sortable_and_unique() -> None:
    early = audit_tag("stable", datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
    late = audit_tag("stable", datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=UTC))
    assert check_tag(early) == early
    assert _AUDIT_TAG_RE.match(early) is not None
    stamp = [_AUDIT_TAG_RE.match(t).group(2) for t in (early, late)]  # type: ignore[union-attr]
    assert stamp[0] < stamp[1]
    assert audit_tag("stable", datetime(2026, 1, 1, tzinfo=UTC)) != audit_tag(
        "stable", datetime(2026, 1, 1, tzinfo=UTC)
    )


def test_previous_release_follows_the_current_digest() -> None:
    a, b, c = ("sha256:" + x * 64 for x in "abc")
    records = [
        MoveRecord("stable", "promote", a, "1.0.0"),
        MoveRecord("stable", "promote", b, "1.1.0", from_digest=a, from_version="1.0.0"),
        MoveRecord("stable", "promote", c, "1.2.0", from_digest=b, from_version="1.1.0"),
    ]
    from steps.oci import Digest

    assert previous_release(records, Digest.parse(c)) is records[2]
    assert previous_release(records, Digest.parse(b)) is records[1]
    assert previous_release(records, Digest.parse(a)) is None
    assert MoveRecord.from_json(records[1].to_json()) == records[1]


def test_commit_of_accepts_the_revision_forms() -> None:
    from steps.release.plan import commit_of

    sha = "0123456789abcdef0123456789abcdef01234567"
    assert commit_of(sha) == sha
    assert commit_of(f"main@sha1:{sha}") == sha
    assert commit_of(f"refs/tags/v1.4.0@sha1:{sha}") == sha
    assert commit_of(f"main/{sha}") == sha
    assert commit_of("main") is None
    assert commit_of(sha[:12]) is None


def test_dry_run_env_reaches_charts_and_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from steps.cli.app import build_parser
    from steps.cli.bundle import _dry_run_dir as _bundle_dry_run_dir

    monkeypatch.setenv("ALGA_DRY_RUN", "true")
    parser = build_parser()
    charts = parser.parse_args(["charts", "publish", "--source", "."])
    assert charts.dry_run is True
    bundle = parser.parse_args(
        [
            "bundle",
            "publish",
            "--source",
            ".",
            "--charts",
            "c.json",
            "--version",
            "1.0.0",
            "--out",
            "/tmp/x/bundle.json",
        ]
    )
    assert _bundle_dry_run_dir(bundle) == Path("/tmp/x/bundle.json.bundle")
    explicit = parser.parse_args(
        [
            "bundle",
            "publish",
            "--source",
            ".",
            "--charts",
            "c.json",
            "--version",
            "1.0.0",
            "--dry-run",
            "/tmp/render",
        ]
    )
    assert _bundle_dry_run_dir(explicit) == Path("/tmp/render")
    monkeypatch.setenv("ALGA_DRY_RUN", "false")
    real = build_parser().parse_args(
        ["bundle", "publish", "--source", ".", "--charts", "c.json", "--version", "1.0.0"]
    )
    assert real.dry_run is None
