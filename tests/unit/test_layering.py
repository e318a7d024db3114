"""The layering of docs/architecture.md, checked by walking every module's imports: each
module imports only from its own layer or below, pure modules do no I/O, the storage
layer knows nothing of the durable runtime, worker code stays out of the host, and no
two modules import each other, directly or in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"

LAYERS = {
    # 0: no runtime imports (empty package markers included)
    "errors": 0, "clock": 0, "durable": 0, "http": 0, "worker": 0,
    # 1: values and parsing
    "config": 1, "config_source": 1, "app_settings": 1, "options": 1, "functions": 1, "console": 1,
    "durable.history": 1, "durable.names": 1, "durable.tablerows": 1, "durable.urls": 1,
    "http.route_constraints": 1, "http.route_template": 1, "http.routes": 1, "http.auth": 1,
    "http.durable_query": 1,
    "worker.protocol": 1, "storage.connection": 1, "storage.faults": 1,
    # 2: the pure engine; storage clients and requests
    "durable.engine": 2, "durable.engine.model": 2, "durable.engine.planning": 2,
    "durable.engine.context": 2, "durable.engine.wording": 2, "durable.engine.activity": 2,
    "durable.engine.actions": 2, "durable.engine.determinism": 2,
    "durable.engine.replay": 2, "durable.engine.outcomes": 2, "durable.engine.specs": 2,
    "durable.engine.suspension": 2, "durable.engine.rewind": 2,
    "durable.engine.versioning": 2, "durable.engine.entities": 2, "durable.diagnosis": 2,
    "storage": 2, "storage.leanqueue": 2, "storage.tablebatch": 2, "storage.retries": 2,
    "storage.stats": 2, "storage.queueops": 2, "storage.clients": 2, "storage.azurite": 2,
    "storage.azurite_install": 2, "storage.app_azurite": 2,
    # 3: the task hub, leases, in-flight state; worker processes; watching; HTTP pieces
    "durable.taskhub": 3, "durable.taskhub.interface": 3, "durable.taskhub.operations": 3,
    "durable.taskhub.envelope": 3, "durable.taskhub.blobs": 3, "durable.taskhub.queues": 3,
    "durable.taskhub.history_table": 3, "durable.taskhub.instances_table": 3,
    "durable.taskhub.azure": 3, "durable.taskhub.memory": 3,
    "durable.leases": 3, "durable.lease_identity": 3, "durable.hub_owners": 3,
    "durable.poison": 4,
    "durable.inflight": 3, "durable.app": 3,
    "durable.http_activity": 3,
    "worker.pool": 3, "worker.process": 3, "worker.child": 3, "worker.child.loader": 3,
    "worker.child.invocation": 3, "worker.child.main": 3, "worker.child.sdk_speedups": 3,
    "worker.child.sessions": 3, "worker.child.orchestrations": 3,
    "worker.child.http_response": 3, "worker.child.tracebacks": 3,
    "worker.child.debugging": 3, "worker.child.logs": 3, "worker.child.replay_check": 3,
    "worker.interpreter": 3, "worker.debug_proxy": 3,
    "worker.child.fresh": 3,
    "watch": 3, "http.errors": 3, "http.builtin": 3, "http.conversion": 3,
    # 4: the workers' parts; the client; bindings
    "durable.activities": 4, "durable.checkpoint": 4, "durable.client": 4, "bindings": 4,
    "durable.entities": 4, "durable.replaycheck": 4, "durable.inspection": 4,
    # 5: the durable loops and services; HTTP endpoints
    "durable.orchestrations": 5, "durable.dispatcher": 5, "durable.services": 5,
    "http.durable_api": 5, "http.durable_entities": 5, "http.admin": 5, "http.triggers": 5,
    # 6-9: the server, the durable runtime as served, versions, the host, the CLI
    "http.server": 6, "durable_host": 6,
    "versions": 7,
    "reload": 8, "host": 8, "reload_check": 8,
    # the test harness: another composition root, beside the host
    "testing": 8, "testing.loop": 8, "testing.observed": 8, "testing.stubs": 8,
    "testing.history": 8, "testing.sdk": 8, "testing.shared": 8, "testing.hosting": 8,
    "testing.control": 8, "testing.http": 8, "testing.capture": 8,
    "testing.environment": 8, "testing.plugin": 8,
    "cli": 9, "cli.common": 9, "cli.start": 9, "cli.functions": 9, "cli.azurite": 9,
    "__main__": 9, "cli.hubaccess": 9, "cli.render": 9, "cli.instances": 9,
    "cli.taskhub": 9, "cli.replay": 9, "cli.completion": 9,
}
PURE = {"config", "config_source", "app_settings", "options", "functions", "durable.history",
        "durable.names",
        "durable.tablerows", "durable.urls", "http.routes", "http.route_template",
        "http.route_constraints", "http.auth", "http.durable_query", "storage.connection",
        "durable.diagnosis", *(name for name in LAYERS if name.startswith("durable.engine"))}
IMPURE_PREFIXES = ("asyncio", "aiohttp", "azure")
# Modules that read time only through the clock (`runtime.clock`).
CLOCKED = tuple(name for name in LAYERS if name.startswith("durable."))
WALL_CLOCK = ("datetime.now(", "datetime.utcnow(", "time.time(", "time.monotonic(",
              "loop.time(", ".time()", "asyncio.sleep(", "date.today(")


def module_name(path: Path) -> str:
    relative = path.relative_to(RUNTIME).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


MODULES = sorted(p for p in RUNTIME.rglob("*.py") if module_name(p))
BY_NAME = {module_name(p): p for p in MODULES}


def imports_of(path: Path) -> set[str]:
    """Runtime modules (by LAYERS name) that `path` imports, anywhere in the file: `from
    package import submodule` counts the submodule, not the package."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.append(full if full.removeprefix("runtime.") in BY_NAME
                              else node.module)
        for name in names:
            if name.startswith("runtime."):
                target = name.removeprefix("runtime.")
                if target in BY_NAME:
                    found.add(target)
    return found


def test_every_module_has_a_layer() -> None:
    assert sorted(set(BY_NAME) - set(LAYERS)) == []
    assert sorted(set(LAYERS) - set(BY_NAME)) == []


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_imports_respect_layers(path: Path) -> None:
    name = module_name(path)
    layer = LAYERS[name]
    for target in imports_of(path):
        assert LAYERS[target] <= layer, f"{name} (layer {layer}) imports {target}"
        if name.startswith("durable."):
            assert not target.startswith("http."), f"{name} imports {target}"
        if name.startswith("storage"):
            assert not target.startswith(("durable", "http", "worker")), \
                f"{name} imports {target}: storage must work without the durable runtime"
        if name.startswith("worker.child"):
            assert target == "errors" or target.startswith(("worker.child", "worker.protocol")), \
                f"{name} runs in worker processes but imports {target}"


@pytest.mark.parametrize("path", [p for p in MODULES if module_name(p) in PURE],
                         ids=module_name)
def test_pure_modules_do_no_io(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        else:
            continue
        for imported in names:
            assert not imported.startswith(IMPURE_PREFIXES), \
                f"{module_name(path)} imports {imported}"


@pytest.mark.parametrize("path", [p for p in MODULES if module_name(p).startswith(CLOCKED)],
                         ids=module_name)
def test_durable_modules_read_time_through_the_clock(path: Path) -> None:
    text = path.read_text()
    for call in WALL_CLOCK:
        assert call not in text, f"{module_name(path)} calls {call!r}; use the Clock"


def test_no_import_circles() -> None:
    graph = {name: imports_of(path) for name, path in BY_NAME.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                circle = stack[stack.index(target):] + [target]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if target not in state:
                visit(target)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
