"""The entity worker: a batch of operations for one entity per work item.

The orchestration worker hands it the sessions of instances whose id starts with `@`.
A batch: the entity's state from its history, the requests that are new (see
`engine/entities.py` for exactly-once), one invocation of the entity function per
`maxEntityOperationBatchSize` operations, then the commit in DurableTask.AzureStorage's
order: the answers to callers, the history (a new execution holding the state, written
with the sentinel ETag), the Instances row, the deletion of the consumed messages. The
deletions finish before the entity's next batch starts; the next batch's state forgets
the ids whose deletion succeeded and keeps the others "in doubt" until they can no longer
come back (see `engine/entities.py`), so a request is applied once across crashes and
expired locks.

An operation that raises is answered with its error and leaves the state as it was
before it: when a batch has a failure (or the invocation fails as a whole, e.g. a state
that cannot be serialised), the batch is run again one operation at a time from the
state before it, so each failing operation is rolled back alone.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from runtime import console
from runtime.clock import Clock
from runtime.config import DurableTaskConfig
from runtime.durable import engine
from runtime.durable.activities import MAX_WORKER_EXITS
from runtime.durable.app import ENTITY_TRIGGER, ORCHESTRATION_TRIGGER, AppFunctions
from runtime.durable.checkpoint import Checkpoint
from runtime.durable.engine import entities as rules
from runtime.durable.inflight import HistoryCache, Pending, WorkerExits
from runtime.durable.taskhub import HistorySnapshot, TaskHub
from runtime.errors import (
    FunctionInvocationError,
    InvocationTimeout,
    WorkerDied,
    WorkerError,
)

log = console.get("durable")

DOUBT_MARGIN_SECONDS = 60.0
SERVING_ENTRIES = 100_000


@dataclass
class _Outcome:
    exists: bool
    state: str | None
    results: list[rules.OperationResult]
    # Set when the invocation failed for good because it kept making its worker exit
    # (WorkerExits' verdict): its operations are then tried one at a time, each alone.
    crashed: bool = False


def _error_text(result: str | None) -> str:
    """An operation's error as a line: the SDK sends str(exception) as JSON text."""
    try:
        value = json.loads(result or "null")
    except ValueError:
        return str(result)
    return value if isinstance(value, str) else json.dumps(value)


class EntityWorker:
    """Runs entity batches; collaborators are handed in by the dispatcher."""

    def __init__(self, hub: TaskHub, config: DurableTaskConfig, app: AppFunctions,
                 clock: Clock, cache: HistoryCache, checkpoint: Checkpoint, *,
                 lock_seconds: float) -> None:
        self.hub = hub
        self.config = config
        self.app = app
        self.clock = clock
        self.cache = cache
        self.checkpoint = checkpoint
        # A message not deleted is delivered again at most one control-queue lock after
        # it was received; the margin covers polling and backlogs.
        self.horizon = timedelta(seconds=lock_seconds + DOUBT_MARGIN_SECONDS)
        self.serving_since: dict[str, datetime] = {}  # per entity, in this process
        self.deleted: dict[str, set[str]] = {}  # per entity: ids the last deletes removed
        self.exits = WorkerExits(MAX_WORKER_EXITS)  # crash attribution, by entity

    async def run(self, instance_id: str, batch: list[Pending]) -> None:
        """Run and commit one batch for the entity `instance_id`. Raises StorageError,
        CheckpointConflict or WorkerError when it did not commit (the caller gives the
        messages back)."""
        cached = self.cache.get(instance_id)
        if cached is None or instance_id not in self.serving_since:
            # (Re)starting to serve it: its history comes from storage, not this host.
            if len(self.serving_since) >= SERVING_ENTRIES:
                self.serving_since.clear()  # later starts only keep ids longer
            self.serving_since[instance_id] = self.clock.now()
        serving_since = self.serving_since[instance_id]
        snapshot = cached if cached is not None else await self.hub.load_history(instance_id)
        state = rules.state_of(snapshot.events)
        requests, _ = rules.select(state, [p.event for p in batch])
        outgoing: list[engine.OutgoingMessage] = []
        if requests:
            outcome = await self._execute(instance_id, state, requests)
            state.exists, state.state = outcome.exists, outcome.state
            for request, result in zip(requests, outcome.results, strict=True):
                if result.is_error:  # the extension's OperationFailed, in the console
                    log.warning("Entity '%s': operation '%s' failed and was rolled back: %s",
                                instance_id, request.operation, _error_text(result.result))
            outgoing = rules.responses(requests, outcome.results, self.clock.now())
        now = self.clock.now()
        state.in_doubt = rules.next_in_doubt(
            state.in_doubt, [r.request_id for r in requests], now,
            confirmed=self.deleted.pop(instance_id, set()), serving_since=serving_since,
            horizon=self.horizon)
        await self._commit(instance_id, snapshot, state, outgoing, batch, now)

    # -- running operations ------------------------------------------------------------

    async def _execute(self, instance_id: str, state: rules.SchedulerState,
                       requests: list[rules.Request]) -> _Outcome:
        runnable = [r for r in requests if r.operation]
        outcome = await self._run_operations(instance_id, state, runnable) if runnable \
            else _Outcome(state.exists, state.state, [])
        if len(runnable) == len(requests):
            return outcome
        # Lock requests (no operation name) come from SDKs with critical sections, which
        # azure-functions-durable 1.x has not: they are refused, not run.
        ran = iter(outcome.results)
        refused = rules.OperationResult(json.dumps(rules.NO_LOCKS), True)
        return _Outcome(outcome.exists, outcome.state,
                        [next(ran) if r.operation else refused for r in requests])

    async def _run_operations(self, instance_id: str, state: rules.SchedulerState,
                              requests: list[rules.Request]) -> _Outcome:
        name, key = rules.parse_scheduler_id(instance_id)
        spec = self.app.index.durable(ENTITY_TRIGGER, name)
        if spec is None or self.app.invoker is None:
            message = engine.wording.unknown_entity_message(
                name, self.app.names(ENTITY_TRIGGER), self.app.names(ORCHESTRATION_TRIGGER))
            log.warning("Entity '%s': %s", instance_id, message)
            failed = rules.OperationResult(json.dumps(message), True)
            return _Outcome(state.exists, state.state, [failed] * len(requests))
        size = self.config.max_entity_operation_batch_size
        exists, current = state.exists, state.state
        results: list[rules.OperationResult] = []
        for start in range(0, len(requests), size):
            chunk = requests[start:start + size]
            before = rules.SchedulerState(exists, current)
            outcome = await self._invoke(spec.name, spec.trigger.get("name", "context"),
                                         name, key, before, chunk)
            if isinstance(outcome, _Outcome) and outcome.crashed and len(chunk) == 1:
                pass  # the operation that kills its worker, found: it fails
            elif not isinstance(outcome, _Outcome) or any(r.is_error for r in outcome.results):
                # Roll each failing operation back alone: one operation at a time. After a
                # crash verdict each runs alone in its worker, so the one that kills it is
                # the one that fails (the others are applied).
                crashed = isinstance(outcome, _Outcome) and outcome.crashed
                outcome = await self._one_by_one(spec.name, spec.trigger.get("name", "context"),
                                                 name, key, before, chunk, crashed=crashed)
            exists, current = outcome.exists, outcome.state
            results.extend(outcome.results)
        return _Outcome(exists, current, results)

    async def _one_by_one(self, function: str, trigger: object, name: str, key: str,
                          state: rules.SchedulerState, requests: list[rules.Request], *,
                          crashed: bool = False) -> _Outcome:
        exists, current = state.exists, state.state
        results: list[rules.OperationResult] = []
        for request in requests:
            before = rules.SchedulerState(exists, current)
            outcome = await self._invoke(function, trigger, name, key, before, [request],
                                         culprit=crashed)
            if not isinstance(outcome, _Outcome):
                results.append(outcome)  # the invocation failed: this operation did
                continue
            [result] = outcome.results
            results.append(result)
            if not result.is_error:
                exists, current = outcome.exists, outcome.state
        return _Outcome(exists, current, results)

    async def _invoke(self, function: str, trigger: object, name: str, key: str,
                      state: rules.SchedulerState, requests: list[rules.Request], *,
                      culprit: bool = False) -> _Outcome | rules.OperationResult:
        """One invocation of the entity function, or the failure of the invocation as a
        whole (an error result). A timeout fails every operation with the host's message
        and keeps the state (TaskEntityShim). With `culprit` (a batch that kept making its
        worker exit is being retried one operation at a time), the invocation runs alone
        and an exit of its worker fails this operation at once."""
        assert self.app.invoker is not None
        context = rules.batch_context(name, key, state, requests)
        instance_id = rules.scheduler_id(name, key)
        try:
            value = await self.app.invoker.invoke(function, {str(trigger): context},
                                                  timeout=self.app.function_timeout,
                                                  affinity=instance_id,
                                                  exclusive=culprit or self.exits.alone(
                                                      instance_id))
        except FunctionInvocationError as exc:
            return rules.OperationResult(json.dumps(f"{exc.exc_type}: {exc.exc_message}"), True)
        except InvocationTimeout as exc:
            failed = rules.OperationResult(str(exc), True)
            return _Outcome(state.exists, state.state, [failed] * len(requests))
        except WorkerError as exc:
            if culprit and isinstance(exc, WorkerDied) and exc.alone:
                failed = rules.OperationResult(json.dumps(
                    f"{exc} The operation '{requests[0].operation}' made its worker "
                    "process exit while running alone in it, after its batch had done so "
                    f"{self.exits.limit} times, so it is not run again."), True)
                return _Outcome(state.exists, state.state, [failed], crashed=True)
            # The work item is given back and runs again alone, unless it is the batch's
            # own fault for the last time (WorkerExits).
            charged = self.exits.interrupted(instance_id, exc)
            if charged is None:
                raise
            failed = rules.OperationResult(json.dumps(
                f"{exc} {WorkerExits.verdict(charged, 'The entity')}"), True)
            return _Outcome(state.exists, state.state, [failed] * len(requests),
                            crashed=True)
        self.exits.done(instance_id)
        try:
            exists, current, results = rules.read_result(str(value.get("text")), len(requests))
        except (ValueError, TypeError, AttributeError) as exc:
            return rules.OperationResult(
                json.dumps(f"The entity function returned an unexpected result: {exc}"), True)
        return _Outcome(exists, current, results)

    # -- committing --------------------------------------------------------------------

    async def _commit(self, instance_id: str, snapshot: HistorySnapshot,
                      state: rules.SchedulerState, outgoing: list[engine.OutgoingMessage],
                      consumed: list[Pending], now: datetime) -> None:
        execution_id = uuid.uuid4().hex
        # 1. the answers to callers (the queued copies count after a crash)
        await asyncio.gather(*(self.hub.send_to_instance(
            m.target_instance_id, m.target_execution_id, m.event,
            sender=(instance_id, execution_id)) for m in outgoing))
        # 2. history: a new execution holding the state, guarded by the sentinel ETag
        events = rules.commit_events(instance_id, execution_id, state, now)
        etag = await self.hub.append_history(instance_id, execution_id, 0, events,
                                             snapshot.etag)
        self.cache.put(instance_id, HistorySnapshot(events, etag, execution_id))
        # 3. the Instances row, 4. the consumed messages, before the next batch
        await self.hub.merge_instance(instance_id, rules.instance_fields(
            instance_id, execution_id, state, now))
        gone = await self.checkpoint.delete(consumed)
        self.deleted[instance_id] = {
            request.request_id for request in (rules.parse_request(0, p.event) for p in gone)
            if request is not None}
        for message in outgoing:
            self.checkpoint.notify(message.target_instance_id)


__all__ = ["EntityWorker"]
