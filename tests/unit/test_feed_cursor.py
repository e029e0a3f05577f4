"""Change-feed cursors: encoding, parsing, and refusing text that is not a cursor."""

from __future__ import annotations

import base64

import pytest

from gateway.feed_cursor import MAX_CURSOR, BadCursor, encode_cursor, parse_cursor


def test_a_cursor_round_trips_and_is_canonical() -> None:
    """Parsing an encoded cursor gives its positions back; equal positions give equal texts."""
    positions = {"b.topic": {2: 7, 0: 3}, "a.topic": {0: 0}}
    text = encode_cursor(positions)
    assert parse_cursor(text) == positions
    assert encode_cursor({"a.topic": {0: 0}, "b.topic": {0: 3, 2: 7}}) == text
    assert "=" not in text


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "!!!",
        "a",
        "x" * (MAX_CURSOR + 1),
        _b64(b"not json"),
        _b64(b"[]"),
        _b64(b"{}"),
        _b64(b'{"t": 1}'),
        _b64(b'{"t": {"x": 1}}'),
        _b64(b'{"t": {"01": 1}}'),
        _b64(b'{"t": {"0": -1}}'),
        _b64(b'{"t": {"0": 1.5}}'),
        _b64(b'{"t": {"0": true}}'),
        _b64(b'{"t": {"0": 99999999999999999999}}'),
        _b64(b"\xff\xfe"),
        _b64(b"[" * 5000),
    ],
)
def test_text_that_is_not_a_cursor_is_refused(text: str) -> None:
    """Each malformed text raises BadCursor (a 400 for the caller), never another error."""
    with pytest.raises(BadCursor):
        parse_cursor(text)
