"""Cards as a person reads them on a terminal, or as JSON for scripts (``screen``, ``call``)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from service.cli.exitcodes import CARDS, NO_CARDS

__all__ = ["cards_exit_code", "render_cards", "render_cards_json"]

_WIDTH = 100
_INDENT = "    "


def cards_exit_code(cards: Sequence[Mapping[str, Any]]) -> int:
    return CARDS if cards else NO_CARDS


def render_cards_json(cards: Sequence[Mapping[str, Any]]) -> str:
    return orjson.dumps({"cards": list(cards)}, option=orjson.OPT_INDENT_2).decode()


def _rule_id(card: Mapping[str, Any]) -> str:
    topic = (card.get("source") or {}).get("topic") or {}
    return str(topic.get("code") or "-")


def _block(text: str) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines():
        if not paragraph.strip():
            lines.append("")
            continue
        # continuation lines of a markdown list item line up under its text
        hanging = " " * (len(paragraph) - len(paragraph.lstrip(" -*")))
        lines.extend(
            textwrap.wrap(
                paragraph,
                _WIDTH,
                initial_indent=_INDENT,
                subsequent_indent=_INDENT + hanging,
                break_on_hyphens=False,
            )
        )
    return lines


def _concept(value: Any) -> str:
    if not isinstance(value, Mapping):
        return ""
    if value.get("text"):
        return str(value["text"])
    for coding in value.get("coding") or ():
        if isinstance(coding, Mapping):
            return str(coding.get("display") or f"{coding.get('system', '')}|{coding.get('code', '')}")
    return ""


def _suggestion_lines(suggestion: Mapping[str, Any]) -> list[str]:
    recommended = " (recommended)" if suggestion.get("isRecommended") else ""
    lines = [f"{_INDENT}Suggestion: {suggestion.get('label', '')}{recommended}"]
    for action in suggestion.get("actions") or ():
        resource = action.get("resource") or {}
        what = resource.get("resourceType", action.get("resourceId", ""))
        detail = _concept(resource.get("code"))
        priority = f", priority {resource['priority']}" if resource.get("priority") else ""
        order = f" {what}: {detail}" if detail else f" {what}"
        lines.append(f"{_INDENT}  {action.get('type', '')}{order}{priority}")
    return lines


def render_cards(cards: Sequence[Mapping[str, Any]], heading: str) -> str:
    """Indicator, rule, summary, the evidence in the detail, suggested orders and links."""
    count = f"{len(cards)} card{'s' if len(cards) != 1 else ''}"
    lines = [f"{count} {heading}"]
    for card in cards:
        lines.append("")
        lines.append(f"{str(card.get('indicator', '')).upper():<8} {_rule_id(card):<4} {card.get('summary', '')}")
        if card.get("detail"):
            lines.extend(_block(str(card["detail"])))
        for suggestion in card.get("suggestions") or ():
            lines.extend(_suggestion_lines(suggestion))
        for link in card.get("links") or ():
            lines.append(f"{_INDENT}Link: {link.get('label', '')} <{link.get('url', '')}>")
        source = card.get("source") or {}
        if source.get("label"):
            url = f" <{source['url']}>" if source.get("url") else ""
            lines.append(f"{_INDENT}Source: {source['label']}{url}")
    return "\n".join(lines)
