"""Orchestration versioning, as DurableTask.Core checks it before running a work item
(TaskOrchestrationDispatcher with VersioningSettings), pure.

The worker version is host.json's `defaultVersion`; the instance version is its
ExecutionStarted's `Version`. With `versionMatchStrategy` None nothing is checked,
Strict wants them equal, CurrentOrOlder refuses instances newer than the worker.
"""

from __future__ import annotations

import re

MISMATCH = "VersionMismatch: Orchestration version did not comply with Worker Versioning"

_NUMERIC = re.compile(r"\d+(\.\d+){1,3}\Z")


def compare_versions(instance: str | None, worker: str | None) -> int:
    """DTFx's CompareVersions: <0, 0 or >0 as `instance` is older, the same or newer.
    Empty versions sort first; two System.Version-like numbers compare numerically;
    anything else compares as text without regard to case."""
    left, right = (instance or "").strip(), (worker or "").strip()
    if not left and not right:
        return 0
    if not left:
        return -1
    if not right:
        return 1
    if _NUMERIC.match(left) and _NUMERIC.match(right):
        a = [int(p) for p in left.split(".")]
        b = [int(p) for p in right.split(".")]
        return (a > b) - (a < b)
    a_text, b_text = left.lower(), right.lower()
    return (a_text > b_text) - (a_text < b_text)


def allows(instance: str | None, worker: str | None, strategy: str) -> bool:
    """Whether a worker of version `worker` (host.json defaultVersion) may run an
    instance of version `instance` under versionMatchStrategy `strategy`; always True
    without a worker version (versioning is off then)."""
    if worker is None:
        return True
    if strategy == "Strict":
        return (instance or "") == (worker or "")
    if strategy == "CurrentOrOlder":
        return compare_versions(instance, worker) <= 0
    return True


__all__ = ["MISMATCH", "allows", "compare_versions"]
