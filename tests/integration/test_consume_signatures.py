"""Release signatures against the real registry: both consume twins, the real cosign CLI.

A release is pushed as the publisher pushes it (tests/integration/test_consume_registry's
``publish``), then signed -- by ``tests/cosign_format`` (``cryptography``, cosign's layout)
or by the real ``cosign sign --key … --tlog-upload=false`` -- or forged the way someone
with push rights but without the release key can: a re-pushed tag, a signature moved
from another release, a signature by another key, a payload altered on the registry's
disk. Both twins (the Python API, its CLI under ``python3 -S -I``, the Node CLI) must
accept exactly the releases a trusted key signed and refuse the rest with exit 3.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from steps.oci import Digest
from steps.oci import mediatypes as mt
from steps.release import manifest as rm
from tests import cosign_format as cf
from tests.harness.registry import Registry
from tests.harness.tools import PROJECT_ROOT, missing_component
from tests.helpers import client_for
from tests.integration.test_consume_registry import (
    REPO,
    _clean_env,
    corrupt_blob_on_disk,
    publish,
    rc,
    release_doc,
    resolve_py,
    run_js,
    run_py_cli,
)

pytestmark = pytest.mark.integration


def cosign() -> str:
    local = PROJECT_ROOT / ".tools" / "bin" / "cosign"
    found = str(local) if local.is_file() else shutil.which("cosign")
    if found is None:
        missing_component("cosign", "the real cosign CLI (go install …/cosign/v2/cmd/cosign)")
    return found


def run_cosign(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [cosign(), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def key_file(tmp_path: Path, name: str, *keys: Any) -> Path:
    path = tmp_path / f"{name}.pem"
    path.write_text("".join(cf.public_pem(k) for k in keys), encoding="ascii")
    return path


def both_refuse(reg: Registry, ref: str, keys: Path, error: str) -> None:
    """The Python API, its CLI under -S -I and the Node CLI refuse ``ref`` with ``error``."""
    with pytest.raises(rc.ConsumeError) as err:
        resolve_py(ref, reg, trusted_keys=[keys.read_text()])
    assert type(err.value).__name__ == error and err.value.exit_code == 3, err.value.message
    code, js, stderr = run_js(ref, reg, "--trusted-key", str(keys))
    assert code == 3 and js["error"] == error, stderr
    code, py, stderr = run_py_cli(ref, reg, "--trusted-key", str(keys))
    assert code == 3 and py["error"] == error, stderr


def both_accept(reg: Registry, ref: str, keys: Path, signed_by: str) -> str:
    result = resolve_py(ref, reg, trusted_keys=[keys.read_text()])
    assert result.signed_by == signed_by
    code, js, stderr = run_js(ref, reg, "--trusted-key", str(keys))
    assert code == 0 and js["signedBy"] == signed_by, stderr
    assert js == result.to_json()
    code, py, stderr = run_py_cli(ref, reg, "--trusted-key", str(keys))
    assert code == 0 and py["signedBy"] == signed_by, stderr
    return result.manifest_digest


def test_unsigned_is_refused_and_signed_accepted_also_by_the_second_of_two_keys(
    tls_token_registry: Registry, tmp_path: Path
) -> None:
    reg = tls_token_registry
    pub = publish(reg, "1.0.0", ["1.0.0", "nightly"])
    old, new = cf.new_key(), cf.new_key()
    only_old = key_file(tmp_path, "old", old)
    rotation = key_file(tmp_path, "rotation", old, new)

    both_refuse(reg, "1.0.0", only_old, "Unsigned")
    # Without trusted keys nothing changes: the same release resolves, unchecked.
    code, js, stderr = run_js("1.0.0", reg)
    assert code == 0 and js["signedBy"] is None, stderr

    with client_for(reg) as client:
        cf.sign_artifact(client, REPO, pub.manifest_digest, new)
    both_refuse(reg, "1.0.0", only_old, "UntrustedSignature")
    assert both_accept(reg, "1.0.0", rotation, cf.key_id(new)) == pub.manifest_digest
    assert both_accept(reg, pub.manifest_digest, rotation, cf.key_id(new)) == pub.manifest_digest


def test_a_forged_re_push_is_refused_by_both_twins(
    tls_token_registry: Registry, tmp_path: Path
) -> None:
    """Someone with push rights but not the key: every way of faking it is exit 3."""
    reg = tls_token_registry
    release_key, attacker = cf.new_key(), cf.new_key()
    keys = key_file(tmp_path, "release", release_key)
    good = publish(reg, "1.0.0", ["1.0.0"])
    with client_for(reg) as client:
        cf.sign_artifact(client, REPO, good.manifest_digest, release_key)
    both_accept(reg, "1.0.0", keys, cf.key_id(release_key))

    # The tag re-pushed with other content (another image): no signature for the new digest.
    forged_doc = release_doc("1.0.0")
    forged_doc["images"] = {**forged_doc["images"], "algaCore": "deadbeef"}
    config = rm.manifest_bytes(forged_doc)
    manifest = rm.release_oci_manifest(config, annotations=rm.release_annotations(forged_doc))
    with client_for(reg) as client:
        client.push_blob(REPO, config)
        forged = str(client.put_manifest(REPO, "1.0.0", manifest, mt.OCI_MANIFEST))
    assert forged != good.manifest_digest
    both_refuse(reg, "1.0.0", keys, "Unsigned")

    # The genuine signature copied over: it names the genuine digest.
    with client_for(reg) as client:
        genuine = json.loads(client.get_manifest(REPO, cf.signature_tag(good.manifest_digest)).data)
        layer = genuine["layers"][0]
        payload = client.get_blob(REPO, Digest.parse(layer["digest"]))
        cf.attach(client, REPO, forged, [(payload, layer["annotations"][cf.SIGNATURE_ANNOTATION])])
    both_refuse(reg, "1.0.0", keys, "SignatureDigestMismatch")

    # The forger signs with a key of their own: replaces the moved one.
    with client_for(reg) as client:
        body = cf.payload(f"{reg.host}/{REPO}", forged)
        cf.attach(client, REPO, forged, [(body, cf.sign(attacker, body))], replace=True)
    both_refuse(reg, "1.0.0", keys, "UntrustedSignature")

    # The genuine release's payload altered where the registry keeps it.
    both_accept(reg, good.manifest_digest, keys, cf.key_id(release_key))
    corrupt_blob_on_disk(reg, layer["digest"])
    both_refuse(reg, good.manifest_digest, keys, "BadSignature")


def test_signatures_made_by_the_real_cosign_are_accepted_and_ours_verify_with_cosign(
    registry: Registry, tmp_path: Path
) -> None:
    """The independent oracle both ways: cosign signs, both twins accept; our test-side
    signatures pass ``cosign verify --key``, and fail it under another key."""
    reg = registry  # plain HTTP on loopback: go-containerregistry allows it for localhost
    env = {**_clean_env(), "COSIGN_PASSWORD": "test-only-password", "HOME": str(tmp_path)}
    assert run_cosign("generate-key-pair", env=env, cwd=tmp_path).returncode == 0
    pub = publish(reg, "1.0.0", ["1.0.0"])
    ref = f"{reg.host}/{REPO}@{pub.manifest_digest}"
    signed = run_cosign(
        "sign", "--key", "cosign.key", "--tlog-upload=false", "--yes", ref, env=env, cwd=tmp_path
    )
    assert signed.returncode == 0, signed.stderr
    pem = (tmp_path / "cosign.pub").read_text()
    expected = rc.parse_public_keys(pem)[0].key_id
    stranger = key_file(tmp_path, "stranger", cf.new_key())
    for trusted, want in ((tmp_path / "cosign.pub", 0), (stranger, 3)):
        args = ["--trusted-key", str(trusted)]
        code, js, stderr = run_js("1.0.0", reg, *args)
        assert code == want, stderr
        code, py, stderr = run_py_cli("1.0.0", reg, *args)
        assert code == want, stderr
        if want == 0:
            assert js["signedBy"] == py["signedBy"] == expected
        else:
            assert js["error"] == py["error"] == "UntrustedSignature"

    other = publish(reg, "1.1.0", ["1.1.0"])
    ours = cf.new_key()
    with client_for(reg) as client:
        cf.sign_artifact(client, REPO, other.manifest_digest, ours)
    verify = ["verify", "--insecure-ignore-tlog=true", "--allow-insecure-registry"]
    target = f"{reg.host}/{REPO}@{other.manifest_digest}"
    ours_pem = str(key_file(tmp_path, "ours", ours))
    accepted = run_cosign(*verify, "--key", ours_pem, target, env=env, cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    claims = json.loads(accepted.stdout)
    assert claims[0]["critical"]["image"]["docker-manifest-digest"] == other.manifest_digest
    theirs_pem = str(tmp_path / "cosign.pub")
    refused = run_cosign(*verify, "--key", theirs_pem, target, env=env, cwd=tmp_path)
    assert refused.returncode != 0 and "no matching signatures" in refused.stderr.lower()


def test_the_key_file_next_to_the_library_and_the_environment_default(
    tls_token_registry: Registry, tmp_path: Path
) -> None:
    reg = tls_token_registry
    key = cf.new_key()
    pub = publish(reg, "1.0.0", ["1.0.0"])
    vendored = tmp_path / "vendored"
    vendored.mkdir()
    for name in ("release_consume.py", "release-consume.mjs"):
        shutil.copy(PROJECT_ROOT / "consume" / name, vendored / name)
    key_file(vendored, "trusted-keys", key)  # consume/trusted-keys.pem, as shipped
    flags = ["--repository", REPO, "--registry", reg.host, "--ca-file", str(reg.ca_file), "--json"]
    runs = {
        "py": ["python3", "-S", "-I", str(vendored / "release_consume.py")],
        "js": ["node", str(vendored / "release-consume.mjs")],
    }

    def run(argv: list[str], env: dict[str, str]) -> tuple[int, Any]:
        proc = subprocess.run(
            [*argv, "1.0.0", *flags], capture_output=True, text=True, check=False, env=env
        )
        return proc.returncode, json.loads(proc.stdout)

    for argv in runs.values():
        code, out = run(argv, _clean_env())
        assert code == 3 and out["error"] == "Unsigned"
    with client_for(reg) as client:
        cf.sign_artifact(client, REPO, pub.manifest_digest, key)
    for argv in runs.values():
        code, out = run(argv, _clean_env())
        assert code == 0 and out["signedBy"] == cf.key_id(key)
    # The environment default (a ':'-separated list) takes precedence over the shipped file.
    other = key_file(tmp_path, "other", cf.new_key())
    env = _clean_env(ALGA_TRUSTED_KEYS=f"{other}:{other}")
    for argv in runs.values():
        code, out = run(argv, env)
        assert code == 3 and out["error"] == "UntrustedSignature"
    assert os.path.exists(vendored / "trusted-keys.pem")
