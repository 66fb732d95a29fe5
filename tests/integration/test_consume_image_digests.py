"""imageDigests: both twins pin every app image by digest in what they render, and the
real ``helm template`` turns those values into Kubernetes image references.

alga-psa's charts build each image as ``"<repository or name>:<tag>"`` from the
values the appliance writes (``helm/templates/deployment.yaml``: ``server.image.name``
and ``server.image.tag``; ``ee/helm/<name>/templates/deployment.yaml``:
``image.repository`` and ``image.tag``; none of them ships a values schema). So the
renderer sets ``image.tag`` to ``<tag>@sha256:<hex>`` and the chart yields
``<repository>:<tag>@sha256:<hex>``: a valid reference that the kubelet pulls by the
digest. The charts here are minimal stand-ins with exactly those two template shapes.
(This project's reference charts under examples/charts carry a values schema whose
``image.tag`` pattern refuses ``@``; they do not model the real charts on this point.)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.harness.tools import PROJECT_ROOT, Tools

sys.path.insert(0, str(PROJECT_ROOT / "consume"))
import release_consume as rc

FULL = PROJECT_ROOT / "schemas" / "examples" / "valid" / "full.json"
# distribution/reference's grammar: name[:tag][@digest], the form a Pod's image takes.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REFERENCE = re.compile(
    rf"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)

# The image lines of alga-psa's charts (one per shape), in a chart of their own.
SHAPES = {
    "sebastian": (
        "server:\n  image:\n    name: ghcr.io/nine-minds/alga-psa-ee\n    tag: latest\n",
        "{{ .Values.server.image.name }}:{{ .Values.server.image.tag }}",
    ),
    "worker": (
        "image:\n  repository: ghcr.io/nine-minds/worker\n  tag: latest\n",
        "{{ .Values.image.repository }}:{{ .Values.image.tag }}",
    ),
}
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers:
        - name: main
          image: "IMAGE"
"""


def chart(tmp_path: Path, shape: str) -> Path:
    defaults, image = SHAPES[shape]
    root = tmp_path / shape
    (root / "templates").mkdir(parents=True)
    (root / "Chart.yaml").write_text(f"apiVersion: v2\nname: {shape}\nversion: 0.0.1\n")
    (root / "values.yaml").write_text(defaults)
    (root / "templates" / "deployment.yaml").write_text(DEPLOYMENT.replace("IMAGE", image))
    return root


def images_in(helm: Path, root: Path, values: str, tmp_path: Path) -> list[str]:
    values_file = tmp_path / f"{root.name}-values.yaml"
    values_file.write_text(values)
    out = subprocess.run(
        [str(helm), "template", "rel", str(root), "-f", str(values_file)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [
        c["image"]
        for doc in yaml.safe_load_all(out)
        if doc
        for c in doc["spec"]["template"]["spec"]["containers"]
    ]


def test_rendered_values_pin_each_image_by_digest_through_the_real_helm(
    tools: Tools, tmp_path: Path
) -> None:
    release: dict[str, Any] = json.loads(FULL.read_text(encoding="utf-8"))
    digests, tags = release["imageDigests"], release["images"]
    values = rc.render_values(release)
    profile = release["valuesProfile"]
    cases = [
        ("alga-core", "sebastian", "ghcr.io/nine-minds/alga-psa-ee", "algaCore"),
        ("workflow-worker", "worker", "ghcr.io/nine-minds/workflow-worker", "workflowWorker"),
        ("email-service", "worker", "ghcr.io/nine-minds/email-service", "emailService"),
        ("temporal-worker", "worker", "ghcr.io/nine-minds/temporal-worker", "temporalWorker"),
    ]
    for service, shape, repository, key in cases:
        text = values[f"{service}.{profile}.yaml"]
        if shape == "worker":  # the service's own repository overrides the chart's default
            assert yaml.safe_load(text)["image"]["repository"] == repository
        rendered = images_in(tools.helm, chart(tmp_path / service, shape), text, tmp_path)
        expected = f"{repository}:{tags[key]}@{digests[key]}"
        assert rendered == [expected], (service, rendered)
        assert REFERENCE.fullmatch(expected)


def test_without_image_digests_the_tags_are_rendered_as_before() -> None:
    release: dict[str, Any] = json.loads(FULL.read_text(encoding="utf-8"))
    pinned = rc.render_values(release)
    del release["imageDigests"]
    bare = rc.render_values(release)
    profile = release["valuesProfile"]
    worker = yaml.safe_load(bare[f"workflow-worker.{profile}.yaml"])
    assert worker["image"]["tag"] == release["images"]["workflowWorker"]
    core = yaml.safe_load(pinned[f"alga-core.{profile}.yaml"])
    digest = json.loads(FULL.read_text())["imageDigests"]["algaCore"]
    assert core["server"]["image"]["tag"] == core["setup"]["image"]["tag"]
    assert core["server"]["image"]["tag"] == f"{release['images']['algaCore']}@{digest}"
    assert rc.image_references(release) == release["images"]
