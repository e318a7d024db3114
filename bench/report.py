"""The durable benchmark's report: Markdown tables from the results JSON."""

from __future__ import annotations

import os
import platform
from typing import Any

from bench.shapes import Shape

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
        f" — commit {results.get('commit') or '?'}",
        f"Machine: {_machine_line(results['machine'])}.",
        f"Each figure is the median of {runs} run(s); the latency is the median of "
        f"{samples} instances.",
        "",
    ]
    header = ["shape", "funclocal"]
    for name in peers:
        header += [PEER_TITLES[name], "ratio"]
    header.append("funclocal goal")
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for shape in shapes:
        mine = _figure(ours, shape.key)
        row = [shape.title, _ours(shape, ours, mine)]
        for name in peers:
            theirs = _figure(systems[name], shape.key)
            row += [shape.show(theirs) if theirs is not None else "n/a",
                    _ratio(shape, mine, theirs)]
        met = "" if mine is None or results["smoke"] else (
            " (met)" if shape.meets_goal(mine) else " (NOT met)")
        row.append(shape.show_goal() + met)
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "ratio = funclocal's figure ÷ the peer's: below 1 is better for times, "
              "above 1 for rates. Every figure is wall time at the client, start request to "
              "result; for funclocal, \"host\" is the same figure by the host's history "
              "timestamps (first ExecutionStarted to last ExecutionCompleted), without the "
              "HTTP round trips and the status polling interval."]
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
    return "\n".join(lines) + "\n"


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
             "the benchmark's own status polls.", "",
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
