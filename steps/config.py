"""The release config: where the charts and the overlay live in a source checkout.

The built-in default is the alga-psa repository's layout, so
``alga-release charts publish --source <alga-psa checkout>`` needs no file.
A config file (YAML or JSON) overrides it::

    charts:                 # chart name -> folder, relative to --source
      sebastian: helm
      pgbouncer: ee/helm/pgbouncer
    overlay: ee/appliance/flux
    valuesProfile: single-node

Chart names must be among the six the appliance knows (:data:`KNOWN_CHARTS`).
Pure except :func:`load_config`, which reads the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from steps.errors import BadInput

#: The six charts the appliance installs, in the order the overlay lists them.
KNOWN_CHARTS: tuple[str, ...] = (
    "sebastian",
    "pgbouncer",
    "temporal",
    "temporal-worker",
    "workflow-worker",
    "email-service",
)

ALGA_PSA_CHARTS: dict[str, str] = {
    "sebastian": "helm",
    "pgbouncer": "ee/helm/pgbouncer",
    "temporal": "ee/helm/temporal",
    "temporal-worker": "ee/helm/temporal-worker",
    "workflow-worker": "ee/helm/workflow-worker",
    "email-service": "ee/helm/email-service",
}
ALGA_PSA_OVERLAY = "ee/appliance/flux"
DEFAULT_PROFILE = "single-node"

_PROFILE_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class ReleaseConfig:
    """Where things are in a source checkout. Paths are relative, posix, inside it."""

    charts: Mapping[str, str] = field(default_factory=lambda: dict(ALGA_PSA_CHARTS))
    overlay: str = ALGA_PSA_OVERLAY
    values_profile: str = DEFAULT_PROFILE
    origin: str = "built-in alga-psa layout"

    def chart_dir(self, source: Path, name: str) -> Path:
        return source / self.charts[name]

    def overlay_dir(self, source: Path) -> Path:
        return source / self.overlay


def parse_config(data: Any, origin: str) -> ReleaseConfig:
    """Validate a parsed config document; raise :class:`BadInput` naming ``origin``."""
    if not isinstance(data, dict):
        raise BadInput(f"{origin}: the release config must be a mapping")
    unknown_keys = set(data) - {"charts", "overlay", "valuesProfile"}
    if unknown_keys:
        raise BadInput(
            f"{origin}: unknown key(s) {', '.join(sorted(unknown_keys))}",
            hint="allowed keys: charts, overlay, valuesProfile",
        )
    charts_raw = data.get("charts", ALGA_PSA_CHARTS)
    if not isinstance(charts_raw, dict) or not charts_raw:
        raise BadInput(f"{origin}: 'charts' must map chart names to folders")
    charts: dict[str, str] = {}
    for name, folder in charts_raw.items():
        if name not in KNOWN_CHARTS:
            raise BadInput(
                f"{origin}: unknown chart name {name!r}",
                hint=f"the appliance's charts are: {', '.join(KNOWN_CHARTS)}",
            )
        charts[name] = _relative(folder, f"{origin}: charts.{name}")
    overlay = _relative(data.get("overlay", ALGA_PSA_OVERLAY), f"{origin}: overlay")
    profile = data.get("valuesProfile", DEFAULT_PROFILE)
    if not isinstance(profile, str) or not _PROFILE_RE.match(profile):
        raise BadInput(f"{origin}: valuesProfile {profile!r} is not a valid profile name")
    return ReleaseConfig(charts=charts, overlay=overlay, values_profile=profile, origin=origin)


def load_config(path: Path | None) -> ReleaseConfig:
    """The config in ``path``, or the built-in alga-psa layout when ``path`` is None."""
    if path is None:
        return ReleaseConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read the release config {path}: {exc.strerror}") from None
    from steps import yamlload  # here: a step that only names the charts loads no YAML

    try:
        data = yamlload.load(text, str(path))
    except yamlload.YAMLError as exc:
        raise BadInput(f"{path}: not valid YAML or JSON: {exc}") from None
    return parse_config(data, str(path))


def _relative(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{where} must be a non-empty relative path")
    posix = PurePosixPath(value)
    if posix.is_absolute() or ".." in posix.parts:
        raise BadInput(f"{where}: {value!r} must be relative to --source and stay inside it")
    return str(posix)
