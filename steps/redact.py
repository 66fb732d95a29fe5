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

How: the long forms are replaced as plain substrings, longest first, each found by
``str.find`` (C speed); only the short forms, which need their context, go through a regular
expression. A run against a token-auth registry registers some ten forms per bearer token,
and one alternation of them all, recompiled on every new token, cost 0.3 s of a publish
(Python's ``re`` parser is slow on long literal alternations); the substring pass costs a few
microseconds per form and needs no compiling.
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
#: The long forms, longest first (None: to be sorted again), and the short forms' pattern.
_longest_first: tuple[str, ...] | None = None
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
    global _longest_first, _pattern
    with _lock:
        for form in forms:
            if len(form) >= ANYWHERE_MIN_LEN:
                if form not in _forms:
                    _forms.add(form)
                    _longest_first = None
            elif form not in _short:
                _short.add(form)
                _pattern = None


def _compiled() -> tuple[tuple[str, ...], re.Pattern[str] | None]:
    """The long forms, longest first, and the pattern of the short ones in their context."""
    global _longest_first, _pattern
    with _lock:
        if _longest_first is None:
            _longest_first = tuple(sorted(_forms, key=len, reverse=True))
        if _pattern is None and _short:
            tokens = "|".join(map(re.escape, sorted(_short, key=len, reverse=True)))
            _pattern = re.compile(f"{_CONTEXT}(?P<short>{tokens})(?![A-Za-z0-9])")
        return _longest_first, _pattern


def _mask(match: re.Match[str]) -> str:
    return match.group("pre") + MASK


def redact(text: str) -> str:
    """``text`` with every registered secret, in every form above, replaced by ``***``."""
    if not text:
        return text
    longest_first, pattern = _compiled()
    for form in longest_first:
        if form in text:
            text = text.replace(form, MASK)
    if pattern is not None:
        text = pattern.sub(_mask, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks registered secrets in the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
