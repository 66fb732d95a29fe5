"""Parsed OCI names: :class:`Digest`, :class:`Repository`, :class:`Reference`.

These are made once, at the edge, from strings; inner code never re-checks
a string. The grammar follows the OCI distribution specification:

- repository path components ``[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*`` joined by ``/``;
- tag ``[A-Za-z0-9_][A-Za-z0-9._-]{0,127}``;
- digest ``algorithm:hex`` (``sha256`` with 64 hex, ``sha512`` with 128 hex).

A reference is ``registry/repository`` followed by ``:tag``, ``@digest`` or both.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from steps.oci.errors import InvalidReference

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_HOST_RE = re.compile(
    r"^(?:localhost|\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]{1,5})?$"
)
_DIGEST_HEX = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True, order=True)
class Digest:
    """A content digest such as ``sha256:<64 hex>``."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        algorithm, sep, hexpart = text.partition(":")
        expected = _DIGEST_HEX.get(algorithm)
        if not sep or expected is None:
            raise InvalidReference(
                f"invalid digest {text!r}: expected 'sha256:<64 hex>'",
                hint="copy the digest exactly, including the 'sha256:' prefix",
            )
        if len(hexpart) != expected or not re.fullmatch(r"[a-f0-9]+", hexpart):
            raise InvalidReference(
                f"invalid digest {text!r}: {algorithm} needs {expected} lowercase hex characters"
            )
        return cls(algorithm, hexpart)

    @classmethod
    def parse_for(cls, text: str, where: str, error: Callable[..., Exception]) -> Digest:
        """:meth:`parse`, refusing a bad digest as ``error("<where>: <why>", hint=...)``:
        the error class of the caller's domain, naming the field that held it."""
        try:
            return cls.parse(text)
        except InvalidReference as exc:
            raise error(f"{where}: {exc.message}", hint=exc.hint) from None

    @classmethod
    def of(cls, data: bytes) -> Digest:
        """The sha256 digest of ``data``."""
        return cls("sha256", hashlib.sha256(data).hexdigest())

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)

    def matches(self, data: bytes) -> bool:
        h = self.hasher()
        h.update(data)
        return h.hexdigest() == self.hex

    @property
    def short(self) -> str:
        return self.hex[:12]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def digest_stream(stream: BinaryIO, chunk_size: int = 1 << 20) -> tuple[Digest, int]:
    """sha256 digest and size of a stream, read in chunks (never whole)."""
    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(chunk_size):
        h.update(chunk)
        size += len(chunk)
    return Digest("sha256", h.hexdigest()), size


def check_repository(name: str) -> str:
    """Return ``name`` if it is a valid repository path, else raise."""
    if len(name) > 255 or not _REPOSITORY_RE.match(name):
        raise InvalidReference(
            f"invalid repository name {name!r}: use lowercase letters, digits and "
            "'.', '_', '-' separators, components joined by '/'"
        )
    return name


def check_tag(tag: str) -> str:
    """Return ``tag`` if it is a valid OCI tag, else raise."""
    if not _TAG_RE.match(tag):
        hint = None
        if "+" in tag:
            hint = "OCI tags cannot hold '+'; avoid SemVer build metadata in versions"
        raise InvalidReference(
            f"invalid tag {tag!r}: must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}", hint=hint
        )
    return tag


def check_registry(host: str) -> str:
    if not _HOST_RE.match(host):
        raise InvalidReference(f"invalid registry host {host!r}: expected HOST or HOST:PORT")
    return host


@dataclass(frozen=True)
class Reference:
    """``registry/repository[:tag][@digest]``; at least one of tag and digest is set."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    def __post_init__(self) -> None:
        check_registry(self.registry)
        check_repository(self.repository)
        if self.tag is not None:
            check_tag(self.tag)
        if self.tag is None and self.digest is None:
            raise InvalidReference(
                f"reference {self.registry}/{self.repository} has no tag or digest"
            )

    @classmethod
    def parse(cls, text: str, *, default_registry: str | None = None) -> Reference:
        """Parse ``host/repo:tag``, ``host/repo@sha256:...`` or ``host/repo:tag@sha256:...``.

        An ``oci://`` prefix is accepted and dropped. Without a host-like first
        component (one with a ``.`` or ``:`` or ``localhost``), ``default_registry``
        is used when given.
        """
        original = text
        if text.startswith("oci://"):
            text = text[len("oci://") :]
        digest: Digest | None = None
        if "@" in text:
            text, _, digest_text = text.partition("@")
            digest = Digest.parse(digest_text)
        tag: str | None = None
        slash = text.rfind("/")
        colon = text.rfind(":")
        if colon > slash:
            text, tag = text[:colon], text[colon + 1 :]
        first, sep, rest = text.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            registry, repository = first, rest
        elif default_registry is not None:
            registry, repository = default_registry, text
        else:
            raise InvalidReference(
                f"invalid reference {original!r}: expected REGISTRY/REPOSITORY[:TAG][@DIGEST]"
            )
        if tag is None and digest is None:
            raise InvalidReference(
                f"invalid reference {original!r}: give a tag (':1.2.3') or a digest ('@sha256:...')"
            )
        return cls(registry, repository, tag, digest)

    @property
    def identifier(self) -> str:
        """What goes after ``/manifests/``: the digest when known, else the tag."""
        return str(self.digest) if self.digest is not None else str(self.tag)

    def with_digest(self, digest: Digest) -> Reference:
        return Reference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}"
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out
