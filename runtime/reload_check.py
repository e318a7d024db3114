"""After a reload that changed orchestrators: replay their running instances on the new
code and name the ones the change would break, before they next run.

The check is `funclocal replay`'s (`durable/replaycheck.py`), run on the new version's
workers; it only reads, and the instances go on as they would have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from runtime import console
from runtime.durable.app import AppFunctions
from runtime.durable.replaycheck import RecordedHistory, ReplayChecker, ReplayResult
from runtime.durable.services import DurableServices
from runtime.errors import HostError
from runtime.versions import AppVersion

log = console.get("reload")

LISTED = 20


async def check_changed(services: DurableServices, version: AppVersion,
                        instances: Mapping[str, Sequence[str]], script_root: Path) -> None:
    """Replay `instances` (orchestrator name -> running instance ids) on `version` and log
    one line per orchestrator, then one per instance that would fail. Storage errors are
    logged, never raised: a reload must not fail because of its report."""
    app = AppFunctions()
    app.set(version.index, version.pool)
    app.function_timeout = version.config.function_timeout
    checker = ReplayChecker(app, version.config.durable, clock=services.clock)
    for name, ids in instances.items():
        try:
            recorded = []
            for instance_id in ids:
                snapshot = await services.hub.load_history(instance_id)
                recorded.append(RecordedHistory.from_events(instance_id, snapshot.events,
                                                            runtime_status="Running"))
            results = await checker.check_all(recorded)
        except HostError as exc:
            log.warning("Orchestrator '%s' changed; could not replay its running instances "
                        "on the new code: %s", name, exc)
            continue
        _report(name, results, script_root)


def _report(name: str, results: list[ReplayResult], script_root: Path) -> None:
    broken = [r for r in results if not r.ok]
    count = f"{len(results)} running instance{'' if len(results) == 1 else 's'}"
    if not broken:
        log.info("Orchestrator '%s' changed; the replay check of its %s on the new code "
                 "found no divergence.", name, count)
        return
    ids = ", ".join(r.instance_id for r in broken[:LISTED])
    if len(broken) > LISTED:
        ids += f" and {len(broken) - LISTED} more"
    log.warning("Orchestrator '%s' changed; the replay check of its %s on the new code: "
                "%d would fail when they next run: %s", name, count, len(broken), ids)
    for result in broken[:LISTED]:
        where = f" ({result.location.describe(script_root)})" if result.location else ""
        log.warning("  %s: %s%s", result.instance_id, result.message, where)


__all__ = ["check_changed"]
