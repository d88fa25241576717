"""``mscc-cds`` itself: ``--version``, ``--help`` that imports nothing heavy, exit codes in every help."""

from __future__ import annotations

import pytest

from service import __version__
from service.cli import _COMMANDS, main
from tests.imports import loaded_by

#: What makes a start slow (seconds, measured in issue 14): none of it is needed to print help.
HEAVY_MODULES = (
    "asyncio",
    "httpx",
    "pydantic",
    "fastapi",
    "uvicorn",
    "sqlalchemy",
    "jwt",
    "prometheus_client",
    "orjson",
    "fhir.resources",
    "service.settings",
    "service.app",
)

_RUN_CLI = """
from service.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
"""


def _imported_by(*argv: str) -> list[str]:
    return loaded_by(_RUN_CLI, HEAVY_MODULES, *argv)


@pytest.mark.parametrize("argv", [("--help",), ("--version",), *((name, "--help") for name in _COMMANDS)], ids=str)
def test_help_imports_none_of_the_heavy_modules(argv: tuple[str, ...]) -> None:
    assert _imported_by(*argv) == []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"mscc-cds {__version__}"


@pytest.mark.parametrize("command", _COMMANDS)
def test_every_command_lists_its_exit_codes(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = capsys.readouterr().out
    codes = help_text.split("exit codes:", 1)[1]
    assert "  0 " in codes and "  2 " in codes and "MSCC_* settings" in codes
