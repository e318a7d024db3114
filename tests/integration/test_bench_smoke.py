"""The durable benchmark suite at smoke sizes (no peers, no thresholds), so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from runtime.durable.storage import request_operation

REPO = Path(__file__).resolve().parents[2]


def test_the_suite_prints_its_table_and_writes_the_results(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "bench/durable.py", "--smoke", "--no-peers", "--out", str(tmp_path)],
        cwd=str(REPO), capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    table = (tmp_path / "latest.md").read_text()
    assert table in done.stdout
    assert "| shape | funclocal | funclocal goal |" in table
    assert "storage requests per activity, by operation" in table

    [saved] = list(tmp_path.glob("*.json"))
    results = json.loads(saved.read_text())
    assert results["smoke"] is True
    funclocal = results["systems"]["funclocal"]
    assert funclocal["available"] is True
    assert set(results["systems"]) == {"funclocal"}
    for shape in results["shapes"]:
        figures = funclocal["shapes"][shape["key"]]
        assert figures["figure"] > 0
        assert len(figures["wall_s"]) == shape["runs"]
        assert figures["storage_requests_per_activity"] > 0
        assert any(op.startswith("queue:GET") for op in figures["storage_per_activity"])
        assert figures["host_cpu_s"] > 0
        assert figures["azurite_cpu_s"] > 0
        assert figures["host_peak_rss_mb"] > 0


def test_storage_requests_are_named_by_service_target_and_operation() -> None:
    assert request_operation("table", "POST", "/$batch", "") == "table:POST $batch"
    assert request_operation("table", "GET", "/HubHistory()", "$filter=x") == \
        "table:GET HubHistory query"
    assert request_operation("table", "PATCH", "/HubInstances(PartitionKey='a',RowKey='')",
                             "") == "table:PATCH HubInstances entity"
    assert request_operation("queue", "GET", "/hub-control-03/messages", "numofmessages=32") \
        == "queue:GET hub-control-* messages"
    assert request_operation("queue", "DELETE", "/hub-workitems/messages/abc",
                             "popreceipt=x") == "queue:DELETE hub-workitems message"
    assert request_operation("blob", "PUT", "/hub-leases/hub-control-00", "comp=lease") == \
        "blob:PUT hub-leases lease"
