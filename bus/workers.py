"""Pieces of work in processes of their own, forked, so that a machine's cores share them.

Python runs one thread at a time per process: adapters in threads of one process share a single
core. :func:`run_forked` forks one process per piece of work instead, waits for all of them and
returns each one's result. It forks, so it must be called before the calling process starts threads
or opens clients it would hand down (a librdkafka client, a database connection): each child builds
its own.

When a child fails (raises, or dies without a result), the others are stopped (SIGTERM, which the
work is expected to treat as "stop now": the consumer adapters finish their batch and close) and the
failure is raised in the parent as :class:`WorkerError`, naming the piece of work and its error.
SIGINT and SIGTERM sent to the parent are passed on to every child, and a child gets SIGTERM when its
parent dies (SIGKILL included), so a worker never outlives the command that started it.

:func:`balance` splits weighted names into groups of about equal weight (largest first, each into the
lightest group), so that a process is not left with all the heavy work.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection, wait
from types import FrameType
from typing import Any, Generic, TypeVar

from bus.errors import GovbusError

T = TypeVar("T")

PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 30.0
"""How long stopped children may take to finish before they are killed."""


class WorkerError(GovbusError):
    """A piece of work failed in its process."""

    def __init__(self, name: str, message: str, exit_code: int | None = None) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.exit_code = exit_code


def balance(weights: Mapping[str, int], groups: int) -> list[list[str]]:
    """Split the names into at most ``groups`` non-empty groups of about equal total weight.

    Greedy: the heaviest name first, each into the group with the least weight so far (of two as
    light, the one with fewer names). Names keep their given order within a group.
    """
    count = max(1, min(groups, len(weights)))
    totals = [0] * count
    members: list[list[str]] = [[] for _ in range(count)]
    order = {name: index for index, name in enumerate(weights)}
    for name in sorted(weights, key=lambda n: (-max(weights[n], 0), order[n])):
        lightest = min(range(count), key=lambda i: (totals[i], len(members[i])))
        totals[lightest] += max(weights[name], 0)
        members[lightest].append(name)
    return [sorted(group, key=order.__getitem__) for group in members if group]


def run_forked(work: Mapping[str, Callable[[], T]]) -> dict[str, T]:
    """Run each piece of work in a forked process; return the results by name (they must pickle)."""
    return Forked(work).results()


class Forked(Generic[T]):
    """Pieces of work running in forked processes, started on construction; :meth:`results` waits for them.

    Meanwhile the caller may do its own work, call :meth:`check` to raise a failure early, and
    :meth:`stop` the children (SIGTERM) to have them finish.
    """

    def __init__(self, work: Mapping[str, Callable[[], T]]) -> None:
        context = multiprocessing.get_context("fork")
        self._children: dict[str, tuple[Any, Connection]] = {}
        self._previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
        self._stopping = False
        try:
            for name, job in work.items():
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(target=_child, args=(job, sender, os.getpid()), name=name)
                process.start()
                sender.close()
                self._children[name] = (process, receiver)
        except BaseException:
            _stop(self._children)
            raise
        for signum in self._previous:
            signal.signal(signum, self._forward)

    def _forward(self, signum: int, _: FrameType | None) -> None:
        self._stopping = True
        self._signal(signum)

    def _signal(self, signum: int) -> None:
        for process, _connection in self._children.values():
            if process.pid is not None and process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def stop(self) -> None:
        """Ask every child still running to finish (SIGTERM); :meth:`results` then collects them.

        A job that should finish gracefully installs its SIGTERM handler first thing; a SIGTERM that
        comes before ends its process at once, without a result.
        """
        self._signal(signal.SIGTERM)

    def check(self) -> None:
        """Raise the failure of a child that already ended on one (its error, or no result at all)."""
        for name, (process, connection) in self._children.items():
            if process.is_alive() or process.exitcode == 0:
                continue
            message = "its process ended without a result"
            if connection.poll():
                with contextlib.suppress(EOFError, OSError):
                    _kind, message = connection.recv()
            self._finish()
            raise WorkerError(name, str(message), process.exitcode)

    def close(self) -> None:
        """Stop the children still running and reap them (SIGTERM, SIGKILL after the grace period)."""
        self._finish()

    def results(self) -> dict[str, T]:
        """Wait for every child; return the results by name, or raise the first failure."""
        try:
            return _collect(self._children, lambda: self._stopping)
        finally:
            self._finish()

    def _finish(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        _stop(self._children)


def _child(job: Callable[[], Any], sender: Connection, parent: int) -> None:
    """In the child: run the job and send back ("ok", result) or ("error", message)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    _stop_with_parent(parent)
    # What the parent made is frozen as it is: a collection here would walk (and so copy, page by
    # page) the whole inherited heap: about 0.2 s after a benchmark's publishing.
    freeze_heap(collect=False)
    try:
        result = job()
    except BaseException as exc:  # everything goes back to the parent, which decides
        sender.send(("error", _describe(exc)))
        sender.close()
        os._exit(1)  # no atexit handlers or buffered output of the parent's copy run twice
    sender.send(("ok", result))
    sender.close()
    os._exit(0)


GC_THRESHOLDS = (50_000, 20, 100)
"""Collection thresholds of a consumer process (Python's default: 700, 10, 10).

A batch allocates tens of thousands of containers (decoded events, rows, statement parameters) that
reference counting frees; with the default, the collector ran every 700 of them and, with the rows kept
between batches, took about a quarter of a projection thread's time. The cycles a consumer makes are
few and small (exceptions, callbacks): collecting the youngest generation every 50,000 allocations
still finds them. Measured with ``govbus bench consume`` (100,000 events): SQLite 17,100 and 18,800
events/s with the default, 22,000 twice with these. The gateway process uses them too (``govbus
gateway``): a 100-event publish request holds a few thousand containers until its commit, and with
the default the collector kept walking the requests in flight (an in-process run of the publish API went
from 187 to 298 requests/s)."""


def freeze_heap(*, collect: bool = True) -> None:
    """Keep what this process has built so far (modules, the catalog, clients) out of garbage collection.

    A full collection walks every container object; in a consumer process that is mostly what the
    imports made, and it paused a batch for 50 to 150 ms now and then (the end-to-end p99 at 5,000
    events/s went from about 120 ms to about 30 ms without those pauses). Objects made later are
    collected less often than Python's default (:data:`GC_THRESHOLDS`). ``collect=False`` freezes
    without collecting first (garbage among what exists stays, frozen).
    """
    if collect:
        gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _stop_with_parent(parent: int) -> None:
    """Have this child receive SIGTERM when its parent dies, even by SIGKILL, so no worker outlives it.

    Linux delivers it (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread notices the new parent.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0:
            if os.getppid() != parent:  # the parent died before the request took effect
                os.kill(os.getpid(), signal.SIGTERM)
            return
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, GovbusError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}"


def _collect(children: dict[str, tuple[Any, Connection]], stopping: Callable[[], bool]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    pending = {connection: name for name, (_, connection) in children.items()}
    while pending:
        for ready in wait(list(pending)):
            connection = ready if isinstance(ready, Connection) else None
            if connection is None:
                continue
            name = pending.pop(connection)
            process = children[name][0]
            try:
                kind, payload = connection.recv()
            except (EOFError, OSError):
                process.join()
                if stopping():
                    raise KeyboardInterrupt from None
                raise WorkerError(name, "its process ended without a result", process.exitcode) from None
            process.join()
            if kind == "error":
                if stopping() and payload == "interrupted":
                    raise KeyboardInterrupt
                raise WorkerError(name, str(payload), process.exitcode)
            results[name] = payload
    return results


def _stop(children: dict[str, tuple[Any, Connection]]) -> None:
    """Stop the children still running (SIGTERM, then SIGKILL after the grace period)."""
    running = [process for process, _ in children.values() if process.is_alive()]
    for process in running:
        process.terminate()
    for process in running:
        process.join(STOP_GRACE_S)
        if process.is_alive():
            process.kill()
            process.join()
    for _, connection in children.values():
        connection.close()
