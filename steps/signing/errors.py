"""Failure kinds of the signing package, under the project's roots (:mod:`steps.errors`)::

    BadInput                           2
     +-- SigningKeyInvalid                a key file that is not an ECDSA P-256 key we can read
     +-- SigningKeyPassword               the password is missing, or does not open the key
     +-- SigningKeyRequired               signing is required and no key was configured
     +-- KeyFileExists                    `keys generate` would overwrite a key file
    Refused                            3
     +-- UnsignedRelease                  a release (or its bundle) lacks a trusted signature

Messages name the key *file* and its key id, never a password or key material.
Each kind sets ``_kind = True`` (the convention of :mod:`steps.errors`: scripts see the
family in ``"error"`` and the kind in ``"kind"``).
"""

from __future__ import annotations

from steps.errors import BadInput, Refused


class SigningKeyInvalid(BadInput):
    """A key file is not a PEM ECDSA P-256 key in a format we read."""

    _kind = True


class SigningKeyPassword(BadInput):
    """An encrypted key without its password, or with a password that does not open it."""

    _kind = True


class SigningKeyRequired(BadInput):
    """Signing is required here and no signing key was given."""

    _kind = True


class KeyFileExists(BadInput):
    """Generating a key pair would overwrite an existing file."""

    _kind = True


class UnsignedRelease(Refused):
    """A release manifest or its bundle has no signature by a trusted key.

    ``pieces`` names each artifact that failed and why (``UNSIGNED``, or signed only by
    keys outside the trusted set).
    """

    _kind = True

    def __init__(self, message: str, *, pieces: tuple[str, ...] = (), hint: str | None = None):
        super().__init__(message, hint=hint)
        self.pieces = pieces
