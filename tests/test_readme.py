"""README.md stays true: its configuration table is the one the settings model renders."""

from __future__ import annotations

from pathlib import Path

from service.settings_doc import README_END, README_START, render_readme_section

README = Path(__file__).resolve().parent.parent / "README.md"


def test_configuration_table_matches_settings() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(README_START) : text.index(README_END) + len(README_END)]
    assert section == render_readme_section(), "run `python -m service.settings_doc --write` to refresh README.md"


def test_readme_starts_with_the_two_commands() -> None:
    head = README.read_text(encoding="utf-8")[:3000]
    assert "python3 -m venv .venv" in head and "source .venv/bin/activate" in head
    assert "mscc-cds serve" in head
    assert "bash .ci/test" in head
    ci_test = (README.parent / ".ci" / "test").read_text(encoding="utf-8")
    assert ".venv/bin/pytest" in ci_test
    assert "exec bash .ci/test" in (README.parent / ".ci" / "run").read_text(encoding="utf-8")
