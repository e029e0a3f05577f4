"""What a caller learns when it stops waiting for a batch (:func:`producers.atomic.give_up`)."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from bus.errors import PublishError
from producers.atomic import OutcomeUnknownError, give_up


def test_a_batch_still_waiting_for_its_round_is_cancelled_and_never_sent() -> None:
    """Giving up on a batch no round has taken cancels it and says it was not published."""
    outcome: Future[None] = Future()
    with pytest.raises(PublishError, match="not published") as raised:
        give_up(outcome, 30)
    assert not isinstance(raised.value, OutcomeUnknownError)
    assert outcome.cancelled()
    assert not outcome.set_running_or_notify_cancel()  # the sender thread skips it


def test_a_batch_in_a_round_has_an_unknown_outcome() -> None:
    """Giving up on a batch a round is sending says its outcome is unknown (it may be committed)."""
    outcome: Future[None] = Future()
    assert outcome.set_running_or_notify_cancel()
    with pytest.raises(OutcomeUnknownError):
        give_up(outcome, 30)
    assert not outcome.cancelled()


def test_a_batch_that_ended_meanwhile_keeps_its_own_answer() -> None:
    """A batch whose round ended just as the caller gave up is not reported as lost."""
    committed: Future[None] = Future()
    committed.set_running_or_notify_cancel()
    committed.set_result(None)
    give_up(committed, 30)
    failed: Future[None] = Future()
    failed.set_running_or_notify_cancel()
    failed.set_exception(PublishError("not published: refused"))
    give_up(failed, 30)
    with pytest.raises(PublishError, match="refused"):
        failed.result()
