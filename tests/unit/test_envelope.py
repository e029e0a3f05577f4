"""CloudEvents binary-mode headers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.envelope import CloudEvent, format_time


def test_headers_carry_required_attributes_and_extensions() -> None:
    """Rendering yields the ce_* attributes, the content type and the non-empty extensions."""
    event = CloudEvent(
        source="urn:govbus:agency:localgov",
        type="govbus.localgov.ResidentMoved",
        id="e-1",
        time=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        extensions={"correlationid": "c-9", "legalbasis": "주민등록법 제16조", "causationid": ""},
    )
    headers = dict(event.headers())
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == b"e-1"
    assert headers["ce_time"] == b"2026-01-02T03:04:05.678Z"
    assert headers["content-type"] == b"application/avro"
    assert headers["ce_legalbasis"].decode() == "주민등록법 제16조"
    assert "ce_causationid" not in headers


def test_headers_round_trip() -> None:
    """Parsing rendered headers gives the same event back."""
    event = CloudEvent(source="s", type="t", extensions={"correlationid": "c"})
    parsed = CloudEvent.from_headers(event.headers())
    assert parsed.id == event.id
    assert parsed.extensions == {"correlationid": "c"}
    assert format_time(parsed.time) == format_time(event.time)


def test_missing_required_header_is_named() -> None:
    """Headers without ce_type are refused, naming the missing attribute."""
    headers = [h for h in CloudEvent(source="s", type="t").headers() if h[0] != "ce_type"]
    with pytest.raises(ValueError, match="ce_type"):
        CloudEvent.from_headers(headers)


@pytest.mark.parametrize("generator", ["new_event_id", "python_event_id"])
def test_event_ids_are_version_7_uuids_of_now_and_unique(generator: str) -> None:
    """Generated event ids parse as RFC 9562 version-7 UUIDs carrying the current millisecond, unrepeated."""
    import time
    import uuid

    from schemas import envelope

    make = getattr(envelope, generator)
    before = time.time_ns() // 1_000_000
    ids = [make() for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for text in ids[:200]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, text)
        assert before <= parsed.int >> 80 <= after
