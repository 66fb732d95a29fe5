"""Build the control-plane image with the engine and push it; the digest the engine reports
is checked with a HEAD through the OCI client.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from steps import names
from steps.controlplane.context import BuildContext
from steps.controlplane.copy import control_plane_repository
from steps.controlplane.engine import Engine, follow_build, follow_push
from steps.errors import BadInput, Refused, ReleaseError
from steps.oci.auth import Credentials
from steps.oci.errors import InvalidReference
from steps.oci.reference import Digest, check_tag

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient

log = logging.getLogger("alga_release.controlplane")


@dataclass(frozen=True)
class BuildResult:
    registry: str
    repository: str
    tag: str
    digest: Digest
    status: Literal["pushed", "existing"]
    image_id: str | None = None
    context_entries: int = 0

    @property
    def reference(self) -> str:
        namespace = self.repository.rsplit("/", 1)[0]
        return names.control_plane_reference(self.registry, namespace, self.digest)

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "repository": f"{self.registry}/{self.repository}",
            "tag": self.tag,
            "digest": str(self.digest),
            "status": self.status,
            "imageId": self.image_id,
        }


def build_and_push(
    connect: Callable[[], Engine],
    client: RegistryClient,
    namespace: str,
    tag: str,
    context: BuildContext,
    *,
    credentials: Credentials | None = None,
    build_args: Mapping[str, str] | None = None,
    platform: str | None = None,
) -> BuildResult:
    """Build ``context`` with the engine ``connect()`` returns, push it as ``tag``
    and check the digest the engine reports with a HEAD through ``client``.

    A tag that already exists is kept and returned (``status: existing``) without
    building or connecting to the engine: builds are not reproducible, so
    rebuilding could only move it.
    """
    repository = control_plane_repository(namespace)
    try:
        check_tag(tag)
    except InvalidReference as exc:
        raise BadInput(f"--tag: {exc.message}", hint=exc.hint) from None
    full = f"{client.registry}/{repository}"
    current = client.head_manifest(repository, tag)
    if current is not None:
        log.warning(
            "%s:%s already exists (%s); tags are immutable, so it is kept and not rebuilt "
            "(use a new tag, e.g. the source revision, to publish a new build)",
            full,
            tag,
            current.digest,
        )
        return BuildResult(client.registry, repository, tag, current.digest, "existing")
    image = f"{full}:{tag}"
    engine = connect()
    with tempfile.TemporaryFile(prefix="alga-cp-context-") as fh:
        count = context.write_tar(fh)
        size = fh.tell()
        fh.seek(0)
        log.info(
            "building %s from %s (%d entries, %d bytes, dockerfile %s)",
            image,
            context.context_dir,
            count,
            size,
            context.dockerfile_name,
        )
        image_id = follow_build(
            engine.build(
                fh,
                dockerfile=context.dockerfile_name,
                tag=image,
                build_args=dict(build_args or {}),
                platform=platform,
            ),
            f"{image} from {context.dockerfile}",
        )
    auth = (
        {"username": credentials.username, "password": credentials.password}
        if credentials
        else None
    )
    log.info("pushing %s", image)
    digest = follow_push(engine.push(full, tag, auth), image)
    head = client.head_manifest(repository, digest)
    tagged = client.head_manifest(repository, tag)
    if head is None or tagged is None or tagged.digest != digest:
        found = tagged.digest if tagged else "nothing"
        raise ReleaseError(
            f"the engine reported pushing {image} as {digest}, but the registry has {found} "
            f"under {tag}",
            hint="another push may have raced this one; check the registry and re-run",
        )
    log.info("pushed %s@%s", full, digest)
    return BuildResult(client.registry, repository, tag, digest, "pushed", image_id, count)


def parse_build_args(values: Sequence[str]) -> dict[str, str]:
    """``["K=V", ...]`` -> ``{"K": "V"}``."""
    args: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise BadInput(f"--build-arg {value!r}: expected KEY=VALUE")
        args[key] = val
    return args


def check_control_plane(
    images: Mapping[str, object], produced: Mapping[str, object]
) -> dict[str, str]:
    """The release DAG's check between the images and manifest steps: the control plane the
    images step resolved (what the manifest will pin) must be exactly the reference the
    control-plane step (copy or build) published. A mismatch means the tag moved in between
    (:class:`~steps.errors.Refused`, exit 3)."""
    reference, digest = produced.get("reference"), produced.get("digest")
    resolved = images.get("controlPlane")
    if not isinstance(reference, str) or not isinstance(digest, str):
        raise BadInput(
            "the control-plane step's result has no reference and digest",
            hint="pass the --out file of `alga-release control-plane copy|build`",
        )
    if reference != resolved or not reference.endswith("@" + digest):
        raise Refused(
            f"the control-plane step published {reference}, but the images step resolved "
            f"{resolved}: the tag moved in between",
            hint="re-run the release; a control-plane tag must not move during a release",
        )
    log.info("control-plane check: the manifest pins %s", reference)
    return {"reference": reference, "digest": digest}
