"""``mscc-cds seed``, ``screen`` and ``call`` against the SEKMET sandbox and a running service.

The service runs as its own process (``python -m service serve``) on a loopback port,
trusting one CDS Client whose key the test generates, so ``call`` proves the JWT it
signs is accepted by the real verifier.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from service.cli import main
from service.cli.exitcodes import CARDS, FAILURE, NO_CARDS, OK
from tests.scenarios import card_multiset
from tests.servicepaths import service_path

pytestmark = pytest.mark.integration

#: Away from the windows' edges: seconds between seeding and calling cannot flip them.
SHIFTED_SCENARIOS = ("01-r1-neuro-urinary-retention", "11-r2-thoracic-back-pain", "78-healthy-patient")


@pytest.fixture
def cli_env(clean_mscc_environment: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The in-process commands read MSCC_* like the service: a private store, nothing inherited."""
    monkeypatch.setenv("MSCC_STORE__URL", f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}")


@pytest.fixture
def reference_cards(
    sandbox: Any, make_settings: Callable[..., Any], running_app: Callable[..., Any]
) -> Callable[[Any], Counter[tuple[str, str]]]:
    """The service's answer to a scenario with its full prefetch at its referenceTime."""

    def answer(scenario: Any) -> Counter[tuple[str, str]]:
        request = copy.deepcopy(scenario.request)
        request.pop("fhirServer", None)

        async def post() -> Any:
            async with running_app(make_settings(), clock=lambda: scenario.reference_time) as client:
                return await client.post(service_path(), json=request)

        response = anyio.run(post)
        assert response.status_code == 200, response.text
        return card_multiset(response.json()["cards"])

    return answer


def by_name(sandbox: Any, name: str) -> Any:
    return next(scenario for scenario in sandbox.scenarios if scenario.name == name)


def seed(sandbox: Any, *flags: str) -> int:
    return main(["seed", "--fhir-server", sandbox.base_url, "--token", sandbox.token, *flags])


@pytest.mark.usefixtures("cli_env")
def test_seed_loads_every_sandbox_patient_and_prints_its_id(sandbox: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert seed(sandbox, "--no-shift-dates") == OK
    out, err = capsys.readouterr()
    printed = [line.split("\t")[0] for line in out.splitlines()]
    assert printed == [scenario.patient_id for scenario in sandbox.scenarios]
    assert f"Loaded {len(sandbox.scenarios)} patients." in err


@pytest.mark.usefixtures("cli_env")
def test_seed_with_a_wrong_token_fails_clearly(sandbox: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["seed", "--fhir-server", sandbox.base_url, "--token", "wrong", "--no-shift-dates"])
    err = capsys.readouterr().err
    assert code == FAILURE
    assert "(HTTP 401)" in err
    assert "Traceback" not in err


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize("name", ["01-r1-neuro-urinary-retention", "76-lung-cancer-no-findings"])
def test_screen_at_the_reference_time_matches_the_prefetch_answer(
    sandbox: Any, name: str, reference_cards: Callable[[Any], Any], capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = by_name(sandbox, name)
    expected = reference_cards(scenario)
    capsys.readouterr()
    code = main(
        [
            "screen",
            *("--fhir-server", sandbox.base_url, "--token", sandbox.token),
            *("--patient", scenario.patient_id, "--at", scenario.reference_time.isoformat(), "--json"),
        ]
    )
    cards = orjson.loads(capsys.readouterr().out)["cards"]
    assert card_multiset(cards) == expected
    assert code == (CARDS if cards else NO_CARDS)


@pytest.mark.usefixtures("cli_env")
def test_screen_prints_cards_readably(sandbox: Any, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = by_name(sandbox, "01-r1-neuro-urinary-retention")
    code = main(
        [
            "screen",
            *("--fhir-server", sandbox.base_url, "--token", sandbox.token),
            *("--patient", scenario.patient_id, "--at", scenario.reference_time.isoformat()),
        ]
    )
    out = capsys.readouterr().out
    assert code == CARDS
    assert out.splitlines()[0].endswith(f"for patient {scenario.patient_id} at {scenario.reference_time.isoformat()}")
    for card in scenario.expected_cards:
        assert f"{card.indicator.upper():<8} {card.rule_id:<4} " in out


@pytest.mark.usefixtures("cli_env")
def test_screen_with_a_wrong_token_is_a_clear_failure(sandbox: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["screen", "--fhir-server", sandbox.base_url, "--token", "wrong", "--patient", "s01-patient"])
    err = capsys.readouterr().err
    assert code == FAILURE
    assert "FHIR server refused the access token (401)" in err
    assert "Traceback" not in err


@pytest.mark.usefixtures("cli_env")
def test_call_without_a_client_jwt_is_refused_by_the_service(
    sandbox: Any, service_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "call",
            "--service",
            service_url,
            "--fhir-server",
            sandbox.base_url,
            "--token",
            sandbox.token,
            "--patient",
            "s01-patient",
        ]
    )
    err = capsys.readouterr().err
    assert code == FAILURE
    assert "HTTP 401" in err
    assert "Traceback" not in err


@pytest.mark.usefixtures("cli_env")
def test_seed_shifted_then_call_and_screen_at_now_give_the_reference_cards(
    sandbox: Any,
    service_url: str,
    client_key: Any,
    reference_cards: Callable[[Any], Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Shifted dates make the windows fire at the real time, through a real HTTP service with a real JWT."""
    scenarios = [by_name(sandbox, name) for name in SHIFTED_SCENARIOS]
    expected = {scenario.name: reference_cards(scenario) for scenario in scenarios}
    assert any(expected.values()), "at least one of these scenarios should produce cards"
    try:
        assert seed(sandbox) == OK  # --shift-dates is the default
        for scenario in scenarios:
            capsys.readouterr()
            call = main(
                [
                    "call",
                    *("--service", service_url, "--fhir-server", sandbox.base_url, "--token", sandbox.token),
                    *("--patient", scenario.patient_id, "--json"),
                    *("--signing-key", str(client_key.path), "--issuer", client_key.issuer, "--kid", client_key.kid),
                ]
            )
            called = capsys.readouterr()
            assert "Hook patient-view: POST" in called.err
            called_cards = orjson.loads(called.out)["cards"]
            screen = main(
                [
                    "screen",
                    *("--fhir-server", sandbox.base_url, "--token", sandbox.token),
                    *("--patient", scenario.patient_id, "--json"),
                ]
            )
            screened_cards = orjson.loads(capsys.readouterr().out)["cards"]
            assert card_multiset(called_cards) == card_multiset(screened_cards) == expected[scenario.name], (
                scenario.name
            )
            assert call == screen == (CARDS if called_cards else NO_CARDS)
    finally:
        # the other tests screen the scenarios at their referenceTime
        assert seed(sandbox, "--no-shift-dates") == OK
