"""``--verify-charts``: the bundle's chart sources carry Flux's signature verification.

Version pin: each HelmRelease gets ``spec.chart.spec.verify`` (helm-controller copies it
into the HelmChart it creates in the HelmRepository's namespace, where source-controller
reads the Secret). Digest pin: each chart OCIRepository gets ``spec.verify`` (the
OCIRepository's own namespace). Both name the Secret the consume library renders in
flux-system; a chart source elsewhere is refused; the text edit keeps the overlay's lines.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from steps.bundle.checks import check_built_objects
from steps.bundle.flux import (
    TRUSTED_KEYS_SECRET,
    chart_verification,
    render_bundle,
)
from steps.config import KNOWN_CHARTS
from steps.errors import BadInput
from tests.unit.bundle.test_bundle_flux import (  # noqa: F401 (the overlay fixture)
    HELM_REPO,
    chart_set,
    docs,
    helm_release,
    overlay,
    release_file,
)

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "consume"))
import release_consume as rc  # noqa: E402  (a single file, not a package)

VERIFY = {"provider": "cosign", "secretRef": {"name": "alga-appliance-trusted-keys"}}


def _release_names() -> list[str]:
    return sorted(p.stem for p in (ROOT / "flux" / "base" / "releases").glob("*.yaml"))


def test_the_secret_is_the_one_the_appliance_renders_in_flux_system() -> None:
    assert chart_verification() == VERIFY
    assert TRUSTED_KEYS_SECRET == rc.TRUSTED_KEYS_SECRET
    assert rc.FLUX_NAMESPACE == "flux-system"


def test_version_pin_adds_chart_spec_verify_keeping_the_text(
    overlay: dict[str, bytes],  # noqa: F811
) -> None:
    plain = render_bundle(overlay, chart_set(), "version")
    verified = render_bundle(overlay, chart_set(), "version", verify_charts=True)
    assert verified.reserialised == ()  # spliced into the text, comments kept
    assert sorted(verified.changed) == sorted(plain.changed)
    for name in _release_names():
        path = release_file(name)
        before = docs(plain.files, path)[0]
        after = docs(verified.files, path)[0]
        assert after["spec"]["chart"]["spec"]["verify"] == VERIFY
        del after["spec"]["chart"]["spec"]["verify"]
        assert after == before  # nothing else changed
        added = verified.files[path].decode().count("\n") - plain.files[path].decode().count("\n")
        assert added == 4  # verify:, provider:, secretRef:, name:
    # the HelmRepository is where the HelmChart (and so the Secret) lives
    repo = docs(verified.files, "base/charts/helm-repository.yaml")[0]
    assert repo["metadata"]["namespace"] == "flux-system"
    # without the flag nothing verifies (today's appliances have no such Secret)
    for name in _release_names():
        assert "verify" not in docs(plain.files, release_file(name))[0]["spec"]["chart"]["spec"]


def test_digest_pin_adds_spec_verify_to_each_chart_oci_repository(
    overlay: dict[str, bytes],  # noqa: F811
) -> None:
    verified = render_bundle(overlay, chart_set(), "digest", verify_charts=True)
    repo_docs = docs(verified.files, "base/charts/helm-repository.yaml")
    sources = [d for d in repo_docs if d["kind"] == "OCIRepository"]
    assert len(sources) == len(KNOWN_CHARTS)
    for source in sources:
        assert source["metadata"]["namespace"] == "flux-system"
        assert source["spec"]["verify"] == VERIFY
    for name in _release_names():  # the HelmReleases point at them; nothing to verify there
        assert "chart" not in docs(verified.files, release_file(name))[0]["spec"]
    plain = render_bundle(overlay, chart_set(), "digest")
    assert all(
        "verify" not in d["spec"] for d in docs(plain.files, "base/charts/helm-repository.yaml")
    )


def test_an_overlay_verify_is_replaced_by_the_appliance_s(
    overlay: dict[str, bytes],  # noqa: F811
) -> None:
    path = release_file("pgbouncer")
    text = overlay[path].decode()
    assert "      sourceRef:\n" in text
    own = text.replace(
        "      sourceRef:\n",
        "      verify:\n        provider: notation\n      sourceRef:\n",
        1,
    )
    changed = {**overlay, path: own.encode()}
    rendered = render_bundle(changed, chart_set(), "version", verify_charts=True)
    assert docs(rendered.files, path)[0]["spec"]["chart"]["spec"]["verify"] == VERIFY
    assert rendered.reserialised == ()  # replaced in place, the comments kept
    assert b"# pinned by the publish step" in rendered.files[path]


def test_a_chart_source_outside_flux_system_is_refused(
    overlay: dict[str, bytes],  # noqa: F811
) -> None:
    moved = {
        path: data.replace(b"namespace: flux-system", b"namespace: charts")
        for path, data in overlay.items()
        if path.startswith(("base/charts/", "base/releases/"))
    }
    files = {**overlay, **moved}
    render_bundle(files, chart_set(), "version")  # fine without verification
    for pin in ("version", "digest"):
        with pytest.raises(BadInput) as refused:
            render_bundle(files, chart_set(), pin, verify_charts=True)  # type: ignore[arg-type]
        assert "is not in flux-system" in refused.value.message
        assert "alga-appliance-trusted-keys" in refused.value.message


def test_the_built_objects_must_still_verify() -> None:
    """What kustomize built is checked: a patch that drops the verification is refused."""
    verified = helm_release(verify=VERIFY)
    assert (
        check_built_objects(
            {"base": [HELM_REPO, verified]}, chart_set(), "version", verify_charts=True
        )
        == []
    )
    problems = check_built_objects(
        {"base": [HELM_REPO, helm_release()]}, chart_set(), "version", verify_charts=True
    )
    assert any("does not verify the chart's signature" in p for p in problems), problems
    assert any("spec.chart.spec.verify" in p for p in problems), problems
    other = helm_release(verify={"provider": "cosign", "secretRef": {"name": "mine"}})
    assert check_built_objects(
        {"base": [HELM_REPO, other]}, chart_set(), "version", verify_charts=True
    )
    # without the flag, a verification is not required (nor refused)
    assert check_built_objects({"base": [HELM_REPO, verified]}, chart_set(), "version") == []


def test_the_rendered_bundle_loads_as_yaml(overlay: dict[str, bytes]) -> None:  # noqa: F811
    for pin in ("version", "digest"):
        rendered = render_bundle(overlay, chart_set(), pin, verify_charts=True)  # type: ignore[arg-type]
        for path in rendered.changed:
            list(yaml.safe_load_all(rendered.files[path]))
