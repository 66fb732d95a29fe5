"""Tiny but real container images, pushed straight to a registry with the project's client.

A release names four app images and a control-plane image that must exist in
the registry. Tests and the demo cannot pull real ones (no network), so this
makes a valid single-layer OCI image (config with ``rootfs.diff_ids``, a gzip
tar layer holding one file) whose bytes depend only on ``content``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

from steps.oci import mediatypes as mt
from steps.oci.client import RegistryClient
from steps.oci.reference import Digest

__all__ = ["image_config", "image_manifest", "push_tiny_image", "tiny_image"]


def image_config(diff_ids: list[str], config: dict[str, object] | None = None) -> bytes:
    """A linux/amd64 image config (canonical JSON) with these layer ``diff_ids``."""
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": config or {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def image_manifest(config: bytes, layers: list[tuple[Digest, int]]) -> bytes:
    """An OCI image manifest (canonical JSON) for ``config`` and gzip tar ``layers``
    given as (digest, size)."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": str(Digest.of(config)),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": str(digest),
                    "size": size,
                }
                for digest, size in layers
            ],
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def tiny_image(content: bytes) -> tuple[bytes, bytes, bytes]:
    """(config, layer, manifest) bytes of a one-file image."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("etc/alga-image")
        info.size, info.mtime, info.mode = len(content), 0, 0o644
        tar.addfile(info, io.BytesIO(content))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = image_config(["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()])
    manifest = image_manifest(config, [(Digest.of(layer), len(layer))])
    return config, layer, manifest


def push_tiny_image(
    client: RegistryClient, repository: str, tag: str, content: bytes | None = None
) -> Digest:
    """Push a tiny image as ``repository:tag``; returns its manifest digest."""
    config, layer, manifest = tiny_image(content or f"{repository}:{tag}\n".encode())
    client.push_blob(repository, config)
    client.push_blob(repository, layer)
    return client.put_manifest(repository, tag, manifest, mt.OCI_MANIFEST)
