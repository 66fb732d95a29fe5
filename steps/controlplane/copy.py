"""Publish the control-plane image to ``<registry>/<namespace>/alga-appliance-control-plane``.

Two ways in, both ending in a digest-pinned reference for the release manifest:

* **copy** (:func:`plan_copy`, then :func:`push_copy`): an image that was already
  built -- in another registry, another repository of the same registry, or an
  OCI image layout folder -- is copied with the project's OCI client: every blob
  (config and layers of every platform), every child manifest of an index, the
  index, then the tag.
* **build** (:func:`build_and_push`): ``ee/appliance/control-plane/Dockerfile`` of
  the source checkout is built by a Docker-API engine (``DOCKER_HOST``; in Argo a
  docker-in-docker sidecar) from a build context assembled here -- the checkout
  root, as alga-psa builds it, minus what ``.dockerignore`` excludes
  (:func:`assemble_context`) -- pushed by the engine, and the digest it reports is
  checked with a HEAD through the OCI client.

Invariants of a copy:

- Manifest bytes are copied exactly, so the digest at the destination is the
  source's digest.
- Order: blobs, then child manifests by digest, then the root manifest by digest,
  then the tag. The tag is written last and only when every piece is in, so a
  failure anywhere leaves nothing tagged.
- Every manifest and blob read from a source is checked against its digest and
  size before it is pushed (registry downloads by the client, layout files here).
- Large blobs are never held in memory: registry to registry they stream from the
  source's download into the upload (no temporary file; big bodies read straight from
  the socket), from a layout folder straight from its files. In the same registry
  a blob is mounted from the source repository instead.
- A tag that exists with a different digest is never moved (:class:`Refused`,
  exit 3, both digests named). A re-copy finds everything present and uploads
  nothing.
- A re-copy whose destination tag already holds the source's digest is answered from
  that: one HEAD of the source tag (none when the source is pinned by digest), one HEAD
  of the destination tag and the destination's manifests read by digest
  (:func:`already_copied`). The tag is written last, so a tag that holds the digest
  means every piece below it is in. The result is the full path's, key for key.

What it does not do: convert formats, re-compress layers, copy referrers
(signatures or attestations attached by ``subject``) or anything else the
manifest graph does not reference. A build is not reproducible (the engine
stamps times), which is why a build tag that already exists is kept, not rebuilt.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from steps import names
from steps.controlplane.graph import Blob, ImageGraph, ImageSource, walk
from steps.controlplane.sources import RegistrySource, SourceSpec, open_source
from steps.errors import BadInput, Refused
from steps.oci.errors import (
    DigestMismatch,
    InvalidReference,
)
from steps.oci.model import Descriptor, ManifestReader, Progress
from steps.oci.parallel import check_stop
from steps.oci.reference import Digest, Reference, check_tag

if TYPE_CHECKING:
    from steps.oci.client import RegistryClient

log = logging.getLogger("alga_release.controlplane")

# -- plan and push -------------------------------------------------------------------


BlobAction = Literal["present", "mount", "upload"]


@dataclass(frozen=True)
class CopyPlan:
    """What a copy will do; made without writing anything."""

    source: str
    registry: str
    repository: str  # namespace/alga-appliance-control-plane
    tag: str
    graph: ImageGraph
    blob_actions: dict[Digest, BlobAction]
    present_manifests: frozenset[Digest]
    tagged: bool  # the tag already points at the root digest

    @property
    def digest(self) -> Digest:
        return self.graph.root.digest

    @property
    def reference(self) -> str:
        namespace = self.repository.rsplit("/", 1)[0]
        return names.control_plane_reference(self.registry, namespace, self.digest)

    @property
    def complete(self) -> bool:
        """Everything, tag included, is already at the destination."""
        return (
            self.tagged
            and all(a == "present" for a in self.blob_actions.values())
            and all(m.digest in self.present_manifests for m in self.graph.manifests)
        )


@dataclass
class CopyResult:
    plan: CopyPlan
    blobs: dict[str, int] = field(
        default_factory=lambda: {"existing": 0, "mounted": 0, "uploaded": 0}
    )
    manifests_put: int = 0


def control_plane_repository(namespace: str) -> str:
    return names.control_plane_repository(namespace)


_UNREAD: Any = object()  # the destination tag was not read yet


def _checked_tag(tag: str) -> str:
    try:
        return check_tag(tag)
    except InvalidReference as exc:
        raise BadInput(f"--tag: {exc.message}", hint=exc.hint) from None


def plan_copy(
    source: ImageSource,
    client: RegistryClient,
    namespace: str,
    tag: str,
    *,
    current: Descriptor | None = _UNREAD,
    probe_blobs: bool = True,
) -> CopyPlan:
    """Read the source's manifests and compare with the destination (HEADs only).

    Refuses (exit 3) before anything is written when ``tag`` exists at the
    destination with another digest. ``current`` is the destination tag's HEAD when
    the caller already made it (None: the tag does not exist).

    ``probe_blobs`` False (a copy about to push, not a dry run) leaves each blob's HEAD
    to the push, which makes it anyway just before the blob's upload, in the blob's
    job (:meth:`~steps.oci.client.RegistryClient.copy_blob`, ``push_blob``): the blobs
    are planned "upload" and a blob found there then counts as existing. Blobs that
    may be mounted are probed here still, so that one already there is not counted as
    mounted.
    """
    repository = control_plane_repository(namespace)
    _checked_tag(tag)
    log.info("reading %s", source.name)
    graph = walk(source)
    digest = graph.root.digest
    if current is _UNREAD:
        current = client.head_manifest(repository, tag)
    if current is not None and current.digest != digest:
        raise Refused(
            _tag_conflict(client.registry, repository, tag, current.digest, source.name, digest),
            hint="copy it under a new tag (e.g. the source revision), or pin the image "
            f"already there with --control-plane {tag}",
        )
    mountable = bool(source.mount_from and source.mount_from != repository)
    probe = probe_blobs or mountable
    actions: dict[Digest, BlobAction] = {}
    for blob in graph.blobs:
        if probe and client.head_blob(repository, blob.digest) is not None:
            actions[blob.digest] = "present"
        elif mountable:
            actions[blob.digest] = "mount"
        else:
            actions[blob.digest] = "upload"
    present = frozenset(
        m.digest for m in graph.manifests if client.head_manifest(repository, m.digest) is not None
    )
    plan = CopyPlan(
        source=source.name,
        registry=client.registry,
        repository=repository,
        tag=tag,
        graph=graph,
        blob_actions=actions,
        present_manifests=present,
        tagged=current is not None,
    )
    missing = [a for a in actions.values() if a != "present"]
    log.info(
        "%s is %s (%d manifest(s)%s, %d blob(s), %s at %s/%s)",
        source.name,
        digest,
        len(graph.manifests),
        f", platforms {', '.join(graph.platforms)}" if graph.platforms else "",
        len(actions),
        f"{len(missing)} missing" if probe else "each looked for as it is copied",
        client.registry,
        repository,
    )
    return plan


def already_copied(
    source: ImageSource, client: ManifestReader, namespace: str, tag: str
) -> tuple[CopyPlan | None, Descriptor | None]:
    """The no-op re-copy, answered without walking the source.

    Returns ``(plan, current)``: a complete plan when the destination tag already holds
    the source's digest (its graph read from the destination, by digest, so every
    manifest is checked there), else ``None`` and the destination tag's HEAD for
    :func:`plan_copy` (None when the tag does not exist). Only a registry source has a
    digest to compare without reading its manifests; a layout folder always plans.
    """
    repository = control_plane_repository(namespace)
    _checked_tag(tag)
    current = client.head_manifest(repository, tag)
    if current is None or not isinstance(source, RegistrySource):
        return None, current
    wanted = source.reference.digest
    if wanted is None:
        with source._errors():
            found = source.client.head_manifest(
                source.reference.repository, str(source.reference.tag)
            )
        if found is None:
            return None, current  # the full path names the missing source
        wanted = found.digest
    if current.digest != wanted:
        return None, current  # plan_copy refuses it, naming both digests
    there = RegistrySource(  # walk() only reads manifests through it
        cast("RegistryClient", client),
        Reference(client.registry, repository, digest=wanted),
        same_registry=True,
    )
    graph = walk(there)
    plan = CopyPlan(
        source=source.name,
        registry=client.registry,
        repository=repository,
        tag=tag,
        graph=graph,
        blob_actions={b.digest: "present" for b in graph.blobs},
        present_manifests=frozenset(m.digest for m in graph.manifests),
        tagged=True,
    )
    return plan, current


def _tag_conflict(
    registry: str, repository: str, tag: str, existing: Digest, source: str, digest: Digest
) -> str:
    return (
        f"{registry}/{repository}:{tag} already points at {existing}; the source {source} "
        f"is {digest}. Tags are immutable: nothing was changed"
    )


#: How many blobs a registry-to-registry copy moves at once (``--jobs``), as crane's and
#: skopeo's copies do: an image's layers overlap on the wire instead of taking turns.
COPY_JOBS = 4


def push_copy(
    plan: CopyPlan,
    source: ImageSource,
    client: RegistryClient,
    *,
    workdir: Path | None = None,
    progress: Callable[[Blob], Progress | None] | None = None,
    jobs: int = COPY_JOBS,
) -> CopyResult:
    """Push what the plan found missing: blobs, child manifests, root, then the tag.

    Registry to registry, up to ``jobs`` blobs at a time, each on sibling clients of its
    own (:meth:`~steps.oci.client.RegistryClient.spawn`); the first failure stops the
    blobs not yet started, lets the ones under way end, and is raised (nothing is
    tagged). Other sources, and ``jobs`` 1, go one blob at a time."""
    result = CopyResult(plan)
    repository = plan.repository
    missing = []
    for blob in plan.graph.blobs:
        if plan.blob_actions[blob.digest] == "present":
            result.blobs["existing"] += 1
        else:
            missing.append(blob)
    import tempfile  # here: the no-op re-copy never loads it

    with tempfile.TemporaryDirectory(prefix="alga-cp-", dir=workdir) as tmp:
        stop = threading.Event()  # set when the run is interrupted: blobs under way end

        def watched(blob: Blob) -> Progress:
            shown = progress(blob) if progress is not None else None

            def report(done: int, total: int | None) -> None:
                check_stop(stop)  # between two pieces of the blob
                if shown is not None:
                    shown(done, total)

            return report

        def one(blob: Blob, destination: RegistryClient, upstream: RegistryClient | None) -> str:
            return _push_blob(plan, source, blob, destination, upstream, Path(tmp), watched)

        upstream = source.client if isinstance(source, RegistrySource) else None
        if jobs > 1 and len(missing) > 1 and upstream is not None:
            statuses = _in_parallel(missing, client, upstream, min(jobs, len(missing)), one, stop)
        else:
            statuses = [one(blob, client, upstream) for blob in missing]
        for status in statuses:
            result.blobs[status] += 1
    for manifest in plan.graph.manifests:
        if manifest.digest in plan.present_manifests:
            continue
        client.put_manifest(repository, manifest.digest, manifest.data, manifest.media_type)
        result.manifests_put += 1
        log.info("manifest %s (%s) pushed", manifest.digest.short, manifest.media_type)
    # The tag goes last, so a failure above leaves nothing tagged. Look again: another
    # run may have taken the tag since the plan was made.
    current = client.head_manifest(repository, plan.tag)
    if current is None:
        root = plan.graph.root
        client.put_manifest(repository, plan.tag, root.data, root.media_type)
        log.info("tagged %s/%s:%s -> %s", plan.registry, repository, plan.tag, plan.digest)
    elif current.digest != plan.digest:
        raise Refused(
            _tag_conflict(
                plan.registry, repository, plan.tag, current.digest, plan.source, plan.digest
            ),
            hint="another run tagged it meanwhile; the pieces pushed are untagged",
        )
    return result


def _push_blob(
    plan: CopyPlan,
    source: ImageSource,
    blob: Blob,
    client: RegistryClient,
    upstream: RegistryClient | None,
    tmp: Path,
    progress: Callable[[Blob], Progress | None] | None,
) -> str:
    """One blob the plan did not find into the plan's repository: "mounted" or
    "uploaded" (or "existing": a plan that left the HEAD to this step, or another run
    pushed it meanwhile). ``upstream``: the client that
    reads a registry source (the destination's own, or its sibling's, in one registry)."""
    repository = plan.repository
    if (
        plan.blob_actions[blob.digest] == "mount"
        and source.mount_from
        and _mount(client, repository, source.mount_from, blob.digest)
    ):
        log.info("blob %s mounted from %s", blob.digest.short, source.mount_from)
        return "mounted"
    log.info("blob %s (%d bytes): copying", blob.digest.short, blob.size)
    try:
        if isinstance(source, RegistrySource):
            assert upstream is not None
            # registry to registry: streamed from the source's response into the upload,
            # verified on the way; no temporary copy of the layer
            status = client.copy_blob(
                upstream,
                source.reference.repository,
                repository,
                blob.digest,
                blob.size,
                progress=progress(blob) if progress is not None else None,
            )
            if status == "existing":
                log.info("blob %s already in %s", blob.digest.short, repository)
            return status
        with source.open_blob(blob, tmp) as path:
            return client.push_blob(repository, path, digest=blob.digest)
    except DigestMismatch as exc:
        raise DigestMismatch(
            exc.message,
            hint=f"the source {plan.source} served altered content; nothing was "
            f"tagged at {plan.registry}/{repository}. Fix or rebuild the source image",
            status=exc.status,
        ) from None


def _in_parallel(
    blobs: list[Blob],
    client: RegistryClient,
    upstream: RegistryClient,
    jobs: int,
    one: Callable[[Blob, RegistryClient, RegistryClient | None], str],
    stop: threading.Event,
) -> list[str]:
    """``one(blob, destination, upstream)`` for every blob, ``jobs`` at a time, each job on
    sibling clients of its own (:mod:`steps.oci.parallel`); the statuses in ``blobs``'
    order."""
    from steps.oci.parallel import in_parallel, siblings

    with contextlib.ExitStack() as stack:
        writers = stack.enter_context(siblings(client, jobs))
        # in one registry the source is read with the destination's client: the same one
        readers = writers if upstream is client else stack.enter_context(siblings(upstream, jobs))
        pairs = list(zip(writers, readers, strict=False))
        return in_parallel(blobs, lambda blob, pair: one(blob, pair[0], pair[1]), pairs, stop)


def _mount(client: RegistryClient, repository: str, source_repository: str, digest: Digest) -> bool:
    """Ask the registry to mount ``digest`` from ``source_repository``; True when it did.

    ``RegistryClient.push_blob`` mounts too, but only with the blob's bytes at hand;
    asking first saves downloading a layer the registry already holds.
    """
    return client.mount_blob(repository, source_repository, digest)


def copy_result_json(result: CopyResult) -> dict[str, Any]:
    plan = result.plan
    status = "unchanged" if plan.complete else "copied"
    return {
        **_target_json(plan, status),
        "blobs": dict(result.blobs),
        "manifestsPushed": result.manifests_put,
    }


def _target_json(plan: CopyPlan, status: str) -> dict[str, Any]:
    """The keys a copy's result and its dry run share: what is copied, to where."""
    return {
        "reference": plan.reference,
        "repository": f"{plan.registry}/{plan.repository}",
        "tag": plan.tag,
        "digest": str(plan.digest),
        "mediaType": plan.graph.root.media_type,
        "platforms": list(plan.graph.platforms),
        "source": plan.source,
        "status": status,
    }


def dry_run_json(plan: CopyPlan) -> dict[str, Any]:
    return {
        "dryRun": True,
        **_target_json(plan, "unchanged" if plan.complete else "would-copy"),
        "blobs": [
            {
                "digest": str(b.digest),
                "size": b.size,
                "mediaType": b.media_type,
                "action": plan.blob_actions[b.digest],
            }
            for b in plan.graph.blobs
        ],
        "manifests": [
            {
                "digest": str(m.digest),
                "mediaType": m.media_type,
                "action": "present" if m.digest in plan.present_manifests else "push",
            }
            for m in plan.graph.manifests
        ],
        "tagAction": "present" if plan.tagged else "tag",
    }


def already_copied_json(done: CopyPlan, *, dry_run: bool = False) -> dict[str, Any]:
    """The result of a copy :func:`already_copied` found done (a dry run's plan too)."""
    log.info("%s is already tagged %s: nothing to do", done.reference, done.tag)
    if dry_run:
        return dry_run_json(done)
    result = CopyResult(done)
    result.blobs["existing"] = len(done.graph.blobs)
    return copy_result_json(result)


def copy_image(
    spec: SourceSpec,
    client: RegistryClient,
    namespace: str,
    tag: str,
    *,
    source_client: RegistryClient | None = None,
    dry_run: bool = False,
    progress: Callable[[Blob], Progress | None] | None = None,
    jobs: int = COPY_JOBS,
    tag_absent: bool = False,
) -> dict[str, Any]:
    """Plan, then (unless ``dry_run``) push; returns the JSON result. ``progress(blob)``
    may give a callback for that blob's transfer (bytes so far, total); ``jobs`` blobs
    are copied at a time (:func:`push_copy`). ``tag_absent``: the caller has just found
    the destination tag absent (a HEAD answered 404), so it is not asked again here;
    :func:`push_copy` looks once more before it writes the tag."""
    source = open_source(spec, client, source_client)
    if tag_absent:
        _checked_tag(tag)
        done, current = None, None
    else:
        done, current = already_copied(source, client, namespace, tag)
    if done is not None:
        return already_copied_json(done, dry_run=dry_run)
    # a registry-to-registry copy to a tag that does not exist yet HEADs each blob in the
    # blob's job (a layout's blob is hashed before its push: it is looked for here)
    probe = dry_run or current is not None or not isinstance(source, RegistrySource)
    plan = plan_copy(source, client, namespace, tag, current=current, probe_blobs=probe)
    if dry_run:
        return dry_run_json(plan)
    if plan.complete:
        log.info("%s is already tagged %s, everything present: nothing to do", plan.reference, tag)
    return copy_result_json(push_copy(plan, source, client, progress=progress, jobs=jobs))
