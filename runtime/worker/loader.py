"""Import a v2 function app the way the Python worker does, and describe its functions.

Runs only inside worker processes: it imports user code.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func

from runtime.errors import IndexingError

DEFAULT_SCRIPT_FILE = "function_app.py"


@dataclass
class LoadedFunction:
    name: str
    bindings: list[dict[str, Any]]
    user_function: Any
    is_async: bool
    wants_context: bool

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "bindings": self.bindings, "is_async": self.is_async}


def script_file_name() -> str:
    return os.environ.get("PYTHON_SCRIPT_FILE_NAME") or DEFAULT_SCRIPT_FILE


def load_app(script_root: Path) -> dict[str, LoadedFunction]:
    """Import the app's script file and index its single top-level FunctionRegister."""
    file_name = script_file_name()
    script = script_root / file_name
    if not script.is_file():
        raise IndexingError(
            f"{file_name} was not found in the script root {script_root}. A Python v2 app "
            f"defines its functions in {file_name} (app = func.FunctionApp() or df.DFApp()).")
    root = str(script_root)
    if root not in sys.path:
        sys.path.insert(0, root)
    module_name = Path(file_name).stem
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:  # SyntaxError, ImportError, SystemExit in user code...
        raise IndexingError(
            f"Error importing {file_name}: {type(exc).__name__}: {exc}",
            traceback_text=traceback.format_exc()) from None
    apps = [value for value in vars(module).values()
            if isinstance(value, func.FunctionRegister)]
    if not apps:
        raise IndexingError(
            f"Could not find top level function app instances in {file_name}.")
    if len(apps) > 1:
        raise IndexingError(
            f"More than one FunctionApp or other top level function app instances are "
            f"defined in {file_name}.")
    try:
        functions = apps[0].get_functions()
    except Exception as exc:
        raise IndexingError(
            f"Error indexing {file_name}: {type(exc).__name__}: {exc}",
            traceback_text=traceback.format_exc()) from None
    loaded: dict[str, LoadedFunction] = {}
    for function in functions:
        loaded_function = _describe(function)
        loaded[loaded_function.name] = loaded_function
    return loaded


def _describe(function: func.Function) -> LoadedFunction:
    user_function = function.get_user_function()
    bindings = [json.loads(raw) if isinstance(raw, str) else dict(raw)
                for raw in function.get_raw_bindings()]
    bound_names = {str(b.get("name")) for b in bindings}
    # DFApp's client middleware wraps the user function with functools.wraps, so the
    # signature seen here is the user's own.
    try:
        parameters = inspect.signature(user_function).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    wants_context = "context" in parameters and "context" not in bound_names
    return LoadedFunction(
        name=str(function.get_function_name()),
        bindings=bindings,
        user_function=user_function,
        is_async=inspect.iscoroutinefunction(user_function),
        wants_context=wants_context,
    )
