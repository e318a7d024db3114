"""Python environments for the tests of a user's own app, built once and cached across
test runs (under ~/.cache/funclocal-tests, keyed by what they hold):

- the app's own virtual environment, with the app's packages from the package index:
  the SDKs, `humanize` (which funclocal's environment lacks) and `debugpy`;
- funclocal installed with `pip install <copy of this checkout>` into a virtual
  environment of its own, as a user installs it: its `funclocal` script is what the
  tests start. The environment (funclocal's dependencies) is cached; funclocal itself
  is reinstalled whenever its source changes.
- Azurite installed by `funclocal azurite install` into a cached per-user cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("FUNCLOCAL_TEST_CACHE") or
             Path.home() / ".cache" / "funclocal-tests")
APP_PACKAGES = ("azure-functions", "azure-functions-durable>=1.2,<2", "humanize", "debugpy")
PIP_QUIET = ["--quiet", "--disable-pip-version-check"]


def _key(*parts: str) -> str:
    digest = hashlib.sha256("\0".join((sys.version, *parts)).encode()).hexdigest()
    return digest[:12]


@contextmanager
def _locked(name: str) -> Iterator[None]:
    """One builder at a time per cached item (test sessions may run side by side)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(*command: str | Path) -> None:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{result.stdout}\n"
                           f"{result.stderr}")


def _venv(path: Path, packages: tuple[str, ...]) -> None:
    """A fresh virtual environment at `path` holding `packages` (built in place: a
    venv's scripts name its interpreter by absolute path), marked complete at the end
    so a half-built one is never used."""
    _run(sys.executable, "-m", "venv", path)
    if packages:
        _run(path / "bin" / "python", "-m", "pip", "install", *PIP_QUIET, *packages)
    (path / ".complete").touch()


def app_venv() -> Path:
    """The app's own virtual environment (see the module docstring)."""
    path = CACHE / f"app-venv-{_key(*APP_PACKAGES)}"
    with _locked(path.name):
        if not (path / ".complete").exists():
            shutil.rmtree(path, ignore_errors=True)
            _venv(path, APP_PACKAGES)
    return path


def _funclocal_dependencies() -> tuple[str, ...]:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return tuple(project["dependencies"])


def _source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted((REPO / "runtime").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    digest.update((REPO / "pyproject.toml").read_bytes())
    return digest.hexdigest()[:16]


def installed_funclocal() -> Path:
    """The `bin` folder of a virtual environment where funclocal was installed with pip
    from this checkout's current source (not editable: its package is a copy in the
    environment's site-packages, with no node_modules beside it)."""
    # setuptools and wheel build funclocal without an isolated build environment.
    dependencies = (*_funclocal_dependencies(), "setuptools>=61", "wheel")
    path = CACHE / f"funclocal-venv-{_key(*dependencies)}"
    with _locked(path.name):
        if not (path / ".complete").exists():
            shutil.rmtree(path, ignore_errors=True)
            _venv(path, dependencies)
        marker = path / ".funclocal-source"
        digest = _source_digest()
        if not marker.exists() or marker.read_text() != digest:
            # Built from a copy: building in the checkout would leave build/ and
            # *.egg-info behind in the source tree.
            with tempfile.TemporaryDirectory(prefix="funclocal-src-") as copy:
                source = Path(copy) / "funclocal"
                source.mkdir()
                for name in ("pyproject.toml", "README.md"):
                    shutil.copy(REPO / name, source / name)
                shutil.copytree(REPO / "runtime", source / "runtime",
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                _run(path / "bin" / "python", "-m", "pip", "install", *PIP_QUIET,
                     "--no-deps", "--no-build-isolation", "--force-reinstall", source)
            marker.write_text(digest)
    return path / "bin"


def azurite_cache() -> Path:
    """An XDG_CACHE_HOME kept across test runs, for `funclocal azurite install`."""
    path = CACHE / "xdg-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def cache_lock(name: str) -> Iterator[None]:
    with _locked(name):
        yield
