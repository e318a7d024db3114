"""DBOS Transact on SQLite (WAL journal), in this process: workflows of steps, the
fan-out as child workflows started with DBOS.start_workflow and awaited by the parent.

Run by bench/durable.py: `python -m bench.peers.dbos_sqlite SPEC_JSON`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.peers.base import emit, log, measure, own_peak_rss_mb, read_shapes, unavailable
from bench.shapes import BURST, CHAIN, HELLO_CITIES, LATENCY, Shape

NAME = "dbos"


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

    return {"hello": hello_cities, "chain": chain, "fan_out": fan_out}


def _one_run(dbos_type: Any, flows: dict[str, Any], shape: Shape) -> None:
    if shape.kind == LATENCY:
        dbos_type.start_workflow(flows["hello"]).get_result()
    elif shape.kind == BURST:
        handles = [dbos_type.start_workflow(flows["hello"]) for _ in range(shape.size)]
        for handle in handles:
            handle.get_result()
    elif shape.kind == CHAIN:
        dbos_type.start_workflow(flows["chain"], shape.size).get_result()
    else:
        dbos_type.start_workflow(flows["fan_out"], shape.size).get_result()


async def run(shapes: list[Shape]) -> dict[str, Any]:
    describe = {"name": NAME, "version": f"dbos {_version()}",
                "setup": "DBOS Transact in process, SQLite system database (WAL)"}
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
        DBOS(config={"name": "funclocal-bench", "system_database_url": f"sqlite:///{database}",
                     "log_level": "WARNING"})
        try:
            DBOS.launch()
            results: dict[str, Any] = {}
            for shape in shapes:
                log(f"dbos: {shape.title} ...")

                async def once(shape: Shape = shape) -> None:
                    await asyncio.to_thread(_one_run, DBOS, flows, shape)

                results[shape.key] = await measure(shape, once)
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
