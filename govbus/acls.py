"""Broker ACLs derived from the catalog and the adapters: who may do what, where (``govbus acl plan``).

This module only *plans*: pure functions over the catalog, :data:`consumers.adapters.ADAPTERS`,
:data:`consumers.reactions.RULES` and the topic prefix, returning frozen, sortable values. It calls no
Kafka client; the broker does not enforce anything yet (SASL and the authorizer are a later step).

Principals, one per component, named ``{prefix}govbus-...`` (the Kafka principal is ``User:<name>``):

- ``{prefix}govbus-agency-{agency}`` (one per catalog agency, the topic's first segment): Write and
  Describe on the catalog topics of that agency, IdempotentWrite on the cluster (publishers and the
  outbox relay produce idempotently). No agency may write another agency's topic.
- ``{prefix}govbus-adapter-{adapter}`` (one per read model): Read and Describe on the topics its model
  projects; Read on its consumer groups, as PREFIXED patterns ``govbus.{prefix}{adapter}.`` (the live
  group; :func:`consumers.runtime.group_id` appends a digest of the store's identity) and
  ``govbus.{prefix}{adapter}__rebuild.`` (``govbus readmodel rebuild`` runs as the adapter); Write and
  Describe on its own ``{prefix}{adapter}.dlq``; IdempotentWrite (its dead-letter producer is idempotent).
- ``{prefix}govbus-reaction-{name}`` (one per reaction): Read and Describe on its input topics; Write and
  Describe on the topics of the event types it emits, which must be its agency's (else
  ConfigurationError); Write and Describe on its ``{prefix}{name}.dlq``; Read on its group and Write and
  Describe on its transactional id, both ``{prefix}govbus.{name}`` (literal); IdempotentWrite.
- ``{prefix}govbus-registry``: Create, Read, Write and Describe on ``{prefix}_schemas`` (it creates its
  topic when it starts); Read on its reader group and Write and Describe on its transactional id, both
  literal (``govbus-registry-reader-{prefix}_schemas``, ``govbus-registry-{prefix}_schemas``);
  IdempotentWrite. Today the registry runs inside the gateway process with a Kafka client of its own
  (client id ``govbus-registry``); the broker step gives that client this principal's credential.
- ``{prefix}govbus-gateway``: Create, Read, Write and Describe on the audit topic ``{prefix}govbus.audit``
  (the audit log creates it, writes its chain and reads its tail; the audit trail reads it); Read on the
  prefixed groups ``govbus-audit-reader-`` and ``govbus-feed-`` (throwaway group ids of consumers that
  assign partitions and commit nothing); Read and Describe on every read model's topic (change feeds);
  Write and Describe on every catalog topic (the publish API writes for agencies after its own checks);
  Write and Describe on the prefixed transactional id ``{prefix}govbus-gateway-`` (its publish senders);
  IdempotentWrite. The registry API is the registry principal's; the query API reads the store only.
- ``{prefix}govbus-admin`` (the operator's commands): Create and Describe on every topic ``govbus topics
  create`` makes (catalog topics, DLQs); Describe on each reaction's group and on ``govbus-lag``
  (``govbus lag``); Read and Describe on every DLQ and Read on its reader group
  ``govbus-dlq-reader.{topic}`` (``govbus dlq list|replay``); Read and Describe on the audit topic and
  Read on the prefixed group ``govbus-audit-reader-`` (``govbus audit verify``). Development commands
  (``govbus up``, ``demo``, ``bench``) run on the embedded broker, which has no authorizer. If the
  broker step makes this principal a super user (``super.users``), these ACLs change nothing there and
  still say what the operator commands touch.

Decisions: the principal names carry the topic prefix, as topic names do, so environments that share a
cluster never share a credential. The throwaway groups ``govbus-audit-reader-``, ``govbus-feed-`` and
``govbus-lag`` are named by the code without the prefix, so environments share those patterns (their
consumers assign partitions and commit nothing). Describe is granted beside Read and Write although
Kafka implies it, so the plan reads as what each component does. IdempotentWrite on the cluster is for
brokers before Kafka 3.2 (later ones accept Write on a topic instead, KIP-679). The registry's Kafka
client is built by ``SchemaRegistry.from_kafka``, not by ``govbus.bootstrap.build_connection``, so the
broker step has to pass it credentials separately. It lives in the roof package because it reads the names
``consumers``, ``gateway`` and ``schemas`` give their clients.
Every ACL is ``allow`` from any host.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bus.errors import ConfigurationError
from bus.settings import TOPIC_PREFIX
from consumers.adapters import ADAPTERS
from consumers.dlq import dlq_topic
from consumers.reactions import RULES
from consumers.reactions.runtime import group_id as reaction_group
from consumers.stores.base import shadow_adapter
from gateway.audit.topic import audit_topic
from schemas.catalog import Catalog
from schemas.registry.log import DEFAULT_TOPIC as REGISTRY_TOPIC

PRINCIPAL_KINDS = ("agency", "adapter", "reaction", "registry", "gateway", "admin")
RESOURCE_TYPES = frozenset({"topic", "group", "transactional-id", "cluster"})
PATTERN_TYPES = frozenset({"literal", "prefixed"})
OPERATIONS = frozenset(
    {
        "All", "Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction",
        "DescribeConfigs", "AlterConfigs", "IdempotentWrite", "CreateTokens", "DescribeTokens",
    }
)  # fmt: skip
CLUSTER = "kafka-cluster"
"""The only name of Kafka's cluster resource."""
FEED_GROUPS = "govbus-feed-"
"""gateway/feeds.py: each change-feed subscription's consumer is in ``govbus-feed-{uuid}``."""
AUDIT_READER_GROUPS = "govbus-audit-reader-"
"""gateway/audit/topic.py:reader: ``govbus-audit-reader-{random}``."""
LAG_GROUP = "govbus-lag"
"""consumers/lag.py: the watermark reader's group id."""
GATEWAY_TRANSACTIONS = "govbus-gateway-"
"""govbus/bootstrap.py:build_publishing: ``{prefix}govbus-gateway-{instance}-{n}``."""


@dataclass(frozen=True, order=True)
class Principal:
    """A client identity: ``name`` (Kafka principal ``User:<name>``), ``kind`` and what it is."""

    name: str
    kind: str
    doc: str

    def __post_init__(self) -> None:
        if self.kind not in PRINCIPAL_KINDS:
            raise ValueError(f"unknown principal kind {self.kind!r}")

    @property
    def kafka(self) -> str:
        """The principal as Kafka names it."""
        return f"User:{self.name}"


@dataclass(frozen=True, order=True)
class Acl:
    """One Kafka ACL binding; ``principal`` is a :class:`Principal` name (without ``User:``)."""

    principal: str
    resource_type: str
    resource_name: str
    pattern_type: str
    operation: str
    permission: str = "allow"
    host: str = "*"

    def __post_init__(self) -> None:
        if self.resource_type not in RESOURCE_TYPES:
            raise ValueError(f"unknown resource type {self.resource_type!r}")
        if self.pattern_type not in PATTERN_TYPES:
            raise ValueError(f"unknown pattern type {self.pattern_type!r}")
        if self.operation not in OPERATIONS:
            raise ValueError(f"unknown operation {self.operation!r}")
        if self.permission not in ("allow", "deny"):
            raise ValueError(f"unknown permission {self.permission!r}")
        if self.resource_type == "cluster" and (self.resource_name, self.pattern_type) != (
            CLUSTER,
            "literal",
        ):
            raise ValueError(f"the cluster resource is literal {CLUSTER!r}")


def principal_name(kind: str, topic_prefix: str, name: str = "") -> str:
    """``{prefix}govbus-{kind}`` or ``{prefix}govbus-{kind}-{name}``."""
    return f"{topic_prefix}govbus-{kind}" + (f"-{name}" if name else "")


def principals(catalog: Catalog, topic_prefix: str) -> list[Principal]:
    """Every principal of the plan, by kind (in :data:`PRINCIPAL_KINDS` order) then name."""
    return [principal for principal, _ in _members(catalog, topic_prefix)]


def plan(catalog: Catalog, topic_prefix: str) -> list[Acl]:
    """Every ACL the principals need (see the module's documentation), sorted, without duplicates."""
    return sorted({acl for _, grants in _members(catalog, topic_prefix) for acl in grants})


def _members(catalog: Catalog, prefix: str) -> list[tuple[Principal, list[Acl]]]:
    """Each principal with its grants, in :func:`principals` order; ConfigurationError for a topic prefix
    Kafka could not name topics with."""
    if not TOPIC_PREFIX.fullmatch(prefix):  # a caller may pass a prefix that no Settings checked
        raise ConfigurationError(
            f"topic prefix {prefix[:120]!a} is not valid: at most 100 of A-Z, a-z, 0-9, '.', '_' and '-'"
        )
    members: list[tuple[Principal, list[Acl]]] = []
    for agency in sorted({kind.agency for kind in catalog}):
        who = principal_name("agency", prefix, agency)
        own = sorted({kind.topic for kind in catalog.for_agency(agency)})
        grants = [*_topics(who, prefix, own, "Write", "Describe"), _idempotent(who)]
        members.append((Principal(who, "agency", f"publishers of agency {agency}"), grants))
    for adapter in sorted(ADAPTERS):
        who = principal_name("adapter", prefix, adapter)
        members.append(
            (Principal(who, "adapter", f"read-model adapter {adapter}"), _adapter(who, adapter, prefix))
        )
    for name in sorted(RULES):
        who = principal_name("reaction", prefix, name)
        members.append(
            (Principal(who, "reaction", f"reaction {name}"), _reaction(who, name, catalog, prefix))
        )
    who = principal_name("registry", prefix)
    members.append((Principal(who, "registry", "the schema registry's storage"), _registry(who, prefix)))
    who = principal_name("gateway", prefix)
    gateway = Principal(who, "gateway", "the gateway: publish API, change feeds, audit log and trail")
    members.append((gateway, _gateway(who, catalog, prefix)))
    who = principal_name("admin", prefix)
    admin = Principal(who, "admin", "operator commands: topics create, lag, dlq, audit verify")
    members.append((admin, _admin(who, catalog, prefix)))
    return members


def _adapter(who: str, adapter: str, prefix: str) -> list[Acl]:
    groups = [f"govbus.{prefix}{adapter}.", f"govbus.{prefix}{shadow_adapter(adapter)}."]
    return [
        *_topics(who, prefix, ADAPTERS[adapter]().topics, "Read", "Describe"),
        *(Acl(who, "group", group, "prefixed", "Read") for group in groups),
        *_topics(who, prefix, [dlq_topic(adapter)], "Write", "Describe"),
        _idempotent(who),
    ]


def _reaction(who: str, name: str, catalog: Catalog, prefix: str) -> list[Acl]:
    rules = RULES[name]
    emitted = [catalog.get(full_name) for full_name in rules.emits]
    outputs = sorted({kind.topic for kind in emitted})
    foreign = sorted({kind.topic for kind in emitted if kind.agency != rules.agency})
    if foreign:
        raise ConfigurationError(f"reaction {name} of {rules.agency} emits to {', '.join(foreign)}")
    group = reaction_group(name, prefix)
    return [
        *_topics(who, prefix, rules.topics, "Read", "Describe"),
        *_topics(who, prefix, [*outputs, dlq_topic(name)], "Write", "Describe"),
        Acl(who, "group", group, "literal", "Read"),
        Acl(who, "transactional-id", group, "literal", "Write"),
        Acl(who, "transactional-id", group, "literal", "Describe"),
        _idempotent(who),
    ]


def _registry(who: str, prefix: str) -> list[Acl]:
    topic = prefix + REGISTRY_TOPIC
    return [
        *_topics(who, "", [topic], "Create", "Read", "Write", "Describe"),
        Acl(who, "group", f"govbus-registry-reader-{topic}", "literal", "Read"),
        Acl(who, "transactional-id", f"govbus-registry-{topic}", "literal", "Write"),
        Acl(who, "transactional-id", f"govbus-registry-{topic}", "literal", "Describe"),
        _idempotent(who),
    ]


def _gateway(who: str, catalog: Catalog, prefix: str) -> list[Acl]:
    fed = sorted({topic for build in ADAPTERS.values() for topic in build().topics})
    return [
        *_topics(who, "", [audit_topic(prefix)], "Create", "Read", "Write", "Describe"),
        Acl(who, "group", AUDIT_READER_GROUPS, "prefixed", "Read"),
        Acl(who, "group", FEED_GROUPS, "prefixed", "Read"),
        *_topics(who, prefix, fed, "Read", "Describe"),
        *_topics(who, prefix, catalog.topics(), "Write", "Describe"),
        Acl(who, "transactional-id", prefix + GATEWAY_TRANSACTIONS, "prefixed", "Write"),
        Acl(who, "transactional-id", prefix + GATEWAY_TRANSACTIONS, "prefixed", "Describe"),
        _idempotent(who),
    ]


def _admin(who: str, catalog: Catalog, prefix: str) -> list[Acl]:
    dlqs = [prefix + dlq_topic(name) for name in (*ADAPTERS, *RULES)]
    return [
        *_topics(who, prefix, catalog.topics(), "Create", "Describe"),
        *_topics(who, "", dlqs, "Create", "Read", "Describe"),
        *(Acl(who, "group", f"govbus-dlq-reader.{topic}", "literal", "Read") for topic in dlqs),
        Acl(who, "group", LAG_GROUP, "literal", "Describe"),
        *(Acl(who, "group", reaction_group(name, prefix), "literal", "Describe") for name in RULES),
        *_topics(who, "", [audit_topic(prefix)], "Read", "Describe"),
        Acl(who, "group", AUDIT_READER_GROUPS, "prefixed", "Read"),
    ]


def _topics(who: str, prefix: str, topics: Iterable[str], *operations: str) -> list[Acl]:
    return [Acl(who, "topic", prefix + topic, "literal", op) for topic in topics for op in operations]


def _idempotent(who: str) -> Acl:
    return Acl(who, "cluster", CLUSTER, "literal", "IdempotentWrite")
