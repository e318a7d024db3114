"""Who else uses this task hub: two apps on one task hub take each other's messages
(their orchestrations fail with "The function 'X' doesn't exist" or wait while the other
host holds the partitions), so a host says so at start.

Two signs, both in the hub's leases container: the partition lease blobs name the host
holding each partition (`Owner`, `<machine>:<port>:<app folder>`), and `taskhub.json`
records the app that last ran on the hub (`LastUsedBy`, funclocal's own field beside
DTFx's, which DTFx ignores). `read_partitions` reads who holds each partition now, for
the tools that look (`funclocal taskhub info`, `instances why`).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from runtime.clock import Clock, SystemClock
from runtime.durable import names as nm
from runtime.durable.leases import LEASE_TYPE
from runtime.storage.clients import StorageClients
from runtime.storage.retries import with_retries

TASKHUB_BLOB = "taskhub.json"  # runtime.durable.taskhub.azure.TASKHUB_BLOB
LAST_USED_BY = "LastUsedBy"


def app_of(owner_id: str) -> str:
    """The app folder in an owner id (`<machine>:<port>:<app folder>`)."""
    parts = owner_id.split(":", 2)
    return parts[2] if len(parts) == 3 else owner_id


@dataclass(frozen=True)
class HubUse:
    """Other apps seen on the hub: `running` hold `held` partition leases now (owner
    ids); `last_app` ran on it before this one (None when it was this app or nobody)."""

    running: tuple[str, ...] = ()
    last_app: str | None = None
    held: int = 0

    def warning(self, hub_name: str, partition_count: int) -> str | None:
        """One line for the console, or None when the hub is this app's alone."""
        fix = ("give each app its own task hub: \"extensions\": {\"durableTask\": "
               "{\"hubName\": \"<a name for this app>\"}} in host.json")
        if self.running:
            apps = sorted({app_of(o) for o in self.running})
            hosts = ", ".join(sorted(self.running))
            return (f"Task hub '{hub_name}' is in use by another app ({', '.join(apps)}; "
                    f"host {hosts}), which holds {self.held} of its "
                    f"{partition_count} partitions: two apps on one task hub take each "
                    f"other's work, and their orchestrations fail or wait. To fix it, {fix}.")
        if self.last_app is not None:
            return (f"Task hub '{hub_name}' was last used by another app ({self.last_app}): "
                    f"its unfinished orchestrations fail here as unknown functions. To "
                    f"keep the apps apart, {fix}.")
        return None


async def inspect(container: ContainerClient, hub_name: str, partition_count: int,
                  owner_id: str) -> HubUse:
    """Read the lease blobs and taskhub.json, and record this app as the last one to
    use the hub. Storage errors leave the answer empty: this is advice, not a gate."""
    names = nm.hub_names(hub_name, partition_count)
    mine = app_of(owner_id)

    async def holder(queue: str) -> str | None:
        try:
            download = await container.get_blob_client(f"{LEASE_TYPE}/{queue}").download_blob()
            body = json.loads(await download.readall())
        except (AzureError, ValueError):
            return None
        owner = body.get("Owner") if isinstance(body, dict) else None
        if not isinstance(owner, str) or download.properties.lease.state != "leased":
            return None
        return owner if app_of(owner) != mine else None

    holders = await asyncio.gather(*(holder(q) for q in names.control_queues))
    others = [h for h in holders if h is not None]
    last_app = await _swap_last_used(container, mine)
    return HubUse(tuple(sorted(set(others))), last_app if last_app not in (None, mine)
                  else None, len(others))


async def _swap_last_used(container: ContainerClient, app: str) -> str | None:
    blob = container.get_blob_client(TASKHUB_BLOB)
    try:
        download = await blob.download_blob()
        info = json.loads(await download.readall())
        if not isinstance(info, dict):
            return None
        previous = info.get(LAST_USED_BY)
        if previous != app:
            info[LAST_USED_BY] = app
            await blob.upload_blob(json.dumps(info).encode(), overwrite=True,
                                   etag=download.properties.etag,
                                   match_condition=MatchConditions.IfNotModified)
        return previous if isinstance(previous, str) else None
    except (AzureError, ValueError):
        return None


__all__ = ["HubUse", "app_of", "inspect"]


@dataclass(frozen=True)
class PartitionState:
    """Who holds one partition, as its lease blob says (for tools that look): `leased`
    when a host holds the lease now; `owner` the owner id its body names (machine, port
    and app folder, see `Host.owner_id`), kept after a release, so it is the last
    holder when not leased."""

    partition: int
    queue: str
    leased: bool
    owner: str | None


async def read_partitions(storage: StorageClients, hub_name: str, partition_count: int,
                          *, clock: Clock | None = None) -> list[PartitionState]:
    """Every partition's lease state, without taking any (one download per partition).
    A missing blob reads as never held. StorageError when storage does not answer."""
    clock = clock or SystemClock()
    names = nm.hub_names(hub_name, partition_count)
    container = storage.blobs.get_container_client(names.leases_container)

    async def one(partition: int) -> PartitionState:
        queue = names.control_queues[partition]
        blob = container.get_blob_client(f"{LEASE_TYPE}/{queue}")

        async def op() -> PartitionState:
            try:
                downloaded = await blob.download_blob()
                body = await downloaded.readall()
            except ResourceNotFoundError:
                return PartitionState(partition, queue, False, None)
            lease = downloaded.properties.lease
            try:
                owner = json.loads(body).get("Owner")
            except (ValueError, AttributeError):
                owner = None
            return PartitionState(partition, queue, str(lease.state) == "leased",
                                  str(owner) if owner else None)
        return await with_retries(op, what=f"reading the lease of {queue}",
                                  deadline=clock.monotonic() + 30.0)

    return list(await asyncio.gather(*(one(p) for p in range(partition_count))))
