"""The fault suite's workload and checks: mixed orchestrations started through the
management API, and what must hold afterwards (each completes with its known output, no
history event is recorded twice). The figures the suite reports are in
support/fault_figures.py (`FIGURES`, re-exported here for the tests)."""

from __future__ import annotations

import threading
import time
import urllib.error
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from azure.data.tables import TableClient
from support.durable import WEBHOOK
from support.fault_figures import FIGURES
from support.host import APPS, HostProcess, request

from runtime.storage.connection import StorageEndpoints

APP = APPS / "faults"
KINDS = ("chain", "fan", "timer", "event")
JSON = {"Content-Type": "application/json"}


def expected_output(name: str, instance_id: str) -> list[str]:
    steps = {"chain": 3, "fan": 5, "timer": 1, "event": 1}[name]
    done = [f"{instance_id}:{i}" for i in range(steps)]
    return ["go!", *done] if name == "event" else done


@dataclass
class Workload:
    """`count` instances named `{prefix}{kind}-{n}`, kinds in turn."""

    prefix: str
    count: int = 200
    acknowledged: set[str] = field(default_factory=set)
    raised: set[str] = field(default_factory=set)  # event instances sent "go"

    @property
    def instances(self) -> list[tuple[str, str]]:
        return [(KINDS[n % len(KINDS)], f"{self.prefix}{KINDS[n % len(KINDS)]}-{n}")
                for n in range(self.count)]

    def start_all(self, host: HostProcess, threads: int = 8,
                  on_acknowledged: Callable[[int], None] | None = None) -> None:
        """Start every instance; remember the starts the host acknowledged (202). Starts
        cut off by a crash are not acknowledged (they may or may not exist).
        `on_acknowledged(n)` is called after the n-th acknowledgement (n = 1, 2, ...), so a
        test can crash the host at a point counted in answered starts, not in wall time."""
        counted = threading.Lock()

        def start(item: tuple[str, str]) -> str | None:
            name, instance_id = item
            try:
                response = request("POST", host.url(
                    f"{WEBHOOK}/orchestrators/{name}/{instance_id}"), "null", JSON,
                    timeout=30)
            except (urllib.error.URLError, ConnectionError, OSError):
                return None
            if response.status != 202:
                return None
            with counted:
                self.acknowledged.add(instance_id)
                if on_acknowledged is not None:
                    on_acknowledged(len(self.acknowledged))
            return instance_id
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(start, self.instances))

    def raise_events(self, host: HostProcess,
                     found: dict[str, dict[str, Any]] | None = None) -> None:
        """Raise "go" once to every event instance that exists and is not finished (an
        instance whose start a crash cut off may appear only later, from its queued
        start message)."""
        found = self.existing(host) if found is None else found
        for name, instance_id in self.instances:
            status = found.get(instance_id)
            if name != "event" or instance_id in self.raised or status is None or \
                    status["runtimeStatus"] not in ("Pending", "Running"):
                continue
            response = request("POST", host.url(
                f"{WEBHOOK}/instances/{instance_id}/raiseEvent/go"), '"go!"', JSON)
            assert response.status == 202, (instance_id, response.status, response.text)
            self.raised.add(instance_id)

    def existing(self, host: HostProcess) -> dict[str, dict[str, Any]]:
        """Every instance of the workload that storage knows, by id (status objects)."""
        found: dict[str, dict[str, Any]] = {}
        token = ""
        while True:
            headers = {"x-ms-continuation-token": token} if token else None
            response = request("GET", host.url(
                f"{WEBHOOK}/instances/?instanceIdPrefix={self.prefix}&top=500&showInput=false"),
                None, headers)
            assert response.status == 200, response.text
            found.update({i["instanceId"]: i for i in response.json()})
            token = response.headers.get("x-ms-continuation-token") or ""
            if not token:
                return found

    def wait_all_done(self, host: HostProcess, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until every instance that exists has finished; the statuses."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.existing(host)
            self.raise_events(host, found)
            running = [i for i, s in found.items()
                       if s["runtimeStatus"] not in ("Completed", "Failed", "Terminated")]
            if not running and self.acknowledged <= set(found):
                return found
            if time.monotonic() > deadline:
                lost = sorted(self.acknowledged - set(found))
                raise AssertionError(f"not finished after {timeout:.0f} s: {running[:5]} "
                                     f"({len(running)}), lost: {lost[:5]} ({len(lost)})\n"
                                     + host.log_text()[-3000:])
            time.sleep(0.2)

    def check_outputs(self, found: dict[str, dict[str, Any]]) -> None:
        """Every acknowledged start exists and every existing instance has its output."""
        lost = self.acknowledged - set(found)
        assert not lost, f"acknowledged starts lost: {sorted(lost)[:10]} ({len(lost)})"
        kinds = dict((i, k) for k, i in self.instances)
        wrong = {i: s.get("output") for i, s in found.items()
                 if s["runtimeStatus"] != "Completed"
                 or s.get("output") != expected_output(kinds[i], i)}
        assert not wrong, f"wrong outputs: {dict(list(wrong.items())[:5])} ({len(wrong)})"


def duplicated_history_events(azurite: StorageEndpoints, hub: str, prefix: str) -> int:
    """History events recorded twice for one execution: a second ExecutionStarted or
    ExecutionCompleted, a completion or a fired timer for a task id already completed."""
    with TableClient.from_connection_string(azurite.connection_string,
                                            f"{hub}History") as table:
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        rows = list(table.query_entities(
            f"PartitionKey ge '{prefix}' and PartitionKey lt '{upper}'"))
    seen: Counter[tuple[str, str, str, Any]] = Counter()
    for row in rows:
        kind = row.get("EventType")
        if kind in ("ExecutionStarted", "ExecutionCompleted"):
            seen[(row["PartitionKey"], row.get("ExecutionId", ""), kind, None)] += 1
        elif kind in ("TaskCompleted", "TaskFailed"):
            seen[(row["PartitionKey"], row.get("ExecutionId", ""), "Task",
                  row.get("TaskScheduledId"))] += 1
        elif kind == "TimerFired":
            seen[(row["PartitionKey"], row.get("ExecutionId", ""), kind,
                  row.get("TimerId"))] += 1
    return sum(n - 1 for n in seen.values() if n > 1)


def re_executions(logs: Iterable[str]) -> int:
    """Activity executions beyond the first of each step (at-least-once)."""
    done = Counter(line.split("STEP-EXEC ", 1)[1].strip()
                   for text in logs for line in text.splitlines() if "STEP-EXEC " in line)
    return sum(n - 1 for n in done.values())


__all__ = ["APP", "FIGURES", "JSON", "Workload", "duplicated_history_events",
           "expected_output", "re_executions"]
