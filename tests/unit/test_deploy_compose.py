"""The container image (Dockerfile) and the Docker Compose deployment (deploy/compose), checked as files.

There is no Docker engine here, so nothing is built or run: the files are parsed and held against the code
they configure (the settings' names, the CLI's commands, the gateway's health routes and port). Each check
returns its problems, and is also run on broken copies of the files to show that it can fail.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML has no inline types; types-PyYAML is not installed

from bus.settings import Settings
from gateway.health import health_router
from govbus.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
KAFKA_IMAGE = "apache/kafka:4.1.1"
GOVBUS_IMAGE = "govbus:local"
BROKERS = 3
REPLICATION = 3
MIN_ISR = 2
LOOPBACK = ("127.0.0.1", "::1", "localhost")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|CREDENTIAL|TOKEN", re.IGNORECASE)
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^:/@\s]+:([^@\s]+)@", re.IGNORECASE)

Doc = dict[str, Any]


# --- reading the files ----------------------------------------------------------------------------------


def load_compose() -> Doc:
    """The parsed compose file (YAML merge keys resolved)."""
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return cast(Doc, doc)


def services(doc: Doc) -> dict[str, dict[str, Any]]:
    """The services by name."""
    found = doc.get("services") or {}
    assert isinstance(found, dict)
    return cast(dict[str, dict[str, Any]], found)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as strings, from either the mapping or the list form."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = [str(item).partition("=") for item in raw]
        return {name: value for name, _, value in pairs}
    return {
        str(name): "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in raw.items()
    }


def kafka_nodes(doc: Doc) -> dict[str, dict[str, str]]:
    """The Kafka servers (services of the Kafka image with process roles) and their environments."""
    return {
        name: environment(service)
        for name, service in services(doc).items()
        if str(service.get("image", "")).startswith("apache/kafka")
        and "KAFKA_PROCESS_ROLES" in environment(service)
    }


def govbus_services(doc: Doc) -> dict[str, dict[str, Any]]:
    """The services that run the govbus image."""
    return {name: s for name, s in services(doc).items() if s.get("image") == GOVBUS_IMAGE}


def command(service: dict[str, Any]) -> list[str]:
    """A service's command as a list of arguments."""
    raw = service.get("command") or []
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


def strings(node: Any) -> Iterator[str]:
    """Every string (keys and values) in a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif isinstance(node, str):
        yield node


def settings_env_names() -> set[str]:
    """The environment variables bus.settings.Settings reads: its prefix and each field's name (or alias)."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else field.alias
        names.add(alias.upper() if alias else (prefix + name).upper())
    return names


def with_defaults(text: str) -> str:
    """``text`` with each ``${NAME:-default}`` replaced by its default, any other ``${...}`` by ``VALUE``."""
    pattern = r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?[^}]*\}"
    return re.sub(pattern, lambda m: "VALUE" if m.group(1) is None else m.group(1), text)


def parse_env_file(text: str) -> dict[str, str]:
    """``NAME=value`` lines of an env file, comments and blank lines skipped."""
    pairs = {}
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            name, _, value = stripped.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    """The build stages of a Dockerfile, each a list of (INSTRUCTION, arguments), continuations joined."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1]
            continue
        lines.append(pending + raw)
        pending = ""
    if pending:
        lines.append(pending)
    stages: list[list[tuple[str, str]]] = []
    for line in lines:
        keyword, _, arguments = line.strip().partition(" ")
        instruction = (keyword.upper(), arguments.strip())
        if instruction[0] == "FROM":
            stages.append([instruction])
        elif stages:
            stages[-1].append(instruction)
    return stages


def dockerfile_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    """The variables a stage's ENV instructions set (``K=V ...`` and the legacy ``K V``)."""
    found: dict[str, str] = {}
    for keyword, arguments in stage:
        if keyword != "ENV":
            continue
        words = shlex.split(arguments)
        if words and "=" not in words[0]:
            found[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            name, _, value = word.partition("=")
            found[name] = value
    return found


def gateway_defaults() -> tuple[str, int]:
    """The host and port `govbus gateway` listens on by default."""
    args = build_parser().parse_args(["gateway"])
    return str(args.host), int(args.port)


# --- the checks -----------------------------------------------------------------------------------------


def cluster_problems(doc: Doc) -> list[str]:
    """Three combined KRaft nodes: distinct node ids, one cluster id, a quorum naming all three."""
    nodes = kafka_nodes(doc)
    problems = []
    if len(nodes) != BROKERS:
        problems.append(f"{len(nodes)} Kafka nodes, not {BROKERS}")
    ids = {name: env.get("KAFKA_NODE_ID", "") for name, env in nodes.items()}
    if len(set(ids.values())) != len(ids) or "" in ids.values():
        problems.append(f"node ids are not distinct: {ids}")
    clusters = {env.get("CLUSTER_ID", "") for env in nodes.values()}
    if len(clusters) != 1 or "" in clusters:
        problems.append(f"not one cluster id: {clusters}")
    for name, env in nodes.items():
        if sorted(env.get("KAFKA_PROCESS_ROLES", "").split(",")) != ["broker", "controller"]:
            problems.append(f"{name} is not a combined broker/controller")
        voters = dict(
            v.split("@", 1) for v in env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "").split(",") if "@" in v
        )
        for other, node_id in ids.items():
            if voters.get(node_id, "").split(":")[0] != other:
                problems.append(f"{name}'s quorum voters do not name {other} as node {node_id}: {voters}")
        if len(voters) != BROKERS:
            problems.append(f"{name} has {len(voters)} quorum voters")
        if f"//{name}:" not in env.get("KAFKA_ADVERTISED_LISTENERS", ""):
            problems.append(f"{name} does not advertise its own name")
    for service, s in govbus_services(doc).items():
        bootstrap = environment(s).get("GOVBUS_KAFKA_BOOTSTRAP", "")
        if {server.split(":")[0] for server in bootstrap.split(",")} != set(nodes):
            problems.append(
                f"{service}'s GOVBUS_KAFKA_BOOTSTRAP {bootstrap!r} does not list the {BROKERS} nodes"
            )
    return problems


def replication_problems(doc: Doc) -> list[str]:
    """Replication factor 3 and min ISR 2 for topics, offsets and transaction state; govbus creates RF 3."""
    wanted = {
        "KAFKA_DEFAULT_REPLICATION_FACTOR": REPLICATION,
        "KAFKA_MIN_INSYNC_REPLICAS": MIN_ISR,
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": REPLICATION,
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": REPLICATION,
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": MIN_ISR,
    }
    problems = [
        f"{name}: {key}={env.get(key)!r}, not {value}"
        for name, env in kafka_nodes(doc).items()
        for key, value in wanted.items()
        if env.get(key) != str(value)
    ]
    topics = [name for name, s in govbus_services(doc).items() if command(s)[:2] == ["topics", "create"]]
    if not topics:
        problems.append("no service runs `govbus topics create`")
    for name in topics:
        replication = environment(services(doc)[name]).get("GOVBUS_TOPIC_REPLICATION")
        if replication != str(REPLICATION):
            problems.append(f"{name} creates topics with GOVBUS_TOPIC_REPLICATION={replication!r}")
    return problems


def settings_problems(doc: Doc) -> list[str]:
    """GOVBUS_* variables that no field of bus.settings.Settings reads."""
    known = settings_env_names()
    return [
        f"{name}: {variable} is not a setting"
        for name, service in govbus_services(doc).items()
        for variable in environment(service)
        if variable.upper().startswith("GOVBUS_") and variable.upper() not in known
    ]


def port_problems(doc: Doc) -> list[str]:
    """Published ports that are not bound to a loopback address (no host address means 0.0.0.0)."""
    problems = []
    for name, service in services(doc).items():
        for port in service.get("ports") or []:
            if isinstance(port, dict):
                host = str(port.get("host_ip", ""))
            else:
                spec = with_defaults(str(port))
                if spec.startswith("["):
                    host = spec[1 : spec.index("]")]
                else:
                    parts = spec.split(":")
                    host = parts[0] if len(parts) == 3 else ""
            if host not in LOOPBACK:
                problems.append(f"{name} publishes {port!r} on {host or '0.0.0.0'}")
    return problems


def secret_problems(doc: Doc) -> list[str]:
    """Literal secrets: a secret-named variable, or a URL's password, that is not a ${...} interpolation."""
    problems = []
    for name, service in services(doc).items():
        for variable, value in environment(service).items():
            if SECRET_NAME.search(variable) and value and not re.fullmatch(r"\$\{[^}]*\}", value):
                problems.append(f"{name}: {variable} holds a literal value")
    for text in strings(doc):
        problems += [
            f"a URL with a literal password: {text!r}"
            for password in URL_PASSWORD.findall(text)
            if not password.startswith("${")
        ]
    return problems


def dependency_problems(doc: Doc) -> list[str]:
    """depends_on without a condition, or with one the dependency cannot meet (or should meet better)."""
    problems = []
    every = services(doc)
    for name, service in every.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            problems += [f"{name} depends on {d} without a condition" for d in depends]
            continue
        for other, spec in depends.items():
            condition = (spec or {}).get("condition")
            target = every.get(other, {})
            if "healthcheck" in target:
                wanted = "service_healthy"
            elif str(target.get("restart", "no")) == "no":
                wanted = "service_completed_successfully"
            else:
                wanted = "service_started"
            if condition != wanted:
                problems.append(f"{name} depends on {other} with {condition!r}, not {wanted!r}")
    return problems


def gateway_problems(doc: Doc) -> list[str]:
    """The gateway: on 0.0.0.0, published on its port, health-checked on the real /healthz and /readyz."""
    gateways = [s for s in govbus_services(doc).values() if command(s)[:1] == ["gateway"]]
    if len(gateways) != 1:
        return [f"{len(gateways)} gateway services, not 1"]
    gateway = gateways[0]
    args = build_parser().parse_args(command(gateway))
    problems = [] if args.host == "0.0.0.0" else [f"the gateway listens on {args.host}, not 0.0.0.0"]
    if not any(str(p).endswith(f":{args.port}") for p in gateway.get("ports") or []):
        problems.append(f"the gateway's port {args.port} is not published")
    check = " ".join(str(part) for part in gateway.get("healthcheck", {}).get("test", []))
    routes = [
        str(getattr(route, "path", "")) for route in health_router(cast(Any, None), cast(Any, None)).routes
    ]
    problems += [
        f"the healthcheck does not call {r}" for r in routes if f":{args.port}" not in check or r not in check
    ]
    return problems


def dockerfile_problems(text: str) -> list[str]:
    """Two stages; the final one non-root, requiring the C accelerator, exposing and running the gateway."""
    stages = dockerfile_stages(text)
    if len(stages) != 2:
        return [f"{len(stages)} FROM stages, not 2"]
    final = stages[-1]
    problems = []
    users = [arguments for keyword, arguments in final if keyword == "USER"]
    user = users[-1].split(":")[0] if users else "root"
    if user in ("root", "0"):
        problems.append(f"the final stage runs as {user}")
    if dockerfile_env(final).get("GOVBUS_REQUIRE_ACCELERATION") != "1":
        problems.append("the final stage does not set GOVBUS_REQUIRE_ACCELERATION=1")
    host, port = gateway_defaults()
    if str(port) not in [a for k, arguments in final if k == "EXPOSE" for a in arguments.split()]:
        problems.append(f"the final stage does not EXPOSE the gateway's port {port}")
    cmd = [arguments for keyword, arguments in final if keyword == "CMD"]
    try:
        args = json.loads(cmd[-1]) if cmd else None
    except ValueError:
        args = None  # the shell form: the gateway would not get its arguments through the ENTRYPOINT
    if not isinstance(args, list) or build_parser().parse_args(args).host != "0.0.0.0":
        problems.append(f"the image's CMD does not run the gateway off its default host {host}")
    return problems


# --- the files as they are ------------------------------------------------------------------------------


def test_three_kafka_nodes_form_one_cluster() -> None:
    """Three combined broker/controller nodes with distinct ids, one cluster id and a quorum of all three."""
    assert cluster_problems(load_compose()) == []


def test_replication_factor_three_and_min_isr_two() -> None:
    """Nodes default topics, offsets and transaction state to 3 replicas, min ISR 2; govbus creates RF 3."""
    assert replication_problems(load_compose()) == []


def test_every_govbus_variable_is_a_setting() -> None:
    """Each GOVBUS_* variable a service sets is read by a field of bus.settings.Settings."""
    assert settings_problems(load_compose()) == []


def test_no_port_is_published_beyond_loopback() -> None:
    """Every published port is bound to 127.0.0.1 (a port without a host address would be on 0.0.0.0)."""
    assert port_problems(load_compose()) == []


def test_no_password_is_written_in_the_compose_file() -> None:
    """Secret variables and URL passwords in compose.yaml are ${...} interpolations, never literal values."""
    assert secret_problems(load_compose()) == []


def test_env_example_lists_every_variable_and_no_secret() -> None:
    """.env.example names every variable compose.yaml interpolates and leaves every secret empty."""
    example = parse_env_file(ENV_EXAMPLE.read_text(encoding="utf-8"))
    used = set(INTERPOLATION.findall(COMPOSE.read_text(encoding="utf-8")))
    assert sorted(used - set(example)) == []
    assert [name for name, value in example.items() if SECRET_NAME.search(name) and value] == []
    assert [p for p in URL_PASSWORD.findall("\n".join(example.values())) if not p.startswith("${")] == []


def test_dependencies_wait_for_health_and_completion() -> None:
    """Each depends_on waits for its dependency's healthcheck, or for a one-shot service to exit 0."""
    assert dependency_problems(load_compose()) == []


def test_gateway_listens_on_all_interfaces_and_is_health_checked() -> None:
    """The gateway runs on 0.0.0.0, its port is published, and its healthcheck calls /healthz and /readyz."""
    assert gateway_problems(load_compose()) == []


def test_every_govbus_service_runs_a_real_command() -> None:
    """Each govbus service's command parses with the govbus CLI and builds the image from the repo root."""
    doc = load_compose()
    for name, service in govbus_services(doc).items():
        assert (COMPOSE_DIR / str(service.get("build")) / "Dockerfile").resolve() == DOCKERFILE, name
        build_parser().parse_args(command(service))
    commands = [command(s) for s in govbus_services(doc).values()]
    for wanted in (
        ["gateway"],
        ["consume"],
        ["outbox", "relay"],
        ["topics", "create"],
        ["schemas", "register"],
    ):
        assert any(c[: len(wanted)] == wanted for c in commands), wanted


def test_read_models_are_in_postgres_16_with_a_volume_and_a_healthcheck() -> None:
    """PostgreSQL 16 keeps its data in a named volume, has a healthcheck and is the read-model URL's host."""
    doc = load_compose()
    postgres = services(doc)["postgres"]
    assert postgres["image"] == "postgres:16-bookworm"
    assert "healthcheck" in postgres
    volume = str(postgres["volumes"][0]).split(":")[0]
    assert volume in (doc.get("volumes") or {})
    for name, service in govbus_services(doc).items():
        assert "@postgres:5432/" in environment(service)["GOVBUS_READMODEL_URL"], name


def test_kafka_nodes_use_the_official_image_and_keep_their_data() -> None:
    """The Kafka nodes run apache/kafka:4.1.1, each with its own named volume at its log dir."""
    doc = load_compose()
    mounts = []
    for name, env in kafka_nodes(doc).items():
        service = services(doc)[name]
        assert service["image"] == KAFKA_IMAGE
        volume, _, target = str(service["volumes"][0]).partition(":")
        assert target == env["KAFKA_LOG_DIRS"]
        assert volume in (doc.get("volumes") or {})
        mounts.append(volume)
    assert len(set(mounts)) == BROKERS


def test_dockerfile_is_two_stages_non_root_and_requires_acceleration() -> None:
    """The Dockerfile has two FROM stages; the final one has a non-root USER, GOVBUS_REQUIRE_ACCELERATION=1,
    EXPOSEs the gateway's port and starts the gateway on 0.0.0.0."""
    assert dockerfile_problems(DOCKERFILE.read_text(encoding="utf-8")) == []


# --- the checks can fail --------------------------------------------------------------------------------


def _env(doc: Doc, service: str) -> dict[str, Any]:
    """A service's environment mapping, to break in place."""
    return cast(dict[str, Any], services(doc)[service]["environment"])


BREAKAGES: dict[str, tuple[Callable[[Doc], list[str]], Callable[[Doc], None]]] = {
    "duplicate node id": (cluster_problems, lambda d: _env(d, "kafka-2").update(KAFKA_NODE_ID=1)),
    "second cluster id": (
        cluster_problems,
        lambda d: _env(d, "kafka-3").update(CLUSTER_ID="AAAAAAAAAAAAAAAAAAAAAA"),
    ),
    "two voters": (
        cluster_problems,
        lambda d: _env(d, "kafka-1").update(KAFKA_CONTROLLER_QUORUM_VOTERS="1@kafka-1:9093,2@kafka-2:9093"),
    ),
    "a fourth node": (
        cluster_problems,
        lambda d: services(d).update({"kafka-4": copy.deepcopy(services(d)["kafka-1"])}),
    ),
    "replication factor 1": (
        replication_problems,
        lambda d: _env(d, "kafka-2").update(KAFKA_DEFAULT_REPLICATION_FACTOR=1),
    ),
    "min ISR 1": (replication_problems, lambda d: _env(d, "kafka-1").update(KAFKA_MIN_INSYNC_REPLICAS=1)),
    "transaction log ISR 1": (
        replication_problems,
        lambda d: _env(d, "kafka-3").update(KAFKA_TRANSACTION_STATE_LOG_MIN_ISR=1),
    ),
    "topics created with RF 1": (
        replication_problems,
        lambda d: _env(d, "topics").update(GOVBUS_TOPIC_REPLICATION=1),
    ),
    "a misspelt setting": (
        settings_problems,
        lambda d: _env(d, "gateway").update(GOVBUS_KAFKA_BOOTSTRAPS="x"),
    ),
    "port on every interface": (port_problems, lambda d: services(d)["gateway"].update(ports=["8080:8080"])),
    "port on 0.0.0.0": (port_problems, lambda d: services(d)["gateway"].update(ports=["0.0.0.0:8080:8080"])),
    "long-form port without host_ip": (
        port_problems,
        lambda d: services(d)["gateway"].update(ports=[{"target": 8080, "published": 8080}]),
    ),
    "literal postgres password": (
        secret_problems,
        lambda d: _env(d, "postgres").update(POSTGRES_PASSWORD="hunter2"),
    ),
    "literal password in a URL": (
        secret_problems,
        lambda d: _env(d, "consumers").update(
            GOVBUS_READMODEL_URL="postgresql://govbus:hunter2@postgres:5432/govbus"
        ),
    ),
    "literal credential": (
        secret_problems,
        lambda d: _env(d, "consumers").update(GOVBUS_CREDENTIALS="gbk_1:s3cret"),
    ),
    "depends_on without condition": (
        dependency_problems,
        lambda d: services(d)["consumers"].update(depends_on=["gateway"]),
    ),
    "started instead of healthy": (
        dependency_problems,
        lambda d: services(d)["gateway"]["depends_on"].update(postgres={"condition": "service_started"}),
    ),
    "gateway on loopback": (gateway_problems, lambda d: services(d)["gateway"].update(command=["gateway"])),
    "healthcheck without readyz": (
        gateway_problems,
        lambda d: services(d)["gateway"]["healthcheck"].update(
            test=["CMD", "curl", "http://127.0.0.1:8080/healthz"]
        ),
    ),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_each_compose_check_finds_its_breakage(breakage: str) -> None:
    """A compose file broken in one way makes the check for that way report a problem."""
    check, breaks = BREAKAGES[breakage]
    doc = copy.deepcopy(load_compose())
    assert check(doc) == []
    breaks(doc)
    assert check(doc) != []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("USER 10001:10001", "USER root"),
        ("USER 10001:10001", "USER 0:0"),
        ("USER 10001:10001\n", ""),
        ("GOVBUS_REQUIRE_ACCELERATION=1", "GOVBUS_REQUIRE_ACCELERATION=0"),
        ("FROM python:3.11-slim-bookworm AS build", "FROM python:3.11-slim-bookworm AS build\nFROM scratch"),
        ("EXPOSE 8080", "EXPOSE 9000"),
        ('CMD ["gateway", "--host", "0.0.0.0"]', 'CMD ["gateway"]'),
    ],
)
def test_the_dockerfile_check_finds_each_breakage(old: str, new: str) -> None:
    """A Dockerfile run as root, without the acceleration flag, with a third stage or the wrong port fails."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert old in text
    assert dockerfile_problems(text.replace(old, new, 1)) != []
