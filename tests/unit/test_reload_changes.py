"""What a reload reports as changed: function specs and digests of their code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.functions import FunctionIndex
from runtime.versions import compare
from runtime.worker.child.loader import code_hash


def http(name: str, route: str | None = None) -> dict[str, Any]:
    return {"name": name, "bindings": [
        {"type": "httpTrigger", "direction": "IN", "name": "req", "route": route or name},
        {"type": "http", "direction": "OUT", "name": "$return"}]}


def orchestrator(name: str) -> dict[str, Any]:
    return {"name": name, "bindings": [
        {"type": "orchestrationTrigger", "direction": "IN", "name": "context"}]}


def index(*descriptions: dict[str, Any]) -> FunctionIndex:
    return FunctionIndex.build(descriptions)


def test_added_changed_and_removed_functions() -> None:
    old = index(http("a"), http("b"), http("c"), orchestrator("flow"), orchestrator("gone"))
    new = index(http("a"), http("b", route="moved"), http("d"), orchestrator("flow"))
    found = compare(old, {"a": "1", "flow": "x", "gone": "y"}, new, {"a": "1", "flow": "z"})
    assert [f.name for f in found.added] == ["d"]
    assert [f.name for f in found.changed] == ["b", "flow"]
    assert found.removed == ("c", "gone")
    assert found.changed_orchestrators == ("flow",)
    assert found.removed_orchestrators == ("gone",)
    assert found.any


def test_nothing_changed() -> None:
    same = index(http("a"), orchestrator("flow"))
    found = compare(same, {"a": "1", "flow": "2"}, same, {"a": "1", "flow": "2"})
    assert not found.any and not found.changed_orchestrators


def compiled(source: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source, "function_app.py", "exec"), namespace)  # noqa: S102 - test input
    return namespace["f"]  # type: ignore[no-any-return]


def test_code_hash_follows_what_the_code_does_not_how_it_is_laid_out() -> None:
    original = code_hash(compiled("def f(x):\n    return [x + 1 for _ in {'a', 'b'}]\n"))
    moved = code_hash(compiled("\n\n# a comment\ndef f(x):\n    # why\n"
                               "    return [x + 1 for _ in {'a', 'b'}]\n"))
    changed = code_hash(compiled("def f(x):\n    return [x + 2 for _ in {'a', 'b'}]\n"))
    assert original is not None
    assert original == moved
    assert original != changed
    assert code_hash(compiled("def f(x=1):\n    return x\n")) != code_hash(
        compiled("def f(x=2):\n    return x\n"))


def test_code_hash_of_a_wrapped_orchestrator_is_the_users_function() -> None:
    def user(context: Any) -> Any:
        yield 1

    def handle(context: Any) -> Any:
        return None

    handle.orchestrator_function = user  # type: ignore[attr-defined]
    assert code_hash(handle) == code_hash(user)
    assert code_hash(object()) is None
