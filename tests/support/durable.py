"""Helpers for durable tests: the management API, starting and waiting for instances."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runtime.storage.connection import StorageEndpoints
from support.host import APPS, HostProcess, Response, request, start_host

WEBHOOK = "/runtime/webhooks/durabletask"


def start_durable_host(azurite: StorageEndpoints, hub: str, *, port: int | None = None,
                       env: dict[str, str] | None = None, host_json: Path | None = None,
                       wait: bool = True) -> HostProcess:
    """The host on tests/apps/durable with its state in `azurite`, under task hub `hub`."""
    args = ["--no-azurite"] + (["--host-json", str(host_json)] if host_json else [])
    return start_host(APPS / "durable", env={
        "AzureWebJobsStorage": azurite.connection_string, "TEST_HUB_NAME": hub,
        **(env or {})}, args=args, port=port, wait=wait)


def durable_host_for_test(azurite: StorageEndpoints, hub: str) -> Iterator[HostProcess]:
    """The body of a `host` fixture: the started host, stopped after the test."""
    process = start_durable_host(azurite, hub)
    yield process
    process.stop()


def api(host: HostProcess, method: str, path: str, body: str | bytes | None = None,
        headers: dict[str, str] | None = None) -> Response:
    return request(method, host.url(WEBHOOK + path), body, headers)


def start(host: HostProcess, name: str, payload: Any = None, instance_id: str | None = None,
          query: str = "") -> str:
    path = f"/api/start/{name}"
    params = [f"instance_id={instance_id}"] if instance_id else []
    if query:
        params.append(query)
    if params:
        path += "?" + "&".join(params)
    response = host.post(path, None if payload is None else json.dumps(payload))
    assert response.status == 202, response.text
    return str(response.json()["id"])


def wait_done(host: HostProcess, instance_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = api(host, "GET", f"/instances/{instance_id}")
        if response.status == 200:
            return dict(response.json())
        assert response.status == 202, response.text
        time.sleep(0.05)
    raise AssertionError(f"{instance_id} did not finish:\n{host.log_text()[-5000:]}")


def wait_status(host: HostProcess, instance_id: str, predicate: Any,
                timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = api(host, "GET", f"/instances/{instance_id}")
        if response.status in (200, 202) and predicate(response.json()):
            return dict(response.json())
        time.sleep(0.05)
    raise AssertionError(f"{instance_id} never matched:\n{host.log_text()[-5000:]}")
