"""The registry commands as a person uses them, on the real registry: ``login`` then any
command with only the Docker config, ``logout``, ``list``, and ``--timeout`` against a
registry that accepts connections and never answers."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.images import push_tiny_image
from tests.harness.registry import Registry
from tests.helpers import client_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run(
    args: list[str], env: dict[str, str], stdin: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steps.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
    )


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ALGA_", "DOCKER_", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"))
    }
    env["DOCKER_CONFIG"] = str(tmp_path / "docker")
    env["HOME"] = str(tmp_path / "home")
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_login_then_commands_use_the_docker_config_then_logout(
    basic_registry: Registry, tmp_path: Path
) -> None:
    username, password = basic_registry.credentials
    with client_for(basic_registry) as client:
        push_tiny_image(client, "nine-minds/alga-psa-ee", "62cdce38")
    env = clean_env(tmp_path)
    host = basic_registry.host
    tls = ["--plain-http"]

    # a wrong password is refused and nothing is stored
    bad = run(["login", host, "-u", username, "--password-stdin", *tls], env, "wrong-pw\n")
    assert bad.returncode != 0
    assert not (tmp_path / "docker" / "config.json").exists()
    assert "wrong-pw" not in bad.stdout + bad.stderr

    done = run(["login", host, "-u", username, "--password-stdin", *tls, "--json"], env, password)
    assert done.returncode == 0, done.stderr
    config = tmp_path / "docker" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert host in json.loads(config.read_text())["auths"]
    assert password not in done.stdout + done.stderr

    # with no ALGA_* variables, a command finds the stored login
    args = ["--registry", host, "--plain-http", "--json"]
    listed = run(["list", *args], env)
    assert listed.returncode != 3, listed.stderr
    assert "401" not in listed.stderr and "credentials" not in listed.stderr.lower(), listed.stderr

    out = run(["logout", host, "--json"], env)
    assert out.returncode == 0 and json.loads(out.stdout)["removed"] is True
    assert host not in json.loads(config.read_text()).get("auths", {})
    again = run(["logout", host, "--json"], env)
    assert again.returncode == 0 and json.loads(again.stdout)["removed"] is False
    # logged out: the registry asks for credentials again
    denied = run(["list", *args], env)
    assert denied.returncode != 0


def test_login_takes_the_password_from_stdin_only(tmp_path: Path) -> None:
    done = run(["login", "ghcr.io", "-u", "someone"], clean_env(tmp_path))
    assert done.returncode == 2
    assert "--password-stdin" in done.stderr and "write:packages" in done.stderr


def test_list_shows_versions_newest_first_with_their_channels(
    registry: Registry, tmp_path: Path
) -> None:
    """Release-shaped manifests are the publish tests' business; here ``list`` pages the
    tags and reads what each version tag holds (not a release: said so, never a crash)."""
    with client_for(registry) as client:
        for version in ("1.0.0", "1.2.0", "1.10.0"):
            push_tiny_image(client, "nine-minds/alga-appliance-release", version)
    done = run(["list", "--registry", registry.host, "--plain-http", "--json"], clean_env(tmp_path))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [r["version"] for r in result["releases"]] == ["1.10.0", "1.2.0", "1.0.0"]
    assert all(r["problem"] == "not a release manifest" for r in result["releases"])
    human = run(["list", "--registry", registry.host, "--plain-http"], clean_env(tmp_path))
    assert human.returncode == 0 and human.stdout.splitlines()[1].startswith("1.10.0")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers (a stalled registry)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


@pytest.mark.parametrize("command", [["inspect", "nightly"], ["list"], ["history", "stable"]])
def test_a_stalled_registry_ends_within_the_timeout(
    silent_server: int, tmp_path: Path, command: list[str]
) -> None:
    env = clean_env(tmp_path)
    start = time.monotonic()
    done = run(
        [*command, "--registry", f"127.0.0.1:{silent_server}", "--plain-http", "--timeout", "3"],
        env,
        timeout=60,
    )
    elapsed = time.monotonic() - start
    assert done.returncode == 75, done.stderr
    assert elapsed < 3 + 2 + 1.5, elapsed  # --timeout + 2 s, plus the interpreter's start
    assert "127.0.0.1" in done.stderr


def test_a_bad_timeout_is_bad_input(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    assert run(["list", "--timeout", "0"], env).returncode == 2
    env["ALGA_TIMEOUT"] = "soon"
    done = run(["list"], env)
    assert done.returncode == 2 and "ALGA_TIMEOUT" in done.stderr
