"""Replay every conformance vector (consume/vectors/*.json) against the Python module.

The JavaScript twin replays the same files in consume/test/vectors.test.mjs. A
vector fixes the exact requests (method, URL, headers that matter, headers that
must be absent), their order and count, and the outcome.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "consume"))
import release_consume as rc  # noqa: E402  (a single file, not a package: see consume/README.md)

VECTORS = ROOT / "consume" / "vectors"
VECTOR_FILES = sorted(VECTORS.glob("*.json"))


class VectorMismatch(Exception):
    """The client made a request the vector does not expect."""


class ReplayTransport:
    """A transport that answers from a vector and checks every request against it."""

    def __init__(self, exchanges: list[dict[str, Any]]) -> None:
        self.exchanges = exchanges
        self.index = 0
        self.problems: list[str] = []

    def _fail(self, text: str) -> VectorMismatch:
        self.problems.append(text)
        return VectorMismatch(text)

    def request(self, method: str, url: str, headers: Mapping[str, str], limit: int) -> rc.Response:
        if self.index >= len(self.exchanges):
            raise self._fail(f"unexpected extra request #{self.index + 1}: {method} {url}")
        exchange = self.exchanges[self.index]
        self.index += 1
        want = exchange["request"]
        if (method, url) != (want["method"], want["url"]):
            raise self._fail(
                f"request #{self.index}: got {method} {url}, want {want['method']} {want['url']}"
            )
        sent = {k.lower(): v for k, v in headers.items()}
        for name, value in want.get("headers", {}).items():
            if sent.get(name.lower()) != value:
                raise self._fail(
                    f"request #{self.index}: header {name} is {sent.get(name.lower())!r}"
                )
        for name in want.get("absentHeaders", []):
            if name.lower() in sent:
                raise self._fail(f"request #{self.index}: header {name} must not be sent")
        answer = exchange["response"]
        if "error" in answer:
            raise rc.RegistryUnreachable(
                f"{method} {url}: {answer['error']}", retryable=answer["error"] != "tls"
            )
        out_headers = {k.lower(): v for k, v in answer.get("headers", {}).items()}
        if "bodyFill" in answer:
            fill = answer["bodyFill"]
            body = (fill["char"] * min(fill["length"], limit + 1)).encode()
        else:
            body = answer.get("body", "").encode()
        length = out_headers.get("content-length")
        if method == "HEAD" or (length is not None and int(length) > limit):
            body = b""
        return rc.Response(answer["status"], out_headers, body[: limit + 1])


def run_vector(vector: dict[str, Any]) -> tuple[dict[str, Any], ReplayTransport, Any]:
    """Resolve as the vector says; return (outcome, transport, cache document)."""
    given = vector["input"]
    transport = ReplayTransport(vector["exchanges"])
    cache = rc.MemoryCache(given["cache"])
    creds = given["credentials"]
    try:
        result = rc.resolve(
            given["ref"],
            registry=given["registry"],
            repository=given["repository"],
            installed_version=given["installedVersion"],
            credentials=rc.Credentials(creds["username"], creds["password"]) if creds else None,
            token_realm=given["tokenRealm"],
            attempts=given["attempts"],
            cache=cache,
            transport=transport,
            clock=lambda: float(given["now"]),
            sleep=lambda _seconds: None,
            trusted_keys=given["trustedKeys"],
        )
    except rc.ConsumeError as exc:
        outcome: dict[str, Any] = {
            "outcome": "error",
            "error": type(exc).__name__,
            "family": exc.to_json()["family"],
            "exitCode": exc.exit_code,
        }
        if isinstance(exc, rc.InvalidRelease):
            outcome["problems"] = exc.problems
        outcome["json"] = exc.to_json()
        return outcome, transport, cache.doc
    return {"outcome": "resolved", "result": result.to_json()}, transport, cache.doc


@pytest.mark.parametrize("path", VECTOR_FILES, ids=[p.stem for p in VECTOR_FILES])
def test_vector(path: Path) -> None:
    vector = json.loads(path.read_text(encoding="utf-8"))
    outcome, transport, cache_doc = run_vector(vector)
    assert transport.problems == [], transport.problems
    assert transport.index == len(vector["exchanges"]), (
        f"only {transport.index} of {len(vector['exchanges'])} exchanges were used"
    )
    expect = vector["expect"]
    assert outcome["outcome"] == expect["outcome"], outcome
    if expect["outcome"] == "error":
        for key in ("error", "family", "exitCode", "problems"):
            if key in expect:
                assert outcome[key] == expect[key], (key, outcome)
        for key, value in expect.get("fields", {}).items():
            assert outcome["json"][key] == value, (key, outcome["json"])
    else:
        got = outcome["result"]
        for key, value in expect["result"].items():
            assert got[key] == value, (key, got[key], value)
        assert got["requests"] == len(vector["exchanges"])
        if "rendered" in expect:  # what the appliance applies, Flux verification included
            keys = vector["input"]["trustedKeys"]
            assert rc.render_all(got["manifest"], trusted_keys=keys) == expect["rendered"]
    key = f"{vector['input']['registry']}/{vector['input']['repository']}"
    for ref, digest in expect.get("cacheAfter", {}).items():
        entry = (cache_doc or {}).get("releases", {}).get(key, {}).get(ref)
        assert (entry or {}).get("manifestDigest") == digest, (ref, entry)


def test_vectors_cover_what_the_issue_asks_for() -> None:
    names = {p.stem for p in VECTOR_FILES}
    assert {
        "tampered-config-blob",
        "tampered-manifest",
        "index-instead-of-manifest",
        "oversize-blob",
        "missing-required-fields",
        "refused-downgrade",
        "ok-401-then-token",
        "ok-redirect-cross-host",
        "registry-down-no-cache",
        "registry-down-with-cache",
        "warm-unchanged",
        "updater-cannot-set",  # issue 16: the in-cluster updater's setter semantics
    } <= names
    # issue 17: the rendered Flux objects verify, with one key and with two (a rotation)
    rendered = {
        p.stem
        for p in VECTOR_FILES
        if "rendered" in json.loads(p.read_text(encoding="utf-8"))["expect"]
    }
    assert {"ok-401-then-token", "signed-ok", "signed-by-second-trusted-key"} <= rendered


def test_vectors_are_generated() -> None:
    """The committed vectors are exactly what consume/vectors/generate.py writes."""
    proc = subprocess.run(
        [sys.executable, str(VECTORS / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_no_secret_in_any_result_error_or_cache() -> None:
    """Credentials never show up in a result, an error or the cache, failing or not."""
    for path in VECTOR_FILES:
        vector = json.loads(path.read_text(encoding="utf-8"))
        creds = vector["input"]["credentials"]
        if not creds:
            continue
        secret = creds["password"]
        outcome, _transport, cache_doc = run_vector(vector)
        assert secret not in json.dumps(outcome) and secret not in json.dumps(cache_doc)
        # The same resolve failing right after the credentials were used.
        second = vector["exchanges"][1]
        vector["exchanges"] = [vector["exchanges"][0], {**second, "response": {"error": "tls"}}]
        outcome, _transport, cache_doc = run_vector(vector)
        assert outcome["error"] == "RegistryUnreachable"
        assert secret not in json.dumps(outcome) and secret not in json.dumps(cache_doc)
