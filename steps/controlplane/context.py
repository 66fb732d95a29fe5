"""The build context: the checkout root (as alga-psa builds it) minus what
``.dockerignore`` excludes, assembled as a deterministic tar.
"""

from __future__ import annotations

import io
import logging
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from steps.controlplane.dockerignore import IgnoreMatcher, read_dockerignore
from steps.errors import BadInput

log = logging.getLogger("alga_release.controlplane")

# -- build context -------------------------------------------------------------------

#: alga-psa builds the control-plane image from the repository root:
#: ``docker build -f ee/appliance/control-plane/Dockerfile .`` (its COPY lines name
#: ``ee/appliance/...`` paths), so the default context is the checkout itself.
DEFAULT_CONTEXT = "."
DEFAULT_DOCKERFILE = "ee/appliance/control-plane/Dockerfile"
EXTERNAL_DOCKERFILE = ".dockerfile.alga-release"


@dataclass(frozen=True)
class BuildContext:
    """A build context: which files go to the engine, and the Dockerfile's name in it."""

    context_dir: Path
    dockerfile: Path
    dockerfile_name: str  # the path inside the context tar the engine is told to use
    entries: tuple[str, ...]  # relative POSIX paths (folders, files, symlinks), sorted
    ignore_patterns: tuple[str, ...]

    def write_tar(self, fh: BinaryIO) -> int:
        """Write the context as an uncompressed tar; returns the number of entries."""
        count = 0
        with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for rel in self.entries:
                info = tar.gettarinfo(str(self.context_dir / rel), arcname=rel)
                _normalise(info)
                if info.isreg():
                    with (self.context_dir / rel).open("rb") as content:
                        tar.addfile(info, content)
                else:
                    tar.addfile(info)
                count += 1
            if self.dockerfile_name == EXTERNAL_DOCKERFILE:
                data = self.dockerfile.read_bytes()
                info = tarfile.TarInfo(EXTERNAL_DOCKERFILE)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
                count += 1
        return count


def _normalise(info: tarfile.TarInfo) -> None:
    # As the Docker CLI does: owner root, no user or group names.
    info.uid = info.gid = 0
    info.uname = info.gname = ""


def resolve_build_paths(
    source: Path, context: str | None = None, dockerfile: str | None = None
) -> tuple[Path, Path]:
    """``(context folder, Dockerfile)`` of a source checkout; both must exist.

    ``context`` and ``dockerfile`` are relative to ``source`` (absolute paths are
    taken as given). Defaults: the checkout itself and
    ``ee/appliance/control-plane/Dockerfile``, as alga-psa builds it.
    """
    if not source.is_dir():
        raise BadInput(f"--source {source}: not a folder", hint="give the alga-psa checkout")
    context_dir = source / (context or DEFAULT_CONTEXT)
    if not context_dir.is_dir():
        raise BadInput(
            f"build context {context_dir} is not a folder",
            hint="give the alga-psa checkout with --source, or the context with --context",
        )
    dockerfile_path = source / (dockerfile or DEFAULT_DOCKERFILE)
    if not dockerfile_path.is_file():
        raise BadInput(
            f"Dockerfile {dockerfile_path} does not exist",
            hint="--source must be an alga-psa checkout (with ee/appliance/control-plane/"
            "Dockerfile), or name the Dockerfile with --dockerfile (relative to --source)",
        )
    return context_dir.resolve(), dockerfile_path.resolve()


def assemble_context(context_dir: Path, dockerfile: Path) -> BuildContext:
    """List the context's files minus what ``.dockerignore`` excludes.

    The Dockerfile and ``.dockerignore`` are always sent (the engine needs them;
    like Docker, it drops them again when ``.dockerignore`` lists them). A
    Dockerfile outside the context is added under a fixed name. Symlinks are sent
    as links, never followed; sockets and devices are skipped.
    """
    ignore_file = context_dir / ".dockerignore"
    patterns: list[str] = []
    if ignore_file.is_file():
        patterns = read_dockerignore(ignore_file.read_text(encoding="utf-8"))
    matcher = IgnoreMatcher(patterns)
    try:
        dockerfile_name = dockerfile.relative_to(context_dir).as_posix()
    except ValueError:
        dockerfile_name = EXTERNAL_DOCKERFILE
    always = {dockerfile_name, ".dockerignore"}
    entries: list[str] = []
    for top, dirs, files in os.walk(context_dir):
        top_path = Path(top)
        rel_top = top_path.relative_to(context_dir).as_posix()
        keep_dirs: list[str] = []
        names = sorted(dirs + files)
        for name in names:
            full = top_path / name
            rel = name if rel_top == "." else f"{rel_top}/{name}"
            is_dir = full.is_dir() and not full.is_symlink()
            excluded = rel not in always and matcher.excluded(rel)
            if is_dir:
                if excluded and not matcher.may_reinclude_below(rel):
                    continue  # nothing below can come back: do not even walk it
                keep_dirs.append(name)
                if not excluded:
                    entries.append(rel)
            elif not excluded and (full.is_symlink() or full.is_file()):
                entries.append(rel)
        dirs[:] = sorted(keep_dirs)
    return BuildContext(
        context_dir=context_dir,
        dockerfile=dockerfile,
        dockerfile_name=dockerfile_name,
        entries=tuple(sorted(entries)),
        ignore_patterns=tuple(patterns),
    )
