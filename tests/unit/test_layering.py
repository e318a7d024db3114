"""The layering of docs/architecture.md, checked by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"

LAYERS = {
    "errors": 0,
    "config": 1, "functions": 1, "logs": 1, "durable.history": 1, "durable.names": 1,
    "durable.tablerows": 1, "durable.faults": 1, "http.routes": 1,
    "http.route_constraints": 1, "http.auth": 1,
    "worker.protocol": 1,
    "durable.engine": 2, "durable.storage": 2, "durable.taskhub": 2, "durable.tablebatch": 2,
    "durable.leanqueue": 2,
    "durable.leases": 3, "durable.inflight": 3, "worker.pool": 3, "worker.loader": 3,
    "worker.invocation": 3,
    "worker.main": 3, "worker.sdk_speedups": 3, "worker.sessions": 3,
    "worker.orchestrations": 3, "azurite": 3, "watch": 3,
    "durable.client": 4,
    "durable.dispatcher": 5, "http.server": 5, "http.durable_api": 5,
    "host": 6, "reload": 6,
    "cli": 7, "__main__": 7,
}
PURE = {"config", "functions", "durable.history", "durable.names", "durable.tablerows",
        "durable.engine", "http.routes", "http.route_constraints", "http.auth"}
IMPURE_PREFIXES = ("asyncio", "aiohttp", "azure")


def module_name(path: Path) -> str:
    relative = path.relative_to(RUNTIME).with_suffix("")
    return ".".join(relative.parts)


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = sorted(p for p in RUNTIME.rglob("*.py") if p.name != "__init__.py")


def test_every_module_has_a_layer() -> None:
    assert sorted(set(map(module_name, MODULES)) - set(LAYERS)) == []


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_imports_respect_layers(path: Path) -> None:
    name = module_name(path)
    layer = LAYERS[name]
    for imported in imports_of(path):
        if not imported.startswith("runtime."):
            continue
        target = imported.removeprefix("runtime.")
        if target not in LAYERS:
            continue  # `from runtime import logs` appears as runtime.logs too
        assert LAYERS[target] <= layer, f"{name} (layer {layer}) imports {target}"
        if name.startswith("durable."):
            assert not target.startswith("http."), f"{name} imports {target}"


@pytest.mark.parametrize("path", [p for p in MODULES if module_name(p) in PURE],
                         ids=module_name)
def test_pure_modules_do_no_io(path: Path) -> None:
    for imported in imports_of(path):
        assert not imported.startswith(IMPURE_PREFIXES), f"{module_name(path)} imports {imported}"
