"""Durable workflows on funclocal and on its peers, side by side, in one invocation.

Run: .venv/bin/python bench/durable.py [--runs 3] [--samples 20] [--no-peers] [--smoke]
                                       [--baseline REV]
(`make bench` installs the peers and runs it, `make bench BASELINE=REV` with --baseline;
see the README, Performance.)

Shapes (bench/shapes.py): (a) one hello-cities orchestration (3 sequential activities),
start request to Completed; (c) 200 hello-cities started at once, completed per second;
(b) a chain of 100 sequential activities; fan-out/fan-in of 100 and (d) of 1,000
activities; a chain of 100 activities that each fail twice and succeed on the third
attempt, retried 100 ms apart (retry100); fan-out/fan-in of 100 sub-orchestrations of one
activity each (suborch100); 1,000 continue-as-new generations of one activity each
(can1000), whose goal is to be no slower than the Temporal dev server; durable entities:
1,000 signals to one counter entity from 10 concurrent clients, per second (signals1000:
funclocal's clients signal through the management API, POST
/runtime/webhooks/durabletask/entities/counter/{key}?op=add, and the run ends when reading
the counter shows exactly 1,000), and 1,000 sequential call_entity round trips from one
orchestration (calls1000); and for funclocal (e) the storage requests per unit (activity,
entity operation, ...) by operation, the host's, workers' and Azurite's CPU seconds and
the host's peak RSS.

funclocal runs first, then each peer in its own process (bench/peers/), one at a time.
With --baseline REV, funclocal also runs on revision REV, checked out in a temporary git
worktree (its own runtime package and bench app), its measured runs interleaved with the
current checkout's, shape by shape (bench/baseline.py); the report then compares the two
and names every shape more than 5 % slower than on REV. A shape whose orchestrators or
entity REV's bench app lacks is "not run" on REV.
The table goes to stdout and bench/results/latest.md; all figures to
bench/results/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `bench` and `runtime` importable
    sys.path.insert(0, str(REPO))

from bench.baseline import compare, describe_revision, worktree  # noqa: E402
from bench.funclocal import FunclocalSide, run_sides  # noqa: E402
from bench.report import machine_info, render  # noqa: E402
from bench.shapes import Shape, full_shapes, smoke_shapes  # noqa: E402

PEERS = {"temporal": "temporal", "dbos": "dbos_sqlite"}  # name -> bench.peers module
PEER_TIMEOUT = 3600.0
RESULTS = REPO / "bench" / "results"


def run_peer(name: str, shapes: list[Shape]) -> dict[str, Any]:
    """A peer module in its own process; its last stdout line is its result."""
    spec = json.dumps({"shapes": [s.to_json() for s in shapes]})
    try:
        done = subprocess.run([sys.executable, "-m", f"bench.peers.{PEERS[name]}", spec],
                              cwd=str(REPO), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, text=True, timeout=PEER_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"name": name, "available": False,
                "reason": f"did not finish within {PEER_TIMEOUT:g} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if lines:
        try:
            return dict(json.loads(lines[-1]))
        except ValueError:
            pass
    return {"name": name, "available": False,
            "reason": f"the peer process exited with code {done.returncode} without a result "
                      "(its error is in the output above)"}


def _commit() -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=str(REPO),
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=str(REPO), capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}{'+changes' if dirty else ''}" if head else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="measured runs per shape (>= 3)")
    parser.add_argument("--samples", type=int, default=20,
                        help="hello-cities instances for the latency figure")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, one run: checks the suite works, measures nothing")
    parser.add_argument("--no-peers", action="store_true", help="run funclocal only")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated subset of {', '.join(PEERS)}")
    parser.add_argument("--only", default="",
                        help="comma-separated shape keys (hello, burst200, chain100, fanout100, "
                             "fanout1000, retry100, suborch100, can1000, signals1000, "
                             "calls1000; with --smoke: hello, burst5, chain3, fanout5, "
                             "retry1, suborch5, can5, signals20, calls5)")
    parser.add_argument("--poll", type=float, default=0.02,
                        help="seconds between funclocal status polls, single instance")
    parser.add_argument("--long-poll", type=float, default=0.05,
                        help="seconds between funclocal status polls, longer shapes")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="directory for <timestamp>.json and latest.md")
    parser.add_argument("--baseline", metavar="REV", default=None,
                        help="also run funclocal on git revision REV (a temporary worktree), "
                             "interleaved with this checkout, and compare the two")
    return parser.parse_args(argv)


def choose_shapes(args: argparse.Namespace) -> list[Shape]:
    shapes = smoke_shapes() if args.smoke else full_shapes(args.runs, args.samples)
    wanted = {key.strip() for key in args.only.split(",") if key.strip()}
    if wanted:
        unknown = wanted - {s.key for s in shapes}
        if unknown:
            raise SystemExit(f"unknown shape(s): {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(s.key for s in shapes)}")
        shapes = [s for s in shapes if s.key in wanted]
    return shapes


async def main_async(args: argparse.Namespace, baseline: FunclocalSide | None = None) -> int:
    """`baseline`: funclocal on the --baseline revision's worktree, run alongside."""
    shapes = choose_shapes(args)
    started = datetime.now(timezone.utc)
    results: dict[str, Any] = {
        "format": 1,
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "smoke": args.smoke,
        "machine": machine_info(),
        "argv": sys.argv[1:],
        "shapes": [s.to_json() for s in shapes],
        "systems": {},
    }
    sides = [FunclocalSide(args.poll, args.long_poll)]
    if baseline is not None:
        sides.insert(0, baseline)
    outcomes = await run_sides(sides, shapes)
    results["systems"]["funclocal"] = outcomes[-1]
    if baseline is not None:
        results["baseline"] = outcomes[0]
        results["comparison"] = compare(shapes, outcomes[-1], outcomes[0])
    failed = any(outcome.get("failed") for outcome in outcomes)
    peers = [] if args.no_peers else [p.strip() for p in args.peers.split(",") if p.strip()]
    for name in peers:
        if name not in PEERS:
            raise SystemExit(f"unknown peer '{name}'; known: {', '.join(PEERS)}")
        print(f"{name}: starting ...", file=sys.stderr, flush=True)
        results["systems"][name] = await asyncio.to_thread(run_peer, name, shapes)
    table = render(results)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (args.out / f"{stamp}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "latest.md").write_text(table)
    print(table)
    print(f"Results: {args.out / (stamp + '.json')}")
    return 1 if failed else 0


def main() -> None:
    args = parse_args()
    if args.runs < 1 or args.samples < 1:
        raise SystemExit("--runs and --samples must be at least 1")
    # A plain `kill` unwinds like Ctrl-C: hosts, Azurite and the worktree are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.ExitStack() as stack:
        baseline = None
        if args.baseline is not None:
            revision = describe_revision(args.baseline)
            root = stack.enter_context(worktree(revision["commit"]))
            print(f"baseline: {args.baseline} = {revision['short']} "
                  f"({revision['subject']}) in {root}", file=sys.stderr, flush=True)
            baseline = FunclocalSide(args.poll, args.long_poll, root=root, revision=revision)
        code = asyncio.run(main_async(args, baseline))
    sys.exit(code)


if __name__ == "__main__":
    main()
