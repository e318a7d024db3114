"""The durable runtime as the host serves it: the durable services of the app's task hub
(`durable/services.py`), the management API on the public port and on the loopback RPC
listener, and the durableClient binding that points clients at them."""

from __future__ import annotations

from dataclasses import dataclass

from runtime import console
from runtime.bindings import DurableBinding
from runtime.config import HostConfig
from runtime.durable import hub_owners
from runtime.durable.names import hub_names
from runtime.durable.services import DurableServices, open_durable
from runtime.errors import HostError
from runtime.functions import FunctionIndex
from runtime.http.auth import KeyStore
from runtime.http.durable_api import DurableApi
from runtime.storage.connection import StorageEndpoints
from runtime.worker.pool import WorkerPool

log = console.get("durable")


@dataclass
class HostDurable:
    services: DurableServices
    api: DurableApi
    binding: DurableBinding

    @property
    def hub_name(self) -> str:
        return self.services.hub_name

    def attach(self, index: FunctionIndex, pool: WorkerPool) -> None:
        """Run this version's durable functions on `pool`."""
        self.services.dispatcher.set_functions(index, pool)

    async def start(self) -> None:
        """Open the RPC listener, then take partitions and start polling."""
        await self.api.start_rpc()
        await self.services.start()

    async def close(self) -> None:
        """Stop the dispatcher (handing work back), the RPC listener, then storage."""
        if self.services.dispatcher.running:
            await self.services.dispatcher.stop()
        await self.api.stop_rpc()
        await self.services.close()


def needs_durable(index: FunctionIndex) -> bool:
    """Whether the app has durable functions or a durableClient input."""
    return any(f.kind in ("orchestrationtrigger", "activitytrigger", "entitytrigger")
               or f.binding_names("durableClient") for f in index.functions)


async def open_host_durable(config: HostConfig, storage: StorageEndpoints | None,
                            keys: KeyStore | None, owner_id: str) -> HostDurable:
    """The durable services of `config`'s task hub, opened but not started. Raises
    HostError when no storage is configured, StorageError when it cannot be reached."""
    if storage is None:
        name = config.durable.connection_name
        raise HostError(
            f"This app uses Durable Functions, which keep their state in Azure Storage, "
            f"but the setting '{name}' is not set. Add \"{name}\": "
            "\"UseDevelopmentStorage=true\" to the Values of local.settings.json.")
    services = await open_durable(config.durable, connection_string=storage.connection_string,
                                  owner_id=owner_id, function_timeout=config.function_timeout)
    if services.storage is not None:
        names = hub_names(services.hub_name, config.durable.partition_count)
        use = await hub_owners.inspect(
            services.storage.blobs.get_container_client(names.leases_container),
            services.hub_name, config.durable.partition_count, owner_id)
        warning = use.warning(services.hub_name, config.durable.partition_count)
        if warning is not None:
            log.warning("%s", warning)
    # Management URLs handed to clients carry the extension's system key, which opens
    # the webhook routes only (never the host key, which opens every function).
    key = keys.durable_key if keys else None
    api = DurableApi(services.client, hub_name=services.hub_name, key=key)
    binding = DurableBinding(services.hub_name, lambda: api.rpc_base_url, key)
    return HostDurable(services, api, binding)


__all__ = ["HostDurable", "needs_durable", "open_host_durable"]
