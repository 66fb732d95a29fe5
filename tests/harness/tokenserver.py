"""A small Docker-registry token server for tests (the ``auth.token`` realm).

What it does:

* Serves ``GET /token?service=..&scope=..`` (optional ``Authorization: Basic``)
  and ``POST /token`` with the OAuth2 form ``grant_type=password`` that
  distribution-style clients send. ``grant_type=refresh_token`` (and any other
  grant) is refused with 400: it never hands out refresh tokens.
* Issues ES256 JWTs signed with its own EC P-256 key. The JOSE header carries
  ``x5c`` with the DER of its self-signed certificate; the same certificate, as
  PEM in :attr:`TokenServer.cert_file`, is the registry's ``rootcertbundle``.
  Claims: ``iss``, ``sub``, ``aud`` (the service, a string as distribution 2.8
  expects), ``exp``, ``nbf``, ``iat``, ``jti``, ``access``.
* Policy: known users with the right password get every action they ask for;
  a request without credentials gets only ``pull`` when ``allow_anonymous_pull``
  is true (otherwise 401); wrong credentials get 401.
* Records every request (:attr:`TokenServer.requests`) and every token string it
  issued (:attr:`TokenServer.issued_tokens`), so tests can assert on scopes,
  caching and that tokens never leak into output (:meth:`TokenServer.leaks_in`).

Refresh tokens (Docker's identity tokens) registered in :attr:`TokenServer.refresh_tokens`
are exchanged by ``POST grant_type=refresh_token``; none are issued.

What it does not do: TLS (the realm is plain HTTP on loopback), issuing refresh or
offline tokens, per-repository ACLs, or rate limits. It is not a JWT library:
:func:`verify_token` only understands what this module itself produces.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from tests.harness.certs import cert_pem, make_ca

__all__ = [
    "DEFAULT_ISSUER",
    "DEFAULT_SERVICE",
    "TokenRequest",
    "TokenServer",
    "decode_token",
    "parse_scope",
    "verify_token",
]

log = logging.getLogger(__name__)

DEFAULT_SERVICE = "harness-registry"
DEFAULT_ISSUER = "harness-token-server"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


def parse_scope(scope: str) -> dict[str, Any] | None:
    """Parse ``type[(class)]:name:actions`` into an access entry (None if malformed).

    The name may itself contain ``:`` (e.g. a registry ``host:port`` prefix), so
    the type is everything before the first colon and the actions everything
    after the last one.
    """
    first, sep1, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not (sep1 and sep2 and first and name):
        return None
    rtype = first.split("(", 1)[0]
    wanted = [a for a in actions.split(",") if a]
    return {"type": rtype, "name": name, "actions": wanted}


class _QuietServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that logs handler errors instead of printing them to stderr."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("%s: error serving %s", type(self).__name__, client_address, exc_info=True)


@dataclass
class TokenRequest:
    """One request the token server answered."""

    method: str
    grant_type: str | None
    service: str | None
    scopes: list[str]
    """Scope strings as the client sent them (repeated params and spaces split)."""
    username: str | None
    """The username presented (even if refused); None when no credentials were sent."""
    status: int
    granted: list[dict[str, Any]] = field(default_factory=list)
    """The ``access`` claim of the issued token (empty when refused)."""
    client_id: str | None = None

    def requested_actions(self, repository: str) -> set[str]:
        """Actions requested for ``repository`` in this request."""
        out: set[str] = set()
        for scope in self.scopes:
            entry = parse_scope(scope)
            if entry and entry["type"] == "repository" and entry["name"] == repository:
                out.update(entry["actions"])
        return out

    def granted_actions(self, repository: str) -> set[str]:
        """Actions granted for ``repository`` in this request."""
        out: set[str] = set()
        for entry in self.granted:
            if entry["type"] == "repository" and entry["name"] == repository:
                out.update(entry["actions"])
        return out


class _Refused(Exception):
    def __init__(self, status: HTTPStatus, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


class TokenServer:
    """Threaded HTTP token server on ``127.0.0.1`` with an ephemeral port.

    Use as a context manager or call :meth:`start` / :meth:`stop`. The signing
    certificate is written to ``cert_file`` (inside ``workdir``) on start.
    """

    def __init__(
        self,
        workdir: Path | str,
        users: Mapping[str, str] | None = None,
        *,
        service: str = DEFAULT_SERVICE,
        issuer: str = DEFAULT_ISSUER,
        allow_anonymous_pull: bool = True,
        expires_in: int = 300,
    ) -> None:
        self.workdir = Path(workdir)
        self.users: dict[str, str] = dict(users or {})
        self.service = service
        self.issuer = issuer
        self.allow_anonymous_pull = allow_anonymous_pull
        self.expires_in = expires_in
        self.requests: list[TokenRequest] = []
        self.issued_tokens: list[str] = []
        #: OAuth2 refresh tokens (Docker "identity tokens") -> the user they stand for;
        #: ``POST grant_type=refresh_token`` exchanges them.
        self.refresh_tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._key, self._cert = make_ca(f"{issuer} signing")
        self.cert_file = self.workdir / "token-signing-cert.pem"
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> TokenServer:
        """Write the certificate and start serving; returns self."""
        if self._server is not None:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cert_file.write_bytes(cert_pem(self._cert))
        handler = type("_BoundTokenHandler", (_TokenHandler,), {"token_server": self})
        server = _QuietServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"token-server-{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        log.debug("token server listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and join the server thread (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("token server is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The realm URL: ``http://127.0.0.1:PORT/token``."""
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def certificate(self) -> x509.Certificate:
        return self._cert

    # -- tokens ------------------------------------------------------------

    def issue(
        self,
        subject: str,
        access: Sequence[Mapping[str, Any]],
        *,
        expires_in: int | None = None,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> str:
        """Mint and record a signed token directly (no HTTP, no policy)."""
        now = int(time.time())
        lifetime = self.expires_in if expires_in is None else expires_in
        claims = {
            "iss": issuer or self.issuer,
            "sub": subject,
            "aud": audience or self.service,
            "exp": now + lifetime,
            "nbf": now - 5,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": [
                {"type": a["type"], "name": a["name"], "actions": list(a["actions"])}
                for a in access
            ],
        }
        header = {
            "alg": "ES256",
            "typ": "JWT",
            "x5c": [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        signing_input = f"{_b64url(_json_bytes(header))}.{_b64url(_json_bytes(claims))}"
        der = self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        token = f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
        with self._lock:
            self.issued_tokens.append(token)
        return token

    def verify(self, token: str) -> dict[str, Any]:
        """Verify ``token`` against this server's key; return its claims."""
        return verify_token(token, self._cert)

    def leaks_in(self, text: str | bytes) -> list[str]:
        """Issued tokens (or their signature segments) that occur in ``text``."""
        haystack = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        with self._lock:
            tokens = list(self.issued_tokens)
        return [t for t in tokens if t in haystack or t.rsplit(".", 1)[-1] in haystack]

    # -- records -----------------------------------------------------------

    def reset(self) -> None:
        """Forget recorded requests and issued tokens."""
        with self._lock:
            self.requests.clear()
            self.issued_tokens.clear()

    def requests_for(self, repository: str) -> list[TokenRequest]:
        """Recorded requests that asked for any scope on ``repository``."""
        with self._lock:
            return [r for r in self.requests if r.requested_actions(repository)]

    def _record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # -- policy ------------------------------------------------------------

    def _grant(
        self, username: str | None, password: str | None, scopes: list[str]
    ) -> tuple[str, list[dict[str, Any]]]:
        if username is None:
            if not self.allow_anonymous_pull:
                raise _Refused(HTTPStatus.UNAUTHORIZED, "unauthorized", "authentication required")
            subject, allowed = "", {"pull"}
        elif self.users.get(username) != password or password is None:
            raise _Refused(HTTPStatus.UNAUTHORIZED, "unauthorized", "invalid username or password")
        else:
            subject, allowed = username, None
        access: list[dict[str, Any]] = []
        for scope in scopes:
            entry = parse_scope(scope)
            if entry is None:
                continue
            actions = [a for a in entry["actions"] if allowed is None or a in allowed]
            if actions:
                access.append({**entry, "actions": actions})
        return subject, access

    def _answer(
        self,
        *,
        method: str,
        grant_type: str | None,
        service: str | None,
        scopes: list[str],
        username: str | None,
        password: str | None,
        client_id: str | None,
        refresh_token: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        record = TokenRequest(
            method=method,
            grant_type=grant_type,
            service=service,
            scopes=scopes,
            username=username,
            status=200,
            client_id=client_id,
        )
        try:
            if method == "POST" and grant_type == "refresh_token":
                subject_user = self.refresh_tokens.get(refresh_token or "")
                if subject_user is None:
                    # RFC 6749 5.2: an invalid grant is a 400
                    raise _Refused(HTTPStatus.BAD_REQUEST, "invalid_grant", "unknown refresh token")
                username, password = subject_user, self.users.get(subject_user)
                record.username = username
            elif method == "POST" and grant_type != "password":
                raise _Refused(
                    HTTPStatus.BAD_REQUEST,
                    "unsupported_grant_type",
                    f"grant_type {grant_type!r} is not supported",
                )
            if service is not None and service != self.service:
                raise _Refused(HTTPStatus.BAD_REQUEST, "invalid_request", "unknown service")
            subject, access = self._grant(username, password, scopes)
        except _Refused as refused:
            record.status = int(refused.status)
            self._record(record)
            return record.status, {"error": refused.error, "error_description": refused.detail}
        token = self.issue(subject, access)
        record.granted = access
        self._record(record)
        issued_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        body = {
            "token": token,
            "access_token": token,
            "expires_in": self.expires_in,
            "issued_at": issued_at,
        }
        return 200, body


def _first(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _split_scopes(values: Sequence[str]) -> list[str]:
    return [s for v in values for s in v.split(" ") if s]


class _TokenHandler(BaseHTTPRequestHandler):
    # Headers and body go out in separate writes: with Nagle on, a client waits out its
    # delayed ACK (about 40 ms on loopback) for every response that has a body.
    disable_nagle_algorithm = True
    token_server: TokenServer  # set on the bound subclass
    protocol_version = "HTTP/1.1"
    server_version = "harness-token-server/1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("token server: " + format, *args)

    def _send_json(self, status: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if status == HTTPStatus.UNAUTHORIZED:
            self.send_header("WWW-Authenticate", 'Basic realm="harness-token-server"')
        self.end_headers()
        self.wfile.write(data)

    def _basic_credentials(self) -> tuple[str | None, str | None]:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            return None, None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return "", None
        user, _, password = decoded.partition(":")
        return user, password

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path.rstrip("/") != "/token":
            self._send_json(404, {"error": "not_found"})
            return
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        username, password = self._basic_credentials()
        status, body = self.token_server._answer(
            method="GET",
            grant_type=None,
            service=_first(query, "service"),
            scopes=_split_scopes(query.get("scope", [])),
            username=username,
            password=password,
            client_id=_first(query, "client_id"),
        )
        self._send_json(status, body)

    def do_POST(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if url.path.rstrip("/") != "/token":
            self._send_json(404, {"error": "not_found"})
            return
        form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        username, password = _first(form, "username"), _first(form, "password")
        if username is None:  # some clients send Basic auth along with the form
            username, password = self._basic_credentials()
        status, body = self.token_server._answer(
            method="POST",
            grant_type=_first(form, "grant_type"),
            service=_first(form, "service"),
            scopes=_split_scopes(form.get("scope", [])),
            username=username,
            password=password,
            client_id=_first(form, "client_id"),
            refresh_token=_first(form, "refresh_token"),
        )
        self._send_json(status, body)


def decode_token(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (header, claims) of a compact JWS without verifying it."""
    header_b64, claims_b64, _sig = token.split(".")
    header: dict[str, Any] = json.loads(_b64url_decode(header_b64))
    claims: dict[str, Any] = json.loads(_b64url_decode(claims_b64))
    return header, claims


def verify_token(token: str, cert: x509.Certificate) -> dict[str, Any]:
    """Verify an ES256 token's raw r||s signature with ``cert``; return the claims.

    Raises ``cryptography.exceptions.InvalidSignature`` or ``ValueError``.
    """
    header_b64, claims_b64, sig_b64 = token.split(".")
    header, claims = decode_token(token)
    if header.get("alg") != "ES256":
        raise ValueError(f"unexpected alg {header.get('alg')!r}")
    raw = _b64url_decode(sig_b64)
    if len(raw) != 64:
        raise ValueError(f"ES256 signature must be 64 bytes, got {len(raw)}")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key = cert.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise ValueError("certificate does not hold an EC key")
    public_key.verify(der, f"{header_b64}.{claims_b64}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    return claims
