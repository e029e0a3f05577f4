"""The pure core of a reaction: facts in, the agency's own events out, no Kafka in sight.

A reaction keeps a state derived from the events it consumes (``evolve``) and decides which of its
agency's events one consumed event calls for (``decide``). :func:`react` is the one sequence the
runtime and the tests both use: decide on the state as it was, evolve it with the event, then evolve
it with each emitted event at once, so the next decision already knows what was just emitted
instead of waiting to read it back from the topic.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, Protocol, TypeVar

DECEASED = "govbus.localgov.ResidentDeceased"
RESIDENT_TOPIC = "localgov.resident"
# A fixed namespace: the same cause and target give the same event id in every process, every run.
REACTION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:govbus:reaction")


class Fact(Protocol):
    """What a reaction reads of an event: its type, its CloudEvents id and its payload."""

    @property
    def type(self) -> str: ...

    @property
    def id(self) -> str: ...

    @property
    def data(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Emission:
    """An event a reaction publishes: record full name, payload, deterministic id and the causing event."""

    type: str
    data: Mapping[str, Any]
    id: str
    causation_id: str


@dataclass(frozen=True)
class Death:
    """A death report as the reactions remember it: the event to cite and the dates to decide with."""

    event_id: str
    died_on: date
    reported_on: date


def death_of(event: Fact) -> Death:
    """The remembered form of a ``ResidentDeceased`` event."""
    return Death(event.id, event.data["died_on"], event.data["reported_on"])


def reaction_id(cause_id: str, aggregate_id: str) -> str:
    """The event id of a reaction to ``cause_id`` about ``aggregate_id``: a version-5 UUID of both.

    A copy of the reaction (a reprocessed cause, a second process) carries the same id, so any
    consumer that deduplicates by ``ce_id`` drops it.
    """
    return str(uuid.uuid5(REACTION_NAMESPACE, f"{cause_id}/{aggregate_id}"))


S = TypeVar("S")


@dataclass(frozen=True)
class ReactionRules(Generic[S]):
    """One agency's reaction: the topics it reads, the event types it needs and its two pure functions.

    ``topics`` lists the topics read (without the prefix); ``types`` the record full names decoded, so
    every other record (payments, moves) is passed over on its ``ce_type`` header without decoding;
    ``emits`` the record full names ``decide`` may return, all of them the agency's own.
    """

    name: str
    agency: str
    topics: tuple[str, ...]
    types: frozenset[str]
    emits: frozenset[str]
    new_state: Callable[[], S]
    evolve: Callable[[S, Fact], None]
    decide: Callable[[S, Fact], list[Emission]]


def react(rules: ReactionRules[S], state: S, event: Fact) -> list[Emission]:
    """Decide on ``event``, then fold it and the decided events into ``state``; return the decided events."""
    emitted = rules.decide(state, event)
    rules.evolve(state, event)
    for emission in emitted:
        rules.evolve(state, emission)
    return emitted
