"""Re-applying dead letters after a fix: ``govbus dlq replay``.

A dead letter is decoded and applied as the runner applies a record (the same
:class:`~consumers.decoder.EventDecoder`, :class:`~consumers.readmodel.WorkingSet` and
:meth:`~consumers.stores.Store.write`), in one store transaction per batch, with its original topic,
partition and offset as provenance. Its event id is claimed in that transaction, so an event already
applied (replayed before, or applied from its topic since) is skipped: a replay is idempotent. The
adapter's positions are not touched: a dead letter is not a new record of its topic.

A letter that fails again (still undecodable, or still refused by the model) is reported with its
reason and its id released, so a later replay can try it again; the others of its batch are applied.
An unexpected exception in projection code rolls the batch back and propagates, as in the runner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bus.errors import ProjectionError
from consumers.decoder import EventDecoder
from consumers.dlq import DeadLetter
from consumers.events import DecodedEvent
from consumers.readmodel import ReadModel, WorkingSet
from consumers.runtime import UNDECODABLE
from consumers.stores import Store

BATCH_SIZE = 500


@dataclass
class ReplayReport:
    """What a replay did with each dead letter."""

    applied: list[DeadLetter] = field(default_factory=list)
    already_applied: list[DeadLetter] = field(default_factory=list)
    failed: list[tuple[DeadLetter, str]] = field(default_factory=list)
    """Each letter that failed again, with why (``ErrorClass: reason``)."""


def replay_dead_letters(
    store: Store,
    model: ReadModel,
    decoder: EventDecoder,
    letters: Sequence[DeadLetter],
    *,
    batch_size: int = BATCH_SIZE,
) -> ReplayReport:
    """Apply ``letters`` (in their order) through ``model`` into ``store``'s live tables."""
    store.migrate(model.tables)
    report = ReplayReport()
    for start in range(0, len(letters), batch_size):
        _replay_batch(store, model, decoder, letters[start : start + batch_size], report)
    return report


def _replay_batch(
    store: Store,
    model: ReadModel,
    decoder: EventDecoder,
    letters: Sequence[DeadLetter],
    report: ReplayReport,
) -> None:
    decoded: list[tuple[DeadLetter, DecodedEvent]] = []
    for letter in letters:
        try:
            decoded.append((letter, decoder.decode(letter.original())))
        except UNDECODABLE as exc:
            report.failed.append((letter, f"{type(exc).__name__}: {exc}"))
    applied: list[DeadLetter] = []
    already: list[DeadLetter] = []
    failed: list[tuple[DeadLetter, str]] = []
    refused: list[str] = []
    with store.transaction() as tx:
        claimed = store.claim_events(tx, model.name, [event.id for _, event in decoded])
        store.advance_generation(tx, model.name)  # a running runner must not trust the rows it kept
        rows = WorkingSet(store.rows(tx), model.tables)
        rows.prefetch(hint for _, event in decoded for hint in model.prefetch(event))
        for letter, event in decoded:
            if event.id not in claimed:
                already.append(letter)
                continue
            claimed.discard(event.id)  # a second letter of the same event is already applied
            rows.begin(event)
            try:
                model.apply(rows, event)
            except ProjectionError as exc:
                rows.rollback()
                refused.append(event.id)
                failed.append((letter, f"{type(exc).__name__}: {exc}"))
            else:
                rows.commit()
                applied.append(letter)
        store.release_events(tx, model.name, refused)
        store.write(tx, rows.changes())
    # Counted only once the batch committed.
    report.applied += applied
    report.already_applied += already
    report.failed += failed
