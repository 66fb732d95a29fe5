"""Prove the real-registry harness works, using plain httpx (never the project's client).

Covers: anonymous push/pull; Basic auth refusal and acceptance; token auth
(challenge, GET and POST token forms, refusal of wrong credentials, pull-only
tokens cannot push, foreign signatures refused); TLS verification; the fault
proxy (503s then success, 429 + Retry-After, byte corruption, dropped
connections, streaming of chunked uploads and Location rewriting via Host);
start-up failure reporting and the port-race retry; the skip/fail rule for
missing components; and the real helm/kubectl binaries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import tests.harness.registry as registry_module
from tests.conftest import FaultProxyFactory, RegistryFactory
from tests.harness.registry import MissingComponentError, Registry, RegistryStartError
from tests.harness.tokenserver import TokenServer, decode_token
from tests.harness.tools import Tools, missing_component

pytestmark = pytest.mark.integration

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


# -- plain-httpx OCI helpers (deliberately independent of steps/) ---------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def token_for(reg: Registry, repository: str, actions: str = "pull,push") -> str:
    """Fetch a token from the registry's token server with its credentials (GET form)."""
    assert reg.token_server is not None
    response = httpx.get(
        reg.token_server.url,
        params={"service": reg.token_server.service, "scope": f"repository:{repository}:{actions}"},
        auth=reg.credentials,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def auth_headers(reg: Registry, repository: str, actions: str = "pull,push") -> dict[str, str]:
    """Authorization header that lets ``actions`` on ``repository`` succeed in any mode."""
    if reg.mode == "anonymous":
        return {}
    if reg.mode == "basic":
        assert reg.credentials is not None
        pair = ":".join(reg.credentials).encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    return {"Authorization": f"Bearer {token_for(reg, repository, actions)}"}


def absolute(base_url: str, location: str) -> str:
    return location if location.startswith(("http://", "https://")) else base_url + location


def with_digest(location: str, digest: str) -> str:
    """Add ``digest=`` to an upload Location, keeping its ``_state`` query.

    (httpx's ``params=`` *replaces* an existing query string, which loses
    ``_state`` and makes distribution answer 404 BLOB_UPLOAD_INVALID.)
    """
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


def push_blob(
    client: httpx.Client, base_url: str, repository: str, data: bytes, headers: dict[str, str]
) -> str:
    """Monolithic upload: POST then PUT ?digest=. Returns the digest."""
    digest = sha256(data)
    started = client.post(f"{base_url}/v2/{repository}/blobs/uploads/", headers=headers)
    assert started.status_code == 202, (started.status_code, started.text)
    location = absolute(base_url, started.headers["Location"])
    done = client.put(
        with_digest(location, digest),
        content=data,
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert done.status_code == 201, (done.status_code, done.text)
    assert done.headers["Docker-Content-Digest"] == digest
    return digest


def push_image(
    client: httpx.Client, base_url: str, repository: str, tag: str, headers: dict[str, str]
) -> tuple[str, bytes, bytes]:
    """Push a tiny config + layer + OCI manifest; return (manifest digest, manifest, layer)."""
    config = b'{"architecture":"amd64","os":"linux"}'
    layer = b"tiny layer for " + repository.encode() + b":" + tag.encode()
    config_digest = push_blob(client, base_url, repository, config, headers)
    layer_digest = push_blob(client, base_url, repository, layer, headers)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
        },
        separators=(",", ":"),
    ).encode()
    put = client.put(
        f"{base_url}/v2/{repository}/manifests/{tag}",
        content=manifest,
        headers={**headers, "Content-Type": OCI_MANIFEST},
    )
    assert put.status_code == 201, (put.status_code, put.text)
    assert put.headers["Docker-Content-Digest"] == sha256(manifest)
    return sha256(manifest), manifest, layer


def pull_manifest(
    client: httpx.Client, base_url: str, repository: str, ref: str, headers: dict[str, str]
) -> httpx.Response:
    return client.get(
        f"{base_url}/v2/{repository}/manifests/{ref}", headers={**headers, "Accept": OCI_MANIFEST}
    )


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    return scheme, dict(re.findall(r'(\w+)="([^"]*)"', rest))


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, trust_env=False) as c:
        yield c


# -- the registry itself --------------------------------------------------------------


def test_anonymous_registry_push_and_pull(registry: Registry, client: httpx.Client) -> None:
    assert registry.mode == "anonymous"
    assert registry.credentials is None and registry.password is None
    assert client.get(registry.url("/v2/")).status_code == 200

    digest, manifest, layer = push_image(client, registry.base_url, "demo/app", "1.0.0", {})

    pulled = pull_manifest(client, registry.base_url, "demo/app", "1.0.0", {})
    assert pulled.status_code == 200
    assert pulled.content == manifest
    assert pulled.headers["Docker-Content-Digest"] == digest
    assert pulled.headers["Content-Type"] == OCI_MANIFEST
    blob = client.get(registry.url(f"/v2/demo/app/blobs/{sha256(layer)}"))
    assert blob.status_code == 200 and blob.content == layer
    assert any(registry.storage_dir.rglob("data")), "blobs must land in the temp storage dir"


def test_registry_config_and_addresses(registry: Registry) -> None:
    host, port = registry.host.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) == registry.port > 0
    assert registry.base_url == f"http://{registry.host}"
    assert registry.ca_file is None and registry.token_server is None
    config = registry.config_path.read_text()
    assert f"addr: {registry.host}" in config
    assert "enabled: true" in config.split("delete:", 1)[1].splitlines()[1]
    assert "accesslog:\n    disabled: true" in config
    assert registry.storage_dir.is_relative_to(registry.workdir)
    assert "listening on " + registry.host in registry.log_path.read_text()
    assert registry.ref("demo/app", "1.0") == f"{registry.host}/demo/app:1.0"
    assert registry.ref("demo/app", "sha256:ab") == f"{registry.host}/demo/app@sha256:ab"


def test_registry_delete_is_enabled(registry: Registry, client: httpx.Client) -> None:
    digest, _, _ = push_image(client, registry.base_url, "demo/del", "v1", {})
    deleted = client.delete(registry.url(f"/v2/demo/del/manifests/{digest}"))
    assert deleted.status_code == 202
    assert pull_manifest(client, registry.base_url, "demo/del", digest, {}).status_code == 404


def test_stop_terminates_the_process_and_frees_the_port(registry_factory: RegistryFactory) -> None:
    reg = registry_factory("anonymous")
    assert reg.is_running()
    reg.stop()
    assert reg.process.returncode is not None
    reg.stop()  # idempotent
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", reg.port)) != 0
    assert reg.process not in registry_module._LIVE


_DIE_HARD = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from tests.harness.registry import start_registry
reg = start_registry(sys.argv[2])
print(reg.process.pid, flush=True)
if sys.argv[3] == "sigkill":
    os.kill(os.getpid(), signal.SIGKILL)
os._exit(0)
"""


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("death", ["sigkill", "os_exit"])
def test_registry_dies_with_a_test_process_that_dies_hard(tmp_path: Path, death: str) -> None:
    """No orphan even when atexit never runs (SIGKILL, os._exit): pdeathsig kills it."""
    root = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-c", _DIE_HARD, str(root), str(tmp_path / "reg"), death],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    pid = int(child.stdout.strip())
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), f"docker-registry {pid} outlived its dead parent"


def test_start_failure_raises_with_log_tail_and_port_race_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_free_port = registry_module.free_port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]

        monkeypatch.setattr(registry_module, "free_port", lambda: taken)
        with pytest.raises(RegistryStartError) as failure:
            registry_module.start_registry(tmp_path / "always-taken", port_attempts=2)
        assert "address already in use" in str(failure.value)
        assert str(tmp_path / "always-taken" / "registry.log") in str(failure.value)

        ports = iter([taken, real_free_port()])
        monkeypatch.setattr(registry_module, "free_port", lambda: next(ports))
        with registry_module.start_registry(tmp_path / "retried", port_attempts=2) as reg:
            assert reg.port != taken
            assert httpx.get(reg.url("/v2/")).status_code == 200
    assert not registry_module._LIVE, "no registry process may outlive its start attempt"


# -- basic auth -----------------------------------------------------------------------


def test_basic_registry_rejects_missing_and_wrong_credentials(
    basic_registry: Registry, client: httpx.Client
) -> None:
    assert basic_registry.mode == "basic"
    assert basic_registry.credentials is not None
    user, password = basic_registry.credentials
    htpasswd = (basic_registry.workdir / "htpasswd").read_text()
    assert htpasswd.startswith(f"{user}:$2")  # bcrypt
    assert password not in htpasswd

    anonymous = client.get(basic_registry.url("/v2/"))
    assert anonymous.status_code == 401
    scheme, params = parse_challenge(anonymous.headers["WWW-Authenticate"])
    assert scheme == "Basic" and params["realm"]
    assert client.get(basic_registry.url("/v2/"), auth=(user, password + "x")).status_code == 401
    assert client.get(basic_registry.url("/v2/"), auth=(user, password)).status_code == 200


def test_basic_registry_push_and_pull_with_credentials(
    basic_registry: Registry, client: httpx.Client
) -> None:
    headers = auth_headers(basic_registry, "demo/basic")
    digest, manifest, _ = push_image(client, basic_registry.base_url, "demo/basic", "1", headers)
    assert pull_manifest(client, basic_registry.base_url, "demo/basic", "1", {}).status_code == 401
    pulled = pull_manifest(client, basic_registry.base_url, "demo/basic", digest, headers)
    assert pulled.status_code == 200 and pulled.content == manifest


# -- token auth -----------------------------------------------------------------------


def test_token_registry_challenge_names_realm_service_and_scope(
    token_registry: Registry, client: httpx.Client
) -> None:
    ts = token_registry.token_server
    assert ts is not None
    base = client.get(token_registry.url("/v2/"))
    assert base.status_code == 401
    scheme, params = parse_challenge(base.headers["WWW-Authenticate"])
    assert scheme == "Bearer"
    assert params["realm"] == ts.url and params["service"] == ts.service

    upload = client.post(token_registry.url("/v2/demo/app/blobs/uploads/"))
    assert upload.status_code == 401
    _, params = parse_challenge(upload.headers["WWW-Authenticate"])
    assert set(params["scope"].split(":")[2].split(",")) == {"pull", "push"}


def test_token_get_form_allows_push_and_pull(
    token_registry: Registry, client: httpx.Client
) -> None:
    ts = token_registry.token_server
    assert ts is not None and token_registry.username is not None
    token = token_for(token_registry, "demo/app")
    headers = {"Authorization": f"Bearer {token}"}
    digest, manifest, _ = push_image(client, token_registry.base_url, "demo/app", "1.0", headers)
    pulled = pull_manifest(client, token_registry.base_url, "demo/app", digest, headers)
    assert pulled.status_code == 200 and pulled.content == manifest

    (request,) = ts.requests
    assert request.method == "GET" and request.username == token_registry.username
    assert request.requested_actions("demo/app") == {"pull", "push"}
    assert request.granted_actions("demo/app") == {"pull", "push"}
    assert ts.issued_tokens == [token]

    header, claims = decode_token(token)
    assert header["alg"] == "ES256" and header["typ"] == "JWT" and len(header["x5c"]) == 1
    assert claims == ts.verify(token)  # raw r||s ES256 signature verifies
    assert claims["aud"] == ts.service and claims["iss"] == ts.issuer
    assert claims["sub"] == token_registry.username
    assert claims["nbf"] <= claims["iat"] < claims["exp"] and claims["jti"]
    assert claims["access"] == [
        {"type": "repository", "name": "demo/app", "actions": ["pull", "push"]}
    ]


def test_token_post_form_allows_push_and_pull(
    token_registry: Registry, client: httpx.Client
) -> None:
    ts = token_registry.token_server
    assert ts is not None and token_registry.credentials is not None
    user, password = token_registry.credentials
    response = client.post(
        ts.url,
        data={
            "grant_type": "password",
            "username": user,
            "password": password,
            "service": ts.service,
            "scope": "repository:demo/post:pull,push",
            "client_id": "harness-test",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token"] == body["access_token"] and body["expires_in"] > 0 and body["issued_at"]
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    digest, manifest, _ = push_image(client, token_registry.base_url, "demo/post", "v1", headers)
    assert pull_manifest(client, token_registry.base_url, "demo/post", "v1", headers).content == (
        manifest
    )
    (request,) = ts.requests_for("demo/post")
    assert (request.method, request.grant_type, request.client_id) == (
        "POST",
        "password",
        "harness-test",
    )
    assert request.granted_actions("demo/post") == {"pull", "push"}
    assert digest == sha256(manifest)


def test_token_server_refuses_wrong_credentials_and_refresh_grant(
    token_registry: Registry, client: httpx.Client
) -> None:
    ts = token_registry.token_server
    assert ts is not None and token_registry.credentials is not None
    user, password = token_registry.credentials
    scope = "repository:demo/app:pull,push"
    wrong_get = client.get(
        ts.url, params={"service": ts.service, "scope": scope}, auth=(user, password + "!")
    )
    assert wrong_get.status_code == 401 and "token" not in wrong_get.json()
    unknown_user = client.get(ts.url, params={"scope": scope}, auth=("nobody", password))
    assert unknown_user.status_code == 401
    wrong_post = client.post(
        ts.url,
        data={"grant_type": "password", "username": user, "password": "nope", "scope": scope},
    )
    assert wrong_post.status_code == 401
    refresh = client.post(
        ts.url, data={"grant_type": "refresh_token", "refresh_token": "x", "scope": scope}
    )
    assert refresh.status_code == 400
    assert [r.status for r in ts.requests] == [401, 401, 401, 400]
    assert ts.issued_tokens == []


def test_pull_only_token_cannot_push(token_registry: Registry, client: httpx.Client) -> None:
    ts = token_registry.token_server
    assert ts is not None
    full = {"Authorization": f"Bearer {token_for(token_registry, 'demo/app')}"}
    _, manifest, _ = push_image(client, token_registry.base_url, "demo/app", "1", full)

    # No credentials: the token server grants only pull, whatever was asked for.
    anonymous = client.get(
        ts.url, params={"service": ts.service, "scope": "repository:demo/app:pull,push"}
    )
    assert anonymous.status_code == 200
    assert ts.requests[-1].username is None
    assert ts.requests[-1].granted_actions("demo/app") == {"pull"}
    pull_only = {"Authorization": f"Bearer {anonymous.json()['token']}"}
    assert pull_manifest(client, token_registry.base_url, "demo/app", "1", pull_only).content == (
        manifest
    )

    refused = client.post(token_registry.url("/v2/demo/app/blobs/uploads/"), headers=pull_only)
    assert refused.status_code == 401
    _, params = parse_challenge(refused.headers["WWW-Authenticate"])
    assert params["error"] == "insufficient_scope"

    # A pull-only token from an authenticated user is refused for push too.
    read_only = {"Authorization": f"Bearer {token_for(token_registry, 'demo/app', 'pull')}"}
    refused = client.post(token_registry.url("/v2/demo/app/blobs/uploads/"), headers=read_only)
    assert refused.status_code == 401


def test_token_server_without_anonymous_pull(
    registry_factory: RegistryFactory, client: httpx.Client
) -> None:
    reg = registry_factory("token", allow_anonymous_pull=False)
    assert reg.token_server is not None and reg.token_server.allow_anonymous_pull is False
    response = client.get(reg.token_server.url, params={"scope": "repository:demo/app:pull"})
    assert response.status_code == 401
    assert token_for(reg, "demo/app", "pull")  # credentials still work


def test_registry_refuses_token_signed_by_another_key(
    token_registry: Registry, client: httpx.Client, tmp_path: Path
) -> None:
    ts = token_registry.token_server
    assert ts is not None
    impostor = TokenServer(tmp_path / "impostor", service=ts.service, issuer=ts.issuer)
    forged = impostor.issue(
        "mallory", [{"type": "repository", "name": "demo/app", "actions": ["pull", "push"]}]
    )
    refused = client.post(
        token_registry.url("/v2/demo/app/blobs/uploads/"),
        headers={"Authorization": f"Bearer {forged}"},
    )
    assert refused.status_code == 401
    # distribution wants both pull and push for an upload; push alone is refused.
    push_only = ts.issue("x", [{"type": "repository", "name": "demo/app", "actions": ["push"]}])
    refused = client.post(
        token_registry.url("/v2/demo/app/blobs/uploads/"),
        headers={"Authorization": f"Bearer {push_only}"},
    )
    assert refused.status_code == 401
    genuine = ts.issue(
        "x", [{"type": "repository", "name": "demo/app", "actions": ["pull", "push"]}]
    )
    accepted = client.post(
        token_registry.url("/v2/demo/app/blobs/uploads/"),
        headers={"Authorization": f"Bearer {genuine}"},
    )
    assert accepted.status_code == 202


def test_external_token_server_is_shared_and_outlives_the_registry(
    registry_factory: RegistryFactory, tmp_path: Path, client: httpx.Client
) -> None:
    with TokenServer(tmp_path / "shared", {"alice": "pw-alice-1"}) as shared:
        first = registry_factory("token", token_server=shared, username="alice")
        second = registry_factory("token", token_server=shared, username="bob", password="pw-b")
        assert first.credentials == ("alice", "pw-alice-1")  # password taken from the server
        assert shared.users == {"alice": "pw-alice-1", "bob": "pw-b"}
        token = token_for(first, "demo/shared")
        headers = {"Authorization": f"Bearer {token}"}
        for reg in (first, second):  # same service and issuer: one token serves both
            push_image(client, reg.base_url, "demo/shared", "1", headers)
        first.stop()
        second.stop()
        assert client.get(shared.url, params={"scope": "repository:x:pull"}).status_code == 200


def test_token_leak_detection(token_registry: Registry) -> None:
    ts = token_registry.token_server
    assert ts is not None
    token = token_for(token_registry, "demo/app")
    assert ts.leaks_in("pushed demo/app:1.0 OK") == []
    assert ts.leaks_in(f"debug: Authorization: Bearer {token}") == [token]
    assert ts.leaks_in(b"sig " + token.rsplit(".", 1)[1].encode()) == [token]
    assert token_registry.secrets_in(f"login with {token_registry.password}") == ["password"]
    assert token_registry.secrets_in("nothing here") == []


@pytest.mark.parametrize("mode", ["anonymous", "basic", "token"])
def test_token_server_is_only_present_in_token_mode(
    registry_factory: RegistryFactory, mode: str
) -> None:
    reg = registry_factory(mode)
    assert (reg.token_server is not None) == (mode == "token")
    assert (reg.credentials is None) == (mode == "anonymous")


def test_any_registry_push_and_pull(any_registry: Registry, client: httpx.Client) -> None:
    headers = auth_headers(any_registry, "demo/any")
    digest, manifest, _ = push_image(client, any_registry.base_url, "demo/any", "1", headers)
    pulled = pull_manifest(client, any_registry.base_url, "demo/any", digest, headers)
    assert pulled.status_code == 200 and pulled.content == manifest
    expected_without_auth = 200 if any_registry.mode == "anonymous" else 401
    assert client.get(any_registry.url("/v2/")).status_code == expected_without_auth


# -- TLS --------------------------------------------------------------------------------


def test_tls_registry_verifies_with_ca_and_fails_without(tls_token_registry: Registry) -> None:
    reg = tls_token_registry
    assert reg.base_url.startswith("https://127.0.0.1:") and reg.ca_file is not None
    assert reg.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")

    with httpx.Client(verify=reg.ssl_context(), trust_env=False) as trusted:
        assert trusted.get(reg.url("/v2/")).status_code == 401
        by_name = trusted.get(f"https://localhost:{reg.port}/v2/")
        assert by_name.status_code == 401
        headers = auth_headers(reg, "demo/tls")
        digest, manifest, _ = push_image(trusted, reg.base_url, "demo/tls", "1", headers)
        assert pull_manifest(trusted, reg.base_url, "demo/tls", digest, headers).content == (
            manifest
        )

    with httpx.Client(trust_env=False) as untrusting, pytest.raises(httpx.ConnectError) as err:
        untrusting.get(reg.url("/v2/"))
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)


# -- fault proxy ----------------------------------------------------------------------


def test_fault_proxy_fails_twice_then_succeeds(
    registry: Registry, fault_proxy: FaultProxyFactory, client: httpx.Client
) -> None:
    proxy = fault_proxy(registry)
    assert proxy.host != registry.host and proxy.base_url == f"http://{proxy.host}"
    rule = proxy.fail_next(2, 503, method="GET", path=r"^/v2/$")

    statuses = [client.get(proxy.url("/v2/")).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert rule.hits == 2 and rule.remaining == 0
    assert proxy.count("GET", r"^/v2/$") == 3
    assert proxy.count(status=503, fault="status") == 2
    assert [(r.method, r.path, r.status) for r in proxy.requests][-1] == ("GET", "/v2/", 200)

    proxy.reset()
    assert proxy.requests == [] and proxy.rules == []


def test_fault_proxy_throttles_and_fails_always(
    registry: Registry, fault_proxy: FaultProxyFactory, client: httpx.Client
) -> None:
    proxy = fault_proxy(registry)
    proxy.throttle_next(1, retry_after=2, path="/tags/list")
    throttled = client.get(proxy.url("/v2/demo/app/tags/list"))
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    assert client.get(proxy.url("/v2/demo/app/tags/list")).status_code == 404  # forwarded

    always = proxy.fail_always(500, method="HEAD")
    for _ in range(3):
        assert client.head(proxy.url("/v2/")).status_code == 500
    assert client.get(proxy.url("/v2/")).status_code == 200  # other methods pass
    proxy.remove(always)
    assert client.head(proxy.url("/v2/")).status_code == 200
    assert always.hits == 3


def test_fault_proxy_corrupts_body_keeping_length(
    registry: Registry, fault_proxy: FaultProxyFactory, client: httpx.Client
) -> None:
    proxy = fault_proxy(registry)
    data = bytes(range(256)) * 4
    digest = push_blob(client, registry.base_url, "demo/blob", data, {})
    proxy.corrupt_next(1, path="/blobs/")

    bad = client.get(proxy.url(f"/v2/demo/blob/blobs/{digest}"))
    assert bad.status_code == 200
    assert int(bad.headers["Content-Length"]) == len(data) == len(bad.content)
    assert bad.content != data and sha256(bad.content) != digest
    assert sum(a != b for a, b in zip(bad.content, data, strict=True)) == 1
    assert bad.headers["Docker-Content-Digest"] == digest  # the header still claims the digest

    good = client.get(proxy.url(f"/v2/demo/blob/blobs/{digest}"))
    assert good.content == data
    assert proxy.count("GET", "/blobs/", fault="corrupt") == 1


def test_fault_proxy_closes_connection_without_response(
    registry: Registry, fault_proxy: FaultProxyFactory, client: httpx.Client
) -> None:
    proxy = fault_proxy(registry)
    proxy.close_next(1, path=r"^/v2/$")
    with pytest.raises(httpx.TransportError):
        client.get(proxy.url("/v2/"))
    assert client.get(proxy.url("/v2/")).status_code == 200
    assert [(r.status, r.fault) for r in proxy.requests] == [(None, "close"), (200, None)]


def test_fault_proxy_streams_chunked_uploads_and_keeps_location_on_proxy(
    any_registry: Registry, fault_proxy: FaultProxyFactory, client: httpx.Client
) -> None:
    proxy = fault_proxy(any_registry)
    headers = auth_headers(any_registry, "demo/big")
    data = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32 + 7)  # ~3 MiB

    started = client.post(proxy.url("/v2/demo/big/blobs/uploads/"), headers=headers)
    assert started.status_code == 202
    location = started.headers["Location"]
    assert location.startswith(proxy.base_url + "/v2/demo/big/blobs/uploads/"), location

    def chunks() -> Iterator[bytes]:  # a generator body makes httpx send chunked encoding
        for i in range(0, len(data), 256 * 1024):
            yield data[i : i + 256 * 1024]

    patched = client.patch(
        location,
        content=chunks(),
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert patched.status_code == 202, patched.text
    assert patched.headers["Range"] == f"0-{len(data) - 1}"
    assert patched.headers["Location"].startswith(proxy.base_url)

    digest = sha256(data)
    done = client.put(with_digest(patched.headers["Location"], digest), headers=headers)
    assert done.status_code == 201 and done.headers["Docker-Content-Digest"] == digest

    fetched = client.get(proxy.url(f"/v2/demo/big/blobs/{digest}"), headers=headers)
    assert fetched.content == data
    direct = client.get(any_registry.url(f"/v2/demo/big/blobs/{digest}"), headers=headers)
    assert direct.content == data
    assert proxy.count("PATCH") == 1 and proxy.count("PUT") == 1
    expected_scheme = (
        None
        if any_registry.mode == "anonymous"
        else ("Basic" if any_registry.mode == "basic" else "Bearer")
    )
    assert {r.auth_scheme for r in proxy.requests} == {expected_scheme}


def test_fault_proxy_in_front_of_tls_registry(
    tls_token_registry: Registry, fault_proxy: FaultProxyFactory, client: httpx.Client
) -> None:
    proxy = fault_proxy(tls_token_registry)
    headers = auth_headers(tls_token_registry, "demo/tls-proxy")
    challenge = client.get(proxy.url("/v2/"))
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"].startswith("Bearer realm=")
    digest, manifest, _ = push_image(client, proxy.base_url, "demo/tls-proxy", "1", headers)
    with httpx.Client(verify=tls_token_registry.ssl_context(), trust_env=False) as direct:
        pulled = pull_manifest(direct, tls_token_registry.base_url, "demo/tls-proxy", "1", headers)
    assert pulled.content == manifest and pulled.headers["Docker-Content-Digest"] == digest


# -- the skip/fail rule and the real tools --------------------------------------------


def test_missing_component_fails_under_ci_and_skips_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as failed:
        missing_component("helm v4")
    assert "helm v4" in str(failed.value) and "scripts/setup.sh" in str(failed.value)

    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception) as skipped:
        missing_component("kubectl")
    assert "kubectl" in str(skipped.value) and "scripts/setup.sh" in str(skipped.value)


def test_missing_tools_and_registry_follow_the_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry_factory: RegistryFactory
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    nowhere = Tools(root=tmp_path)
    for name in ("helm", "helm3", "kubectl"):
        with pytest.raises(pytest.fail.Exception, match=r"scripts/setup\.sh"):
            getattr(nowhere, name)

    def no_binary() -> Path:
        raise MissingComponentError("docker-registry", "test")

    monkeypatch.setattr(registry_module, "find_registry_binary", no_binary)
    with pytest.raises(pytest.fail.Exception, match="docker-registry"):
        registry_factory("anonymous")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="docker-registry"):
        registry_factory("anonymous")


def test_real_tools_have_the_right_versions(tools: Tools) -> None:
    def version(exe: Path, *args: str) -> str:
        return subprocess.run(
            [str(exe), *args], capture_output=True, text=True, check=True, timeout=60
        ).stdout

    assert version(tools.helm, "version", "--template", "{{.Version}}").startswith("v4.")
    assert version(tools.helm3, "version", "--template", "{{.Version}}").startswith("v3.")
    assert "clientVersion" in version(tools.kubectl, "version", "--client", "-o", "json")
