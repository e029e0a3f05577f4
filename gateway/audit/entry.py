"""What one audit record says, and the one call the gateway's routes make to write it.

A route builds an :class:`AuditEntry` (who asked, for what, about whom, with which outcome) and awaits
:meth:`AuditLog.record` **before** its answer leaves; when that raises :class:`AuditUnavailable` the route
answers 503 and returns no data. Decisions:

- Members hold names, never values: ``fields`` names the fields disclosed in clear, ``credential`` is the
  credential's key (never its secret), ``keys`` the record keys involved as text.
- ``subjects`` are the resident ids whose data was involved; they are what the subject view
  (``GET /v1/audit/subjects/{resident_id}``) indexes, so a route that discloses a resident's data must name
  the resident there, or the resident never sees the disclosure.
- The protocol has one method so that any route can be tested with a fake that keeps entries in a list;
  the lifecycle of the real log (:class:`~gateway.audit.writer.KafkaAuditLog`) is :class:`Managed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from gateway.agreements import Grant
    from gateway.identities import Identity

ACTIONS = ("read", "query", "feed", "publish", "registry-write", "audit-read")
"""The actions the gateway records (documentation: :class:`AuditEntry` does not refuse others)."""


@dataclass(frozen=True)
class AuditEntry:
    """One audited request: who, what, about whom, under which agreement, and how it ended."""

    action: str
    """``read``, ``query``, ``feed``, ``publish``, ``registry-write`` or ``audit-read``."""
    organisation: str
    role: str
    credential: str
    """The credential's KEY (never the secret)."""
    model: str | None
    """The read model, ``citizen_profile``, the topic(s) of a publish or the registry subject."""
    keys: tuple[str, ...] = ()
    """Record keys involved, as text."""
    subjects: tuple[str, ...] = ()
    """Resident ids whose data was involved: the key of the subject view's index."""
    fields: tuple[str, ...] = ()
    """Names of the fields disclosed in clear (never their values)."""
    purpose: str | None = None
    legal_basis: str | None = None
    agreement: str | None = None
    """The sharing agreement's id."""
    outcome: str = "ok"
    """E.g. ``disclosed``, ``refused``, ``not-found``, ``published``, ``registered``, ``failed``."""
    detail: str | None = None
    """E.g. the refusal reason."""

    @classmethod
    def by(
        cls, caller: Identity, action: str, model: str | None, grant: Grant | None = None, **members: Any
    ) -> AuditEntry:
        """An entry of ``caller`` (organisation, role, credential key) doing ``action`` on ``model``; with
        ``grant``, the purpose, legal basis and agreement it acted under. ``members`` are the others."""
        if grant is not None:
            members.setdefault("purpose", grant.purpose.name)
            members.setdefault("legal_basis", grant.purpose.legal_basis)
            members.setdefault("agreement", grant.agreement.id)
        return cls(
            action=action,
            organisation=caller.organisation,
            role=caller.role.value,
            credential=caller.key,
            model=model,
            **members,
        )


class AuditUnavailable(Exception):  # noqa: N818 - the name is the interface other routes code against
    """The audit record could not be written; the caller answers 503 and returns no data."""


class AuditLog(Protocol):
    """Where the gateway writes its audit records."""

    async def record(self, entry: AuditEntry) -> None:
        """Return once ``entry`` is durably in the log; raise :class:`AuditUnavailable` otherwise (a
        bounded wait)."""
        ...


@runtime_checkable
class Managed(Protocol):
    """An audit log (or trail) with a lifecycle: the app starts it when it starts and closes it at the end."""

    def start(self) -> None:
        """Get ready (create the topic, find where the chain ends); raises when Kafka does not answer."""
        ...

    def close(self) -> None:
        """Finish what is under way and release the Kafka clients."""
        ...


@runtime_checkable
class Positioned(Protocol):
    """An audit log that knows where its last committed record is (for the trail's read-your-writes)."""

    def committed(self) -> Mapping[int, int]:
        """Partition → offset of the last record this log committed there (empty before its first)."""
        ...
