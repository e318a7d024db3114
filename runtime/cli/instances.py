"""`funclocal instances`: list, show, history, why, and the management operations
(raise, terminate, suspend, resume, restart, rewind, purge) on the app's own task hub.

Every subcommand reads and writes storage directly through the durable client the
management API uses, so a running host picks the changes up from its queues, and
nothing needs a host to run. The JSON shapes are the management API's: status objects
as `GET /runtime/webhooks/durabletask/instances/{id}` returns them, history items as its
`showHistory=true` does.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from runtime.cli import render
from runtime.cli.common import host_options
from runtime.cli.hubaccess import HubSession, add_hub_arguments, app_workers, guarded, open_hub
from runtime.durable import diagnosis, history
from runtime.durable.client import TERMINAL_STATES, InstanceQuery
from runtime.durable.inspection import Inspector
from runtime.durable.replaycheck import RecordedHistory, ReplayChecker
from runtime.errors import CommandError, IndexingError, InstanceNotFound

STATUSES = ("Pending", "Running", "Suspended", "Completed", "Failed", "Terminated",
            "ContinuedAsNew", "Canceled")
PAGE = 100
DEFAULT_TOP = 100


# -- parsers ------------------------------------------------------------------------------

def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "instances", help="list, inspect and operate orchestration instances of the app's "
                          "task hub",
        description="Inspect and operate the instances of the task hub of the app in the "
                    "current folder (its host.json and local.settings.json, as `start` reads "
                    "them), whether or not a host is running.")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = sub.add_parser("list", help="list instances, newest first",
                             description="List instances (entities included, as the "
                                         "management API lists them), newest first.")
    add_hub_arguments(listing)
    add_filters(listing)
    listing.add_argument("--top", type=_positive, default=DEFAULT_TOP, metavar="N",
                         help=f"show at most N instances (default {DEFAULT_TOP})")
    listing.add_argument("--no-entities", action="store_true",
                         help="leave out durable entities (ids @name@key)")
    listing.set_defaults(run=run_list)

    show = sub.add_parser("show", help="an instance's status, and why it is waiting",
                          description="An instance's status, input, output and custom "
                                      "status; for a Pending, Running or Suspended instance "
                                      "also what it waits on (as `why`).")
    add_hub_arguments(show)
    show.add_argument("instance_id", metavar="ID")
    show.set_defaults(run=run_show)

    why = sub.add_parser("why", help="what a Pending, Running or Suspended instance waits on",
                         description="What the instance waits on (events by name, timers, "
                                     "activities and sub-orchestrations in flight, messages "
                                     "in its queue, who holds its partition) and the fix "
                                     "when there is one. The app's code is replayed in a "
                                     "worker process to learn which events it waits for.")
    add_hub_arguments(why)
    why.add_argument("instance_id", metavar="ID")
    why.set_defaults(run=run_why)

    timeline = sub.add_parser("history", help="an instance's history as a timeline",
                              description="The history of the instance's current execution: "
                                          "event, name, time, duration and (with --output) "
                                          "result. --export writes the raw history for "
                                          "`funclocal replay`.")
    add_hub_arguments(timeline)
    timeline.add_argument("instance_id", metavar="ID")
    timeline.add_argument("--output", action="store_true",
                          help="show results, inputs of events and failure reasons")
    timeline.add_argument("--export", type=Path, metavar="FILE",
                          help="write the history as JSON to FILE (for `funclocal replay`)")
    timeline.set_defaults(run=run_history)

    raise_ = sub.add_parser("raise", help="raise an external event",
                            description="Send an event to a running instance, as "
                                        "raiseEvent does. DATA is JSON; text that is not "
                                        "JSON is sent as a string.")
    add_hub_arguments(raise_, writes=True)
    raise_.add_argument("instance_id", metavar="ID")
    raise_.add_argument("event_name", metavar="EVENT")
    raise_.add_argument("data", metavar="DATA", nargs="?", default=None,
                        help="the event's data (JSON; default null)")
    raise_.set_defaults(run=run_raise)

    for name, verb, text in (
            ("terminate", "terminate", "stop an instance; the reason becomes its output"),
            ("suspend", "suspend", "suspend a running instance"),
            ("resume", "resume", "resume a suspended instance"),
            ("rewind", "rewind", "re-run the failed activities and sub-orchestrations of a "
                                 "failed instance")):
        command = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        add_hub_arguments(command, writes=True)
        command.add_argument("instance_id", metavar="ID")
        command.add_argument("--reason", default=None, help="recorded with the operation")
        command.set_defaults(run=run_operation, operation=verb)

    restart = sub.add_parser("restart", help="start an instance's orchestrator again with "
                                             "the same input",
                             description="Start the instance's orchestrator again with its "
                                         "original input, under a new id (printed) or, with "
                                         "--same-id, the same one.")
    add_hub_arguments(restart, writes=True)
    restart.add_argument("instance_id", metavar="ID")
    restart.add_argument("--same-id", action="store_true",
                         help="restart under the same instance id (it must be finished)")
    restart.set_defaults(run=run_restart)

    purge = sub.add_parser("purge", help="delete instances and their history",
                           description="Delete the given instances (any status), or every "
                                       "finished instance the filters match (Completed, "
                                       "Failed, Terminated; running ones are never purged "
                                       "by filter: terminate them first).")
    add_hub_arguments(purge, writes=True)
    purge.add_argument("instance_ids", metavar="ID", nargs="*")
    add_filters(purge)
    purge.set_defaults(run=run_purge)


def add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", action="append", type=_statuses, metavar="STATUS",
                        help="runtime status (repeat or comma-separate): "
                             + ", ".join(STATUSES))
    parser.add_argument("--name", help="orchestrator (or entity) name, any case")
    parser.add_argument("--prefix", help="instance id prefix")
    parser.add_argument("--created-from", metavar="TIME",
                        help="created at or after TIME (ISO 8601, or an age: 30m, 2h, 7d)")
    parser.add_argument("--created-to", metavar="TIME",
                        help="created at or before TIME (ISO 8601, or an age)")


def _statuses(text: str) -> list[str]:
    found: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        match = next((s for s in STATUSES if s.lower() == part.lower()), None)
        if match is None:
            raise argparse.ArgumentTypeError(
                f"unknown status '{part}' (one of {', '.join(STATUSES)})")
        found.append(match)
    return found


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, got '{text}'")
    return value


# -- reading ------------------------------------------------------------------------------

def _query(args: argparse.Namespace, now: datetime, *,
           statuses: list[str] | None = None) -> InstanceQuery:
    try:
        created_from = render.parse_moment(args.created_from, now) \
            if args.created_from else None
        created_to = render.parse_moment(args.created_to, now) if args.created_to else None
    except ValueError as exc:
        raise CommandError(str(exc), exit_code=2) from None
    chosen = statuses if statuses is not None else \
        [s for group in (args.status or []) for s in group] or None
    return InstanceQuery(created_from=created_from, created_to=created_to, statuses=chosen,
                         prefix=args.prefix or None, top=PAGE,
                         exclude_entities=getattr(args, "no_entities", False))


async def _matching(session: HubSession, query: InstanceQuery,
                    name: str | None) -> list[dict[str, Any]]:
    """Every instance the query and the name match (all pages)."""
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page, token = await session.client.list_instances(
            InstanceQuery(query.created_from, query.created_to, query.statuses, query.prefix,
                          query.top, token, True, query.exclude_entities))
        found += [s for s in page if name is None or
                  str(s.get("name") or "").lower() == name.lower()]
        if not token:
            return found


@guarded
async def run_list(args: argparse.Namespace) -> int:
    async with open_hub(args) as session:
        found = await _matching(session, _query(args, session.services.clock.now()),
                                args.name)
    found.sort(key=lambda s: (str(s.get("createdTime") or ""), str(s.get("instanceId"))),
               reverse=True)
    shown = found[:args.top]
    if args.json:
        render.print_json(shown)
        return 0
    if not shown:
        print(f"No instances in task hub '{session.hub_name}' match.")
        return 0
    print(render.table(("INSTANCE ID", "NAME", "STATUS", "CREATED", "LAST UPDATED"), [
        (str(s["instanceId"]), str(s.get("name") or ""), str(s.get("runtimeStatus") or ""),
         render.when(s.get("createdTime")), render.when(s.get("lastUpdatedTime")))
        for s in shown]))
    if len(found) > len(shown):
        print(f"({len(shown)} of {len(found)} matching instances shown; --top N shows more)")
    return 0


async def _inspector(session: HubSession, args: argparse.Namespace,
                     run: Any) -> Any:
    """Run `run(inspector)` with the app's code available for replay when it indexes;
    without it (and a note on stderr) when it does not."""
    options = host_options(args)
    try:
        async with app_workers(options, session.env, session.config.function_timeout) as app:
            checker = ReplayChecker(app, session.config.durable, clock=session.services.clock)
            return await run(Inspector(session.hub, session.services.storage, checker=checker,
                                       this_app=session.script_root,
                                       clock=session.services.clock))
    except IndexingError as exc:
        print(f"note: the app in {session.script_root} could not be indexed, so its code "
              f"was not replayed: {exc}", file=sys.stderr)
    return await run(Inspector(session.hub, session.services.storage,
                               this_app=session.script_root, clock=session.services.clock))


def _why_json(facts: diagnosis.Facts, reasons: list[diagnosis.Reason]) -> dict[str, Any]:
    return {"summary": diagnosis.summary(facts, reasons),
            "reasons": [r.to_json() for r in reasons]}


def _why_lines(reasons: list[diagnosis.Reason]) -> list[str]:
    lines: list[str] = []
    for reason in reasons:
        lines.append(reason.text)
        if reason.fix:
            lines.append(f"  fix: {reason.fix}")
    return lines


@guarded
async def run_why(args: argparse.Namespace) -> int:
    async with open_hub(args) as session:
        async def explain(inspector: Inspector) -> tuple[diagnosis.Facts,
                                                         list[diagnosis.Reason]]:
            return await inspector.explain(args.instance_id)
        facts, reasons = await _inspector(session, args, explain)
    if args.json:
        render.print_json({"instanceId": facts.instance_id,
                           "runtimeStatus": facts.row.get("RuntimeStatus"),
                           **_why_json(facts, reasons)})
        return 0
    status = str(facts.row.get("RuntimeStatus"))
    print(f"Instance '{facts.instance_id}' ({facts.row.get('Name')}) is {status}.")
    if not reasons:
        print("It is finished: nothing to wait for." if status in TERMINAL_STATES
              else "Nothing explains it.")
    for line in _why_lines(reasons):
        print(line)
    return 0


@guarded
async def run_show(args: argparse.Namespace) -> int:
    async with open_hub(args) as session:
        status = await session.client.get_status(args.instance_id)
        if status is None:
            raise InstanceNotFound(args.instance_id)
        why: tuple[diagnosis.Facts, list[diagnosis.Reason]] | None = None
        if status.get("runtimeStatus") in diagnosis.WAITING_STATES:
            async def explain(inspector: Inspector) -> tuple[diagnosis.Facts,
                                                             list[diagnosis.Reason]]:
                return await inspector.explain(args.instance_id)
            why = await _inspector(session, args, explain)
    if args.json:
        render.print_json({**status, "why": _why_json(*why) if why else None})
        return 0
    fields = [("Instance", status.get("instanceId")), ("Name", status.get("name")),
              ("Status", status.get("runtimeStatus")),
              ("Created", render.when(status.get("createdTime"))),
              ("Last updated", render.when(status.get("lastUpdatedTime")))]
    if status.get("version"):
        fields.append(("Version", status.get("version")))
    if status.get("parentInstanceId"):
        fields.append(("Parent", status.get("parentInstanceId")))
    fields += [("Input", render.shown(status.get("input"))),
               ("Custom status", render.shown(status.get("customStatus"))),
               ("Output", render.shown(status.get("output")))]
    width = max(len(label) for label, _ in fields) + 1
    for label, value in fields:
        print(f"{label + ':':<{width}} {'' if value is None else value}")
    if why is not None:
        print()
        print("Why:")
        for line in _why_lines(why[1]) or ["Nothing explains it."]:
            print(f"  {line}")
    return 0


@guarded
async def run_history(args: argparse.Namespace) -> int:
    async with open_hub(args) as session:
        row = await session.hub.read_instance(args.instance_id)
        if row is None:
            raise InstanceNotFound(args.instance_id)
        snapshot = await session.hub.load_history(args.instance_id)
    events = snapshot.events
    if args.export is not None:
        recorded = RecordedHistory.from_events(args.instance_id, events,
                                               runtime_status=str(row.get("RuntimeStatus")))
        document = recorded.to_json(session.hub_name)
        try:
            args.export.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n",
                                   encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write {args.export}: {exc.strerror or exc}") from None
        print(f"Wrote {len(events)} events of '{args.instance_id}' to {args.export}.",
              file=sys.stderr if args.json else sys.stdout)
    items = history.to_status_history(events, args.output)
    if args.json:
        render.print_json(items)
        return 0
    if args.export is not None:
        return 0
    if not items:
        print(f"'{args.instance_id}' has no history yet (it has not started).")
        return 0
    started = next((i.get("Timestamp") for i in items
                    if i.get("EventType") == "ExecutionStarted"), None)
    headers = ["#", "EVENT", "NAME", "TIME", "DURATION"] + (["RESULT"] if args.output else [])
    rows = []
    for number, item in enumerate(items, start=1):
        row_cells = [str(number), str(item.get("EventType")), _event_name(item),
                     render.precise(item.get("Timestamp")), _event_duration(item, started)]
        if args.output:
            row_cells.append(render.clip(_event_result(item)))
        rows.append(row_cells)
    print(render.table(headers, rows))
    return 0


def _event_name(item: dict[str, Any]) -> str:
    kind = item.get("EventType")
    if kind == "TimerCreated":
        return f"fires at {render.when(item.get('FireAt'))}"
    if kind == "TimerFired":
        return f"due {render.when(item.get('FireAt'))}"
    if kind in ("ExecutionCompleted", "ContinueAsNew"):
        return str(item.get("OrchestrationStatus") or "")
    if kind == "SubOrchestrationInstanceCreated":
        return f"{item.get('Name')} ({item.get('InstanceId')})"
    if kind == "EventSent":
        return f"{item.get('Name')} to {item.get('InstanceId')}"
    if kind in ("ExecutionSuspended", "ExecutionResumed"):
        return str(item.get("Reason") or "")
    return str(item.get("FunctionName") or item.get("Name") or "")


def _event_duration(item: dict[str, Any], started: Any) -> str:
    if item.get("ScheduledTime"):
        return render.duration(render.between(item["ScheduledTime"], item.get("Timestamp")))
    if item.get("EventType") in ("ExecutionCompleted", "ExecutionTerminated",
                                 "ContinueAsNew") and started:
        return render.duration(render.between(started, item.get("Timestamp")))
    return ""


def _event_result(item: dict[str, Any]) -> str:
    kind = item.get("EventType")
    if kind in ("TaskFailed", "SubOrchestrationInstanceFailed"):
        return render.shown(item.get("Reason"))
    if kind in ("EventRaised", "ExecutionStarted", "ExecutionTerminated", "EventSent"):
        return render.shown(item.get("Input"))
    return render.shown(item.get("Result"))


# -- operating ----------------------------------------------------------------------------

def _event_data(text: str | None) -> str:
    """The event's JSON text: DATA as given when it is JSON, else DATA as a JSON string."""
    if text is None:
        return "null"
    try:
        json.loads(text)
    except ValueError:
        return json.dumps(text)
    return text


def _done(args: argparse.Namespace, payload: dict[str, Any], text: str) -> int:
    if args.json:
        render.print_json(payload)
    else:
        print(text)
    return 0


@guarded
async def run_raise(args: argparse.Namespace) -> int:
    async with open_hub(args, changes="raise an event") as session:
        await session.client.raise_event(args.instance_id, args.event_name,
                                         _event_data(args.data))
    return _done(args, {"instanceId": args.instance_id, "operation": "raise",
                        "eventName": args.event_name},
                 f"Raised event '{args.event_name}' for '{args.instance_id}'.")


_PAST = {"terminate": "Terminating", "suspend": "Suspending", "resume": "Resuming",
         "rewind": "Rewinding"}


@guarded
async def run_operation(args: argparse.Namespace) -> int:
    operation = args.operation
    async with open_hub(args, changes=f"{operation} an instance") as session:
        client = session.client
        method = {"terminate": client.terminate, "suspend": client.suspend,
                  "resume": client.resume, "rewind": client.rewind}[operation]
        await method(args.instance_id, args.reason)
    return _done(args, {"instanceId": args.instance_id, "operation": operation,
                        "reason": args.reason},
                 f"{_PAST[operation]} '{args.instance_id}': the request is queued; a host "
                 "running the app carries it out.")


@guarded
async def run_restart(args: argparse.Namespace) -> int:
    async with open_hub(args, changes="restart an instance") as session:
        new_id = await session.client.restart(args.instance_id,
                                              new_instance_id=not args.same_id)
    return _done(args, {"instanceId": new_id, "restartedFrom": args.instance_id},
                 f"Restarted '{args.instance_id}' as '{new_id}'.")


@guarded
async def run_purge(args: argparse.Namespace) -> int:
    filtered = bool(args.status or args.name or args.prefix or args.created_from or
                    args.created_to)
    if args.instance_ids and filtered:
        raise CommandError("give instance ids or filters, not both", exit_code=2)
    if not args.instance_ids and not filtered:
        raise CommandError("give the instance ids to purge, or filters (--status, --name, "
                           "--prefix, --created-from, --created-to)", exit_code=2)
    async with open_hub(args, changes="purge instances") as session:
        if args.instance_ids:
            purged = [i for i in args.instance_ids if await session.client.purge(i)]
            missing = [i for i in args.instance_ids if i not in purged]
        else:
            wanted = [s for group in (args.status or []) for s in group]
            running = [s for s in wanted if s not in TERMINAL_STATES]
            if running:
                raise CommandError(
                    f"purging by filter removes finished instances only (Completed, Failed, "
                    f"Terminated), not {', '.join(running)}: terminate them first, or purge "
                    "them by id", exit_code=2)
            statuses = wanted or sorted(TERMINAL_STATES)
            now = session.services.clock.now()
            matches = await _matching(session, _query(args, now, statuses=statuses),
                                      args.name)
            purged = [str(s["instanceId"]) for s in matches
                      if await session.client.purge(str(s["instanceId"]))]
            missing = []
    if args.json:
        render.print_json({"purged": purged, "notFound": missing})
    else:
        print(f"Purged {len(purged)} instance{'' if len(purged) == 1 else 's'} from task hub "
              f"'{session.hub_name}'.")
        for instance_id in missing:
            print(f"No instance '{instance_id}'.")
    return 1 if missing else 0


__all__ = ["STATUSES", "add_parser"]
