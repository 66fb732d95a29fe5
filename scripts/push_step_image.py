"""Push the step image (an OCI layout made by ``scripts/step-image.sh build``) to a registry.

    python scripts/push_step_image.py --tag 0.1.0 [--layout out/step-image]
        [--registry ghcr.io] [--namespace nine-minds] [--plain-http] [--ca-file PEM]

Pushes to ``<registry>/<namespace>/alga-release-step:<tag>`` with this project's own OCI
client (``steps.oci``, the same code as ``alga-release control-plane copy``): every blob
missing there, then the manifest by digest, then the tag, last; manifest bytes are copied
exactly, so the digest pushed is the layout's. A tag that already names another digest is
refused (exit 3) and nothing is tagged. Credentials: ``ALGA_REGISTRY_USERNAME`` and
``ALGA_REGISTRY_PASSWORD``, as every step.

Prints the reference to render the templates with, ``<registry>/<namespace>/
alga-release-step@sha256:<hex>``, on stdout (progress goes to stderr), so::

    make workflows STEP_IMAGE="$(python scripts/push_step_image.py --tag 0.1.0)"

Only reads ``steps`` (the OCI client, the layout reader and the copy of
:mod:`steps.controlplane`); the plan is made here because ``plan_copy`` is bound to the
control-plane repository.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from steps.controlplane.copy import CopyPlan, push_copy
from steps.controlplane.graph import walk
from steps.controlplane.sources import LayoutSource, LayoutSourceSpec
from steps.errors import Refused, ReleaseError
from steps.oci.auth import Credentials
from steps.oci.client import RegistryClient
from steps.oci.reference import check_repository, check_tag

REPOSITORY = "alga-release-step"
ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--tag", required=True, help="the tag to push, e.g. the package version")
    parser.add_argument("--layout", type=Path, default=ROOT / "out" / "step-image")
    parser.add_argument("--layout-tag", default="latest", help="the layout's tag (default latest)")
    parser.add_argument("--registry", default="ghcr.io")
    parser.add_argument("--namespace", default="nine-minds")
    parser.add_argument("--plain-http", action="store_true", help="loopback or named hosts only")
    parser.add_argument("--ca-file", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="push-step-image: %(message)s")
    try:
        check_tag(args.tag)
        repository = check_repository(f"{args.namespace}/{REPOSITORY}")
        client = RegistryClient(
            args.registry,
            credentials=Credentials.from_environment(None, env=os.environ),
            plain_http=args.plain_http,
            verify=str(args.ca_file) if args.ca_file else True,
        )
        source = LayoutSource(LayoutSourceSpec(args.layout, tag=args.layout_tag))
        graph = walk(source)
        current = client.head_manifest(repository, args.tag)
        if current is not None and current.digest != graph.root.digest:
            raise Refused(
                f"{args.registry}/{repository}:{args.tag} already points at {current.digest}; "
                f"the layout is {graph.root.digest}. Tags are immutable: nothing was changed"
            )
        plan = CopyPlan(
            source=source.name,
            registry=client.registry,
            repository=repository,
            tag=args.tag,
            graph=graph,
            blob_actions={
                blob.digest: "present"
                if client.head_blob(repository, blob.digest) is not None
                else "upload"
                for blob in graph.blobs
            },
            present_manifests=frozenset(
                m.digest
                for m in graph.manifests
                if client.head_manifest(repository, m.digest) is not None
            ),
            tagged=current is not None,
        )
        result = push_copy(plan, source, client)
    except ReleaseError as exc:
        print(f"push-step-image: {exc.diagnostics()}", file=sys.stderr)
        return exc.exit_code
    logging.info(
        "%s:%s: %s blob(s) uploaded, %s present, %d manifest(s) put",
        repository,
        args.tag,
        result.blobs["uploaded"],
        result.blobs["existing"],
        result.manifests_put,
    )
    print(f"{args.registry}/{repository}@{graph.root.digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
