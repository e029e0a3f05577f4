"""The audit hash chain as pure logic: record hashes, and the verifier naming the first broken link."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from gateway.audit.chain import (
    GENESIS,
    ChainVerifier,
    audit_time,
    canonical,
    chained,
    link,
    parse_records,
    record_hash,
)
from gateway.audit.entry import AuditEntry

WRITER = "gateway-a"


def _entry(n: int, organisation: str = "ministry-of-welfare") -> AuditEntry:
    return AuditEntry(
        action="read",
        organisation=organisation,
        role="ministry",
        credential="gbk_0123456789abcdef",
        model="residents",
        keys=(f"R00420000000{n % 10}",),
        subjects=(f"R00420000000{n % 10}",),
        fields=("name", "address"),
        purpose="benefits",
        legal_basis="Act 1 art. 2",
        agreement="welfare-residents",
        outcome="disclosed",
    )


def _chain(count: int, writer: str = WRITER) -> list[dict[str, object]]:
    records, prev = [], GENESIS
    for seq in range(1, count + 1):
        record = chained(_entry(seq), "2026-12-02T04:30:00.123Z", writer, seq, prev)
        records.append(record)
        prev = str(record["hash"])
    return records


def _verify(records: list[dict[str, object]]) -> ChainVerifier:
    verifier = ChainVerifier()
    for offset, record in enumerate(records):
        verifier.feed(str(record["writer"]).encode(), orjson.dumps(record), 0, offset)
    return verifier


def test_the_hash_is_sha256_of_the_canonical_json_of_every_other_member() -> None:
    """A record's hash is SHA-256 hex over its other members as sorted-key, whitespace-free JSON."""
    record = _chain(1)[0]
    others = {k: v for k, v in record.items() if k != "hash"}
    expected = hashlib.sha256(orjson.dumps(others, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert record["hash"] == expected == record_hash(record)
    assert b" " not in canonical({"b": 1, "a": [1, 2]})
    assert canonical({"b": 1, "a": 2}) == b'{"a":2,"b":1}'


def test_the_writers_serialized_link_is_the_chained_record_with_its_hash() -> None:
    """link() stores exactly the members and hash chained() computes, so the verifier accepts its bytes."""
    stored, digest = link(_entry(3), "2026-12-02T04:30:00.123Z", WRITER, 7, "ab" * 32)
    expected = chained(_entry(3), "2026-12-02T04:30:00.123Z", WRITER, 7, "ab" * 32)
    (parsed,) = parse_records(stored)
    assert parsed == expected
    assert digest == expected["hash"] == record_hash(parsed)
    verifier = ChainVerifier()
    first, first_hash = link(_entry(1), "2026-12-02T04:30:00.123Z", WRITER, 1, GENESIS)
    second, _ = link(_entry(2), "2026-12-02T04:30:00.124Z", WRITER, 2, first_hash)
    assert verifier.feed(WRITER.encode(), b"[" + first + b"," + second + b"]", 0, 0) is None


def test_a_first_record_starts_at_seq_one_after_64_zeros() -> None:
    """seq 1's prev is 64 zeros, each later prev the hash before it; the stored members are the entry's."""
    records = _chain(3)
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[0]["prev"] == GENESIS == "0" * 64
    assert records[1]["prev"] == records[0]["hash"]
    assert records[2]["prev"] == records[1]["hash"]
    assert records[0]["fields"] == ["name", "address"]
    assert records[0]["writer"] == WRITER


def test_audit_time_is_utc_with_milliseconds() -> None:
    """The time member looks like 2026-12-02T04:30:00.123Z."""
    text = audit_time()
    assert len(text) == 24
    assert text.endswith("Z")
    assert text[19] == "."


def test_an_intact_chain_of_two_writers_verifies() -> None:
    """Interleaved chains of two writers verify with no broken link and count both."""
    a, b = _chain(4, "gateway-a"), _chain(3, "gateway-b")
    verifier = _verify([a[0], b[0], a[1], a[2], b[1], b[2], a[3]])
    assert verifier.broken is None
    assert verifier.records == 7
    assert {w: s.seq for w, s in verifier.writers.items()} == {
        "gateway-a": 4,
        "gateway-b": 3,
    }


def test_a_modified_member_is_a_hash_mismatch_at_that_record() -> None:
    """Changing one letter of an organisation breaks that record's hash, named by writer, seq and offset."""
    records = _chain(5)
    records[2] = {**records[2], "organisation": "ministry-of-welfarf"}
    broken = _verify(records).broken
    assert broken is not None
    assert (broken.reason, broken.writer, broken.seq, broken.offset) == ("hash mismatch", WRITER, 3, 2)


def test_a_removed_record_is_a_seq_gap() -> None:
    """Deleting a record from the middle shows as a seq gap at the record after it."""
    records = _chain(5)
    del records[1]
    broken = _verify(records).broken
    assert broken is not None
    assert (broken.reason, broken.seq) == ("seq gap", 3)


def test_reordered_records_are_a_seq_gap() -> None:
    """Swapping two records breaks the order of seq at the first one out of place."""
    records = _chain(5)
    records[1], records[2] = records[2], records[1]
    broken = _verify(records).broken
    assert broken is not None
    assert (broken.reason, broken.seq, broken.offset) == ("seq gap", 3, 1)


def test_a_forged_prev_with_a_recomputed_hash_is_a_prev_mismatch() -> None:
    """Replacing a record with a self-consistent forgery still breaks the link to the record before."""
    records = _chain(4)
    forged = {**records[2], "organisation": "someone-else", "prev": "f" * 64}
    forged["hash"] = record_hash(forged)
    records[2] = forged
    broken = _verify(records).broken
    assert broken is not None
    assert (broken.reason, broken.seq) == ("prev mismatch", 3)


def test_a_rewritten_record_breaks_the_next_records_prev() -> None:
    """Re-hashing a changed record (keeping its prev) moves the break to the next record's prev."""
    records = _chain(4)
    changed = {**records[1], "outcome": "refused"}
    changed["hash"] = record_hash(changed)
    records[1] = changed
    broken = _verify(records).broken
    assert broken is not None
    assert (broken.reason, broken.seq) == ("prev mismatch", 3)


def test_a_chain_that_does_not_start_at_one_is_a_seq_gap() -> None:
    """A writer whose first record in the topic is seq 2 lost its first record."""
    broken = _verify(_chain(3)[1:]).broken
    assert broken is not None
    assert (broken.reason, broken.seq) == ("seq gap", 2)


@pytest.mark.parametrize(
    "value",
    [b"not json", b"[1, 2]", b'{"writer": "a"}', None],
    ids=["text", "array", "missing members", "no value"],
)
def test_an_unparsable_record_is_named(value: bytes | None) -> None:
    """A value that is not a stored audit record is reported as unparsable at its offset."""
    verifier = ChainVerifier()
    verifier.feed(b"gateway-a", orjson.dumps(_chain(1)[0]), 0, 0)
    broken = verifier.feed(b"gateway-a", value, 0, 1)
    assert broken is not None
    assert (broken.reason, broken.offset) == ("unparsable record", 1)


def test_a_record_under_another_writers_key_is_named() -> None:
    """A record whose Kafka key is not its writer id is a key mismatch."""
    verifier = ChainVerifier()
    broken = verifier.feed(b"gateway-b", orjson.dumps(_chain(1)[0]), 0, 0)
    assert broken is not None
    assert broken.reason == "key mismatch"


def test_the_verifier_stops_at_the_first_broken_link() -> None:
    """After a broken link later breaks are not reported: the first one stays."""
    records = _chain(5)
    records[1] = {**records[1], "model": "x"}
    records[3] = {**records[3], "model": "y"}
    verifier = _verify(records)
    assert verifier.broken is not None
    assert verifier.broken.seq == 2
    assert "seq 2" in verifier.broken.describe()
    assert "offset 1" in verifier.broken.describe()


def test_a_block_of_records_verifies_link_by_link() -> None:
    """A Kafka record holding a block (a JSON array) is checked link by link; a changed record is named."""
    chain = _chain(5)
    intact = ChainVerifier()
    assert intact.feed(WRITER.encode(), orjson.dumps(chain[:3]), 0, 0) is None
    assert intact.feed(WRITER.encode(), orjson.dumps(chain[3:]), 0, 1) is None
    assert intact.records == 5
    tampered = [dict(r) for r in chain]
    tampered[3]["organisation"] = "someone-else"
    verifier = ChainVerifier()
    verifier.feed(WRITER.encode(), orjson.dumps(tampered[:3]), 0, 0)
    broken = verifier.feed(WRITER.encode(), orjson.dumps(tampered[3:]), 0, 1)
    assert broken is not None
    assert (broken.seq, broken.reason, broken.offset) == (4, "hash mismatch", 1)


def test_an_empty_block_is_unparsable() -> None:
    """An empty JSON array is no block: verify names it unparsable."""
    broken = ChainVerifier().feed(WRITER.encode(), b"[]", 0, 7)
    assert broken is not None
    assert broken.reason == "unparsable record"
