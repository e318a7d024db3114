"""The pytest plugin of `runtime.testing` (entry point `funclocal` in group `pytest11`).

Fixtures:
- `durable_env`: an open `DurableEnvironment` for the test, on the app of the
  `funclocal` marker's `app=`, else `--funclocal-app`, else the `funclocal_app` ini
  option (relative to the ini file's folder), else the rootdir when it holds
  `function_app.py`. Storage: the marker's `storage=` ("memory" or "azurite"), else
  `--funclocal-storage`, else the `funclocal_storage` ini option, else "memory";
  `@pytest.mark.parametrize("durable_env", ["memory", "azurite"], indirect=True)` runs a
  test in both.
- `funclocal_azurite` (session): the endpoints of the Azurite the environments on
  Azurite use (`--funclocal-azurite-connection` names one already running; otherwise
  one is found as `funclocal start` finds it and started on free ports, once per
  process, so each xdist worker has its own).

The marker `@pytest.mark.funclocal(...)` takes the storage as its argument or `storage=`,
and any option of `DurableEnvironment` (`app`, `enable_auth`, `auto_skip`,
`virtual_time`, `timeout`, `host_json`, `settings`, `start_time`, `workers`).

The fixture is synchronous (the environment's host runs in a thread of its own), so it
works with pytest-asyncio in strict and auto mode, whatever the loop scope. A failed
test's report gets a "funclocal" section: every instance of its task hub with its
history. This module imports nothing heavy until a fixture is used.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from runtime.storage.connection import StorageEndpoints
    from runtime.testing.environment import DurableEnvironment

MARKER = "funclocal"
STORAGES = ("memory", "azurite")
_ENV_KEY = pytest.StashKey["DurableEnvironment"]()
_OPTIONS = ("app", "enable_auth", "auto_skip", "virtual_time", "timeout", "host_json",
            "settings", "start_time", "workers", "hub_name")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("funclocal", "funclocal: Durable Functions test environments")
    group.addoption("--funclocal-app", metavar="DIR", default=None,
                    help="folder of the function app the durable_env fixture runs "
                         "(default: ini funclocal_app, else the rootdir)")
    group.addoption("--funclocal-storage", choices=STORAGES, default=None,
                    help="where durable_env keeps its task hub unless a test says "
                         "(default: ini funclocal_storage, else memory)")
    group.addoption("--funclocal-azurite-connection", metavar="CONNECTION_STRING",
                    default=None, help="use this running Azurite instead of starting one")
    parser.addini("funclocal_app", "folder of the function app durable_env runs "
                  "(relative to the ini file)", default="")
    parser.addini("funclocal_storage", "memory or azurite: durable_env's default storage",
                  default="")
    parser.addini("funclocal_azurite_connection", "connection string of a running "
                  "Azurite to use instead of starting one", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(storage=None, **options): the durable_env of this test: "
        "storage 'memory' or 'azurite', and DurableEnvironment options (app, enable_auth, "
        "auto_skip, virtual_time, timeout...)")


def pytest_sessionfinish(session: pytest.Session) -> None:
    shared = sys.modules.get("runtime.testing.shared")
    if shared is not None:
        shared.shutdown()


# --- settings -------------------------------------------------------------------------


def _ini_folder(config: pytest.Config) -> Path:
    return Path(config.inipath).parent if config.inipath else Path(config.rootpath)


def _app_folder(config: pytest.Config, marked: Any) -> Path:
    if marked:
        return Path(marked).expanduser()
    option = config.getoption("--funclocal-app")
    if option:
        return Path(option).expanduser()
    ini = str(config.getini("funclocal_app") or "")
    if ini:
        return _ini_folder(config) / ini
    root = Path(config.rootpath)
    script = os.environ.get("PYTHON_SCRIPT_FILE_NAME") or "function_app.py"
    if (root / script).is_file():
        return root
    pytest.fail(f"durable_env needs the function app's folder: pass --funclocal-app DIR, set "
                f"funclocal_app in the pytest ini file, use @pytest.mark.{MARKER}(app=...), or "
                f"run pytest where {script} is (the rootdir {root} has none).", pytrace=False)


def _storage(request: pytest.FixtureRequest, marker: pytest.Mark | None) -> str:
    chosen = getattr(request, "param", None)
    if chosen is None and marker is not None:
        chosen = marker.kwargs.get("storage") or (marker.args[0] if marker.args else None)
    chosen = chosen or request.config.getoption("--funclocal-storage") or \
        request.config.getini("funclocal_storage") or "memory"
    if chosen not in STORAGES:
        pytest.fail(f"funclocal storage must be 'memory' or 'azurite', not {chosen!r}",
                    pytrace=False)
    return str(chosen)


def _connection(config: pytest.Config) -> str | None:
    return config.getoption("--funclocal-azurite-connection") or \
        config.getini("funclocal_azurite_connection") or None


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def funclocal_azurite(request: pytest.FixtureRequest) -> StorageEndpoints:
    """The endpoints (`connection_string`, `blob_url`...) of the Azurite that
    environments on Azurite use; started on first use, stopped at the session's end."""
    from runtime.errors import HostError
    from runtime.storage.connection import parse_connection_string
    from runtime.testing import loop, shared

    connection = _connection(request.config)
    if connection:
        return parse_connection_string(connection)
    try:
        return loop.run(shared.azurite.endpoints(Path(request.config.rootpath)), timeout=120)
    except HostError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def durable_env(request: pytest.FixtureRequest) -> Iterator[DurableEnvironment]:
    """An open DurableEnvironment for this test (see the module docstring); closed, and
    its task hub deleted, after the test."""
    from runtime.errors import HostError
    from runtime.testing.environment import DurableEnvironment

    marker = request.node.get_closest_marker(MARKER)
    options = {k: v for k, v in (marker.kwargs if marker else {}).items() if k in _OPTIONS}
    unknown = set(marker.kwargs if marker else {}) - set(_OPTIONS) - {"storage"}
    if unknown:
        pytest.fail(f"@pytest.mark.{MARKER} does not take {', '.join(sorted(unknown))}",
                    pytrace=False)
    app = _app_folder(request.config, options.pop("app", None))
    if not app.is_dir():
        pytest.fail(f"The function app folder {app} does not exist.", pytrace=False)
    storage = _storage(request, marker)
    connection = None
    if storage == "azurite":
        connection = request.getfixturevalue("funclocal_azurite").connection_string
    env = DurableEnvironment(app, storage=storage,  # type: ignore[arg-type]
                             connection_string=connection,
                             hub_name=options.pop("hub_name", None) or _hub_for(request),
                             **options)
    try:
        env.open()
    except HostError as exc:
        text = str(exc)
        traceback_text = getattr(exc, "traceback_text", None)
        pytest.fail(text + (f"\n{traceback_text}" if traceback_text else ""), pytrace=False)
    request.node.stash[_ENV_KEY] = env
    try:
        yield env
    finally:
        env.close()


def _hub_for(request: pytest.FixtureRequest) -> str:
    from runtime.testing.hosting import unique_hub_name

    return unique_hub_name(request.node.name.removeprefix("test"))


# --- reports --------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    outcome: Any = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when == "call" and report.failed:
        env = item.stash.get(_ENV_KEY, None)
        if env is not None and env.is_open:
            try:
                report.sections.append(("funclocal", env.describe_now()))
            except Exception as exc:  # noqa: BLE001 - the report must not fail
                report.sections.append(("funclocal", f"(could not read the task hub: {exc})"))
