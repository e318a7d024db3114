"""The figures the fault suite (tests/faults/) reports at the end of a run.

Each fault test measures into `FIGURES`; tests/faults/conftest.py moves what one test
measured into its report (`PROPERTY`), and tests/conftest.py adds the reports up in the
process that prints the summary, so the totals are right when pytest-xdist runs the tests
in several processes."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field

PROPERTY = "funclocal_fault_figures"


@dataclass
class Figures:
    """What the suite reports (README: the fault suite's totals)."""

    runs: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    instances: int = 0
    lost: int = 0
    duplicated: int = 0
    re_executed: int = 0
    takeover_s: list[float] = field(default_factory=list)  # a kill → partitions owned again
    finish_s: list[float] = field(default_factory=list)  # a restart → every instance done
    recovery_s: list[float] = field(default_factory=list)  # storage back → every one done
    partitions_per_host: list[int] = field(default_factory=list)

    def lines(self) -> list[str]:
        def median(values: list[float]) -> str:
            return f"{statistics.median(values):.1f} s" if values else "n/a"
        return [
            "runs: " + ", ".join(f"{mode} {n}" for mode, n in sorted(self.runs.items())),
            f"kills: {self.kills}; instances: {self.instances}; lost: {self.lost}; "
            f"duplicated history events: {self.duplicated}; activity re-executions: "
            f"{self.re_executed}",
            f"takeover after a kill (median): {median(self.takeover_s)}; every instance "
            f"done after a restart (median): {median(self.finish_s)}; recovery after an "
            f"outage (median): {median(self.recovery_s)}",
            "partitions per host with 3 hosts: "
            + (", ".join(map(str, sorted(self.partitions_per_host, reverse=True)))
               or "n/a"),
        ]

    def to_json(self) -> str:
        return json.dumps({"runs": dict(self.runs), "kills": self.kills,
                           "instances": self.instances, "lost": self.lost,
                           "duplicated": self.duplicated, "re_executed": self.re_executed,
                           "takeover_s": self.takeover_s, "finish_s": self.finish_s,
                           "recovery_s": self.recovery_s,
                           "partitions_per_host": self.partitions_per_host})

    @classmethod
    def from_json(cls, text: str) -> Figures:
        data = json.loads(text)
        return cls(runs=Counter(data["runs"]), kills=data["kills"],
                   instances=data["instances"], lost=data["lost"],
                   duplicated=data["duplicated"], re_executed=data["re_executed"],
                   takeover_s=data["takeover_s"], finish_s=data["finish_s"],
                   recovery_s=data["recovery_s"],
                   partitions_per_host=data["partitions_per_host"])

    def take(self) -> Figures:
        """These figures, leaving this object empty."""
        taken = Figures.from_json(self.to_json())
        self.__init__()  # type: ignore[misc]
        return taken

    def add(self, other: Figures) -> None:
        self.runs.update(other.runs)
        self.kills += other.kills
        self.instances += other.instances
        self.lost += other.lost
        self.duplicated += other.duplicated
        self.re_executed += other.re_executed
        self.takeover_s += other.takeover_s
        self.finish_s += other.finish_s
        self.recovery_s += other.recovery_s
        self.partitions_per_host = other.partitions_per_host or self.partitions_per_host


# What the running test has measured; conftest.py hands it to the session's totals through
# the test's report, so that the totals also add up when pytest-xdist runs the tests in
# several processes.
FIGURES = Figures()
