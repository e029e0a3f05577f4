"""The local broker's pure helpers: the storage-format arguments and which bootstrap is local."""

from __future__ import annotations

from pathlib import Path

import pytest

from govbus.local_kafka import local_port, new_cluster_id, storage_format_args

CONFIG = Path("/home/.govbus/kafka/config/server.properties")


def test_a_cluster_id_beginning_with_a_dash_stays_the_value_of_its_option() -> None:
    """An id such as ``-Xy...`` is passed as ``--cluster-id=-Xy...``, never as an argument of its own."""
    args = storage_format_args("-AbCdEfGhIjKlMnOpQrStUw", CONFIG)
    assert "--cluster-id=-AbCdEfGhIjKlMnOpQrStUw" in args
    assert "-AbCdEfGhIjKlMnOpQrStUw" not in args
    assert not any(arg in ("-t", "--cluster-id", "-c", "--config") for arg in args)
    assert args[:3] == ["kafka.tools.StorageTool", "format", "--standalone"]
    assert f"--config={CONFIG}" in args


def test_generated_cluster_ids_are_22_url_safe_characters() -> None:
    """A generated cluster id is 16 random bytes in unpadded url-safe base64, different every time."""
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert all(len(cluster_id) == 22 and set(cluster_id) <= alphabet for cluster_id in ids)


@pytest.mark.parametrize(
    ("bootstrap", "port"),
    [
        ("127.0.0.1:9092", 9092),
        ("localhost:19092", 19092),
        ("127.0.0.1:9092,127.0.0.1:9094", 9092),
        ("kafka.internal:9092", None),
        ("10.0.0.7:9092", None),
        ("127.0.0.1", None),
        ("127.0.0.1:notaport", None),
    ],
)
def test_only_a_first_address_on_this_machine_with_a_port_is_local(bootstrap: str, port: int | None) -> None:
    """``local_port`` gives the port of a 127.0.0.1/localhost first address, None for anything else."""
    assert local_port(bootstrap) == port
