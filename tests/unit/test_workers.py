"""Work spread over forked processes (bus.workers): balancing, results, failures, stopping."""

from __future__ import annotations

import functools
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bus.errors import ConfigurationError
from bus.workers import GC_THRESHOLDS, Forked, WorkerError, balance, freeze_heap, run_forked


def test_balance_puts_the_heaviest_apart_and_keeps_the_given_order() -> None:
    """The heaviest name gets a group of its own when the rest weigh less; order within groups is kept."""
    weights = {"residents": 13, "households": 1, "benefits": 73, "budget": 5, "vehicles": 4}
    assert balance(weights, 2) == [["benefits"], ["residents", "households", "budget", "vehicles"]]
    assert balance(weights, 1) == [list(weights)]


def test_balance_spreads_equal_weights_by_count_and_never_makes_empty_groups() -> None:
    """With no backlog the names are spread evenly; more groups than names gives one name per group."""
    assert balance({"a": 0, "b": 0, "c": 0, "d": 0}, 2) == [["a", "c"], ["b", "d"]]
    assert balance({"a": 0, "b": 5}, 8) == [["b"], ["a"]]
    assert balance({}, 3) == []


def test_run_forked_returns_each_result_from_a_process_of_its_own() -> None:
    """Each piece of work runs in another process than the caller's, and its result comes back by name."""
    results = run_forked({"one": lambda: (os.getpid(), 1), "two": lambda: (os.getpid(), 2)})
    assert {name: value for name, (_, value) in results.items()} == {"one": 1, "two": 2}
    pids = {pid for pid, _ in results.values()}
    assert len(pids) == 2
    assert os.getpid() not in pids


def test_a_failing_child_stops_the_others_and_raises_its_error(tmp_path: Path) -> None:
    """The first failure is raised naming its work; a sibling still running is stopped, not waited for."""
    marker = tmp_path / "finished"

    def slow() -> None:
        time.sleep(30)
        marker.write_text("finished")

    def failing() -> None:
        raise ConfigurationError("the store is gone")

    started = time.monotonic()
    with pytest.raises(WorkerError, match=r"^failing: the store is gone$"):
        run_forked({"slow": slow, "failing": failing})
    assert time.monotonic() - started < 20
    assert not marker.exists()


def test_a_child_that_dies_without_a_result_is_an_error() -> None:
    """A process that ends without sending a result (killed, os._exit) fails the run with its exit code."""
    with pytest.raises(WorkerError, match="ended without a result") as caught:
        run_forked({"dies": lambda: os._exit(3)})
    assert caught.value.exit_code == 3


def test_an_unexpected_exception_names_its_type() -> None:
    """A bug in a child (not a govbus error) is reported with its exception type and message."""
    with pytest.raises(WorkerError, match=r"^bug: KeyError: 'resident_id'$"):
        run_forked({"bug": lambda: {}["resident_id"]})


def test_children_stop_when_the_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL of the process that forked the workers makes them stop too: none outlives it."""
    pids = tmp_path / "pids"
    script = (
        "import os, time\n"
        "from bus.workers import run_forked\n"
        "def job():\n"
        f"    with open({str(pids)!r}, 'a') as f: f.write(f'{{os.getpid()}}\\n')\n"
        "    time.sleep(60)\n"
        "run_forked({'a': job, 'b': job})\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not pids.exists() or len(pids.read_text().split()) < 2):
        time.sleep(0.05)
    children = [int(pid) for pid in pids.read_text().split()]
    assert len(children) == 2
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in children)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (dead, not yet reaped by init) counts as stopped
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _until_terminated(ready: Path | None = None) -> str:
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    if ready is not None:
        ready.touch()
    stopped.wait(30)
    return "finished" if stopped.is_set() else "timed out"


def test_forked_work_runs_beside_the_caller_and_finishes_when_stopped(tmp_path: Path) -> None:
    """Forked starts children at once; stop() asks them to finish; results() returns what they return."""
    ready = [tmp_path / "one", tmp_path / "two"]
    forked = Forked({path.name: functools.partial(_until_terminated, path) for path in ready})
    deadline = time.monotonic() + 10
    while not all(path.exists() for path in ready) and time.monotonic() < deadline:
        forked.check()  # both still running: nothing to raise
        time.sleep(0.01)
    forked.stop()
    assert forked.results() == {"one": "finished", "two": "finished"}


def test_check_raises_a_failure_while_the_others_run() -> None:
    """check() raises the error of a child that already failed and stops the one still running."""
    forked = Forked({"waits": _until_terminated, "fails": lambda: {}["x"]})
    deadline = time.monotonic() + 10
    with pytest.raises(WorkerError, match=r"^fails: KeyError: 'x'$"):  # noqa: PT012 - polls until it raises
        while time.monotonic() < deadline:
            forked.check()
            time.sleep(0.02)


def test_freeze_heap_freezes_what_exists_and_collects_less_often_in_a_worker() -> None:
    """In a forked worker, freeze_heap takes what exists out of collection and raises the thresholds."""

    def measure() -> tuple[int, tuple[int, int, int]]:
        freeze_heap()
        return gc.get_freeze_count(), gc.get_threshold()

    frozen, thresholds = run_forked({"probe": measure})["probe"]
    assert frozen > 1000
    assert thresholds == GC_THRESHOLDS
    assert thresholds[0] > 700
