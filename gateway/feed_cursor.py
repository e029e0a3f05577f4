"""Change-feed cursors: where a feed stands in every partition of its model's topics.

A cursor is the base64url text (no padding) of the compact JSON ``{topic: {partition: next offset}}``:
for each partition, the offset of the first record the feed has *not* delivered yet. Every event of a
feed carries the cursor as it stands right after that event (its SSE ``id:``), so a client resuming with
its last event's id gets exactly the records after it: nothing missed, nothing repeated.

A cursor is opaque to clients but not secret: it names topics, partitions and offsets, nothing else.
:func:`parse_cursor` refuses anything that is not one (:class:`BadCursor`, a 400 for the caller).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping

MAX_CURSOR = 4096
"""Characters a cursor may have at most (a model reads a few topics of a few partitions each)."""
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_PARTITION = re.compile(r"0|[1-9][0-9]{0,8}")
Positions = dict[str, dict[int, int]]
"""topic → partition → next offset."""


class BadCursor(ValueError):  # noqa: N818 - the caller's input is bad; the route answers 400 with it
    """Text that is not a cursor; the message says why."""


def encode_cursor(positions: Mapping[str, Mapping[int, int]]) -> str:
    """The cursor text of ``positions`` (topics and partitions in sorted order, so equal cursors are
    equal texts)."""
    document = {
        topic: {str(partition): offset for partition, offset in sorted(partitions.items())}
        for topic, partitions in sorted(positions.items())
    }
    raw = json.dumps(document, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def parse_cursor(text: str) -> Positions:
    """The positions a cursor text holds; BadCursor when it is not a cursor."""
    text = text.strip()
    if not text:
        raise BadCursor("the cursor is empty")
    if len(text) > MAX_CURSOR:
        raise BadCursor(f"the cursor is longer than {MAX_CURSOR} characters")
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise BadCursor("the cursor is not base64url text")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        document = json.loads(raw.decode("ascii"))
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadCursor("the cursor does not hold a feed position") from exc
    if not isinstance(document, dict) or not document:
        raise BadCursor("the cursor does not hold a feed position")
    positions: Positions = {}
    for topic, partitions in document.items():
        if not isinstance(partitions, dict):
            raise BadCursor("the cursor does not hold a feed position")
        parsed: dict[int, int] = {}
        for partition, offset in partitions.items():
            if not _PARTITION.fullmatch(partition):
                raise BadCursor(f"the cursor names partition {partition[:20]!r}, not a partition number")
            if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < 2**63:
                raise BadCursor("the cursor holds an offset that is not a non-negative integer")
            parsed[int(partition)] = offset
        positions[topic] = parsed
    return positions
