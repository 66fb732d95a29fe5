"""The overlay's profile values: what the appliance needs from them, and a loader.

The appliance turns each release's ``profileValues`` into six ConfigMaps
``appliance-values-<name>`` (key ``<name>.<profile>.yaml``) in ``alga-system``,
after editing them with a line-based setter that fails when a key path is
absent (see :data:`REQUIRED_PATHS` and :func:`steps.release.setters.set_yaml_path`).
The texts come from ``<overlay>/profiles/<profile>/values/<name>.<profile>.yaml``.

Invariants:

- :data:`VALUES_NAMES` are the six HelmRelease names, in the consumer's order;
  :data:`HELM_RELEASE_CHARTS` maps each to the chart it installs.
- :func:`load_profile_values` returns exactly six entries, keyed
  :func:`values_key`, with each file's text unchanged (no YAML round trip: the
  consumer edits the text line by line, so the bytes it sees must be the file's).

What this module does not do: it does not parse or check the YAML (that is
:func:`steps.manifest.validate_manifest`'s consumer-contract check), and it
reads nothing outside ``<overlay>/profiles/``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from steps.errors import BadInput

#: The six values files (= HelmRelease names), in the order the consumer lists them.
VALUES_NAMES: tuple[str, ...] = (
    "alga-core",
    "pgbouncer",
    "temporal",
    "workflow-worker",
    "email-service",
    "temporal-worker",
)

#: HelmRelease name -> the chart it installs (``alga-core`` installs ``sebastian``).
HELM_RELEASE_CHARTS: Mapping[str, str] = MappingProxyType(
    {
        "alga-core": "sebastian",
        "pgbouncer": "pgbouncer",
        "temporal": "temporal",
        "workflow-worker": "workflow-worker",
        "email-service": "email-service",
        "temporal-worker": "temporal-worker",
    }
)

#: Values file name -> the dotted key paths the appliance sets in it. Its setter
#: throws when one is absent, which fails the install, so every path must exist.
REQUIRED_PATHS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "alga-core": (
            "bootstrap.mode",
            "appUrl",
            "host",
            "domainSuffix",
            "setup.image.tag",
            "server.image.tag",
        ),
        "pgbouncer": (),
        "temporal": (),
        "workflow-worker": ("image.tag",),
        "email-service": ("image.tag",),
        "temporal-worker": ("image.tag", "publicBaseUrl"),
    }
)

#: Values file name -> the key paths the in-cluster updater (the status service's update
#: Job, ``appliance-status.yaml``) sets on every upgrade, with its own line setter
#: (:func:`steps.release.setters.set_yaml_value_updater`); it fails the upgrade when one
#: cannot be found. A subset of :data:`REQUIRED_PATHS`.
UPDATER_PATHS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "alga-core": ("setup.image.tag", "server.image.tag"),
        "pgbouncer": (),
        "temporal": (),
        "workflow-worker": ("image.tag",),
        "email-service": ("image.tag",),
        "temporal-worker": ("image.tag",),
    }
)

#: A values profile name (a DNS label): also keeps a profile from escaping ``profiles/``.
PROFILE_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def values_key(name: str, profile: str) -> str:
    """``<name>.<profile>.yaml``: the profileValues key and the ConfigMap key."""
    return f"{name}.{profile}.yaml"


def expected_keys(profile: str) -> tuple[str, ...]:
    """The six profileValues keys for ``profile``, in :data:`VALUES_NAMES` order."""
    return tuple(values_key(name, profile) for name in VALUES_NAMES)


def values_file(overlay_dir: Path, profile: str, name: str) -> Path:
    """Where the overlay keeps the values file ``name`` of ``profile``."""
    return overlay_dir / "profiles" / profile / "values" / values_key(name, profile)


def available_profiles(overlay_dir: Path) -> list[str]:
    """The profile folders under ``<overlay>/profiles`` (sorted; empty if none)."""
    root = overlay_dir / "profiles"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def load_profile_values(overlay_dir: Path, profile: str) -> dict[str, str]:
    """Read the six values files of ``profile``: ``{<name>.<profile>.yaml: text}``.

    Raises :class:`BadInput` for an invalid profile name, a missing profile
    folder (listing the profiles that exist) or missing/unreadable files (all
    of them named at once). Texts are returned as read (UTF-8), unchanged.
    """
    if not PROFILE_PATTERN.match(profile):
        raise BadInput(
            f"values profile {profile!r} is not a valid profile name",
            hint="use lowercase letters, digits and '-', e.g. single-node",
        )
    existing = available_profiles(overlay_dir)
    folder = overlay_dir / "profiles" / profile
    if not folder.is_dir():
        raise BadInput(
            f"values profile {profile!r} not found: {folder} does not exist",
            hint=_profiles_hint(overlay_dir, existing),
        )
    values: dict[str, str] = {}
    problems: list[str] = []
    for name in VALUES_NAMES:
        path = values_file(overlay_dir, profile, name)
        try:
            values[values_key(name, profile)] = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            problems.append(f"{path} is missing")
        except UnicodeDecodeError:
            problems.append(f"{path} is not UTF-8 text")
        except OSError as exc:
            problems.append(f"{path} cannot be read: {exc.strerror}")
    if problems:
        raise BadInput(
            f"values profile {profile!r} is incomplete: the appliance needs all six "
            f"values files ({', '.join(VALUES_NAMES)}):\n  " + "\n  ".join(problems),
            hint=_profiles_hint(overlay_dir, existing),
        )
    return values


def _profiles_hint(overlay_dir: Path, existing: list[str]) -> str:
    if not existing:
        return f"{overlay_dir / 'profiles'} holds no profiles; check --source / the overlay path"
    return (
        f"profiles in {overlay_dir / 'profiles'}: {', '.join(existing)}; each needs "
        "values/<name>.<profile>.yaml for the six releases"
    )
