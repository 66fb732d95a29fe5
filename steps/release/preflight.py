"""What a release's inputs must pass before anything is pushed, with no registry.

A module of its own, apart from :mod:`.plan`: the bundle step runs it too, and should not
import the release plan's registry machinery (the channel protocol, the manifest's JSON
Schema) to do so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from steps.errors import BadInput

if TYPE_CHECKING:
    from pathlib import Path

    from steps.config import ReleaseConfig


def preflight(source: Path, config: ReleaseConfig, profile: str | None) -> str:
    """Everything about a release's inputs that can be checked without a registry,
    checked before anything is pushed (a push uses up immutable versions).

    The overlay's profile exists and its values hold every key path the appliance
    edits. (The overlay itself is checked by the bundle step before it pushes, against
    the charts actually published.) Returns the values profile. Raises
    :class:`BadInput` listing every problem.
    """
    from steps.bundle.publish import check_overlay_yaml
    from steps.release import profiles
    from steps.release.manifest import profile_values_problems

    profile = profile or config.values_profile
    overlay = config.overlay_dir(source)
    if not overlay.is_dir():
        raise BadInput(
            f"overlay folder {overlay} does not exist",
            hint=f"check --source, or the overlay of {config.origin}",
        )
    # Every overlay file through the bounded YAML loader, before any push or subprocess.
    check_overlay_yaml(overlay)
    values = profiles.load_profile_values(overlay, profile)
    problems = profile_values_problems(values, profile)
    if problems:
        raise BadInput(
            f"the release inputs under {source} are not publishable (nothing was pushed):\n  "
            + "\n  ".join(problems),
            hint="fix the overlay's profile values: the appliance edits these key paths "
            "line by line and fails when one is absent",
        )
    return profile


def preflight_key(source: Path, config: ReleaseConfig, profile: str | None) -> tuple[str, ...]:
    """What one run remembers a passed :func:`preflight` by (``RunContext.memo``): the run
    reads one source tree, so publish's own preflight and its steps' are one check."""
    from pathlib import Path

    return ("preflight", str(Path(source).resolve()), repr(config), str(profile))
