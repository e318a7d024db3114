"""Hot reload: from the write of an edited file to the first response served by the new
code, median of N edits.

Run: .venv/bin/python bench/reload.py [--edits 10]
Two apps, each a temporary copy that `funclocal start` (reload on) watches: a plain HTTP
app, and the sample app (Durable Functions, so its worker imports the Durable SDK too;
Azurite is started once beforehand). Each edit changes the text an HTTP function returns;
the clock starts just before the write and stops at the first response with the new text.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import REPO, free_port, machine, median, stop  # noqa: E402

from runtime.azurite import ManagedAzurite, find_azurite_bin  # noqa: E402

SETTLE = 0.5  # between edits, so that retiring the previous workers is not measured
POLL = 0.005


def spawn_watching_host(script_root: Path, port: int, env: Mapping[str, str],
                        extra: list[str]) -> subprocess.Popen[bytes]:
    full_env = dict(os.environ)
    full_env.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "runtime", "start", "--script-root", str(script_root),
         "--port", str(port), *extra],
        cwd=str(REPO), env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def body(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode("utf-8"))
    except OSError:
        return None


def wait_for_text(url: str, wanted: str, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (body(url) or "").startswith(wanted):
            return time.monotonic()
        time.sleep(POLL)
    raise TimeoutError(f"{url} did not answer {wanted!r} within {timeout}s")


def measure(app: Path, source: str, original: str, url_path: str, edits: int,
            env: Mapping[str, str] | None = None, extra: list[str] | None = None
            ) -> list[float]:
    """Edit `source` in a copy of `app`, replacing `original` (the start of the response
    text) with a new marker each time."""
    with tempfile.TemporaryDirectory(prefix="funclocal-reload-") as tmp:
        root = Path(tmp) / "app"
        shutil.copytree(app, root, ignore=shutil.ignore_patterns("__pycache__", ".azurite"))
        path = root / source
        template = path.read_text()
        assert original in template, f"{original!r} not in {path}"
        port = free_port()
        url = f"http://127.0.0.1:{port}{url_path}"
        process = spawn_watching_host(root, port, env or {}, extra or [])
        times = []
        try:
            wait_for_text(url, original, timeout=60)
            for n in range(edits):
                marker = f"Edit {n}"
                edited = template.replace(original, marker)
                time.sleep(SETTLE)
                started = time.monotonic()
                path.write_text(edited)
                times.append(wait_for_text(url, marker) - started)
        finally:
            stop(process)
        return times


async def durable_sample(edits: int) -> list[float]:
    bin_dir = find_azurite_bin(REPO)
    if bin_dir is None:
        raise SystemExit("Azurite is not installed: run `npm ci`.")
    with tempfile.TemporaryDirectory() as data:
        ports = {"blob": free_port(), "queue": free_port(), "table": free_port()}
        azurite = ManagedAzurite(bin_dir, data_dir=Path(data), in_memory=True, ports=ports)
        await azurite.start()
        try:
            env = {"AzureWebJobsStorage": azurite.endpoints.connection_string}
            return await asyncio.to_thread(
                measure, REPO / "function_app", "function_app.py", "Hello, ", "/api/hello",
                edits, env, ["--host-json", str(REPO / "host.json"), "--no-azurite"])
        finally:
            await azurite.stop()


def report(label: str, times: list[float]) -> None:
    print(f"  {label:<36} {median(times) * 1000:7.0f} ms  "
          f"(edits: {', '.join(f'{t * 1000:.0f}' for t in times)})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edits", type=int, default=10)
    args = parser.parse_args()
    print(f"reload: file write -> first response from the new code ({machine()}), "
          f"median of {args.edits}")
    plain = measure(REPO / "tests" / "apps" / "reload_http", "lib/greeting.py", "Hello ",
                    "/api/hello", args.edits)
    report("plain HTTP app:", plain)
    durable = asyncio.run(durable_sample(args.edits))
    report("sample app (durable, Azurite up):", durable)


if __name__ == "__main__":
    main()
