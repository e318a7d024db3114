"""`funclocal replay`: replay recorded histories against the app's current code and say,
per instance, whether the code still matches (for CI: exit status 1 when one does not).

Histories come from exported files (`funclocal instances history ID --export FILE`; no
storage needed) or, without files, from the running instances of the app's task hub.
The code runs in a worker process with the unmodified SDK; the engine compares its
actions with history exactly as the host would (`runtime/durable/replaycheck.py`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from runtime.cli import render
from runtime.cli.common import host_options
from runtime.cli.hubaccess import add_hub_arguments, app_workers, guarded, open_hub
from runtime.durable.engine import entities
from runtime.durable.replaycheck import (
    RecordedHistory,
    ReplayChecker,
    ReplayResult,
    code_phrase,
)
from runtime.errors import CommandError, InstanceNotFound
from runtime.versions import read_app_config

# Pending too: a row is updated after history, so a started instance may still say so.
RUNNING = ("Running", "Suspended", "Pending")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "replay", help="check recorded histories against the current code",
        description="Replay histories against the app's current code with the unmodified "
                    "SDK and report, per instance, OK or the first divergence (sequence "
                    "number, what history records, what the code does there, the line of code). "
                    "Without FILEs: the running instances of the app's task hub. Exit "
                    "status 1 when an instance would fail.")
    add_hub_arguments(parser)
    parser.add_argument("files", metavar="FILE", nargs="*", type=Path,
                        help="histories exported by `funclocal instances history --export`")
    parser.add_argument("--instance", action="append", metavar="ID", default=[],
                        help="replay this instance of the task hub (any status; repeatable)")
    parser.add_argument("--name", help="only instances of this orchestrator")
    parser.set_defaults(run=run)


def _read_files(files: list[Path]) -> list[RecordedHistory]:
    found: list[RecordedHistory] = []
    for path in files:
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}",
                               exit_code=2) from None
        except ValueError as exc:
            raise CommandError(f"{path} is not JSON: {exc}", exit_code=2) from None
        try:
            found += RecordedHistory.from_json(value, str(path))
        except Exception as exc:  # noqa: BLE001 - InvalidArgument with the file's name
            raise CommandError(str(exc), exit_code=2) from None
    return found


async def _from_hub(args: argparse.Namespace) -> list[RecordedHistory]:
    async with open_hub(args) as session:
        hub = session.hub
        if args.instance:
            rows = []
            for instance_id in args.instance:
                row = await hub.read_instance(instance_id)
                if row is None:
                    raise InstanceNotFound(instance_id)
                rows.append(row)
        else:
            rows = []
            token: str | None = None
            while True:
                page, token = await hub.query_instances(statuses=RUNNING, top=100,
                                                        continuation=token,
                                                        exclude_entities=True)
                rows += page
                if not token:
                    break
        recorded = []
        for row in rows:
            instance_id = str(row["InstanceId"])
            if entities.is_entity(instance_id):
                continue
            snapshot = await hub.load_history(instance_id)
            if not snapshot.events and not args.instance:
                continue  # not started: nothing to replay
            recorded.append(RecordedHistory.from_events(
                instance_id, snapshot.events, runtime_status=str(row.get("RuntimeStatus")),
                source=f"task hub {session.hub_name}"))
        return recorded


@guarded
async def run(args: argparse.Namespace) -> int:
    if args.files and args.instance:
        raise CommandError("give FILEs or --instance, not both", exit_code=2)
    recorded = _read_files(args.files) if args.files else await _from_hub(args)
    if args.name:
        recorded = [r for r in recorded if r.name.lower() == args.name.lower()]
    options = host_options(args)
    config, _, env = read_app_config(options, options.script_root.resolve())
    results: list[ReplayResult] = []
    if recorded:
        async with app_workers(options, env, config.function_timeout) as app:
            results = await ReplayChecker(app, config.durable).check_all(recorded)
    root = options.script_root.resolve()
    failed = [r for r in results if not r.ok]
    if args.json:
        render.print_json({"ok": not failed,
                           "results": [r.to_json(root) for r in results]})
        return 1 if failed else 0
    if not results:
        print("No histories to replay." if args.files else
              "No running instances to replay in the app's task hub.")
        return 0
    for result in results:
        print(_line(result, root))
    counts = {v: sum(1 for r in results if r.verdict == v)
              for v in ("ok", "diverged", "fails", "not-checked")}
    parts = [f"{n} {label}" for label, n in (("OK", counts["ok"]),
                                             ("diverged", counts["diverged"]),
                                             ("would fail", counts["fails"]),
                                             ("not checked", counts["not-checked"])) if n]
    print(f"\n{len(results)} replayed: {', '.join(parts)}.",
          file=sys.stdout)
    return 1 if failed else 0


def _line(result: ReplayResult, root: Path) -> str:
    head = f"{result.instance_id} ({result.name or '?'})"
    if result.verdict == "ok":
        return f"OK        {head}"
    if result.verdict == "not-checked":
        return f"SKIPPED   {head}: {result.message}"
    label = "DIVERGED " if result.verdict == "diverged" else "FAILS    "
    lines = [f"{label} {head}"]
    if result.expected and result.actual:
        at = (f"at sequence number {result.sequence_number}, "
              if result.sequence_number is not None else "")
        lines.append(f"  {at}history records {result.expected}; the code "
                     f"{code_phrase(result.actual)}")
    elif result.actual:
        lines.append(f"  the code {code_phrase(result.actual)}")
    if result.location is not None:
        lines.append(f"  code: {result.location.describe(root)}")
    if result.message:
        lines.append(f"  {result.message}")
    return "\n".join(lines)


__all__ = ["add_parser"]
