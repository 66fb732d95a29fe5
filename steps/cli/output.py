"""What a person reads: human summaries of results, and colour on a terminal only.

Colour is used when the stream is a TTY, ``NO_COLOR`` is unset (https://no-color.org) and
``TERM`` is not ``dumb``; ``--json`` output is never coloured. Pure formatting otherwise:
each ``human_*`` takes the command's JSON result and returns text.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

_CODES = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}


def use_colour(stream: TextIO, env: Mapping[str, str]) -> bool:
    if "NO_COLOR" in env or env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Painter:
    """Wraps words in ANSI colour codes when enabled, returns them unchanged otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, colour: str) -> str:
        if not self.enabled or not text:
            return text
        return f"\x1b[{_CODES[colour]}m{text}\x1b[0m"


PLAIN = Painter(False)


def painter_for(stream: TextIO = sys.stdout, env: Mapping[str, str] | None = None) -> Painter:
    from steps.cli import options

    return Painter(use_colour(stream, options.environment() if env is None else env))


# -- charts and the control plane ----------------------------------------------------------


def human_charts(result: Mapping[str, Any], paint: Painter = PLAIN) -> str:
    lines = []
    for name, entry in sorted(result.get("charts", {}).items()):
        lines.append(f"{name:<16} {entry['version']:<28} {entry['status']:<10} {entry['digest']}")
    return "\n".join(lines)


def human_control_plane(result: Mapping[str, Any], paint: Painter = PLAIN) -> str:
    return f"{result['status']:<10} {result['reference']}"


# -- channels -----------------------------------------------------------------------------


def human_move(result: Mapping[str, Any], paint: Painter = PLAIN) -> str:
    what = (
        "would move" if result.get("dryRun") else "moved" if result.get("moved") else "already at"
    )
    head = f"{result['channel']}: {paint(what, 'green') if result.get('moved') else what} "
    if result.get("moved") or result.get("dryRun"):
        head += f"{result.get('fromVersion') or '(none)'} -> "
    lines = [head + f"{result['version']} ({result['to']})"]
    if result.get("record"):
        lines.append(f"recorded as {result['record']}")
    statement = result.get("statement")
    if statement:
        lines.append(_statement_line(statement))
    return "\n".join(lines)


def _statement_line(statement: Mapping[str, Any]) -> str:
    """One line for a move's or a refresh's ``statement`` result."""
    status = statement.get("status")
    if status in ("not-vouched", "none") or statement.get("sequence") is None:
        return f"statement: {status} (no statement vouches for this release)"
    words = {"issued": "issued", "kept": "kept", "would-issue": "would issue"}
    return (
        f"statement: {words.get(str(status), status)} sequence {statement['sequence']}, "
        f"issued {statement['issuedAt']}, expires {statement['expiresAt']}"
    )


def human_refresh(result: Mapping[str, Any], paint: Painter = PLAIN) -> str:
    status = result.get("status")
    previous = result.get("previous") or {}
    head = f"{result['channel']}: {result['version']} ({result['manifestDigest']})"
    if status == "fresh":
        return (
            f"{head}\nstatement left as it is: sequence {previous.get('sequence')}, issued "
            f"{previous.get('issuedAt')} (younger than --min-age), expires "
            f"{previous.get('expiresAt')}"
        )
    verb = "would refresh" if status == "would-refresh" else paint("refreshed", "green")
    return (
        f"{head}\n{verb}: sequence {previous.get('sequence')} -> "
        f"{(result.get('statement') or {}).get('sequence')}\n"
        + _statement_line(result.get("statement") or {})
    )


def human_history(result: Mapping[str, Any], paint: Painter = PLAIN) -> str:
    lines = [
        f"channel {result['channel']}: now {result['current']['version'] or '(none)'}"
        f" {result['current']['digest'] or ''}".rstrip(),
        "",
    ]
    statement = result.get("statement")
    if statement:
        lines[1:1] = [
            f"statement: {statement['state']}: {statement['message']}"
            + (f"\n  hint: {statement['hint']}" if statement.get("hint") else "")
        ]
    if not result["moves"]:
        return "\n".join([*lines, "(no recorded moves)"])
    lines.append(f"{'time (UTC)':<28} {'kind':<9} {'from':<14} {'to':<14} {'actor':<24} reason")
    for m in _with_refreshes(result["moves"], result.get("refreshes") or []):
        lines.append(
            f"{m['time']:<28} {m['kind']:<9} {m.get('fromVersion') or '(none)':<14} "
            f"{m['version']:<14} {m['actor']:<24} {m.get('reason') or ''}"
            + (f"  [run {m['run']}]" if m.get("run") else "")
        )
    return "\n".join(lines)


def _with_refreshes(moves: list[Any], refreshes: list[Any]) -> list[Any]:
    """The moves in the history's order, each refresh (a re-issued statement, no move)
    placed after the moves made before it."""
    out: list[Any] = []
    pending = sorted(refreshes, key=lambda r: str(r.get("time")))
    for move in moves:
        while pending and str(pending[0].get("time")) < str(move.get("time")):
            out.append(pending.pop(0))
        out.append(move)
    return out + pending


# -- releases -----------------------------------------------------------------------------


def human_resolve(result: Mapping[str, Any], paint: Painter = PLAIN) -> str:
    m = result.get("manifest", {})
    rows = [
        ("reference", result.get("reference")),
        ("version", result.get("version")),
        ("channel", m.get("channel")),
        ("manifest digest", result.get("manifestDigest")),
        ("config digest", result.get("configDigest")),
        ("bundle", f"{m.get('config', {}).get('repository')}@{m.get('config', {}).get('digest')}"),
        ("control plane", m.get("controlPlane")),
        ("values profile", m.get("valuesProfile")),
    ]
    rows += [(f"image {k}", v) for k, v in sorted((m.get("images") or {}).items())]
    rows += [(f"chart {k}", v) for k, v in sorted((m.get("charts") or {}).items())]
    return "\n".join(f"{k:<24} {v}" for k, v in rows)


def human_inspect(result: Mapping[str, Any], paint: Painter = PLAIN) -> str:
    lines = [
        f"release {result['version']} ({result['reference']})",
        f"  manifest {result['manifestDigest']}",
        f"  config   {result['configDigest']}",
        "",
        f"{'kind':<14} {'name':<16} {'present':<8} reference",
    ]
    for p in result["pieces"]:
        mark = {True: "yes", False: "MISSING", None: "n/a"}[p["present"]]
        shown = paint(f"{mark:<8}", "red") if p["present"] is False else f"{mark:<8}"
        lines.append(
            f"{p['kind']:<14} {p['name']:<16} {shown} {p['reference']}"
            + (f"  ({p['detail']})" if p["detail"] else "")
        )
    lines += human_signatures(result, paint)
    lines += human_provenance(result.get("provenance"), paint)
    lines.append("")
    lines.append(
        paint("complete", "green")
        if result["complete"]
        else paint("INCOMPLETE: some pieces are missing", "red")
    )
    return "\n".join(lines)


def human_signatures(result: Mapping[str, Any], paint: Painter = PLAIN) -> list[str]:
    """Per piece "signed by <key id>" or "UNSIGNED", and image tags that moved (issue 17)."""
    lines: list[str] = []
    signatures = result.get("signatures")
    if signatures is not None:
        lines += ["", f"signatures (trusted: {', '.join(result.get('trustedKeys') or [])})"]
        for p in signatures:
            status = str(p["status"])
            shown = status if p["signed"] else paint(status, "red")
            lines.append(f"{p['kind']:<14} {p['name']:<16} {shown}")
    for drift in result.get("imageDrift") or []:
        lines.append(
            paint(
                f"image {drift['key']}: {drift['reference']} moved from {drift['recorded']} to "
                f"{drift['current'] or '(gone)'}",
                "red",
            )
        )
    return lines


def human_provenance(report: Mapping[str, Any] | None, paint: Painter = PLAIN) -> list[str]:
    """The release's SLSA provenance (``inspect --provenance``): each attestation, verified
    or not, and what a verified one records."""
    if report is None:
        return []
    summary = str(report["summary"])
    lines = [
        "",
        f"provenance ({report['attestationTag']}, trusted: {', '.join(report['trustedKeys'])})",
        "  " + (paint(summary, "green") if report["verified"] else paint(summary, "red")),
    ]
    for att in report["attestations"]:
        status = str(att["status"])
        lines.append(
            f"  {att['envelopeDigest']}: " + (status if att["verified"] else paint(status, "red"))
        )
        if not att["verified"]:
            continue
        params = att["statement"]["predicate"]["buildDefinition"]["externalParameters"]
        lines.append(f"    builder        {att.get('builderId')}")
        lines.append(f"    run            {att.get('invocationId') or '(not given)'}")
        lines.append(
            f"    source         {att.get('sourceRepository') or '(unknown)'} @ "
            f"{att.get('sourceCommit') or '(unknown commit)'}"
        )
        lines.append(f"    version        {params.get('version')} ({params.get('channel')})")
        for key, image in sorted((params.get("images") or {}).items()):
            digest = f"@{image['digest']}" if image.get("digest") else ""
            lines.append(f"    image          {key}={image.get('tag')}{digest}")
        lines.append(f"    control plane  {params.get('controlPlane')}")
    return lines


def human_publish(result: Mapping[str, Any], paint: Painter = PLAIN) -> str:
    move = result.get("channelMove") or {}
    config = result.get("config") or {}
    lines = [
        f"release {result['version']} -> {result['channel']}"
        + (" (dry run: nothing written)" if result.get("dryRun") else ""),
        f"  manifest       {result.get('repository')}@{result.get('manifestDigest')}",
        f"  bundle         {config.get('repository')}@{config.get('digest')}",
        f"  control plane  {result.get('controlPlane')}",
    ]
    for key, tag in sorted((result.get("images") or {}).items()):
        lines.append(f"  image          {key}={tag}")
    for name, chart in sorted((result.get("charts") or {}).items()):
        lines.append(f"  chart          {name} {chart['version']}")
    if move.get("moved"):
        lines.append(
            f"  channel        {result['channel']}: {move.get('fromVersion') or '(none)'}"
            f" -> {move.get('version')}"
        )
    elif not result.get("dryRun"):
        lines.append(f"  channel        {result['channel']} already at {move.get('version')}")
    if result.get("verified"):
        lines.append(
            "  verified       "
            + paint("resolved as an appliance does; every piece present", "green")
        )
    return "\n".join(lines)


class BlobProgress:
    """Byte progress of blob transfers on a terminal: one line, rewritten in place (``\\r``)
    at most every 0.2 s, with every blob under way (a copy moves several at once); each
    blob, once done, gets a line of its own with its total. Off the terminal it does
    nothing: the log already says one line per blob. Safe to call from several threads."""

    def __init__(self, stream: TextIO = sys.stderr, *, enabled: bool | None = None) -> None:
        import threading
        import time

        self.stream = stream
        self.enabled = bool(stream.isatty()) if enabled is None else enabled
        self._clock = time.monotonic
        self._lock = threading.Lock()
        self._active: dict[str, str] = {}  # label -> "done/total", in start order
        self._last = 0.0
        self._width = 0

    def __call__(self, blob: Any) -> Any:
        if not self.enabled:
            return None
        label = f"blob {str(blob.digest)[7:19]}"

        def report(done: int, total: int | None) -> None:
            finished = total is not None and done >= total
            size = f"/{_mib(total)}" if total else ""
            with self._lock:
                now = self._clock()
                if not finished and now - self._last < 0.2 and label in self._active:
                    return
                self._last = now
                self._active[label] = f"{_mib(done)}{size}"
                if finished:
                    del self._active[label]
                    self._write(f"{label}: {_mib(done)}{size}\n")
                if self._active:
                    self._write(" | ".join(f"{k}: {v}" for k, v in self._active.items()))

        return report

    def _write(self, text: str) -> None:
        # over the live line: clear what it held beyond the new text
        pad = max(0, self._width - len(text.rstrip("\n")))
        if text.endswith("\n"):
            self.stream.write("\r" + text[:-1] + " " * pad + "\n")
            self._width = 0
        else:
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
        self.stream.flush()


def _mib(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MiB"
