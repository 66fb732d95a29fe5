"""`alga-release control-plane build` against a real Docker-API engine.

The engine is ``podman system service`` (see ``conftest.py``): the Docker SDK talks
to it over ``DOCKER_HOST`` exactly as it talks to dockerd or an Argo dind sidecar.
No base image can be pulled here, so the Dockerfiles build ``FROM scratch`` and
copy files; no ``RUN`` step is exercised (``podman run`` does not work here).
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from steps.oci import Digest
from tests.harness.registry import Registry
from tests.helpers import cli, client_for, registry_args, registry_env, tags

pytestmark = pytest.mark.integration

REPO = "nine-minds/alga-appliance-control-plane"
DOCKERFILE = "ee/appliance/control-plane/Dockerfile"

# Shaped like alga-psa's: root-relative COPY lines (the image is built from the
# repository root), plus a copy of the whole context so the test can see what the
# engine received.
CONTROL_PLANE_DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM scratch
COPY ee/appliance/host-service/*.mjs /opt/alga-appliance/host-service/
COPY ee/appliance/scripts /opt/alga-appliance/scripts
COPY . /ctx/
"""

# One step: for the tests about what happens around the build.
MINIMAL_DOCKERFILE = "FROM scratch\nCOPY ee/appliance/host-service/server.mjs /server.mjs\n"

# A cut of alga-psa's root .dockerignore, exceptions included.
DOCKERIGNORE = """\
.git
node_modules
**/node_modules
**/dist
!shared/dist
!shared/dist/**
.env
docs
"""


def checkout(root: Path, dockerfile: str = CONTROL_PLANE_DOCKERFILE) -> Path:
    """A minimal alga-psa checkout: the control-plane Dockerfile and what it copies."""
    files = {
        DOCKERFILE: dockerfile,
        ".dockerignore": DOCKERIGNORE,
        "ee/appliance/host-service/server.mjs": "console.log('setup UI')\n",
        "ee/appliance/host-service/node_modules/left-pad/index.js": "module.exports = 1\n",
        "ee/appliance/scripts/control-plane-entrypoint.sh": "#!/bin/sh\n",
        "ee/appliance/status-ui/dist/index.html": "build output\n",
        "ee/appliance/docs/notes.md": "docs only matches at the top level\n",
        "node_modules/big/index.js": "x\n",
        "shared/dist/index.js": "re-included by an exception\n",
        ".env": "SECRET=1\n",
        ".git/HEAD": "ref: refs/heads/main\n",
        "docs/guide.md": "not shipped\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def build(reg: Registry, source: Path, tag: str, *extra: str) -> Any:
    return cli(
        [
            "control-plane",
            "build",
            "--source",
            str(source),
            "--tag",
            tag,
            *registry_args(reg),
            "--engine-wait",
            "10",
            "--json",
            *extra,
        ]
    )


def image_files(reg: Registry, digest: str) -> set[str]:
    """Every path in the layers of the pushed image, read with our client."""
    names: set[str] = set()
    with client_for(reg) as client:
        manifest = client.get_manifest(REPO, Digest.parse(digest)).json()
        layers = manifest["layers"]
        assert isinstance(layers, list)
        for layer in layers:
            data = client.get_blob(REPO, Digest.parse(layer["digest"]), size=layer["size"])
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
                names |= {m.name.lstrip("./") for m in tar.getmembers() if not m.isdir()}
    return names


def test_build_pushes_and_returns_the_pinned_reference(
    token_registry: Registry,
    podman_engine: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    engine = podman_engine(token_registry)
    source = checkout(tmp_path / "alga-psa")
    monkeypatch.setenv("DOCKER_HOST", engine.docker_host)
    with registry_env(monkeypatch, token_registry):
        result = build(token_registry, source, "3f2a1b0", "--out", str(tmp_path / "cp.json"))
    assert result.code == 0, result.stderr + engine.log_tail()
    out = result.json()
    assert out["status"] == "pushed"
    assert out["reference"] == f"{token_registry.host}/{REPO}@{out['digest']}"
    assert (tmp_path / "cp.json").is_file()
    assert "build: STEP 4/4: COPY . /ctx/" in result.stderr  # the engine's output is logged
    with client_for(token_registry) as client:
        head = client.head_manifest(REPO, "3f2a1b0")
        assert head is not None and str(head.digest) == out["digest"]
    files = image_files(token_registry, out["digest"])
    assert {
        "opt/alga-appliance/host-service/server.mjs",
        "opt/alga-appliance/scripts/control-plane-entrypoint.sh",
        "ctx/ee/appliance/host-service/server.mjs",
        "ctx/ee/appliance/docs/notes.md",
        "ctx/shared/dist/index.js",
    } <= files
    for ignored in (
        "ctx/ee/appliance/host-service/node_modules/left-pad/index.js",
        "ctx/node_modules/big/index.js",
        "ctx/ee/appliance/status-ui/dist/index.html",
        "ctx/.env",
        "ctx/.git/HEAD",
        "ctx/docs/guide.md",
    ):
        assert ignored not in files
    assert token_registry.password is not None
    assert token_registry.password not in result.stdout + result.stderr


def test_an_existing_tag_is_kept_without_building(
    registry: Registry,
    podman_engine: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    engine = podman_engine(registry)
    source = checkout(tmp_path / "alga-psa", MINIMAL_DOCKERFILE)
    with registry_env(monkeypatch, registry):
        monkeypatch.setenv("DOCKER_HOST", engine.docker_host)
        first = build(registry, source, "3f2a1b0")
        assert first.code == 0, first.stderr
        # No engine at all now: an existing tag must not need one.
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
        again = build(registry, source, "3f2a1b0", "--engine-wait", "0")
    assert again.code == 0, again.stderr
    assert again.json()["status"] == "existing"
    assert again.json()["reference"] == first.json()["reference"]
    assert "already exists" in again.stderr


def test_a_failing_build_names_the_dockerfile_and_tags_nothing(
    registry: Registry,
    podman_engine: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    engine = podman_engine(registry)
    source = checkout(tmp_path / "alga-psa", "FROM scratch\nCOPY missing.txt /\n")
    monkeypatch.setenv("DOCKER_HOST", engine.docker_host)
    with registry_env(monkeypatch, registry):
        result = build(registry, source, "3f2a1b0")
    assert result.code == 1, result.stderr
    error = result.json()
    assert error["error"] == "EngineError"
    assert "missing.txt" in error["message"]
    assert DOCKERFILE in error["message"]
    assert tags(registry, REPO) == []


def test_a_push_the_registry_refuses_is_an_auth_error(
    token_registry: Registry,
    podman_engine: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Anonymous pulls are allowed (so the tag check passes), pushes are not: the
    # refusal comes from the engine's push stream.
    engine = podman_engine(token_registry)
    source = checkout(tmp_path / "alga-psa", MINIMAL_DOCKERFILE)
    monkeypatch.setenv("DOCKER_HOST", engine.docker_host)
    with registry_env(monkeypatch, token_registry, credentials=None):
        result = build(token_registry, source, "3f2a1b0")
    assert result.code == 1, result.stderr
    error = result.json()
    assert error["error"] == "AuthError", error
    assert f"{token_registry.host}/{REPO}:3f2a1b0" in error["message"]
    assert "ALGA_REGISTRY_USERNAME" in error["hint"]
    assert tags(token_registry, REPO) == []


def test_an_unreachable_engine_is_transient(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = checkout(tmp_path / "alga-psa")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with registry_env(monkeypatch, registry):
        result = build(registry, source, "3f2a1b0", "--engine-wait", "0")
    assert result.code == 75, result.stderr
    assert result.json()["error"] == "EngineUnavailable"
    assert "DOCKER_HOST" in result.json()["hint"]


def test_build_dry_run_checks_the_context_and_the_tag_without_an_engine(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.harness.images import push_tiny_image

    source = tmp_path / "src"
    dockerfile = source / "ee" / "appliance" / "control-plane" / "Dockerfile"
    dockerfile.parent.mkdir(parents=True)
    dockerfile.write_text("FROM scratch\nCOPY ee/appliance/control-plane/app.txt /app.txt\n")
    (dockerfile.parent / "app.txt").write_text("ui\n")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/engine.sock")
    with registry_env(monkeypatch, registry):
        plan = cli(
            [
                "control-plane",
                "build",
                "--source",
                str(source),
                "--tag",
                "3f2a1b0",
                "--dry-run",
                *registry_args(registry),
                "--json",
            ]
        )
        assert plan.code == 0, plan.stderr
        assert plan.json()["status"] == "would-build"
        assert plan.json()["contextEntries"] >= 2
        with client_for(registry) as client:
            assert (
                client.head_manifest("nine-minds/alga-appliance-control-plane", "3f2a1b0") is None
            )
            digest = push_tiny_image(client, "nine-minds/alga-appliance-control-plane", "3f2a1b0")
        existing = cli(
            [
                "control-plane",
                "build",
                "--source",
                str(source),
                "--tag",
                "3f2a1b0",
                "--dry-run",
                *registry_args(registry),
                "--json",
            ]
        )
    assert existing.code == 0, existing.stderr
    assert existing.json()["status"] == "existing"
    assert existing.json()["digest"] == str(digest)
