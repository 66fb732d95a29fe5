"""Credentials found the ecosystem's way, on the real registry: a Docker config file alone,
a credential helper program, login (verified with ``GET /v2/``) and logout."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from steps.oci import AuthError, Credentials, Digest
from steps.oci.credentials import find_credentials, login, logout
from tests.harness.registry import Registry
from tests.helpers import client_for

pytestmark = pytest.mark.integration

REPO = "nine-minds/test/creds"

# A credential helper as docker runs them: ``docker-credential-test get|store|erase`` with
# the server (or a JSON record) on stdin; it keeps its records in a JSON file beside itself.
_HELPER = """#!{python}
import json, pathlib, sys
store = pathlib.Path(__file__).with_name("helper-store.json")
records = json.loads(store.read_text()) if store.exists() else {{}}
action, payload = sys.argv[1], sys.stdin.read().strip()
server = json.loads(payload)["ServerURL"] if action == "store" else payload
with store.with_name("helper-calls.log").open("a") as log:
    log.write(action + " " + server + "\\n")
if action == "get":
    if payload not in records:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps(records[payload]))
elif action == "store":
    record = json.loads(payload)
    records[record["ServerURL"]] = record
    store.write_text(json.dumps(records))
elif action == "erase":
    if records.pop(payload, None) is None:
        print("credentials not found in native keychain")
        sys.exit(1)
    store.write_text(json.dumps(records))
"""


def _install_helper(tmp_path: Path, records: dict[str, dict[str, str]] | None = None) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-test"
    helper.write_text(_HELPER.format(python=sys.executable))
    helper.chmod(0o755)
    if records is not None:
        (bin_dir / "helper-store.json").write_text(json.dumps(records))
    return bin_dir


def _env(tmp_path: Path, bin_dir: Path | None = None) -> dict[str, str]:
    """No ALGA_* variable at all: only where the ecosystem looks."""
    env = {"DOCKER_CONFIG": str(tmp_path / "docker"), "HOME": str(tmp_path / "home")}
    env["PATH"] = os.pathsep.join([str(bin_dir)] if bin_dir else []) + os.pathsep + os.defpath
    return env


def _push_and_pull(reg: Registry, creds: Credentials | None) -> None:
    data = b"pushed with credentials found in a config " + reg.host.encode()
    with client_for(reg, credentials=creds) as client:
        assert client.push_blob(REPO, data) == "uploaded"
        assert client.get_blob(REPO, Digest.of(data)) == data


def test_basic_registry_with_only_a_docker_config_file(
    basic_registry: Registry, tmp_path: Path
) -> None:
    user, password = basic_registry.credentials or ("", "")
    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir()
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    config.write_text(json.dumps({"auths": {basic_registry.host: {"auth": pair}}}))
    found = find_credentials(basic_registry.host, env=_env(tmp_path))
    assert found.source == str(config)
    _push_and_pull(basic_registry, found.credentials)
    # The same registry with nothing configured: credentials are asked for by name.
    with client_for(basic_registry, anonymous=True) as client, pytest.raises(AuthError) as err:
        client.push_blob(REPO, b"anonymous")
    assert "alga-release login" in (err.value.hint or "")


def test_basic_registry_through_a_credential_helper(
    basic_registry: Registry, tmp_path: Path
) -> None:
    user, password = basic_registry.credentials or ("", "")
    bin_dir = _install_helper(
        tmp_path,
        {
            basic_registry.host: {
                "ServerURL": basic_registry.host,
                "Username": user,
                "Secret": password,
            }
        },
    )
    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"credHelpers": {basic_registry.host: "test"}}))
    found = find_credentials(basic_registry.host, env=_env(tmp_path, bin_dir))
    assert found.source.startswith("docker-credential-test")
    assert found.credentials == Credentials(user, password)
    _push_and_pull(basic_registry, found.credentials)
    assert (bin_dir / "helper-calls.log").read_text().splitlines() == [f"get {basic_registry.host}"]


@pytest.mark.parametrize("through_helper", [False, True], ids=["file", "helper"])
def test_login_verifies_then_stores_and_logout_removes(
    protected_registry: Registry, tmp_path: Path, through_helper: bool
) -> None:
    user, password = protected_registry.credentials or ("", "")
    bin_dir = _install_helper(tmp_path) if through_helper else None
    env = _env(tmp_path, bin_dir)
    config = tmp_path / "docker" / "config.json"
    if through_helper:
        config.parent.mkdir()
        config.write_text(json.dumps({"credsStore": "test"}))

    def verify(creds: Credentials) -> None:
        with client_for(protected_registry, credentials=creds) as client:
            client.ping()

    wrong = Credentials(user, password + "-wrong")
    with pytest.raises(AuthError) as err:
        login(protected_registry.host, wrong, env=env, verify=verify)
    assert password not in err.value.diagnostics()
    assert not config.exists() or protected_registry.host not in config.read_text()

    result = login(protected_registry.host, Credentials(user, password), env=env, verify=verify)
    assert result.path == config
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert password not in config.read_text() or not through_helper
    found = find_credentials(protected_registry.host, env=env)
    assert found.credentials == Credentials(user, password)
    _push_and_pull(protected_registry, found.credentials)

    assert logout(protected_registry.host, env=env) is True
    assert find_credentials(protected_registry.host, env=env).credentials is None


@pytest.mark.parametrize("through_helper", [False, True], ids=["config-file", "helper"])
def test_the_cli_reaches_a_basic_registry_with_only_the_docker_config(
    basic_registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    through_helper: bool,
) -> None:
    from steps.cli import options
    from tests.helpers import cli

    user, password = basic_registry.credentials or ("", "")
    argv = ["history", "nightly", "--registry", basic_registry.host, "--plain-http", "--json"]
    bare = {"HOME": str(tmp_path / "home"), "ALGA_RETRY_BASE_DELAY": "0"}
    monkeypatch.setattr(options, "ENVIRON", bare)
    refused = cli(argv)
    assert refused.code == 1 and "requires credentials" in refused.stdout
    assert f"alga-release login {basic_registry.host}" in refused.stdout

    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir()
    bin_dir = None
    if through_helper:
        record = {"ServerURL": basic_registry.host, "Username": user, "Secret": password}
        bin_dir = _install_helper(tmp_path, {basic_registry.host: record})
        config.write_text(json.dumps({"credsStore": "test"}))
    else:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        config.write_text(json.dumps({"auths": {basic_registry.host: {"auth": pair}}}))
    env = _env(tmp_path, bin_dir) | {"ALGA_RETRY_BASE_DELAY": "0"}
    assert not any(name.startswith("ALGA_REGISTRY") for name in env)
    monkeypatch.setattr(options, "ENVIRON", env)
    result = cli(argv)
    # Authenticated, the registry answers: nothing was published there (exit 2), where
    # anonymously it refused (exit 1, credentials asked for).
    assert result.code == 2, result.stdout + result.stderr
    assert result.json()["kind"] == "UnknownRepository"
    assert "credentials" not in result.stdout
    assert password not in result.stdout + result.stderr


def test_a_docker_identity_token_is_exchanged_at_the_token_service(
    token_registry: Registry, tmp_path: Path
) -> None:
    server = token_registry.token_server
    assert server is not None and token_registry.username is not None
    server.refresh_tokens["rt-identity-0123456789"] = token_registry.username
    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir()
    config.write_text(
        json.dumps({"auths": {token_registry.host: {"identitytoken": "rt-identity-0123456789"}}})
    )
    found = find_credentials(token_registry.host, env=_env(tmp_path))
    assert found.credentials is not None and found.credentials.identity_token
    _push_and_pull(token_registry, found.credentials)
    grants = {(r.method, r.grant_type) for r in server.requests}
    assert grants == {("POST", "refresh_token")}
    assert all(r.username == token_registry.username for r in server.requests)
    server.refresh_tokens.clear()
    revoked = client_for(token_registry, credentials=found.credentials)
    with revoked, pytest.raises(AuthError):
        revoked.push_blob(REPO, b"with a revoked identity token")
