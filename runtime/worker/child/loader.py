"""Import a v2 function app the way the Python worker does, and describe its functions.

Runs only inside worker processes: it imports user code.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func

from runtime.errors import IndexingError
from runtime.worker.child.tracebacks import user_traceback

DEFAULT_SCRIPT_FILE = "function_app.py"


@dataclass
class LoadedFunction:
    name: str
    bindings: list[dict[str, Any]]
    user_function: Any
    is_async: bool
    wants_context: bool
    code_hash: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "bindings": self.bindings, "is_async": self.is_async,
                "code_hash": self.code_hash}


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
    # A .pyc is trusted when the source's mtime (whole seconds) and size match, so two
    # saves within one second of the same length would load stale code on a reload.
    # Writing none keeps every worker compiling the app's current source.
    sys.dont_write_bytecode = True
    module_name = Path(file_name).stem
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:  # SyntaxError, ImportError, SystemExit in user code...
        missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
        raise IndexingError(
            f"Error importing {file_name}: {type(exc).__name__}: {exc}",
            traceback_text=user_traceback(exc), missing_module=missing) from None
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
            traceback_text=user_traceback(exc)) from None
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
        code_hash=code_hash(user_function),
    )


def code_hash(user_function: Any) -> str | None:
    """A digest of the function's compiled code, nested functions included. Comments,
    blank lines and the function's position in its file do not change it; any change
    to what it does does. The Durable SDK wraps orchestrators and entities: the digest
    is of the user's own function."""
    target = getattr(user_function, "orchestrator_function", None) or getattr(
        user_function, "entity_function", None) or user_function
    try:
        function = inspect.unwrap(target)
        code = function.__code__
    except (AttributeError, ValueError):
        return None
    digest = hashlib.sha256()
    _feed_code(digest, code)
    defaults = (getattr(function, "__defaults__", None), getattr(function, "__kwdefaults__", None))
    digest.update(_stable_repr(defaults).encode())
    return digest.hexdigest()[:16]


def _feed_code(digest: Any, code: types.CodeType) -> None:
    digest.update(code.co_code)
    digest.update(repr((code.co_names, code.co_varnames, code.co_freevars,
                        code.co_cellvars, code.co_flags)).encode())
    digest.update(getattr(code, "co_exceptiontable", b""))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_code(digest, const)
        else:
            digest.update(_stable_repr(const).encode())


def _stable_repr(value: object) -> str:
    # Set order follows string hashing, which is randomised per process.
    if isinstance(value, frozenset):
        return "frozenset(" + ",".join(sorted(_stable_repr(v) for v in value)) + ")"
    if isinstance(value, tuple):
        return "(" + ",".join(_stable_repr(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ",".join(sorted(f"{k!r}:{_stable_repr(v)}" for k, v in value.items())) + "}"
    text = repr(value)
    # An object's default repr holds its address, which differs in every worker.
    return type(value).__qualname__ if " at 0x" in text else text
