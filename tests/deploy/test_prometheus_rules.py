"""deploy/prometheus/alerts.yaml: valid (promtool check), firing when it should (promtool test), on real series."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from service.metrics import AUDIT_METRIC_NAMES
from tests.deploy.conftest import REPO_ROOT

RULES = REPO_ROOT / "deploy" / "prometheus" / "alerts.yaml"
RULE_TESTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.test.yaml"


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("promtool")
    if executable is None:
        pytest.fail("promtool not found: apt-get install prometheus (see .ci/test)")
    return subprocess.run(
        [executable, *(str(arg) for arg in args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=RULES.parent,
    )


def test_the_alert_rules_are_valid() -> None:
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout


def test_the_alerts_fire_on_dead_letters_an_ageing_or_growing_backlog_and_an_unreachable_database() -> None:
    result = promtool("test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_use_only_series_the_service_exports() -> None:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expression in expressions for name in re.findall(r"\bcds_audit_[a-z_]+\b", expression)}
    assert used <= set(AUDIT_METRIC_NAMES)
    # Dead letters, backlog (size and age) each have an alert.
    required = {
        "cds_audit_records_dead_lettered_total",
        "cds_audit_spool_backlog",
        "cds_audit_spool_oldest_age_seconds",
    }
    assert required <= used
