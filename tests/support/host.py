"""Start the real host as a user would (`python -m runtime start ...`) and talk HTTP to it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.storage import app_azurite
from runtime.storage.azurite import DATA_DIR_NAME

REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "tests" / "apps"
VERIFY_REPLAY_ENV = "FUNCLOCAL_VERIFY_REPLAY"  # runtime.worker.child.orchestrations.VERIFY_ENV
REPLAY_MISMATCH = "REPLAY MISMATCH"  # runtime.worker.child.orchestrations.MISMATCH


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


def request(method: str, url: str, body: bytes | str | None = None,
            headers: Mapping[str, str] | None = None, timeout: float = 60.0) -> Response:
    data = body.encode("utf-8") if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()},
                            resp.read())
    except urllib.error.HTTPError as err:
        return Response(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


@dataclass
class RawResponse:
    """A response with every header line kept, in order (names lower-cased)."""

    status: int
    header_lines: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.header_lines if k == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(url: str, method: str = "GET", *,
                headers: list[tuple[str, str]] | None = None,
                body: bytes | None = None, chunked: bool = False,
                timeout: float = 60.0) -> RawResponse:
    """One request with full control over the header lines (a name may repeat, a value
    may be empty) and the body's framing (`chunked`: Transfer-Encoding, no
    Content-Length), as curl or a browser can send them."""
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port,
                                            timeout=timeout)
    try:
        target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers or []:
            connection.putheader(name, value)
        if chunked:
            connection.putheader("Transfer-Encoding", "chunked")
        elif body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        if body is not None:
            connection.send(f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
                            if chunked else body)
        response = connection.getresponse()
        lines = [(k.lower(), v) for k, v in response.getheaders()]
        return RawResponse(response.status, lines, response.read())
    finally:
        connection.close()


@dataclass
class HostProcess:
    script_root: Path
    port: int
    process: subprocess.Popen[bytes]
    output: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path: str, **kwargs: Any) -> Response:
        return request("GET", self.url(path), **kwargs)

    def post(self, path: str, body: bytes | str | None = None, **kwargs: Any) -> Response:
        return request("POST", self.url(path), body, **kwargs)

    def request_json(self, method: str, path: str, body: bytes | str | None = None) -> Any:
        response = request(method, self.url(path), body)
        assert response.status < 300, (response.status, response.text)
        return response.json()

    def log_text(self) -> str:
        """The console so far; once the process has exited, all of it (the reader thread
        may still be taking the last lines from the pipe)."""
        if self._reader is not None and self.process.poll() is not None:
            self._reader.join(5)
        return "\n".join(self.output)

    def wait_for_log(self, fragment: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if fragment in self.log_text():
                return
            time.sleep(0.02)
        raise AssertionError(f"'{fragment}' not in the host log:\n{self.log_text()}")

    def interrupt(self, timeout: float = 20.0) -> int:
        """Ctrl-C as a terminal sends it: SIGINT to the host's whole process group."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.stop()

    def count(self, fragment: str) -> int:
        return sum(fragment in line for line in self.output)

    def stop(self, timeout: float = 20.0, *, keep_azurite: bool = False) -> int:
        """Stop the host (SIGTERM), and the detached Azurite it started for the app
        unless `keep_azurite` (it outlives the host by design; tests leave none)."""
        try:
            return self._stop(timeout)
        finally:
            if not keep_azurite:
                app_azurite.stop(self.script_root / DATA_DIR_NAME)

    def _stop(self, timeout: float) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._reader is not None:
            self._reader.join(5)
        mismatches = [line for line in self.output if REPLAY_MISMATCH in line]
        assert not mismatches, "the fast replay differed from the unmodified SDK:\n" + \
            "\n".join(mismatches)
        return int(self.process.returncode)


def start_host(script_root: Path, *, env: Mapping[str, str] | None = None,
               args: list[str] | None = None, wait: bool = True,
               timeout: float = 60.0, port: int | None = None,
               reload: bool = False, program: list[str] | None = None,
               base_env: Mapping[str, str] | None = None,
               port_flag: bool = True) -> HostProcess:
    """Start the host on `script_root`; with reload=True it watches the app's files (the
    tests' default is --no-reload).

    `program` replaces `python -m runtime` (the installed `funclocal` script, run from
    the app's folder without --script-root, as a user runs it); `base_env` replaces
    this process's environment; without `port_flag` the app's settings choose the
    port (`port` must then be the one they name). The host leads its own process group,
    as a command started from a terminal does (`interrupt` sends it Ctrl-C)."""
    port = port or free_port()
    source = os.environ if base_env is None else base_env
    # The workers' interpreter follows VIRTUAL_ENV: tests name theirs explicitly.
    full_env = {k: v for k, v in source.items()
                if not k.startswith("FUNCTIONS_") and k != "VIRTUAL_ENV"}
    # Every orchestrator episode is also replayed by the unmodified SDK and compared;
    # stop() fails the test on any difference.
    full_env.setdefault(VERIFY_REPLAY_ENV, "1")
    full_env.update(env or {})
    if program is None:
        cmd = [sys.executable, "-m", "runtime", "start", "--script-root", str(script_root)]
        cwd = REPO
    else:
        cmd, cwd = [*program, "start"], script_root
    cmd += [*(["--port", str(port)] if port_flag else []),
            *([] if reload else ["--no-reload"]), *(args or [])]
    process = subprocess.Popen(cmd, cwd=str(cwd), env=full_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    host = HostProcess(script_root, port, process)

    def pump() -> None:
        assert process.stdout is not None
        for line in iter(process.stdout.readline, b""):
            host.output.append(line.decode("utf-8", "replace").rstrip("\n"))

    host._reader = threading.Thread(target=pump, daemon=True)
    host._reader.start()
    if wait:
        wait_until_running(host, timeout)
    return host


def wait_until_running(host: HostProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if host.process.poll() is not None:
            raise AssertionError(f"host exited with {host.process.returncode}:\n"
                                 f"{host.log_text()}")
        try:
            status = request("GET", host.url("/admin/host/status"), timeout=2)
            if status.status == 200 and status.json().get("state") == "Running":
                return
            if status.status == 401 and "Host started on" in host.log_text():
                return  # auth is on: the banner line says the host is up
        except OSError:
            pass
        time.sleep(0.02)
    host.stop()
    raise AssertionError(f"host did not start within {timeout}s:\n{host.log_text()}")


def run_cli(*args: str, env: Mapping[str, str] | None = None,
            timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "runtime", *args], cwd=str(REPO),
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def child_pids(pid: int) -> list[int]:
    """Direct and indirect children of a process, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False
