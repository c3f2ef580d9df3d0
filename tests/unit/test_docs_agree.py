"""The README describes what the product prints: each label of the fleet's drift column."""

from __future__ import annotations

from pathlib import Path

from arrakis_engine.use_cases.operations import drift_label

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_drift_label_the_fleet_shows_is_in_the_readme():
    shown = {
        drift_label(None, None, None, None),
        drift_label(2, None, None, None),
        drift_label(2, 1, "applied", None).split(" (")[0],
        drift_label(2, 2, "applied", None),
        *(drift_label(2, 2, "applied", {"status": s}) for s in ("high", "medium", "low", "in sync")),
    }
    assert shown == {"no plan yet", "not synthesized", "behind", "not checked", "high", "medium", "low", "in sync"}
    fleet = README.split("- **Fleet**", 1)[1].split("- **Community**", 1)[0]
    for label in shown:
        assert f"`{label}" in fleet, label
