"""The app as the durable workers see it: its function index and the invoker of its
current version, swapped as one on every reload."""

from __future__ import annotations

from typing import Any, Protocol

from runtime.durable.engine import KnownFunctions
from runtime.functions import FunctionIndex, FunctionSpec

ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"
ENTITY_TRIGGER = "entityTrigger"


class Invoker(Protocol):
    """Runs a function in a worker process (the worker pool)."""

    async def invoke(self, function: str, inputs: dict[str, Any], *,
                     invocation_id: str | None = None, timeout: float | None = None,
                     reason: str = ..., affinity: str | None = ...,
                     exclusive: bool = ..., quiet_failure: bool = ...,
                     mode: str | None = ...) -> dict[str, Any]: ...


class AppFunctions:
    """The current version's index and invoker (`invoker` is None before the first)."""

    def __init__(self) -> None:
        self.index = FunctionIndex(())
        self.invoker: Invoker | None = None
        self.function_timeout: float | None = None

    def set(self, index: FunctionIndex, invoker: Invoker) -> None:
        self.index, self.invoker = index, invoker

    def orchestrator(self, name: str) -> FunctionSpec | None:
        return self.index.durable(ORCHESTRATION_TRIGGER, name)

    def activity(self, name: str) -> FunctionSpec | None:
        return self.index.durable(ACTIVITY_TRIGGER, name)

    def names(self, trigger: str) -> list[str]:
        return self.index.durable_names(trigger)

    def known(self) -> KnownFunctions:
        """The durable names scheduled work is checked against."""
        return KnownFunctions.of(activities=self.names(ACTIVITY_TRIGGER),
                                 orchestrators=self.names(ORCHESTRATION_TRIGGER),
                                 entities=self.names(ENTITY_TRIGGER))


__all__ = ["ACTIVITY_TRIGGER", "ENTITY_TRIGGER", "ORCHESTRATION_TRIGGER", "AppFunctions",
           "Invoker"]
