"""The ``alga-release`` command line: the parser, the exit boundary, the output.

This is the only place that exits or prints results. Every subcommand returns a JSON-able
result; ``--json`` prints it on stdout, otherwise a short human summary goes to stdout.
Progress and warnings go to stderr. Errors are :class:`~steps.errors.ReleaseError`
subclasses turned into exit codes:

    0 done (including "already so")     2 bad input
    3 refused by a gate                 75 transient registry/network failure
    1 anything else

Every option that has an environment variable says so in ``--help``
(:mod:`steps.cli.options`). Credentials come only from the environment or
``--password-file``. Domain modules are imported by the handlers, when a command runs, so
``--version`` and ``--help`` stay fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from steps import __version__
from steps.cli import options
from steps.cli.context import RunContext
from steps.errors import EXIT_BAD_INPUT, EXIT_ERROR, BadInput, ReleaseError
from steps.redact import RedactingFilter, redact

log = logging.getLogger("alga_release")

Handler = Callable[[argparse.Namespace], dict[str, Any]]

SHELLS = ("bash", "zsh", "fish")


class Parser(argparse.ArgumentParser):
    """argparse with a "did you mean" for a mistyped flag or command."""

    def error(self, message: str) -> NoReturn:
        hint = _suggestion(self, message)
        self.print_usage(sys.stderr)
        text = f"{self.prog}: error: {message}"
        if hint:
            text += f"\n  hint: did you mean {hint}?"
        self.exit(EXIT_BAD_INPUT, text + "\n")


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [s for action in parser._actions for s in action.option_strings]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _leaf_for(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.ArgumentParser:
    """The subcommand parser the words of ``argv`` lead to."""
    current = parser
    for word in argv:
        children = _subparsers(current)
        if word in children:
            current = children[word]
    return current


def _suggestion(parser: argparse.ArgumentParser, message: str) -> str | None:
    import difflib  # only for a command line in error

    argv = sys.argv[1:] if _CURRENT_ARGV is None else list(_CURRENT_ARGV)
    if message.startswith("unrecognized arguments:"):
        words = message.split(":", 1)[1].split()
        leaf = _leaf_for(parser, argv)
        known = _option_strings(leaf)
        for word in words:
            if word.startswith("-"):
                flag = word.split("=", 1)[0]
                close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
                if close:
                    return close[0]
        return None
    if message.startswith("argument ") and "invalid choice:" in message:
        bad = message.split("invalid choice:", 1)[1].split("(", 1)[0].strip().strip("'\"")
        choices = list(_subparsers(parser)) or [
            c for a in parser._actions for c in (a.choices or [])
        ]
        close = difflib.get_close_matches(bad, [str(c) for c in choices], n=1, cutoff=0.5)
        return close[0] if close else None
    return None


_CURRENT_ARGV: Sequence[str] | None = None


def version_text() -> str:
    from steps.buildinfo import build_commit

    commit = build_commit()
    return f"alga-release {__version__}" + (f" (commit {commit})" if commit else "")


class _VersionAction(argparse.Action):
    """``--version``: asks for the build commit only when used (it may run git)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        sys.stdout.write(version_text() + "\n")
        parser.exit(0)


#: The command words each module of steps.cli registers, in ``--help`` order. A command
#: line builds only its own module's parsers (:func:`commands_for`); the unit tests check
#: this table against what each module registers.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "charts": ("charts",),
    "bundle": ("bundle",),
    "release": ("images", "manifest", "verify", "resolve", "inspect", "diff", "publish"),
    "channels": ("channel", "promote", "history", "rollback"),
    "controlplane": ("control-plane",),
    "registry": ("login", "logout", "list"),
    "signing": ("keys",),
}
ALL_MODULES = tuple(COMMAND_MODULES)
#: Commands that parse other commands' argument lists (publish runs the release steps).
_NEEDS_ALL = frozenset({"publish"})


def commands_for(argv: Sequence[str]) -> tuple[str, ...]:
    """The modules whose parsers ``argv`` needs: its command's, or all of them for the
    top-level help or usage, an unknown word ("did you mean") and ``publish``; none for
    ``--version``. Global flags (``--json``, ``-v``, ``-q``) take no values, so the first
    other word is the command."""
    for word in argv:
        if word == "--version":
            return ()
        if word in ("-h", "--help"):
            return ALL_MODULES
        if word.startswith("-"):
            continue
        if word in _NEEDS_ALL:
            return ALL_MODULES
        for module, words in COMMAND_MODULES.items():
            if word in words:
                return (module,)
        return () if word == "completion" else ALL_MODULES
    return ALL_MODULES


def build_parser(modules: Sequence[str] = ALL_MODULES) -> argparse.ArgumentParser:
    """The parser with the commands of ``modules`` (default: every command)."""
    import importlib

    parser = Parser(
        prog="alga-release",
        allow_abbrev=False,
        formatter_class=options.Formatter,
        description=(
            "Publish Alga PSA appliance releases to an OCI registry: Helm charts, the Flux\n"
            "config bundle and the release manifest; move channels safely."
        ),
        epilog=(
            "exit codes: 0 done (or already so), 2 bad input, 3 refused by a gate\n"
            "(overwrite, downgrade, incomplete release), 75 transient registry failure\n"
            "(safe to retry), 1 anything else.\n\n"
            "Credentials: ALGA_REGISTRY_USERNAME and ALGA_REGISTRY_PASSWORD (or\n"
            "--password-file); never on the command line.\n"
            'Shell completion: eval "$(alga-release completion bash)" (or zsh, fish).'
        ),
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="print the version and the commit, then exit"
    )
    parser.add_argument("--json", action="store_true", default=False, help=argparse.SUPPRESS)
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only warnings/errors")
    parser.set_defaults(parser=parser)  # `publish` parses its steps' argument lists with it
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser
    )
    for name in ALL_MODULES:  # in this order whatever ``modules`` says: --help's order
        if name in modules:
            importlib.import_module(f"steps.cli.{name}").register(commands)
    completion = options.command(
        commands,
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description="Print the completion script for SHELL. Load it with\n"
        '  eval "$(alga-release completion bash)"    # in ~/.bashrc\n'
        '  eval "$(alga-release completion zsh)"     # in ~/.zshrc\n'
        "  alga-release completion fish | source     # in config.fish",
    )
    completion.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    completion.set_defaults(
        handler=cmd_completion, human=lambda r, _paint: r["script"].rstrip("\n")
    )
    return parser


def cmd_completion(args: argparse.Namespace) -> dict[str, Any]:
    """The completion script: argcomplete's, which calls back into this program."""
    try:
        from argcomplete import shell_integration
    except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
        raise BadInput("shell completion needs the argcomplete package") from None
    script = shell_integration.shellcode(["alga-release"], shell=args.shell)
    return {"shell": args.shell, "script": script}


def _setup_logging(verbose: bool, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("alga-release: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger("alga_release")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def _complete(parser: argparse.ArgumentParser) -> None:
    """Answer a shell's completion request (argcomplete sets _ARGCOMPLETE) and exit."""
    if "_ARGCOMPLETE" not in options.ENVIRON:
        return
    import argcomplete

    argcomplete.autocomplete(parser)


def run(argv: Sequence[str] | None = None) -> int:
    global _CURRENT_ARGV
    _CURRENT_ARGV = list(sys.argv[1:] if argv is None else argv)
    try:
        modules = ALL_MODULES if "_ARGCOMPLETE" in options.ENVIRON else commands_for(_CURRENT_ARGV)
        parser = build_parser(modules)
    except ReleaseError as exc:  # e.g. an environment default that cannot be read
        sys.stderr.write(redact(f"alga-release: error: {exc.diagnostics()}") + "\n")
        return exc.exit_code
    _complete(parser)
    try:
        args = parser.parse_args(_CURRENT_ARGV)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for usage errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_BAD_INPUT
    _setup_logging(bool(args.verbose), bool(args.quiet))
    from steps import sourcetime

    sourcetime.configure(options.env_str("SOURCE_DATE_EPOCH"))
    handler: Handler = args.handler
    want_json = bool(getattr(args, "json", False))
    context = RunContext()
    args.run_context = context
    try:
        with sourcetime.session():
            result = handler(args)
    except ReleaseError as exc:
        from steps.cli.output import painter_for

        paint = painter_for(sys.stderr)
        sys.stderr.write(
            redact(f"alga-release: {paint('error', 'red')}: {exc.diagnostics()}") + "\n"
        )
        if want_json:
            sys.stdout.write(redact(json.dumps(exc.to_json(), indent=2)) + "\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("alga-release: interrupted\n")
        return 130
    except Exception:  # the boundary: anything unexpected is exit 1, redacted
        sys.stderr.write(redact("alga-release: internal error\n" + traceback.format_exc()))
        return EXIT_ERROR
    finally:
        context.close()
    if want_json:
        sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    else:
        from steps.cli.output import painter_for

        human = getattr(args, "human", None)
        if human is not None:
            text = human(result, painter_for(sys.stdout))
        else:
            text = json.dumps(result, indent=2, sort_keys=True)
        if text:
            sys.stdout.write(text + "\n")
    exit_code = getattr(args, "exit_code", None)
    return int(exit_code(args, result)) if exit_code is not None else 0


def main() -> None:
    """The ``alga-release`` entry point: :func:`run`, then :func:`end`."""
    end(run())


def end(code: int) -> NoReturn:
    """Exit with ``code``, without the interpreter's teardown.

    Python's own exit unloads every module and collects every object: 15-35 ms for this
    command's imports, paid by each Argo step process, with nothing waiting on it. Here the
    atexit handlers run as at any exit (logging's, temporary files' finalizers, any a
    caller registered), the standard streams are flushed, and the process ends, as
    :mod:`multiprocessing` ends its forked children. A thread still running (none is
    expected) gets Python's normal exit instead, which waits for it, and so does a process
    with a profiler or tracer attached (``python -m cProfile``, a debugger), which writes
    its report after the script; a stream that cannot be flushed makes it 120, as Python's
    exit does.
    """
    import atexit
    import os
    import threading

    main_thread = threading.main_thread()
    watched = sys.getprofile() is not None or sys.gettrace() is not None
    if watched or any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    status = code
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or the pipe or disk refused the rest
            status = 120
    os._exit(status)


__all__ = ["COMMAND_MODULES", "build_parser", "commands_for", "end", "main", "run"]

if __name__ == "__main__":
    main()
