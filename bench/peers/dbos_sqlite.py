"""DBOS Transact on SQLite (WAL journal), in this process: workflows of steps, the
fan-out as child workflows started with DBOS.start_workflow and awaited by the parent.

The orchestration shapes: retries are the step's own (retries_allowed, the same fixed
interval and attempts as the others; DBOS retries a step in the process that runs it,
without a durable timer); sub-orchestrations are child workflows of one step each, started
and awaited like the fan-out; DBOS has no continue-as-new (its workflows do not replay a
growing history), so that shape is its closest equivalent, one workflow looping over the
generations' steps, and says so in the table.

The entity shapes: DBOS has no entities; their counter is a workflow that receives its
operations as messages (DBOS.send to it, DBOS.recv in it). signals1000 sends from
concurrent client threads to one counter workflow, which ends when it counted them all;
calls1000 is one workflow that sends each "add" to a counter workflow and waits for the
new count that the counter sends back (a round trip of two messages). On SQLite, DBOS
finds new messages by polling (notification_listener_polling_interval_sec, default 1 s,
which would make every wait for a message up to a second): the benchmark sets it to
NOTIFICATION_POLL_S, as the Temporal peer shortens its server's timer settings.

Run by bench/durable.py: `python -m bench.peers.dbos_sqlite SPEC_JSON`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.peers.base import (
    emit,
    log,
    measure,
    own_peak_rss_mb,
    planned_failures_unlogged,
    read_shapes,
    unavailable,
)
from bench.shapes import (
    BURST,
    CALLS,
    CHAIN,
    CONTINUE,
    FANOUT,
    HELLO_CITIES,
    LATENCY,
    RETRY,
    RETRY_ATTEMPTS,
    RETRY_FAILURES,
    RETRY_INTERVAL_S,
    SIGNALS,
    SUBORCH,
    Shape,
)

NAME = "dbos"
NOTIFICATION_POLL_S = 0.01
MESSAGE_TIMEOUT_S = 120.0  # a counter or caller that waits longer for a message fails
NOTES = {SIGNALS: "DBOS.send from client threads to one counter workflow (DBOS.recv), "
                  "which ends when it counted them all",
         CALLS: "a workflow sending each operation to a counter workflow and receiving "
                "the new count back (DBOS.send/DBOS.recv both ways)",
         CONTINUE: "no continue-as-new in DBOS: one workflow looping over the "
                   "generations' steps (its closest equivalent)",
         RETRY: "DBOS retries a step in process (a sleep), not through a durable timer"}


def _version() -> str | None:
    try:
        return metadata.version("dbos")
    except metadata.PackageNotFoundError:
        return None


def _register(dbos_type: Any) -> dict[str, Any]:
    """The shapes as DBOS workflows; registered before launch, as DBOS requires."""

    @dbos_type.step()
    def say_hello(city: str) -> str:
        return f"Hello {city}!"

    @dbos_type.step()
    def step(n: int) -> int:
        return n + 1

    attempts: dict[str, int] = {}  # attempts so far of each unfinished flaky_step call

    @dbos_type.step(retries_allowed=True, interval_seconds=RETRY_INTERVAL_S,
                    max_attempts=RETRY_ATTEMPTS, backoff_rate=1.0)
    def flaky_step(workflow_id: str, n: int) -> int:
        """Fails the first RETRY_FAILURES attempts of a call; returns the attempts it
        took (as the funclocal bench app's)."""
        key = f"{workflow_id}/{n}"
        attempt = attempts.get(key, 0) + 1
        if attempt <= RETRY_FAILURES:
            attempts[key] = attempt
            raise RuntimeError(f"step {n} fails on attempt {attempt}, as planned")
        attempts.pop(key, None)
        return attempt

    @dbos_type.workflow()
    def hello_cities() -> list[str]:
        return [say_hello(city) for city in HELLO_CITIES]

    @dbos_type.workflow()
    def chain(count: int) -> int:
        return sum(step(n) for n in range(count))

    @dbos_type.workflow()
    def fan_out(count: int) -> int:
        handles = [dbos_type.start_workflow(step, n) for n in range(count)]
        return sum(handle.get_result() for handle in handles)

    @dbos_type.workflow()
    def retry_chain(count: int) -> int:
        me = dbos_type.workflow_id
        return sum(flaky_step(me, n) for n in range(count))

    @dbos_type.workflow()
    def one_step(n: int) -> int:
        return step(n)

    @dbos_type.workflow()
    def sub_orchestrations(count: int) -> int:
        handles = [dbos_type.start_workflow(one_step, n) for n in range(count)]
        return sum(handle.get_result() for handle in handles)

    @dbos_type.workflow()
    def generations(count: int) -> int:
        n = 0
        while n < count:
            n = step(n)
        return n

    @dbos_type.workflow()
    def counter(target: int) -> int:
        """SIGNALS: counts the "add" messages until it reached `target`."""
        count = 0
        while count < target:
            count += _message(dbos_type, "add")
        return count

    @dbos_type.workflow()
    def counter_entity(target: int) -> int:
        """CALLS: adds each request's amount, then answers the caller the new count."""
        count = 0
        while count < target:
            request = _message(dbos_type, "call")
            count += request["amount"]
            dbos_type.send(request["caller"], count, "result")
        return count

    @dbos_type.workflow()
    def entity_calls(count: int) -> int:
        entity = dbos_type.start_workflow(counter_entity, count)
        me = dbos_type.workflow_id
        value = 0
        for _ in range(count):
            dbos_type.send(entity.workflow_id, {"caller": me, "amount": 1}, "call")
            value = _message(dbos_type, "result")
        if entity.get_result() != value:
            raise RuntimeError(f"the counter ended at {entity.get_result()!r}, "
                               f"its last answer was {value!r}")
        return value

    return {"hello": hello_cities, CHAIN: chain, FANOUT: fan_out, RETRY: retry_chain,
            SUBORCH: sub_orchestrations, CONTINUE: generations, SIGNALS: counter,
            CALLS: entity_calls}


def _message(dbos_type: Any, topic: str) -> Any:
    message = dbos_type.recv(topic, timeout_seconds=MESSAGE_TIMEOUT_S)
    if message is None:
        raise RuntimeError(f"no {topic!r} message within {MESSAGE_TIMEOUT_S:g} s")
    return message


def _one_run(dbos_type: Any, flows: dict[str, Any], shape: Shape) -> None:
    if shape.kind == LATENCY:
        dbos_type.start_workflow(flows["hello"]).get_result()
    elif shape.kind == BURST:
        handles = [dbos_type.start_workflow(flows["hello"]) for _ in range(shape.size)]
        for handle in handles:
            handle.get_result()
    elif shape.kind == SIGNALS:
        handle = dbos_type.start_workflow(flows[SIGNALS], shape.size)

        def one_client(count: int) -> None:
            for _ in range(count):
                dbos_type.send(handle.workflow_id, 1, "add")

        with ThreadPoolExecutor(len(shape.client_shares())) as clients:
            list(clients.map(one_client, shape.client_shares()))
        result = handle.get_result()
        if result != shape.expected_result():
            raise RuntimeError(f"{shape.key} counted {result!r}, "
                               f"not {shape.expected_result()!r}")
    else:
        result = dbos_type.start_workflow(flows[shape.kind], shape.size).get_result()
        expected = shape.expected_result()
        if expected is not None and result != expected:
            raise RuntimeError(f"{shape.key} returned {result!r}, not {expected!r}")


async def run(shapes: list[Shape]) -> dict[str, Any]:
    describe = {"name": NAME, "version": f"dbos {_version()}",
                "setup": "DBOS Transact in process, SQLite system database (WAL), "
                         f"notification_listener_polling_interval_sec={NOTIFICATION_POLL_S:g} "
                         "(default 1 s: every wait for a message of the entity shapes "
                         "would take up to a second)"}
    try:
        from dbos import DBOS
    except ImportError as exc:
        return unavailable(NAME, f"dbos is not installed ({exc}); `make bench` installs it",
                           **describe)
    with tempfile.TemporaryDirectory(prefix="dbos-bench-") as tmp:
        database = Path(tmp) / "dbos.sqlite"
        with sqlite3.connect(database) as connection:  # WAL sticks to the file
            connection.execute("PRAGMA journal_mode=WAL")
        flows = _register(DBOS)
        planned_failures_unlogged(logging.getLogger("dbos"))
        DBOS(config={"name": "funclocal-bench", "system_database_url": f"sqlite:///{database}",
                     "log_level": "WARNING",
                     "notification_listener_polling_interval_sec": NOTIFICATION_POLL_S})
        try:
            DBOS.launch()
            results: dict[str, Any] = {}
            for shape in shapes:
                log(f"dbos: {shape.title} ...")

                async def once(shape: Shape = shape) -> None:
                    await asyncio.to_thread(_one_run, DBOS, flows, shape)

                results[shape.key] = await measure(shape, once)
                if shape.kind in NOTES:
                    results[shape.key]["note"] = NOTES[shape.kind]
            return {**describe, "available": True, "shapes": results,
                    "client_peak_rss_mb": round(own_peak_rss_mb(), 1)}
        except Exception as exc:  # noqa: BLE001 - reported in the table, with the reason
            return unavailable(NAME, f"{type(exc).__name__}: {exc}", **describe)
        finally:
            DBOS.destroy()


def main() -> None:
    emit(asyncio.run(run(read_shapes(sys.argv))))


if __name__ == "__main__":
    main()
