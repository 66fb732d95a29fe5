"""Challenge parsing, credentials handling, token cache and transport rules."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from steps.errors import BadInput
from steps.oci import Credentials, InsecureRegistry, RegistryClient, is_loopback
from steps.oci.auth import Credentials as _Credentials
from steps.oci.auth import TokenCache, parse_challenge, scope_for
from steps.redact import RedactingFilter, redact, register_secret


def test_parse_bearer_challenge_with_commas_in_quotes() -> None:
    c = parse_challenge(
        'Bearer realm="https://ghcr.io/token",service="ghcr.io",'
        'scope="repository:nine-minds/x:pull,push"'
    )
    assert c is not None
    assert c.scheme == "bearer"
    assert c.realm == "https://ghcr.io/token"
    assert c.service == "ghcr.io"
    assert c.scopes == ["repository:nine-minds/x:pull,push"]


def test_parse_basic_and_empty_challenge() -> None:
    c = parse_challenge('Basic realm="Registry Realm"')
    assert c is not None and c.scheme == "basic" and c.realm == "Registry Realm"
    assert parse_challenge("") is None


def test_scope_for() -> None:
    assert scope_for("ns/repo", ("pull", "push")) == "repository:ns/repo:pull,push"


def test_token_cache_push_token_serves_pull() -> None:
    cache = TokenCache()
    cache.put([scope_for("ns/a", ("pull", "push"))], "tok-push-abc", 300)
    assert cache.get([scope_for("ns/a", ("pull",))]) == "tok-push-abc"
    assert cache.get([scope_for("ns/b", ("pull",))]) is None
    cache.put([scope_for("ns/c", ("pull",))], "tok-pull-only", 300)
    assert cache.get([scope_for("ns/c", ("pull", "push"))]) is None


def test_token_cache_expired_tokens_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = TokenCache()
    cache.put([scope_for("ns/a", ("pull",))], "tok-expiring", 60)
    import steps.oci.auth as auth

    real = auth.time.monotonic
    monkeypatch.setattr(auth.time, "monotonic", lambda: real() + 3600)
    assert cache.get([scope_for("ns/a", ("pull",))]) is None


def test_credentials_never_print_the_password() -> None:
    creds = Credentials("robot", "s3cret-password-value")
    assert "s3cret" not in repr(creds)
    assert "s3cret" not in str(creds)
    assert "s3cret" not in redact(f"oops {creds.password} and {creds.basic_header()}")


def test_credentials_from_environment(tmp_path: Path) -> None:
    # explicit settings, the first source steps.oci.credentials.find_credentials reads
    from steps.oci.credentials import explicit_credentials

    class Credentials(_Credentials):
        @staticmethod
        def from_environment(
            password_file: Path | None = None, *, env: dict[str, str]
        ) -> _Credentials | None:
            return explicit_credentials(env, password_file)

    assert Credentials.from_environment(env={}) is None
    creds = Credentials.from_environment(
        env={"ALGA_REGISTRY_USERNAME": "u", "ALGA_REGISTRY_PASSWORD": "pw-123456"}
    )
    assert creds == _Credentials("u", "pw-123456")
    secret = tmp_path / "pw"
    secret.write_text("from-file-pw\n")
    creds = Credentials.from_environment(secret, env={"ALGA_REGISTRY_USERNAME": "u"})
    assert creds is not None and creds.password == "from-file-pw"
    with pytest.raises(BadInput, match="ALGA_REGISTRY_PASSWORD"):
        Credentials.from_environment(env={"ALGA_REGISTRY_USERNAME": "u"})
    with pytest.raises(BadInput, match="ALGA_REGISTRY_USERNAME"):
        Credentials.from_environment(env={"ALGA_REGISTRY_PASSWORD": "pw-123456"})
    with pytest.raises(BadInput, match="cannot read"):
        Credentials.from_environment(tmp_path / "missing", env={"ALGA_REGISTRY_USERNAME": "u"})


def test_redacting_filter_masks_log_records(caplog: pytest.LogCaptureFixture) -> None:
    register_secret("sentinel-token-7f3a9")
    logger = logging.getLogger("alga_release.test_redact")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="alga_release.test_redact"):
        logger.info("token is %s", "sentinel-token-7f3a9")
    assert "sentinel-token-7f3a9" not in caplog.text
    assert "***" in caplog.text


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1:5000", True),
        ("127.3.2.1", True),
        ("localhost:80", True),
        ("[::1]:5000", True),
        ("ghcr.io", False),
        ("10.0.0.1:5000", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_plain_http_only_for_loopback_or_named_hosts() -> None:
    with pytest.raises(InsecureRegistry) as err:
        RegistryClient("ghcr.io", plain_http=True)
    assert err.value.exit_code == 2
    assert "--insecure-registry" in (err.value.hint or "")
    RegistryClient(
        "registry.internal:5000", plain_http=True, insecure_hosts=["registry.internal:5000"]
    ).close()
    client = RegistryClient("127.0.0.1:5000", plain_http=True)
    assert client.base_url == "http://127.0.0.1:5000"
    client.close()
    assert RegistryClient("ghcr.io").base_url == "https://ghcr.io"
