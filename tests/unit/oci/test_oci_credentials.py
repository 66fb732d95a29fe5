"""Finding credentials as docker, podman, helm and oras do; login and logout files."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path

import pytest

from steps.errors import BadInput
from steps.oci.auth import Credentials
from steps.oci.credentials import (
    CredentialConfigError,
    HelperResult,
    docker_config_path,
    find_credentials,
    login,
    logout,
    podman_auth_paths,
)
from steps.redact import redact


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _write(path: Path, value: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def _no_helper(*_: object) -> HelperResult:
    raise AssertionError("no helper may run here")


def test_paths_follow_docker_config_home_and_podman(tmp_path: Path) -> None:
    assert docker_config_path({"DOCKER_CONFIG": "/etc/dc", "HOME": "/h"}) == Path(
        "/etc/dc/config.json"
    )
    assert docker_config_path({"HOME": "/h"}) == Path("/h/.docker/config.json")
    assert docker_config_path({}) is None
    assert podman_auth_paths({"REGISTRY_AUTH_FILE": "/a.json", "XDG_RUNTIME_DIR": "/r"}) == [
        Path("/a.json")
    ]
    assert podman_auth_paths({"XDG_RUNTIME_DIR": "/run/user/1", "HOME": "/h"}) == [
        Path("/run/user/1/containers/auth.json"),
        Path("/h/.config/containers/auth.json"),
    ]


def test_explicit_settings_win_over_every_file(tmp_path: Path) -> None:
    _write(tmp_path / "config.json", {"auths": {"ghcr.io": {"auth": _b64("file:pw-file")}}})
    env = {
        "DOCKER_CONFIG": str(tmp_path),
        "ALGA_REGISTRY_USERNAME": "env-user",
        "ALGA_REGISTRY_PASSWORD": "pw-env-123",
    }
    found = find_credentials("ghcr.io", env=env, runner=_no_helper)
    assert found.credentials == Credentials("env-user", "pw-env-123")
    assert "ALGA_REGISTRY_PASSWORD" in found.source


def test_password_file_dash_reads_standard_input() -> None:
    found = find_credentials(
        "ghcr.io",
        env={"ALGA_REGISTRY_USERNAME": "u"},
        password_file=Path("-"),
        stdin=io.StringIO("from-stdin-pw\n"),
    )
    assert found.credentials == Credentials("u", "from-stdin-pw")
    with pytest.raises(BadInput, match="standard input"):
        find_credentials("ghcr.io", env={"ALGA_REGISTRY_USERNAME": "u"}, password_file=Path("-"))


@pytest.mark.parametrize(
    ("key", "entry", "expected"),
    [
        ("ghcr.io", {"auth": _b64("robot:pw-a:with:colons")}, ("robot", "pw-a:with:colons")),
        ("https://ghcr.io", {"username": "robot", "password": "pw-b"}, ("robot", "pw-b")),
        ("https://ghcr.io/v1/", {"auth": _b64("robot:pw-c")}, ("robot", "pw-c")),
    ],
)
def test_docker_config_auths_entries(
    tmp_path: Path, key: str, entry: dict[str, str], expected: tuple[str, str]
) -> None:
    _write(tmp_path / "config.json", {"auths": {"other.example": {}, key: entry}})
    found = find_credentials("ghcr.io", env={"DOCKER_CONFIG": str(tmp_path)}, runner=_no_helper)
    assert found.credentials == Credentials(*expected)
    assert found.source == str(tmp_path / "config.json")


def test_identity_token_entries_are_refresh_tokens(tmp_path: Path) -> None:
    _write(tmp_path / "config.json", {"auths": {"reg.example": {"identitytoken": "rt-xyz-987"}}})
    found = find_credentials("reg.example", env={"DOCKER_CONFIG": str(tmp_path)})
    assert found.credentials is not None
    assert found.credentials.identity_token
    assert found.credentials.password == "rt-xyz-987"
    assert "rt-xyz-987" not in redact("echo rt-xyz-987")


def test_a_malformed_file_names_the_file_and_never_the_value(tmp_path: Path) -> None:
    config = _write(tmp_path / "config.json", {"auths": {"ghcr.io": {"auth": "%%not-base64%%"}}})
    with pytest.raises(CredentialConfigError) as err:
        find_credentials("ghcr.io", env={"DOCKER_CONFIG": str(tmp_path)})
    assert str(config) in err.value.message and "not-base64" not in err.value.message
    assert err.value.exit_code == 2
    config.write_text("{ not json", encoding="utf-8")
    with pytest.raises(CredentialConfigError, match="not valid JSON"):
        find_credentials("ghcr.io", env={"DOCKER_CONFIG": str(tmp_path)})


def test_podman_auth_file_and_repository_scoped_keys(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    _write(
        runtime / "containers" / "auth.json",
        {
            "auths": {
                "ghcr.io": {"auth": _b64("org-wide:pw-org")},
                "ghcr.io/nine-minds": {"auth": _b64("nine:pw-nine")},
            }
        },
    )
    env = {"XDG_RUNTIME_DIR": str(runtime), "HOME": str(tmp_path / "home")}
    assert find_credentials("ghcr.io", env=env).credentials == Credentials("org-wide", "pw-org")
    scoped = find_credentials("ghcr.io", env=env, scope="nine-minds/alga-appliance-release")
    assert scoped.credentials == Credentials("nine", "pw-nine")
    # Docker's file comes first when both know the host.
    _write(
        tmp_path / "home" / ".docker" / "config.json",
        {"auths": {"ghcr.io": {"auth": _b64("d:pw-d")}}},
    )
    assert find_credentials("ghcr.io", env=env).credentials == Credentials("d", "pw-d")


def test_nothing_anywhere_is_anonymous(tmp_path: Path) -> None:
    found = find_credentials("ghcr.io", env={"HOME": str(tmp_path)})
    assert found.credentials is None and found.source == "anonymous"


def _helper_env(tmp_path: Path, name: str) -> dict[str, str]:
    """A PATH holding an executable ``docker-credential-<name>`` (the runner replaces it)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / f"docker-credential-{name}"
    exe.write_text("#!/bin/sh\nexit 99\n")
    exe.chmod(0o755)
    return {"DOCKER_CONFIG": str(tmp_path), "PATH": str(bin_dir)}


def test_cred_helpers_win_over_creds_store_and_fall_back_to_auths(tmp_path: Path) -> None:
    _write(
        tmp_path / "config.json",
        {
            "credsStore": "desktop",
            "credHelpers": {"ghcr.io": "gh"},
            "auths": {"127.0.0.1:5000": {"auth": _b64("inline:pw-inline")}},
        },
    )
    env = _helper_env(tmp_path, "gh") | {"PATH": _helper_env(tmp_path, "desktop")["PATH"]}
    calls: list[tuple[str, str, str]] = []

    def runner(exe: str, action: str, stdin: str, _env: Mapping[str, str]) -> HelperResult:
        calls.append((Path(exe).name, action, stdin))
        if exe.endswith("-gh"):
            return HelperResult(0, json.dumps({"Username": "gh-user", "Secret": "pw-gh"}), "")
        return HelperResult(1, "credentials not found in native keychain\n", "")

    assert find_credentials("ghcr.io", env=env, runner=runner).credentials == Credentials(
        "gh-user", "pw-gh"
    )
    found = find_credentials("127.0.0.1:5000", env=env, runner=runner)
    assert found.credentials == Credentials("inline", "pw-inline")
    assert calls == [
        ("docker-credential-gh", "get", "ghcr.io"),
        ("docker-credential-desktop", "get", "127.0.0.1:5000"),
    ]


def test_a_helper_that_is_not_installed_is_skipped(tmp_path: Path) -> None:
    _write(tmp_path / "config.json", {"credsStore": "osxkeychain", "auths": {"r.example": {}}})
    env = {"DOCKER_CONFIG": str(tmp_path), "PATH": str(tmp_path / "empty")}
    assert find_credentials("r.example", env=env, runner=_no_helper).credentials is None


def test_a_failing_helper_is_bad_input_without_its_secrets(tmp_path: Path) -> None:
    _write(tmp_path / "config.json", {"credHelpers": {"r.example": "broken"}})
    env = _helper_env(tmp_path, "broken")

    def runner(*_: object) -> HelperResult:
        return HelperResult(2, "", "keyring locked\n")

    with pytest.raises(CredentialConfigError, match="keyring locked") as err:
        find_credentials("r.example", env=env, runner=runner)
    assert "docker-credential-broken" in err.value.message


def test_login_writes_an_inline_entry_0600_and_keeps_other_keys(tmp_path: Path) -> None:
    config = _write(
        tmp_path / "config.json",
        {"auths": {"other.example": {"auth": _b64("o:pw-o")}}, "psFormat": "table"},
    )
    env = {"DOCKER_CONFIG": str(tmp_path)}
    checked: list[Credentials] = []
    result = login(
        "127.0.0.1:5000", Credentials("me", "pw-login-1"), env=env, verify=checked.append
    )
    assert result.path == config and result.helper is None
    assert checked == [Credentials("me", "pw-login-1")]
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
    body = json.loads(config.read_text())
    assert body["psFormat"] == "table" and "other.example" in body["auths"]
    assert body["auths"]["127.0.0.1:5000"] == {"auth": _b64("me:pw-login-1")}
    assert find_credentials("127.0.0.1:5000", env=env).credentials == Credentials(
        "me", "pw-login-1"
    )
    assert logout("127.0.0.1:5000", env=env) is True
    assert "127.0.0.1:5000" not in json.loads(config.read_text())["auths"]
    assert logout("127.0.0.1:5000", env=env) is False


def test_login_that_fails_verification_writes_nothing(tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path / "new")}

    def refuse(_: Credentials) -> None:
        raise BadInput("refused")

    with pytest.raises(BadInput):
        login("r.example", Credentials("me", "pw-bad-1"), env=env, verify=refuse)
    assert not (tmp_path / "new").exists()


def test_login_and_logout_go_through_the_configured_helper(tmp_path: Path) -> None:
    _write(tmp_path / "config.json", {"credsStore": "test"})
    env = _helper_env(tmp_path, "test")
    calls: list[tuple[str, str]] = []

    def runner(exe: str, action: str, stdin: str, _env: Mapping[str, str]) -> HelperResult:
        calls.append((action, stdin))
        return HelperResult(0, "", "")

    login("r.example", Credentials("me", "pw-helper-1"), env=env, runner=runner)
    stored = json.loads(calls[0][1])
    assert calls[0][0] == "store"
    assert stored == {"ServerURL": "r.example", "Username": "me", "Secret": "pw-helper-1"}
    body = json.loads((tmp_path / "config.json").read_text())
    assert body["auths"] == {"r.example": {}}  # Docker's placeholder, no secret in the file
    assert "pw-helper-1" not in (tmp_path / "config.json").read_text()
    assert logout("r.example", env=env, runner=runner) is True
    assert calls[-1] == ("erase", "r.example")


def test_login_takes_the_server_as_people_write_it(tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path)}
    login("https://ghcr.io/", Credentials("me", "pw-url-form"), env=env)
    assert list(json.loads((tmp_path / "config.json").read_text())["auths"]) == ["ghcr.io"]
    assert logout("ghcr.io", env=env) is True
    with pytest.raises(BadInput):
        login("not a host!", Credentials("me", "pw-url-form"), env=env)
