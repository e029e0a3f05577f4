"""``govbus kafka up|down|status|fetch``: the local broker (see govbus/local_kafka.py)."""

from __future__ import annotations

import argparse
from typing import Any

from bus.errors import ConfigurationError
from bus.progress import say
from bus.settings import Settings
from govbus.local_kafka import LocalKafka, local_port


def register(commands: Any) -> None:
    """Add the ``kafka`` command group."""
    parser = commands.add_parser("kafka", help="run a local Kafka broker (no Docker needed)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, handler, text in (
        ("up", up, "fetch the jars if needed, start the broker, wait until it serves"),
        ("down", down, "stop the broker this folder started"),
        ("status", status, "say whether the broker runs and serves"),
        ("fetch", fetch, "fetch the pinned Kafka jars from Maven Central (once)"),
    ):
        actions.add_parser(name, help=text).set_defaults(handler=handler)


def local_broker(settings: Settings) -> LocalKafka:
    """The local broker that ``GOVBUS_KAFKA_BOOTSTRAP`` points at (it must be on 127.0.0.1/localhost)."""
    port = local_port(settings.kafka_bootstrap)
    if port is None:
        raise ConfigurationError(
            f"GOVBUS_KAFKA_BOOTSTRAP={settings.kafka_bootstrap!r} is not a local 127.0.0.1:PORT address; "
            "`govbus kafka` only manages the local broker"
        )
    return LocalKafka(settings.kafka_home, port=port)


def up(_: argparse.Namespace, settings: Settings) -> int:
    """Start the broker."""
    local_broker(settings).up(progress=say)
    return 0


def down(_: argparse.Namespace, settings: Settings) -> int:
    """Stop the broker."""
    local_broker(settings).down(progress=say)
    return 0


def fetch(_: argparse.Namespace, settings: Settings) -> int:
    """Fetch the jars without starting anything."""
    local_broker(settings).fetch_jars(progress=say)
    return 0


def status(_: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 when the broker serves, 3 when it is not running, 1 when it runs but does not answer.

    A broker of this home running on other ports than ``GOVBUS_KAFKA_BOOTSTRAP`` names is not taken for
    the asked-for one: that is exit 1 with both addresses.
    """
    broker = local_broker(settings)
    state = broker.status()
    if state.other_port is not None:
        print(
            f"Kafka of {broker.home} runs on 127.0.0.1:{state.other_port} (pid {state.pid}), "
            f"not on {state.bootstrap}"
        )
        return 1
    if not state.running:
        print(f"Kafka is not running (expected on {state.bootstrap})")
        return 3
    print(f"Kafka pid {state.pid} on {state.bootstrap}: {'serving' if state.serving else 'NOT answering'}")
    return 0 if state.serving else 1
