"""Serving the gateway app in a background thread on a real socket (benchmarks and tests embed it)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from bus.errors import GovbusError

GRACEFUL_SHUTDOWN_S = 5
"""How long a stopping gateway lets open requests finish: a change feed streams until cancelled."""

START_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tcp_socket(family: socket.AddressFamily) -> socket.socket:
    """A TCP listening socket that asyncio will serve with Nagle's algorithm off.

    asyncio sets TCP_NODELAY on accepted connections only when the listening socket says its protocol is
    TCP; ``socket.socket()`` leaves the protocol 0, and then each small answer waits for the client's
    delayed ACK (about 40 ms a request on Linux loopback).
    """
    return socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)


@contextmanager
def serve_in_thread(app: Any, port: int | None = None) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1; yield its base URL; stop it (and its lifespan) afterwards.

    The socket is bound here, before the server starts, so no other process can take a port picked
    for it in between (picking a free port and binding it later races on a busy machine).
    """
    sock = tcp_socket(socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port or 0))
    except OSError as exc:
        sock.close()
        raise GovbusError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from exc
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="gateway", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise GovbusError(f"the gateway did not start on 127.0.0.1:{port}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
