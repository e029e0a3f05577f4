"""``Idempotency-Key``: a repeated publish request returns the first answer and publishes nothing new.

Keys are kept per agency in the gateway's store (the read-model database, so every gateway replica on
one PostgreSQL shares them), for :data:`RETENTION_S` (24 hours). A key is claimed before the events
are sent and its answer recorded after Kafka committed them:

- the same key with the same request again → the recorded answer (202, the same event ids);
- the same key with another request body → 422 (a key names one request);
- the same key while its first request is still being sent → 409, retry later;
- the first request failed (nothing committed, or the outcome is unknown) → the claim is released, so
  the retry publishes; it derives the same event ids from the key, so an event that was committed
  after all is dropped by every consumer as a copy.

A claim left by a gateway that died while sending is taken over after :data:`ABANDONED_S`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from consumers.stores import Store

RETENTION_S = 24 * 3600
ABANDONED_S = 120
PURGE_EVERY_S = 60.0


@dataclass(frozen=True)
class Recorded:
    """What a key already holds: the request's fingerprint and the answer, or None while being sent."""

    fingerprint: str
    answer: dict[str, Any] | None


def fingerprint(body: bytes) -> str:
    """The fingerprint of a request body."""
    return hashlib.sha256(body).hexdigest()


class IdempotencyKeys:
    """The keys of publish requests, in the store's own table."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._purged = 0.0
        with store.transaction() as tx:
            tx.execute(
                "CREATE TABLE IF NOT EXISTS gateway_idempotency_keys ("
                "agency TEXT NOT NULL, idempotency_key TEXT NOT NULL, fingerprint TEXT NOT NULL, "
                "answer TEXT, claimed_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (agency, idempotency_key))"
            )

    def claim(self, agency: str, key: str, print_: str) -> Recorded | None:
        """Claim ``key`` for this request (None), or what the key already holds."""
        now = time.time()
        self._purge(now)
        with self._store.transaction() as tx:
            inserted = tx.execute(
                "INSERT INTO gateway_idempotency_keys "
                "(agency, idempotency_key, fingerprint, answer, claimed_at) "
                "VALUES (?, ?, ?, NULL, ?) ON CONFLICT DO NOTHING",
                (agency, key, print_, now),
            ).rowcount
            if inserted:
                return None
            row = tx.execute(
                "SELECT fingerprint, answer, claimed_at FROM gateway_idempotency_keys "
                "WHERE agency = ? AND idempotency_key = ?",
                (agency, key),
            ).fetchone()
            if row is None:  # purged in between: claim it now
                tx.execute(
                    "INSERT INTO gateway_idempotency_keys "
                    "(agency, idempotency_key, fingerprint, answer, claimed_at) "
                    "VALUES (?, ?, ?, NULL, ?)",
                    (agency, key, print_, now),
                )
                return None
            stored_print, answer, claimed_at = row
            if answer is None and now - float(claimed_at) > ABANDONED_S and stored_print == print_:
                tx.execute(
                    "UPDATE gateway_idempotency_keys SET claimed_at = ? "
                    "WHERE agency = ? AND idempotency_key = ?",
                    (now, agency, key),
                )
                return None
            return Recorded(str(stored_print), None if answer is None else json.loads(answer))

    def record(self, agency: str, key: str, answer: dict[str, Any]) -> None:
        """Keep the answer of the request that holds ``key``."""
        with self._store.transaction() as tx:
            tx.execute(
                "UPDATE gateway_idempotency_keys SET answer = ? WHERE agency = ? AND idempotency_key = ?",
                (json.dumps(answer), agency, key),
            )

    def release(self, agency: str, key: str) -> None:
        """Give ``key`` up after its request failed, so that a retry publishes."""
        with self._store.transaction() as tx:
            tx.execute(
                "DELETE FROM gateway_idempotency_keys "
                "WHERE agency = ? AND idempotency_key = ? AND answer IS NULL",
                (agency, key),
            )

    def _purge(self, now: float) -> None:
        if now - self._purged < PURGE_EVERY_S:
            return
        self._purged = now
        with self._store.transaction() as tx:
            tx.execute("DELETE FROM gateway_idempotency_keys WHERE claimed_at < ?", (now - RETENTION_S,))
