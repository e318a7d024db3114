"""Ownership of control-queue partitions through blob leases.

Each partition has a lease blob `h-leases/default/h-control-NN`, the layout of DTFx's legacy
partition manager; its body {PartitionId, Owner, Token, Epoch} shows who owns it. A host
reads a control queue only while it holds that blob's lease.

Why blob leases rather than DTFx's newer table partition manager (`HPartitions`):
- Expiry is kept by the storage service. A host that dies loses its partitions after at
  most one lease period, with no clock comparison between hosts; the table manager writes
  `ExpiresAt` timestamps and trusts every host's clock.
- Cheap: one small request per owned partition per renewal, instead of reading and
  conditionally rewriting the whole table every few seconds.
- Simple: the table manager's value is graceful hand-over between many workers (NextOwner,
  draining). A local host runs one or a few processes; they take free partitions and never
  steal, and a partition moves only when its owner releases it or dies.
- The lease blobs live in the blob service, a separate Azurite process from tables and
  queues, so Azurite's queue garbage-collection freezes do not stall lease renewals.
Split-brain (two hosts briefly processing one partition after a missed renewal) is made
harmless by the sentinel-row ETag of every history write, exactly as in DTFx.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.blob.aio import BlobClient, BlobLeaseClient

from runtime.clock import Clock, SystemClock
from runtime.durable import names as nm
from runtime.errors import StorageError
from runtime.storage.clients import StorageClients
from runtime.storage.retries import describe_error, with_retries

log = logging.getLogger(__name__)

LEASE_TYPE = "default"


class Partitions(ABC):
    """Which control-queue partitions this host may read (`owned`), kept up to date by
    the orchestration worker calling `renew` and `acquire_available` periodically."""

    @property
    @abstractmethod
    def owned(self) -> frozenset[int]: ...

    @abstractmethod
    async def acquire_available(self) -> list[int]:
        """Take every partition that is free; return the ones newly owned."""

    @abstractmethod
    async def renew(self) -> list[int]:
        """Keep the owned partitions; return the ones lost."""

    @abstractmethod
    async def release_all(self) -> None:
        """Give every partition up (at shutdown)."""


class AllPartitions(Partitions):
    """Every partition, always: for a task hub that only this process uses (in memory)."""

    def __init__(self, partition_count: int) -> None:
        self.count = partition_count
        self._owned: frozenset[int] = frozenset()

    @property
    def owned(self) -> frozenset[int]:
        return self._owned

    async def acquire_available(self) -> list[int]:
        new = [p for p in range(self.count) if p not in self._owned]
        self._owned = frozenset(range(self.count))
        return new

    async def renew(self) -> list[int]:
        return []

    async def release_all(self) -> None:
        self._owned = frozenset()


@dataclass
class _Held:
    lease: BlobLeaseClient
    renewed_at: float  # clock.monotonic() when the last successful renewal was sent
    epoch: int = field(default=0)


class PartitionLeases(Partitions):
    """Partition ownership through blob leases (see the module docstring)."""

    def __init__(self, storage: StorageClients, hub_name: str, partition_count: int,
                 owner_id: str, lease_seconds: int = 30, *, clock: Clock | None = None) -> None:
        if not 15 <= lease_seconds <= 60:
            raise ValueError(f"a blob lease lasts 15-60 seconds; got {lease_seconds}")
        self.clock = clock or SystemClock()
        self.names = nm.hub_names(hub_name, partition_count)
        self.owner_id = owner_id
        self.lease_seconds = lease_seconds
        self._container = storage.blobs.get_container_client(self.names.leases_container)
        self._blobs = [self._container.get_blob_client(f"{LEASE_TYPE}/{queue}")
                       for queue in self.names.control_queues]
        self._held: dict[int, _Held] = {}
        self._blob_exists: set[int] = set()

    @property
    def owned(self) -> frozenset[int]:
        return frozenset(self._held)

    async def acquire_available(self) -> list[int]:
        """Take every partition whose lease is free or expired; return the new ones."""
        candidates = [p for p in range(len(self._blobs)) if p not in self._held]
        results = await asyncio.gather(*(self._try_acquire(p) for p in candidates),
                                       return_exceptions=True)
        acquired: list[int] = []
        for partition, result in zip(candidates, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                log.warning("Could not acquire the lease of partition %d: %s", partition,
                            describe_error(result))
            elif result:
                acquired.append(partition)
        return acquired

    async def renew(self) -> list[int]:
        """Renew every owned lease; return the partitions lost (no longer owned)."""
        held = list(self._held.items())
        results = await asyncio.gather(*(self._renew(p, h) for p, h in held))
        lost = [p for (p, _), ok in zip(held, results, strict=True) if not ok]
        for partition in lost:
            self._held.pop(partition, None)
        return lost

    async def release(self, partition: int) -> None:
        held = self._held.pop(partition, None)
        if held is not None:
            await self._release(partition, held)

    async def release_all(self) -> None:
        held = list(self._held.items())
        self._held.clear()
        await asyncio.gather(*(self._release(p, h) for p, h in held))

    # --- one partition -----------------------------------------------------------------

    async def _try_acquire(self, partition: int) -> bool:
        blob = self._blobs[partition]
        if partition not in self._blob_exists:
            await self._ensure_blob(partition, blob)
            self._blob_exists.add(partition)
        # The proposed id is derived from the owner id, so acquiring is idempotent: a retry
        # after a lost answer succeeds, and a host restarted after a crash (same owner id)
        # takes its partitions back at once instead of waiting for the old lease to expire.
        lease_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"funclocal/{self.owner_id}/{partition}"))
        lease = BlobLeaseClient(blob, lease_id=lease_id)
        started = self.clock.monotonic()

        async def op() -> bool:
            try:
                await lease.acquire(lease_duration=self.lease_seconds)
            except ResourceExistsError:
                return False  # leased by someone else
            except ResourceNotFoundError:
                self._blob_exists.discard(partition)  # deleted meanwhile: recreate next time
                return False
            return True
        if not await with_retries(op, what=f"acquiring the lease of {blob.blob_name}",
                                  deadline=started + self.lease_seconds / 3):
            return False
        held = _Held(lease=lease, renewed_at=started)
        self._held[partition] = held
        await self._write_owner(partition, blob, held)
        log.info("Acquired partition %d (%s) as %s", partition,
                 self.names.control_queues[partition], self.owner_id)
        return True

    async def _ensure_blob(self, partition: int, blob: BlobClient) -> None:
        body = self._body(partition, token=None, epoch=0)

        async def op() -> None:
            try:
                await blob.upload_blob(body, overwrite=False)
            except ResourceExistsError:
                pass
            except ResourceNotFoundError:
                # The hub's container is missing (deleted, or not created yet).
                try:
                    await self._container.create_container()
                except ResourceExistsError:
                    pass
                try:
                    await blob.upload_blob(body, overwrite=False)
                except ResourceExistsError:
                    pass
            except HttpResponseError as exc:
                # A leased blob refuses the conditional create with 412: it exists.
                if exc.status_code != 412:
                    raise
        await with_retries(op, what=f"creating {blob.blob_name}",
                           deadline=self.clock.monotonic() + self.lease_seconds / 3)

    async def _write_owner(self, partition: int, blob: BlobClient, held: _Held) -> None:
        # Informational only (who owns what, for people and tools); failure is harmless.
        try:
            old = json.loads(await (await blob.download_blob()).readall())
            held.epoch = int(old.get("Epoch") or 0) + 1
            await blob.upload_blob(self._body(partition, token=held.lease.id,
                                              epoch=held.epoch),
                                   overwrite=True, lease=held.lease)
        except (AzureError, ValueError) as exc:
            log.debug("Could not record the owner of partition %d: %s", partition,
                      describe_error(exc))

    async def _renew(self, partition: int, held: _Held) -> bool:
        started = self.clock.monotonic()
        expires = held.renewed_at + self.lease_seconds
        try:
            await with_retries(held.lease.renew, what=f"renewing partition {partition}",
                               deadline=max(started + 1.0, min(expires, started + 10.0)))
        except HttpResponseError as exc:
            log.warning("Lost partition %d (%s): %s", partition,
                        self.names.control_queues[partition], describe_error(exc))
            return False
        except StorageError as exc:
            if self.clock.monotonic() < expires:
                log.warning("Renewing partition %d failed, will retry: %s", partition, exc)
                return True
            log.warning("Lost partition %d: its lease expired while storage was "
                        "unreachable (%s)", partition, exc)
            return False
        held.renewed_at = started
        return True

    async def _release(self, partition: int, held: _Held) -> None:
        try:
            await with_retries(held.lease.release, what=f"releasing partition {partition}",
                               deadline=self.clock.monotonic() + 5.0)
            log.info("Released partition %d", partition)
        except (AzureError, StorageError) as exc:
            # It expires on its own within one lease period.
            log.debug("Releasing partition %d failed: %s", partition, describe_error(exc))

    def _body(self, partition: int, *, token: str | None, epoch: int) -> bytes:
        info: dict[str, Any] = {
            "PartitionId": self.names.control_queues[partition],
            "Owner": self.owner_id if token else None,
            "Token": token,
            "Epoch": epoch,
        }
        return json.dumps(info).encode("utf-8")


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


__all__ = ["AllPartitions", "PartitionLeases", "PartitionState", "Partitions",
           "read_partitions"]
