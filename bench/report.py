"""The durable benchmark's report: Markdown tables from the results JSON."""

from __future__ import annotations

import os
import platform
from typing import Any

from bench.shapes import CALLS, RETRY, RETRY_ATTEMPTS, SIGNALS, Shape

PEER_TITLES = {"temporal": "Temporal dev server", "dbos": "DBOS / SQLite"}


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gib = None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
                    break
    except OSError:
        pass
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _machine_line(machine: dict[str, Any]) -> str:
    load = machine.get("load_average_at_start")
    load_text = f", load average {load[0]:.1f} at start" if load else ""
    return (f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
            f"{machine['os']}, Python {machine['python']}{load_text}")


def _ratio(shape: Shape, ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs == 0:
        return "—"
    return f"{ours / theirs:.2f}"


def _ours(shape: Shape, ours: dict[str, Any], figure: float | None) -> str:
    if figure is None:
        return "n/a"
    host = ours["shapes"][shape.key].get("server_figure")
    return shape.show(figure) + (f"; host {shape.show_short(host)}" if host else "")


def _theirs(shape: Shape, system: dict[str, Any], figure: float | None,
            notes: list[str]) -> str:
    """A peer's figure, with a numbered mark when the peer ran the shape differently
    (its `note`, listed under the table)."""
    if figure is None:
        return "n/a"
    note = system["shapes"][shape.key].get("note")
    if not note:
        return shape.show(figure)
    text = f"{PEER_TITLES.get(system.get('name', ''), system.get('name'))}, {shape.key}: {note}"
    if text not in notes:
        notes.append(text)
    return f"{shape.show(figure)} ({notes.index(text) + 1})"


def _goal(shape: Shape, systems: dict[str, Any], mine: float | None, smoke: bool) -> str:
    """The goal and whether it is met; a relative goal is checked against the peer's
    figure in the same run."""
    if not shape.goal_peer:
        verdict = None if mine is None or smoke else shape.meets_goal(mine)
        return shape.show_goal() + {True: " (met)", False: " (NOT met)", None: ""}[verdict]
    peer = shape.goal_peer
    title = PEER_TITLES.get(peer, peer)
    text = f"no slower than {title}" if shape.goal == 1 else \
        f"≤ {shape.goal:g} × {title}"
    if mine is None or smoke:
        return text
    verdict = shape.meets_goal(mine, _figure(systems.get(peer, {}), shape.key))
    return text + {True: " (met)", False: " (NOT met)",
                   None: f" (not checked: {title} not run)"}[verdict]


def _figure(system: dict[str, Any], key: str) -> float | None:
    if not system.get("available"):
        return None
    shape = system.get("shapes", {}).get(key)
    return None if shape is None else float(shape["figure"])


def render(results: dict[str, Any]) -> str:
    shapes = [Shape.from_json(s) for s in results["shapes"]]
    systems: dict[str, Any] = results["systems"]
    ours = systems["funclocal"]
    peers = [name for name in PEER_TITLES if name in systems]
    runs = max((s.runs for s in shapes if s.kind != "latency"), default=0)
    samples = next((s.runs for s in shapes if s.kind == "latency"), 0)
    lines = [
        f"Durable workflows, {results['started']}{' (smoke sizes)' if results['smoke'] else ''}"
        f" — commit {results.get('commit') or '?'}"
        + (f", against the baseline {results['baseline'].get('rev')} "
           f"({results['baseline'].get('short')})" if results.get("baseline") else ""),
        f"Machine: {_machine_line(results['machine'])}.",
        f"Each figure is the median of {runs} run(s)"
        + (f"; the latency is the median of {samples} instances." if samples else "."),
        "",
    ]
    header = ["shape", "funclocal"]
    for name in peers:
        header += [PEER_TITLES[name], "ratio"]
    header.append("funclocal goal")
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes: list[str] = []
    for shape in shapes:
        mine = _figure(ours, shape.key)
        row = [shape.title, _ours(shape, ours, mine)]
        for name in peers:
            theirs = _figure(systems[name], shape.key)
            row += [_theirs(shape, systems[name], theirs, notes), _ratio(shape, mine, theirs)]
        row.append(_goal(shape, systems, mine, results["smoke"]))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "ratio = funclocal's figure ÷ the peer's: below 1 is better for times, "
              "above 1 for rates. Every figure is wall time at the client, start request to "
              "result; for funclocal, \"host\" is the same figure by the host's history "
              "timestamps (first ExecutionStarted to last ExecutionCompleted), without the "
              "HTTP round trips and the status polling interval (not for continue-as-new, "
              "whose history is the last generation's, nor for the signals, which run no "
              "orchestration)."]
    if any(s.kind == RETRY for s in shapes):
        lines.append("Retries: every system waits the same fixed interval before each "
                     f"retry (no backoff growth) and makes {RETRY_ATTEMPTS} attempts at most; "
                     "\"over the backoff\" is the figure less the time the retries must wait.")
    for shape in shapes:
        if shape.kind == SIGNALS:
            lines.append(
                f"Signals ({shape.key}): from the first signal sent to the first read of the "
                f"counter that shows exactly {shape.size:,} (a fresh counter each run; a count "
                "over it fails the run, and every run's counter is read again at the end). "
                "funclocal's clients signal through the management API (POST "
                "/runtime/webhooks/durabletask/entities/counter/{key}?op=add), with no SDK "
                "client in between, and read it with GET .../entities/counter/{key}."
                + _counted(ours, shape))
        elif shape.kind == CALLS:
            lines.append(
                f"Entity calls ({shape.key}): one orchestration that awaits "
                f"context.call_entity(counter, \"add\", 1) {shape.size:,} times on a fresh "
                f"counter and returns its final value, checked to be {shape.size:,}."
                + _counted(ours, shape))
    lines += [f"({number}) {note}." for number, note in enumerate(notes, 1)]
    for name in peers:
        if not systems[name].get("available"):
            lines.append(f"{PEER_TITLES[name]}: not run — {systems[name].get('reason')}")
        else:
            lines.append(f"{PEER_TITLES[name]}: {systems[name].get('version')}; "
                         f"{systems[name].get('setup')}.")
    if not peers:
        lines.append("Peers not run (--no-peers).")
    if ours.get("available"):
        lines += ["", *_resources(shapes, ours, systems, peers), "", *_operations(shapes, ours)]
    else:
        lines.append(f"funclocal: not run — {ours.get('reason')}")
    if results.get("comparison") is not None:
        lines += ["", *_comparison(results, shapes)]
    return "\n".join(lines) + "\n"


def _counted(ours: dict[str, Any], shape: Shape) -> str:
    """What funclocal's counters read, as checked (a failed check fails the run)."""
    data = ours.get("shapes", {}).get(shape.key) if ours.get("available") else None
    if not data or "results" not in data:
        return ""
    text = f" funclocal's counters: {', '.join(map(str, data['results']))}"
    if "results_at_end" in data:
        text += f" after the runs, {', '.join(map(str, data['results_at_end']))} at the end"
    exact = all(value == shape.size for value in
                [*data["results"], *data.get("results_at_end", [])])
    return text + (f" (exactly {shape.size:,} each: checked)." if exact else
                   f" (NOT {shape.size:,} each).")


def _with_host(shape: Shape, figure: float | None, server: float | None,
               skipped: bool = False) -> str:
    if figure is None:
        return "not run" if skipped else "n/a"
    return shape.show(figure) + (f"; host {shape.show_short(server)}" if server else "")


def _pair(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return "n/a"
    return f"{before:.2f} → {after:.2f}"


def _percent(fraction: float | None) -> str:
    return "—" if fraction is None else f"{fraction * 100:.0f} %"


def _storage(system: dict[str, Any], key: str) -> float | None:
    shape = system.get("shapes", {}).get(key) if system.get("available") else None
    value = None if shape is None else shape.get("storage_requests_per_activity")
    return float(value) if value else None


def _comparison(results: dict[str, Any], shapes: list[Shape]) -> list[str]:
    """The current checkout against the --baseline revision (bench/baseline.py)."""
    baseline: dict[str, Any] = results["baseline"]
    current: dict[str, Any] = results["systems"]["funclocal"]
    comparison: dict[str, Any] = results["comparison"]
    rev = baseline.get("rev", "?")
    named = f"{rev} ({baseline.get('short', '?')} \"{baseline.get('subject', '')}\")"
    head = f"baseline {rev}" if rev == baseline.get("short") else \
        f"baseline {rev} = {baseline.get('short', '?')}"
    lines = [f"funclocal against the baseline {named}: the same shapes in the same invocation, "
             "each side with its own Azurite and host, their measured runs interleaved"
             f"{' (smoke sizes: these figures mean nothing)' if results['smoke'] else ''}.",
             f"The baseline runs its own runtime package ({baseline.get('runtime', 'not run')}, "
             "a temporary worktree) and "
             + ("its own bench app." if baseline.get("own_app") else
                "this checkout's bench app (the revision has none)."), ""]
    header = ["shape", head, f"current {results.get('commit') or ''}".rstrip(), "ratio",
              "change", "run spread: baseline / current", "CPU s, all: baseline → current",
              "storage requests / activity: baseline → current"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    skipped: dict[str, str] = baseline.get("skipped") or {}
    for shape in shapes:
        row = comparison["shapes"].get(shape.key, {})
        slower = row.get("slower_by")
        change = "—" if slower is None else (
            f"{abs(slower) * 100:.1f} % {'slower' if slower > 0 else 'faster'}"
            + (" — REGRESSED" if row.get("regressed") else ""))
        lines.append("| " + " | ".join([
            shape.title,
            _with_host(shape, row.get("baseline"), row.get("baseline_server"),
                       shape.key in skipped),
            _with_host(shape, row.get("current"), row.get("current_server")),
            "—" if row.get("ratio") is None else f"{row['ratio']:.2f}",
            change,
            f"{_percent(row.get('baseline_spread'))} / {_percent(row.get('current_spread'))}",
            _pair(row.get("baseline_cpu_s_all"), row.get("current_cpu_s_all")),
            _pair(_storage(baseline, shape.key), _storage(current, shape.key)),
        ]) + " |")
    threshold = f"{comparison['threshold'] * 100:g} %"
    lines += ["", "ratio = current ÷ baseline, each the median of its own runs: below 1 is "
              "better for times, above 1 for rates; \"change\" is by wall time either way; "
              "\"run spread\" is (slowest run - fastest) ÷ median, by wall time: a change "
              "smaller than the spread is noise (more --runs and a quiet machine narrow it)."]
    if not baseline.get("available"):
        lines.append(f"Baseline {rev}: not run — {baseline.get('reason')}")
    if not current.get("available"):
        lines.append(f"Current: not run — {current.get('reason')}")
    regressed = comparison["regressed"]
    missing = [s.key for s in shapes if s.key not in comparison["compared"]]
    if regressed:
        details = ", ".join(f"{key} (+{comparison['shapes'][key]['slower_by'] * 100:.1f} %)"
                            for key in regressed)
        lines.append(f"REGRESSION: {len(regressed)} shape(s) more than {threshold} slower "
                     f"than {rev}: {details}.")
    elif comparison["compared"]:
        lines.append(f"No regression: no shape is more than {threshold} slower than {rev}.")
    if missing:
        lines.append("Not compared (a side has no figure): " + ", ".join(
            f"{key} (not run on {rev}: {skipped[key]})" if key in skipped else key
            for key in missing) + ".")
    return lines


def _resources(shapes: list[Shape], ours: dict[str, Any], systems: dict[str, Any],
               peers: list[str]) -> list[str]:
    header = ["shape", "storage requests / activity", "host CPU s", "worker CPU s",
              "Azurite CPU s", "host peak RSS", "funclocal CPU s, all"]
    available = [p for p in peers if systems[p].get("available")]
    header += [f"{PEER_TITLES[p]} CPU s, all" for p in available]
    lines = ["funclocal resources per measured run (median). CPU seconds count every thread; "
             "\"all\" adds up the system's processes: funclocal's host, workers and Azurite "
             "(not the benchmark's HTTP client); the Temporal dev server and the process of "
             "its SDK worker and client; DBOS's one process. The storage counts leave out "
             "the benchmark's own status polls."
             + "".join(f" For {shape.key} a unit is one {shape.unit}, not one activity."
                       for shape in shapes if shape.unit != "activity"), "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for shape in shapes:
        data = ours["shapes"][shape.key]
        rss = data.get("host_peak_rss_mb")
        row = [shape.title, f"{data['storage_requests_per_activity']:.1f}",
               f"{data['host_cpu_s']:.2f}", f"{data['worker_cpu_s']:.2f}",
               f"{data['azurite_cpu_s']:.2f}", f"{rss:.0f} MiB" if rss is not None else "n/a",
               f"{data['host_cpu_s'] + data['worker_cpu_s'] + data['azurite_cpu_s']:.2f}"]
        for name in available:
            peer_shape = systems[name]["shapes"].get(shape.key)
            row.append(f"{peer_shape['cpu_s']:.2f}" if peer_shape else "n/a")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _operations(shapes: list[Shape], ours: dict[str, Any]) -> list[str]:
    operations = sorted({op for shape in shapes
                         for op in ours["shapes"][shape.key]["storage_per_activity"]})
    header = ["storage requests per activity, by operation",
              *(shape.key for shape in shapes)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for op in operations:
        row = [f"`{op}`"]
        for shape in shapes:
            value = ours["shapes"][shape.key]["storage_per_activity"].get(op)
            row.append(f"{value:.2f}" if value else "")
        lines.append("| " + " | ".join(row) + " |")
    return lines
