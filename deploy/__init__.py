"""Deployment files that govbus needs at run time, shipped as package data (no logic lives here).

``deploy/kafka/`` holds the local broker's Maven pom (the pinned jars), its KRaft ``server.properties``
template and its log4j2 configuration; :data:`KAFKA_DIR` is where an installed govbus finds them, in a
checkout or in a wheel alike.
"""

from importlib.resources import files
from pathlib import Path

KAFKA_DIR = Path(str(files(__name__) / "kafka"))
"""The folder holding ``pom.xml``, ``server.properties`` and ``log4j2.properties``."""
