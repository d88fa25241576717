"""The Prometheus metrics of one app: requests, cards by rule, rule verdicts, missing prefetch."""

from __future__ import annotations

import pytest

from service.app import create_app
from service.metrics import AUDIT_METRIC_NAMES, app_metrics
from service.settings import Settings
from service.store.settings import StoreSettings
from tests.inprocess import SettableClock, serve_app
from tests.scenarios import SCENARIO_DIR, load_scenario
from tests.servicepaths import service_path

pytestmark = pytest.mark.anyio


async def test_a_hook_call_counts_its_cards_verdicts_and_missing_keys(store_settings: StoreSettings) -> None:
    app = create_app(Settings(store=store_settings), clock=SettableClock())
    r1 = load_scenario(SCENARIO_DIR / "01-r1-neuro-urinary-retention.json").request
    without_imaging = {**r1, "prefetch": {k: v for k, v in r1["prefetch"].items() if not k.startswith("imaging")}}
    async with serve_app(app) as client:
        assert (await client.post(service_path(), json=without_imaging)).status_code == 200
    exposition = app_metrics(app).exposition().decode()
    assert (
        'cds_cards_returned_total{indicator="critical",rule_id="R1",service_id="mscc-patient-view"} 1.0' in exposition
    )
    assert 'cds_rule_evaluations_total{result="fired",rule_id="R1",rule_version="1.0.0"} 1.0' in exposition
    assert 'cds_rule_evaluations_total{result="not_fired",rule_id="R6a",rule_version="1.0.0"} 1.0' in exposition
    assert 'cds_prefetch_missing_total{key="imagingOrders",service_id="mscc-patient-view"} 1.0' in exposition
    assert 'cds_requests_total{outcome="ok",route="/cds-services/{service_id}"} 1.0' in exposition


async def test_the_audit_trail_counts_spooled_and_written_records_under_the_alerts_names(
    store_settings: StoreSettings,
) -> None:
    app = create_app(Settings(store=store_settings), clock=SettableClock())
    r1 = load_scenario(SCENARIO_DIR / "01-r1-neuro-urinary-retention.json").request
    async with serve_app(app) as client:
        for _ in range(3):
            assert (await client.post(service_path(), json=r1)).status_code == 200
        spooled = app_metrics(app).exposition().decode()
    stopped = app_metrics(app).exposition().decode()  # the lifespan's end drained the spool

    assert "cds_audit_records_spooled_total 3.0" in spooled
    assert "cds_audit_records_written_total 3.0" in stopped
    assert "cds_audit_records_dead_lettered_total 0.0" in stopped
    assert "cds_audit_spool_backlog 0.0" in stopped
    assert "cds_audit_spool_oldest_age_seconds 0.0" in stopped
    assert "cds_audit_database_up 1.0" in stopped
    for name in AUDIT_METRIC_NAMES:
        assert f"\n{name} " in stopped, name
