"""One run, one set of clients: the state a command shares with the steps it runs.

``alga-release publish`` runs every release step in one process; each step parses its own
argument list (the same one an Argo task gets) and would, on its own, build registry
clients, load the config and write its result to a file for the next step to read. A
:class:`RunContext` made once per process keeps that cheap and exact:

- **clients**: one :class:`~steps.oci.client.RegistryClient` per distinct registry access
  (host, TLS, credentials, anonymous or not), so a whole release shares one token cache and
  one connection pool; a ``with`` block around a shared client does not close it, the
  context does at the end of the run;
- **step results**: what a step writes with ``--out`` is also kept in memory under that
  path, and the next step's read of the path returns the value, not a re-parsed file (the
  file is still written: Argo reads it, and so does a person);
- **memo**: values a run computes more than once from the same inputs (the release config,
  the overlay's profile values).

Outside ``publish`` a context serves one command and changes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from steps.errors import InvalidInputFile

if TYPE_CHECKING:  # imported when used: `--help` and `--version` need no HTTP client
    from steps.oci.auth import Credentials
    from steps.oci.client import RegistryClient, RetryPolicy
    from steps.oci.model import Deadline
    from steps.oci.quick import QuickReader

T = TypeVar("T")

log = logging.getLogger("alga_release")


class RunContext:
    def __init__(self) -> None:
        #: When the command began (``--timeout`` counts from here).
        self.started = time.monotonic()
        #: False while ``publish`` runs its steps: they share the run's full client.
        self.standalone = True
        self._clients: dict[tuple[object, ...], RegistryClient] = {}
        #: While :func:`quick_read` runs its work: the quick readers :meth:`client` hands out.
        self._quick: dict[tuple[object, ...], QuickReader] | None = None
        self._results: dict[Path, dict[str, Any]] = {}
        self._memo: dict[tuple[object, ...], object] = {}
        self.consume_cache: object | None = None  # a release_consume.MemoryCache, made lazily

    # -- clients -------------------------------------------------------------------------

    def client(self, args: argparse.Namespace, *, anonymous: bool = False) -> RegistryClient:
        """The run's client for the registry flags in ``args`` (made on first use)."""
        credentials = None if anonymous else self.credentials(args)
        key = (
            args.registry,
            bool(args.plain_http),
            tuple(args.insecure_registry),
            str(args.ca_file) if args.ca_file else None,
            (credentials.username, credentials.password) if credentials else None,
        )
        if self._quick is not None:
            return self._quick_client(args, key, anonymous)
        client = self._clients.get(key)
        if client is None:
            from steps.oci.client import RegistryClient

            client = RegistryClient(
                **registry_settings(args),
                credentials=credentials,
                retry=self.retry_policy(),
                deadline=self.deadline(args),
                remember_by_digest=True,  # a run reads its releases by digest again and again
            )
            self._clients[key] = client
        return client

    def _quick_client(
        self, args: argparse.Namespace, key: tuple[object, ...], anonymous: bool
    ) -> RegistryClient:
        """Inside :func:`quick_read`: a quick reader in the client's place. It duck-types the
        client's reading half (:class:`~steps.oci.quick.QuickReader`); a write, or anything
        else it does not answer as the full client would, raises
        :class:`~steps.oci.quick.Doubt`, and the work starts over on full clients."""
        assert self._quick is not None
        reader = self._quick.get(key)
        if reader is None:
            reader = self._quick[key] = self.quick_reader(args, anonymous=anonymous)
        return cast("RegistryClient", reader)

    def credentials(self, args: argparse.Namespace) -> Credentials | None:
        """The registry's credentials, found once per run as docker, podman and helm find
        them: ``--password-file`` or ``ALGA_REGISTRY_*``, then the Docker config
        (``auths``, credential helpers), then podman's auth file, else anonymous."""
        import sys

        from steps.cli import options
        from steps.oci.credentials import find_credentials

        password_file: Path | None = args.password_file
        key = ("credentials", args.registry, str(password_file))
        if key not in self._memo:
            found = find_credentials(
                args.registry,
                env=options.environment(),
                password_file=password_file,
                stdin=sys.stdin,
                scope=getattr(args, "namespace", None),
            )
            self._memo[key] = found.credentials
        value = self._memo[key]
        from steps.oci.auth import Credentials

        return value if isinstance(value, Credentials) else None

    def deadline(self, args: argparse.Namespace) -> Deadline:
        """The command's time budget (``--timeout``), one for every client of the run."""
        from steps.oci.model import Deadline

        seconds = getattr(args, "timeout", None)
        return self.memo(("deadline",), lambda: Deadline(seconds, started=self.started))

    def time_left(self, args: argparse.Namespace) -> float | None:
        """Seconds left of ``--timeout`` (None: no limit), without loading the client."""
        seconds = getattr(args, "timeout", None)
        return None if seconds is None else seconds - (time.monotonic() - self.started)

    # -- quick reads -----------------------------------------------------------------------

    def quick_allowed(self) -> bool:
        """A read-only command may try :mod:`steps.oci.quick` first: only on its own (not
        inside ``publish``, whose steps share a warm client), before any full client, and
        unless ``ALGA_NO_QUICK_READS`` turns them off."""
        from steps.cli import options

        return self.standalone and not self._clients and not options.env_bool("ALGA_NO_QUICK_READS")

    def quick_reader(self, args: argparse.Namespace, *, anonymous: bool = False) -> QuickReader:
        """A quick reader for the registry flags in ``args`` (the run's credentials, none
        when ``anonymous``); raises :class:`~steps.oci.quick.Doubt` when the settings are
        not its to serve."""
        from steps.oci.quick import QuickReader

        return QuickReader(
            **registry_settings(args),
            credentials=None if anonymous else self.credentials(args),
            budget=self.time_left(args),
        )

    def retry_policy(self) -> RetryPolicy:
        """One retry policy for every client of the run (``ALGA_RETRY_ATTEMPTS``,
        ``ALGA_RETRY_BASE_DELAY``)."""
        from steps.cli import options
        from steps.oci.client import RetryPolicy

        return self.memo(("retry",), lambda: RetryPolicy.from_env(options.environment()))

    @property
    def clients(self) -> list[RegistryClient]:
        return list(self._clients.values())

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # -- step results ----------------------------------------------------------------------

    def write_result(self, path: Path, data: dict[str, Any]) -> None:
        write_json_file(path, data)
        self._results[path.resolve()] = data

    def kept_result(self, path: Path) -> dict[str, Any] | None:
        """The result a step of this run wrote to ``path``, if one did."""
        return self._results.get(path.resolve())

    def read_result(self, path: Path, what: str) -> dict[str, Any]:
        kept = self._results.get(path.resolve())
        if kept is not None:
            return kept
        return read_json_file(path, what)

    # -- memo --------------------------------------------------------------------------------

    def memo(self, key: tuple[object, ...], compute: Callable[[], T]) -> T:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]  # type: ignore[return-value]  # stored by this same key


def registry_settings(args: argparse.Namespace) -> dict[str, Any]:
    """How to reach the registry in ``args`` (its host and TLS flags), as both the full
    client and the quick reader take them."""
    return {
        "registry": args.registry,
        "plain_http": bool(args.plain_http),
        "insecure_hosts": tuple(args.insecure_registry),
        "verify": str(args.ca_file) if args.ca_file else True,
    }


def context_of(args: argparse.Namespace) -> RunContext:
    ctx = getattr(args, "run_context", None)
    if ctx is None:  # a handler called directly (tests): a context of its own
        ctx = RunContext()
        args.run_context = ctx
    assert isinstance(ctx, RunContext)
    return ctx


def make_client(
    args: argparse.Namespace, *, anonymous: bool = False
) -> contextlib.AbstractContextManager[RegistryClient]:
    """``with make_client(args) as client:`` -- the run's shared client; leaving the block
    does not close it (the run does, at its end)."""
    return contextlib.nullcontext(context_of(args).client(args, anonymous=anonymous))


@contextlib.contextmanager
def own_client(**kwargs: Any) -> Iterator[RegistryClient]:
    """A client outside the run's set (another registry, e.g. a copy's source)."""
    from steps.oci.client import RegistryClient

    client = RegistryClient(**kwargs)
    try:
        yield client
    finally:
        client.close()


def quick_read(args: argparse.Namespace, work: Callable[[], T]) -> T | None:
    """``work()`` on quick readers (:mod:`steps.oci.quick`; meanwhile the context's
    :meth:`~RunContext.client` hands them out), or ``None`` when the full client must do
    it: the context does not allow it, or ``work`` raised
    :class:`~steps.oci.quick.Doubt` or any other error (the full client then gives the
    command's outcome, with its own message). Log records of a quick read that is given up are
    dropped, so the full run's log is the whole log."""
    context = context_of(args)
    if not context.quick_allowed():
        return None
    context.credentials(args)  # found once, outside: its errors are the command's own
    kept = _HeldRecords()
    root = logging.getLogger("alga_release")
    handlers, root.handlers = root.handlers, [kept]
    doubt: Exception | None = None
    context._quick = {}  # the run's clients are quick readers meanwhile
    try:
        result = work()
    except Exception as exc:  # Doubt, a release error, or a flaw of the quick path itself
        doubt = exc
    finally:
        root.handlers = handlers
        readers, context._quick = context._quick, None
        for reader in readers.values():
            reader.close()
    if doubt is not None:
        log.debug("quick read given up (%s); reading with the full client", doubt)
        return None
    for record in kept.records:
        root.handle(record)
    return result


class _HeldRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def write_out(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    """Write ``result`` to ``--out`` when given (and keep it for the run's next step)."""
    path = getattr(args, "out", None)
    if path:
        context_of(args).write_result(Path(path), result)
    return result


def read_result(args: argparse.Namespace, path: Path, what: str) -> dict[str, Any]:
    return context_of(args).read_result(path, what)


def write_json_file(path: Path, data: object) -> None:
    """Write JSON atomically: a reader sees the old file or the whole new one."""
    path = path.resolve()
    if path.is_dir():
        raise InvalidInputFile(
            f"cannot write the result to {path}: it is a folder",
            hint="give a file path (--out FILE)",
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _new_sibling(path)
    except (FileExistsError, NotADirectoryError):
        raise InvalidInputFile(
            f"cannot write the result to {path}: a parent of it is a file, not a folder",
            hint="choose another path",
        ) from None
    except OSError as exc:
        raise InvalidInputFile(f"cannot write the result to {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _new_sibling(path: Path) -> tuple[int, str]:
    """A new file of this process's own next to ``path`` (mode 0600, created exclusively),
    as ``tempfile.mkstemp`` makes one: without importing tempfile and shutil, 3.5 ms of
    each step that writes its result and needs neither."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for attempt in range(100):
        name = path.parent / f".{path.name}.{os.getpid()}.{time.monotonic_ns():x}.{attempt}"
        try:
            return os.open(name, flags, 0o600), str(name)
        except FileExistsError:
            continue
    raise FileExistsError(f"no new file name next to {path}")


def read_json_file(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputFile(f"cannot read the {what} file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidInputFile(f"the {what} file {path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInputFile(f"the {what} file {path} must hold a JSON object")
    return data


def prepare_out_dir(path: Path) -> Path:
    """A folder for step results: made when missing; a file there is bad input."""
    if path.exists() and not path.is_dir():
        raise InvalidInputFile(
            f"--out-dir {path} is a file, not a folder", hint="name a new or existing folder"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputFile(f"cannot make --out-dir {path}: {exc.strerror}") from None
    return path


def quick_first(args: argparse.Namespace, work: Callable[[], T], *, allowed: bool = True) -> T:
    """``work()`` on quick readers when ``allowed`` (:func:`quick_read`), else, or when
    they give it up, on the full client."""
    done = quick_read(args, work) if allowed else None
    return work() if done is None else done
