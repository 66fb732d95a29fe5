"""The real ``flux`` CLI (v2.9.5, built from flux2's sources) against a bundle we published.

The bundle is published with the ``alga-release bundle publish`` CLI (the reference overlay,
the reference charts really pushed first) to a loopback registry. Then:

- ``flux pull artifact`` extracts exactly the tree the publish validated (its ``--dry-run``
  rendering), file for file, byte for byte;
- ``flux build kustomization <name> --path ... --kustomization-file ... --dry-run`` builds
  ``./base`` and every stage a Flux Kustomization of the bundle names the way
  kustomize-controller does (fluxcd/pkg's kustomize generator), with the same objects
  ``kubectl kustomize`` gave the publish's own validation;
- ``flux push artifact --reproducible`` of the same rendered tree, with the same source and
  revision, compared with ours piece by piece. What is equal and what differs is asserted
  exactly (see :func:`test_flux_push_of_the_same_tree_compared_with_ours`), so a change on
  either side shows up here.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from steps.oci.reference import Digest
from tests.harness.registry import Registry
from tests.harness.tools import Tools
from tests.helpers import client_for, registry_env
from tests.integration.test_bundle_publish import (  # noqa: F401 (fixtures)
    BUNDLE_REPO,
    REVISION,
    SOURCE_URL,
    chart_artifacts,
    charts_json,
    kustomize,
    publish,
    source,
    tree,
)

pytestmark = pytest.mark.integration

FLUX_REPO = "nine-minds/flux-pushed"


def flux(tools: Tools, *argv: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": os.devnull}
    return subprocess.run(
        [str(tools.go_tool("flux")), *argv],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )


@pytest.fixture
def published(
    registry: Registry,
    source: Path,  # noqa: F811
    charts_json: Path,  # noqa: F811
    tools: Tools,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """Publish the bundle; return its JSON result plus the dry-run rendering's folder."""
    rendered = tmp_path / "rendered"
    with registry_env(monkeypatch, registry):
        preview = publish(registry, source, charts_json, tools, "--dry-run", str(rendered))
        assert preview.code == 0, preview.stderr
        result = publish(registry, source, charts_json, tools)
    assert result.code == 0, result.stderr
    body: dict[str, Any] = result.json()
    body["rendered"] = rendered
    return body


def test_flux_pull_artifact_extracts_the_tree_we_validated(
    registry: Registry, published: dict[str, Any], tools: Tools, tmp_path: Path
) -> None:
    out = tmp_path / "pulled"
    out.mkdir()
    done = flux(
        tools,
        "pull",
        "artifact",
        f"oci://{registry.host}/{BUNDLE_REPO}:{published['tag']}",
        "--output",
        str(out),
        "--insecure-registry",
        home=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert published["digest"] in done.stderr + done.stdout  # flux names the digest it pulled
    assert tree(out) == tree(published["rendered"])


def flux_kustomizations(root: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(root.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if (
                isinstance(doc, dict)
                and doc.get("kind") == "Kustomization"
                and str(doc.get("apiVersion", "")).startswith("kustomize.toolkit.fluxcd.io/")
            ):
                found.append(doc)
    return found


def identities(docs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]) for d in docs if d
    }


def test_flux_build_kustomization_builds_every_stage_like_kubectl_kustomize(
    registry: Registry, published: dict[str, Any], tools: Tools, tmp_path: Path
) -> None:
    root: Path = published["rendered"]
    stages = flux_kustomizations(root)
    assert sorted(k["metadata"]["name"] for k in stages) == [
        "alga-background",
        "alga-core",
        "alga-platform",
    ]
    for stage in stages:
        path = stage["spec"]["path"].removeprefix("./")
        file = tmp_path / f"{stage['metadata']['name']}.yaml"
        file.write_text(yaml.safe_dump(stage), encoding="utf-8")
        done = flux(
            tools,
            "build",
            "kustomization",
            stage["metadata"]["name"],
            "--path",
            str(root / path),
            "--kustomization-file",
            str(file),
            "--dry-run",
            home=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        by_flux = [d for d in yaml.safe_load_all(done.stdout) if d]
        by_kubectl = kustomize(tools, root / path)
        assert identities(by_flux) == identities(by_kubectl), path
        for obj in by_flux:  # kustomize-controller labels what it applies
            labels = obj["metadata"].get("labels", {})
            assert labels.get("kustomize.toolkit.fluxcd.io/name") == stage["metadata"]["name"]
        for ours, theirs in zip(
            sorted(by_kubectl, key=lambda d: (d["kind"], d["metadata"]["name"])),
            sorted(by_flux, key=lambda d: (d["kind"], d["metadata"]["name"])),
            strict=True,
        ):
            if ours["kind"] == "HelmRelease":
                assert ours["spec"] == theirs["spec"]


def pull_pieces(reg: Registry, repository: str, reference: str) -> dict[str, Any]:
    with client_for(reg, anonymous=True) as client:
        head = client.head_manifest(repository, reference)
        assert head is not None
        manifest = client.get_manifest(repository, head.digest)
        body = manifest.json()
        config = client.get_blob(repository, Digest.parse(body["config"]["digest"]))
        layer = client.get_blob(repository, Digest.parse(body["layers"][0]["digest"]))
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as tar:
        members = [
            (m.name, m.type, m.mode, m.uid, m.gid, m.uname, m.gname, m.mtime)
            for m in tar.getmembers()
        ]
    return {
        "digest": str(head.digest),
        "manifest": body,
        "config": json.loads(config),
        "layer": layer,
        "tar": gzip.decompress(layer),
        "members": members,
        "gzip_header": layer[:10],
    }


def test_flux_push_of_the_same_tree_compared_with_ours(
    registry: Registry, published: dict[str, Any], tools: Tools, tmp_path: Path
) -> None:
    """``flux push artifact`` of the rendered tree, same source and revision, next to ours.

    With ``--reproducible`` (created = the epoch, which is also our created here: the test
    overlay has no git history). Found, and asserted exactly so that a change on either side
    shows up:

    - **equal**: the manifest (media type, annotations ``created``/``revision``/``source``,
      config and layer media types, one layer) and every file in the layer: names, order,
      modes, uid/gid 0, mtime 0, contents; ``flux pull artifact`` extracts the same tree;
    - **different**: flux 2.9.5's tar starts with an entry for the root folder itself (``.``,
      mode 0755), which ours does not have (both have every other folder); its gzip header
      says default compression (XFL 0), ours best (2); its config blob is
      go-containerregistry's empty config,
      ``{"architecture":"","created":"0001-01-01T00:00:00Z","os":"","rootfs":{"type":"layers",
      "diff_ids":null},"config":{}}``, ours adds the layer's ``diff_ids`` and a ``history``
      entry. Both write the zero ``created`` in the config blob (flux 2.9.5, fluxcd/pkg/oci
      v0.68.1, does so with and without ``--reproducible``). So the layer, config and
      manifest digests differ; Flux's controllers read none of these differences.
    """
    done = flux(
        tools,
        "push",
        "artifact",
        f"oci://{registry.host}/{FLUX_REPO}:{published['tag']}",
        "--path",
        str(published["rendered"]),
        "--source",
        SOURCE_URL,
        "--revision",
        REVISION,
        "--reproducible",
        "--insecure-registry",
        "--output",
        "json",
        home=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    ours = pull_pieces(registry, BUNDLE_REPO, published["tag"])
    theirs = pull_pieces(registry, FLUX_REPO, published["tag"])

    # equal: the artifact as Flux's source-controller reads it
    for key in ("schemaVersion", "mediaType", "artifactType", "annotations"):
        assert ours["manifest"].get(key) == theirs["manifest"].get(key), key
    assert ours["manifest"]["config"]["mediaType"] == theirs["manifest"]["config"]["mediaType"]
    assert [layer["mediaType"] for layer in ours["manifest"]["layers"]] == [
        layer["mediaType"] for layer in theirs["manifest"]["layers"]
    ]
    root_entry, *their_rest = theirs["members"]
    assert ours["members"] == their_rest  # name, type, mode, uid, gid, uname, gname, mtime
    assert any(m[1] == tarfile.DIRTYPE for m in ours["members"])  # folders: both
    with (
        tarfile.open(fileobj=io.BytesIO(ours["layer"]), mode="r:gz") as a,
        tarfile.open(fileobj=io.BytesIO(theirs["layer"]), mode="r:gz") as b,
    ):
        for name, kind, *_ in ours["members"]:
            if kind == tarfile.REGTYPE:
                left, right = a.extractfile(name), b.extractfile(name)
                assert left is not None and right is not None
                assert left.read() == right.read(), name

    # different, and nothing else
    assert root_entry == (".", tarfile.DIRTYPE, 0o755, 0, 0, "", "", 0)
    assert (ours["gzip_header"][8], theirs["gzip_header"][8]) == (2, 0)  # XFL
    assert theirs["config"] == {
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": None},
        "config": {},
    }
    ours_config = dict(ours["config"])
    assert ours_config.pop("history") == [{"created": "0001-01-01T00:00:00Z"}]
    diff_ids = ours_config["rootfs"].pop("diff_ids")
    assert diff_ids == ["sha256:" + hashlib.sha256(ours["tar"]).hexdigest()]
    theirs_config = dict(theirs["config"], rootfs={"type": "layers"})
    assert ours_config == theirs_config
    assert ours["digest"] != theirs["digest"]
