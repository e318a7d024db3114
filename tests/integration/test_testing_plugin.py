"""The pytest plugin of runtime.testing, used as a user uses it: pytester writes test
files in a fresh folder and runs pytest on them in a new process, against the sample app
in function_app/, in memory and on Azurite, in pytest-asyncio's strict and auto modes,
and with pytest-xdist."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest

from runtime.storage.connection import StorageEndpoints

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "function_app"
INSTALLED = any(ep.value == "runtime.testing.plugin"
                for ep in importlib.metadata.entry_points(group="pytest11"))

CHAINING_AND_APPROVAL = """
from datetime import timedelta

import pytest

both = pytest.mark.parametrize("durable_env", ["memory", "azurite"], indirect=True)


@both
async def test_chaining(durable_env):
    instance_id = await durable_env.client.start_new("hello_orchestrator")
    status = await durable_env.wait_for_completion(instance_id)
    assert status.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


@both
async def test_approval_escalates_after_three_days(durable_env):
    instance_id = await durable_env.client.start_new("expense_approval", None, {"amount": 500})
    await durable_env.wait_for_status(instance_id, "Running")
    await durable_env.fast_forward(timedelta(days=3))
    status = await durable_env.wait_for_completion(instance_id)
    assert status.output == "escalated"
    assert durable_env.storage in ("memory", "azurite")
"""


@pytest.fixture
def run(pytester: pytest.Pytester, azurite: StorageEndpoints):
    """Run pytest in a new process on the files written so far; `own_azurite` leaves
    the inner session to start its own Azurite instead of using this session's."""
    def go(*args: str, own_azurite: bool = False) -> pytest.RunResult:
        options = ([] if INSTALLED else ["-p", "runtime.testing.plugin"]) + [
            "-p", "no:cacheprovider", f"--funclocal-app={APP}"]
        if not own_azurite:
            options.append(f"--funclocal-azurite-connection={azurite.connection_string}")
        return pytester.runpytest_subprocess(*options, *args, timeout=240)
    return go


def test_both_storage_modes_in_auto_mode_with_a_managed_azurite(pytester, run):
    pytester.makepyfile(test_app=CHAINING_AND_APPROVAL)

    result = run("-o", "asyncio_mode=auto", "-v", own_azurite=True)

    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_approval_escalates_after_three_days?azurite? PASSED*"])


def test_strict_mode_with_a_loop_per_test(pytester, run):
    # Strict mode's default gives each test its own event loop: the SDK's process-wide
    # session would fail the second test with "Event loop is closed".
    pytester.makepyfile(test_app="""
        import azure.durable_functions as df
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("round", [1, 2, 3])
        async def test_client_calls(durable_env, round):
            instance_id = await durable_env.client.start_new("fan_out_fan_in", None, round)
            status = await durable_env.wait_for_completion(instance_id)
            assert status.output["count"] == round
            own = df.DurableOrchestrationClient(durable_env.client_binding)
            assert (await own.get_status(instance_id)).output["count"] == round

        def test_a_plain_test_can_use_it_too(durable_env):
            assert "hello_orchestrator" in durable_env.functions
    """)

    result = run("-o", "asyncio_mode=strict")

    result.assert_outcomes(passed=4)
    assert "Event loop is closed" not in result.stdout.str()


def test_a_failed_assertion_reports_the_history(pytester, run):
    pytester.makepyfile(test_app="""
        async def test_wrong_expectation(durable_env):
            instance_id = await durable_env.client.start_new("hello_orchestrator")
            status = await durable_env.wait_for_completion(instance_id)
            assert status.output == ["Hello Paris!"]
    """)

    result = run("-o", "asyncio_mode=auto")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*- funclocal -*",
        "Task hub t*wrongexpectation (durable time *):",
        "Instance '*' (hello_orchestrator): Completed, output *Hello Tokyo!*",
        "*ExecutionStarted 'hello_orchestrator'*",
        "*TaskScheduled #0 'hello_activity'*",
        "*TaskCompleted (of #0) result=\"Hello Tokyo!\"*",
        "*ExecutionCompleted #3 status=Completed*",
    ])


def test_a_timed_out_wait_says_what_the_instance_waits_for(pytester, run):
    pytester.makepyfile(test_app="""
        import pytest

        @pytest.mark.funclocal("azurite")
        async def test_forgot_to_approve(durable_env):
            instance_id = await durable_env.client.start_new("expense_approval", None,
                                                             {"amount": 5, "deadlineDays": 3})
            await durable_env.wait_for_completion(instance_id, timeout=1)
    """)

    result = run("-o", "asyncio_mode=auto")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "E*WaitTimeout: Waited 1 s for instance '*' (expense_approval) to complete; "
        "it is Running.",
        "E*Custom status: {\"waitingFor\": \"Approval\", \"until\": *}",
        "E*Durable time (virtual) is *",
        "E*It waits for external event(s): Approval.",
        "E*Its timers are due at *",
        "E*Time does not skip by itself while an instance waits for an event *",
        "E*History of '*':",
        "E*TimerCreated #0 fire_at=*",
    ])


def test_a_stubbed_activity_and_its_calls(pytester, run):
    pytester.makepyfile(test_app="""
        ORDER = {"orderId": "B-1", "items": [{"sku": "PEN"}], "card": "4111", "email": "x@y.z"}

        async def test_emails_are_recorded_not_sent(durable_env):
            email = durable_env.stub_activity("EmailCustomer", result={"sent": False})
            instance_id = await durable_env.client.start_new("PlaceOrder", None, ORDER)
            status = await durable_env.wait_for_completion(instance_id)
            assert status.runtime_status.value == "Completed"
            assert email.call_count == 1
            assert email.inputs[0]["email"] == "x@y.z"
            assert email.calls[0].result == {"sent": False}
            assert "Reason='stubbed by the test'" in durable_env.console.text

        async def test_the_stub_is_gone_in_the_next_test(durable_env):
            instance_id = await durable_env.client.start_new("PlaceOrder", None, ORDER)
            await durable_env.wait_for_completion(instance_id)
            assert "Emailed x@y.z" in durable_env.console.text

        async def test_an_unknown_activity_cannot_be_stubbed(durable_env):
            import pytest
            from runtime.testing import HarnessError
            with pytest.raises(HarnessError, match="no activity named 'Nope'.*EmailCustomer"):
                durable_env.stub_activity("Nope", result=1)
    """)

    result = run("-o", "asyncio_mode=auto", "-p", "no:randomly")

    result.assert_outcomes(passed=3)


def test_fast_forward_over_a_multi_day_timer_follows_virtual_time(pytester, run):
    pytester.makepyfile(test_app="""
        from datetime import timedelta
        import pytest
        from runtime.testing import EventType

        @pytest.mark.parametrize("durable_env", ["memory", "azurite"], indirect=True)
        async def test_ten_days(durable_env):
            start = durable_env.now()
            instance_id = await durable_env.client.start_new(
                "expense_approval", None, {"amount": 1, "deadlineDays": 10})
            await durable_env.fast_forward(timedelta(days=9, hours=23))
            assert (await durable_env.client.get_status(instance_id)).runtime_status.value \\
                == "Running"
            await durable_env.fast_forward(timedelta(hours=1))
            status = await durable_env.wait_for_completion(instance_id)
            assert status.output == "escalated"
            history = await durable_env.history(instance_id)
            # As the extension does on Azure Storage, a timer over 6 days is a chain of
            # timers of at most 3 days; each episode runs at its timer's due time.
            fired = [i for i, e in enumerate(history) if e.type == EventType.TimerFired]
            resumed = [history[i - 1] for i in fired]
            assert [e.type for e in resumed] == [EventType.OrchestratorStarted] * 3
            assert [e.timestamp - start for e in resumed] == [
                timedelta(days=3), timedelta(days=6), timedelta(days=10)]
            assert durable_env.now() - start == timedelta(days=10)
    """)

    result = run("-o", "asyncio_mode=auto")

    result.assert_outcomes(passed=2)


def test_two_xdist_workers_share_nothing(pytester, run):
    # Each test sees only its own instance, though the workers run tests side by side on
    # one Azurite: the task hubs are apart.
    pytester.makepyfile(test_app="""
        import pytest

        @pytest.mark.parametrize("durable_env", ["memory", "azurite"] * 3, indirect=True)
        async def test_one(durable_env):
            instance_id = await durable_env.client.start_new("hello_orchestrator")
            status = await durable_env.wait_for_completion(instance_id)
            assert status.output[0] == "Hello Tokyo!"
            listed = await durable_env.client.get_status_all()
            assert [s.instance_id for s in listed] == [instance_id]
    """)

    result = run("-o", "asyncio_mode=auto", "-n", "2", "-v")

    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*[[]gw0[]]*PASSED*"])
    result.stdout.fnmatch_lines(["*[[]gw1[]]*PASSED*"])


def test_clear_errors_for_a_missing_app(pytester: pytest.Pytester):
    pytester.makepyfile(test_app="""
        def test_needs_the_app(durable_env):
            pass
    """)
    options = [] if INSTALLED else ["-p", "runtime.testing.plugin"]

    result = pytester.runpytest_subprocess(*options, "-p", "no:cacheprovider", timeout=120)

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*durable_env needs the function app's folder: pass "
                                 "--funclocal-app DIR*"])

    result = pytester.runpytest_subprocess(*options, "-p", "no:cacheprovider",
                                           "--funclocal-app=nowhere", timeout=120)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*The function app folder nowhere does not exist.*"])


def test_an_app_that_does_not_import_is_reported_with_its_traceback(pytester, run):
    app = pytester.mkdir("broken_app")
    (app / "function_app.py").write_text("import azure.functions as func\n"
                                         "app = func.FunctionApp()\n"
                                         "raise RuntimeError('no database configured')\n")
    pytester.makepyfile(test_app="""
        import pytest

        @pytest.mark.funclocal(app="broken_app")
        def test_it(durable_env):
            pass
    """)

    result = run()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*Error importing function_app.py: RuntimeError: no database configured*",
        "*raise RuntimeError('no database configured')*"])


def test_pytest_loads_the_plugin_through_its_entry_point(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '[project.entry-points.pytest11]\nfunclocal = "runtime.testing.plugin"\n' \
        in pyproject
    if not INSTALLED:
        # This environment's funclocal was installed before the entry point existed: a
        # distribution declaring the same entry point stands in for a fresh install.
        dist = pytester.mkdir("site") / "funclocal_entry-0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: funclocal-entry\n"
                                       "Version: 0\n")
        (dist / "entry_points.txt").write_text("[pytest11]\nfunclocal = "
                                               "runtime.testing.plugin\n")
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
            [str(dist.parent), os.environ.get("PYTHONPATH", "")]))
    pytester.makepyfile(test_app="""
        def test_the_fixture_is_there(durable_env):
            assert durable_env.storage == "memory"
    """)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           f"--funclocal-app={APP}", "--trace-config",
                                           timeout=120)

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*funclocal*runtime/testing/plugin.py*"])
