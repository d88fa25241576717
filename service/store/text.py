"""Text the store can hold: what the audit trail escapes and caps, and what feedback refuses.

PostgreSQL refuses NUL (U+0000) in ``text`` and ``json``; no driver encodes a lone
surrogate (U+D800-U+DFFF) as UTF-8; and a unique index cannot hold a key of more than
about 2,700 bytes. Control characters are storable but turn an identifier in a report or
a terminal into something else than it looks like.

* **Audit records** are never refused (their call has been answered): in each text field
  a backslash becomes ``\\\\``, every C0 control character, DEL and C1 control character
  becomes ``\\xNN`` and a lone surrogate ``\\uDNNN``, so the original can be read back;
  a field longer than its cap keeps its first characters and a marker ``…[+N chars]``.
* **Feedback** fields that would be stored are refused (400) when they hold any of those
  characters or exceed their cap: the client can correct them and send again.
"""

from __future__ import annotations

import re

__all__ = ["escape_controls", "storable", "unstorable_reason"]

#: C0 controls, DEL, C1 controls, lone surrogates, and the backslash that escapes them.
_ESCAPED = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\\]")
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(value: str) -> str:
    """``value`` with control characters and lone surrogates escaped (see the module docstring)."""
    return _ESCAPED.sub(_escape, value)


def storable(value: str | None, cap: int) -> str | None:
    """An audit field as stored: escaped, then cut to ``cap`` characters with a marker saying how many went."""
    if value is None:
        return None
    escaped = escape_controls(value)
    if len(escaped) <= cap:
        return escaped
    return f"{escaped[:cap]}…[+{len(escaped) - cap} chars]"


def unstorable_reason(value: str, cap: int) -> str | None:
    """Why a feedback field cannot be stored as sent, or ``None`` when it can."""
    if len(value) > cap:
        return f"longer than {cap} characters"
    if _UNSTORABLE.search(value):
        return "contains a control character (U+0000-U+001F, U+007F-U+009F) or a lone surrogate"
    return None
