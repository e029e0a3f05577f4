"""The ACL plan (govbus.acls) and ``govbus acl plan``: least privilege from the catalog and the adapters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bus.errors import ConfigurationError
from bus.settings import load_settings
from consumers.adapters import ADAPTERS
from consumers.dlq import dlq_topic
from consumers.reactions import RULES
from consumers.reactions.core import ReactionRules
from consumers.runtime import group_id
from consumers.stores.base import shadow_adapter
from govbus.acls import Acl, Principal, plan, principal_name, principals
from govbus.cli import main
from schemas.catalog import Catalog, load_catalog

PREFIX = "staging."


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """The shipped catalog."""
    return load_catalog()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A GOVBUS_HOME and topic prefix of its own (settings are read once per process: read them again)."""
    monkeypatch.setenv("GOVBUS_HOME", str(tmp_path))
    monkeypatch.setenv("GOVBUS_TOPIC_PREFIX", PREFIX)
    load_settings.cache_clear()
    yield tmp_path
    load_settings.cache_clear()


def _of(acls: list[Acl], who: str, resource_type: str = "topic", operation: str | None = None) -> set[str]:
    return {
        a.resource_name
        for a in acls
        if a.principal == who and a.resource_type == resource_type and operation in (None, a.operation)
    }


def _writers(acls: list[Acl], kind_prefix: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for acl in acls:
        if (
            acl.principal.startswith(kind_prefix)
            and acl.resource_type == "topic"
            and acl.operation == "Write"
        ):
            found.setdefault(acl.resource_name, set()).add(acl.principal)
    return found


def test_every_catalog_topic_has_exactly_one_writing_agency_its_own(catalog: Catalog) -> None:
    """Each catalog topic is written by exactly one agency principal, the agency the topic belongs to."""
    writers = _writers(plan(catalog, ""), principal_name("agency", "") + "-")
    for topic in catalog.topics():
        assert writers[topic] == {principal_name("agency", "", topic.split(".", 1)[0])}


def test_no_agency_writes_another_agencys_topic(catalog: Catalog) -> None:
    """Every topic an agency principal may write is a catalog topic of that agency."""
    acls = plan(catalog, "")
    agencies = sorted({kind.agency for kind in catalog})
    for agency in agencies:
        written = _of(acls, principal_name("agency", "", agency), operation="Write")
        assert written == {kind.topic for kind in catalog.for_agency(agency)}


def test_an_adapter_reads_its_topics_and_writes_only_its_own_dlq(catalog: Catalog) -> None:
    """An adapter reads and describes its projected topics, never writes them, and writes its own DLQ only."""
    acls = plan(catalog, "")
    for adapter, build in ADAPTERS.items():
        who = principal_name("adapter", "", adapter)
        topics = set(build().topics)
        assert topics <= _of(acls, who, operation="Read")
        assert topics <= _of(acls, who, operation="Describe")
        assert _of(acls, who, operation="Write") == {dlq_topic(adapter)}


def test_an_adapters_group_patterns_match_the_runtimes_group_ids(catalog: Catalog) -> None:
    """The adapter's prefixed group patterns cover the live and rebuild group ids the runtime builds."""
    acls = plan(catalog, PREFIX)
    store: Any = SimpleNamespace(identity="sqlite:////tmp/readmodel.sqlite")
    for adapter in ADAPTERS:
        who = principal_name("adapter", PREFIX, adapter)
        patterns = {a.resource_name for a in acls if a.principal == who and a.resource_type == "group"}
        assert all(
            a.pattern_type == "prefixed" for a in acls if a.principal == who and a.resource_type == "group"
        )
        for name in (adapter, shadow_adapter(adapter)):
            assert any(group_id(name, store, PREFIX).startswith(p) for p in patterns)
        others = [other for other in ADAPTERS if other != adapter]
        assert not any(group_id(o, store, PREFIX).startswith(p) for o in others for p in patterns)


def test_a_reaction_has_its_transactional_id_and_writes_only_its_agency(catalog: Catalog) -> None:
    """A reaction reads its inputs and group, owns its transactional id, writes its agency topics and DLQ."""
    acls = plan(catalog, PREFIX)
    for name, rules in RULES.items():
        who = principal_name("reaction", PREFIX, name)
        txn = f"{PREFIX}govbus.{name}"
        assert {"Write", "Describe"} <= {
            a.operation for a in acls if a.principal == who and a.resource_type == "transactional-id"
        }
        assert _of(acls, who, "transactional-id") == {txn}
        assert _of(acls, who, "group", "Read") == {txn}
        assert {PREFIX + t for t in rules.topics} <= _of(acls, who, operation="Read")
        own = {PREFIX + kind.topic for kind in catalog.for_agency(rules.agency)}
        written = _of(acls, who, operation="Write")
        assert PREFIX + dlq_topic(name) in written
        assert written - {PREFIX + dlq_topic(name)} <= own
        assert {PREFIX + catalog.get(t).topic for t in rules.emits} <= written


def test_a_reaction_emitting_another_agencys_event_is_refused(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reaction whose emitted types belong to another agency makes the plan fail with ConfigurationError."""
    name, rules = next(iter(RULES.items()))
    foreign = next(kind.full_name for kind in catalog if kind.agency != rules.agency)
    bad: ReactionRules[Any] = ReactionRules(
        name,
        rules.agency,
        rules.topics,
        rules.types,
        frozenset({foreign}),
        rules.new_state,
        rules.evolve,
        rules.decide,
    )
    monkeypatch.setitem(RULES, name, bad)
    with pytest.raises(ConfigurationError, match="emits to"):
        plan(catalog, "")


def test_the_plan_is_sorted_without_duplicates_and_deterministic(catalog: Catalog) -> None:
    """The plan is sorted, holds each ACL once, names only planned principals, and is the same every time."""
    acls = plan(catalog, PREFIX)
    assert acls == sorted(acls)
    assert len(acls) == len(set(acls))
    assert acls == plan(catalog, PREFIX)
    names = {p.name for p in principals(catalog, PREFIX)}
    assert {a.principal for a in acls} == names
    assert len(names) == len(principals(catalog, PREFIX))


def test_the_topic_prefix_is_applied_everywhere(catalog: Catalog) -> None:
    """The prefix is on every principal, topic, transactional id and group the runtime names with it."""
    acls = plan(catalog, PREFIX)
    shared_groups = ("govbus-feed-", "govbus-audit-reader-", "govbus-lag", "govbus-dlq-reader.")
    assert all(p.name.startswith(PREFIX) for p in principals(catalog, PREFIX))
    for acl in acls:
        assert acl.principal.startswith(PREFIX)
        if acl.resource_type in ("topic", "transactional-id"):
            assert PREFIX in acl.resource_name, acl
        if acl.resource_type == "group" and not acl.resource_name.startswith(shared_groups):
            assert PREFIX in acl.resource_name, acl
    bare = {a.resource_name for a in plan(catalog, "") if a.resource_type == "topic"}
    assert {a.resource_name for a in acls if a.resource_type == "topic"} == {PREFIX + t for t in bare}


def test_principals_are_named_by_kind_and_validated(catalog: Catalog) -> None:
    """Principals are ``{prefix}govbus-{kind}[-{name}]``, ``User:<name>`` to Kafka; bad values are refused."""
    found = principals(catalog, "")
    assert {p.kind for p in found} == {"agency", "adapter", "reaction", "registry", "gateway", "admin"}
    assert "govbus-agency-localgov" in {p.name for p in found}
    assert "govbus-adapter-residents" in {p.name for p in found}
    assert Principal("govbus-registry", "registry", "").kafka == "User:govbus-registry"
    with pytest.raises(ValueError, match="kind"):
        Principal("x", "robot", "")
    with pytest.raises(ValueError, match="operation"):
        Acl("x", "topic", "t", "literal", "Scribble")


def test_the_gateway_and_registry_reach_their_own_topics(catalog: Catalog) -> None:
    """The gateway reads and writes the audit topic and writes catalog topics; the registry owns _schemas."""
    acls = plan(catalog, PREFIX)
    gateway = principal_name("gateway", PREFIX)
    assert f"{PREFIX}govbus.audit" in _of(acls, gateway, operation="Write")
    assert f"{PREFIX}govbus.audit" in _of(acls, gateway, operation="Read")
    assert {PREFIX + t for t in catalog.topics()} <= _of(acls, gateway, operation="Write")
    registry = principal_name("registry", PREFIX)
    assert _of(acls, registry, operation="Write") == {f"{PREFIX}_schemas"}
    assert _of(acls, registry, "transactional-id") == {f"govbus-registry-{PREFIX}_schemas"}


def test_the_json_plan_parses_and_matches_plan(
    home: Path, catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    """``govbus acl plan --json`` prints one document whose ACLs, by principal, are exactly ``plan()``."""
    assert main(["acl", "plan", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["topic_prefix"] == PREFIX
    assert [p["name"] for p in document["principals"]] == [p.name for p in principals(catalog, PREFIX)]
    listed = [Acl(**acl) for p in document["principals"] for acl in p["acls"]]
    assert sorted(listed) == plan(catalog, PREFIX)
    for entry in document["principals"]:
        assert entry["principal"] == f"User:{entry['name']}"
        assert all(acl["principal"] == entry["name"] for acl in entry["acls"])


def test_the_text_plan_has_one_line_per_acl(
    home: Path, catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    """``govbus acl plan`` prints each principal as ``User:<name>`` followed by one indented line per ACL."""
    assert main(["acl", "plan"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("    ") for line in lines) == len(plan(catalog, PREFIX))
    assert [line.split()[0] for line in lines if not line.startswith(" ")] == [
        p.kafka for p in principals(catalog, PREFIX)
    ]


def test_a_plan_error_exits_1_with_a_message(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A catalog that cannot be read is a one-line error on stderr and exit 1."""

    def broken() -> Catalog:
        raise ConfigurationError("no catalog here")

    monkeypatch.setattr("govbus.cli.acl.load_catalog", broken)
    assert main(["acl", "plan"]) == 1
    assert "govbus: error: no catalog here" in capsys.readouterr().err


@pytest.mark.parametrize("prefix", ["bad prefix.", "a/b.", "\udcff.", "x" * 101])
def test_a_prefix_kafka_cannot_name_topics_with_is_refused(prefix: str) -> None:
    """A topic prefix with characters a Kafka topic name cannot hold is a configuration error."""
    with pytest.raises(ConfigurationError, match="topic prefix"):
        plan(load_catalog(), prefix)
