"""runtime/durable/leases.py without storage: the fair share, whom to ask for a partition,
and the lease id a restarted host takes over from its dead predecessor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from runtime.durable import lease_identity as lease_identity_module
from runtime.durable.lease_identity import lease_identity
from runtime.durable.leases import Survey, fair_share, steal_from


@pytest.mark.parametrize(("partitions", "hosts", "share"), [
    (4, 1, 4), (4, 2, 2), (4, 3, 2), (4, 4, 1), (4, 5, 1), (16, 3, 6)])
def test_fair_share(partitions: int, hosts: int, share: int) -> None:
    assert fair_share(partitions, hosts) == share


def test_a_host_asks_the_busiest_for_one_partition_at_a_time() -> None:
    survey = Survey({0: "a", 1: "a", 2: "a", 3: "b"}, {})
    assert steal_from(survey, "c") == 2  # a owns 3, c none: one of a's
    assert steal_from(survey, "b") == 2  # 3 >= 1 + 2
    assert steal_from(Survey({0: "a", 1: "a", 2: "b", 3: "c"}, {}), "c") is None
    # One request at a time, and never for a partition someone asked for already.
    assert steal_from(Survey({0: "a", 1: "a", 2: "a", 3: None}, {2: "c"}), "c") is None
    assert steal_from(Survey({0: "a", 1: "a", 2: "a", 3: "b"}, {2: "b"}), "c") == 1


def test_requesters_count_as_hosts() -> None:
    survey = Survey({0: "a", 1: "a", 2: "a", 3: "a"}, {3: "b"})
    assert sorted(survey.shares("c").items()) == [("a", 4), ("b", 0), ("c", 0)]


def test_a_restarted_host_takes_over_its_dead_predecessors_lease_id(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = lease_identity("machine:7071:/app", "Hub")
    # The same process opening the hub again keeps its id.
    assert lease_identity("machine:7071:/app", "Hub") == first
    lease_identity_module._IDENTITIES.clear()  # as if another process, alive, had the same label
    second = lease_identity("machine:7071:/app", "Hub")
    assert first != second
    lease_identity_module._IDENTITIES.clear()
    # A dead process's record is taken over.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    records = list((tmp_path / "funclocal" / "leases").glob("*.json"))
    assert len(records) == 1
    lease = uuid.uuid4().hex
    records[0].write_text(json.dumps({"pid": dead.pid, "lease": lease}))
    assert lease_identity("machine:7071:/app", "Hub") == lease
    assert lease_identity("machine:7071:/app", "OtherHub") != lease
    lease_identity_module._IDENTITIES.clear()


def test_a_clean_stop_leaves_no_record_and_old_dead_records_go(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(lease_identity_module, "_PRUNED", False)
    folder = tmp_path / "funclocal" / "leases"
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, recent = folder / "stale.json", folder / "recent.json"
    for record in (stale, recent):
        record.write_text(json.dumps({"pid": dead.pid, "lease": uuid.uuid4().hex}))
    week_ago = time.time() - 8 * 86400
    os.utime(stale, (week_ago, week_ago))
    first = lease_identity("machine:7071:/app", "Hub")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [recent.name, f"{lease_identity_module._digest('machine:7071:/app', 'Hub')}.json"])
    # After a clean stop the next start gets a new id (nothing to take over).
    lease_identity_module.forget_lease_identity("machine:7071:/app", "Hub")
    assert sorted(p.name for p in folder.iterdir()) == [recent.name]
    assert lease_identity("machine:7071:/app", "Hub") != first
    lease_identity_module._IDENTITIES.clear()
