"""RegistryState.apply: the registry's state as a pure function of its log, before and after compaction."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from schemas.registry.state import (
    Record,
    Reference,
    RegistryState,
    SchemaVersion,
    StoredSchema,
    config_key,
    id_high_record,
    mode_key,
    schema_key,
    schema_record,
)


def text(schema_id: int) -> str:
    """The schema text that belongs to ``schema_id`` (one schema per id, as the registry assigns them)."""
    return json.dumps({"type": "record", "name": f"R{schema_id}", "fields": []}, separators=(",", ":"))


def version(subject: str, number: int, schema_id: int, *, deleted: bool = False) -> Record:
    """The SCHEMA record of one version of the id's schema."""
    return schema_record(SchemaVersion(subject, number, schema_id, StoredSchema(text(schema_id)), deleted))


def tombstone(subject: str, number: int) -> Record:
    """The record that permanently deletes one version."""
    return schema_key(subject, number), None


def config(subject: str | None, level: str | None) -> Record:
    """Set (or, with None, unset) a compatibility level."""
    return config_key(subject), None if level is None else {"compatibilityLevel": level}


def mode(subject: str | None, value: str | None) -> Record:
    """Set (or, with None, unset) a mode."""
    return mode_key(subject), None if value is None else {"mode": value}


def replay(records: list[Record]) -> RegistryState:
    """A fresh state with ``records`` applied in order."""
    state = RegistryState()
    for key, value in records:
        state.apply(key, value)
    return state


def compact(records: list[Record], *, drop_tombstones: bool = False) -> list[Record]:
    """What log compaction keeps: the latest record of each key, in log order (tombstones too, or not)."""
    last: dict[str, int] = {
        json.dumps(key, sort_keys=True): offset for offset, (key, _) in enumerate(records)
    }
    kept = sorted(last.values())
    return [records[o] for o in kept if not (drop_tombstones and records[o][1] is None)]


def view(state: RegistryState) -> dict[str, Any]:
    """Everything the state answers through its query methods."""
    every = state.subject_names(deleted=True)
    ids = sorted({e.schema_id for s in every for e in state.versions(s, deleted=True)})
    return {
        "subjects": state.subject_names(),
        "all_subjects": every,
        "versions": {s: state.versions(s, deleted=True) for s in every},
        "next": {s: state.next_version(s) for s in every},
        "schemas": {i: state.schema(i) for i in ids},
        "id_of": {i: state.id_of(state.schema(i)) for i in ids if state.schema(i) is not None},
        "users": {i: state.users(i, deleted=True) for i in ids},
        "configs": dict(state.configs),
        "modes": dict(state.modes),
        "id_high": state.id_high,
    }


def test_versions_are_ordered_and_ids_indexed() -> None:
    """Versions are listed by number whatever order they arrive in, and each id knows its schema and users."""
    state = replay([version("s", 2, 2), version("s", 1, 1), version("t", 1, 1)])
    assert [e.version for e in state.versions("s")] == [1, 2]
    assert state.subject_names() == ["s", "t"]
    assert state.schema(1) == StoredSchema(text(1))
    assert state.id_of(StoredSchema(text(2))) == 2
    assert [(e.subject, e.version) for e in state.users(1)] == [("s", 1), ("t", 1)]
    assert state.id_high == 2
    assert state.schema(3) is None


def test_record_fields_are_read_back() -> None:
    """A stored version keeps its id, text, type, references and deleted flag."""
    reference = Reference("a.B", "other", 3)
    entry = SchemaVersion("s", 4, 9, StoredSchema(text(0), "AVRO", (reference,)), deleted=True)
    state = replay([schema_record(entry)])
    assert state.versions("s", deleted=True) == [entry]


def test_soft_delete_hides_a_version_but_keeps_its_id() -> None:
    """A soft-deleted version leaves the live views but its id still resolves."""
    state = replay([version("s", 1, 1), version("s", 2, 2), version("s", 2, 2, deleted=True)])
    assert [e.version for e in state.versions("s")] == [1]
    assert [e.version for e in state.versions("s", deleted=True)] == [1, 2]
    assert state.schema(2) == StoredSchema(text(2))
    assert state.users(2) == []
    assert [e.version for e in state.users(2, deleted=True)] == [2]

    state.apply(*version("s", 1, 1, deleted=True))
    assert state.subject_names() == []
    assert state.subject_names(deleted=True) == ["s"]


def test_tombstones_remove_versions_subjects_and_unused_ids() -> None:
    """A tombstone removes the version; the id goes once no version of any subject uses it."""
    state = replay([version("s", 1, 1), version("t", 1, 1), version("s", 2, 2)])
    state.apply(*tombstone("s", 2))
    assert state.schema(2) is None
    assert state.id_of(StoredSchema(text(2))) is None
    state.apply(*tombstone("s", 1))
    assert state.subject_names(deleted=True) == ["t"]
    assert "s" not in state.subjects
    assert state.schema(1) == StoredSchema(text(1))
    state.apply(*tombstone("t", 1))
    assert state.schema(1) is None
    assert state.subjects == {}
    # A tombstone for a version that never existed changes nothing.
    state.apply(*tombstone("never", 7))
    assert state.subjects == {}


def test_rewriting_a_version_replaces_it() -> None:
    """A later record of the same key replaces the earlier one, also its id's user index."""
    state = replay([version("s", 1, 1), version("s", 1, 3)])
    assert [e.schema_id for e in state.versions("s")] == [3]
    assert state.schema(1) is None
    assert state.users(3)[0].version == 1


def test_configs_and_modes_are_set_and_unset() -> None:
    """CONFIG and MODE records set global and subject values; tombstones unset them."""
    state = replay(
        [
            config(None, "FULL"),
            config("s", "NONE"),
            mode(None, "READONLY"),
            mode("s", "IMPORT"),
        ]
    )
    assert (state.compatibility(None), state.compatibility("s"), state.compatibility("t")) == (
        "FULL",
        "NONE",
        None,
    )
    assert (state.effective_compatibility("s"), state.effective_compatibility("t")) == ("NONE", "FULL")
    assert (state.mode(None), state.mode("s"), state.effective_mode("t")) == (
        "READONLY",
        "IMPORT",
        "READONLY",
    )

    for key, _ in [config("s", None), mode("s", None), config(None, None), mode(None, None)]:
        state.apply(key, None)
    assert state.configs == {}
    assert state.modes == {}
    assert state.effective_compatibility("s") == "BACKWARD"
    assert state.effective_mode("s") == "READWRITE"
    state.apply(*config("unknown", None))
    assert state.configs == {}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ({"keytype": "NOOP", "magic": 0}, None),
        ({"keytype": "DELETE_SUBJECT", "subject": "s", "magic": 0}, {"subject": "s", "version": 1}),
        ({"keytype": "CLEAR_SUBJECT", "subject": "s", "magic": 0}, {"subject": "s"}),
        ({"keytype": "SOMETHING_NEW", "magic": 9}, {"id": 100}),
        ({"magic": 0}, {"whatever": True}),
    ],
)
def test_unknown_keytypes_are_ignored(key: dict[str, Any], value: dict[str, Any] | None) -> None:
    """A record of a key type this version does not know leaves the state as it was."""
    before = replay([version("s", 1, 1), config("s", "FULL")])
    after = replay([version("s", 1, 1), config("s", "FULL")])
    after.apply(key, value)
    assert after == before


def test_id_high_survives_when_the_highest_id_is_tombstoned() -> None:
    """Permanently deleting every version of the highest id does not lower id_high."""
    state = replay([version("s", 1, 1), version("s", 2, 5), id_high_record(5)])
    assert state.id_high == 5
    state.apply(*version("s", 2, 5, deleted=True))
    state.apply(*tombstone("s", 2))
    assert state.schema(5) is None
    assert state.id_high == 5
    # Without the ID_HIGH record, compaction would leave nothing that remembers id 5.
    compacted = compact([version("s", 1, 1), version("s", 2, 5), id_high_record(5), tombstone("s", 2)])
    assert replay(compact(compacted, drop_tombstones=True)).id_high == 5


def test_id_high_never_decreases() -> None:
    """ID_HIGH and SCHEMA records only ever raise id_high; an ID_HIGH tombstone is ignored."""
    state = replay([id_high_record(9), version("s", 1, 3), id_high_record(4)])
    assert state.id_high == 9
    state.apply({"keytype": "ID_HIGH", "magic": 0}, None)
    assert state.id_high == 9
    state.apply(*version("s", 2, 12))
    assert state.id_high == 12


def test_next_version_does_not_reuse_soft_deleted_numbers() -> None:
    """The next version number is above every version, soft-deleted ones included."""
    state = RegistryState()
    assert state.next_version("s") == 1
    state.apply(*version("s", 1, 1))
    state.apply(*version("s", 2, 2))
    state.apply(*version("s", 2, 2, deleted=True))
    assert state.next_version("s") == 3
    state.apply(*version("s", 1, 1, deleted=True))
    assert state.versions("s") == []
    assert state.next_version("s") == 3


def random_log(seed: int, length: int = 300) -> list[Record]:
    """A plausible registry log: versions registered, soft-deleted, purged; configs and modes churned."""
    rng = random.Random(seed)
    subjects = ["a", "b", "c", "d"]
    live: dict[str, dict[int, int]] = {s: {} for s in subjects}  # subject -> version -> id
    deleted: dict[str, dict[int, int]] = {s: {} for s in subjects}
    high = 0
    log: list[Record] = []
    for _ in range(length):
        subject = rng.choice(subjects)
        roll = rng.random()
        if roll < 0.35:
            in_use = {i for s in subjects for i in (*live[s].values(), *deleted[s].values())}
            reusable = sorted(in_use - set(live[subject].values()) - set(deleted[subject].values()))
            schema_id = rng.choice(reusable) if reusable and rng.random() < 0.5 else high + 1
            number = max([0, *live[subject], *deleted[subject]]) + 1
            log.append(version(subject, number, schema_id))
            live[subject][number] = schema_id
            if schema_id > high:
                high = schema_id
                log.append(id_high_record(high))
        elif roll < 0.5 and live[subject]:
            number = rng.choice(sorted(live[subject]))
            schema_id = live[subject].pop(number)
            deleted[subject][number] = schema_id
            log.append(version(subject, number, schema_id, deleted=True))
        elif roll < 0.6 and deleted[subject]:
            number = rng.choice(sorted(deleted[subject]))
            del deleted[subject][number]
            log.append(tombstone(subject, number))
        elif roll < 0.75:
            target = rng.choice([None, subject])
            log.append(config(target, rng.choice([None, "NONE", "FULL", "FORWARD_TRANSITIVE"])))
        elif roll < 0.85:
            target = rng.choice([None, subject])
            log.append(mode(target, rng.choice([None, "READONLY", "READWRITE", "IMPORT"])))
        else:
            log.append(({"keytype": "NOOP", "magic": 0}, None))
    return log


def test_a_handwritten_log_and_its_compaction_give_the_same_state() -> None:
    """Applying only the latest record of each key equals applying the whole log (tombstones kept or gone)."""
    log = [
        config(None, "FULL"),
        version("s", 1, 1),
        id_high_record(1),
        version("t", 1, 1),
        version("s", 2, 2),
        id_high_record(2),
        config("s", "NONE"),
        version("s", 3, 3),
        id_high_record(3),
        version("s", 2, 2, deleted=True),
        mode("s", "READONLY"),
        version("s", 3, 3, deleted=True),
        tombstone("s", 3),
        config("s", None),
        version("u", 1, 4),
        id_high_record(4),
        version("u", 1, 4, deleted=True),
        tombstone("u", 1),
        mode(None, "IMPORT"),
        mode("s", None),
        config(None, "BACKWARD"),
        version("s", 4, 5),
        id_high_record(5),
        version("t", 1, 1, deleted=True),
    ]
    full = replay(log)
    assert full.id_high == 5
    assert full.schema(3) is None
    assert full.schema(4) is None
    assert full.next_version("s") == 5
    assert [e.version for e in full.versions("s")] == [1, 4]
    assert full.configs == {None: "BACKWARD"}
    assert full.modes == {None: "IMPORT"}
    for compacted in (compact(log), compact(log, drop_tombstones=True)):
        assert len(compacted) < len(log)
        state = replay(compacted)
        assert view(state) == view(full)
        assert state == full


@pytest.mark.parametrize("seed", range(20))
def test_a_random_log_and_its_compaction_give_the_same_state(seed: int) -> None:
    """For generated logs, the compacted log (tombstones kept or removed) rebuilds the identical state."""
    log = random_log(seed)
    full = replay(log)
    for compacted in (compact(log), compact(log, drop_tombstones=True)):
        state = replay(compacted)
        assert view(state) == view(full)
        assert state == full
