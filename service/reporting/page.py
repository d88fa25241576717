"""The HTML around the plots: one self-contained page (inline style, no script, nothing fetched) and its tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

__all__ = ["html_page", "html_table", "share"]

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 62em; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; } th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td.n { text-align: right; } .note { color: #555; font-size: 0.9em; } svg.plot { max-width: 100%; height: auto; }
"""


def share(value: float | None) -> str:
    """A proportion in whole per cent; "n/a" when there is nothing to divide by."""
    return f"{value:.0%}" if value is not None else "n/a"


def html_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A table; integers right-aligned with thousands separators, everything else escaped text."""
    head = "".join(f"<th>{escape(str(cell))}</th>" for cell in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell:,}</td>' if isinstance(cell, int) else f"<td>{escape(str(cell))}</td>" for cell in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_page(title: str, sections: Iterable[str]) -> str:
    """The whole document: ``sections`` are HTML fragments, already escaped."""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>" + "\n".join(sections) + "</body></html>\n"
    )
