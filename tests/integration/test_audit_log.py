"""The audit log on a real broker: one chain from concurrent callers, restarts, recovery, ``audit verify``."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from bus.kafka_config import KafkaConnection
from gateway.audit.chain import ChainVerifier
from gateway.audit.entry import AuditEntry, AuditUnavailable
from gateway.audit.topic import read_all, reader
from gateway.audit.trail import AuditTrail
from gateway.audit.writer import KafkaAuditLog

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _entry(n: int, organisation: str = "ministry-of-welfare") -> AuditEntry:
    return AuditEntry(
        action="read",
        organisation=organisation,
        role="ministry",
        credential="gbk_0123456789abcdef",
        model="residents",
        keys=(f"R{n:012d}",),
        subjects=(f"R{n:012d}",),
        fields=("name",),
        purpose="benefits",
        outcome="disclosed",
    )


def _log(bootstrap: str, topic: str, writer: str = "gateway-test", **kwargs: str) -> KafkaAuditLog:
    log = KafkaAuditLog(KafkaConnection(bootstrap, client_id="audit-test"), topic, writer, **kwargs)  # type: ignore[arg-type]
    log.start()
    return log


def _record_all(log: KafkaAuditLog, entries: list[AuditEntry]) -> None:
    async def run() -> None:
        await asyncio.gather(*(log.record(entry) for entry in entries))

    asyncio.run(run())


def _verified(bootstrap: str, topic: str) -> ChainVerifier:
    verifier = ChainVerifier()
    consumer = reader(KafkaConnection(bootstrap))
    try:
        for message in read_all(consumer, topic):
            verifier.feed(message.key(), message.value(), message.partition() or 0, message.offset() or 0)
    finally:
        consumer.close()
    return verifier


def _govbus(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOVBUS_KAFKA_BOOTSTRAP": bootstrap, "GOVBUS_LOG_LEVEL": "warning"}
    return subprocess.run(
        [sys.executable, "-m", "govbus", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=ROOT,
    )


def test_concurrent_callers_form_one_valid_chain(kafka_bootstrap: str, unique_name: str) -> None:
    """300 concurrent records become seq 1..300 of one intact chain."""
    topic = f"t{unique_name}.govbus.audit"
    log = _log(kafka_bootstrap, topic)
    try:
        _record_all(log, [_entry(n) for n in range(300)])
        assert log.last is not None
        assert log.last.seq == 300
    finally:
        log.close()
    verifier = _verified(kafka_bootstrap, topic)
    assert verifier.broken is None
    assert verifier.records == 300
    assert verifier.writers["gateway-test"].seq == 300


def test_a_restarted_writer_continues_its_chain(kafka_bootstrap: str, unique_name: str) -> None:
    """A new log with the same writer id continues at the next seq after the last committed record."""
    topic = f"t{unique_name}.govbus.audit"
    for round_ in range(3):
        log = _log(kafka_bootstrap, topic)
        try:
            assert (log.last.seq if log.last else 0) == 10 * round_
            _record_all(log, [_entry(n) for n in range(10)])
        finally:
            log.close()
    other = _log(kafka_bootstrap, topic, writer="gateway-other")
    try:
        _record_all(other, [_entry(1)])
    finally:
        other.close()
    verifier = _verified(kafka_bootstrap, topic)
    assert verifier.broken is None
    assert {w: s.seq for w, s in verifier.writers.items()} == {"gateway-test": 30, "gateway-other": 1}


def test_after_a_failed_delivery_the_chain_continues_from_its_real_end(
    kafka_bootstrap: str, unique_name: str
) -> None:
    """A record the broker refuses fails its caller alone; the log recovers and the chain stays intact."""
    topic = f"t{unique_name}.govbus.audit"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    log = _log(kafka_bootstrap, topic)
    try:
        _record_all(log, [_entry(n) for n in range(5)])
        _set_max_message_bytes(admin, topic, 200)
        with pytest.raises(AuditUnavailable):
            _record_all(log, [_entry(99, organisation=secrets.token_hex(300))])
        _set_max_message_bytes(admin, topic, 1048588)
        deadline = time.monotonic() + 30
        while True:
            try:
                _record_all(log, [_entry(n) for n in range(3)])
                break
            except AuditUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert log.recoveries >= 1
    finally:
        log.close()
    verifier = _verified(kafka_bootstrap, topic)
    assert verifier.broken is None
    assert verifier.writers["gateway-test"].seq == 8


def _set_max_message_bytes(admin: AdminClient, topic: str, size: int) -> None:
    """Set the topic's max.message.bytes and wait until the broker reports it."""
    entry = ConfigEntry("max.message.bytes", str(size), incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
        configs = next(iter(described.values())).result(30)
        if configs["max.message.bytes"].value == str(size):
            time.sleep(0.5)  # the broker's log picks the new config up shortly after it is stored
            return
        time.sleep(0.1)
    raise AssertionError(f"max.message.bytes of {topic} did not become {size}")


def test_audit_verify_passes_on_an_intact_topic(kafka_bootstrap: str, unique_name: str) -> None:
    """`govbus audit verify` prints the records, the writers and OK, and exits 0; --json says ok."""
    topic = f"t{unique_name}.govbus.audit"
    log = _log(kafka_bootstrap, topic)
    try:
        _record_all(log, [_entry(n) for n in range(12)])
    finally:
        log.close()
    done = _govbus(kafka_bootstrap, "audit", "verify", "--topic", topic)
    assert done.returncode == 0, done.stderr
    assert "12 records, 1 writers, every chain OK" in done.stdout
    assert "gateway-test: seq 1..12" in done.stdout
    as_json = _govbus(kafka_bootstrap, "audit", "verify", "--topic", topic, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert '"ok": true' in as_json.stdout


def test_audit_verify_without_kafka_says_so_and_exits_1() -> None:
    """Kafka not answering: one clear line on stderr and exit 1 within seconds, no hang."""
    started = time.monotonic()
    done = _govbus("127.0.0.1:1", "audit", "verify")
    assert done.returncode == 1
    assert "does not answer" in done.stderr
    assert "Traceback" not in done.stderr
    assert time.monotonic() - started < 30


def test_audit_verify_of_a_missing_topic_says_so(kafka_bootstrap: str, unique_name: str) -> None:
    """A topic that does not exist is an error naming it, exit 1."""
    done = _govbus(kafka_bootstrap, "audit", "verify", "--topic", f"t{unique_name}.nothing")
    assert done.returncode == 1
    assert f"t{unique_name}.nothing" in done.stderr


# -- tampering with a stored record ----------------------------------------------------------------


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as Kafka's record batch v2 uses."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _log_dir(bootstrap: str, topic: str) -> Path:
    """The directory of ``topic``'s partition 0 on the broker's disk (skip when it is not on this machine)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    broker = next(iter(admin.list_topics(timeout=10).brokers))
    resource = ConfigResource(ResourceType.BROKER, str(broker))
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    for name in ("log.dirs", "log.dir"):
        entry = configs.get(name)
        if entry is not None and entry.value:
            for folder in entry.value.split(","):
                found = Path(folder) / f"{topic}-0"
                if found.is_dir():
                    return found
    pytest.skip("the broker's log directories are not on this machine")


def tamper(segment: Path, old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` (same length) inside one record and fix its batch's CRC-32C in place.

    Record batch v2: baseOffset (8) batchLength (4) leaderEpoch (4) magic (1) crc (4) then attributes...;
    the CRC covers from the attributes (byte 21) to the end of the batch.
    """
    assert len(old) == len(new)
    data = bytearray(segment.read_bytes())
    at = data.find(old)
    assert at >= 0, "the bytes to tamper with are not in the segment"
    assert data.find(old, at + 1) < 0, "the bytes to tamper with must occur once"
    position = 0
    while position < len(data):
        length = int.from_bytes(data[position + 8 : position + 12], "big")
        end = position + 12 + length
        if position <= at < end:
            assert data[position + 16] == 2, "not a v2 record batch"
            assert int.from_bytes(data[position + 21 : position + 23], "big") & 0x07 == 0, "compressed batch"
            data[at : at + len(old)] = new
            data[position + 17 : position + 21] = crc32c(bytes(data[position + 21 : end])).to_bytes(4, "big")
            with open(segment, "r+b") as out:
                out.seek(position)
                out.write(data[position:end])
                out.flush()
                os.fsync(out.fileno())
            return
        position = end
    raise AssertionError("the tampered bytes are in no record batch")


def test_a_record_rewritten_in_the_topic_is_named_by_verify(kafka_bootstrap: str, unique_name: str) -> None:
    """One letter of one stored record changed on the broker's disk (CRC fixed): verify names its writer and
    seq with a hash mismatch and exits 1."""
    topic = f"t{unique_name}.govbus.audit"
    log = _log(kafka_bootstrap, topic, compression="none")
    try:
        for n in range(1, 7):
            _record_all(log, [_entry(n, organisation=f"ministry-{n}-of-welfare")])
    finally:
        log.close()
    assert _govbus(kafka_bootstrap, "audit", "verify", "--topic", topic).returncode == 0
    segment = sorted(_log_dir(kafka_bootstrap, topic).glob("*.log"))[-1]
    tamper(segment, b'"organisation":"ministry-4-of-welfare"', b'"organisation":"ministry-4-of-welfarf"')
    done = _govbus(kafka_bootstrap, "audit", "verify", "--topic", topic)
    assert done.returncode == 1, done.stdout
    assert "writer 'gateway-test' seq 4" in done.stderr, done.stderr
    assert "hash mismatch" in done.stderr, done.stderr
    assert "partition 0 offset" in done.stderr


def test_acknowledgements_the_loop_stops_polling_for_are_served_by_the_logs_thread(
    kafka_bootstrap: str, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the event loop gives up polling after one idle pass, the log's thread answers every caller."""
    monkeypatch.setattr("gateway.audit.writer.LOOP_POLLS", 1)
    topic = f"t{unique_name}.govbus.audit"
    log = _log(kafka_bootstrap, topic)
    try:
        started = time.monotonic()
        for round_ in range(5):
            _record_all(log, [_entry(round_ * 10 + n) for n in range(10)])
        assert time.monotonic() - started < 5
        assert log.last is not None
        assert log.last.seq == 50
    finally:
        log.close()
    assert _verified(kafka_bootstrap, topic).records == 50


def test_a_paused_trail_catches_up_at_the_next_view_with_other_writers_records(
    kafka_bootstrap: str, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trail idle past IDLE_S pauses; the next view resumes it and sees another gateway's new records."""
    monkeypatch.setattr("gateway.audit.trail.IDLE_S", 0.3)
    topic = f"t{unique_name}.govbus.audit"
    ours = _log(kafka_bootstrap, topic, "gateway-ours")
    theirs = _log(kafka_bootstrap, topic, "gateway-theirs")
    trail = AuditTrail(KafkaConnection(kafka_bootstrap), topic)
    trail.start()
    try:
        subject = _entry(7).subjects[0]
        _record_all(ours, [_entry(7)])
        assert asyncio.run(trail.caught_up(ours.committed()))
        assert [r["writer"] for r in trail.subject(subject)] == ["gateway-ours"]
        deadline = time.monotonic() + 10
        while not trail.paused and time.monotonic() < deadline:
            time.sleep(0.05)
        assert trail.paused, "the trail kept reading with no view asking"
        _record_all(theirs, [_entry(7, "ministry-of-education")])
        assert asyncio.run(trail.caught_up(ours.committed()))
        shown = trail.subject(subject)
        assert [(r["writer"], r["organisation"]) for r in shown] == [
            ("gateway-ours", "ministry-of-welfare"),
            ("gateway-theirs", "ministry-of-education"),
        ]
        assert not trail.paused
    finally:
        trail.close()
        ours.close()
        theirs.close()
