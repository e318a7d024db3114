"""What the test environments of one process share, so that a test after the first
pays for neither: worker processes kept warm per app, and one managed Azurite.

A warm worker is handed to one environment at a time and imports the app again before
each (fresh module state in the same process); one that died is replaced. Everything
here lives in the hosts' event loop (`loop.py`) and is stopped by `shutdown` (the pytest
plugin calls it at the end of the session; `atexit` otherwise).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import socket
import tempfile
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from runtime import console
from runtime.errors import AzuriteError
from runtime.storage.azurite import ManagedAzurite
from runtime.storage.azurite_install import find_azurite, not_installed_advice
from runtime.storage.connection import SERVICES, StorageEndpoints
from runtime.testing import loop
from runtime.worker.pool import WorkerPool
from runtime.worker.process import WorkerSettings

log = console.get("testing")

_START_ATTEMPTS = 3  # free ports can be taken by someone else before Azurite binds them


# --- warm workers -----------------------------------------------------------------------


@dataclass(frozen=True)
class PoolKey:
    """Workers can be shared by environments that agree on all of this."""

    script_root: Path
    environment: tuple[tuple[str, str], ...]  # the workers' environment variables
    count: int
    python: str  # the interpreter the workers run on


class WarmPools:
    def __init__(self) -> None:
        self.idle: dict[PoolKey, list[WorkerPool]] = {}
        self.leased: set[WorkerPool] = set()

    async def lease(self, key: PoolKey, env: Mapping[str, str],
                    settings: WorkerSettings | None = None) -> WorkerPool:
        """Workers on the app of `key`, with the app freshly imported: a warm pool, or
        new processes started with `settings`. IndexingError when the app does not
        import."""
        while self.idle.get(key):
            pool = self.idle[key].pop()
            if not pool.workers or any(w.exited.is_set() for w in pool.workers):
                await pool.stop(0.0)  # a worker died and was not replaced yet: start over
                continue
            try:
                await pool.reindex()
            except BaseException:
                await pool.stop(0.0)
                raise
            self.leased.add(pool)
            return pool
        pool = WorkerPool(key.script_root, env, key.count, settings)
        await pool.start()
        self.leased.add(pool)
        return pool

    async def release(self, key: PoolKey, pool: WorkerPool, *, keep: bool = True) -> None:
        """Give workers back for the next environment (or stop them)."""
        self.leased.discard(pool)
        if keep and pool.workers and not any(w.exited.is_set() for w in pool.workers):
            self.idle.setdefault(key, []).append(pool)
        else:
            await pool.stop(0.0)

    async def close(self) -> None:
        pools = [p for group in self.idle.values() for p in group] + list(self.leased)
        self.idle.clear()
        self.leased.clear()
        await asyncio.gather(*(p.stop(1.0) for p in pools), return_exceptions=True)


# --- Azurite ------------------------------------------------------------------------------


def locate_azurite(app: Path | None = None,
                   environ: Mapping[str, str] = os.environ) -> Path:
    """The folder of Azurite's three service scripts, found as `funclocal start` finds
    it (`storage/azurite_install.py`: funclocal's checkout, at or above the app's folder,
    PATH, the per-user cache). AzuriteError saying how to get it otherwise."""
    found = find_azurite(app or Path.cwd(), environ)
    if found is not None:
        return found.bin_dir
    raise AzuriteError(
        "The test environment on Azurite needs Azurite, which was not found: "
        f"{not_installed_advice()}; or pass --funclocal-azurite-connection with the "
        "connection string of an emulator already running, or use the in-memory "
        "environment.")


def _free_ports(count: int) -> list[int]:
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


class SharedAzurite:
    """An in-memory Azurite on free ports, started when first asked for."""

    def __init__(self) -> None:
        self.azurite: ManagedAzurite | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._lock: asyncio.Lock | None = None

    async def endpoints(self, app: Path | None = None) -> StorageEndpoints:
        """The running Azurite's endpoints, starting it first if needed (AzuriteError
        when it cannot start)."""
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self.azurite is None:
                self.azurite = await self._start(locate_azurite(app))
            return self.azurite.endpoints

    async def _start(self, bin_dir: Path) -> ManagedAzurite:
        self._folder = tempfile.TemporaryDirectory(prefix="funclocal-test-azurite-")
        for attempt in range(1, _START_ATTEMPTS + 1):
            azurite = ManagedAzurite(
                bin_dir, data_dir=Path(self._folder.name), in_memory=True,
                ports=dict(zip(SERVICES, _free_ports(len(SERVICES)), strict=True)))
            try:
                await azurite.start()
            except AzuriteError:
                if attempt == _START_ATTEMPTS:
                    raise
                continue
            log.info("Started Azurite for the tests (%s).", azurite.endpoints.blob_url)
            return azurite
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self.azurite is not None:
            await self.azurite.stop()
            self.azurite = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None


pools = WarmPools()
azurite = SharedAzurite()


async def _close_all() -> None:
    await pools.close()
    await azurite.close()


def shutdown() -> None:
    """Stop the warm workers and the managed Azurite of this process (safe to call more
    than once; environments opened afterwards start them again)."""
    try:
        loop.run(_close_all(), timeout=30)
    except Exception:  # noqa: BLE001 - best effort at exit
        log.debug("shutting the test resources down failed", exc_info=True)


atexit.register(shutdown)

__all__ = ["PoolKey", "SharedAzurite", "WarmPools", "azurite", "locate_azurite", "pools",
           "shutdown"]
