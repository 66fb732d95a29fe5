"""A command line builds only its own command's parsers (steps.cli.app.commands_for).

What could go wrong, and is checked: the table of command words drifting from what the
modules register; a command line parsing differently (or failing) with its module alone;
the top-level help, a mistyped command's "did you mean" or `publish` (which parses its
steps' argument lists) losing commands; global flags or a subcommand's own `--version`
being taken for the command.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from steps.cli.app import ALL_MODULES, COMMAND_MODULES, build_parser, commands_for, run
from steps.release.plan import PublishParams, RegistryParams, release_steps

ROOT = Path(__file__).resolve().parents[2]


def comparable(ns: argparse.Namespace) -> dict[str, Any]:
    """A namespace's values, handlers named, the parser itself left out."""
    out = {}
    for key, value in vars(ns).items():
        if key == "parser":
            continue
        out[key] = getattr(value, "__qualname__", value) if callable(value) else value
    return out


def test_the_command_table_is_what_each_module_registers() -> None:
    for name, words in COMMAND_MODULES.items():
        parser = argparse.ArgumentParser()
        commands = parser.add_subparsers()
        importlib.import_module(f"steps.cli.{name}").register(commands)
        assert tuple(commands.choices) == words, name
    every = [w for words in COMMAND_MODULES.values() for w in words]
    assert len(every) == len(set(every))  # one module per command word


STEPS = release_steps(
    PublishParams(
        source="/src",
        version="1.2.3",
        channel="nightly",
        images={
            "algaCore": "1.2.3",
            "workflowWorker": "1",
            "emailService": "1",
            "temporalWorker": "1",
        },
        control_plane="1.2.3",
        config="/src/release.yaml",
        registry=RegistryParams(registry="ghcr.io", namespace="nine-minds"),
    ),
    "/out",
)
OTHER_LINES = [
    ["-q", "history", "stable", "--json"],
    ["--json", "-v", "control-plane", "copy", "ghcr.io/x/y:1", "--tag", "1.0.0"],
    ["promote", "--version", "1.2.3", "--channel", "stable"],
    ["rollback", "stable", "--reason", "bad"],
    ["login", "ghcr.io"],
    ["keys", "generate", "--output-prefix", "/tmp/k"],
    ["resolve", "stable"],
    ["diff", "1.0.0", "1.1.0"],
    ["inspect", "1.0.0"],
]


@pytest.mark.parametrize(
    "argv",
    [s.argv for s in STEPS] + OTHER_LINES,
    ids=[s.name for s in STEPS] + [" ".join(a[:3]) for a in OTHER_LINES],
)
def test_a_command_line_parses_the_same_with_its_module_alone(argv: list[str]) -> None:
    modules = commands_for(argv)
    assert len(modules) == 1, modules
    lazy = build_parser(modules).parse_args(argv)
    full = build_parser().parse_args(argv)
    assert comparable(lazy) == comparable(full)


def test_the_words_that_need_every_command_or_none() -> None:
    assert commands_for([]) == ALL_MODULES  # the usage lists every command
    assert commands_for(["--help"]) == ALL_MODULES
    assert commands_for(["-q", "-h", "images"]) == ALL_MODULES
    assert commands_for(["imags", "check"]) == ALL_MODULES  # "did you mean images?"
    assert commands_for(["publish", "--source", "."]) == ALL_MODULES  # parses its steps
    assert commands_for(["--version"]) == ()
    assert commands_for(["completion", "bash"]) == ()
    # a subcommand's own --version is its flag, not the program's
    assert commands_for(["manifest", "publish", "--version", "1.0.0"]) == ("release",)
    assert commands_for(["-v", "--json", "charts", "publish"]) == ("charts",)


def test_help_version_and_mistypes_behave_as_with_every_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["--help"]) == 0
    top = capsys.readouterr().out
    for words in COMMAND_MODULES.values():
        for word in words:
            assert f"    {word}" in top, word
    assert run(["imags", "check"]) == 2
    assert "did you mean images?" in capsys.readouterr().err
    assert run(["images", "chek"]) == 2
    assert "did you mean check?" in capsys.readouterr().err
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.startswith("alga-release ")


def test_a_step_loads_no_other_commands_module(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from steps.cli.app import run\n"
        "run(['images', '--help'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('steps.cli.')), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    loaded = done.stderr.strip().splitlines()[-1]
    assert "steps.cli.release" in loaded
    for other in ("steps.cli.channels", "steps.cli.controlplane", "steps.cli.registry"):
        assert other not in loaded, loaded


@pytest.mark.parametrize("width", [None, "60", "132", "nonsense"])
def test_help_is_as_wide_as_argparses_own_without_shutil(width: str | None) -> None:
    """The formatter sizes help as argparse's default does (COLUMNS, else the terminal,
    else 80), and building a step's parser imports no shutil for it."""
    probe = (
        "import argparse, sys\n"
        "from steps.cli.app import build_parser, commands_for\n"
        "ours = build_parser(commands_for(['images', 'check']))\n"
        "print('shutil' in sys.modules)\n"
        "from steps.cli import options\n"
        "theirs = argparse.RawDescriptionHelpFormatter('x')\n"
        "print(options.Formatter('x')._width == theirs._width)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if width is not None:
        env["COLUMNS"] = width
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
