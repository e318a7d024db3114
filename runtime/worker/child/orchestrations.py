"""Run an orchestrator function's episode: from a session where one applies, and in
verify mode also the unmodified SDK way, comparing the two.

Verify mode (FUNCLOCAL_VERIFY_REPLAY=1) exists to prove the speed-ups change nothing: it
replays every episode a second time with the SDK untouched (dateutil parsing, a fresh
full replay), returns that result, and reports any difference on stderr as a line
starting with "REPLAY MISMATCH". The test suite runs with it on.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.worker.child.sdk_speedups import original_parsing
from runtime.worker.child.sessions import SessionCache, is_sdk_orchestrator

VERIFY_ENV = "FUNCLOCAL_VERIFY_REPLAY"
SESSIONS_ENV = "FUNCLOCAL_REPLAY_SESSIONS"
MISMATCH = "REPLAY MISMATCH"


@dataclass(frozen=True)
class Outcome:
    """What a call of the orchestrator function returned or raised."""

    value: Any
    error: BaseException | None

    @staticmethod
    def of(call: Callable[[], Any]) -> Outcome:
        try:
            return Outcome(call(), None)
        except Exception as exc:  # noqa: BLE001 - the SDK reports its state by raising
            return Outcome(None, exc)

    @property
    def text(self) -> str:
        """The state as the host reads it: the returned text or the raised message."""
        if self.error is not None:
            return f"raised {type(self.error).__name__}: {self.error}"
        return self.value if isinstance(self.value, str) else f"returned {self.value!r}"

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class OrchestratorRunner:
    def __init__(self, sessions: SessionCache | None, *, verify: bool = False,
                 report: Callable[[str], None] = _stderr) -> None:
        self.sessions = sessions
        self.verify = verify
        self.report = report
        self.mismatches = 0

    @classmethod
    def from_environment(cls) -> OrchestratorRunner:
        sessions_off = os.environ.get(SESSIONS_ENV, "").strip().lower() in ("0", "false", "off")
        verify = os.environ.get(VERIFY_ENV, "").strip().lower() in ("1", "true", "on")
        return cls(None if sessions_off else SessionCache(), verify=verify)

    def run(self, user_function: Callable[..., Any], kwargs: dict[str, Any],
            trigger_name: str) -> Any:
        """Call the orchestrator function with `kwargs` (blocking: run it in a thread)."""
        body = getattr(kwargs.get(trigger_name), "body", None)

        def fast() -> Any:
            if (self.sessions is not None and isinstance(body, str)
                    and _only_parameter(user_function) == [trigger_name] == list(kwargs)
                    and is_sdk_orchestrator(user_function)):
                return self.sessions.run(user_function, body)
            return user_function(**kwargs)

        if not self.verify:
            return fast()
        outcome = Outcome.of(fast)
        with original_parsing():
            reference = Outcome.of(lambda: user_function(**kwargs))
        if outcome.text != reference.text:
            self._mismatch(user_function, body, outcome.text, reference.text)
        return reference.unwrap()

    def _mismatch(self, user_function: Any, body: Any, got: str, expected: str) -> None:
        self.mismatches += 1
        instance_id = _instance_id(body)
        if self.sessions is not None and instance_id is not None:
            self.sessions.discard(instance_id)
        at = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
                  min(len(got), len(expected)))
        name = getattr(user_function, "__name__", "?")
        self.report(
            f"{MISMATCH} in orchestrator '{name}', instance {instance_id!r}: the fast replay "
            f"differs from the unmodified SDK at character {at}: "
            f"fast {got[max(0, at - 40):at + 80]!r} vs SDK {expected[max(0, at - 40):at + 80]!r}")


def _only_parameter(function: Any) -> list[str] | None:
    code = getattr(function, "__code__", None)
    if code is None:
        return None
    return list(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])


def _instance_id(body: Any) -> str | None:
    try:
        value = json.loads(body).get("instanceId")
    except (TypeError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
