"""Both consume twins against the real registry: TLS, a Bearer challenge, a cache, faults.

The first test publishes with ``alga-release publish`` itself (charts, bundle,
images, manifest, channel move). The others push just the release artifact the
way the publisher pushes it (``steps.manifest``'s bytes, the project's
``RegistryClient``): one config blob that is also the one layer, an OCI image
manifest tagged ``:<version>`` and ``:nightly``; that is faster and lets each
test shape exactly the registry state it needs.

The Python twin runs in-process (and once as ``python3 -S -I``), the Node twin
through its CLI; both must reach the same digests and refuse the same tampering.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from steps.oci import mediatypes as mt
from steps.release import manifest as rm
from tests.harness.faults import FaultProxy
from tests.harness.images import push_tiny_image
from tests.harness.registry import Registry
from tests.harness.tools import missing_component
from tests.helpers import cli, client_for, registry_args, registry_env

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "consume"))
import release_consume as rc  # noqa: E402  (a single file, not a package: see consume/README.md)

pytestmark = pytest.mark.integration

REPO = "nine-minds/alga-appliance-release"
PY_MODULE = ROOT / "consume" / "release_consume.py"
JS_MODULE = ROOT / "consume" / "release-consume.mjs"
EXAMPLE = ROOT / "schemas" / "examples" / "valid" / "minimal.json"


@dataclass(frozen=True)
class Published:
    manifest_digest: str
    config_digest: str
    config: bytes
    release: dict[str, Any]


def release_doc(version: str) -> dict[str, Any]:
    """The valid minimal example, as release ``version``."""
    doc: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    doc["version"] = version
    doc["config"] = {**doc["config"], "tag": version, "version": version}
    return doc


def publish(reg: Registry, version: str, tags: list[str]) -> Published:
    """Push a release artifact as the publisher does and point ``tags`` at it."""
    release = release_doc(version)
    config = rm.manifest_bytes(release)
    manifest = rm.release_oci_manifest(config, annotations=rm.release_annotations(release))
    with client_for(reg) as client:
        client.push_blob(REPO, config)
        digests = {str(client.put_manifest(REPO, tag, manifest, mt.OCI_MANIFEST)) for tag in tags}
    assert len(digests) == 1
    return Published(digests.pop(), rc.compute_digest(config), config, release)


def corrupt_blob_on_disk(reg: Registry, digest: str) -> None:
    """Make the registry itself serve altered bytes for a blob (same length, one bit)."""
    hexdigest = digest.split(":", 1)[1]
    data = reg.storage_dir / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALGA_")}
    env.update(extra)
    return env


def node() -> str:
    found = shutil.which("node")
    if found is None:
        missing_component("node", "Node.js 20 runs the JavaScript twin")
    return found


def registry_flags(reg: Registry | FaultProxy) -> list[str]:
    if isinstance(reg, FaultProxy) or not reg.tls:
        return ["--registry", reg.host, "--plain-http"]
    assert reg.ca_file is not None
    return ["--registry", reg.host, "--ca-file", str(reg.ca_file)]


def run_js(
    ref: str, reg: Registry | FaultProxy, *args: str, env: dict[str, str] | None = None
) -> tuple[int, Any, str]:
    proc = subprocess.run(
        [node(), str(JS_MODULE), ref, "--repository", REPO, *registry_flags(reg), "--json", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env or _clean_env(),
    )
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None, proc.stderr


def run_py_cli(ref: str, reg: Registry | FaultProxy, *args: str) -> tuple[int, Any, str]:
    """The Python twin as an appliance runs it: system python3, no site-packages, isolated."""
    python = shutil.which("python3") or sys.executable
    proc = subprocess.run(
        [
            python,
            "-S",
            "-I",
            str(PY_MODULE),
            ref,
            "--repository",
            REPO,
            *registry_flags(reg),
            "--json",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=_clean_env(),
    )
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None, proc.stderr


def resolve_py(ref: str, reg: Registry, **kwargs: Any) -> rc.Resolution:
    kwargs.setdefault("attempts", 2)
    kwargs.setdefault("sleep", lambda _s: None)
    return rc.resolve(
        ref,
        registry=reg.host,
        repository=REPO,
        ca_file=str(reg.ca_file) if reg.ca_file else None,
        plain_http=not reg.tls,
        **kwargs,
    )


# -- a release published by `alga-release publish` ----------------------------------------

IMAGE_REPOS = ("alga-psa-ee", "workflow-worker", "email-service", "temporal-worker")
IMAGE_TAG = "62cdce38"


def publish_with_the_cli(reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``alga-release publish`` of the embedded reference source to ``reg``; its JSON result."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "examples" / "charts", src / "examples" / "charts")
    shutil.copytree(ROOT / "flux", src / "flux")
    shutil.copy(ROOT / "examples" / "release.yaml", src / "release.yaml")
    with client_for(reg) as client:
        for repo in (*IMAGE_REPOS, "alga-appliance-control-plane"):
            push_tiny_image(client, f"nine-minds/{repo}", IMAGE_TAG)
    argv = [
        "publish", "--source", str(src), "--config", str(src / "release.yaml"),
        "--version", "1.0.0", "--channel", "nightly",
        *[arg for key in rc.IMAGE_KEYS for arg in ("--image", f"{key}={IMAGE_TAG}")],
        "--control-plane", IMAGE_TAG, *registry_args(reg), "--json",
    ]  # fmt: skip
    with registry_env(monkeypatch, reg):
        result = cli(argv)
    assert result.code == 0, result.stderr
    return result.json()


def test_both_twins_resolve_what_alga_release_publish_pushed_and_refuse_it_corrupted(
    tls_token_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = tls_token_registry
    published = publish_with_the_cli(reg, tmp_path, monkeypatch)
    digest = published["manifestDigest"]

    result = resolve_py("nightly", reg)  # anonymously, as an appliance pulls
    assert result.manifest_digest == digest and result.version == "1.0.0"
    code, js, stderr = run_js("nightly", reg)
    assert code == 0, stderr
    # The same resolution, key for key. The request count is left to the dedicated tests
    # below (exact counts on a quiet registry): here it follows a whole publish, and a
    # twin that meets a slow answer retries once, which is right and changes only it.
    expected = result.to_json()
    assert {**js, "requests": None} == {**expected, "requests": None}
    assert 4 <= js["requests"] <= 5 and 4 <= expected["requests"] <= 5
    code, py_cli, stderr = run_py_cli("1.0.0", reg)
    assert code == 0 and py_cli["manifestDigest"] == digest, stderr
    code, rendered, stderr = run_js("nightly", reg, "--render")
    assert code == 0 and rendered["items"] == rc.render_all(result.manifest), stderr

    corrupt_blob_on_disk(reg, result.config_digest)
    with pytest.raises(rc.DigestMismatch):
        resolve_py("nightly", reg)
    code, js, stderr = run_js("nightly", reg)
    assert code == 3 and js["error"] == "DigestMismatch", stderr
    code, py_cli, stderr = run_py_cli(digest, reg)
    assert code == 3 and py_cli["error"] == "DigestMismatch", stderr


# -- resolving a published release over TLS with a Bearer challenge ------------------------


def test_both_twins_resolve_a_published_release_over_tls(tls_token_registry: Registry) -> None:
    reg = tls_token_registry
    pub = publish(reg, "1.0.0", ["1.0.0", "nightly"])
    assert reg.token_server is not None
    reg.token_server.reset()

    result = resolve_py("nightly", reg)
    assert result.manifest_digest == pub.manifest_digest
    assert result.config_digest == pub.config_digest
    assert result.manifest == pub.release
    assert result.media_type == rc.OCI_MANIFEST
    assert (result.cached, result.stale, result.pinned) == (False, False, False)
    # Cold, realm unknown: the 401 that names it, the token, the manifest, the blob.
    assert result.requests == 4
    token_requests = reg.token_server.requests
    assert len(token_requests) == 1 and token_requests[0].username is None  # anonymous
    assert token_requests[0].requested_actions(REPO) == {"pull"}

    code, js, stderr = run_js("nightly", reg)
    assert code == 0, stderr
    assert (js["manifestDigest"], js["configDigest"]) == (pub.manifest_digest, pub.config_digest)
    assert js["manifest"] == pub.release and js["requests"] == 4
    assert js == {**result.to_json()}

    code, py_cli, stderr = run_py_cli("1.0.0", reg)
    assert code == 0, stderr
    assert py_cli["manifestDigest"] == pub.manifest_digest and py_cli["pinned"] is True

    for ref in ("1.0.0", pub.manifest_digest):
        assert resolve_py(ref, reg).manifest_digest == pub.manifest_digest
        code, js, stderr = run_js(ref, reg)
        assert code == 0 and js["manifestDigest"] == pub.manifest_digest, stderr


class Recorder:
    """A transport that records every exchange the real one makes."""

    def __init__(self, inner: rc.HttpTransport) -> None:
        self.inner = inner
        self.exchanges: list[tuple[str, str, dict[str, str], int]] = []

    def request(self, method: str, url: str, headers: Any, limit: int) -> rc.Response:
        response = self.inner.request(method, url, headers, limit)
        self.exchanges.append((method, url, dict(headers), response.status))
        return response


def test_the_vectors_model_the_real_exchange(tls_token_registry: Registry) -> None:
    """The cold vector's conversation is the one the real registry and token server hold."""
    reg = tls_token_registry
    pub = publish(reg, "1.0.0", ["nightly"])
    assert reg.ca_file is not None and reg.token_server is not None
    recorder = Recorder(rc.HttpTransport(ca_file=str(reg.ca_file)))
    try:
        resolve_py("nightly", reg, transport=recorder)
    finally:
        recorder.inner.close()
    vector = json.loads((ROOT / "consume/vectors/ok-401-then-token.json").read_text())

    def shape(method: str, url: str, headers: Any, status: int) -> tuple[Any, ...]:
        for real, model in (
            (f"https://{reg.host}", "https://registry.test"),
            (reg.token_server.url, "https://auth.registry.test/token"),
            (f"service={reg.token_server.service}", "service=registry.test"),
            (pub.manifest_digest, "<manifest>"),
            (pub.config_digest, "<config>"),
        ):
            url = url.replace(real, model)
        sent = {k.lower() for k in headers}
        return method, url, status, "authorization" in sent, "accept" in sent

    model = vector["exchanges"]
    cfg = json.loads(model[2]["response"]["body"])["config"]["digest"]
    expected = [
        shape(
            x["request"]["method"],
            x["request"]["url"].replace(cfg, "<config>"),
            x["request"].get("headers", {}),
            x["response"]["status"],
        )
        for x in model
    ]
    assert [shape(*x) for x in recorder.exchanges] == expected


def test_known_realm_makes_a_cold_resolve_three_requests(tls_token_registry: Registry) -> None:
    """As for ghcr.io (built in), a known token realm skips the challenge round trip."""
    reg = tls_token_registry
    pub = publish(reg, "1.0.0", ["nightly"])
    assert reg.token_server is not None
    realm, service = reg.token_server.url, reg.token_server.service
    result = resolve_py("nightly", reg, token_realm=realm, token_service=service)
    assert (result.manifest_digest, result.requests) == (pub.manifest_digest, 3)
    code, js, stderr = run_js("nightly", reg, "--token-realm", realm, "--token-service", service)
    assert code == 0 and js["requests"] == 3, stderr
    # A wrong guess (the default service is the host, which this token server refuses)
    # costs one request, then the challenge is followed: nothing breaks.
    fallback = resolve_py("nightly", reg, token_realm=realm)
    assert (fallback.manifest_digest, fallback.requests) == (pub.manifest_digest, 5)


def test_both_refuse_once_the_registry_serves_a_corrupted_config_blob(
    tls_token_registry: Registry,
) -> None:
    reg = tls_token_registry
    pub = publish(reg, "1.0.0", ["1.0.0", "nightly"])
    assert resolve_py("nightly", reg).config_digest == pub.config_digest
    corrupt_blob_on_disk(reg, pub.config_digest)

    with pytest.raises(rc.DigestMismatch) as err:
        resolve_py("nightly", reg)
    assert pub.config_digest in err.value.message and err.value.exit_code == 3

    code, js, stderr = run_js("nightly", reg)
    assert code == 3, stderr
    assert js["error"] == "DigestMismatch" and js["family"] == "RepositoryError"

    code, py_cli, stderr = run_py_cli(pub.manifest_digest, reg)
    assert code == 3 and py_cli["error"] == "DigestMismatch", stderr


def test_both_refuse_corrupted_bytes_from_a_proxy_in_front_of_tls(
    tls_token_registry: Registry, fault_proxy: Any
) -> None:
    reg = tls_token_registry
    pub = publish(reg, "1.0.0", ["nightly"])
    proxy: FaultProxy = fault_proxy(reg)  # plain HTTP on loopback, TLS to the registry
    assert reg.token_server is not None
    reg.token_server.reset()

    clean = rc.resolve("nightly", registry=proxy.host, repository=REPO, plain_http=True)
    assert clean.manifest_digest == pub.manifest_digest
    # The library's own count is exact: what the proxy saw plus the token server's.
    assert clean.requests == len(proxy.requests) + len(reg.token_server.requests)

    proxy.corrupt_always(path=r"/blobs/")
    with pytest.raises(rc.DigestMismatch):
        rc.resolve("nightly", registry=proxy.host, repository=REPO, plain_http=True)
    code, js, stderr = run_js("nightly", proxy)
    assert code == 3 and js["error"] == "DigestMismatch", stderr

    proxy.clear_rules()
    proxy.corrupt_always(path=r"/manifests/")
    with pytest.raises(rc.DigestMismatch):
        rc.resolve("nightly", registry=proxy.host, repository=REPO, plain_http=True)
    code, js, stderr = run_js("nightly", proxy)
    assert code == 3 and js["error"] == "DigestMismatch", stderr


def test_transient_faults_are_retried_then_reported(
    tls_token_registry: Registry, fault_proxy: Any
) -> None:
    reg = tls_token_registry
    pub = publish(reg, "1.0.0", ["nightly"])
    proxy: FaultProxy = fault_proxy(reg)
    proxy.fail_next(1, 503, path=r"/manifests/")
    proxy.close_next(1, path=r"/blobs/")
    fast = {"sleep": lambda _s: None}
    result = rc.resolve("nightly", registry=proxy.host, repository=REPO, plain_http=True, **fast)
    assert result.manifest_digest == pub.manifest_digest
    proxy.fail_always(503)
    with pytest.raises(rc.RegistryUnreachable) as err:
        rc.resolve("nightly", registry=proxy.host, repository=REPO, plain_http=True, **fast)
    assert err.value.exit_code == 75
    code, js, stderr = run_js("nightly", proxy, "--attempts", "2")
    assert code == 75 and js["error"] == "RegistryUnreachable", stderr


# -- the cache: warm resolves and an unreachable registry -------------------------------------


def test_warm_resolve_is_one_head_and_the_cache_is_shared(
    tls_token_registry: Registry, tmp_path: Path
) -> None:
    reg = tls_token_registry
    pub = publish(reg, "1.0.0", ["1.0.0", "nightly"])
    cache_file = tmp_path / "cache.json"
    cold = resolve_py("nightly", reg, cache=rc.FileCache(str(cache_file)))
    assert (cold.requests, cold.cached) == (4, False)
    assert cache_file.stat().st_mode & 0o777 == 0o600

    warm = resolve_py("nightly", reg, cache=rc.FileCache(str(cache_file)))
    assert (warm.requests, warm.cached, warm.stale) == (1, True, False)
    assert warm.manifest_digest == pub.manifest_digest and warm.manifest == pub.release

    # The Node twin reads the cache the Python twin wrote: one HEAD for it too.
    code, js, stderr = run_js("nightly", reg, "--cache", str(cache_file))
    assert code == 0, stderr
    assert (js["requests"], js["cached"], js["manifestDigest"]) == (1, True, pub.manifest_digest)

    # The channel moves: HEAD, the new manifest by the digest the HEAD named, its blob.
    new = publish(reg, "1.1.0", ["1.1.0", "nightly"])
    moved = resolve_py(
        "nightly", reg, cache=rc.FileCache(str(cache_file)), installed_version="1.0.0"
    )
    assert (moved.requests, moved.cached, moved.manifest_digest) == (3, False, new.manifest_digest)
    code, js, stderr = run_js("nightly", reg, "--cache", str(cache_file))
    assert code == 0 and (js["requests"], js["cached"]) == (1, True), stderr


def test_registry_down_returns_the_cached_release_stale(
    tls_token_registry: Registry, tmp_path: Path
) -> None:
    reg = tls_token_registry
    pub = publish(reg, "1.0.0", ["nightly"])
    cache_file = tmp_path / "cache.json"
    resolve_py("nightly", reg, cache=rc.FileCache(str(cache_file)))
    reg.stop()

    stale = resolve_py("nightly", reg, cache=rc.FileCache(str(cache_file)))
    assert (stale.stale, stale.cached, stale.manifest_digest) == (True, True, pub.manifest_digest)
    with pytest.raises(rc.RegistryUnreachable):
        resolve_py("nightly", reg)

    code, js, stderr = run_js("nightly", reg, "--cache", str(cache_file), "--attempts", "1")
    assert code == 0 and js["stale"] is True and "could not be reached" in stderr
    code, js, stderr = run_js("nightly", reg, "--attempts", "1")
    assert code == 75 and js["error"] == "RegistryUnreachable", stderr


# -- auth, anti-rollback, rendering ----------------------------------------------------------


def test_private_package_needs_credentials_and_they_never_leak(registry_factory: Any) -> None:
    reg: Registry = registry_factory("token", tls=True, allow_anonymous_pull=False)
    pub = publish(reg, "1.0.0", ["nightly"])
    assert reg.credentials is not None
    with pytest.raises(rc.AuthError) as err:
        resolve_py("nightly", reg)
    assert "private" in (err.value.hint or "")
    result = resolve_py("nightly", reg, credentials=reg.credentials)
    assert result.manifest_digest == pub.manifest_digest
    assert reg.secrets_in(json.dumps(result.to_json())) == []

    code, js, stderr = run_js("nightly", reg)
    assert code == 1 and js["error"] == "AuthError", stderr
    user, password = reg.credentials
    env = _clean_env(ALGA_REGISTRY_USERNAME=user, ALGA_REGISTRY_PASSWORD=password)
    code, js, stderr = run_js("nightly", reg, env=env)
    assert code == 0 and js["manifestDigest"] == pub.manifest_digest, stderr
    assert reg.secrets_in(json.dumps(js) + stderr) == []
    code, js, stderr = run_js("nightly", reg, "--installed-version", "9.0.0", env=env)
    assert code == 3 and reg.secrets_in(json.dumps(js) + stderr) == []


def test_anti_rollback_against_the_registry(tls_token_registry: Registry) -> None:
    reg = tls_token_registry
    pub = publish(reg, "1.0.0", ["1.0.0", "nightly"])
    with pytest.raises(rc.RollbackRefused):
        resolve_py("nightly", reg, installed_version="1.1.0")
    pinned = resolve_py("1.0.0", reg, installed_version="1.1.0")
    assert (pinned.downgrade, pinned.manifest_digest) == (True, pub.manifest_digest)
    code, js, stderr = run_js("nightly", reg, "--installed-version", "1.1.0")
    assert code == 3 and js["error"] == "RollbackRefused", stderr
    code, js, stderr = run_js(pub.manifest_digest, reg, "--installed-version", "1.1.0")
    assert code == 0 and js["downgrade"] is True, stderr


def test_both_render_the_same_documents(tls_token_registry: Registry) -> None:
    reg = tls_token_registry
    publish(reg, "1.0.0", ["nightly"])
    result = resolve_py("nightly", reg)
    code, js, stderr = run_js("nightly", reg, "--render")
    assert code == 0, stderr
    assert js == {"apiVersion": "v1", "kind": "List", "items": rc.render_all(result.manifest)}
    kinds = [item["kind"] for item in js["items"]]
    assert kinds == ["ConfigMap"] * 6 + ["OCIRepository", "Kustomization"]
