"""Integration tests for a Durable Functions app: the app in a real funclocal host, a
fresh task hub per test (in memory, or in Azurite), virtual time, activity stubs.

    from datetime import timedelta
    from runtime.testing import DurableEnvironment

    async def test_approval_escalates_after_three_days():
        async with DurableEnvironment.in_memory("path/to/app") as env:
            instance_id = await env.client.start_new("expense_approval", None, {"amount": 500})
            await env.wait_for_status(instance_id, "Running")
            await env.fast_forward(timedelta(days=3))
            status = await env.wait_for_completion(instance_id)
            assert status.output == "escalated"

With pytest, the `durable_env` fixture gives each test an open environment on the app
of `--funclocal-app` (or the `funclocal_app` ini option, or the rootdir when it holds
`function_app.py`); `@pytest.mark.funclocal(storage="azurite")` chooses Azurite.

The app runs as `funclocal start` runs it: indexed and invoked in worker processes
(kept warm across tests, with the app imported afresh for each one), its orchestrations
and entities driven by the host's own dispatcher, its HTTP functions served on a free
port. What changes for tests is time: durable time is virtual and moves only with
`fast_forward`, or by itself while a wait waits and every running instance waits only on
timers.
"""

from __future__ import annotations

from runtime.durable.history import EventType
from runtime.errors import HarnessError, WaitTimeout
from runtime.testing.capture import Console
from runtime.testing.environment import DEFAULT_TIMEOUT, DurableEnvironment
from runtime.testing.history import HistoryEvent, format_history
from runtime.testing.http import HttpClient, HttpResponse
from runtime.testing.shared import shutdown
from runtime.testing.stubs import ActivityCall, ActivityStub

__all__ = [
    "DEFAULT_TIMEOUT",
    "ActivityCall",
    "ActivityStub",
    "Console",
    "DurableEnvironment",
    "EventType",
    "HarnessError",
    "HistoryEvent",
    "HttpClient",
    "HttpResponse",
    "WaitTimeout",
    "format_history",
    "shutdown",
]
