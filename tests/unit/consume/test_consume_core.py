"""The consume library's pure core, its real transport on loopback, and its packaging rules.

consume/release_consume.py is one stdlib-only file that appliances vendor; these tests
also hold it to that: it imports and runs under ``python3 -S -I``, imports nothing
outside the standard library, and is clean under ``mypy --strict`` and ruff.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "consume"))
import release_consume as rc  # noqa: E402  (a single file, not a package: see consume/README.md)

MODULE = ROOT / "consume" / "release_consume.py"
MINIMAL = ROOT / "schemas" / "examples" / "valid" / "minimal.json"
SYSTEM_PYTHON = shutil.which("python3") or sys.executable


def _minimal() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(MINIMAL.read_text(encoding="utf-8"))
    return doc


# -- the file itself ----------------------------------------------------------------


def test_imports_only_the_standard_library() -> None:
    tree = ast.parse(MODULE.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    names.discard("__future__")
    assert names <= set(sys.stdlib_module_names), names - set(sys.stdlib_module_names)


def test_runs_under_python_S_I(tmp_path: Path) -> None:
    """No site-packages, no PYTHON* environment, no cwd on the path: the appliance's situation."""
    help_run = subprocess.run(
        [SYSTEM_PYTHON, "-S", "-I", str(MODULE), "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert help_run.returncode == 0, help_run.stderr
    assert "REF" in help_run.stdout and "exit codes" in help_run.stdout
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import release_consume as rc; "
        "assert 'site' not in sys.modules; "
        "print(rc.parse_ref('nightly').kind, rc.compare_versions('1.2.0', '1.10.0'))"
    )
    imported = subprocess.run(
        [SYSTEM_PYTHON, "-S", "-I", "-c", code, str(MODULE.parent)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == ["channel", "-1"]
    bad = subprocess.run(
        [SYSTEM_PYTHON, "-S", "-I", str(MODULE), "not:a-ref"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert bad.returncode == rc.EXIT_BAD_INPUT and "not a digest" in bad.stderr


def test_mypy_strict_and_ruff_are_clean() -> None:
    venv_bin = Path(sys.executable).parent
    mypy = subprocess.run(
        [str(venv_bin / "mypy"), "--strict", "--no-incremental", str(MODULE)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    ruff = subprocess.run(
        [str(venv_bin / "ruff"), "check", str(MODULE), str(MODULE.parent / "vectors")],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert ruff.returncode == 0, ruff.stdout
    fmt = subprocess.run(
        [str(venv_bin / "ruff"), "format", "--check", str(MODULE)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert fmt.returncode == 0, fmt.stdout


# -- references, versions, anti-rollback --------------------------------------------


@pytest.mark.parametrize(
    ("ref", "kind", "pinned"),
    [
        ("nightly", "channel", False),
        ("stable", "channel", False),
        ("1.4.0", "version", True),
        ("1.5.0-rc.1", "version", True),
        ("latest", "tag", False),
        ("1.0-rc5.1", "tag", False),
        ("sha256:" + "a" * 64, "digest", True),
    ],
)
def test_parse_ref(ref: str, kind: str, pinned: bool) -> None:
    parsed = rc.parse_ref(ref)
    assert (parsed.kind, parsed.pinned) == (kind, pinned)


@pytest.mark.parametrize("ref", ["", "sha256:abc", "SHA256:" + "a" * 64, "a b", "-x", "x" * 129])
def test_parse_ref_refuses(ref: str) -> None:
    with pytest.raises(rc.BadInput):
        rc.parse_ref(ref)


def test_semver_precedence_follows_the_spec() -> None:
    # The ordering example of semver.org, section 11, plus numeric (not text) comparison.
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.2.0",
        "1.10.0",
        "2.0.0",
    ]
    for i, low in enumerate(ordered):
        for high in ordered[i + 1 :]:
            assert rc.compare_versions(low, high) == -1, (low, high)
            assert rc.compare_versions(high, low) == 1, (high, low)
        assert rc.compare_versions(low, low) == 0
    with pytest.raises(rc.BadInput):
        rc.compare_versions("1.0", "1.0.0")


def test_check_rollback_is_the_anti_rollback_decision() -> None:
    assert rc.check_rollback("1.2.0", None, pinned=False) is False
    assert rc.check_rollback("1.3.0", "1.2.0", pinned=False) is False
    assert rc.check_rollback("1.2.0", "1.2.0", pinned=False) is False
    assert rc.check_rollback("1.1.0", "1.2.0", pinned=True) is True
    with pytest.raises(rc.RollbackRefused) as err:
        rc.check_rollback("1.1.0", "1.2.0", pinned=False, reference="stable")
    assert "stable" in err.value.message and "1.1.0" in err.value.hint  # type: ignore[operator]
    assert err.value.exit_code == rc.EXIT_REFUSED


def test_cache_decision() -> None:
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    assert rc.cache_decision(d1, d1, reachable=True) == "hit"
    assert rc.cache_decision(d1, d2, reachable=True) == "fetch"
    assert rc.cache_decision(d1, None, reachable=True) == "fetch"
    assert rc.cache_decision(None, d1, reachable=True) == "fetch"
    assert rc.cache_decision(d1, None, reachable=False) == "stale"
    assert rc.cache_decision(None, None, reachable=False) == "fail"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.9.9.9", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("ghcr.io", False),
        ("10.0.0.1:5000", False),
        ("127.0.0.1.evil.com", False),
        ("localhost.evil.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert rc.is_loopback(host) is loopback


def test_parse_challenge() -> None:
    got = rc.parse_challenge(
        'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull"'
    )
    assert got == {
        "scheme": "bearer",
        "realm": "https://ghcr.io/token",
        "service": "ghcr.io",
        "scope": "repository:a/b:pull",
    }
    assert rc.parse_challenge('Basic realm="x"') == {"scheme": "basic", "realm": "x"}
    assert rc.parse_challenge("") is None


# -- manifests and blobs ---------------------------------------------------------------


def _manifest(**config: Any) -> bytes:
    blob = b"{}"
    descriptor = {"mediaType": rc.RELEASE_CONFIG, "digest": rc.compute_digest(blob), "size": 2}
    descriptor.update(config)
    return json.dumps(
        {"schemaVersion": 2, "mediaType": rc.OCI_MANIFEST, "config": descriptor, "layers": []}
    ).encode()


def test_verify_manifest_accepts_a_release_manifest() -> None:
    data = _manifest()
    info = rc.verify_manifest(data, header_digest=rc.compute_digest(data))
    assert info.digest == rc.compute_digest(data) and info.config_size == 2
    sha512 = rc.compute_digest(data, "sha512")
    assert rc.verify_manifest(data, expected_digest=sha512).digest == sha512


@pytest.mark.parametrize(
    ("data", "kwargs", "error"),
    [
        (_manifest(), {"expected_size": 3}, rc.DigestMismatch),
        (_manifest(), {"header_digest": "sha256:" + "0" * 64}, rc.DigestMismatch),
        (b"\xef\xbb\xbf{}", {}, rc.InvalidManifest),  # a BOM is not JSON (JSON.parse agrees)
        (b'{"schemaVersion": NaN}', {}, rc.InvalidManifest),
        (b"[]", {}, rc.InvalidManifest),
        (_manifest(), {"content_type": rc.OCI_INDEX}, rc.UnexpectedMediaType),
        (_manifest(), {"content_type": rc.DOCKER_MANIFEST}, rc.UnexpectedMediaType),
        (_manifest(size=-1), {}, rc.InvalidManifest),
        (_manifest(size=True), {}, rc.InvalidManifest),
        (_manifest(digest="sha256:xyz"), {}, rc.InvalidManifest),
        (_manifest(size=rc.MAX_BYTES + 1), {}, rc.SizeLimitExceeded),
        (b'{"schemaVersion": 2, "config": {}}', {}, rc.UnexpectedMediaType),  # no media type at all
    ],
)
def test_verify_manifest_refuses(
    data: bytes, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        rc.verify_manifest(data, **kwargs)


def test_verify_blob() -> None:
    rc.verify_blob(b"abc", rc.compute_digest(b"abc"), 3)
    with pytest.raises(rc.DigestMismatch):
        rc.verify_blob(b"abd", rc.compute_digest(b"abc"), 3)
    with pytest.raises(rc.DigestMismatch):
        rc.verify_blob(b"abc", rc.compute_digest(b"abc"), 4)


def test_error_families_and_exit_codes() -> None:
    assert issubclass(rc.DigestMismatch, rc.RepositoryError)
    assert issubclass(rc.RollbackRefused, rc.RepositoryError)
    assert issubclass(rc.RegistryUnreachable, rc.DownloadError)
    assert issubclass(rc.AuthError, rc.DownloadError)
    assert rc.InvalidRelease(["/x: y"]).to_json()["problems"] == ["/x: y"]
    assert rc.RegistryUnreachable("x").exit_code == 75
    assert rc.NotFound("x").to_json()["family"] == "DownloadError"


# -- the release JSON and rendering ------------------------------------------------------


def test_contract_problems() -> None:
    doc = _minimal()
    assert rc.release_problems(doc) == []
    doc["config"]["tag"] = "other"
    profile = doc["valuesProfile"]
    key = f"email-service.{profile}.yaml"
    doc["profileValues"][key] = "image:\n  repository: x\n"
    assert rc.release_problems(doc) == [
        f"/config/tag: must equal version {doc['version']}",
        f"/profileValues/{key}: has no image.tag for the appliance to set",
    ]


def test_set_yaml_scalar_is_the_appliances_setter() -> None:
    text = "a:\n  b:\n    c: 1 # note\n  d: 2\ne: 3"
    assert rc.set_yaml_scalar(text, ["a", "b", "c"], '"x"') == 'a:\n  b:\n    c: "x"\n  d: 2\ne: 3'
    assert rc.set_yaml_scalar(text, ["e"], "4").endswith("e: 4")
    with pytest.raises(ValueError, match=r"a\.x"):
        rc.set_yaml_scalar(text, ["a", "x"], "1")
    # The appliance's quirk, kept on purpose: a blank line resets the nesting it tracks.
    with pytest.raises(ValueError):
        rc.set_yaml_scalar("image:\n  repository: r\n\n  tag: latest\n", ["image", "tag"], "1")
    # Only the first match changes, as there.
    assert rc.set_yaml_scalar("x: 1\nx: 2", ["x"], "9") == "x: 9\nx: 2"


def test_render_all_is_what_the_appliance_applies() -> None:
    doc = _minimal()
    docs = rc.render_all(doc)
    assert [d["kind"] for d in docs] == ["ConfigMap"] * 6 + ["OCIRepository", "Kustomization"]
    profile = doc["valuesProfile"]
    names = [d["metadata"]["name"] for d in docs[:6]]
    assert names == [f"appliance-values-{n}" for n in rc.SERVICES]
    assert {d["metadata"]["namespace"] for d in docs[:6]} == {"alga-system"}
    core = docs[0]["data"][f"alga-core.{profile}.yaml"]
    tag = doc["images"]["algaCore"]
    assert core.count(f'tag: "{tag}"') == 2 and core.endswith("\n")
    worker = docs[5]["data"][f"temporal-worker.{profile}.yaml"]
    assert f'tag: "{doc["images"]["temporalWorker"]}"' in worker
    source, kustomization = docs[6], docs[7]
    assert source["metadata"] == {"name": "alga-appliance", "namespace": "flux-system"}
    assert source["spec"]["url"] == f"oci://{doc['config']['repository']}"
    assert source["spec"]["ref"] == {"digest": doc["config"]["digest"]}
    assert kustomization["spec"]["path"] == "./base" and kustomization["spec"]["prune"] is True
    assert kustomization["spec"]["sourceRef"] == {"kind": "OCIRepository", "name": "alga-appliance"}


def test_render_fails_when_a_path_is_absent() -> None:
    doc = _minimal()
    doc["profileValues"][f"workflow-worker.{doc['valuesProfile']}.yaml"] = "replicaCount: 1\n"
    with pytest.raises(ValueError, match=r"image\.tag"):
        rc.render_values_configmaps(doc)


# -- caches ------------------------------------------------------------------------------


def test_file_cache_is_private_and_atomic(tmp_path: Path) -> None:
    cache = rc.FileCache(str(tmp_path / "sub" / "cache.json"))
    assert cache.load() is None
    cache.save({"schema": rc.CACHE_SCHEMA, "tokens": {"k": {"token": "t", "expiresAt": 1}}})
    assert cache.load() == {
        "schema": rc.CACHE_SCHEMA,
        "tokens": {"k": {"token": "t", "expiresAt": 1}},
    }
    assert (tmp_path / "sub" / "cache.json").stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path / "sub") == ["cache.json"]
    (tmp_path / "sub" / "cache.json").write_text("{not json")
    assert cache.load() is None


def test_corrupt_cache_entries_are_ignored() -> None:
    assert rc.verify_cached({"manifest": "!!", "config": "", "manifestDigest": "x"}) is None
    assert rc.verify_cached(None) is None


# -- the real transport, on loopback ------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}
    seen: ClassVar[list[tuple[str, str, str | None]]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        self.seen.append((self.command, self.path, self.headers.get("Authorization")))
        status, headers, body = self.routes.get(self.path, (404, {}, b"nope"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            if headers.get("Transfer-Encoding") == "chunked":
                for i in range(0, len(body), 1000):
                    part = body[i : i + 1000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.wfile.write(body)

    do_GET = do_HEAD = _answer


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.routes, _Handler.seen = {}, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_transport_reads_bodies_within_the_limit(server: str) -> None:
    _Handler.routes = {
        "/small": (200, {"X-Test": "1"}, b"hello"),
        "/big": (200, {}, b"x" * 5000),
        "/chunked": (200, {"Transfer-Encoding": "chunked"}, b"y" * 5000),
        "/redirect": (307, {"Location": "/small"}, b""),
    }
    with rc.HttpTransport(timeout=5) as transport:
        small = transport.request("GET", server + "/small", {"Accept": "a"}, 100)
        assert (small.status, small.body, small.headers["x-test"]) == (200, b"hello", "1")
        big = transport.request("GET", server + "/big", {}, 100)
        assert big.body == b""  # Content-Length above the limit: not read at all
        chunked = transport.request("GET", server + "/chunked", {}, 100)
        assert len(chunked.body) == 101  # cut at limit + 1 so the caller can refuse it
        head = transport.request("HEAD", server + "/small", {}, 0)
        assert (head.status, head.body) == (200, b"")
        redirect = transport.request("GET", server + "/redirect", {}, 100)
        assert redirect.status == 307  # transports never follow: the library decides
        again = transport.request("GET", server + "/small", {}, 100)
        assert again.body == b"hello"  # after the cut connections, a fresh one works


def test_http_transport_makes_no_tls_context_for_plain_http(
    server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Loading the system's roots costs ~20 ms of every resolve; plain HTTP never needs it.
    made: list[object] = []
    real = ssl.create_default_context

    def counting(*args: object, **kwargs: object) -> object:
        made.append(kwargs.get("cafile"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    _Handler.routes = {"/small": (200, {}, b"hello")}
    with rc.HttpTransport(timeout=5) as transport:
        assert transport.request("GET", server + "/small", {}, 100).body == b"hello"
        assert made == []
        assert transport._context is transport._context  # made once, on first use
        assert made == [None]
    # A CA file is still read up front: a bad one is refused before any request.
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(rc.BadInput, match="cannot read the CA file"):
        rc.HttpTransport(ca_file=str(bad))
    with pytest.raises(rc.BadInput, match="cannot read the CA file"):
        rc.HttpTransport(ca_file=str(tmp_path / "missing.pem"))


def test_http_transport_reports_an_unreachable_host() -> None:
    with rc.HttpTransport(timeout=2) as transport, pytest.raises(rc.RegistryUnreachable) as err:
        transport.request("GET", "http://127.0.0.1:9/v2/", {}, 10)
    assert err.value.retryable


def test_resolve_refuses_plain_http_to_a_remote_host() -> None:
    with pytest.raises(rc.BadInput, match="plain HTTP"):
        rc.resolve("nightly", registry="ghcr.io", plain_http=True)


def test_cli_json_error_shape(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(MODULE),
            "nightly",
            "--registry",
            "127.0.0.1:9",
            "--plain-http",
            "--attempts",
            "1",
            "--timeout",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("ALGA_")},
    )
    assert run.returncode == rc.EXIT_UNREACHABLE, run.stderr
    error = json.loads(run.stdout)
    assert error["error"] == "RegistryUnreachable" and error["family"] == "DownloadError"
    assert error["exitCode"] == 75


class _FirstUrl:
    """A transport that records the first URL asked for, then fails the download."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def request(self, method: str, url: str, headers: Any, limit: int) -> Any:
        self.urls.append(url)
        raise rc.RegistryUnreachable("stop here", retryable=False)


def test_plain_http_only_for_loopback_or_named_insecure_hosts() -> None:
    with pytest.raises(rc.BadInput, match="plain HTTP"):
        rc.resolve(
            "nightly", registry="registry.internal:5000", plain_http=True, transport=_FirstUrl()
        )
    transport = _FirstUrl()
    with pytest.raises(rc.RegistryUnreachable):
        rc.resolve(
            "nightly",
            registry="registry.internal:5000",
            plain_http=True,
            insecure_hosts=["registry.internal:5000"],
            transport=transport,
            attempts=1,
        )
    assert transport.urls[0].startswith("http://registry.internal:5000/v2/")


def test_a_legacy_installed_version_cannot_block_an_upgrade() -> None:
    """Releases before SemVer (1.0-rc5.1): any SemVer release is an upgrade from them."""
    assert rc.check_rollback("1.0.0", "1.0-rc5.1", pinned=False) is False
    assert rc.check_rollback("0.0.1", "1.0-rc5.1", pinned=False) is False
    with pytest.raises(rc.RollbackRefused):
        rc.check_rollback("1.0.0", "1.1.0", pinned=False)


def test_a_registry_that_drips_bytes_cannot_hold_a_request_past_its_timeout() -> None:
    import time as _time

    class Drip(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                _time.sleep(0.05)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        transport = rc.HttpTransport(timeout=1.0)
        started = _time.monotonic()
        with pytest.raises(rc.RegistryUnreachable, match="timed out"):
            transport.request("GET", f"http://127.0.0.1:{server.server_port}/v2/", {}, 4096)
        assert _time.monotonic() - started < 3.0  # each byte arrives well within the timeout
        transport.close()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.1:5000", True),
        ("0x7f000001", True),
        ("0177.0.0.1", True),
        ("2130706433", True),
        ("127.0.0.1", True),
        ("[::1]:80", True),
        ("localhost", True),
        ("10.0.0.1", False),
        ("0x0a000001", False),
        ("ghcr.io", False),
        ("127.0.0.1.example.com", False),
    ],
)
def test_loopback_spellings_agree_with_the_node_twin(host: str, loopback: bool) -> None:
    assert rc.is_loopback(host) is loopback
