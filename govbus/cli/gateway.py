"""``govbus gateway``: serve the registry, read-model and health APIs over HTTP."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import socket
from typing import Any

import structlog
import uvicorn

from bus.errors import ConfigurationError
from bus.settings import Settings
from bus.workers import freeze_heap
from gateway.identities import FILE_NAME
from gateway.server import GRACEFUL_SHUTDOWN_S, tcp_socket
from govbus.bootstrap import build_gateway
from govbus.cli.preflight import require_kafka
from govbus.dev_identities import ensure_dev_identities

log = structlog.get_logger(__name__)


def register(commands: Any) -> None:
    """Add the ``gateway`` command."""
    parser = commands.add_parser("gateway", help="serve the HTTP gateway (registry, read models)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until interrupted; exit 1 at once when the port is taken or Kafka (the registry) is down."""
    listener = listen_socket(args.host, args.port)
    try:
        require_kafka(settings, why="the gateway keeps its schema registry there")
        app = build_gateway(settings)
        require_identities(settings, args.host)
        freeze_heap()  # the gateway's own objects out of collection, young objects collected less often
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        listener.close()
    return 0


def require_identities(settings: Settings, host: str) -> None:
    """Make sure someone can call the gateway: development identities on loopback when ``GOVBUS_HOME``
    has no identities file yet; elsewhere an identities file is required (ConfigurationError)."""
    path = settings.home / FILE_NAME
    if path.exists():
        return
    if not _loopback(host):
        raise ConfigurationError(
            f"no identities file at {path}: a gateway listening on {host} needs one; "
            "create identities with `govbus org add NAME --role ROLE`"
        )
    organisations = ensure_dev_identities(settings)
    log.info("gateway.dev_identities", organisations=len(organisations), file=str(path))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for the server to listen on; ConfigurationError when the port is taken.

    The gateway binds before it does anything slow and hands this very socket to uvicorn, so nothing can
    take the port in between, and a busy port is one sentence instead of uvicorn's startup failure.
    """
    # The same options uvicorn binds with: SO_REUSEADDR lets a restart reuse a port still in TIME_WAIT.
    sock = tcp_socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"port {port} on {host} is in use; stop what holds it or pass --port"
            ) from exc
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock
