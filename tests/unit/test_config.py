"""The release config: built-in alga-psa layout and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from steps.config import ALGA_PSA_CHARTS, KNOWN_CHARTS, load_config, parse_config
from steps.errors import BadInput


def test_default_is_the_alga_psa_layout() -> None:
    config = load_config(None)
    assert dict(config.charts) == ALGA_PSA_CHARTS
    assert config.charts["sebastian"] == "helm"
    assert all(config.charts[n] == f"ee/helm/{n}" for n in KNOWN_CHARTS if n != "sebastian")
    assert config.overlay == "ee/appliance/flux"
    assert config.values_profile == "single-node"
    assert config.chart_dir(Path("/src"), "sebastian") == Path("/src/helm")


def test_config_file_overrides(tmp_path: Path) -> None:
    f = tmp_path / "release.yaml"
    f.write_text(
        "charts:\n  sebastian: charts/sebastian\noverlay: flux\nvaluesProfile: talos-single-node\n"
    )
    config = load_config(f)
    assert dict(config.charts) == {"sebastian": "charts/sebastian"}
    assert config.overlay == "flux"
    assert config.values_profile == "talos-single-node"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"charts": {"nginx": "x"}}, "unknown chart name 'nginx'"),
        ({"charts": {"sebastian": "../outside"}}, "stay inside"),
        ({"charts": {"sebastian": "/abs"}}, "stay inside"),
        ({"charts": {}}, "'charts' must map"),
        ({"chart": {}}, "unknown key"),
        ({"valuesProfile": "Bad Profile"}, "valuesProfile"),
        ([], "must be a mapping"),
    ],
)
def test_bad_configs(data: object, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        parse_config(data, "release.yaml")


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="cannot read"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("charts: [unclosed\n")
    with pytest.raises(BadInput, match="not valid YAML"):
        load_config(bad)
