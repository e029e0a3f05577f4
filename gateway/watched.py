"""A configuration file a running gateway re-reads when it changes, without a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from bus.errors import ConfigurationError

T = TypeVar("T")
RELOAD_CHECK_S = 1.0


class WatchedFile(Generic[T]):
    """The parsed content of a file, parsed again when its modification time or size changed.

    The file is looked at most once every ``check_s`` seconds. A file that is absent gives ``missing``.
    A file broken at start raises ConfigurationError; a file broken while the gateway runs keeps the last
    good content in force (an operator's half-written edit must not open or close every door at once).
    """

    def __init__(
        self, path: Path, parse: Callable[[bytes, Path], T], missing: T, check_s: float = RELOAD_CHECK_S
    ) -> None:
        self.path = path
        self._parse = parse
        self._missing = missing
        self._check_s = check_s
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._content = missing
        self._refresh(force=True)

    def current(self) -> T:
        """The content in force now (re-read first when the file changed)."""
        self._refresh()
        return self._content

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self._check_s:
            return
        with self._lock:
            self._checked = now
            try:
                status = self.path.stat()
                stamp: tuple[int, int] | None = (status.st_mtime_ns, status.st_size)
            except FileNotFoundError:
                stamp = None
            if stamp == self._stamp and not force:
                return
            try:
                content = self._missing if stamp is None else self._parse(self.path.read_bytes(), self.path)
            except ConfigurationError:
                if force:
                    raise
                return
            except OSError as exc:
                if force:
                    raise ConfigurationError(f"cannot read {self.path}: {exc.strerror}") from exc
                return
            self._stamp = stamp
            self._content = content
