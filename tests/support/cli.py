"""Drive the command line as a user does: `python -m runtime ...` in the app's folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.host import REPO


@dataclass
class Run:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def __str__(self) -> str:
        return (f"funclocal {' '.join(self.args)} -> {self.code}\n--- stdout\n{self.out}"
                f"--- stderr\n{self.err}")


def funclocal(*args: str, cwd: Path, env: Mapping[str, str] | None = None,
              timeout: float = 120.0) -> Run:
    """Run `funclocal ARGS` with `cwd` as the current folder (the app's, unless the test
    means otherwise); this checkout's runtime is imported."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FUNCTIONS_")}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(REPO)
    process = subprocess.run([sys.executable, "-m", "runtime", *args], cwd=str(cwd),
                             env=full_env, capture_output=True, text=True, timeout=timeout)
    return Run(tuple(args), process.returncode, process.stdout, process.stderr)


def ok(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> Run:
    """`funclocal ARGS`, which must exit 0."""
    run = funclocal(*args, cwd=cwd, env=env)
    assert run.code == 0, str(run)
    return run
