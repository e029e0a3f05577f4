"""The pure parts of `govbus up|down|status`: which process is ours, the gateway port, the status table."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus.errors import ConfigurationError
from bus.settings import Settings
from govbus.cli.stack import exit_code, render_table
from govbus.stack import PartStatus, gateway_port, is_stack_process

HOME = Path("/srv/govbus/.govbus")
GATEWAY = ["/venv/bin/python", "-m", "govbus", "gateway", "--host", "127.0.0.1", "--port", "8080"]


def _part(name: str, *, running: bool, answering: bool, external: bool = False) -> PartStatus:
    return PartStatus(name, running, answering, 42 if running else None, None, None, external=external)


def test_a_gateway_started_by_up_for_this_home_is_ours() -> None:
    """A ``python -m govbus gateway`` process whose GOVBUS_HOME is this home is the one up started."""
    assert is_stack_process(GATEWAY, {"GOVBUS_HOME": str(HOME)}, "gateway", HOME)


def test_the_same_command_for_another_home_is_not_ours() -> None:
    """The gateway of another GOVBUS_HOME (or of none) is never taken for this home's one."""
    assert not is_stack_process(GATEWAY, {"GOVBUS_HOME": "/elsewhere/.govbus"}, "gateway", HOME)
    assert not is_stack_process(GATEWAY, {}, "gateway", HOME)


def test_a_reused_pid_running_another_program_is_not_ours() -> None:
    """A pid now held by another program, or by another govbus command, does not match."""
    environ = {"GOVBUS_HOME": str(HOME)}
    assert not is_stack_process(["/usr/bin/vim", "notes.txt"], environ, "gateway", HOME)
    assert not is_stack_process(GATEWAY, environ, "consume", HOME)
    assert not is_stack_process([], environ, "gateway", HOME)


def test_the_gateway_port_comes_from_the_registry_url() -> None:
    """``up`` serves the gateway on the port of GOVBUS_REGISTRY_URL."""
    assert gateway_port(Settings(registry_url="http://127.0.0.1:18080/registry")) == 18080
    assert gateway_port(Settings(registry_url="http://localhost:8081/registry")) == 8081


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5:8080/registry", "http://127.0.0.1/registry", "https://127.0.0.1:8443/registry"]
)
def test_a_registry_url_up_cannot_serve_is_refused(url: str) -> None:
    """A registry URL on another host, without a port, or over https names itself in the error."""
    with pytest.raises(ConfigurationError, match="GOVBUS_REGISTRY_URL"):
        gateway_port(Settings(registry_url=url))


def test_status_is_0_only_when_every_part_answers() -> None:
    """Every part answering is exit 0, an external broker counting as answering."""
    parts = [
        _part("broker", running=False, answering=True, external=True),
        _part("gateway", running=True, answering=True),
        _part("consumers", running=True, answering=True),
    ]
    assert exit_code(parts) == 0


def test_status_is_3_when_no_part_of_the_stack_runs() -> None:
    """Nothing of this home running is exit 3, even when an external broker answers."""
    parts = [
        _part("broker", running=False, answering=True, external=True),
        _part("gateway", running=False, answering=False),
        _part("consumers", running=False, answering=False),
    ]
    assert exit_code(parts) == 3


def test_status_is_1_when_some_part_runs_but_not_all_answer() -> None:
    """A running part that does not answer, or a part missing beside running ones, is exit 1."""
    silent = [
        _part("gateway", running=True, answering=False),
        _part("consumers", running=True, answering=True),
    ]
    missing = [
        _part("gateway", running=True, answering=True),
        _part("consumers", running=False, answering=False),
    ]
    assert exit_code(silent) == 1
    assert exit_code(missing) == 1


def test_the_table_has_one_aligned_row_per_part() -> None:
    """The status table lists each part with running, answering, pid, port and log, columns aligned."""
    parts = [
        PartStatus("broker", False, True, None, 9092, None, external=True),
        PartStatus("gateway", True, False, 1234, 8080, Path("/abs/logs/gateway.log")),
    ]
    lines = render_table(parts).splitlines()
    assert lines[0].split() == ["part", "running", "answering", "pid", "port", "log"]
    assert lines[1].split() == ["broker", "external", "yes", "-", "9092", "-"]
    assert lines[2].split() == ["gateway", "yes", "no", "1234", "8080", "/abs/logs/gateway.log"]
    assert len({line.index(line.split()[1]) for line in lines}) == 1
