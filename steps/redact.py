"""Keep secrets out of logs, errors and output files.

Secrets (registry passwords, bearer tokens, identity tokens) are registered here as soon as
they are read or received. :func:`redact` replaces every registered secret in a text, in
every form a server may echo it; :class:`RedactingFilter` applies it to every log record of
the project's loggers. Error messages are built from references and status codes, never
from headers, so redaction is a second line of defence, not the first.

The rule (what is masked, whatever the secret's length):

- Forms: the secret itself; URL-encoded (``quote`` with and without ``/`` kept, and
  ``quote_plus``); JSON-escaped (the inside of ``json.dumps``); base64 of the secret
  (standard and URL-safe, with and without padding); and, for credentials registered with
  :func:`register_credentials`, base64 of ``user:password`` (what a Basic header carries)
  and the URL-encoded ``user:password``.
- A form of 4 characters or more is masked wherever it occurs.
- A shorter form (a 1-3 character password) is masked where it stands as a whole token in
  a place credentials are written: right after ``=``, ``:`` (``user:ab``) or an
  opening quote (``"``, ``'``, `````), or after a word such as ``password``, ``passwd``,
  ``secret``, ``token`` or ``pw`` and its separators (``password: ab``, ``password is ab``);
  "whole token" means no letter or digit follows it. Elsewhere it is left alone, so a
  one-letter password does not turn every "a" of a message into ``***``; a short password
  echoed as a bare word in prose is the one case this rule does not catch.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from urllib.parse import quote, quote_plus

_lock = threading.Lock()
_forms: set[str] = set()
_short: set[str] = set()
_pattern: re.Pattern[str] | None = None
MASK = "***"

#: Forms at least this long are masked anywhere; shorter ones only in credential contexts.
ANYWHERE_MIN_LEN = 4

_CONTEXT = (
    r"(?P<pre>[=:\"'`]|"
    r"\b(?i:password|passwd|passphrase|secret|token|pw)(?:\s*[:=]\s*|\s+(?:is\s+)?))"
)


def _encodings(value: str) -> set[str]:
    raw = value.encode("utf-8")
    forms = {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        forms.update({text, text.rstrip("=")})
    return {form for form in forms if form}


def register_secret(value: str | None) -> None:
    """Mask ``value`` (and its encodings) in every later :func:`redact`."""
    if not value:
        return
    _add(_encodings(value))


def register_credentials(username: str, password: str) -> None:
    """Register ``password`` and the forms a Basic header or a URL carries with the user."""
    register_secret(password)
    if not password:
        return
    pair = f"{username}:{password}"
    forms = {base64.b64encode(pair.encode("utf-8")).decode("ascii")}
    forms |= {form.rstrip("=") for form in forms}
    forms.add(quote(pair, safe=":"))
    forms.add(f"{quote(username, safe='')}:{quote(password, safe='')}")
    _add(forms)


def _add(forms: set[str]) -> None:
    global _pattern
    with _lock:
        before = len(_forms) + len(_short)
        for form in forms:
            (_forms if len(form) >= ANYWHERE_MIN_LEN else _short).add(form)
        if len(_forms) + len(_short) != before:
            _pattern = None


def _compiled() -> re.Pattern[str] | None:
    global _pattern
    with _lock:
        if _pattern is None and (_forms or _short):
            alternatives: list[str] = []
            if _forms:
                longest_first = sorted(_forms, key=len, reverse=True)
                alternatives.append("(?P<any>" + "|".join(map(re.escape, longest_first)) + ")")
            if _short:
                longest_first = sorted(_short, key=len, reverse=True)
                tokens = "|".join(map(re.escape, longest_first))
                alternatives.append(f"{_CONTEXT}(?P<short>{tokens})(?![A-Za-z0-9])")
            _pattern = re.compile("|".join(alternatives))
        return _pattern


def _mask(match: re.Match[str]) -> str:
    if match.lastgroup == "short":
        return match.group("pre") + MASK
    return MASK


def redact(text: str) -> str:
    """``text`` with every registered secret, in every form above, replaced by ``***``."""
    pattern = _compiled()
    if pattern is None or not text:
        return text
    return pattern.sub(_mask, text)


class RedactingFilter(logging.Filter):
    """A logging filter that masks registered secrets in the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
