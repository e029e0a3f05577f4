"""Two registries on one memory topic: a write another instance got in before is decided again.

The interleaving is placed exactly: the first registry's log runs the other registry's write right
before its own commit, which is the moment a concurrent instance could get in between. Nothing sleeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from structlog.testing import capture_logs

from bus.errors import RegistryError
from schemas.registry import service
from schemas.registry.log import FencedError
from schemas.registry.memory_log import MemoryRegistryLog, MemoryTopic
from schemas.registry.service import SchemaRegistry
from schemas.registry.state import Record


def _record(name: str) -> dict[str, Any]:
    return {"schema": json.dumps({"type": "record", "name": name, "fields": [{"name": "f", "type": "int"}]})}


class InterruptedLog(MemoryRegistryLog):
    """A memory log that runs ``interlude`` (another instance's write) before its next ``times`` commits."""

    def __init__(self, topic: MemoryTopic, interlude: Callable[[], object], times: int = 1) -> None:
        super().__init__(topic)
        self._interlude = interlude
        self._times = times
        self.fenced = 0

    def commit(self, records: Sequence[Record]) -> None:
        """Let the other instance write first, then commit (counting refusals)."""
        if self._times > 0:
            self._times -= 1
            self._interlude()
        try:
            super().commit(records)
        except FencedError:
            self.fenced += 1
            raise


@pytest.fixture(autouse=True)
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    """Log events into a list: an earlier test may have left structlog writing to a closed stderr."""
    with capture_logs() as events:
        yield events


@pytest.fixture
def topic() -> MemoryTopic:
    """One storage topic, shared by the registries of a test."""
    return MemoryTopic()


@pytest.fixture
def other(topic: MemoryTopic) -> Any:
    """The registry that writes in between, started on the shared topic with NONE compatibility."""
    registry = SchemaRegistry.in_memory(topic)
    registry.start()
    registry.set_compatibility(None, "NONE")
    yield registry
    registry.close()


def _interrupted(
    topic: MemoryTopic, interlude: Callable[[], object], times: int = 1
) -> tuple[Any, InterruptedLog]:
    log = InterruptedLog(topic, interlude, times)
    registry = SchemaRegistry(log)
    registry.start()
    return registry, log


def test_a_registration_another_instance_got_in_before_gets_the_next_version_and_id(
    topic: MemoryTopic, other: SchemaRegistry
) -> None:
    """The fenced registration is decided again on the caught-up state: version 2 with a new id, no clash."""
    registry, log = _interrupted(topic, lambda: other.register("s", _record("Theirs")))
    try:
        mine = registry.register("s", _record("Mine"))
        assert log.fenced == 1
        for instance in (registry, other):
            assert instance.versions("s") == [1, 2]
            assert instance.version("s", 1).schema_id == 1
            assert (instance.version("s", 2).schema_id, mine) == (2, 2)
            assert json.loads(instance.version("s", 2).schema.text)["name"] == "Mine"
    finally:
        registry.close()


def test_a_fenced_registration_of_the_same_schema_answers_the_other_instances_id(
    topic: MemoryTopic, other: SchemaRegistry
) -> None:
    """Deciding again after the other instance registered the same schema writes nothing, answers its id."""
    registry, log = _interrupted(topic, lambda: other.register("s", _record("Same")))
    try:
        assert registry.register("s", _record("Same")) == 1
        assert log.fenced == 1
        assert registry.versions("s") == other.versions("s") == [1]
        assert len(topic.read(0)) == 3  # the global level, then the other's version and id high mark
    finally:
        registry.close()


def test_a_fenced_write_the_caught_up_state_refuses_answers_a_confluent_error(
    topic: MemoryTopic, other: SchemaRegistry
) -> None:
    """A subject made read-only in between turns the registration decided again into 422 42205, unwritten."""
    registry, log = _interrupted(topic, lambda: other.set_mode("s", "READONLY"))
    try:
        with pytest.raises(RegistryError) as refused:
            registry.register("s", _record("Late"))
        assert (refused.value.status, refused.value.error_code) == (422, 42205)
        assert log.fenced == 1
        assert registry.subjects() == other.subjects() == []
    finally:
        registry.close()


def test_a_write_fenced_until_the_deadline_answers_a_storage_error(
    topic: MemoryTopic, other: SchemaRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An instance that loses every commit gives up after the write deadline with 500 50001, not a hang."""
    monkeypatch.setattr(service, "WRITE_DEADLINE_S", 0.1)
    count = iter(range(1, 1000))
    registry, log = _interrupted(
        topic, lambda: other.set_compatibility(f"c{next(count)}", "FULL"), times=1000
    )
    try:
        with pytest.raises(RegistryError) as refused:
            registry.set_compatibility("mine", "FORWARD")
        assert (refused.value.status, refused.value.error_code) == (500, 50001)
        assert log.fenced >= 2
        with pytest.raises(RegistryError):
            registry.compatibility("mine")
    finally:
        registry.close()


def _view(registry: SchemaRegistry) -> dict[str, list[tuple[int, int, str]]]:
    """Subject → [(version, id, schema text)] as one registry answers it."""
    return {
        subject: [
            (
                number,
                registry.version(subject, number).schema_id,
                registry.version(subject, number).schema.text,
            )
            for number in registry.versions(subject)
        ]
        for subject in registry.subjects()
    }


def test_registrations_racing_through_three_instances_never_share_an_id_or_version(
    topic: MemoryTopic,
) -> None:
    """Threads registering through three registries on one topic end with one id per schema and agree."""
    registries = [SchemaRegistry.in_memory(topic) for _ in range(3)]
    for registry in registries:
        registry.start()
    registries[0].set_compatibility(None, "NONE")
    answers: list[tuple[str, str, int]] = []
    failures: list[BaseException] = []

    def write(index: int) -> None:
        try:
            for number in range(30):
                subject = f"shared-{number % 4}"
                name = f"Common{number}" if number % 3 == 0 else f"Own{index}x{number}"
                answers.append((subject, name, registries[index].register(subject, _record(name))))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert not failures, failures
        views = [_view(registry) for registry in registries]
        assert views[0] == views[1] == views[2]
        ids: dict[str, set[int]] = {}
        for versions in views[0].values():
            assert [v for v, _, _ in versions] == list(range(1, len(versions) + 1))
            for _, schema_id, text in versions:
                ids.setdefault(json.loads(text)["name"], set()).add(schema_id)
        assert all(len(found) == 1 for found in ids.values())
        assert len({min(found) for found in ids.values()}) == len(ids)
        for subject, name, schema_id in answers:
            assert ids[name] == {schema_id}, (subject, name)
    finally:
        for registry in registries:
            registry.close()
