"""Keep secrets out of logs, errors and output files.

Secrets (registry passwords, bearer tokens) are registered here as soon as
they are read or received. :func:`redact` replaces every registered secret in
a text; :class:`RedactingFilter` applies it to every log record of the
project's loggers. Error messages are built from references and status codes,
never from headers, so redaction is a second line of defence, not the first.
"""

from __future__ import annotations

import logging
import threading

_lock = threading.Lock()
_secrets: set[str] = set()
MASK = "***"

# Secrets shorter than this are not registered: replacing every "a" in a
# message would garble it, and such a secret is not a credential worth hiding.
_MIN_SECRET_LEN = 4


def register_secret(value: str | None) -> None:
    if value and len(value) >= _MIN_SECRET_LEN:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
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
