"""Warm HTTP trigger round trip (client -> host -> worker -> back) and throughput at 32
concurrent clients, against a bare aiohttp handler measured in the same run.

Run: .venv/bin/python bench/http_trigger.py [--requests 2000]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    REPO,
    count_option,
    free_port,
    machine,
    spawn_host,
    stop,
    wait_for_200,
)

CONCURRENCY = 32


async def latency(session: aiohttp.ClientSession, url: str, count: int) -> float:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def throughput(session: aiohttp.ClientSession, url: str, total: int) -> float:
    remaining = total

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            async with session.get(url) as response:
                await response.read()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return total / (time.perf_counter() - started)


async def bare_server(port: int) -> web.AppRunner:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=f"Hi {request.match_info['name']}")

    app = web.Application()
    app.router.add_get("/api/greet/{name}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def measure(url: str, requests: int) -> tuple[float, float]:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        await latency(session, url, 50)  # warm up
        return await latency(session, url, requests // 4), await throughput(session, url,
                                                                            requests)


async def main_async(requests: int) -> None:
    print(f"http: warm round trip and throughput at {CONCURRENCY} clients ({machine()})")
    bare_port = free_port()
    runner = await bare_server(bare_port)
    try:
        bare_latency, bare_rps = await measure(f"http://127.0.0.1:{bare_port}/api/greet/x",
                                               requests)
    finally:
        await runner.cleanup()
    port = free_port()
    process = spawn_host(REPO / "tests" / "apps" / "http_basic", port)
    try:
        url = f"http://127.0.0.1:{port}/api/greet/x"
        await asyncio.to_thread(wait_for_200, url)
        host_latency, host_rps = await measure(url, requests)
    finally:
        stop(process)
    print(f"  bare aiohttp handler: median {bare_latency * 1000:.2f} ms, {bare_rps:7.0f} req/s")
    print(f"  funclocal HTTP trigger: median {host_latency * 1000:.2f} ms, {host_rps:7.0f} req/s")
    print(f"  ratio funclocal/bare: latency x{host_latency / bare_latency:.2f}, "
          f"throughput x{host_rps / bare_rps:.2f}")


def main() -> None:
    asyncio.run(main_async(count_option("requests", 2000)))


if __name__ == "__main__":
    main()
