"""The gateway's audit log: a hash chain of every audited request, kept in Kafka, and a view per resident.

- :mod:`~gateway.audit.entry`: what a record says (:class:`AuditEntry`) and the call routes make
  (:class:`AuditLog`, :class:`AuditUnavailable`);
- :mod:`~gateway.audit.chain`: the stored form, its hash, and checking chains;
- :mod:`~gateway.audit.topic`: the audit topic, creating and reading it;
- :mod:`~gateway.audit.writer`: :class:`KafkaAuditLog`, the pipelined writer (blocks, gapless);
- :mod:`~gateway.audit.trail`: :class:`AuditTrail`, the topic indexed by resident id;
- :mod:`~gateway.audit.api`: ``GET /v1/audit/subjects/{resident_id}``.

The rule every route follows: the audit record is written before the answer leaves; when it cannot be,
the answer is 503 and carries no data.
"""

from __future__ import annotations

from gateway.audit.entry import AuditEntry, AuditLog, AuditUnavailable, Managed, Positioned

__all__ = ["AuditEntry", "AuditLog", "AuditUnavailable", "Managed", "Positioned"]
