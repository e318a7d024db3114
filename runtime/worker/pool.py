"""The worker pool: spawn worker processes (process.py), route invocations to them,
replace the ones that die.

User code runs only in these processes, so a crash, `os._exit`, a blocking call or a
runaway loop in the app never stalls the host's event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
import uuid
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime import console
from runtime.errors import (
    FunctionInvocationError,
    InvocationTimeout,
    WorkerError,
)
from runtime.functions import FunctionIndex
from runtime.worker.process import HELLO_TIMEOUT, WorkerProcess, WorkerSettings

log = console.get("worker")


class WorkerPool:
    """A fixed number of workers on one version of the app."""

    def __init__(self, script_root: Path, env: Mapping[str, str], count: int = 1,
                 settings: WorkerSettings | None = None) -> None:
        self.script_root = script_root
        self.env = dict(env)
        self.settings = settings or WorkerSettings()
        self.count = max(1, count)
        self.workers: list[WorkerProcess] = []
        self.index = FunctionIndex(())
        self._stopping = False
        self._watchers: set[asyncio.Task[None]] = set()
        self._rr = itertools.count()

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.workers if w.pid is not None]

    @property
    def sdk_versions(self) -> dict[str, str]:
        """The app's SDK packages and their versions, as its first worker found them."""
        return dict(self.workers[0].sdk_versions) if self.workers else {}

    @property
    def code_hashes(self) -> dict[str, str | None]:
        """Function name -> digest of its code, as the worker described it."""
        described = self.workers[0].functions if self.workers else []
        return {str(d.get("name")): d.get("code_hash") for d in described}

    async def start(self) -> FunctionIndex:
        """Start every worker; fails with IndexingError if the app cannot be indexed.
        Cancelled, it leaves no process behind."""
        tasks = [asyncio.create_task(self._spawn()) for _ in range(self.count)]
        try:
            await asyncio.wait(tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await self._discard(tasks)
            raise
        errors = [t.exception() for t in tasks if t.exception() is not None]
        if errors:
            await self._discard(tasks)
            raise errors[0]  # type: ignore[misc]
        self.workers = [t.result() for t in tasks]
        self.index = FunctionIndex.build(self.workers[0].functions)
        for worker in self.workers:
            self._watch(worker)
        return self.index

    @staticmethod
    async def _discard(tasks: list[asyncio.Task[WorkerProcess]]) -> None:
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if not task.cancelled() and task.exception() is None:
                await task.result().kill()

    async def _spawn(self) -> WorkerProcess:
        worker = WorkerProcess(self.script_root, self.env, self.settings)
        await worker.start()
        log.debug("Worker process started and initialized (pid %s).", worker.pid)
        return worker

    def _watch(self, worker: WorkerProcess) -> None:
        task = asyncio.create_task(self._replace_when_dead(worker))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _replace_when_dead(self, worker: WorkerProcess) -> None:
        await worker.exited.wait()
        if self._stopping or worker.retiring:
            return
        code = worker.process.returncode if worker.process else None
        log.warning("Worker process %s exited unexpectedly (code %s); starting a new one.",
                    worker.pid, code)
        if worker in self.workers:
            self.workers.remove(worker)
        delay = 0.1
        while not self._stopping:
            try:
                replacement = await self._spawn()
            except (WorkerError, OSError) as exc:
                log.error("Could not start a replacement worker: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.workers.append(replacement)
            self._watch(replacement)
            log.info("Worker process started and initialized (pid %s).", replacement.pid)
            return

    async def _available_worker(self, affinity: str | None = None) -> WorkerProcess:
        """A live worker, waiting briefly while a dead one is being replaced (or while
        every worker runs an invocation alone). With an affinity key the same key goes to
        the same worker while the set of workers is unchanged, so a worker can keep an
        orchestration's replay state warm."""
        deadline = asyncio.get_running_loop().time() + HELLO_TIMEOUT
        while True:
            live = [w for w in self.workers if not w.exited.is_set() and not w.retiring]
            usable = [w for w in live if not w.reserved]
            if usable and affinity is not None:
                chosen = live[zlib.crc32(affinity.encode("utf-8")) % len(live)]
                return chosen if not chosen.reserved else usable[0]
            if usable:
                first = next(self._rr) % len(usable)
                rotated = usable[first:] + usable[:first]
                return min(rotated, key=lambda w: w.load)
            if live:
                deadline = asyncio.get_running_loop().time() + HELLO_TIMEOUT
            if self._stopping or asyncio.get_running_loop().time() > deadline:
                raise WorkerError("No worker process is available.")
            await asyncio.sleep(0.02)

    async def _reserve_worker(self) -> WorkerProcess:
        """A live worker that runs nothing else until released: the least loaded is
        reserved at once (no new invocation goes to it), then drained of what it runs."""
        while True:
            worker = await self._available_worker()
            if worker.reserved or worker.exited.is_set():
                continue
            worker.reserved = True
            while worker.load and not worker.exited.is_set():
                await asyncio.sleep(0.02)
            if not worker.exited.is_set():
                return worker
            worker.reserved = False

    async def invoke(self, function: str, inputs: dict[str, Any], *,
                     invocation_id: str | None = None, timeout: float | None = None,
                     reason: str = "(null)", affinity: str | None = None,
                     exclusive: bool = False, quiet_failure: bool = False,
                     mode: str | None = None) -> dict[str, Any]:
        """Run a function on a worker, logging as `func start` does (with host.json's
        levels for the category `Function.<name>`). `exclusive` runs it alone in its
        worker, so that if the worker dies, this invocation is known to be the cause
        (WorkerDied.alone). `quiet_failure`: the caller reports a failure itself (an
        orchestrator's, once per instance). `mode` asks the worker for another way of
        running it ("replay-check": see worker/child/replay_check.py)."""
        shown = self.settings.log_levels.shows(f"Function.{function}", logging.INFO)
        invocation_id = invocation_id or str(uuid.uuid4())
        if shown:
            log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", function, reason,
                     invocation_id)
        started = time.perf_counter()
        outcome = "Failed"
        try:
            result = await self._call(function, inputs, invocation_id, timeout, affinity,
                                      exclusive, mode)
            outcome = "Succeeded"
            return result
        except FunctionInvocationError as exc:
            if not quiet_failure:
                log.error("Executed 'Functions.%s' failed: %s\n%s", function, exc,
                          exc.traceback_text.rstrip())
            raise
        except WorkerError as exc:
            log.error("Functions.%s: %s", function, exc)
            raise
        finally:
            if shown:
                log.info("Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)", function,
                         outcome, invocation_id, int((time.perf_counter() - started) * 1000))

    async def _call(self, function: str, inputs: dict[str, Any], invocation_id: str,
                    timeout: float | None, affinity: str | None,
                    exclusive: bool = False, mode: str | None = None) -> dict[str, Any]:
        worker = await (self._reserve_worker() if exclusive
                        else self._available_worker(affinity))
        try:
            return await worker.call(function, inputs, invocation_id=invocation_id,
                                     timeout=timeout, mode=mode)
        except InvocationTimeout:
            # The user code is still running in that worker and cannot be interrupted;
            # recycle the process, as the real host restarts on a function timeout.
            log.warning("Recycling worker %s after a function timeout.", worker.pid)
            await worker.kill()
            raise
        finally:
            if exclusive:
                worker.reserved = False

    async def reindex(self) -> FunctionIndex:
        """Import the app again in every live worker (fresh module state, the same
        processes) and return its index; IndexingError when it no longer imports."""
        live = [w for w in self.workers if not w.exited.is_set() and not w.retiring]
        if not live:
            raise WorkerError("No worker process is available.")
        described = await asyncio.gather(*(w.reindex() for w in live))
        self.index = FunctionIndex.build(described[0])
        return self.index

    async def stop(self, grace: float = 5.0) -> None:
        self._stopping = True
        await asyncio.gather(*(w.stop(grace) for w in self.workers), return_exceptions=True)
        for task in list(self._watchers):
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)


def default_worker_count(env: Mapping[str, str]) -> int:
    try:
        return max(1, int(env.get("FUNCTIONS_WORKER_PROCESS_COUNT") or os.environ.get(
            "FUNCTIONS_WORKER_PROCESS_COUNT") or 1))
    except ValueError:
        return 1
