"""A managed Azurite for local runs, and finding the storage an app needs.

Azurite runs as three processes (`azurite-blob`, `azurite-queue`, `azurite-table`) because the
queue service's garbage collection freezes its whole Node process; a table service sharing that
process would stop answering checkpoints for seconds at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from runtime import console
from runtime.errors import AzuriteError
from runtime.storage import app_azurite
from runtime.storage.azurite_install import find_azurite, not_installed_advice
from runtime.storage.connection import (
    DEFAULT_PORTS,
    DEV_ACCOUNT_KEY,
    DEV_ACCOUNT_NAME,
    SERVICES,
    StorageEndpoints,
    parse_connection_string,
    url_host,
)

log = console.get("storage")

DATA_DIR_NAME = ".azurite"
LOG_FILE_NAME = "azurite.log"

_POLL_INTERVAL = 0.025
_CONNECT_TIMEOUT = 0.1
_PR_SET_PDEATHSIG = 1

# Runs each service's main script after making `require("applicationinsights")` return a
# stub. Azurite loads that SDK at startup even with --disableTelemetry, and it costs ~0.8 s of
# CPU per process, three times over; with telemetry off Azurite never touches it.
_BOOTSTRAP_JS = """
const Module = require("module");
const load = Module._load;
Module._load = function (request, ...rest) {
  return request === "applicationinsights" ? {} : load.call(this, request, ...rest);
};
require(process.argv[1]);
"""


# --- reachability -----------------------------------------------------------------------


async def port_answers(host: str, port: int, timeout: float = _CONNECT_TIMEOUT) -> bool:
    """True when something accepts a TCP connection on host:port within `timeout` seconds."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def find_azurite_bin(start: Path) -> Path | None:
    """The folder of Azurite's service scripts funclocal would use for an app in
    `start` (see `azurite_install.find_azurite`), or None."""
    found = find_azurite(start)
    return found.bin_dir if found is not None else None


# --- the managed processes --------------------------------------------------------------


class ManagedAzurite:
    """Azurite's blob, queue and table services as child processes of this one.

    `ports` maps each service to run onto its port (all three by default). Data lives in
    `data_dir` unless `in_memory`; the services' output goes to `data_dir/azurite.log`.
    """

    def __init__(self, bin_dir: Path, *, data_dir: Path, host: str = "127.0.0.1",
                 ports: Mapping[str, int] = DEFAULT_PORTS, in_memory: bool = False,
                 account: tuple[str, str] | None = None, startup_timeout: float = 20.0,
                 stop_grace: float = 5.0, detached: bool = False) -> None:
        unknown = set(ports) - set(SERVICES)
        if unknown or not ports:
            raise ValueError(f"ports must map some of {SERVICES}, got {sorted(ports)}")
        self.bin_dir = bin_dir
        self.data_dir = data_dir
        self.host = host
        self.ports = dict(ports)
        self.in_memory = in_memory
        self.account = account
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        # Detached: a session of its own, not tied to this process's life, its pids
        # recorded in the data folder (see app_azurite.py).
        self.detached = detached
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE_NAME

    @property
    def pids(self) -> dict[str, int]:
        return {service: proc.pid for service, proc in self._procs.items()}

    @property
    def endpoints(self) -> StorageEndpoints:
        """Endpoints of the emulated account, for services this instance runs or not."""
        name, key = self.account or (DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY)
        ports = {**DEFAULT_PORTS, **self.ports}
        urls = [f"http://{url_host(self.host)}:{ports[s]}/{name}" for s in SERVICES]
        return StorageEndpoints(name, key, *urls)

    async def start(self) -> None:
        """Start the services concurrently and return once each one accepts connections."""
        if self._procs:
            raise AzuriteError("This managed Azurite is already running.")
        node = shutil.which("node")
        if node is None:
            raise AzuriteError(
                "Azurite needs Node.js but `node` is not on PATH: install Node.js 20 or "
                "later, or start a storage emulator yourself.")
        try:
            try:
                self.data_dir.mkdir(parents=True, exist_ok=True)
                with open(self.log_path, "wb") as log:
                    for service, port in self.ports.items():
                        self._procs[service] = self._spawn(node, service, port, log.fileno())
            except OSError as error:
                raise AzuriteError(f"Could not start Azurite from {self.bin_dir} with data in "
                                   f"{self.data_dir}: {error}") from error
            await self._wait_until_answering()
        except BaseException:
            await self.stop()
            raise
        if self.detached:
            app_azurite.write_state(self.data_dir, app_azurite.EmulatorState(
                pids=self.pids, ports=dict(self.ports), host=self.host,
                data_dir=str(self.data_dir), bin_dir=str(self.bin_dir),
                started=datetime.now(timezone.utc).isoformat()))

    async def stop(self) -> None:
        """Ask every service to close (flushing its data), then kill what is left."""
        procs, self._procs = list(self._procs.values()), {}
        # SIGINT, not SIGTERM: azurite-table only closes gracefully on SIGINT.
        for proc in procs:
            _signal_group(proc, signal.SIGINT)
        deadline = time.monotonic() + self.stop_grace
        while any(proc.poll() is None for proc in procs) and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_INTERVAL)
        for proc in procs:
            _signal_group(proc, signal.SIGKILL)
        while any(proc.poll() is None for proc in procs):
            await asyncio.sleep(_POLL_INTERVAL)

    async def __aenter__(self) -> ManagedAzurite:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    def _spawn(self, node: str, service: str, port: int, log_fd: int
               ) -> subprocess.Popen[bytes]:
        args = [node, "-e", _BOOTSTRAP_JS, "--", str(self.bin_dir / f"azurite-{service}"),
                f"--{service}Host", self.host, f"--{service}Port", str(port),
                "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry"]
        # No keep-alive flag: in Azurite 3.37 the standalone services ignore theirs and keep
        # Node's 5 s, so clients must drop idle connections sooner than that.
        if self.in_memory:
            args.append("--inMemoryPersistence")
        else:
            args += ["--location", str(self.data_dir)]
        env = dict(os.environ)
        if self.account is not None and self.account != (DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY):
            env["AZURITE_ACCOUNTS"] = f"{self.account[0]}:{self.account[1]}"
        if self.detached:
            return subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log_fd, stderr=subprocess.STDOUT,
                cwd=self.data_dir, env=env, start_new_session=True, close_fds=True)
        return subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log_fd, stderr=subprocess.STDOUT,
            cwd=self.data_dir, env=env, preexec_fn=_child_setup(os.getpid()),
            close_fds=True)

    async def _wait_until_answering(self) -> None:
        pending = dict(self.ports)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            answers = await asyncio.gather(
                *(port_answers(self.host, port) for port in pending.values()))
            for service, answered in zip(list(pending), answers, strict=True):
                code = self._procs[service].poll()
                if code is not None:
                    raise AzuriteError(self._exit_message(service, code))
                if answered:
                    del pending[service]
            if not pending:
                return
            if time.monotonic() >= deadline:
                where = ", ".join(f"{s} on {self.host}:{p}" for s, p in pending.items())
                raise AzuriteError(
                    f"Azurite did not answer within {self.startup_timeout:g} s ({where}); "
                    f"see {self.log_path}.")
            await asyncio.sleep(_POLL_INTERVAL)

    def _exit_message(self, service: str, code: int) -> str:
        message = (f"Azurite {service} service exited with code {code} before answering on "
                   f"{self.host}:{self.ports[service]}")
        reason = _last_error_line(self.log_path)
        return f"{message}: {reason} (log: {self.log_path})" if reason else (
            f"{message}; see {self.log_path}.")


def _child_setup(parent_pid: int) -> Callable[[], None]:
    """Runs in the child between fork and exec: own process group, die with the parent."""
    # Looked up here, in the parent: loading a library after fork can deadlock.
    prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None

    def setup() -> None:
        os.setpgid(0, 0)
        if prctl is not None:
            # SIGKILL: nobody is left to escalate, and Azurite's stores survive it (atomic
            # renames, autosave every 5 s). The signal is tied to the thread that forks,
            # so start Azurite from a thread that lives as long as the host.
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            if os.getppid() != parent_pid:  # the parent died before prctl took effect
                os._exit(1)
    return setup


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # Only while the leader is unreaped: its pid is then still ours and names its group.
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


def _last_error_line(log_path: Path) -> str:
    try:
        lines = [line.strip() for line in
                 log_path.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [""])[-1]


# --- what the host calls ----------------------------------------------------------------


# Azurite's queue service pauses for seconds now and then (its garbage collection, a large
# queue): a silent port is asked again for this long before it counts as a stranger.
SILENT_PORT_PATIENCE = 30.0


async def storage_answer(host: str, port: int, timeout: float = 5.0,
                         patience: float = SILENT_PORT_PATIENCE) -> str | None:
    """None when an Azure Storage service (Azurite or another emulator) answers HTTP on
    host:port; otherwise what answers instead, for the error message. A server that accepts
    the connection but stays silent is asked again (each attempt `timeout` seconds) until
    `patience` seconds have passed, and said once, since the emulator may only be paused."""
    deadline = time.monotonic() + patience
    said = False
    while True:
        answer = await _storage_answer_once(host, port, timeout)
        if answer != _SILENT or time.monotonic() + timeout > deadline:
            return answer
        if not said:
            said = True
            log.info("The storage emulator on %s:%d accepted a connection but has not "
                     "answered for %g s; waiting up to %g s (Azurite pauses now and then).",
                     url_host(host), port, timeout, patience)


_SILENT = "a server that does not answer HTTP"


async def _storage_answer_once(host: str, port: int, timeout: float) -> str | None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        return f"nothing that accepts connections ({exc})"
    try:
        writer.write(f"GET /{DEV_ACCOUNT_NAME}?comp=properties HTTP/1.1\r\n"
                     f"Host: {url_host(host)}:{port}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.read(4096), timeout)
    except (OSError, asyncio.TimeoutError):
        return _SILENT
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    text = head.decode("latin-1", "replace")
    lines = text.split("\r\n")
    if not lines[0].startswith("HTTP/"):
        return "a server that does not speak HTTP"
    headers = {line.split(":", 1)[0].strip().lower(): line.split(":", 1)[1].strip()
               for line in lines[1:] if ":" in line}
    # Azurite names itself; Azure Storage (and other emulators) answer with a request id.
    server = headers.get("server")
    if "x-ms-request-id" in headers or (server or "").lower().startswith("azurite"):
        return None
    return f"an HTTP server{f' ({server})' if server else ''} that is not Azure Storage"


async def ensure_storage(conn: str, app_root: Path, manage: bool, *, detach: bool = False
                         ) -> tuple[StorageEndpoints, ManagedAzurite | None]:
    """The storage to use, starting Azurite when the connection string wants a local one
    that is not running. The caller owns (and must stop) the returned ManagedAzurite.
    With `detach` (the host) the Azurite started is the app's detached one, which outlives
    this process: none is returned, and one recorded for the app is waited for and reused
    rather than started twice (see app_azurite.py). Raises AzuriteError (one line saying
    what to do) when the emulator is missing and cannot be started, or when something
    else holds one of its ports."""
    endpoints = parse_connection_string(conn)
    if not endpoints.is_local_emulator:
        return endpoints, None
    data_dir = app_root / DATA_DIR_NAME
    recorded = app_azurite.read_state(data_dir)
    if recorded is not None and recorded.alive():
        # Ours, from an earlier start: wait while it starts (or saves and exits).
        await _settle(recorded)
        recorded = app_azurite.read_state(data_dir)
    addresses = {service: endpoints.address(service) for service in SERVICES}
    answers = await asyncio.gather(*(port_answers(h, p) for h, p in addresses.values()))
    missing = {s: addr for (s, addr), ok in zip(addresses.items(), answers, strict=True)
               if not ok}
    running = {s: addr for s, addr in addresses.items() if s not in missing}
    strangers = await asyncio.gather(*(storage_answer(h, p) for h, p in running.values()))
    for (service, (host, port)), stranger in zip(running.items(), strangers, strict=True):
        if stranger is not None:
            raise AzuriteError(
                f"Port {port} on {url_host(host)}, where AzureWebJobsStorage expects the "
                f"{service} service of the storage emulator, is held by {stranger}: stop "
                "it, or give the emulator other ports in the connection string.")
    if not missing:
        shown = ", ".join(f"{s} {url_host(h)}:{p}" for s, (h, p) in addresses.items())
        if recorded is not None and recorded.alive() and \
                {s: p for s, (_, p) in addresses.items()} == recorded.ports:
            log.info("Using the Azurite funclocal started for this app (%s, data in %s); "
                     "it keeps running when funclocal exits: `funclocal azurite stop` "
                     "stops it.", shown, recorded.data_dir)
        else:
            log.info("Using the storage emulator already running (%s); funclocal did not "
                     "start it and will not stop it.", shown)
        return endpoints, None
    where = ", ".join(f"{url_host(host)}:{port}" for host, port in missing.values())
    if not manage:
        raise AzuriteError(
            f"Azure Storage emulator not reachable at {where} and managed Azurite is off "
            "(--no-azurite): start an emulator there, or set AzureWebJobsStorage to a "
            "storage account.")
    found = find_azurite(app_root)
    if found is None:
        raise AzuriteError(
            f"Azure Storage emulator not reachable at {where} and Azurite is not "
            f"installed: {not_installed_advice()}.")
    if recorded is not None and recorded.alive():
        raise AzuriteError(
            f"The Azurite funclocal started for this app (pids "
            f"{', '.join(map(str, recorded.alive().values()))}, data in {data_dir}) is "
            f"running but does not answer at {where}: `funclocal azurite stop --script-root "
            f"{app_root}` stops it.")
    host = next(iter(missing.values()))[0]
    azurite = ManagedAzurite(
        found.bin_dir, data_dir=data_dir,
        host="127.0.0.1" if host == "localhost" else host,
        ports={service: port for service, (_, port) in missing.items()},
        account=(endpoints.account_name, endpoints.account_key), detached=detach)
    await azurite.start()
    shown = ", ".join(f"{s} {p}" for s, p in azurite.ports.items())
    if detach:
        log.info("Started Azurite (%s) from %s (%s) with data in %s. It keeps running when "
                 "funclocal exits, so a crash loses nothing it saved and the next start "
                 "reuses it: `funclocal azurite stop` stops it.", shown, found.bin_dir,
                 found.found_in, azurite.data_dir)
        return endpoints, None
    log.info("Started Azurite (%s) from %s (%s) with data in %s; it stops with funclocal.",
             shown, found.bin_dir, found.found_in, azurite.data_dir)
    return endpoints, azurite


async def _settle(state: app_azurite.EmulatorState, timeout: float = 20.0) -> None:
    """Wait until the recorded emulator answers on all its ports, or its processes are
    gone (it was stopping), for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not state.alive():
            return
        answers = await asyncio.gather(*(port_answers(state.host, p)
                                         for p in state.ports.values()))
        if all(answers):
            return
        await asyncio.sleep(0.1)
