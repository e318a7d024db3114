"""Resource bounds: the host's idle CPU with empty queues, and its memory after 10,000
completed orchestrations (no cache may grow without bound).

Run: .venv/bin/python -m bench.soak [--instances 10000] [--wave 250] [--idle 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.funclocal import REPO, Client, HostUnderTest, _free_port
from bench.procstat import cpu_seconds, peak_rss_mb
from runtime.storage.azurite import ManagedAzurite, find_azurite_bin


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def idle_cpu_percent(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid) or 0.0
    await asyncio.sleep(seconds)
    after = cpu_seconds(pid) or 0.0
    return 100 * (after - before) / seconds


async def start(session: aiohttp.ClientSession, base: str, instance_id: str) -> str:
    """Start one instance; a start refused because Azurite stalled for more than the
    host's 30 s start deadline is tried again with the same id."""
    url = f"{base}/runtime/webhooks/durabletask/orchestrators/chain/{instance_id}"
    for _ in range(5):
        async with session.post(url, data=json.dumps({"count": 1}),
                                headers={"Content-Type": "application/json"}) as response:
            if response.status == 202:
                return instance_id
            text = await response.text()
        if response.status == 400 and "already exists" in text:
            return instance_id  # an earlier attempt did record it
        print(f"  start of {instance_id} answered {response.status}: {text[:160]}", flush=True)
    raise RuntimeError(f"could not start {instance_id}")


async def soak(instances: int, wave: int, idle: float) -> None:
    bin_dir = find_azurite_bin(REPO)
    if bin_dir is None:
        raise SystemExit("Azurite is not installed: run `npm ci`.")
    with tempfile.TemporaryDirectory() as data, open(Path(data) / "host.log", "w") as log:
        ports = dict(zip(("blob", "queue", "table"), (_free_port() for _ in range(3)),
                         strict=True))
        azurite = ManagedAzurite(bin_dir, data_dir=Path(data), in_memory=True, ports=ports)
        await azurite.start()
        host = HostUnderTest(azurite.endpoints.connection_string, log)
        try:
            async with aiohttp.ClientSession() as session:
                await host.wait_running(session)
                pid = host.process.pid
                await asyncio.sleep(5)  # let the polls back off
                idle_before = await idle_cpu_percent(pid, idle)
                print(f"idle host CPU with empty queues: {idle_before:.2f}% over {idle:g} s",
                      flush=True)
                client = Client(host, session, poll=0.05)
                started = time.monotonic()
                done = 0
                while done < instances:
                    size = min(wave, instances - done)
                    ids = await asyncio.gather(*(start(session, host.base, f"soak-{done + n}")
                                                 for n in range(size)))
                    await client.wait_all(list(ids), timeout=600)
                    done += size
                    if done % 1000 < wave:
                        print(f"  {done:6d} completed, {time.monotonic() - started:6.0f} s, "
                              f"host RSS {rss_mb(pid):.0f} MiB", flush=True)
                elapsed = time.monotonic() - started
                await asyncio.sleep(5)
                idle_after = await idle_cpu_percent(pid, idle)
                print(f"{instances} orchestrations in {elapsed:.0f} s "
                      f"({instances / elapsed:.1f}/s); host RSS {rss_mb(pid):.0f} MiB, "
                      f"peak {peak_rss_mb(pid) or 0:.0f} MiB; idle host CPU afterwards "
                      f"{idle_after:.2f}%", flush=True)
        finally:
            await host.stop()
            await azurite.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--wave", type=int, default=250)
    parser.add_argument("--idle", type=float, default=30.0)
    args = parser.parse_args()
    asyncio.run(soak(args.instances, args.wave, args.idle))


if __name__ == "__main__":
    sys.exit(main())
