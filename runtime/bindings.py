"""Filling a function's inputs for an invocation: the trigger's payload under the
trigger binding's name, and every other input binding the host provides
(`durableClient` today), whatever the trigger is.

The durableClient input is the extension's binding JSON (BindingHelper): the task hub,
the management URLs on the origin the caller used, and the loopback `rpcBaseUrl` the
SDK's client calls back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.durable.urls import client_binding_json
from runtime.errors import BindingError
from runtime.functions import FunctionSpec


@dataclass(frozen=True)
class DurableBinding:
    """What a durableClient input needs: the hub, the RPC listener's URL, and the key
    put in management URLs (None when auth is off)."""

    hub_name: str
    rpc_base_url: Callable[[], str]
    key: str | None = None

    def json_for(self, origin: str) -> str:
        return client_binding_json(origin, self.hub_name, self.rpc_base_url(), self.key)


class Bindings:
    """Builds invocation inputs; `durable` is None when the durable runtime is off."""

    def __init__(self) -> None:
        self.durable: DurableBinding | None = None

    def inputs(self, spec: FunctionSpec, trigger_value: Any, *, origin: str) -> dict[str, Any]:
        """`{binding name: value}` for an invocation of `spec`; `origin` is the scheme
        and host clients reach this host at (management URLs use it). Raises
        BindingError when an input cannot be provided."""
        inputs: dict[str, Any] = {str(spec.trigger.get("name", "req")): trigger_value}
        for name in spec.binding_names("durableClient"):
            if self.durable is None:
                raise BindingError(
                    f"The function '{spec.name}' has a durableClient input, but Durable "
                    "Functions are not available.")
            inputs[name] = self.durable.json_for(origin)
        return inputs


__all__ = ["Bindings", "DurableBinding"]
