"""The floors of the architecture: each package imports only the packages below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What each package may import besides itself (the floors below it).
ALLOWED: dict[str, frozenset[str]] = {
    "bus": frozenset(),
    "deploy": frozenset(),
    "schemas": frozenset({"bus"}),
    "producers": frozenset({"bus", "schemas"}),
    "consumers": frozenset({"bus", "schemas"}),
    "gateway": frozenset({"bus", "schemas", "producers", "consumers"}),
    "bench": frozenset({"bus", "schemas", "producers", "consumers", "gateway"}),
    "govbus": frozenset({"bus", "deploy", "schemas", "producers", "consumers", "gateway", "bench"}),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def _violations(package: str, root: Path = ROOT) -> list[str]:
    allowed = ALLOWED[package] | {package}
    bad = []
    for path in sorted((root / package).rglob("*.py")):
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in ALLOWED and top not in allowed:
                bad.append(f"{path.relative_to(root)}:{line} imports {module}")
    return bad


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_floors_below_it(package: str) -> None:
    """No module of the package imports a package beside or above it."""
    assert _violations(package) == []


def test_the_floor_table_has_no_cycle() -> None:
    """The allowed imports form a strict order, so packages can never import each other in a circle."""
    order: list[str] = []
    remaining = dict(ALLOWED)
    while remaining:
        ready = [name for name, below in remaining.items() if below <= set(order)]
        assert ready, f"cycle among {sorted(remaining)}"
        order.extend(sorted(ready))
        for name in ready:
            del remaining[name]


def test_the_contract_does_not_import_the_registry_server() -> None:
    """Producers, consumers and the contract modules use the registry client, never the registry server."""
    bad = []
    for package in ("producers", "consumers", "schemas"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.is_relative_to(ROOT / "schemas" / "registry"):
                continue
            bad += [
                f"{path.relative_to(ROOT)}:{line}"
                for line, module in _imports(path)
                if module == "schemas.registry" or module.startswith("schemas.registry.")
            ]
    assert bad == []


def test_the_checker_sees_an_import_that_breaks_a_floor(tmp_path: Path) -> None:
    """A module that imports a package above its own is reported (the check itself can fail)."""
    (tmp_path / "consumers").mkdir()
    module = tmp_path / "consumers" / "example.py"
    module.write_text("from gateway.app import create_app\nimport bus.settings\n", encoding="utf-8")
    assert _violations("consumers", tmp_path) == ["consumers/example.py:1 imports gateway.app"]
