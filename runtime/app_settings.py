"""The Functions app settings funclocal checks at start (pure): the worker runtime it
refuses, and the Python worker's settings it cannot honour as given.

Read from the workers' environment (`local.settings.json` Values over the process's
environment), names matched without case as the host reads app settings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from runtime.config import LocalSettings, resolve_setting
from runtime.errors import ConfigError


def _lookup(name: str, env: Mapping[str, str]) -> str | None:
    return resolve_setting(name, LocalSettings(path=None), env)


def check_app_settings(env: Mapping[str, str], source: str) -> list[str]:
    """The Functions settings funclocal reads from the worker environment: raises
    ConfigError for a FUNCTIONS_WORKER_RUNTIME other than python (`source` names where
    the settings came from) and returns a warning for each setting it cannot honour."""
    runtime = _lookup("FUNCTIONS_WORKER_RUNTIME", env)
    if runtime is not None and runtime.strip().lower() != "python":
        raise ConfigError(source, f"FUNCTIONS_WORKER_RUNTIME is {json.dumps(runtime)}, but "
                          "funclocal runs Python function apps only: set it to \"python\"",
                          key="Values.FUNCTIONS_WORKER_RUNTIME")
    warnings: list[str] = []
    threads = _lookup("PYTHON_THREADPOOL_THREAD_COUNT", env)
    if threads is not None and not _positive_integer(threads):
        warnings.append(f"PYTHON_THREADPOOL_THREAD_COUNT must be an integer of at least 1, "
                        f"got {json.dumps(threads)}; sync functions run on the default "
                        "thread pool (no fixed limit), as in the Python worker.")
    extensions = _lookup("PYTHON_ENABLE_WORKER_EXTENSIONS", env)
    if extensions is not None and extensions.strip().lower() in ("1", "true"):
        warnings.append("PYTHON_ENABLE_WORKER_EXTENSIONS is ignored: funclocal does not run "
                        "Python worker extensions (azure.functions AppExtensionBase and "
                        "FuncExtensionBase hooks).")
    return warnings


def _positive_integer(text: str) -> bool:
    return re.fullmatch(r"\s*[0-9]+\s*", text) is not None and int(text) >= 1


__all__ = ["check_app_settings"]
