"""The Flux objects that verify signatures, as Flux itself would take them.

Two real oracles:

- **The Flux CRDs** (``.tools/flux-crds``, written by ``scripts/flux-crds.sh``: controller-gen
  v0.21.0 over the API modules the pinned flux v2.9.5 builds with -- source-controller/api
  v1.9.5, helm-controller/api v1.6.4, kustomize-controller/api v1.9.5 -- which is how Flux
  makes the CRDs it installs; the schemas came out identical to the files in
  source-controller v1.9.1 and helm-controller v1.6.3). Each object is validated against
  its version's ``openAPIV3Schema`` with unknown fields refused (the API server would prune
  them silently, which hides a misspelt ``verify``). CEL rules (``x-kubernetes-validations``)
  are not evaluated; none of them concerns ``verify`` (the HelmRelease chart/chartRef rule is
  the publisher's own check).
- **The flux CLI** (v2.9.5): ``flux create source oci --verify-provider cosign
  --verify-secret-ref ... --export`` writes the OCIRepository the consume library renders,
  and ``flux build kustomization`` builds the bundle published with ``--verify-charts``.

What is checked: the consume twins' render with one and with two trusted keys (a rotation)
-- the Secret of ``*.pub`` keys in the OCIRepository's namespace, the OCIRepository's
``spec.verify`` -- and the bundle with ``--verify-charts`` in both pin modes, built with the
real kustomize as Flux builds it: every HelmRelease's ``spec.chart.spec.verify`` (and the
HelmChart helm-controller makes of it, in its HelmRepository's namespace, where the Secret
is) or every chart OCIRepository's ``spec.verify``.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.harness.registry import Registry
from tests.harness.tools import Tools
from tests.helpers import registry_env
from tests.integration.test_bundle_publish import (  # noqa: F401 (fixtures)
    build_like_flux,
    chart_artifacts,
    charts_json,
    publish,
    source,
)
from tests.integration.test_flux_oracle import flux

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "consume"))
import release_consume as rc  # noqa: E402  (a single file, not a package)

VERIFY = {"provider": "cosign", "secretRef": {"name": "alga-appliance-trusted-keys"}}


# -- the CRDs as JSON Schemas ----------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """An openAPIV3Schema as a JSON Schema that refuses unknown fields."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def _crds(folder: Path) -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> the strict JSON Schema of that served version."""
    out: dict[tuple[str, str], Any] = {}
    for path in sorted(folder.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = _strict(version["schema"]["openAPIV3Schema"])
                out[(f"{group}/{version['name']}", kind)] = schema
    return out


def crd_errors(tools: Tools, obj: dict[str, Any]) -> list[str]:
    schema = _crds(tools.flux_crds).get((obj["apiVersion"], obj["kind"]))
    assert schema is not None, f"no served CRD version for {obj['apiVersion']} {obj['kind']}"
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)
    ]


def test_the_crds_are_the_served_versions_and_refuse_what_flux_would() -> None:
    tools = Tools()
    served = set(_crds(tools.flux_crds))
    assert {
        ("source.toolkit.fluxcd.io/v1", "OCIRepository"),
        ("source.toolkit.fluxcd.io/v1", "HelmRepository"),
        ("source.toolkit.fluxcd.io/v1", "HelmChart"),
        ("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
        ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
    } <= served
    # Flux 2.8 (source-controller 1.8.0) removed v1beta2: an OCIRepository of it is not served
    assert ("source.toolkit.fluxcd.io/v1beta2", "OCIRepository") not in served
    good = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": "x", "namespace": "flux-system"},
        "spec": {"interval": "1m", "url": "oci://r/x", "ref": {"digest": "sha256:" + "b" * 64}},
    }
    assert crd_errors(tools, {**good, "spec": {**good["spec"], "verify": VERIFY}}) == []
    for bad, says in (
        ({"provider": "cosgn", "secretRef": {"name": "k"}}, "is not one of"),
        ({"provider": "cosign", "secretRef": {}}, "'name' is a required property"),
        ({"secretRef": {"name": "k"}}, "'provider' is a required property"),
        ({"provider": "cosign", "secretRf": {"name": "k"}}, "Additional properties"),
    ):
        errors = crd_errors(tools, {**good, "spec": {**good["spec"], "verify": bad}})
        assert any(says in e for e in errors), (bad, errors)


# -- the consume side: the OCIRepository alga-appliance and its Secret -----------------------


@cache
def _keys() -> list[rc.TrustedKey]:
    """Two fresh ECDSA P-256 public keys (the release key and its successor)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pems = [
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
        for _ in range(2)
    ]
    return [k for pem in pems for k in rc.parse_public_keys(pem)]


def _release() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (ROOT / "schemas" / "examples" / "valid" / "minimal.json").read_text(encoding="utf-8")
    )
    return doc


def _node_render(release: dict[str, Any], pems: list[str]) -> Any:
    script = (
        "import { pathToFileURL } from 'node:url';"
        "const rc = await import(pathToFileURL(process.env.CONSUME_MODULE).href);"
        "let input = ''; for await (const chunk of process.stdin) input += chunk;"
        "const [release, keys] = JSON.parse(input);"
        "process.stdout.write(JSON.stringify(rc.renderAll(release, { trustedKeys: keys })));"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        env={**os.environ, "CONSUME_MODULE": str(ROOT / "consume" / "release-consume.mjs")},
        input=json.dumps([release, pems]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("count", [1, 2])
def test_the_consume_render_with_trusted_keys_is_what_flux_accepts(
    tools: Tools, count: int
) -> None:
    keys = _keys()[:count]
    release = _release()
    items = rc.render_all(release, trusted_keys=keys)
    assert _node_render(release, [k.pem() for k in keys]) == items  # both twins alike
    by_kind = {i["kind"]: i for i in items if i["kind"] != "ConfigMap"}
    assert list(by_kind) == ["Secret", "OCIRepository", "Kustomization"]  # the Secret first
    for kind in ("OCIRepository", "Kustomization"):
        assert crd_errors(tools, by_kind[kind]) == [], kind
    oci, secret = by_kind["OCIRepository"], by_kind["Secret"]
    assert oci["spec"]["verify"] == VERIFY
    # source-controller reads the Secret from the OCIRepository's own namespace
    assert secret["metadata"] == {"name": VERIFY["secretRef"]["name"], "namespace": "flux-system"}
    assert oci["metadata"]["namespace"] == secret["metadata"]["namespace"]
    # every key Flux tries ends in .pub; each is a valid Secret key holding one PEM key
    assert len(secret["data"]) == count
    for name, value in secret["data"].items():
        assert name.endswith(".pub") and all(c.isalnum() or c in "-._" for c in name)
        (parsed,) = rc.parse_public_keys(base64.b64decode(value).decode("ascii"))
        assert name == parsed.key_id.replace(":", "-") + ".pub"
    assert {n.removesuffix(".pub") for n in secret["data"]} == {
        k.key_id.replace(":", "-") for k in keys
    }
    # without keys: no Secret, no verify (what a consumer without keys applies today)
    plain = rc.render_all(release)
    assert [i["kind"] for i in plain if i["kind"] == "Secret"] == []
    assert "verify" not in next(i for i in plain if i["kind"] == "OCIRepository")["spec"]


def test_the_oci_repository_is_what_flux_create_source_oci_writes(
    tools: Tools, tmp_path: Path
) -> None:
    release = _release()
    ours = rc.render_oci_repository(release, trusted_keys=_keys()[:1])
    done = flux(
        tools,
        "create",
        "source",
        "oci",
        "alga-appliance",
        "--namespace",
        "flux-system",
        "--url",
        f"oci://{release['config']['repository']}",
        "--digest",
        release["config"]["digest"],
        "--interval",
        "1m",
        "--verify-provider",
        "cosign",
        "--verify-secret-ref",
        "alga-appliance-trusted-keys",
        "--export",
        home=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    (theirs,) = [d for d in yaml.safe_load_all(done.stdout) if d]
    # the CLI also writes the CRD's default provider (generic: no cloud credentials)
    assert theirs["spec"].pop("provider") == "generic"
    assert theirs == ours


# -- the publisher side: the bundle's chart sources ---------------------------------------------


def _helm_chart_of(release: dict[str, Any]) -> dict[str, Any]:
    """The HelmChart helm-controller makes of a HelmRelease's chart template
    (``buildHelmChartFromTemplate``): in the sourceRef's namespace (else the release's),
    named ``<namespace>-<name>``, the template's ``verify`` copied."""
    template = release["spec"]["chart"]["spec"]
    namespace = template["sourceRef"].get("namespace") or release["metadata"]["namespace"]
    spec = {
        "chart": template["chart"],
        "version": template["version"],
        "sourceRef": {k: v for k, v in template["sourceRef"].items() if k != "namespace"},
        "interval": template.get("interval", release["spec"]["interval"]),
    }
    if "verify" in template:
        spec["verify"] = copy.deepcopy(template["verify"])
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmChart",
        "metadata": {
            "name": f"{release['metadata']['namespace']}-{release['metadata']['name']}",
            "namespace": namespace,
        },
        "spec": spec,
    }


@pytest.mark.parametrize("pin", ["version", "digest"])
def test_a_bundle_with_verified_charts_builds_and_passes_the_crds(
    registry: Registry,
    source: Path,  # noqa: F811
    charts_json: Path,  # noqa: F811
    tools: Tools,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pin: str,
) -> None:
    rendered = tmp_path / "rendered"
    with registry_env(monkeypatch, registry):
        done = publish(
            registry,
            source,
            charts_json,
            tools,
            "--verify-charts",
            "--chart-pin",
            pin,
            "--dry-run",
            str(rendered),
        )
    assert done.code == 0, done.stderr
    assert done.json()["verifyCharts"] is True
    built = build_like_flux(tools, rendered)
    flux_objects = [
        o for docs in built.values() for o in docs if ".toolkit.fluxcd.io/" in o["apiVersion"]
    ]
    for obj in flux_objects:
        assert crd_errors(tools, obj) == [], (obj["kind"], obj["metadata"]["name"])
    releases = [o for o in flux_objects if o["kind"] == "HelmRelease"]
    assert len(releases) == 6
    if pin == "version":
        for hr in releases:
            assert hr["spec"]["chart"]["spec"]["verify"] == VERIFY
            chart = _helm_chart_of(hr)
            assert crd_errors(tools, chart) == [], chart["metadata"]["name"]
            assert chart["spec"]["verify"] == VERIFY
            # where source-controller reads the Secret: where the appliance renders it
            assert chart["metadata"]["namespace"] == rc.FLUX_NAMESPACE
    else:
        sources = [o for o in flux_objects if o["kind"] == "OCIRepository"]
        assert len(sources) == 6
        for oci in sources:
            assert oci["spec"]["verify"] == VERIFY
            assert oci["metadata"]["namespace"] == rc.FLUX_NAMESPACE
        for hr in releases:
            assert "chart" not in hr["spec"] and hr["spec"]["chartRef"]["namespace"] == (
                rc.FLUX_NAMESPACE
            )
    # the real flux builds the stage that holds the HelmReleases, verify fields and all
    stage = next(
        o
        for o in flux_objects
        if o["kind"] == "Kustomization" and o["metadata"]["name"] == "alga-core"
    )
    file = tmp_path / "alga-core.yaml"
    file.write_text(yaml.safe_dump(stage), encoding="utf-8")
    by_flux = flux(
        tools,
        "build",
        "kustomization",
        "alga-core",
        "--path",
        str(rendered / stage["spec"]["path"].removeprefix("./")),
        "--kustomization-file",
        str(file),
        "--dry-run",
        home=tmp_path,
    )
    assert by_flux.returncode == 0, by_flux.stderr
    for doc in yaml.safe_load_all(by_flux.stdout):
        if doc and doc["kind"] == "HelmRelease" and pin == "version":
            assert doc["spec"]["chart"]["spec"]["verify"] == VERIFY
