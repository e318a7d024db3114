"""Debugging the app in its worker: `funclocal start --debug PORT` runs every worker
under debugpy (the debugger VS Code attaches to), and without it `breakpoint()` in user
code says how to debug instead of failing the invocation.

The worker listens on a port of its own choosing and tells the host which
(`{"type": "debug", "port": N}`); the host forwards PORT to the newest worker, so the
port the user attaches to never changes across reloads.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

DEBUG_ENV = "FUNCLOCAL_DEBUG"  # "listen" or "wait"; unset: no debugger


def start(send: Callable[[dict[str, Any]], None]) -> bool:
    """Listen for a debugger when the host asks for one (waiting for it to attach with
    "wait"), else make `breakpoint()` a warning. Returns False after sending a hello
    with the error when the debugger cannot be started."""
    mode = os.environ.get(DEBUG_ENV)
    if not mode:
        if not os.environ.get("PYTHONBREAKPOINT"):
            sys.breakpointhook = _no_debugger
        return True
    try:
        import debugpy
    except ImportError:
        send({"type": "hello", "pid": os.getpid(), "error": (
            f"--debug needs the debugpy package in the app's Python: "
            f"{sys.executable} -m pip install debugpy")})
        return False
    try:
        _, port = debugpy.listen(("127.0.0.1", 0))
    except Exception as exc:  # noqa: BLE001 - debugpy raises RuntimeError and OSErrors
        send({"type": "hello", "pid": os.getpid(),
              "error": f"debugpy could not listen for a debugger: {exc}"})
        return False
    send({"type": "debug", "port": int(port), "wait": mode == "wait"})
    if mode == "wait":
        debugpy.wait_for_client()
    return True


_warned: set[tuple[str, int]] = set()


def _no_debugger(*args: Any, **kwargs: Any) -> None:
    """sys.breakpointhook without a debugger: one line per call site, and user code goes
    on (pdb on a worker without a terminal would raise BdbQuit and fail the call)."""
    frame = sys._getframe(1)
    site = (frame.f_code.co_filename, frame.f_lineno)
    if site in _warned:
        return
    _warned.add(site)
    print(f"breakpoint() at {site[0]}:{site[1]} ignored: no debugger is attached. Start "
          "funclocal with --debug PORT (and --debug-wait to stop before the app is "
          "imported), then attach your debugger to that port.", file=sys.stderr, flush=True)


__all__ = ["DEBUG_ENV", "start"]
