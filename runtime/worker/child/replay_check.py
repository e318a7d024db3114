"""An orchestrator episode run for a replay check: the unmodified SDK (its own timestamp
parsing, a fresh full replay, no session), plus where in user code each action came from.

The SDK's state lists actions but not the code that produced them. While the check runs,
a profile hook on this thread (`sys.setprofile`: it observes, the SDK runs unchanged)
notes each call of the context's `_add_to_actions`, the one place the SDK records a new
top-level action, and the line the user's generator is suspended at then (for a
`yield`) or running (for `continue_as_new`). The i-th location belongs to the i-th
action of the state.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.worker.child.orchestrations import Outcome
from runtime.worker.child.sdk_speedups import original_parsing

MODE = "replay-check"

Location = tuple[str, int, str]  # file, line, function

_LIBRARIES = tuple(str(Path(p).resolve()) + os.sep for p in (
    Path(__file__).parents[2],  # funclocal itself
    Path(types.__file__).parent,  # the standard library
))


def run(user_function: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Call the orchestrator function with `kwargs` (blocking: run it in a thread) and
    return {"kind": "replay-check", "text": state or None, "raised": message or None,
    "locations": [[file, line, function] or None, ...] in action order}."""
    target = _add_to_actions_code()
    locations: list[Location | None] = []

    def profile(frame: types.FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is target:
            context = frame.f_locals.get("self")
            if not getattr(context, "will_continue_as_new", False):  # else it is dropped
                locations.append(_user_location(frame))

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        with original_parsing():
            outcome = Outcome.of(lambda: user_function(**kwargs))
    finally:
        sys.setprofile(previous)
    text = outcome.value if isinstance(outcome.value, str) else None
    return {"kind": MODE, "text": text,
            "raised": None if outcome.error is None else str(outcome.error),
            "locations": [list(loc) if loc else None for loc in locations]}


def _add_to_actions_code() -> types.CodeType | None:
    try:
        from azure.durable_functions.models.DurableOrchestrationContext import (
            DurableOrchestrationContext,
        )
    except ImportError:  # an app without the Durable SDK has no orchestrators
        return None
    function = getattr(DurableOrchestrationContext, "_add_to_actions", None)
    return getattr(function, "__code__", None)


def _user_location(frame: types.FrameType) -> Location | None:
    """The user code behind an action: the generator the SDK's executor drives (where it
    yielded), or the first caller outside the SDK (continue_as_new is called directly)."""
    current = frame.f_back
    while current is not None:
        generator = getattr(current.f_locals.get("self"), "generator", None)
        if isinstance(generator, types.GeneratorType):
            return _generator_location(generator)
        if not _is_library(current.f_code.co_filename):
            return (current.f_code.co_filename, current.f_lineno, current.f_code.co_name)
        current = current.f_back
    return None


def _generator_location(generator: types.GeneratorType[Any, Any, Any]) -> Location | None:
    # Follow `yield from` into the innermost generator: that is where the code stands.
    while isinstance(generator.gi_yieldfrom, types.GeneratorType) and \
            generator.gi_yieldfrom.gi_frame is not None:
        generator = generator.gi_yieldfrom
    frame = generator.gi_frame
    if frame is None:
        return None
    return (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


def _is_library(filename: str) -> bool:
    path = str(Path(filename).resolve()) if filename and not filename.startswith("<") else ""
    return not path or path.startswith(_LIBRARIES) or \
        f"{os.sep}site-packages{os.sep}" in path


__all__ = ["MODE", "run"]
