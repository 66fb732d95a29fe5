"""What changed between two releases: charts, images, control plane, overlay, values.

:func:`diff_releases` is pure: it compares two release JSONs and the files of
their two bundles. :func:`bundle_files` is the only registry read (the bundle's
Flux content layer, verified by digest).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from steps.archive import tar_files
from steps.errors import Refused
from steps.oci import mediatypes as mt
from steps.oci.reference import Digest, Reference

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient


def bundle_files(client: RegistryClient, release: Mapping[str, Any]) -> dict[str, bytes]:
    """The files of the release's Flux bundle (path -> bytes)."""
    config = release.get("config") or {}
    ref = Reference.parse(f"{config.get('repository')}@{config.get('digest')}")
    if ref.registry != client.registry:
        raise Refused(f"the bundle {ref} is in another registry; cannot diff it here")
    manifest = client.get_manifest(ref.repository, ref.digest or str(ref.tag)).json()
    raw_layers = manifest.get("layers")
    layers = [
        layer
        for layer in (raw_layers if isinstance(raw_layers, list) else [])
        if isinstance(layer, dict) and layer.get("mediaType") == mt.FLUX_CONTENT_LAYER
    ]
    if len(layers) != 1:
        raise Refused(f"the bundle {ref} has no single Flux content layer")
    blob = client.get_blob(
        ref.repository, Digest.parse(str(layers[0]["digest"])), size=int(layers[0].get("size", -1))
    )
    files = tar_files(blob)
    if files is None:
        raise Refused(f"the bundle {ref}'s content layer is not a gzip'd tar")
    return files


def _changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: {"a": a.get(k), "b": b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
    }


def _text_diff(name: str, old: str | None, new: str | None) -> str:
    return "".join(
        difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            (new or "").splitlines(keepends=True),
            fromfile=f"a/{name}",
            tofile=f"b/{name}",
        )
    )


def diff_releases(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    files_a: Mapping[str, bytes] | None = None,
    files_b: Mapping[str, bytes] | None = None,
) -> dict[str, Any]:
    """Everything that differs between releases ``a`` and ``b`` (pure)."""
    out: dict[str, Any] = {
        "version": {"a": a.get("version"), "b": b.get("version")},
        "charts": _changes(a.get("charts") or {}, b.get("charts") or {}),
        "images": _changes(a.get("images") or {}, b.get("images") or {}),
        "imageDigests": _changes(a.get("imageDigests") or {}, b.get("imageDigests") or {}),
        "controlPlane": None
        if a.get("controlPlane") == b.get("controlPlane")
        else {"a": a.get("controlPlane"), "b": b.get("controlPlane")},
        "valuesProfile": None
        if a.get("valuesProfile") == b.get("valuesProfile")
        else {"a": a.get("valuesProfile"), "b": b.get("valuesProfile")},
        "supportAgent": None
        if a.get("supportAgent") == b.get("supportAgent")
        else {"a": a.get("supportAgent"), "b": b.get("supportAgent")},
    }
    values_a, values_b = a.get("profileValues") or {}, b.get("profileValues") or {}
    out["profileValues"] = {
        key: _text_diff(key, values_a.get(key), values_b.get(key))
        for key in sorted(set(values_a) | set(values_b))
        if values_a.get(key) != values_b.get(key)
    }
    if files_a is not None and files_b is not None:
        changed: dict[str, str] = {}
        for path in sorted(set(files_a) | set(files_b)):
            old, new = files_a.get(path), files_b.get(path)
            if old == new:
                continue
            try:
                changed[path] = _text_diff(
                    path,
                    old.decode() if old is not None else None,
                    new.decode() if new is not None else None,
                )
            except UnicodeDecodeError:
                changed[path] = f"Binary files a/{path} and b/{path} differ\n"
        out["bundle"] = {
            "added": sorted(set(files_b) - set(files_a)),
            "removed": sorted(set(files_a) - set(files_b)),
            "changed": changed,
        }
    out["identical"] = (
        not any(
            out[key]
            for key in (
                "charts",
                "images",
                "imageDigests",
                "controlPlane",
                "valuesProfile",
                "supportAgent",
                "profileValues",
            )
        )
        and not (out.get("bundle") or {}).get("changed")
        and a.get("version") == b.get("version")
    )
    return out


def human_diff(result: Mapping[str, Any]) -> str:
    a, b = result["a"], result["b"]
    lines = [
        f"--- a: {a['ref']} = {a['version']} ({a['manifestDigest']})",
        f"+++ b: {b['ref']} = {b['version']} ({b['manifestDigest']})",
    ]
    if result["identical"]:
        lines.append("(no differences)")
        return "\n".join(lines)
    for section, label in (("charts", "chart"), ("images", "image"), ("imageDigests", "digest")):
        for name, change in result.get(section, {}).items():
            lines.append(f"{label} {name}: {change['a']} -> {change['b']}")
    for key in ("controlPlane", "valuesProfile", "supportAgent"):
        if result[key]:
            lines.append(f"{key}: {result[key]['a']} -> {result[key]['b']}")
    bundle = result.get("bundle") or {}
    for path in bundle.get("added", []):
        lines.append(f"bundle: added {path}")
    for path in bundle.get("removed", []):
        lines.append(f"bundle: removed {path}")
    for text in (bundle.get("changed") or {}).values():
        lines.append(text.rstrip("\n"))
    for text in result["profileValues"].values():
        lines.append(text.rstrip("\n"))
    return "\n".join(lines)
