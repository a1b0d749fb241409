"""The ledger's layers import only downward, and the contract imports neither half.

Layers, lowest first: the error types; the pure domain; the store; settings; the use cases
(services; backlog_worker, the process running one for backlogs); the HTTP API; the web pages
(which use the API's sessions and helpers); the assembly (app, server, command line). A module
may import its own layer and those below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LEDGER = ROOT / "addon" / "src" / "prepaid_ledger"
CONTRACT = ROOT / "contract" / "src" / "prepaid_meter_contract"
LAYERS = [
    {"__init__", "errors"},
    {"domain"},
    {"store"},
    {"config", "migrations"},
    {"services", "backlog_worker"},
    {"api"},
    {"web"},
    {"app", "server", "cli", "__main__"},
]


def _rank(part: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if part in layer)


def _imports(path: Path) -> set[str]:
    """Return every absolute module name a file imports (also inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _layer_of(module: str) -> str:
    """``prepaid_ledger.api.auth`` -> ``api``; ``prepaid_ledger`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


LEDGER_FILES = sorted(LEDGER.rglob("*.py"))


@pytest.mark.parametrize("path", LEDGER_FILES, ids=lambda p: str(p.relative_to(LEDGER)))
def test_ledger_imports_run_downward(path: Path) -> None:
    own = _rank(path.relative_to(LEDGER).parts[0].removesuffix(".py"))
    upward = sorted(
        module
        for module in _imports(path)
        if module.split(".")[0] == "prepaid_ledger" and _rank(_layer_of(module)) > own
    )
    assert not upward, f"{path.relative_to(LEDGER)} imports a higher layer: {upward}"


def test_every_ledger_module_has_a_layer() -> None:
    tops = {path.relative_to(LEDGER).parts[0].removesuffix(".py") for path in LEDGER_FILES}
    assert tops <= set().union(*LAYERS), tops - set().union(*LAYERS)


@pytest.mark.parametrize("path", sorted(CONTRACT.rglob("*.py")), ids=lambda p: p.name)
def test_contract_imports_neither_half(path: Path) -> None:
    roots = {module.split(".")[0] for module in _imports(path)}
    assert not roots & {"prepaid_ledger", "custom_components", "homeassistant"}


def test_the_rule_sees_an_upward_import(tmp_path: Path) -> None:
    """A domain module importing a service is caught (the check can fail)."""
    sample = tmp_path / "sample.py"
    sample.write_text("from prepaid_ledger.services import readings\n", encoding="utf-8")
    assert _rank(_layer_of("prepaid_ledger.services.readings")) > _rank("domain")
    assert "prepaid_ledger.services" in _imports(sample)


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "custom_components" / "prepaid_meter").rglob("*.py")),
    ids=lambda p: p.name,
)
def test_integration_speaks_to_the_ledger_only_through_the_contract(path: Path) -> None:
    roots = {module.split(".")[0] for module in _imports(path)}
    assert "prepaid_ledger" not in roots
