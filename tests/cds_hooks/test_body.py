"""Reading a request body: media type (415), size (413), syntax (400) and nesting depth (413)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.types import Message

from cds_hooks.body import BodyLimits, json_depth_exceeds, read_json_body
from cds_hooks.errors import MalformedRequest, PayloadTooLarge, UnsupportedMediaType

pytestmark = pytest.mark.anyio

SMALL = BodyLimits(max_bytes=1024, max_depth=8)


def _request(chunks: Sequence[bytes], headers: dict[str, str] | None = None) -> Request:
    """A POST whose body arrives in ``chunks``, as an ASGI server would stream it."""
    pending: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ] or [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/cds-services/x",
        "query_string": b"",
        "headers": [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()],
    }
    return Request(scope, receive)


def _json_request(payload: Any, **headers: str) -> Request:
    return _request([orjson.dumps(payload)], {"content-type": "application/json", **headers})


async def test_a_json_body_is_parsed() -> None:
    assert await read_json_body(_json_request({"hook": "patient-view"}), SMALL) == {"hook": "patient-view"}


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/fhir+json", None],
)
async def test_json_media_types_and_a_missing_header_are_accepted(content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    assert await read_json_body(_request([b"[1]"], headers), SMALL) == [1]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/json"]
)
async def test_other_media_types_are_415(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        await read_json_body(_request([b"{}"], {"content-type": content_type}), SMALL)
    assert caught.value.status_code == 415


async def test_a_declared_length_over_the_cap_is_413_before_the_body_is_read() -> None:
    async def receive() -> Message:
        raise AssertionError("the body must not be read")

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1025")],
    }
    with pytest.raises(PayloadTooLarge, match="exceeds 1024 bytes") as caught:
        await read_json_body(Request(scope, receive), SMALL)
    assert caught.value.status_code == 413


async def test_a_streamed_body_over_the_cap_is_413() -> None:
    # No content-length (chunked transfer): the cap is enforced while streaming.
    chunks = [b"[" + b"1," * 200, b"1," * 200, b"1," * 200 + b"1]"]
    with pytest.raises(PayloadTooLarge, match="exceeds 1024 bytes"):
        await read_json_body(_request(chunks, {"content-type": "application/json"}), SMALL)


async def test_a_body_longer_than_its_declared_length_is_still_capped() -> None:
    chunks = [b"[" + b"1," * 600 + b"1]"]
    with pytest.raises(PayloadTooLarge):
        await read_json_body(_request(chunks, {"content-type": "application/json", "content-length": "10"}), SMALL)


async def test_a_body_of_exactly_the_cap_is_read() -> None:
    body = b"[" + b"1," * 510 + b"10]"
    assert len(body) == 1024
    assert len(await read_json_body(_request([body[:100], body[100:]]), SMALL)) == 511


async def test_an_empty_body_is_400() -> None:
    with pytest.raises(MalformedRequest, match=r"The request body is empty\.") as caught:
        await read_json_body(_request([], {"content-type": "application/json"}), SMALL)
    assert caught.value.status_code == 400


@pytest.mark.parametrize("body", [b"{", b'{"hook": }', b"hook=patient-view", b"{'hook': 1}", b"[1,]"])
async def test_invalid_json_is_400_with_the_position(body: bytes) -> None:
    with pytest.raises(MalformedRequest, match=r"not valid JSON: .* at position \d+") as caught:
        await read_json_body(_request([body], {"content-type": "application/json"}), SMALL)
    assert caught.value.status_code == 400


def _nested(depth: int) -> bytes:
    return b'{"a":' * (depth // 2) + b"[" * (depth - depth // 2) + b"]" * (depth - depth // 2) + b"}" * (depth // 2)


async def test_nesting_at_the_cap_is_accepted_and_one_deeper_is_413() -> None:
    assert await read_json_body(_request([_nested(8)]), SMALL) is not None
    with pytest.raises(PayloadTooLarge, match="nests deeper than 8 levels") as caught:
        await read_json_body(_request([_nested(9)]), SMALL)
    assert caught.value.status_code == 413


async def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    payload = {"detail": "[" * 100 + "{" * 100, "quote": 'a "quoted [[[" text', "slash": "\\" + "]" * 50}
    assert await read_json_body(_json_request(payload), SMALL) == payload


# -- the depth scanner itself ------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "depth"),
    [
        (b"1", 0),
        (b'"[[["', 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b"[[],[[]],[[[]]]]", 4),
        (b'{"a": "}}}]]]", "b": [["\\"[["]]}', 3),
    ],
)
def test_depth_is_measured_outside_strings(document: bytes, depth: int) -> None:
    assert not json_depth_exceeds(document, depth)
    if depth:
        assert json_depth_exceeds(document, depth - 1)


def test_unbalanced_brackets_count_by_their_openers() -> None:
    # Invalid JSON is the parser's to reject; the depth check only must not miss depth.
    assert json_depth_exceeds(b"[[[[", 2)
    assert not json_depth_exceeds(b"[}", 2)
    assert not json_depth_exceeds(b"]]]]", 2)


async def test_more_containers_than_the_cap_is_413() -> None:
    limits = BodyLimits(max_bytes=512, max_depth=8, max_containers=3)
    assert await read_json_body(_request([b'[{}, [], "[[[["]']), limits) == [{}, [], "[[[["]
    with pytest.raises(PayloadTooLarge, match="more than 3 JSON objects and arrays") as caught:
        await read_json_body(_request([b"[{}, [], {}]"]), limits)
    assert caught.value.status_code == 413


def test_the_default_limits_fit_a_large_prefetch() -> None:
    limits = BodyLimits()
    assert limits.max_bytes == 16 * 1024 * 1024
    assert limits.max_depth == 64


# -- the depth scanner against the parsed document ---------------------------------------------

_TEXT = st.text(alphabet=st.sampled_from(list('ab[]{}"\\: ,\n\u00e9')), max_size=12)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_TEXT, children, max_size=4),
    max_leaves=40,
)


def _true_depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_true_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_true_depth(item) for item in value.values()), default=0)
    return 0


@given(document=_JSON, indent=st.booleans())
def test_the_depth_scanner_agrees_with_the_parsed_document(document: object, indent: bool) -> None:
    # Strings full of brackets, quotes and backslashes; compact and indented text alike.
    data = json.dumps(document, indent=2 if indent else None, ensure_ascii=False).encode()
    depth = _true_depth(document)
    assert not json_depth_exceeds(data, depth)
    if depth:
        assert json_depth_exceeds(data, depth - 1)
