"""Helpers shared by the benchmarks: free ports, a host process, Azurite, medians."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from runtime.storage.azurite import ManagedAzurite

REPO = Path(__file__).resolve().parents[1]
SAMPLE_APP = REPO / "function_app"
# The sample app's host.json, and the Azurite the benchmark started rather than the host's.
SAMPLE_APP_ARGS = ["--host-json", str(REPO / "host.json"), "--no-azurite"]

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def median(values: list[float]) -> float:
    return statistics.median(values)


def count_option(name: str, default: int) -> int:
    """The one command-line option of a benchmark: how many runs, edits or requests."""
    parser = argparse.ArgumentParser()
    parser.add_argument(f"--{name}", type=int, default=default)
    return int(getattr(parser.parse_args(), name))


def timings(times: list[float], label: str = "runs") -> str:
    """The median in ms, then every sample."""
    return (f"{median(times) * 1000:7.0f} ms  "
            f"({label}: {', '.join(f'{t * 1000:.0f}' for t in times)})")


def spawn_host(script_root: Path, port: int, *, env: Mapping[str, str] | None = None,
               extra: list[str] | None = None, reload: bool = False) -> subprocess.Popen[bytes]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "runtime", "start", "--script-root", str(script_root),
         "--port", str(port), *([] if reload else ["--no-reload"]), *(extra or [])],
        cwd=str(REPO), env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_200(url: str, timeout: float = 30.0) -> float:
    """Poll until the URL answers 200; return the monotonic time it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.005)
    raise TimeoutError(f"{url} did not answer 200 within {timeout}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.asynccontextmanager
async def managed_azurite() -> AsyncIterator[ManagedAzurite]:
    """A fresh in-memory Azurite on free ports, stopped on the way out."""
    # Imported here: only the scripts that start Azurite put the repo root on sys.path.
    from runtime.storage.azurite import ManagedAzurite, find_azurite_bin

    bin_dir = find_azurite_bin(REPO)
    if bin_dir is None:
        raise SystemExit("Azurite is not installed: run `npm ci`.")
    with tempfile.TemporaryDirectory() as data:
        ports = {"blob": free_port(), "queue": free_port(), "table": free_port()}
        azurite = ManagedAzurite(bin_dir, data_dir=Path(data), in_memory=True, ports=ports)
        await azurite.start()
        try:
            yield azurite
        finally:
            await azurite.stop()


async def with_sample_app_storage(measure: Callable[[dict[str, str], list[str]], T]) -> T:
    """Run the blocking `measure(env, extra)` of the sample app in a thread, with its state
    in a fresh Azurite (started beforehand: the goals assume it is already running)."""
    async with managed_azurite() as azurite:
        env = {"AzureWebJobsStorage": azurite.endpoints.connection_string}
        return await asyncio.to_thread(measure, env, SAMPLE_APP_ARGS)
