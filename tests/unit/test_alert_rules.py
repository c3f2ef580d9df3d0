"""The alert rules are valid Prometheus rules, and each alert is unit-tested by promtool firing
and not firing (ops/prometheus/alerts_test.yml)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "ops" / "prometheus"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is needed: Debian's prometheus package (scripts/services.sh installs it)")
    return path


def test_promtool_checks_the_rules():
    out = subprocess.run([promtool(), "check", "rules", str(RULES / "alerts.yml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 13 rules found" in out.stdout


def test_promtool_unit_tests_pass():
    out = subprocess.run([promtool(), "test", "rules", "alerts_test.yml"], cwd=RULES, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_every_alert_is_tested_firing_and_not_firing():
    alerts = re.findall(r"^\s*- alert: (\w+)", (RULES / "alerts.yml").read_text(), re.M)
    assert len(alerts) == 13
    tests = re.sub(r"\n\s*#[^\n]*", "", (RULES / "alerts_test.yml").read_text())
    cases = re.findall(r"alertname: (\w+)\n\s+exp_alerts:(.*?)(?=\n\s+- eval_time|\n\s+- interval|\Z)", tests, re.S)
    fires = {name for name, body in cases if body.strip() not in ("[]", "")}
    quiet = {name for name, body in cases if body.strip() == "[]"}
    assert set(alerts) == fires == quiet == {name for name, _ in cases}


def test_a_broken_rule_is_caught(tmp_path):
    """The check can fail: a rule with a bad expression is refused."""
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(\n")
    out = subprocess.run([promtool(), "check", "rules", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0
