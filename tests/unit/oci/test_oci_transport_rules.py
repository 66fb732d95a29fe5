"""Where credentials may go and where plain HTTP may go.

These need hosts that are not loopback (every loopback host is allowed plain HTTP), so a
registry on 127.0.0.1 cannot play them: an httpx MockTransport answers instead.
"""

from __future__ import annotations

import os

import httpx
import pytest

from steps.oci import Credentials, Digest, InsecureRegistry, RegistryClient, RetryPolicy


def _client(handler: object) -> RegistryClient:
    return RegistryClient(
        "reg.example",
        credentials=Credentials("robot", "s3cret-pw"),
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
        retry=RetryPolicy(attempts=1, base_delay=0),
    )


def test_an_upload_location_on_another_host_gets_no_credentials() -> None:
    seen: list[tuple[str, str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.host, request.headers.get("Authorization")))
        if request.method == "HEAD":
            return httpx.Response(404)
        if request.method == "POST":
            return httpx.Response(
                202, headers={"Location": "https://storage.example/up/1?_state=x"}
            )
        return httpx.Response(201, headers={"Docker-Content-Digest": str(Digest.of(b"blob"))})

    with _client(handler) as client:
        client._basic = True  # credentials are sent up front, as after a Basic challenge
        assert client.push_blob("ns/repo", b"blob") == "uploaded"
    put = next(s for s in seen if s[0] == "PUT")
    assert put[1] == "storage.example" and put[2] is None
    assert all(auth is not None for _, host, auth in seen if host == "reg.example")


def test_a_plain_http_upload_location_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD":
            return httpx.Response(404)
        return httpx.Response(202, headers={"Location": "http://storage.example/up/1"})

    with _client(handler) as client, pytest.raises(InsecureRegistry) as err:
        client.push_blob("ns/repo", b"blob")
    assert "storage.example" in str(err.value)
    assert "s3cret" not in err.value.diagnostics()


def test_a_redirect_to_plain_http_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(307, headers={"Location": "http://cdn.example/blob"})

    with _client(handler) as client, pytest.raises(InsecureRegistry):
        client.get_blob("ns/repo", Digest.of(b"x"))


def test_a_redirect_to_https_elsewhere_drops_credentials() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("Authorization")))
        if request.url.host == "reg.example":
            return httpx.Response(307, headers={"Location": "https://cdn.example/blob"})
        return httpx.Response(200, content=b"x")

    with _client(handler) as client:
        client._basic = True  # credentials are sent up front, as after a Basic challenge
        assert client.get_blob("ns/repo", Digest.of(b"x")) == b"x"
    assert seen[0][1] is not None and seen[1] == ("cdn.example", None)


def test_a_401_inside_an_upload_session_restarts_the_whole_upload() -> None:
    """The chunk was spent on the refused request: the upload starts over (new session)."""
    calls: list[str] = []
    refused = {"done": False}

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if request.method == "HEAD":
            return httpx.Response(404)
        if request.method == "POST":
            return httpx.Response(
                202, headers={"Location": f"/v2/ns/repo/blobs/uploads/{len(calls)}"}
            )
        if request.method == "PATCH":
            if not refused["done"]:
                refused["done"] = True
                return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
            assert request.read() == b"ab"  # the body is whole on the fresh session
            return httpx.Response(202, headers={"Location": request.url.path})
        return httpx.Response(201)

    client = RegistryClient(
        "reg.example",
        credentials=Credentials("robot", "s3cret-pw"),
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=3, base_delay=0),
        monolithic_limit=1,
        chunk_size=2,
    )
    with client:
        assert client.push_blob("ns/repo", b"ab") == "uploaded"
    assert calls.count("POST") == 2  # the session was restarted, not the chunk re-sent


@pytest.mark.parametrize("header", ["-5", "nan", "inf", "Wed, 21 Oct 2026 07:28:00 GMT"])
def test_odd_retry_after_headers_never_break_the_backoff(header: str) -> None:
    delay = RetryPolicy(base_delay=0.1).delay(0, header)
    assert 0.0 <= delay <= 8.0


def test_bad_retry_settings_are_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    from steps.errors import BadInput

    monkeypatch.setenv("ALGA_RETRY_ATTEMPTS", "many")
    with pytest.raises(BadInput, match="ALGA_RETRY_ATTEMPTS"):
        RetryPolicy.from_env(os.environ)  # the CLI passes the environment
