"""Opening the durable runtime of one task hub: storage, the hub, partition ownership,
the dispatcher and the management client. One function for the host, the CLI and the
test harness; the HTTP API is added on top by the host."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from runtime.clock import Clock, SystemClock
from runtime.config import DurableTaskConfig
from runtime.durable.client import DurableClient
from runtime.durable.dispatcher import Dispatcher
from runtime.durable.leases import AllPartitions, PartitionLeases, Partitions
from runtime.durable.taskhub import TaskHub
from runtime.durable.taskhub.azure import AzureTaskHub
from runtime.durable.taskhub.memory import MemoryTaskHub
from runtime.storage.clients import StorageClients, open_storage

log = logging.getLogger(__name__)


@dataclass
class DurableServices:
    """A task hub's durable runtime, opened (created if missing) but not started."""

    hub: TaskHub
    partitions: Partitions
    dispatcher: Dispatcher
    client: DurableClient
    clock: Clock
    storage: StorageClients | None = None  # None for an in-memory hub

    @property
    def hub_name(self) -> str:
        return self.hub.hub_name

    async def start(self) -> None:
        """Take partitions and start polling."""
        await self.dispatcher.start()

    async def close(self) -> None:
        """Stop the dispatcher (handing work back) and close storage."""
        if self.dispatcher.running:
            await self.dispatcher.stop()
        await self.hub.close()
        if self.storage is not None:
            await self.storage.close()


async def open_durable(config: DurableTaskConfig, *, connection_string: str | None,
                       owner_id: str, clock: Clock | None = None,
                       function_timeout: float | None = None,
                       in_memory: bool = False, create: bool = True,
                       wrap_hub: Callable[[TaskHub], TaskHub] | None = None,
                       ) -> DurableServices:
    """Open the durable services of `config.hub_name`: in the account the connection
    string names, or, with `in_memory`, in this process. `create=False` leaves a hub
    that does not exist uncreated (tools that only look must not create one). `wrap_hub`
    may put a layer between the runtime and the hub (the test harness counts storage
    operations with it); `services.hub` is then that layer. Raises StorageError when the
    account cannot be reached or the connection string is unusable."""
    clock = clock or SystemClock()
    wrap = wrap_hub or (lambda hub: hub)
    if in_memory:
        memory = MemoryTaskHub(config.hub_name, config.partition_count, clock=clock)
        await memory.create_if_missing()
        return _assemble(wrap(memory), AllPartitions(config.partition_count), config, clock,
                         function_timeout, None)
    if not connection_string:
        raise ValueError("a connection string is needed unless the hub is in memory")
    storage = await open_storage(connection_string)
    try:
        hub = AzureTaskHub(storage, config.hub_name, config.partition_count, clock=clock)
        if create:
            await hub.create_if_missing()
        leases = PartitionLeases(storage, config.hub_name, config.partition_count,
                                 owner_id=owner_id, clock=clock)
    except BaseException:
        await storage.close()
        raise
    return _assemble(wrap(hub), leases, config, clock, function_timeout, storage)


def _assemble(hub: TaskHub, partitions: Partitions, config: DurableTaskConfig, clock: Clock,
              function_timeout: float | None,
              storage: StorageClients | None) -> DurableServices:
    dispatcher = Dispatcher(hub, partitions, config, function_timeout=function_timeout,
                            clock=clock)
    client = DurableClient(hub, config, app=dispatcher.app, notify=dispatcher.notify_instance,
                           clock=clock)
    return DurableServices(hub, partitions, dispatcher, client, clock, storage)


__all__ = ["DurableServices", "open_durable"]
