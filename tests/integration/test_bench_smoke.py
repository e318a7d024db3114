"""The durable benchmark suite at smoke sizes (no peers, no thresholds), so it cannot rot."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench.durable import main_async, parse_args
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
    # the entity shapes: 20 signals from 2 clients to one counter, 5 calls from one
    # orchestration; each row has its figures, and the counts were checked exactly
    assert {"signals20", "calls5"} <= {shape["key"] for shape in results["shapes"]}
    signals = re.search(r"^\| 20 signals to one counter entity from 2 concurrent clients, "
                        r"per second \| (\d+)/s \((\d+\.\d+) s\) \| ≥ 200 signals/s \|$",
                        table, re.MULTILINE)
    assert signals is not None, table
    assert int(signals[1]) > 0 and float(signals[2]) > 0
    calls = re.search(r"^\| 5 sequential entity calls from one orchestration \| "
                      r"(\d+\.\d+) s \((\d+)/s\); host (\d+\.\d+) s \| none set \|$",
                      table, re.MULTILINE)
    assert calls is not None, table
    assert float(calls[1]) > 0 and int(calls[2]) > 0
    assert "funclocal's counters: 20 after the runs, 20 at the end (exactly 20 each: " \
        "checked)." in table
    assert "funclocal's counters: 5 (exactly 5 each: checked)." in table
    assert "POST /runtime/webhooks/durabletask/entities/counter/{key}?op=add" in table
    assert "For signals20 a unit is one signal (one entity operation)" in table
    assert funclocal["shapes"]["signals20"]["results"] == [20]
    assert funclocal["shapes"]["signals20"]["results_at_end"] == [20]
    assert funclocal["shapes"]["signals20"]["server_figure"] is None  # no orchestration
    assert funclocal["shapes"]["calls5"]["results"] == [5]
    assert funclocal["shapes"]["calls5"]["server_figure"] > 0
    for shape in results["shapes"]:
        figures = funclocal["shapes"][shape["key"]]
        assert figures["figure"] > 0
        assert len(figures["wall_s"]) == shape["runs"]
        assert figures["storage_requests_per_activity"] > 0
        assert any(op.startswith("queue:GET") for op in figures["storage_per_activity"])
        assert any(op.startswith("queue:POST") for op in figures["storage_per_activity"])
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
    """A baseline revision whose bench app predates a shape's orchestrators or entity
    does not run that shape (the report says "not run"); the shapes its app has still
    run."""
    app = tmp_path / "bench" / "apps" / "durable_bench"
    shutil.copytree(REPO / "bench" / "apps" / "durable_bench", app)
    source = (app / "function_app.py").read_text()
    (app / "function_app.py").write_text(source.replace("def generations(", "def other(")
                                         .replace("def counter(", "def tally("))
    side = FunclocalSide(root=tmp_path, revision={"rev": "old", "commit": "0" * 40,
                                                  "short": "0000000", "subject": "old"})
    by_key = {shape.key: shape for shape in smoke_shapes()}
    assert side.missing(by_key["can5"]) == "its bench app has no generations"
    assert side.missing(by_key["signals20"]) == "its bench app has no counter"
    assert side.missing(by_key["calls5"]) == "its bench app has no counter"
    for key in ("hello", "chain3", "retry1", "suborch5"):
        assert side.missing(by_key[key]) is None, key
    for shape in smoke_shapes():  # this checkout runs them all
        assert FunclocalSide().missing(shape) is None, shape.key


async def test_the_entity_shapes_are_not_run_on_a_baseline_that_predates_them(
        tmp_path: Path) -> None:
    """A baseline whose bench app has no counter entity (as --baseline REV runs it, from
    REV's own runtime package and bench app: here a copy of this checkout's, the entity
    taken out): the comparison shows the entity shapes as "not run" with the reason,
    while the current checkout runs them."""
    old = tmp_path / "old"
    shutil.copytree(REPO / "runtime", old / "runtime",
                    ignore=shutil.ignore_patterns("__pycache__"))
    app = old / "bench" / "apps" / "durable_bench"
    shutil.copytree(REPO / "bench" / "apps" / "durable_bench", app,
                    ignore=shutil.ignore_patterns("__pycache__"))
    source = (app / "function_app.py").read_text()
    (app / "function_app.py").write_text(source.replace("def counter(", "def tally("))
    baseline = FunclocalSide(root=old, revision={"rev": "old", "commit": "0" * 40,
                                                 "short": "0000000", "subject": "old"})
    out = tmp_path / "out"
    args = parse_args(["--smoke", "--no-peers", "--only", "signals20,calls5",
                       "--out", str(out)])
    assert await main_async(args, baseline) == 0

    table = (out / "latest.md").read_text()
    assert re.search(r"^\| 20 signals to one counter entity from 2 concurrent clients, "
                     r"per second \| not run \| \d+/s", table, re.MULTILINE), table
    assert re.search(r"^\| 5 sequential entity calls from one orchestration \| not run \| "
                     r"\d+\.\d+ s", table, re.MULTILINE), table
    assert "Not compared (a side has no figure): signals20 (not run on old: its bench " \
        "app has no counter), calls5 (not run on old: its bench app has no counter)." \
        in table
    [saved] = list(out.glob("*.json"))
    results = json.loads(saved.read_text())
    assert results["baseline"]["skipped"] == {"signals20": "its bench app has no counter",
                                              "calls5": "its bench app has no counter"}
    assert results["systems"]["funclocal"]["shapes"]["signals20"]["results"] == [20]
    assert results["systems"]["funclocal"]["shapes"]["calls5"]["results"] == [5]


def test_the_harness_benchmark_prints_its_table(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "bench/harness.py", "--smoke", "--out", str(tmp_path)],
        cwd=str(REPO), capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    table = (tmp_path / "harness-latest.md").read_text()
    assert table in done.stdout
    assert "| per-test overhead: ready, then closed |" in table
    [saved] = list(tmp_path.glob("harness-*.json"))
    results = json.loads(saved.read_text())
    assert results["smoke"] is True and results["temporal"]["available"] is False
    for mode in ("memory", "azurite"):
        figures = results["funclocal"][mode]
        assert figures["overhead"]["n"] == 2 and figures["overhead"]["median"] > 0
        assert figures["approval_test"]["median"] > figures["approval_body"]["median"] > 0
