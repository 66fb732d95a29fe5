"""diff_releases and human_diff, pure: two release JSONs and their bundle files in memory."""

from __future__ import annotations

import copy
from typing import Any

from steps.release.diff import diff_releases, human_diff

A: dict[str, Any] = {
    "version": "1.0.0",
    "charts": {"sebastian": "0.0.1-c1", "pgbouncer": "0.1.0-c1"},
    "images": {"algaCore": "aaaaaaa", "workflowWorker": "bbbbbbb"},
    "imageDigests": {"algaCore": "sha256:" + "1" * 64, "workflowWorker": "sha256:" + "2" * 64},
    "controlPlane": "ghcr.io/nine-minds/alga-appliance-control-plane@sha256:" + "3" * 64,
    "valuesProfile": "single-node",
    "profileValues": {"alga-core": "appUrl: a\n", "pgbouncer": "x: 1\n"},
}
FILES = {"base/kustomization.yaml": b"resources: []\n", "base/a.yaml": b"a: 1\n"}


def with_result(a: dict[str, Any], b: dict[str, Any], **files: Any) -> dict[str, Any]:
    result = diff_releases(a, b, files.get("fa"), files.get("fb"))
    result["a"] = {"ref": "a", "version": a["version"], "manifestDigest": "sha256:a"}
    result["b"] = {"ref": "b", "version": b["version"], "manifestDigest": "sha256:b"}
    return result


def test_a_release_is_identical_to_itself() -> None:
    result = diff_releases(A, copy.deepcopy(A), FILES, dict(FILES))
    assert result["identical"] is True
    assert result["charts"] == result["images"] == result["imageDigests"] == {}
    assert result["bundle"] == {"added": [], "removed": [], "changed": {}}


def test_every_kind_of_change_is_reported() -> None:
    b = copy.deepcopy(A)
    b["version"] = "1.1.0"
    b["charts"]["sebastian"] = "0.0.1-c2"
    del b["charts"]["pgbouncer"]
    b["images"]["algaCore"] = "ccccccc"
    b["imageDigests"]["algaCore"] = "sha256:" + "4" * 64
    b["controlPlane"] = A["controlPlane"].replace("3" * 64, "5" * 64)
    b["profileValues"]["alga-core"] = "appUrl: b\n"
    files_b = {**FILES, "base/a.yaml": b"a: 2\n", "base/new.yaml": b"n: 1\n"}
    del files_b["base/kustomization.yaml"]
    result = diff_releases(A, b, FILES, files_b)
    assert result["identical"] is False
    assert result["version"] == {"a": "1.0.0", "b": "1.1.0"}
    assert result["charts"] == {
        "pgbouncer": {"a": "0.1.0-c1", "b": None},
        "sebastian": {"a": "0.0.1-c1", "b": "0.0.1-c2"},
    }
    assert result["images"] == {"algaCore": {"a": "aaaaaaa", "b": "ccccccc"}}
    assert result["imageDigests"] == {
        "algaCore": {"a": "sha256:" + "1" * 64, "b": "sha256:" + "4" * 64}
    }
    assert result["controlPlane"] == {"a": A["controlPlane"], "b": b["controlPlane"]}
    assert result["valuesProfile"] is None and result["supportAgent"] is None
    assert set(result["profileValues"]) == {"alga-core"}
    assert "-appUrl: a" in result["profileValues"]["alga-core"]
    assert "+appUrl: b" in result["profileValues"]["alga-core"]
    assert result["bundle"]["added"] == ["base/new.yaml"]
    assert result["bundle"]["removed"] == ["base/kustomization.yaml"]
    assert set(result["bundle"]["changed"]) == {
        "base/a.yaml",
        "base/kustomization.yaml",
        "base/new.yaml",
    }


def test_a_moved_image_digest_alone_makes_releases_differ() -> None:
    b = copy.deepcopy(A)
    b["imageDigests"]["workflowWorker"] = "sha256:" + "9" * 64
    result = with_result(A, b)
    assert result["identical"] is False
    assert "digest workflowWorker: sha256:" + "2" * 64 in human_diff(result)


def test_binary_files_and_the_human_text() -> None:
    b = copy.deepcopy(A)
    b["version"] = "1.0.1"
    result = with_result(A, b, fa={"bin": b"\xff\x00"}, fb={"bin": b"\xfe\x00"})
    assert result["bundle"]["changed"] == {"bin": "Binary files a/bin and b/bin differ\n"}
    text = human_diff(result)
    assert text.splitlines()[0] == "--- a: a = 1.0.0 (sha256:a)"
    assert "Binary files a/bin and b/bin differ" in text
    same = with_result(A, copy.deepcopy(A))
    assert human_diff(same).endswith("(no differences)")
