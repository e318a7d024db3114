"""Ownership of control-queue partitions through blob leases, balanced between hosts.

Each partition has a lease blob `h-leases/default/h-control-NN`, the layout of DTFx's legacy
partition manager; its body {PartitionId, Owner, Token, Epoch} shows who owns it, and its
metadata names the owning process. A host reads a control queue only while it holds that
blob's lease.

Why blob leases rather than DTFx's newer table partition manager (`HPartitions`):
- Expiry is kept by the storage service. A host that dies loses its partitions after at
  most one lease period (15 s, the shortest a blob lease can be), with no clock comparison
  between hosts; the table manager writes `ExpiresAt` timestamps and trusts every clock.
- The lease blobs live in the blob service, a separate Azurite process from tables and
  queues, so Azurite's queue garbage-collection freezes do not stall lease renewals.

Balancing follows the framework's method (steal from hosts that own more than their share,
drain, release, hand over), in the storage the legacy layout already has. Every few seconds
a host lists the lease container (one request): which partitions are leased, by which
process, and which hand-over requests are pending. A host owning at least two partitions
fewer than the busiest one asks it for one partition by writing a request blob
(`h-leases/requests/h-control-NN`, naming itself). The owner sees the request at its next
survey, stops reading that control queue, lets the instances in flight finish their
episodes (bounded), hands their buffered messages back, and releases the lease; no other
host takes a partition someone asked for while the request is fresh, so the requester gets
it. Free partitions (never leased, released, or expired after a crash) are taken up to a
fair share. Hosts converge to shares that differ by at most one.

Lease ids are random per process, so two processes can never hold one lease; the one
exception is a host restarted after a crash on the same machine, app and port: it takes
over the lease id of its dead predecessor (recorded in the user's cache directory with
the predecessor's pid, reused only when that process is gone), so it gets its partitions
back at once instead of after the leases expire. Split-brain
(two hosts briefly processing one partition after a missed renewal) is made harmless by
the sentinel-row ETag of every history write, exactly as in DTFx.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
from runtime.durable.lease_identity import forget_lease_identity, lease_identity
from runtime.errors import StorageError
from runtime.storage.clients import StorageClients
from runtime.storage.retries import describe_error, with_retries

log = logging.getLogger(__name__)

LEASE_TYPE = "default"
REQUESTS = "requests"
LEASE_SECONDS = 15
# A hand-over request older than this is ignored (its requester is gone or got enough).
REQUEST_SECONDS = 4 * LEASE_SECONDS


class Partitions(ABC):
    """Which control-queue partitions this host may read (`owned`), kept up to date by
    the orchestration worker calling `renew`, `acquire_available` and `requested`."""

    @property
    @abstractmethod
    def owned(self) -> frozenset[int]: ...

    @abstractmethod
    async def acquire_available(self) -> list[int]:
        """Take free partitions up to this host's share; return the ones newly owned."""

    @abstractmethod
    async def renew(self) -> list[int]:
        """Keep the owned partitions; return the ones lost."""

    def requested(self) -> dict[int, str]:
        """Owned partitions other hosts asked for (partition -> requester), as of the
        last `acquire_available`: drain them and `release` them."""
        return {}

    @abstractmethod
    async def release(self, partition: int) -> None:
        """Give one partition up (after draining it)."""

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

    async def release(self, partition: int) -> None:
        self._owned = self._owned - {partition}

    async def release_all(self) -> None:
        self._owned = frozenset()


@dataclass
class _Held:
    lease: BlobLeaseClient
    renewed_at: float  # clock.monotonic() when the last successful renewal was sent
    epoch: int = field(default=0)


@dataclass(frozen=True)
class Survey:
    """One listing of the lease container: who leases each partition (a process id, or
    None when free) and the pending hand-over requests (partition -> requester)."""

    holders: dict[int, str | None]
    requests: dict[int, str]

    def shares(self, me: str) -> Counter[str]:
        counts = Counter(h for h in self.holders.values() if h is not None)
        counts[me] += 0
        for requester in self.requests.values():
            counts[requester] += 0  # a host asking for work is a host
        return counts


def fair_share(partitions: int, hosts: int) -> int:
    """The most partitions one host should own (the shares differ by at most one)."""
    return math.ceil(partitions / max(1, hosts))


def steal_from(survey: Survey, me: str) -> int | None:
    """The partition to ask for, if any: one of the busiest host's, when it owns at least
    two more than this host (so one moving makes the split fairer), and none is asked
    for already by this host."""
    if me in survey.requests.values():
        return None  # one hand-over at a time
    shares = survey.shares(me)
    busiest, most = max(((h, n) for h, n in shares.items() if h != me),
                        key=lambda item: (item[1], item[0]), default=(None, 0))
    if busiest is None or most < shares[me] + 2:
        return None
    candidates = sorted(p for p, h in survey.holders.items()
                        if h == busiest and p not in survey.requests)
    return candidates[-1] if candidates else None


class PartitionLeases(Partitions):
    """Partition ownership through blob leases (see the module docstring). `owner_id`
    is the label people see (machine, port, app); the process id that balancing counts
    by is random per process."""

    def __init__(self, storage: StorageClients, hub_name: str, partition_count: int,
                 owner_id: str, lease_seconds: int = LEASE_SECONDS, *,
                 clock: Clock | None = None) -> None:
        if not 15 <= lease_seconds <= 60:
            raise ValueError(f"a blob lease lasts 15-60 seconds; got {lease_seconds}")
        self.clock = clock or SystemClock()
        self.names = nm.hub_names(hub_name, partition_count)
        self.owner_id = owner_id
        self.hub_name = hub_name
        self.process_id = lease_identity(owner_id, hub_name)  # also its lease id
        self.lease_seconds = lease_seconds
        self._container = storage.blobs.get_container_client(self.names.leases_container)
        self._blobs = [self._container.get_blob_client(f"{LEASE_TYPE}/{queue}")
                       for queue in self.names.control_queues]
        self._held: dict[int, _Held] = {}
        self._blob_exists: set[int] = set()
        self._requested: dict[int, str] = {}
        self.last_survey: Survey | None = None

    @property
    def owned(self) -> frozenset[int]:
        return frozenset(self._held)

    def requested(self) -> dict[int, str]:
        return dict(self._requested)

    # --- the balancing round -----------------------------------------------------------

    async def acquire_available(self) -> list[int]:
        """Survey the container, take free partitions up to the fair share (or the ones
        requested by this host once released), and ask the busiest host for one when
        this host has too few. Returns the partitions newly owned."""
        survey = await self.survey()
        self.last_survey = survey
        me = self.process_id
        shares = survey.shares(me)
        # Hand over what another host asked for while this one has at least two more.
        self._requested = {p: r for p, r in survey.requests.items()
                           if p in self._held and r != me and shares[me] >= shares[r] + 2}
        share = fair_share(len(self._blobs), len(shares))
        room = max(0, share - len(self._held))
        # Free partitions, and ones still leased under this process's id by the dead
        # predecessor whose id it took over (acquiring them again succeeds at once).
        free = [p for p, holder in survey.holders.items()
                if holder in (None, me) and p not in self._held]
        # Partitions asked for by this host first (while it still has room); none asked
        # for by another.
        mine = [p for p in free if survey.requests.get(p) == me] if room else []
        if not room:
            for partition in (p for p, r in survey.requests.items() if r == me):
                await self._drop_request(partition)
        others = [p for p in free if p not in survey.requests]
        targets = mine + others[:max(0, room - len(mine))]
        results = await asyncio.gather(*(self._try_acquire(p) for p in targets),
                                       return_exceptions=True)
        acquired: list[int] = []
        for partition, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                log.warning("Could not acquire the lease of partition %d: %s", partition,
                            describe_error(result))
            elif result:
                acquired.append(partition)
                if survey.requests.get(partition) == me:
                    await self._drop_request(partition)
        if not acquired and not mine:
            wanted = steal_from(survey, me)
            if wanted is not None:
                await self._request(wanted)
        return acquired

    async def survey(self) -> Survey:
        """List the lease container once: lease states and owners, hand-over requests.
        Raises StorageError when storage cannot be reached."""
        queues = {f"{LEASE_TYPE}/{q}": i for i, q in enumerate(self.names.control_queues)}
        requests_of = {f"{REQUESTS}/{q}": i for i, q in enumerate(self.names.control_queues)}
        now = self.clock.now()

        async def op() -> Survey:
            holders: dict[int, str | None] = {i: None for i in range(len(self._blobs))}
            requests: dict[int, str] = {}
            try:
                async for blob in self._container.list_blobs(include=["metadata"]):
                    metadata = blob.metadata or {}
                    if blob.name in queues and blob.lease.state == "leased":
                        holders[queues[blob.name]] = metadata.get("process") or "unknown"
                    elif blob.name in requests_of and metadata.get("requester"):
                        at = _parse_time(metadata.get("at"))
                        if at is not None and now - at < timedelta(seconds=REQUEST_SECONDS):
                            requests[requests_of[blob.name]] = metadata["requester"]
            except ResourceNotFoundError:
                pass  # no container yet: everything is free
            for partition in self._held:
                holders[partition] = self.process_id  # as far as this host knows
            return Survey(holders, requests)
        return await with_retries(op, what="listing the partition leases",
                                  deadline=self.clock.monotonic() + self.lease_seconds / 3)

    async def _request(self, partition: int) -> None:
        blob = self._container.get_blob_client(
            f"{REQUESTS}/{self.names.control_queues[partition]}")
        metadata = {"requester": self.process_id, "owner": self.owner_id,
                    "at": self.clock.now().isoformat()}
        try:
            await blob.upload_blob(b"", overwrite=True, metadata=metadata)
            log.info("Asked for partition %d (%s)", partition,
                     self.names.control_queues[partition])
        except AzureError as exc:
            log.debug("Could not ask for partition %d: %s", partition, describe_error(exc))

    async def _drop_request(self, partition: int) -> None:
        blob = self._container.get_blob_client(
            f"{REQUESTS}/{self.names.control_queues[partition]}")
        try:
            await blob.delete_blob()
        except AzureError:
            pass  # it goes stale on its own

    # --- owned partitions --------------------------------------------------------------

    async def renew(self) -> list[int]:
        """Renew every owned lease; return the partitions lost (no longer owned)."""
        held = list(self._held.items())
        results = await asyncio.gather(*(self._renew(p, h) for p, h in held))
        lost = [p for (p, _), ok in zip(held, results, strict=True) if not ok]
        for partition in lost:
            self._held.pop(partition, None)
        return lost

    async def release(self, partition: int) -> None:
        self._requested.pop(partition, None)
        held = self._held.pop(partition, None)
        if held is not None:
            await self._release(partition, held)

    async def release_all(self) -> None:
        held = list(self._held.items())
        self._held.clear()
        await asyncio.gather(*(self._release(p, h) for p, h in held))
        forget_lease_identity(self.owner_id, self.hub_name)

    # --- one partition -----------------------------------------------------------------

    async def _try_acquire(self, partition: int) -> bool:
        blob = self._blobs[partition]
        if partition not in self._blob_exists:
            await self._ensure_blob(partition, blob)
            self._blob_exists.add(partition)
        lease = BlobLeaseClient(blob, lease_id=str(uuid.UUID(self.process_id)))
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
        log.debug("Acquired partition %d (%s) as %s", partition,
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
        # The body is for people and tools (the legacy layout's fields); the metadata
        # names the process, which balancing counts by. A failure only delays balancing.
        try:
            old = json.loads(await (await blob.download_blob()).readall())
            held.epoch = int(old.get("Epoch") or 0) + 1
            await blob.upload_blob(self._body(partition, token=held.lease.id,
                                              epoch=held.epoch),
                                   overwrite=True, lease=held.lease,
                                   metadata={"process": self.process_id,
                                             "owner": _ascii(self.owner_id)})
        except (AzureError, ValueError) as exc:
            log.debug("Could not record the owner of partition %d: %s", partition,
                      describe_error(exc))

    async def _renew(self, partition: int, held: _Held) -> bool:
        started = self.clock.monotonic()
        expires = held.renewed_at + self.lease_seconds
        try:
            await with_retries(held.lease.renew, what=f"renewing partition {partition}",
                               deadline=max(started + 1.0, min(expires, started + 5.0)))
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
            log.debug("Released partition %d", partition)
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


def _parse_time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _ascii(text: str) -> str:
    """Blob metadata values are ASCII headers."""
    return text.encode("ascii", "backslashreplace").decode("ascii")


__all__ = ["LEASE_SECONDS", "AllPartitions", "PartitionLeases", "Partitions", "Survey",
           "fair_share", "steal_from"]
