"""The workflow shapes every system runs, their sizes, goals, and how a run's wall time
becomes the figure in the table. Shared by the suite and the peers (no third-party
imports)."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

LATENCY, BURST, CHAIN, FANOUT = "latency", "burst", "chain", "fanout"
HELLO_CITIES = ("Tokyo", "Seattle", "London")


@dataclass(frozen=True)
class Shape:
    key: str
    kind: str  # LATENCY: one hello-cities; BURST: `size` hello-cities at once;
    #            CHAIN: `size` sequential activities; FANOUT: `size` parallel activities
    size: int
    runs: int  # measured runs (for LATENCY: instances, one after the other)
    goal: float  # seconds, or instances/s for BURST
    title: str

    @property
    def activities(self) -> int:
        """Activities one run executes."""
        if self.kind == LATENCY:
            return len(HELLO_CITIES)
        if self.kind == BURST:
            return len(HELLO_CITIES) * self.size
        return self.size

    @property
    def higher_is_better(self) -> bool:
        return self.kind == BURST

    def figure(self, walls: list[float]) -> float:
        """The table's figure from the runs' wall times: seconds, or instances/s."""
        middle = statistics.median(walls)
        return self.size / middle if self.kind == BURST else middle

    def meets_goal(self, figure: float) -> bool:
        return figure >= self.goal if self.higher_is_better else figure <= self.goal

    def show(self, figure: float) -> str:
        if self.kind == LATENCY:
            return f"{figure * 1000:.0f} ms"
        if self.kind == BURST:
            return f"{figure:.1f}/s"
        if self.kind == CHAIN:
            return f"{figure:.2f} s ({self.size / figure:.0f}/s)"
        return f"{figure:.2f} s"

    def show_short(self, figure: float) -> str:
        if self.kind == LATENCY:
            return f"{figure * 1000:.0f} ms"
        if self.kind == BURST:
            return f"{figure:.1f}/s"
        return f"{figure:.2f} s"

    def show_goal(self) -> str:
        if self.kind == BURST:
            return f"≥ {self.goal:g}/s"
        if self.kind == LATENCY:
            return f"≤ {self.goal * 1000:.0f} ms"
        if self.kind == CHAIN:
            return f"≤ {self.goal:g} s ({self.size / self.goal:.0f}/s)"
        return f"≤ {self.goal:g} s"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "activities": self.activities}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Shape:
        return Shape(data["key"], data["kind"], int(data["size"]), int(data["runs"]),
                     float(data["goal"]), data["title"])


def full_shapes(runs: int = 3, samples: int = 20) -> list[Shape]:
    """The performance issue's shapes and goals."""
    return [
        Shape("hello", LATENCY, 1, samples, 0.150,
              "hello-cities (3 sequential activities), one instance, start → done"),
        Shape("burst200", BURST, 200, runs, 25.0,
              "200 hello-cities started at once, completed per second"),
        Shape("chain100", CHAIN, 100, runs, 2.0, "chain of 100 sequential activities"),
        Shape("fanout100", FANOUT, 100, runs, 1.0, "fan-out/fan-in of 100 activities"),
        Shape("fanout1000", FANOUT, 1000, runs, 10.0, "fan-out/fan-in of 1,000 activities"),
    ]


def smoke_shapes() -> list[Shape]:
    """Tiny sizes so `make test` runs the whole path quickly; the goals are not checked."""
    return [
        Shape("hello", LATENCY, 1, 2, 0.150, "hello-cities, one instance, start → done"),
        Shape("burst5", BURST, 5, 1, 25.0, "5 hello-cities started at once"),
        Shape("chain3", CHAIN, 3, 1, 2.0, "chain of 3 sequential activities"),
        Shape("fanout5", FANOUT, 5, 1, 1.0, "fan-out/fan-in of 5 activities"),
    ]
