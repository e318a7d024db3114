"""An activity work item's outcome as the history event its orchestration receives
(pure): TaskCompleted with the activity's JSON text, or TaskFailed with the extension's
Reason and Details (TaskActivityShim)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from runtime.durable import history
from runtime.durable.engine import wording


def scheduled_id(event: Mapping[str, Any]) -> int:
    """The sequence number of a TaskScheduled event (the TaskScheduledId of its reply)."""
    return int(event.get("EventId", -1))


def completed(event: Mapping[str, Any], result_text: str | None,
              now: datetime) -> dict[str, Any]:
    """TaskCompleted for `event` (a TaskScheduled); the result is stored verbatim."""
    return history.task_completed(scheduled_id(event), "null" if result_text is None
                                  else result_text, now)


def raised(event: Mapping[str, Any], exc_type: str, message: str, traceback_text: str,
           now: datetime) -> dict[str, Any]:
    """TaskFailed for an activity whose code raised `exc_type: message`."""
    name = str(event.get("Name"))
    details = json.dumps({"ClassName": exc_type, "Message": message,
                          "StackTrace": traceback_text})
    return history.task_failed(scheduled_id(event), wording.activity_failed(
        name, f"{exc_type}: {message}"), details, now)


def failed(event: Mapping[str, Any], detail: str, now: datetime) -> dict[str, Any]:
    """TaskFailed for an activity that could not run to an answer (timeout, its worker
    died too often): `detail` says why."""
    return history.task_failed(scheduled_id(event), wording.activity_failed(
        str(event.get("Name")), detail), None, now)


def unknown(event: Mapping[str, Any], known_activities: list[str],
            now: datetime) -> dict[str, Any]:
    """TaskFailed for an activity name the app does not register."""
    return history.task_failed(scheduled_id(event), wording.unknown_activity_message(
        str(event.get("Name")), known_activities), None, now)


__all__ = ["completed", "failed", "raised", "scheduled_id", "unknown"]
