"""The sample app's approval with a three-day deadline (`expense_approval`), as a
Temporal workflow, for bench/harness.py. A module of its own: the workflow sandbox
re-imports the module that defines the workflows."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

DEADLINE = timedelta(days=3)


@activity.defn
async def escalate(amount: float) -> str:
    return "escalated"


@workflow.defn
class ExpenseApproval:
    def __init__(self) -> None:
        self.approver: str | None = None

    @workflow.signal
    def approve(self, approver: str) -> None:
        self.approver = approver

    @workflow.run
    async def run(self, amount: float) -> str:
        try:
            await workflow.wait_condition(lambda: self.approver is not None,
                                          timeout=DEADLINE)
            return f"approved by {self.approver}"
        except asyncio.TimeoutError:
            return await workflow.execute_activity(
                escalate, amount, start_to_close_timeout=timedelta(seconds=60))
