"""The durable benchmark suite at smoke sizes (no peers, no thresholds), so it cannot rot."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from bench.funclocal import FunclocalSide
from bench.shapes import smoke_shapes
from runtime.storage.stats import request_operation

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
    # the orchestration shapes too: retries, sub-orchestrations, continue-as-new
    assert {"retry1", "suborch5", "can5"} <= {shape["key"] for shape in results["shapes"]}
    assert "no slower than Temporal dev server" in table
    assert funclocal["shapes"]["can5"]["server_figure"] is None  # one generation's history
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


def test_the_suite_compares_with_a_baseline_revision_in_a_worktree(tmp_path: Path) -> None:
    """--baseline HEAD: the committed revision runs from its own worktree, interleaved
    with this checkout, and the report compares the two (smoke sizes: figures only)."""
    # The suite runs in a git checkout (make test, CI's clean clone): never skipped.
    assert subprocess.run(["git", "rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
                          cwd=str(REPO), capture_output=True).returncode == 0, \
        "the test suite must run in a git checkout with a commit"
    done = subprocess.run(
        [sys.executable, "bench/durable.py", "--smoke", "--no-peers", "--only", "hello,fanout5",
         "--baseline", "HEAD", "--out", str(tmp_path)],
        cwd=str(REPO), capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    table = (tmp_path / "latest.md").read_text()
    assert table in done.stdout
    assert "funclocal against the baseline HEAD" in table
    assert "| shape | baseline HEAD = " in table
    assert "REGRESSION: " in table or "No regression: " in table

    [saved] = list(tmp_path.glob("*.json"))
    results = json.loads(saved.read_text())
    baseline = results["baseline"]
    assert baseline["available"] is True, baseline.get("reason")
    worktree = Path(baseline["runtime"]).parent
    assert not worktree.is_relative_to(REPO)  # its own runtime package, not this one
    assert not worktree.exists()  # the worktree is gone
    listed = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=str(REPO),
                            capture_output=True, text=True).stdout
    assert str(worktree) not in listed
    comparison = results["comparison"]
    assert set(comparison["shapes"]) == {"hello", "fanout5"}
    for key, row in comparison["shapes"].items():
        assert row["baseline"] > 0 and row["current"] > 0, key
        assert row["ratio"] > 0
        assert isinstance(row["regressed"], bool)
        assert len(baseline["shapes"][key]["wall_s"]) == \
            len(results["systems"]["funclocal"]["shapes"][key]["wall_s"])


def test_a_baseline_without_the_orchestration_shapes_skips_them(tmp_path: Path) -> None:
    """A baseline revision whose bench app predates a shape's orchestrators does not run
    that shape (the report says "not run"); the shapes its app has still run."""
    app = tmp_path / "bench" / "apps" / "durable_bench"
    shutil.copytree(REPO / "bench" / "apps" / "durable_bench", app)
    source = (app / "function_app.py").read_text()
    (app / "function_app.py").write_text(source.replace("def generations(", "def other("))
    side = FunclocalSide(root=tmp_path, revision={"rev": "old", "commit": "0" * 40,
                                                  "short": "0000000", "subject": "old"})
    by_key = {shape.key: shape for shape in smoke_shapes()}
    assert side.missing(by_key["can5"]) == "its bench app has no generations"
    for key in ("hello", "chain3", "retry1", "suborch5"):
        assert side.missing(by_key[key]) is None, key
    assert FunclocalSide().missing(by_key["can5"]) is None  # this checkout runs them all
