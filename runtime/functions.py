"""The app's function index as the host sees it: names, triggers and raw bindings.

Pure values built from the worker's `get_functions()` description; the host never imports
user code, it only reads these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Trigger and binding types this host can serve today (lower-case); functions with any
# other binding are reported and skipped rather than indexed and silently never run.
SUPPORTED_TRIGGERS = frozenset({"httptrigger", "orchestrationtrigger", "activitytrigger",
                                "entitytrigger"})
SUPPORTED_BINDINGS = frozenset({"http", "durableclient"}) | SUPPORTED_TRIGGERS


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    bindings: tuple[Mapping[str, Any], ...]
    is_async: bool = False
    trigger: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_description(cls, data: Mapping[str, Any]) -> FunctionSpec:
        bindings = tuple(dict(b) for b in data.get("bindings", ()))
        trigger = next((b for b in bindings if _type(b).endswith("trigger")), {})
        return cls(name=str(data["name"]), bindings=bindings,
                   is_async=bool(data.get("is_async")), trigger=trigger)

    @property
    def trigger_type(self) -> str:
        """The trigger's type as the app wrote it, e.g. 'httpTrigger'."""
        return str(self.trigger.get("type", ""))

    @property
    def kind(self) -> str:
        return self.trigger_type.lower()

    @property
    def is_http(self) -> bool:
        return self.kind == "httptrigger"

    @property
    def route(self) -> str:
        route = self.trigger.get("route")
        return self.name if route is None else str(route)

    @property
    def methods(self) -> frozenset[str] | None:
        """None when the binding has no `methods` (every method is accepted); otherwise
        the upper-case set, which is empty for `methods=[]` (no method is accepted, as
        the host keeps an empty array)."""
        methods = self.trigger.get("methods")
        if methods is None:
            return None
        return frozenset(str(m).strip().upper() for m in methods if str(m).strip())

    @property
    def auth_level(self) -> str:
        return str(self.trigger.get("authLevel") or "FUNCTION").lower()

    @property
    def durable_name(self) -> str:
        """The name the Durable extension registers: binding overrides win."""
        for key in ("orchestration", "activity", "entityName"):
            value = self.trigger.get(key)
            if value:
                return str(value)
        return self.name

    def binding_names(self, binding_type: str) -> list[str]:
        return [str(b.get("name")) for b in self.bindings if _type(b) == binding_type.lower()]

    def unsupported_bindings(self) -> list[str]:
        return sorted({str(b.get("type")) for b in self.bindings
                       if _type(b) not in SUPPORTED_BINDINGS})


def _type(binding: Mapping[str, Any]) -> str:
    return str(binding.get("type", "")).lower()


@dataclass(frozen=True)
class FunctionIndex:
    """The functions served (`functions`), those skipped with the reason, and those
    disabled by the `AzureWebJobs.<name>.Disabled` setting (listed, never run)."""

    functions: tuple[FunctionSpec, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (function name, reason)
    disabled: tuple[FunctionSpec, ...] = ()

    @classmethod
    def build(cls, descriptions: Iterable[Mapping[str, Any]]) -> FunctionIndex:
        served: list[FunctionSpec] = []
        skipped: list[tuple[str, str]] = []
        for description in descriptions:
            spec = FunctionSpec.from_description(description)
            unsupported = spec.unsupported_bindings()
            if unsupported:
                skipped.append((spec.name, (
                    f"The binding type(s) '{', '.join(unsupported)}' are not supported by "
                    "funclocal yet; the function is skipped.")))
                continue
            served.append(spec)
        return cls(tuple(served), tuple(skipped))

    def with_disabled(self, settings: Mapping[str, str]) -> FunctionIndex:
        """The functions that `AzureWebJobs.<name>.Disabled` (true or 1, the name matched
        without case, as the host reads app settings) turns off moved to `disabled`."""
        flags = {key.lower(): value for key, value in settings.items()}
        off = [f for f in self.functions
               if flags.get(f"azurewebjobs.{f.name.lower()}.disabled", "").strip().lower()
               in ("true", "1")]
        if not off:
            return self
        return FunctionIndex(tuple(f for f in self.functions if f not in off), self.skipped,
                             tuple(off))

    def get(self, name: str) -> FunctionSpec | None:
        return next((f for f in self.functions if f.name == name), None)

    def by_kind(self, kind: str) -> list[FunctionSpec]:
        return [f for f in self.functions if f.kind == kind.lower()]

    def durable(self, kind: str, name: str) -> FunctionSpec | None:
        """Find an orchestrator/activity/entity by its durable name (case-insensitive)."""
        lowered = name.lower()
        return next((f for f in self.by_kind(kind) if f.durable_name.lower() == lowered), None)

    def durable_names(self, kind: str) -> list[str]:
        return [f.durable_name for f in self.by_kind(kind)]

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": f.name, "trigger": f.trigger_type,
                 "bindings": [dict(b) for b in f.bindings],
                 **({"route": f.route,
                     "methods": sorted(f.methods) if f.methods is not None else None,
                     "authLevel": f.auth_level} if f.is_http else {}),
                 "isDisabled": f in self.disabled}
                for f in (*self.functions, *self.disabled)]
