"""Tracebacks as a person reading the console wants them: from the first frame of user
code on. funclocal's own frames, the import machinery's and the thread pool's that runs
sync functions are noise to someone debugging their app (the Python worker's tracebacks
on Azure also start at the function)."""

from __future__ import annotations

import concurrent.futures
import importlib
import traceback
from pathlib import Path
from types import TracebackType

# funclocal's package (`runtime/`), wherever it is loaded from.
_RUNTIME = str(Path(__file__).resolve().parents[2])
_NOISE = (_RUNTIME + "/", str(Path(concurrent.futures.__file__).resolve().parent) + "/",
          str(Path(importlib.__file__).resolve().parent) + "/", "<frozen importlib")


# The SDKs' own frames: they call into user code, never the other way round at the top.
_SDK = ("/azure/functions/", "/azure/durable_functions/")


def _is_noise(tb: TracebackType, *, sdk: bool = False) -> bool:
    name = tb.tb_frame.f_code.co_filename
    return name.startswith(_NOISE) or (sdk and any(part in name for part in _SDK))


def user_traceback(exc: BaseException) -> str:
    """`exc` formatted with funclocal's and the import machinery's frames left out, so
    the traceback starts at user code. An exception raised with no user frame at all
    (a SyntaxError in the app names its file and line itself) keeps just its message."""
    tb = exc.__traceback__
    while tb is not None and _is_noise(tb):
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb)
    # The import machinery's frames between user frames (an import inside the app).
    return "".join(line for line in lines if not line.lstrip().startswith(
        'File "<frozen importlib'))


def user_frames(exc: BaseException) -> str:
    """Only the frames of `exc` from the first frame of user code on (the SDK's frames
    that called it left out too), under the usual header; "" when there are none. For
    an orchestrator's failure, whose reason the host prints on its own line."""
    tb = exc.__traceback__
    while tb is not None and _is_noise(tb, sdk=True):
        tb = tb.tb_next
    if tb is None:
        return ""
    frames = [line for line in traceback.format_tb(tb)
              if not line.lstrip().startswith('File "<frozen importlib')]
    return "Traceback (most recent call last):\n" + "".join(frames)


__all__ = ["user_frames", "user_traceback"]
