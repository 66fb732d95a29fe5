"""Failures classified for the exit code, with a hint naming the caller's own flag.

A typo'd host is bad input (2), never retried; TLS spoken to a plain-HTTP registry (and
the reverse) is bad input naming ``--plain-http`` (or the caller's flag, e.g.
``--source-plain-http``); a refused connection stays transient (75). A registry that echoes
credentials in its error text gets them masked in every form.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from urllib.parse import quote, quote_plus

import pytest

from steps.oci import AuthError, Credentials, InsecureRegistry, RegistryClient
from steps.oci.errors import ProtocolMismatch, TransientRegistryError, UnresolvableHost
from steps.oci.model import FlagNames
from tests.harness.misbehaving import MisbehavingServer, RawRequest, answer
from tests.harness.registry import Registry, free_port
from tests.helpers import FAST_RETRY

pytestmark = pytest.mark.integration

REPO = "nine-minds/test/errors"


@pytest.mark.parametrize("host", ["ghcr.oi", "registry.invalid:5000"])
def test_a_host_that_does_not_resolve_is_bad_input_and_not_retried(host: str) -> None:
    with RegistryClient(host, retry=FAST_RETRY) as client, pytest.raises(UnresolvableHost) as err:
        client.head_manifest(REPO, "v1")
    assert err.value.exit_code == 2
    assert f"cannot resolve {host.split(':')[0]}" in err.value.message
    assert client.stats.requests == 1 and client.stats.retries == 0


def test_tls_to_a_plain_http_registry_names_plain_http(registry: Registry) -> None:
    client = RegistryClient(registry.host, retry=FAST_RETRY)
    with client, pytest.raises(ProtocolMismatch) as err:
        client.list_tags(REPO)
    assert err.value.exit_code == 2
    assert "plain HTTP" in err.value.message
    assert "--plain-http" in (err.value.hint or "")
    assert client.stats.retries == 0


def test_the_hint_names_the_callers_own_flag(registry: Registry) -> None:
    client = RegistryClient(registry.host, retry=FAST_RETRY, flags=FlagNames.source())
    with client, pytest.raises(ProtocolMismatch) as err:
        client.get_manifest(REPO, "v1")
    assert "--source-plain-http" in (err.value.hint or "")


def test_plain_http_to_a_tls_registry_says_to_drop_the_flag(tls_token_registry: Registry) -> None:
    client = RegistryClient(tls_token_registry.host, plain_http=True, retry=FAST_RETRY)
    with client, pytest.raises(ProtocolMismatch) as err:
        client.head_manifest(REPO, "v1")
    assert err.value.exit_code == 2
    assert "speaks HTTPS" in err.value.message
    assert "drop --plain-http" in (err.value.hint or "")


def test_connection_refused_stays_transient() -> None:
    port = free_port()
    client = RegistryClient(f"127.0.0.1:{port}", plain_http=True, retry=FAST_RETRY)
    with client, pytest.raises(TransientRegistryError) as err:
        client.head_manifest(REPO, "v1")
    assert err.value.exit_code == 75
    assert "connection refused" in err.value.message
    assert "after 4 attempt(s)" in err.value.message


def test_plain_http_for_a_remote_host_names_insecure_registry() -> None:
    with pytest.raises(InsecureRegistry) as err:
        RegistryClient("registry.example.com", plain_http=True)
    assert "--insecure-registry registry.example.com" in (err.value.hint or "")
    with pytest.raises(InsecureRegistry) as err:
        RegistryClient("registry.example.com", plain_http=True, flags=FlagNames.source())
    assert "--source-plain-http" in err.value.message


def _echoing_registry(conn: socket.socket, request: RawRequest, stop: threading.Event) -> None:
    """Asks for Basic auth, then echoes what it was sent in its error text, every way."""
    auth = request.headers.get("authorization", "")
    if not auth:
        answer(conn, 401, b"{}", {"WWW-Authenticate": 'Basic realm="echo"'})
        return
    pair = base64.b64decode(auth.split(" ", 1)[1]).decode()
    user, _, password = pair.partition(":")
    message = (
        f"denied {auth} for {pair}; password={quote(password, safe='')}&"
        f"p2={quote_plus(password)} raw password: {password} "
        f"b64={base64.b64encode(password.encode()).decode()} "
        f"url=https://{user}:{quote(password, safe='')}@echo/"
    )
    body = json.dumps({"errors": [{"code": "DENIED", "message": message, "pw": password}]})
    answer(conn, 403, body.encode(), {"Content-Type": "application/json"})


@pytest.mark.parametrize("password", ["Zq", "x", 's3cr3t/w0rd+"q"&=', "pw with spaces"])
def test_credentials_echoed_by_the_registry_are_masked(password: str) -> None:
    with MisbehavingServer(_echoing_registry) as server:
        creds = Credentials("alga-ci", password)
        client = RegistryClient(server.host, plain_http=True, credentials=creds, retry=FAST_RETRY)
        with client, pytest.raises(AuthError) as err:
            client.get_manifest(REPO, "v1")  # a GET: the error body is read
    text = err.value.diagnostics() + json.dumps(err.value.to_json())
    assert "***" in text and "DENIED" in text
    pair = f"alga-ci:{password}"
    for form in (
        base64.b64encode(pair.encode()).decode(),
        f"={quote(password, safe='')}&",
        f"={quote_plus(password)} ",
        f"password: {password} ",
        f"b64={base64.b64encode(password.encode()).decode()}",
        f":{quote(password, safe='')}@",
        pair,
    ):
        assert form not in text, (form, text)
