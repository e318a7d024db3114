"""Hot reload: from the write of an edited file to the first response served by the new
code, median of N edits.

Run: .venv/bin/python bench/reload.py [--edits 10]
Two apps, each a temporary copy that `funclocal start` (reload on) watches: a plain HTTP
app, and the sample app (Durable Functions, so its worker imports the Durable SDK too;
Azurite is started once beforehand). Each edit changes the text an HTTP function returns;
the clock starts just before the write and stops at the first response with the new text.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import common  # noqa: E402

SETTLE = 0.5  # between edits, so that retiring the previous workers is not measured
POLL = 0.005


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
        port = common.free_port()
        url = f"http://127.0.0.1:{port}{url_path}"
        process = common.spawn_host(root, port, env=env, extra=extra, reload=True)
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
            common.stop(process)
        return times


def main() -> None:
    edits = common.count_option("edits", 10)
    print(f"reload: file write -> first response from the new code ({common.machine()}), "
          f"median of {edits}")
    plain = measure(common.REPO / "tests" / "apps" / "reload_http", "lib/greeting.py", "Hello ",
                    "/api/hello", edits)
    print(f"  {'plain HTTP app:':<36} {common.timings(plain, 'edits')}")
    durable = asyncio.run(common.with_sample_app_storage(
        lambda env, extra: measure(common.SAMPLE_APP, "function_app.py", "Hello, ", "/api/hello",
                                   edits, env, extra)))
    print(f"  {'sample app (durable, Azurite up):':<36} {common.timings(durable, 'edits')}")


if __name__ == "__main__":
    main()
