"""Which file changes cause a reload, and the watcher on a real folder."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from runtime.watch import ChangeSet, FileWatcher, WatchPlan

ROOT = Path("/srv/app")


def plan(**kwargs: object) -> WatchPlan:
    base = dict(script_root=ROOT, config_files=frozenset({ROOT / "host.json",
                                                          Path("/srv/local.settings.json")}))
    base.update(kwargs)
    return WatchPlan(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("path", "kind"), [
    ("/srv/app/function_app.py", "code"),
    ("/srv/app/pkg/deep/module.py", "code"),
    ("/srv/app/host.json", "config"),
    ("/srv/local.settings.json", "config"),
    ("/srv/app/local.settings.json", None),  # not the settings file in use
    ("/srv/app/notes.txt", None),
    ("/srv/app/function_app.py~", None),
    ("/srv/app/.function_app.py.swp", None),
    ("/srv/app/.#function_app.py", None),
    ("/srv/app/__pycache__/function_app.cpython-311.pyc", None),
    ("/srv/app/pkg/__pycache__/module.cpython-311.pyc", None),
    ("/srv/app/.venv/lib/python3.11/site-packages/x.py", None),
    ("/srv/app/node_modules/thing/index.py", None),
    ("/srv/app/.azurite/__blobstorage__/x.py", None),
    ("/srv/app/.git/hooks/pre-commit.py", None),
    ("/srv/app/.hidden/module.py", None),
    ("/srv/other/function_app.py", None),
    ("/srv/app", None),
])
def test_kind_of_a_change(path: str, kind: str | None) -> None:
    assert plan().kind_of(Path(path), top_level_dir=False) == kind


def test_a_top_level_folder_added_or_removed_changes_the_layout() -> None:
    assert plan().kind_of(ROOT / "shared", top_level_dir=True) == "layout"
    assert plan().kind_of(ROOT / ".cache", top_level_dir=True) is None
    assert plan().kind_of(ROOT / "pkg" / "sub", top_level_dir=True) is None


def test_watch_files_and_directories_from_host_json() -> None:
    built = WatchPlan.build(ROOT, [ROOT / "host.json"], watch_directories=["templates"],
                            watch_files=["data/config.yaml"])
    assert built.kind_of(ROOT / "data" / "config.yaml", top_level_dir=False) == "code"
    assert built.kind_of(ROOT / "data" / "other.yaml", top_level_dir=False) is None
    assert built.kind_of(ROOT / "templates" / "page.html", top_level_dir=False) == "code"
    assert built.kind_of(ROOT / "templates" / "__pycache__" / "x", top_level_dir=False) \
        is None


def test_change_sets_merge_and_describe_themselves() -> None:
    merged = ChangeSet(frozenset({"a.py"})).merge(ChangeSet(frozenset({"b.py"}), config=True))
    assert merged == ChangeSet(frozenset({"a.py", "b.py"}), config=True, layout=False)
    assert merged.merge(None) is merged
    many = ChangeSet(frozenset(f"m{n}.py" for n in range(10)))
    assert many.describe() == "m0.py, m1.py, m2.py and 7 more"


def test_roots_skip_virtualenvs_and_ignored_folders(tmp_path: Path) -> None:
    for folder in ("pkg", ".venv", "node_modules", "__pycache__", ".git", "env"):
        (tmp_path / folder).mkdir()
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    outside = tmp_path.parent / f"{tmp_path.name}-settings"
    outside.mkdir()
    built = WatchPlan.build(tmp_path, [tmp_path / "host.json", outside / "local.settings.json"])
    assert built.deep_roots() == [tmp_path / "pkg"]
    assert built.flat_roots() == sorted([tmp_path, outside])


async def next_change(watcher: FileWatcher, timeout: float = 10.0) -> ChangeSet:
    changes = watcher.changes()
    return await asyncio.wait_for(changes.__anext__(), timeout)


async def test_a_burst_of_writes_is_one_change_set(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    watcher = FileWatcher(WatchPlan.build(tmp_path, [tmp_path / "host.json"]))
    await watcher.start()
    try:
        for n in range(200):
            (tmp_path / "pkg" / f"m{n}.py").write_text(f"VALUE = {n}\n")
        (tmp_path / "function_app.py").write_text("app = None\n")
        (tmp_path / "ignored.txt").write_text("not code\n")
        changes = await next_change(watcher)
        assert len(changes.paths) == 201
        assert "function_app.py" in changes.paths and "pkg/m199.py" in changes.paths
        assert not changes.config
    finally:
        await watcher.stop()


async def test_a_new_top_level_folder_is_watched_from_then_on(tmp_path: Path) -> None:
    watcher = FileWatcher(WatchPlan.build(tmp_path, [tmp_path / "host.json"]))
    await watcher.start()
    try:
        (tmp_path / "shared").mkdir()
        first = await next_change(watcher)
        assert first.layout and "shared" in first.paths
        (tmp_path / "shared" / "util.py").write_text("X = 1\n")
        second = await next_change(watcher)
        assert second.paths == frozenset({"shared/util.py"})
        (tmp_path / "host.json").write_text("{}")
        third = await next_change(watcher)
        assert third.config
    finally:
        await watcher.stop()


async def test_stopping_the_watcher_is_quick(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    watcher = FileWatcher(WatchPlan.build(tmp_path, []))
    await watcher.start()
    started = time.monotonic()
    await watcher.stop()
    assert time.monotonic() - started < 2.0
