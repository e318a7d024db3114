"""Which Python runs the app's workers, and how funclocal's worker code gets into it.

Workers run on the app's own interpreter, so the app's packages (its `.venv`, its
requirements) are the ones it imports, as with `func start`. funclocal is not installed
there: the worker is started with a few lines of bootstrap (`python -c`) that import
funclocal's `runtime` package from where this host has it, and nothing else of this
host's environment (its site-packages stay out of the worker's `sys.path`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import HostError

# The package directory of funclocal itself (`.../runtime`).
RUNTIME_DIR = Path(__file__).resolve().parents[1]
VENV_NAMES = (".venv", "venv")

# Runs in the worker's interpreter (any Python 3): makes `runtime` importable from
# argv[1] alone, then hands over to the worker's main. Older Pythons get one line.
BOOTSTRAP = """\
import sys
if sys.version_info < (3, 10):
    sys.stderr.write("funclocal workers need Python 3.10 or newer; %s is %s\\n"
                     % (sys.executable, sys.version.split()[0]))
    sys.exit(3)
import importlib.util
import os
_dir = sys.argv.pop(1)
_spec = importlib.util.spec_from_file_location(
    "runtime", os.path.join(_dir, "__init__.py"), submodule_search_locations=[_dir])
_module = importlib.util.module_from_spec(_spec)
sys.modules["runtime"] = _module
_spec.loader.exec_module(_module)
from runtime.worker.child.main import main
main()
"""


@dataclass(frozen=True)
class AppPython:
    """The interpreter of the app's workers and why it was chosen (`source`: "--python",
    "VIRTUAL_ENV", "the script root's .venv", or "funclocal's own")."""

    executable: str
    source: str

    @property
    def is_own(self) -> bool:
        return self.source == OWN

    def describe(self) -> str:
        return f"{self.executable} ({self.source})"

    def worker_command(self, script_root: Path, *extra: str) -> list[str]:
        """The command line of a worker process on this interpreter."""
        return [self.executable, *extra, "-c", BOOTSTRAP, str(RUNTIME_DIR),
                "--script-root", str(script_root)]


OWN = "funclocal's own"


def venv_python(venv: Path) -> Path:
    """The interpreter of a virtual environment folder (POSIX or Windows layout)."""
    for candidate in (venv / "bin" / "python", venv / "Scripts" / "python.exe"):
        if candidate.exists():
            return candidate
    return venv / "bin" / "python"


def find_app_python(script_root: Path, explicit: str | None,
                    environ: Mapping[str, str]) -> AppPython:
    """The app's interpreter: `--python PATH` when given, else the active virtual
    environment (VIRTUAL_ENV), else a `.venv` or `venv` in the script root, else the
    interpreter funclocal runs on. Raises HostError when the one named does not exist."""
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_dir():  # a venv folder given for its interpreter
            path = venv_python(path)
        if not path.exists():
            raise HostError(f"--python {explicit}: no such interpreter.")
        return AppPython(str(path.absolute()), "--python")
    active = environ.get("VIRTUAL_ENV")
    if active:
        python = venv_python(Path(active))
        if python.exists():
            return AppPython(os.path.abspath(python), "VIRTUAL_ENV")
    for name in VENV_NAMES:
        folder = script_root / name
        if (folder / "pyvenv.cfg").is_file():
            python = venv_python(folder)
            if python.exists():
                return AppPython(os.path.abspath(python), f"the script root's {name}")
    # Absolute (never resolved: a venv's python is a symlink), as workers start in the
    # script root and funclocal may have been started as `.venv/bin/python`.
    return AppPython(os.path.abspath(sys.executable), OWN)


def shadowed_by_funclocal(script_root: Path) -> str | None:
    """The app's own module named `runtime` (`runtime.py` or a `runtime/` folder), if it
    has one: workers import funclocal's package under that name before the app, so the
    app's `import runtime` would get funclocal's instead. The host warns at start."""
    for candidate in (script_root / "runtime.py", script_root / "runtime"):
        if candidate.is_file() or (candidate.is_dir() and any(candidate.glob("*.py"))):
            return candidate.name
    return None


def worker_environment(env: Mapping[str, str], python: AppPython) -> dict[str, str]:
    """The worker's environment on `python`: the active virtual environment follows
    the interpreter, so tools the app starts (pip, subprocesses) see the same one."""
    result = dict(env)
    if python.source != "VIRTUAL_ENV" and not python.is_own:
        venv = Path(python.executable).parent.parent
        if (venv / "pyvenv.cfg").is_file():
            result["VIRTUAL_ENV"] = str(venv)
    return result


__all__ = ["BOOTSTRAP", "OWN", "RUNTIME_DIR", "AppPython", "find_app_python",
           "shadowed_by_funclocal",
           "venv_python", "worker_environment"]
