"""Reading a request body safely: media type, size, JSON syntax and nesting depth.

Caps are enforced before any model sees the data, so a hostile or broken client costs
us at most ``max_bytes`` of memory and a few C-speed passes over them.
"""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import orjson
from starlette.requests import Request

from cds_hooks.errors import MalformedRequest, PayloadTooLarge, UnsupportedMediaType

__all__ = ["BodyLimits", "json_depth_exceeds", "read_json_body"]

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
# Every byte but quotes and brackets: deleted in one C-level pass by bytes.translate.
_NOT_STRUCTURE = bytes(range(256)).translate(None, b'"[]{}')
# Openers become +1 and closers -1 (as signed bytes), so a running sum is the depth.
_DEPTH_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Upper bounds for one request body."""

    #: 16 MiB holds a 10,000-resource prefetch (about 10 MB) with room to spare.
    max_bytes: int = 16 * 1024 * 1024
    #: FHIR R4 resources nest about 10 levels inside a Bundle; 64 leaves room for
    #: extensions on extensions while refusing pathological documents.
    max_depth: int = 64
    #: JSON objects and arrays in one body. A 10,000-resource prefetch holds about
    #: 300,000; the cap stops a body of tiny nested containers from costing seconds
    #: of parsing on the event loop.
    max_containers: int = 1_000_000


def _brackets(data: bytes) -> bytes:
    """The document's brackets outside strings, in order.

    Only ``\\"`` and ``\\\\`` decide where a string ends, so escapes are removed only
    when one of them occurs. Then everything but quotes and brackets goes, in one C-level
    pass, and so do empty pairs of quotes: removing two adjacent quotes leaves every other
    character inside or outside a string as it was, and most strings hold no bracket.
    Quotes are left only around strings that hold brackets (rare in FHIR), which are cut
    out last. A 9 MB body costs a few translate passes instead of a split into a million
    ``bytes`` objects.
    """
    # One byte is found by memchr; a two-byte pattern by a search several times slower.
    if b"\\" in data and (b'\\"' in data or b"\\\\" in data):
        data = _ESCAPE.sub(b"", data)
    structure = data.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' not in structure:
        return structure
    return b"".join(structure.split(b'"')[::2])


def _depth_exceeds(brackets: bytes, max_depth: int) -> bool:
    # Each pass removes the innermost pairs: adjacent ``[]``, then adjacent ``{}``, which
    # may include braces the first replacement brought together. A pass so removes one or
    # two levels, and a document empty after k passes nests at most 2k deep: about 10 fast
    # passes for FHIR. What is left after max_depth // 2 passes (deeper documents, or
    # brackets that do not pair) is measured exactly, by a running sum.
    peeled = brackets
    for _ in range(max_depth // 2):
        if not peeled:
            return False
        peeled = peeled.replace(b"[]", b"").replace(b"{}", b"")
    if not peeled:
        return False
    return max(accumulate(array("b", brackets.translate(_DEPTH_STEPS)))) > max_depth


def json_depth_exceeds(data: bytes, max_depth: int) -> bool:
    """Whether the JSON document ``data`` nests deeper than ``max_depth``.

    The document is reduced to its brackets (:func:`_brackets`); one running sum over
    them gives the depth (well under a second of CPU for a hostile 16 MiB body, against
    8 s for peeling nested pairs level by level).
    """
    return _depth_exceeds(_brackets(data), max_depth)


def _is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        # Several CDS clients omit the header; the body is still parsed as JSON.
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type in ("application/json", "application/fhir+json") or media_type.endswith("+json")


async def read_json_body(request: Request, limits: BodyLimits) -> Any:
    """Read, bound and parse the JSON body of ``request``."""
    if not _is_json_media_type(request.headers.get("content-type")):
        raise UnsupportedMediaType()
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_bytes:
        raise PayloadTooLarge(f"The request body exceeds {limits.max_bytes} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_bytes:
            raise PayloadTooLarge(f"The request body exceeds {limits.max_bytes} bytes.")
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise MalformedRequest("The request body is empty.")
    brackets = _brackets(data)
    if brackets.count(b"[") + brackets.count(b"{") > limits.max_containers:
        raise PayloadTooLarge(f"The request body holds more than {limits.max_containers} JSON objects and arrays.")
    if _depth_exceeds(brackets, limits.max_depth):
        raise PayloadTooLarge(f"The request body nests deeper than {limits.max_depth} levels.")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"The request body is not valid JSON: {exc.msg} at position {exc.pos}.") from None
