"""The funclocal side of the durable benchmark: the host as its own process on
bench/apps/durable_bench, a managed in-memory Azurite, instances started and polled
through the durable HTTP API, exactly as a client of the host would.

Each shape gets a fresh Azurite and a fresh host, so the host's peak RSS and every
counter belong to that shape alone. One warm-up instance runs before the measured runs.

The host runs the `runtime` package of a given checkout (FunclocalSide's `root`): this one,
or a worktree of a baseline revision, whose runs are interleaved with this one's
(run_sides; bench/durable.py --baseline).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from bench.procstat import cpu_seconds, peak_rss_mb, total_cpu
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
from runtime import __version__
from runtime.storage.azurite import ManagedAzurite, find_azurite_bin
from runtime.storage.stats import STATS_ENV

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "bench" / "apps" / "durable_bench"
WEBHOOK = "/runtime/webhooks/durabletask"
ORCHESTRATOR = {LATENCY: "hello_cities", BURST: "hello_cities", CHAIN: "chain",
                FANOUT: "fan_out", RETRY: "retry_chain", SUBORCH: "sub_orchestrations",
                CONTINUE: "generations", CALLS: "entity_calls"}
ENTITY = "counter"  # the bench app's counter entity (SIGNALS, CALLS)
# The functions each shape needs in the bench app beyond hello_cities (a baseline
# revision's app may predate some: those shapes are not run on it).
NEEDS = {RETRY: ("retry_chain", "flaky_step"), SUBORCH: ("sub_orchestrations", "one_step"),
         CONTINUE: ("generations",), SIGNALS: (ENTITY,), CALLS: ("entity_calls", ENTITY)}
TERMINAL = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
CALIBRATION_POLLS = 10
RETRY_ALLOWANCE = 30.0  # a retry may take this many times its interval before a run fails
START_TIMEOUT = 60.0


class BenchError(Exception):
    """The host or a workflow misbehaved: the run has no figure."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def host_environment(root: Path) -> dict[str, str]:
    """The environment of a host that runs `root`'s runtime package (see HostUnderTest)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNCTIONS_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(root), *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)])
    return env


@dataclass
class Snapshot:
    storage: Counter[str]
    host_cpu: float
    worker_cpu: float
    azurite_cpu: dict[str, float]


@dataclass
class RunResult:
    wall_s: float
    server_s: float | None
    polls: int
    storage: dict[str, float]
    host_cpu_s: float
    worker_cpu_s: float
    azurite_cpu_s: dict[str, float]
    instance_ids: list[str] = field(default_factory=list)  # SIGNALS: the entity keys
    result: Any = None  # what the run's workflow returned (SIGNALS: the counter read)


class HostUnderTest:
    """One `funclocal start` process on the bench app, talking to a given Azurite.

    `root` is the checkout whose `runtime` package the host runs: the host starts with
    that directory as its working directory and first on PYTHONPATH, so its own package
    wins over the editable install (`python -m` puts the working directory first on
    sys.path, and the workers, started in the app's directory, inherit PYTHONPATH)."""

    def __init__(self, connection_string: str, log_file: TextIO, root: Path = REPO,
                 app: Path = APP) -> None:
        self.port = _free_port()
        env = host_environment(root)
        env.update({"AzureWebJobsStorage": connection_string, STATS_ENV: "1"})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runtime", "start", "--script-root", str(app),
             "--port", str(self.port), "--no-reload", "--no-azurite"],
            cwd=str(root), env=env, stdin=subprocess.DEVNULL, stdout=log_file,
            stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"

    async def wait_running(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"the host exited with code {self.process.returncode}")
            try:
                status = await self.status(session)
                if status.get("state") == "Running":
                    return
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.05)
        raise BenchError(f"the host did not start within {START_TIMEOUT:g} s")

    async def status(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        async with session.get(self.base + "/admin/host/status") as response:
            return dict(await response.json())

    async def stop(self) -> None:
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, 30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)


class Client:
    """Start instances and wait for them through the durable HTTP API."""

    def __init__(self, host: HostUnderTest, session: aiohttp.ClientSession,
                 poll: float) -> None:
        self.host = host
        self.session = session
        self.poll = poll
        self.polls = 0

    async def start(self, orchestrator: str, payload: int | None = None) -> str:
        url = f"{self.host.base}{WEBHOOK}/orchestrators/{orchestrator}"
        body = None if payload is None else json.dumps({"count": payload})
        async with self.session.post(url, data=body, headers={
                "Content-Type": "application/json"}) as response:
            if response.status != 202:
                raise BenchError(f"starting {orchestrator} answered {response.status}: "
                                 f"{(await response.text())[:300]}")
            return str((await response.json())["id"])

    async def status(self, instance_id: str, history: bool = False) -> dict[str, Any]:
        url = f"{self.host.base}{WEBHOOK}/instances/{instance_id}"
        if history:
            url += "?showHistory=true&showInput=false"
        else:
            self.polls += 1
        async with self.session.get(url) as response:
            if response.status not in (200, 202):
                raise BenchError(f"status of {instance_id} answered {response.status}")
            return dict(await response.json())

    async def signal(self, entity: str, key: str, operation: str, value: Any) -> None:
        """One signal through the management API (POST entities/{name}/{key}?op=), its
        input JSON-encoded as the SDK's client posts it: the Python SDK's entity decodes
        an operation's input twice, so the body for the number 1 is the JSON text "1"."""
        url = f"{self.host.base}{WEBHOOK}/entities/{entity}/{key}?op={operation}"
        async with self.session.post(url, data=json.dumps(json.dumps(value)), headers={
                "Content-Type": "application/json"}) as response:
            if response.status != 202:
                raise BenchError(f"signalling {entity}/{key} answered {response.status}: "
                                 f"{(await response.text())[:300]}")

    async def read_entity(self, entity: str, key: str) -> Any:
        """The entity's state (GET entities/{name}/{key}), None while it does not exist;
        counted as a status poll."""
        self.polls += 1
        url = f"{self.host.base}{WEBHOOK}/entities/{entity}/{key}"
        async with self.session.get(url) as response:
            if response.status == 404:
                return None
            if response.status != 200:
                raise BenchError(f"reading {entity}/{key} answered {response.status}: "
                                 f"{(await response.text())[:300]}")
            return await response.json()

    async def wait_entity(self, entity: str, key: str, expected: int,
                          timeout: float) -> int:
        """Poll the entity until its state is `expected`: more is a failure at once
        (operations applied twice), and so is a state still short of it at the deadline
        (operations lost or stalled)."""
        deadline = time.monotonic() + timeout
        while True:
            state = await self.read_entity(entity, key)
            if state == expected:
                return expected
            if not isinstance(state, (int, type(None))):
                raise BenchError(f"the counter {entity}/{key} reads {state!r}, not a count")
            if state is not None and state > expected:
                raise BenchError(f"the counter {entity}/{key} reads {state}, more than the "
                                 f"{expected} signals sent: operations applied twice")
            if time.monotonic() > deadline:
                raise BenchError(f"the counter {entity}/{key} reads {state!r} after "
                                 f"{timeout:g} s, not the {expected} signals sent")
            await asyncio.sleep(self.poll)

    async def wait_all(self, instance_ids: list[str], timeout: float) -> dict[str, Any]:
        """Poll the oldest unfinished instance until each one is done: one request per
        instance plus one per poll interval, whatever the count. The outputs by id."""
        deadline = time.monotonic() + timeout
        pending = list(instance_ids)
        outputs: dict[str, Any] = {}
        while pending:
            status = await self.status(pending[0])
            state = status.get("runtimeStatus")
            if state in TERMINAL:
                if state != "Completed":
                    raise BenchError(f"instance {pending[0]} ended {state}: "
                                     f"{str(status.get('output'))[:300]}")
                outputs[pending.pop(0)] = status.get("output")
                continue
            if time.monotonic() > deadline:
                raise BenchError(f"{len(pending)} instance(s) not done after {timeout:g} s")
            await asyncio.sleep(self.poll)
        return outputs

    async def server_span(self, instance_ids: list[str]) -> float | None:
        """From the first ExecutionStarted to the last ExecutionCompleted, by the
        history's timestamps (the status API's times have whole seconds only)."""
        starts: list[datetime] = []
        ends: list[datetime] = []
        for instance_id in instance_ids:
            events = (await self.status(instance_id, history=True)).get("historyEvents") or []
            for event in events:
                stamp = event.get("Timestamp")
                if not isinstance(stamp, str):
                    continue
                when = _parse_time(stamp)
                if event.get("EventType") == "ExecutionStarted":
                    starts.append(when)
                elif event.get("EventType") == "ExecutionCompleted":
                    ends.append(when)
        if not starts or len(ends) != len(instance_ids):
            return None
        return (max(ends) - min(starts)).total_seconds()


def _parse_time(stamp: str) -> datetime:
    """History timestamps: UTC, with up to 7 fractional digits (more than Python takes)."""
    text = stamp.strip().rstrip("Z")
    if "." in text:
        whole, fraction = text.split(".", 1)
        text = f"{whole}.{fraction[:6].ljust(6, '0')}"
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


async def _signal_run(shape: Shape, client: Client, key: str,
                      timeout: float) -> tuple[float, list[str], Any]:
    """SIGNALS: the clients send their signals at once, each one after the other, to a
    fresh counter; the run ends when reading the counter shows exactly one per signal."""

    async def one_client(count: int) -> None:
        for _ in range(count):
            await client.signal(ENTITY, key, "add", 1)

    started = time.perf_counter()
    await asyncio.gather(*(one_client(share) for share in shape.client_shares()))
    count = await client.wait_entity(ENTITY, key, shape.size, timeout)
    return time.perf_counter() - started, [key], count


async def _one_run(shape: Shape, client: Client) -> tuple[float, list[str], Any]:
    """Start the shape's instance(s) and wait until all are Completed: the wall time, the
    instance ids (SIGNALS: the counter's key) and the first instance's output (SIGNALS:
    the counter's value)."""
    timeout = 120.0 + shape.activities * 0.5 + shape.backoff_s * RETRY_ALLOWANCE
    if shape.kind == SIGNALS:
        return await _signal_run(shape, client, f"{shape.key}-{uuid.uuid4().hex[:12]}",
                                 timeout)
    name = ORCHESTRATOR[shape.kind]
    started = time.perf_counter()
    if shape.kind == BURST:
        ids = list(await asyncio.gather(*(client.start(name) for _ in range(shape.size))))
    elif shape.kind == LATENCY:
        ids = [await client.start(name)]
    else:
        ids = [await client.start(name, shape.size)]
    outputs = await client.wait_all(ids, timeout)
    wall = time.perf_counter() - started
    expected = shape.expected_result()
    if expected is not None and outputs[ids[0]] != expected:
        raise BenchError(f"{name} returned {outputs[ids[0]]!r}, not {expected!r}")
    return wall, ids, outputs[ids[0]]


class FunclocalSide:
    """funclocal as one side of the benchmark: the runtime package and the bench app of the
    checkout at `root`. By default that is this checkout as it is; with --baseline, also a
    worktree of the baseline revision (`revision` then describes it, and its bench app is
    used when it has one).

    `poll`: seconds between status polls while one short instance runs; `long_poll`: for
    the shapes that take seconds, where faster polling would mostly load the host."""

    def __init__(self, poll: float = 0.02, long_poll: float = 0.05, root: Path = REPO,
                 revision: dict[str, str] | None = None) -> None:
        self.poll = poll
        self.long_poll = long_poll
        self.root = root
        own_app = root / "bench" / "apps" / "durable_bench"
        self.app = own_app if own_app.is_dir() else APP
        self.revision = revision
        # A baseline may predate the host's storage counter: its counts are then empty.
        self.counts_required = revision is None

    def missing(self, shape: Shape) -> str | None:
        """Why this side cannot run `shape`, or None: a baseline revision's bench app (or,
        when it has none, its runtime) may predate the shape's orchestrators."""
        needs = NEEDS.get(shape.kind, ())
        if self.revision is None or not needs:
            return None
        if not self.app.is_relative_to(self.root):
            return "the revision has no bench app, and its runtime predates this shape"
        source = (self.app / "function_app.py").read_text(errors="replace")
        absent = [name for name in needs if f"def {name}(" not in source]
        if absent:
            return f"its bench app has no {', '.join(absent)}"
        return None

    @property
    def label(self) -> str:
        return "funclocal" if self.revision is None else f"funclocal {self.revision['rev']}"

    def describe(self) -> dict[str, Any]:
        setup = "host + managed Azurite (in memory), real SDK in worker processes"
        if self.revision is None:
            return {"name": "funclocal", "version": __version__, "setup": setup}
        own_app = self.app.is_relative_to(self.root)
        return {"name": "funclocal", **self.revision, "setup": setup, "own_app": own_app,
                "app": str(self.app.relative_to(self.root) if own_app else self.app)}

    def probe(self) -> dict[str, str]:
        """Where the host (in `root`) and its workers (in the app's directory) import
        `runtime` from: it must be `root`'s own package, not the editable install's."""
        code = ("import runtime; print(runtime.__file__); "
                "print(getattr(runtime, '__version__', '?'))")
        found: dict[str, str] = {}
        for where, cwd in (("host", self.root), ("worker", self.app)):
            done = subprocess.run([sys.executable, "-c", code], cwd=str(cwd),
                                  env=host_environment(self.root), stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=60)
            lines = done.stdout.splitlines()
            if done.returncode != 0 or len(lines) < 2:
                raise BenchError(f"`import runtime` fails in the {where}'s directory {cwd}: "
                                 f"{done.stderr.strip()[-500:]}")
            package = Path(lines[0]).resolve().parent
            if not package.is_relative_to(self.root.resolve()):
                raise BenchError(f"the {where} would import runtime from {package}, "
                                 f"not from {self.root}")
            found = {"runtime": str(package), "version": lines[1]}
        return found


class ShapeSession:
    """One shape on one side: a fresh Azurite and a fresh host, so the host's peak RSS and
    every counter belong to that shape alone, warmed up by `open`; then `run_once` for
    each measured run and `finish` for the shape's figures. `close` stops everything."""

    def __init__(self, side: FunclocalSide, shape: Shape, stack: contextlib.AsyncExitStack,
                 host: HostUnderTest, azurite: ManagedAzurite, client: Client,
                 log_file: TextIO, log_path: Path) -> None:
        self.side = side
        self.shape = shape
        self.host = host
        self.azurite = azurite
        self.client = client
        self.runs: list[RunResult] = []
        self.poll_cost: dict[str, float] = {}
        self._stack = stack
        self._log_file = log_file
        self._log_path = log_path

    @classmethod
    async def open(cls, side: FunclocalSide, shape: Shape, bin_dir: Path) -> ShapeSession:
        stack = contextlib.AsyncExitStack()
        try:
            data = Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix="funclocal-bench-")))
            ports = {"blob": _free_port(), "queue": _free_port(), "table": _free_port()}
            azurite = ManagedAzurite(bin_dir, data_dir=data, in_memory=True, ports=ports)
            stack.push_async_callback(azurite.stop)
            await azurite.start()
            log_path = data / "host.log"
            log_file = stack.enter_context(open(log_path, "w"))
            host = HostUnderTest(azurite.endpoints.connection_string, log_file, side.root,
                                 side.app)
            stack.push_async_callback(host.stop)
            session = await stack.enter_async_context(
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))
            client = Client(host, session,
                            side.poll if shape.kind == LATENCY else side.long_poll)
            opened = cls(side, shape, stack, host, azurite, client, log_file, log_path)
            with opened._explained():
                await opened._warm_up()
            return opened
        except BaseException:
            await stack.aclose()
            raise

    async def close(self) -> None:
        await self._stack.aclose()

    @contextlib.contextmanager
    def _explained(self) -> Iterator[None]:
        """A failure names the shape and brings the end of the host's log."""
        try:
            yield
        except (BenchError, aiohttp.ClientError, OSError) as exc:
            self._log_file.flush()
            tail = self._log_path.read_text(errors="replace")[-3000:]
            raise BenchError(f"{self.shape.key}: {exc}\n--- host log ---\n{tail}") from exc

    async def _warm_up(self) -> None:
        """Worker imports, first storage connections, the code paths; then what the
        benchmark's own status polls cost."""
        session, client = self.client.session, self.client
        await self.host.wait_running(session)
        warm = await client.start("hello_cities")
        await client.wait_all([warm], 120)
        if self.shape.kind == SIGNALS:
            warm_signals = Shape("warm-up", SIGNALS, min(10, self.shape.size), 1, 0.0, "",
                                 clients=self.shape.clients)
            _, (key,), _ = await _signal_run(warm_signals, client, "warm-up", 120)
            self.poll_cost = await self._poll_cost(lambda: client.read_entity(ENTITY, key))
            return
        if self.shape.kind not in (LATENCY, BURST):
            warm = await client.start(ORCHESTRATOR[self.shape.kind], min(2, self.shape.size))
            await client.wait_all([warm], 120)
        self.poll_cost = await self._poll_cost(lambda: client.status(warm))

    async def run_once(self) -> None:
        with self._explained():
            before = await self._snapshot()
            self.client.polls = 0
            wall, ids, result = await _one_run(self.shape, self.client)
            after = await self._snapshot()
            self.runs.append(_run_result(wall, self.client.polls, ids, before, after,
                                         self.poll_cost))
            self.runs[-1].result = result

    async def finish(self) -> dict[str, Any]:
        with self._explained():
            status = await self.host.status(self.client.session)
            rss = peak_rss_mb(self.host.process.pid)
            worker_rss = [peak_rss_mb(pid) for pid in status.get("workerPids", [])]
            recheck = await self._recheck_counters() if self.shape.kind == SIGNALS else None
            # A continued-as-new instance's history is its last generation's only; the
            # signals have no orchestration.
            for run in self.runs if self.shape.kind not in (CONTINUE, SIGNALS) else ():
                run.server_s = await self.client.server_span(run.instance_ids)
        result = _shape_result(self.shape, self.runs, self.poll_cost, rss,
                               max((r for r in worker_rss if r is not None), default=None),
                               {service: peak_rss_mb(pid) for service, pid
                                in self.azurite.pids.items()})
        if self.shape.expected_result() is not None:
            result["results"] = [run.result for run in self.runs]
        if recheck is not None:
            result["results_at_end"] = recheck
        return result

    async def _recheck_counters(self) -> list[Any]:
        """SIGNALS: every run's counter still reads exactly one per signal when the shape
        ends (for all but the last run, seconds after their own end): a signal applied
        twice late would show here. The values read."""
        values = []
        for run in self.runs:
            for key in run.instance_ids:
                state = await self.client.read_entity(ENTITY, key)
                if state != self.shape.size:
                    raise BenchError(f"the counter {ENTITY}/{key} read {self.shape.size} at "
                                     f"the end of its run, and now reads {state!r}")
                values.append(state)
        return values

    async def _poll_cost(self, poll: Callable[[], Awaitable[Any]]) -> dict[str, float]:
        """Storage requests that one status poll of the bench itself costs (an instance's
        status, or for SIGNALS a read of the counter), to take out of the counts: the
        figures are the runtime's, not the benchmark's."""
        session = self.client.session
        before = Counter((await self.host.status(session)).get("storage") or {})
        for _ in range(CALIBRATION_POLLS):
            await poll()
        after = Counter((await self.host.status(session)).get("storage") or {})
        cost = {op: round((after[op] - before[op]) / CALIBRATION_POLLS, 2)
                for op in after if op.startswith("table:")}
        return {op: value for op, value in cost.items() if value >= 0.5}

    async def _snapshot(self) -> Snapshot:
        status = await self.host.status(self.client.session)
        storage = status.get("storage")
        if storage is None and self.side.counts_required:
            raise BenchError("the host reports no storage counts (is the counter wired "
                             "into Host.status?)")
        workers = [cpu_seconds(pid) for pid in status.get("workerPids", [])]
        return Snapshot(Counter(storage or {}), cpu_seconds(self.host.process.pid) or 0.0,
                        sum(w for w in workers if w is not None),
                        total_cpu(self.azurite.pids))


async def run_sides(sides: list[FunclocalSide], shapes: list[Shape]) -> list[dict[str, Any]]:
    """Every shape on every side, one result per side (as FunclocalSide.describe, plus
    `available` and either `shapes` or `reason`; `failed` when it broke; `skipped`, the
    shapes a baseline revision cannot run, by key, with the reason).

    The sides are interleaved so that whatever drifts on the machine falls on each alike:
    for each shape every side gets its own fresh Azurite and host and its warm-up, then the
    measured runs alternate between the sides, and so does the side that goes first (A B,
    B A, A B, ... and the next shape starts with B). The host that waits between its runs
    is idle; its poll loops back off. A side that fails is reported with its reason and
    left out of the remaining shapes; the others go on. A shape a side cannot run
    (FunclocalSide.missing) is skipped on that side only."""
    described: dict[int, dict[str, Any]] = {i: side.describe() for i, side in enumerate(sides)}
    bin_dir = find_azurite_bin(REPO)
    if bin_dir is None:
        return [{**described[i], "available": False,
                 "reason": "Azurite is not installed (run `npm ci`)"} for i in described]
    failures: dict[int, str] = {}

    def fail(index: int, exc: BenchError) -> None:
        log(f"{sides[index].label} failed: {exc}")
        failures[index] = str(exc)

    for index, side in enumerate(sides):
        try:
            described[index].update(await asyncio.to_thread(side.probe))
        except BenchError as exc:
            fail(index, exc)
    figures: list[dict[str, Any]] = [{} for _ in sides]
    skipped: list[dict[str, str]] = [{} for _ in sides]
    for number, shape in enumerate(shapes):
        live = []
        for i in range(len(sides)):
            reason = None if i in failures else sides[i].missing(shape)
            if reason is not None:
                log(f"{sides[i].label}: {shape.title}: not run, {reason}")
                skipped[i][shape.key] = reason
            elif i not in failures:
                live.append(i)
        if number % 2:
            live.reverse()
        sessions: dict[int, ShapeSession] = {}
        try:
            for i in live:
                log(f"{sides[i].label}: {shape.title} ...")
                try:
                    sessions[i] = await ShapeSession.open(sides[i], shape, bin_dir)
                except BenchError as exc:
                    fail(i, exc)
            for run in range(shape.runs):
                for i in live if run % 2 == 0 else live[::-1]:
                    if i not in sessions:
                        continue
                    try:
                        await sessions[i].run_once()
                    except BenchError as exc:
                        fail(i, exc)
                        await sessions.pop(i).close()
            for i, session in sessions.items():
                try:
                    figures[i][shape.key] = await session.finish()
                except BenchError as exc:
                    fail(i, exc)
        finally:
            for session in sessions.values():
                await session.close()
    return [{**described[i], "available": False, "failed": True,
             "reason": failures[i].splitlines()[0]} if i in failures
            else {**described[i], "available": True, "shapes": figures[i],
                  **({"skipped": skipped[i]} if skipped[i] else {})}
            for i in range(len(sides))]


def _run_result(wall: float, polls: int, ids: list[str], before: Snapshot, after: Snapshot,
                poll_cost: dict[str, float]) -> RunResult:
    storage: dict[str, float] = {}
    for op in set(after.storage) | set(before.storage):
        count = after.storage[op] - before.storage[op] - polls * poll_cost.get(op, 0.0)
        if count > 0:
            storage[op] = count
    azurite = {service: round(after.azurite_cpu[service] - before.azurite_cpu.get(service, 0),
                              3) for service in after.azurite_cpu}
    return RunResult(wall_s=wall, server_s=None, polls=polls, storage=storage,
                     host_cpu_s=round(after.host_cpu - before.host_cpu, 3),
                     worker_cpu_s=round(after.worker_cpu - before.worker_cpu, 3),
                     azurite_cpu_s=azurite, instance_ids=ids)


def _shape_result(shape: Shape, runs: list[RunResult], poll_cost: dict[str, float],
                  host_rss: float | None, worker_rss: float | None,
                  azurite_rss: dict[str, float | None]) -> dict[str, Any]:
    walls = [r.wall_s for r in runs]
    servers = [r.server_s for r in runs if r.server_s is not None]
    activities = shape.activities * len(runs)
    by_op: Counter[str] = Counter()
    for run in runs:
        by_op.update(run.storage)
    per_activity = {op: round(count / activities, 2) for op, count in sorted(by_op.items())}
    return {
        "wall_s": [round(w, 4) for w in walls],
        "server_s": [round(s, 4) for s in servers],
        "figure": shape.figure(walls),
        "server_figure": shape.figure(servers) if len(servers) == len(walls) else None,
        "polls": [r.polls for r in runs],
        "status_poll_cost": poll_cost,
        "storage_per_activity": per_activity,
        "storage_requests_per_activity": round(sum(by_op.values()) / activities, 2),
        "storage_requests_per_run": [round(sum(r.storage.values())) for r in runs],
        "host_cpu_s": statistics.median(r.host_cpu_s for r in runs),
        "worker_cpu_s": statistics.median(r.worker_cpu_s for r in runs),
        "azurite_cpu_s": statistics.median(sum(r.azurite_cpu_s.values()) for r in runs),
        "azurite_cpu_s_by_service": {
            service: statistics.median(r.azurite_cpu_s.get(service, 0.0) for r in runs)
            for service in runs[0].azurite_cpu_s},
        "host_peak_rss_mb": round(host_rss, 1) if host_rss is not None else None,
        "worker_peak_rss_mb": round(worker_rss, 1) if worker_rss is not None else None,
        "azurite_peak_rss_mb": {k: round(v, 1) for k, v in azurite_rss.items()
                                if v is not None},
    }
