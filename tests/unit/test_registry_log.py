"""The registry's storage port: one contract for every log, run here on the memory log.

``RegistryLogContract`` holds what :class:`~schemas.registry.service.SchemaRegistry` relies on from its
storage (order, replay, catch-up, compaction, fencing); the Kafka subclass lives in
tests/integration/test_registry_storage.py and runs the same tests on a real broker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError

from bus.errors import RegistryError
from schemas.registry.log import FencedError, Outcome, RegistryLog, failed_write_outcome
from schemas.registry.memory_log import MemoryRegistryLog, MemoryTopic
from schemas.registry.state import Record
from tests.unit.test_registry_state import config, mode, random_log, replay, tombstone, version


@dataclass
class Follower:
    """A started log and every record it has applied, in order."""

    log: RegistryLog
    applied: list[Record] = field(default_factory=list)

    def apply(self, key: dict[str, Any], value: dict[str, Any] | None) -> None:
        """The ``apply`` callback the log is started with."""
        self.applied.append((key, value))


Start = Callable[[], Follower]


class RegistryLogContract:
    """What every registry log must do; subclasses provide ``storage``, ``open_log`` and ``compact``."""

    @pytest.fixture
    def storage(self) -> Any:
        """What several logs share (a topic); overridden per adapter."""
        raise NotImplementedError

    def open_log(self, storage: Any) -> RegistryLog:
        """A new, not yet started log on ``storage``."""
        raise NotImplementedError

    def compact(self, storage: Any) -> None:
        """Let ``storage`` drop every record that a later one of the same key replaces."""
        raise NotImplementedError

    @pytest.fixture
    def start(self, storage: Any) -> Iterator[Start]:
        """Starts a new instance on the shared storage; closes every one after the test."""
        opened: list[RegistryLog] = []

        def started() -> Follower:
            follower = Follower(self.open_log(storage))
            opened.append(follower.log)
            follower.log.start(follower.apply)
            return follower

        yield started
        for log in opened:
            log.close()

    def test_a_commit_is_applied_in_order_before_it_returns(self, start: Start) -> None:
        """Committed records, tombstones included, reach ``apply`` in order by the time commit returns."""
        writer = start()
        first = [version("s", 1, 1), config("s", "NONE")]
        second = [version("s", 1, 1, deleted=True), tombstone("s", 1), mode(None, "IMPORT")]
        writer.log.begin()
        writer.log.commit(first)
        assert writer.applied == first
        writer.log.commit(second)
        assert writer.applied == first + second

    def test_a_record_that_cannot_be_encoded_fails_alone_and_the_next_commit_is_applied(
        self, start: Start
    ) -> None:
        """A commit whose record holds a lone surrogate raises and stores nothing; the next commit works."""
        writer = start()
        writer.log.begin()
        with pytest.raises(UnicodeEncodeError):
            writer.log.commit([config("\ud800", "FULL")])
        writer.log.commit([config(None, "FULL")])
        assert writer.applied == [config(None, "FULL")]

    def test_a_new_instance_replays_every_record_in_order(self, start: Start) -> None:
        """An instance started later applies everything committed before, in commit order."""
        writer = start()
        writer.log.begin()
        records = random_log(seed=7, length=60)
        for offset in range(0, len(records), 7):
            writer.log.commit(records[offset : offset + 7])
        assert start().applied == records

    def test_a_following_instance_has_a_commit_applied_once_sync_returns(self, start: Start) -> None:
        """After another instance's commit, sync() returns only once this instance applied it."""
        reader, writer = start(), start()
        writer.log.begin()
        writer.log.commit([version("t", 1, 1), config(None, "FULL")])
        reader.log.sync()
        assert reader.applied == [version("t", 1, 1), config(None, "FULL")]

    def test_a_commit_after_another_instance_began_is_fenced_and_writes_nothing(self, start: Start) -> None:
        """Beginning fences the previous writer: its commit raises FencedError and stores nothing."""
        first, second = start(), start()
        first.log.begin()
        second.log.begin()
        with pytest.raises(FencedError):
            first.log.commit([version("lost", 1, 1)])
        second.log.commit([version("won", 1, 1)])
        first.log.sync()
        assert first.applied == second.applied == [version("won", 1, 1)]

        first.log.begin()  # decide again: taking the writer role back fences the other one in turn
        first.log.commit([version("won", 2, 2)])
        with pytest.raises(FencedError):
            second.log.commit([version("won", 2, 3)])
        second.log.sync()
        assert second.applied == first.applied == [version("won", 1, 1), version("won", 2, 2)]
        assert start().applied == first.applied

    def test_writers_fencing_each_other_in_threads_lose_nothing_and_agree(self, start: Start) -> None:
        """Two instances retrying fenced commits store each batch once, whole, in one order both apply."""
        instances = [start(), start()]
        failures: list[BaseException] = []

        def write(index: int) -> None:
            log = instances[index].log
            try:
                for number in range(1, 9):
                    batch = [version(f"w{index}", number, 100 * index + number), config(f"w{index}", "FULL")]
                    while True:
                        log.begin()
                        try:
                            log.commit(batch)
                            break
                        except FencedError:
                            continue
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not failures, failures
        for instance in instances:
            instance.log.sync()
        assert instances[0].applied == instances[1].applied == start().applied
        applied = instances[0].applied
        assert len(applied) == 2 * 8 * 2
        for offset in range(0, len(applied), 2):
            key, _ = applied[offset]
            assert applied[offset + 1] == config(str(key["subject"]), "FULL"), "a batch was split"

    def test_a_replay_after_compaction_ends_in_the_same_state(self, start: Start, storage: Any) -> None:
        """A new instance reading the compacted storage rebuilds the state of the whole history."""
        writer = start()
        history = random_log(seed=3, length=120)
        writer.log.begin()
        for offset in range(0, len(history), 10):
            writer.log.commit(history[offset : offset + 10])
        self.compact(storage)
        assert replay(start().applied) == replay(history) == replay(writer.applied)

    def test_a_commit_without_begin_is_refused(self, start: Start) -> None:
        """Committing before begin() is a storage error (500, 50001), not a silent write."""
        follower = start()
        with pytest.raises(RegistryError) as refused:
            follower.log.commit([version("s", 1, 1)])
        assert (refused.value.status, refused.value.error_code) == (500, 50001)
        follower.log.sync()
        assert follower.applied == []

    def test_sync_before_start_is_refused(self, storage: Any) -> None:
        """A log that was never started refuses to sync with a storage error (500, 50001)."""
        log = self.open_log(storage)
        try:
            with pytest.raises(RegistryError) as refused:
                log.sync()
            assert (refused.value.status, refused.value.error_code) == (500, 50001)
        finally:
            log.close()


class TestMemoryRegistryLog(RegistryLogContract):
    """The contract on the memory log."""

    @pytest.fixture
    def storage(self) -> MemoryTopic:
        """A fresh topic in memory."""
        return MemoryTopic()

    def open_log(self, storage: MemoryTopic) -> RegistryLog:
        """A log on the shared topic."""
        return MemoryRegistryLog(storage)

    def compact(self, storage: MemoryTopic) -> None:
        """Compact as Kafka's cleaner would, tombstones removed too."""
        storage.compact(drop_tombstones=True)


def test_compaction_keeps_each_keys_latest_record_at_its_offset() -> None:
    """The memory topic keeps the last record per key, offsets unchanged; tombstones go only when asked."""
    topic = MemoryTopic()
    log = MemoryRegistryLog(topic)
    log.start(lambda key, value: None)
    log.begin()
    log.commit([version("s", 1, 1), config("s", "FULL"), version("s", 1, 1, deleted=True), tombstone("s", 1)])
    log.commit([config("s", "NONE")])
    topic.compact()
    assert [offset for offset, _, _ in topic.read(0)] == [3, 4]
    assert [offset for offset, _, _ in topic.read(4)] == [4]
    topic.compact(drop_tombstones=True)
    assert [offset for offset, _, value in topic.read(0)] == [4]
    log.close()


def _error(code: int, **flags: bool) -> KafkaError:
    return KafkaError(code, "from the test", **flags)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        # Kafka 4.1's coordinator answers EndTxn with UNKNOWN_SERVER_ERROR while another instance's
        # InitProducerId is fencing the epoch; librdkafka reports it as abortable.
        (_error(KafkaError.UNKNOWN, txn_requires_abort=True), Outcome.ABORT_AND_DECIDE_AGAIN),
        (_error(KafkaError._FENCED, fatal=True), Outcome.DECIDE_AGAIN),
        (_error(KafkaError.PRODUCER_FENCED), Outcome.DECIDE_AGAIN),
        (_error(KafkaError.INVALID_PRODUCER_EPOCH, txn_requires_abort=True), Outcome.DECIDE_AGAIN),
        (_error(KafkaError._TIMED_OUT, retriable=True), Outcome.RETRY_COMMIT),
        (_error(KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, fatal=True), Outcome.REFUSED),
        (_error(KafkaError._STATE), Outcome.REFUSED),
    ],
    ids=[
        "unknown-abortable",
        "fenced",
        "producer-fenced",
        "invalid-epoch",
        "timeout",
        "not-authorized",
        "state",
    ],
)
def test_a_failed_write_is_decided_again_only_if_nothing_was_written(
    error: KafkaError, outcome: Outcome
) -> None:
    """Fenced and abortable errors mean decide again, a timeout retries the commit, the rest are refusals."""
    assert failed_write_outcome(error) is outcome
