"""The workflow shapes every system runs, their sizes, goals, and how a run's wall time
becomes the figure in the table. Shared by the suite and the peers (no third-party
imports)."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

LATENCY, BURST, CHAIN, FANOUT = "latency", "burst", "chain", "fanout"
RETRY, SUBORCH, CONTINUE = "retry", "suborch", "continue"
SIGNALS, CALLS = "signals", "calls"
HELLO_CITIES = ("Tokyo", "Seattle", "London")
# RETRY: every activity call fails this many times, then succeeds; every system retries
# after the same fixed interval (backoff coefficient 1), with this many attempts at most.
RETRY_FAILURES = 2
RETRY_INTERVAL_S = 0.1
RETRY_ATTEMPTS = RETRY_FAILURES + 1
# What one unit of a shape is, for the per-unit figures (storage requests).
UNITS = {LATENCY: "activity", BURST: "activity", CHAIN: "activity", FANOUT: "activity",
         RETRY: f"activity call ({RETRY_ATTEMPTS} attempts, {RETRY_FAILURES} retry delays)",
         SUBORCH: "sub-orchestration (with its activity)",
         CONTINUE: "generation (with its activity)",
         SIGNALS: "signal (one entity operation)", CALLS: "entity call (a round trip)"}


@dataclass(frozen=True)
class Shape:
    key: str
    kind: str  # LATENCY: one hello-cities; BURST: `size` hello-cities at once;
    #            CHAIN: `size` sequential activities; FANOUT: `size` parallel activities;
    #            RETRY: `size` sequential activities, each failing RETRY_FAILURES times
    #            before it succeeds; SUBORCH: `size` sub-orchestrations (one activity
    #            each) fanned out and in; CONTINUE: `size` continue-as-new generations
    #            (one activity each); SIGNALS: `size` signals "add 1" to one counter
    #            entity (or its equivalent) from `clients` concurrent clients; CALLS:
    #            `size` sequential calls "add 1" to one counter entity from one
    #            orchestration (or its equivalent), each awaiting the new value
    size: int
    runs: int  # measured runs (for LATENCY: instances, one after the other)
    goal: float  # seconds, or instances/s for BURST and operations/s for SIGNALS; with
    #              goal_peer: the highest ratio; 0: no goal
    title: str
    goal_peer: str = ""  # the goal is relative: funclocal ÷ this peer ≤ goal
    clients: int = 1  # SIGNALS: the concurrent clients that share the signals

    @property
    def activities(self) -> int:
        """Units one run executes (see UNITS): activities, and for RETRY activity calls,
        SUBORCH sub-orchestrations, CONTINUE generations, SIGNALS signals, CALLS calls."""
        if self.kind == LATENCY:
            return len(HELLO_CITIES)
        if self.kind == BURST:
            return len(HELLO_CITIES) * self.size
        return self.size

    @property
    def unit(self) -> str:
        return UNITS.get(self.kind, "activity")

    @property
    def backoff_s(self) -> float:
        """The time a RETRY run spends waiting between attempts at least."""
        return self.size * RETRY_FAILURES * RETRY_INTERVAL_S if self.kind == RETRY else 0.0

    def expected_result(self) -> int | None:
        """What the workflow returns on every system, for the shapes whose result the
        benchmark checks: RETRY the attempts made, SUBORCH the sum of the children's
        activity results (n + 1), CONTINUE the last generation's number; SIGNALS and
        CALLS the counter's final value, exactly one per operation (a fresh counter each
        run, so more would be duplicates and less lost operations)."""
        if self.kind == RETRY:
            return self.size * RETRY_ATTEMPTS
        if self.kind == SUBORCH:
            return self.size * (self.size + 1) // 2
        if self.kind in (CONTINUE, SIGNALS, CALLS):
            return self.size
        return None

    def client_shares(self) -> list[int]:
        """SIGNALS: how many signals each concurrent client sends (they add up to size)."""
        clients = max(1, min(self.clients, self.size))
        return [self.size // clients + (1 if n < self.size % clients else 0)
                for n in range(clients)]

    @property
    def higher_is_better(self) -> bool:
        return self.kind in (BURST, SIGNALS)

    def figure(self, walls: list[float]) -> float:
        """The table's figure from the runs' wall times: seconds, or instances/s
        (operations/s for SIGNALS)."""
        middle = statistics.median(walls)
        return self.size / middle if self.higher_is_better else middle

    def meets_goal(self, figure: float, peer: float | None = None) -> bool | None:
        """Whether funclocal's figure meets the goal; for a relative goal, `peer` is the
        goal peer's figure (None: not run, so not known); None too without a goal."""
        if not self.goal:
            return None
        if self.goal_peer:
            if peer is None or peer <= 0:
                return None
            return figure / peer <= self.goal  # the relative goals are on times
        return figure >= self.goal if self.higher_is_better else figure <= self.goal

    def show(self, figure: float) -> str:
        if self.kind == LATENCY:
            return f"{figure * 1000:.0f} ms"
        if self.kind == BURST:
            return f"{figure:.1f}/s"
        if self.kind == SIGNALS:
            return f"{figure:.0f}/s ({self.size / figure:.2f} s)"
        if self.kind in (CHAIN, CONTINUE, CALLS):
            return f"{figure:.2f} s ({self.size / figure:.0f}/s)"
        if self.kind == RETRY:
            return f"{figure:.2f} s ({figure - self.backoff_s:+.2f} s over the backoff)"
        return f"{figure:.2f} s"

    def show_short(self, figure: float) -> str:
        if self.kind == LATENCY:
            return f"{figure * 1000:.0f} ms"
        if self.kind == BURST:
            return f"{figure:.1f}/s"
        if self.kind == SIGNALS:
            return f"{figure:.0f}/s"
        return f"{figure:.2f} s"

    def show_goal(self) -> str:
        if not self.goal:
            return "none set"
        if self.goal_peer:
            return f"≤ {self.goal:g} × {self.goal_peer}"
        if self.kind == BURST:
            return f"≥ {self.goal:g}/s"
        if self.kind == SIGNALS:
            return f"≥ {self.goal:g} signals/s"
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
                     float(data["goal"]), data["title"], str(data.get("goal_peer") or ""),
                     int(data.get("clients") or 1))


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
        *orchestration_shapes(runs, 100, 100, 1000),
        *entity_shapes(runs, 1000, 10, 1000),
    ]


def orchestration_shapes(runs: int, retries: int, children: int,
                         generations: int) -> list[Shape]:
    """Retries, sub-orchestrations and continue-as-new; the goal: no slower than the
    Temporal dev server."""
    interval = f"{RETRY_INTERVAL_S * 1000:g} ms"
    return [
        Shape(f"retry{retries}", RETRY, retries, runs, 1.0,
              f"chain of {retries:,} {'activity' if retries == 1 else 'activities'}, each "
              f"failing {RETRY_FAILURES}× then succeeding (retries {interval} apart)",
              "temporal"),
        Shape(f"suborch{children}", SUBORCH, children, runs, 1.0,
              f"fan-out/fan-in of {children:,} sub-orchestrations, one activity each",
              "temporal"),
        Shape(f"can{generations}", CONTINUE, generations, runs, 1.0,
              f"{generations:,} continue-as-new generations, one activity each",
              "temporal"),
    ]


def smoke_shapes() -> list[Shape]:
    """Tiny sizes so `make test` runs the whole path quickly; the goals are not checked."""
    return [
        Shape("hello", LATENCY, 1, 2, 0.150, "hello-cities, one instance, start → done"),
        Shape("burst5", BURST, 5, 1, 25.0, "5 hello-cities started at once"),
        Shape("chain3", CHAIN, 3, 1, 2.0, "chain of 3 sequential activities"),
        Shape("fanout5", FANOUT, 5, 1, 1.0, "fan-out/fan-in of 5 activities"),
        *orchestration_shapes(1, 1, 5, 5),
        *entity_shapes(1, 20, 2, 5),
    ]


def entity_shapes(runs: int, signals: int, clients: int, calls: int) -> list[Shape]:
    """Durable entities: many signals to one counter, and sequential calls to one counter
    from one orchestration. The signals' goal is a rate; the calls have none."""
    return [
        Shape(f"signals{signals}", SIGNALS, signals, runs, 200.0,
              f"{signals:,} signals to one counter entity from {clients} concurrent "
              "clients, per second", clients=clients),
        Shape(f"calls{calls}", CALLS, calls, runs, 0.0,
              f"{calls:,} sequential entity calls from one orchestration"),
    ]
