"""Bad input at the CLI boundary is exit 2 with a message, before anything is contacted:
strict environment booleans, --out / --out-dir that cannot be written, bad --timeout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import cli

IMAGES = [
    a
    for key in ("algaCore", "workflowWorker", "emailService", "temporalWorker")
    for a in ("--image", f"{key}=62cdce38")
]


def publish_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "publish",
        "--source",
        str(tmp_path),
        "--version",
        "1.0.0",
        "--channel",
        "nightly",
        *IMAGES,
        "--control-plane",
        "62cdce38",
        # nothing listens here: a command that got past its input checks would fail 75
        "--registry",
        "127.0.0.1:9",
        "--plain-http",
        "--json",
        *extra,
    ]


@pytest.mark.parametrize("value", ["y", "enabled", "maybe", "2"])
def test_an_unknown_boolean_word_is_refused_naming_the_variable(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ALGA_DRY_RUN", value)
    result = cli(publish_args(tmp_path))
    assert result.code == 2, result.stderr
    assert "ALGA_DRY_RUN" in result.stderr and repr(value) in result.stderr
    assert "true" in result.stderr and "false" in result.stderr  # the accepted words


@pytest.mark.parametrize(("value", "expected"), [("TRUE", True), ("off", False), ("", False)])
def test_known_boolean_words_in_any_case(
    value: str, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from steps.cli.app import build_parser

    monkeypatch.setenv("ALGA_DRY_RUN", value)
    args = build_parser().parse_args(["charts", "publish", "--source", "."])
    assert args.dry_run is expected


def test_publish_out_dir_naming_a_file_exits_2_before_any_network(
    release_source: Path, tmp_path: Path
) -> None:
    taken = tmp_path / "results"
    taken.write_text("not a folder\n")
    args = publish_args(release_source, "--config", str(release_source / "release.yaml"))
    args[2] = str(release_source)
    result = cli([*args, "--out-dir", str(taken)])
    assert result.code == 2, result.stderr
    assert "is a file, not a folder" in result.stderr and "Traceback" not in result.stderr
    assert taken.read_text() == "not a folder\n"


def test_out_dir_naming_a_file_is_bad_input(tmp_path: Path) -> None:
    taken = tmp_path / "results"
    taken.write_text("not a folder\n")
    from steps.cli.context import prepare_out_dir
    from steps.errors import InvalidInputFile

    with pytest.raises(InvalidInputFile, match="is a file, not a folder"):
        prepare_out_dir(taken)
    assert taken.read_text() == "not a folder\n"  # left as it was


def test_out_naming_a_folder_or_below_a_file_is_bad_input(tmp_path: Path) -> None:
    from steps.cli.context import write_json_file
    from steps.errors import InvalidInputFile

    with pytest.raises(InvalidInputFile, match="it is a folder"):
        write_json_file(tmp_path, {"a": 1})
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InvalidInputFile, match="a parent of it is a file"):
        write_json_file(blocker / "out.json", {"a": 1})
    good = tmp_path / "deep" / "out.json"
    write_json_file(good, {"a": 1})
    assert json.loads(good.read_text()) == {"a": 1}


def test_charts_publish_with_out_naming_a_folder_exits_2(tmp_path: Path) -> None:
    """Through the CLI: the error is a message and exit 2, never a traceback."""
    from steps.cli.context import RunContext

    ctx = RunContext()
    with pytest.raises(Exception) as caught:
        ctx.write_result(tmp_path, {"x": 1})
    assert getattr(caught.value, "exit_code", None) == 2


def test_blob_progress_on_a_terminal_and_silence_elsewhere() -> None:
    import io
    from types import SimpleNamespace

    from steps.cli.output import BlobProgress

    blob = SimpleNamespace(digest="sha256:" + "ab" * 32)
    stream = io.StringIO()
    report = BlobProgress(stream, enabled=True)(blob)
    assert report is not None
    report(0, 3 * 1024 * 1024)
    report(3 * 1024 * 1024, 3 * 1024 * 1024)
    text = stream.getvalue()
    assert text.startswith("\rblob abababababab: 0.0 MiB/3.0 MiB")
    assert text.endswith("\rblob abababababab: 3.0 MiB/3.0 MiB\n")
    assert BlobProgress(io.StringIO())(blob) is None  # not a terminal: the log says enough


def test_blob_progress_of_blobs_under_way_at_once_shares_one_line() -> None:
    import io
    from types import SimpleNamespace

    from steps.cli.output import BlobProgress

    mib = 1024 * 1024
    stream = io.StringIO()
    progress = BlobProgress(stream, enabled=True)
    first = progress(SimpleNamespace(digest="sha256:" + "aa" * 32))
    second = progress(SimpleNamespace(digest="sha256:" + "bb" * 32))
    first(0, 2 * mib)
    second(0, 4 * mib)  # a new blob is shown at once, beside the first
    assert stream.getvalue().endswith(
        "\rblob aaaaaaaaaaaa: 0.0 MiB/2.0 MiB | blob bbbbbbbbbbbb: 0.0 MiB/4.0 MiB"
    )
    first(2 * mib, 2 * mib)  # done: a line of its own, then the live line for the rest
    text = stream.getvalue()
    done_line = "\rblob aaaaaaaaaaaa: 2.0 MiB/2.0 MiB"
    assert done_line in text and text.endswith("\n\rblob bbbbbbbbbbbb: 0.0 MiB/4.0 MiB")
    assert text[text.index(done_line) :].split("\n")[0].strip() == done_line.strip()
    second(4 * mib, 4 * mib)
    assert stream.getvalue().endswith("\rblob bbbbbbbbbbbb: 4.0 MiB/4.0 MiB\n")
