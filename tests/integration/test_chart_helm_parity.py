"""Chart manifests carry the annotations `helm push` sets: checked against the real helm v4
pushing the very same .tgz to the same registry."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from steps.charts import publish as charts
from steps.config import KNOWN_CHARTS
from steps.oci import mediatypes as mt
from steps.oci.reference import Digest
from tests.harness.registry import Registry
from tests.helpers import client_for
from tests.integration.test_charts_publish import run_library

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "charts"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """The reference charts, two of them with richer metadata (e-mails, a maintainer
    without a name, an annotation that overrides a generated one and one that may not)."""
    src = tmp_path / "src"
    for name in KNOWN_CHARTS:
        shutil.copytree(EXAMPLES / name, src / "charts" / name, symlinks=True)
    lines = ["charts:"] + [f"  {n}: charts/{n}" for n in KNOWN_CHARTS]
    (src / "release.yaml").write_text("\n".join(lines) + "\noverlay: flux\n")
    chart = src / "charts" / "email-service" / "Chart.yaml"
    text = chart.read_text()
    head = text[: text.index("maintainers:")]
    chart.write_text(
        head + "maintainers:\n  - name: Nine Minds\n    email: ops@nineminds.example\n"
        "  - email: oncall@nineminds.example\n  - name: Robot\n"
        "annotations:\n  org.opencontainers.image.url: https://override.example\n"
        "  org.opencontainers.image.title: not-allowed\n  artifacthub.io/license: MIT\n"
    )
    return src


def test_annotations_match_helm_push_of_the_same_archive(
    registry: Registry, source: Path, tmp_path: Path, helm: str
) -> None:
    results, _ = run_library(registry, source)
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "HELM_REGISTRY_CONFIG": str(tmp_path / "registry.json"),
        "HELM_CACHE_HOME": str(tmp_path / "cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "config"),
    }
    compared = 0
    with client_for(registry) as client:
        for result in results:
            repo = f"nine-minds/charts/{result.name}"
            ours = client.get_manifest(repo, result.version).json()
            layer = ours["layers"][0]
            tgz = tmp_path / f"{result.name}-{result.version}.tgz"
            tgz.write_bytes(client.get_blob(repo, Digest.parse(layer["digest"])))
            subprocess.run(
                [helm, "push", str(tgz), f"oci://{registry.host}/helm-side/charts", "--plain-http"],
                check=True,
                capture_output=True,
                env=env,
                timeout=120,
            )
            theirs = client.get_manifest(f"helm-side/charts/{result.name}", result.version).json()
            assert theirs["layers"][0]["digest"] == layer["digest"]  # the same archive
            assert theirs["config"]["mediaType"] == ours["config"]["mediaType"] == mt.HELM_CONFIG
            mine, helms = dict(ours["annotations"]), dict(theirs["annotations"])
            # created: helm takes the file's mtime, we the source commit time.
            assert mine.pop(mt.ANNOTATION_CREATED) and helms.pop(mt.ANNOTATION_CREATED)
            assert mine == helms, result.name
            compared += 1
    assert compared == len(KNOWN_CHARTS)
    email = next(r for r in results if r.name == "email-service")
    with client_for(registry) as client:
        annotations = client.get_manifest("nine-minds/charts/email-service", email.version).json()[
            "annotations"
        ]
    assert annotations[charts.ANNOTATION_AUTHORS] == (
        "Nine Minds (ops@nineminds.example),  (oncall@nineminds.example), Robot"
    )
    assert annotations[charts.ANNOTATION_URL] == "https://override.example"
    assert annotations[mt.ANNOTATION_TITLE] == "email-service"
    assert annotations["artifacthub.io/license"] == "MIT"


def test_annotations_are_deterministic(source: Path) -> None:
    from steps.config import load_config

    config = load_config(source / "release.yaml")
    first = charts.build_artifacts(source, config, "content")
    second = charts.build_artifacts(source, config, "content")
    assert [a.manifest for a in first] == [a.manifest for a in second]
