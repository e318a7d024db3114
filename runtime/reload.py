"""Hot reload: watch the app, and swap in each saved version once it has indexed cleanly.

One reload runs at a time. A change that arrives while a reload is still indexing cancels
it (its workers are killed) and the newest files are indexed instead, so versions never
interleave. A version that cannot be indexed is reported and the running one keeps
serving. The swap itself is `Versions.commit`: the HTTP server, storage clients and
partition leases stay up, and the replaced workers finish what they are running.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from runtime import console
from runtime.errors import HostError, IndexingError
from runtime.functions import FunctionIndex
from runtime.versions import AppVersion, IndexChanges, Versions, compare
from runtime.watch import ChangeSet, FileWatcher, WatchPlan

log = console.get("reload")

AFFECTED_STATUSES = ("Running", "Suspended")
LISTED_INSTANCES = 20


class Reloader:
    """Watches the files `watch_plan()` names and reloads `versions` on every change;
    `base_url()` is where people reach the host (for the function list)."""

    def __init__(self, versions: Versions, watch_plan: Callable[[], WatchPlan],
                 base_url: Callable[[], str], *, verbose: bool = False) -> None:
        self.versions = versions
        self.verbose = verbose
        self.watch_plan = watch_plan
        self.base_url = base_url
        self.watcher = FileWatcher(watch_plan())
        self.pending: ChangeSet | None = None
        self.preparing: asyncio.Task[AppVersion] | None = None
        self.wake = asyncio.Event()
        self.stopping = False
        self.tasks: set[asyncio.Task[None]] = set()
        self.config_unapplied = False  # a config change whose reload failed

    async def start(self) -> None:
        try:
            await self.watcher.start()
        except OSError as exc:
            log.error("Cannot watch %s for changes (%s); reload is off.",
                      self.versions.script_root, exc)
            await self.watcher.stop()
            return
        self._spawn(self._watch_loop())
        self._spawn(self._reload_loop())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def stop(self) -> None:
        self.stopping = True
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.watcher.stop()

    # -- when ------------------------------------------------------------------------

    async def _watch_loop(self) -> None:
        async for changes in self.watcher.changes():
            self.pending = changes.merge(self.pending)
            if self.preparing is not None and not self.preparing.done():
                # The newest files win: the version still indexing is already stale.
                self.preparing.cancel()
            self.wake.set()

    async def _reload_loop(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.pending is not None:
                changes, self.pending = self.pending, None
                await self._reload(changes)

    async def _reload(self, changes: ChangeSet) -> None:
        if self.config_unapplied:
            changes, self.config_unapplied = changes.merge(ChangeSet(config=True)), False
        started = time.perf_counter()
        what = "Configuration" if changes.config else "Code"
        log.info("%s change detected (%s); reloading...", what, changes.describe())
        preparing = self.preparing = asyncio.create_task(
            self.versions.prepare(config_changed=changes.config))
        try:
            version = await preparing
        except asyncio.CancelledError:
            if self.stopping or not preparing.cancelled():
                raise
            # Superseded: the next round covers these changes too.
            self.pending = changes.merge(self.pending)
            log.info("Newer changes arrived while indexing; reloading them instead.")
            return
        except (HostError, OSError) as exc:
            self.config_unapplied = changes.config
            self._report_failure(exc)
            return
        finally:
            self.preparing = None
        prepared = time.perf_counter()
        previous = await self.versions.commit(version)
        old_index = previous.index if previous else FunctionIndex(())
        old_hashes = previous.pool.code_hashes if previous else {}
        found = compare(old_index, old_hashes, version.index, version.pool.code_hashes)
        self._print_changes(found, everything=changes.config or previous is None)
        pids = version.pool.pids
        done = time.perf_counter()
        log.info("Reloaded in %d ms (worker process%s %s).", (done - started) * 1000,
                 "" if len(pids) == 1 else "es", ", ".join(map(str, pids)))
        log.debug("Reload timings: new workers indexed in %d ms, switched over in %d ms.",
                  (prepared - started) * 1000, (done - prepared) * 1000)
        if changes.config:
            await self.watcher.set_plan(self.watch_plan())
        if found.changed_orchestrators or found.removed_orchestrators:
            self._spawn(self._report_instances(found))

    # -- what ------------------------------------------------------------------------

    @staticmethod
    def _report_failure(exc: Exception) -> None:
        message = str(exc)
        if isinstance(exc, OSError):
            message = f"Could not start a worker process: {exc}"
        text = f"Reload failed; the previous version keeps serving. {message}"
        traceback_text = exc.traceback_text if isinstance(exc, IndexingError) else None
        if traceback_text:
            text += "\n" + traceback_text.rstrip()
        log.error("%s", text)

    def _print_changes(self, found: IndexChanges, *, everything: bool) -> None:
        current = self.versions.current
        assert current is not None
        if everything:
            # Settings may move every URL (routePrefix): show the whole list again.
            shown = list(current.index.functions)
            title = "Functions:"
        else:
            shown = [*found.added, *found.changed]
            title = "Functions changed:"
        if not shown and not found.removed and not everything:
            return
        lines = ["", title, "", *console.function_lines(shown, self.base_url(),
                                                          current.config.route_prefix)]
        if everything:
            lines += console.disabled_lines(current.index.disabled)
        disabled = {spec.name for spec in current.index.disabled}
        for name in found.removed:
            if name not in disabled:
                lines += [f"\t{name}: removed", ""]
        print("\n".join(lines), flush=True)

    async def _report_instances(self, found: IndexChanges) -> None:
        """The running instances of orchestrators whose code changed or went away: on
        their next replay the new code must match their history. Removed ones are
        listed; changed ones are replayed on the new code (`reload_check.py`)."""
        durable = self.versions.durable
        if durable is None:
            return
        from runtime.durable.client import InstanceQuery

        try:
            rows, _ = await durable.services.client.list_instances(
                InstanceQuery(statuses=AFFECTED_STATUSES, show_input=False))
        except HostError as exc:
            log.warning("Could not list the running orchestration instances: %s", exc)
            return
        by_name: dict[str, list[str]] = {}
        for row in rows:
            by_name.setdefault(str(row.get("name") or "").lower(), []).append(
                str(row.get("instanceId")))
        for name in found.removed_orchestrators:
            ids = sorted(by_name.get(name.lower(), []))
            if ids:
                log.warning("%s", _affected_message(name, "was removed", ids))
        changed = {name: sorted(by_name[name.lower()]) for name in found.changed_orchestrators
                   if by_name.get(name.lower())}
        current = self.versions.current
        if changed and current is not None:
            # Replay them on the new code now, and name the ones it would break.
            from runtime.reload_check import check_changed

            await check_changed(durable.services, current, changed, self.versions.script_root)


def _affected_message(name: str, what: str, ids: list[str]) -> str:
    listed = ", ".join(ids[:LISTED_INSTANCES])
    if len(ids) > LISTED_INSTANCES:
        listed += f" and {len(ids) - LISTED_INSTANCES} more"
    count = f"{len(ids)} running instance{'' if len(ids) == 1 else 's'}"
    return (f"Orchestrator '{name}' {what}; {count} will fail when they next run: "
            f"{listed}")
