"""More Durable Functions patterns, as the documentation writes them in Python v2: an
approval with a deadline, a monitor that polls with continue_as_new, a parent that fans
out to sub-orchestrations, and an activity called with retries."""

import logging
from datetime import timedelta

import azure.durable_functions as df

patterns = df.Blueprint()

CHECKS: dict[str, int] = {}  # how often each job was checked, in this worker process
ATTEMPTS: dict[str, int] = {}  # download attempts per source, in this worker process


# -- human interaction: approve within a deadline, or escalate ---------------------------

@patterns.orchestration_trigger(context_name="context")
def expense_approval(context: df.DurableOrchestrationContext):
    # The deadline: "deadlineDays" and/or "deadlineSeconds" from the input, else 3 days.
    request = context.get_input() or {}
    wait = timedelta(days=float(request.get("deadlineDays", 0)),
                     seconds=float(request.get("deadlineSeconds", 0))) or timedelta(days=3)
    deadline = context.current_utc_datetime + wait
    context.set_custom_status({"waitingFor": "Approval", "until": deadline.isoformat()})
    timeout = context.create_timer(deadline)
    approval = context.wait_for_external_event("Approval")
    winner = yield context.task_any([approval, timeout])
    if winner == approval:
        timeout.cancel()
        return f"approved by {approval.result}"
    return (yield context.call_activity("escalate", request.get("amount", 0)))


@patterns.activity_trigger(input_name="amount")
def escalate(amount: float) -> str:
    logging.info("No approval in time for %s: escalating.", amount)
    return "escalated"


# -- monitor: poll until done, one generation per check --------------------------------

@patterns.orchestration_trigger(context_name="context")
def job_monitor(context: df.DurableOrchestrationContext):
    job = context.get_input() or {}
    job.setdefault("jobId", context.instance_id)
    job.setdefault("checks", 0)
    status = yield context.call_activity("check_job", job["jobId"])
    job["checks"] += 1
    context.set_custom_status({"jobId": job["jobId"], "checks": job["checks"],
                               "status": status})
    if status == "done" or job["checks"] >= int(job.get("maxChecks", 10)):
        return {"jobId": job["jobId"], "status": status, "checks": job["checks"]}
    next_check = context.current_utc_datetime + timedelta(
        seconds=float(job.get("intervalSeconds", 2)))
    yield context.create_timer(next_check)
    context.continue_as_new(job)  # a fresh, short history for every check
    return None


@patterns.activity_trigger(input_name="job_id")
def check_job(job_id: str) -> str:
    CHECKS[job_id] = CHECKS.get(job_id, 0) + 1
    return "done" if CHECKS[job_id] >= 3 else "running"


# -- sub-orchestrations: a report per region, put together by the parent ---------------

@patterns.orchestration_trigger(context_name="context")
def sales_report(context: df.DurableOrchestrationContext):
    regions = context.get_input() or ["north", "south", "east", "west"]
    totals = yield context.task_all(
        [context.call_sub_orchestrator("region_report", region) for region in regions])
    return {"regions": dict(zip(regions, totals, strict=True)), "total": sum(totals)}


@patterns.orchestration_trigger(context_name="context")
def region_report(context: df.DurableOrchestrationContext):
    region = context.get_input()
    sales = yield context.call_activity("region_sales", region)
    return sum(sales)


@patterns.activity_trigger(input_name="region")
def region_sales(region: str) -> list:
    return [len(region) * 100, len(region) * 10]


# -- retries: an activity that fails twice, then succeeds ------------------------------

@patterns.orchestration_trigger(context_name="context")
def download_with_retries(context: df.DurableOrchestrationContext):
    source = context.get_input() or context.instance_id
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=1000,
                            max_number_of_attempts=3)
    return (yield context.call_activity_with_retry("download", retry, source))


@patterns.activity_trigger(input_name="source")
def download(source: str) -> str:
    ATTEMPTS[source] = ATTEMPTS.get(source, 0) + 1
    if ATTEMPTS[source] < 3:
        raise ConnectionError(f"{source} is busy (attempt {ATTEMPTS[source]})")
    return f"downloaded {source} on attempt {ATTEMPTS[source]}"
