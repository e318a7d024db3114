"""`funclocal taskhub`: what is in the app's task hub (info), and deleting it (delete)."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from runtime.cli import render
from runtime.cli.hubaccess import (
    HubSession,
    add_hub_arguments,
    describe_storage,
    guarded,
    on_this_machine,
    open_hub,
)
from runtime.durable.engine import entities
from runtime.durable.hub_owners import PartitionState, read_partitions
from runtime.errors import CommandError


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "taskhub", help="show or delete the app's task hub",
        description="The task hub of the app in the current folder (its host.json and "
                    "local.settings.json, as `start` reads them).")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    info = sub.add_parser("info", help="name, storage, instance counts, queues and who "
                                       "holds each partition",
                          description="The hub's name and storage, its instances by status, "
                                      "the messages in its queues and the host holding each "
                                      "partition.")
    add_hub_arguments(info)
    info.set_defaults(run=run_info)
    delete = sub.add_parser("delete", help="delete the hub: its tables, queues and blobs",
                            description="Delete every storage artifact of the hub (history, "
                                        "instances, queues, leases, large messages). Refused "
                                        "while a host runs on it.")
    add_hub_arguments(delete, writes=True)
    delete.set_defaults(run=run_delete)


async def _describe(session: HubSession) -> dict[str, Any]:
    hub = session.hub
    storage = session.services.storage
    assert storage is not None
    partitions = await read_partitions(storage, hub.hub_name, hub.partition_count)
    statuses: Counter[str] = Counter()
    entity_count = 0
    token: str | None = None
    while True:
        rows, token = await hub.query_instances(top=1000, continuation=token)
        for row in rows:
            if entities.is_entity(str(row.get("InstanceId"))):
                entity_count += 1
            else:
                statuses[str(row.get("RuntimeStatus"))] += 1
        if not token:
            break
    lengths = [await hub.queue_length(q) for q in hub.names.control_queues]
    endpoints = session.endpoints
    return {
        "taskHub": hub.hub_name,
        "createdAt": session.info.get("CreatedAt"),
        "partitionCount": session.info.get("PartitionCount", hub.partition_count),
        "storage": {"account": endpoints.account_name, "blob": endpoints.blob_url,
                    "queue": endpoints.queue_url, "table": endpoints.table_url,
                    "thisMachine": on_this_machine(endpoints)},
        "instances": dict(sorted(statuses.items())),
        "entities": entity_count,
        "partitions": [{"partition": p.partition, "queue": p.queue, "messages": length,
                        "leased": p.leased, "owner": p.owner if p.leased else None}
                       for p, length in zip(partitions, lengths, strict=True)],
        "workItems": {"queue": hub.workitems_queue,
                      "messages": await hub.queue_length(hub.workitems_queue)},
        "hosts": _hosts(partitions),
    }


def _hosts(partitions: list[PartitionState]) -> list[dict[str, Any]]:
    owners: dict[str, list[int]] = {}
    for state in partitions:
        if state.leased and state.owner:
            owners.setdefault(state.owner, []).append(state.partition)
    return [{"owner": owner, "partitions": parts} for owner, parts in owners.items()]


@guarded
async def run_info(args: argparse.Namespace) -> int:
    async with open_hub(args) as session:
        described = await _describe(session)
        storage_text = describe_storage(session.endpoints)
    if args.json:
        render.print_json(described)
        return 0
    counts = described["instances"]
    by_status = ", ".join(f"{n} {s}" for s, n in counts.items()) or "none"
    where = "this machine" if described["storage"]["thisMachine"] else "not this machine"
    created = render.when(described["createdAt"])
    print(f"Task hub:    {described['taskHub']} (created {created}, "
          f"{described['partitionCount']} partitions)")
    print(f"Storage:     {storage_text} ({where})")
    print(f"Instances:   {by_status}; entities: {described['entities']}")
    hosts = described["hosts"]
    print(f"Hosts:       {len(hosts) or 'none running'}" +
          "".join(f"\n  {h['owner']} (partitions {', '.join(map(str, h['partitions']))})"
                  for h in hosts))
    print()
    rows = [(str(p["partition"]), p["queue"], str(p["messages"]), p["owner"] or "nobody")
            for p in described["partitions"]]
    rows.append(("", described["workItems"]["queue"], str(described["workItems"]["messages"]),
                 "any host"))
    print(render.table(("PARTITION", "QUEUE", "MESSAGES", "HELD BY"), rows))
    return 0


@guarded
async def run_delete(args: argparse.Namespace) -> int:
    async with open_hub(args, changes="delete a task hub") as session:
        storage = session.services.storage
        assert storage is not None
        held = [p for p in await read_partitions(storage, session.hub_name,
                                                 session.hub.partition_count) if p.leased]
        if held:
            owners = sorted({p.owner or "?" for p in held})
            raise CommandError(f"A host is running on task hub '{session.hub_name}' "
                               f"({', '.join(owners)}): stop it before deleting the hub.")
        await session.hub.delete_task_hub()
        name = session.hub_name
    if args.json:
        render.print_json({"taskHub": name, "deleted": True})
    else:
        print(f"Deleted task hub '{name}' (tables, queues, leases and large messages).")
    return 0


__all__ = ["add_parser"]
