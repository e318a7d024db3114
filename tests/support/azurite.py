"""Azurite for the test suite: one in-memory instance per session, on free ports."""

from __future__ import annotations

import re
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from runtime.errors import AzuriteError
from runtime.storage.azurite import ManagedAzurite, find_azurite_bin
from runtime.storage.connection import (
    DEV_ACCOUNT_KEY,
    DEV_ACCOUNT_NAME,
    SERVICES,
    StorageEndpoints,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
_START_ATTEMPTS = 3
_HUB_MAX = 45


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now; all held open together so they are distinct."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def azurite_bin() -> Path:
    bin_dir = find_azurite_bin(REPO_ROOT)
    if bin_dir is None:
        # Fail, never skip: integration tests without storage would prove nothing.
        raise AzuriteError(f"Azurite is not installed: run `npm ci` in {REPO_ROOT}.")
    return bin_dir


@asynccontextmanager
async def running_azurite() -> AsyncIterator[StorageEndpoints]:
    """An in-memory Azurite on free ports, stopped on exit whatever happens."""
    bin_dir = azurite_bin()
    with tempfile.TemporaryDirectory(prefix="funclocal-azurite-") as log_dir:
        # Another process may take a free port before Azurite binds it: try a few times.
        for attempt in range(1, _START_ATTEMPTS + 1):
            azurite = ManagedAzurite(
                bin_dir, data_dir=Path(log_dir), in_memory=True,
                ports=dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True)))
            try:
                await azurite.start()
                break
            except AzuriteError:
                if attempt == _START_ATTEMPTS:
                    raise
        try:
            yield azurite.endpoints
        finally:
            await azurite.stop()


def unique_hub_name(test_name: str) -> str:
    """A fresh task hub name: letters and digits, starts with a letter, at most 45 chars."""
    prefix = "t" + uuid.uuid4().hex[:12]
    letters = re.sub(r"[^a-z0-9]", "", test_name.lower().removeprefix("test"))
    return (prefix + letters)[:_HUB_MAX]


def emulator_at(ports: list[int]) -> str:
    """A connection string for the storage emulator on these (blob, queue, table) ports:
    local, so the host manages Azurite there (starts it when nothing answers)."""
    blob, queue, table = ports
    return (f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};"
            f"AccountKey={DEV_ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{blob}/{DEV_ACCOUNT_NAME};"
            f"QueueEndpoint=http://127.0.0.1:{queue}/{DEV_ACCOUNT_NAME};"
            f"TableEndpoint=http://127.0.0.1:{table}/{DEV_ACCOUNT_NAME};")


PARTITIONS = 4  # the default partitionCount of the test apps' task hubs


def lease_holders(azurite: StorageEndpoints, hub: str) -> dict[int, str | None]:
    """Partition -> the process id leasing it (None when free), read from storage."""
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    holders: dict[int, str | None] = {p: None for p in range(PARTITIONS)}
    with service:
        container = service.get_container_client(f"{hub.lower()}-leases")
        for blob in container.list_blobs(name_starts_with="default/", include=["metadata"]):
            partition = int(blob.name.rsplit("-", 1)[1])
            if blob.lease.state == "leased":
                holders[partition] = (blob.metadata or {}).get("process")
    return holders
