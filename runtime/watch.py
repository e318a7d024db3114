"""Which files of an app matter for a reload, and when they change (watchfiles).

The script root itself and the folders holding config files are watched flat; each of the
script root's own sub-folders (except virtualenvs, node_modules, caches and hidden ones) is
watched recursively. Watching the root recursively would walk every folder of a `.venv` or
`node_modules`, which costs inotify watches and a noticeable pause at start. A sub-folder
added or removed at the top is seen by the flat watch, and the recursive watch is rebuilt.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import watchfiles

from runtime import console

log = console.get("reload")

IGNORED_DIRS = frozenset({".venv", "node_modules", ".azurite", "__pycache__", ".git"})
CODE_SUFFIX = ".py"
DEBOUNCE_MS = 1600  # the longest a burst of changes is grouped into one batch
STEP_MS = 100  # the quiet time that ends a batch: one save, or an editor's burst of writes
STOP_TIMEOUT = 5.0


def ignored_part(name: str) -> bool:
    return name in IGNORED_DIRS or name.startswith(".")


def _is_virtualenv(folder: Path) -> bool:
    return (folder / "pyvenv.cfg").is_file()


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


@dataclass(frozen=True)
class ChangeSet:
    """What changed since the last reload: code paths, and whether config or the layout
    of top-level folders changed."""

    paths: frozenset[str] = frozenset()
    config: bool = False
    layout: bool = False

    def merge(self, other: ChangeSet | None) -> ChangeSet:
        if other is None:
            return self
        return ChangeSet(self.paths | other.paths, self.config or other.config,
                         self.layout or other.layout)

    def describe(self, shown: int = 3) -> str:
        names = sorted(self.paths)
        if not names:
            return "the app's files"
        listed = ", ".join(names[:shown])
        if len(names) > shown:
            listed += f" and {len(names) - shown} more"
        return listed


@dataclass(frozen=True)
class WatchPlan:
    """The files a reload depends on. Paths are absolute and resolved."""

    script_root: Path
    config_files: frozenset[Path] = frozenset()
    extra_files: frozenset[Path] = frozenset()
    extra_dirs: tuple[Path, ...] = ()

    @classmethod
    def build(cls, script_root: Path, config_files: Iterable[Path],
              watch_directories: Sequence[str] = (),
              watch_files: Sequence[str] = ()) -> WatchPlan:
        """host.json's watchDirectories and watchFiles are relative to the script root."""
        root = script_root.resolve()
        return cls(root, frozenset(p.resolve() for p in config_files),
                   frozenset((root / f).resolve() for f in watch_files),
                   tuple((root / d).resolve() for d in watch_directories))

    def kind_of(self, path: Path, *, top_level_dir: bool) -> str | None:
        """'config', 'code', 'layout' (a top-level folder added or removed) or None for a
        change that does not matter. `top_level_dir` says the path is (or was) a folder."""
        if path in self.config_files:
            return "config"
        if path in self.extra_files:
            return "code"
        for folder in self.extra_dirs:
            if _under(path, folder) and path != folder:
                relative = path.relative_to(folder).parts
                return None if any(ignored_part(p) for p in relative) else "code"
        if not _under(path, self.script_root) or path == self.script_root:
            return None
        relative = path.relative_to(self.script_root).parts
        if any(ignored_part(part) for part in relative):
            return None
        if len(relative) == 1 and top_level_dir:
            return "layout"
        return "code" if path.suffix == CODE_SUFFIX else None

    def deep_roots(self) -> list[Path]:
        """Folders watched recursively (reads the script root's listing)."""
        roots: list[Path] = []
        with contextlib.suppress(OSError):
            for entry in sorted(self.script_root.iterdir()):
                if entry.is_dir() and not ignored_part(entry.name) \
                        and not _is_virtualenv(entry):
                    roots.append(entry)
        roots += [d for d in self.extra_dirs if d.is_dir() and not any(
            _under(d, r) for r in roots)]
        return roots

    def flat_roots(self) -> list[Path]:
        """Folders watched without their sub-folders: the script root, and wherever a
        config file or a watched file lives."""
        folders = {self.script_root}
        folders |= {p.parent for p in self.config_files | self.extra_files}
        return sorted(f for f in folders if f.is_dir())

class _Stream:
    """One watchfiles watcher putting classified change sets on the watcher's queue."""

    def __init__(self, roots: list[Path], *, recursive: bool, watcher: FileWatcher) -> None:
        self.roots = roots
        self.recursive = recursive
        self.watcher = watcher
        self.stop_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not self.roots:
            return
        self.task = asyncio.create_task(self._run())
        # awatch creates its inotify watches synchronously on the task's first step; after
        # one pass of the event loop every change from now on is seen.
        await asyncio.sleep(0)
        if self.task.done():
            error = None if self.task.cancelled() else self.task.exception()
            if error is not None:
                raise error

    async def _run(self) -> None:
        try:
            async for raw in watchfiles.awatch(
                    *self.roots, watch_filter=None, debounce=self.watcher.debounce_ms,
                    step=self.watcher.step_ms // 2, stop_event=self.stop_event,
                    recursive=self.recursive):
                changes = self.watcher.classify(raw)
                if changes is not None:
                    self.watcher.queue.put_nowait(changes)
        except (OSError, RuntimeError) as exc:
            if self.stop_event.is_set():
                return
            log.error("Watching %s for changes failed: %s", ", ".join(map(str, self.roots)),
                      exc)
            raise

    async def stop(self) -> None:
        if self.task is None:
            return
        # Setting the event (rather than only cancelling) lets the watch thread return
        # within one step instead of at its next timeout.
        self.stop_event.set()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), STOP_TIMEOUT)
        except asyncio.TimeoutError:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        except (OSError, RuntimeError):
            pass  # already reported


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


class FileWatcher:
    """Change sets for a WatchPlan, each one a debounced burst of saves."""

    def __init__(self, plan: WatchPlan, *, debounce_ms: int = DEBOUNCE_MS,
                 step_ms: int = STEP_MS) -> None:
        self.plan = plan
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self.queue: asyncio.Queue[ChangeSet] = asyncio.Queue()
        self.flat: _Stream | None = None
        self.deep: _Stream | None = None
        self._lock = asyncio.Lock()  # one rebuild of the streams at a time

    async def start(self) -> None:
        """Returns once every watch is in place."""
        self.flat = _Stream(self.plan.flat_roots(), recursive=False, watcher=self)
        await self.flat.start()
        await self._start_deep()

    async def _start_deep(self) -> None:
        self.deep = _Stream(self.plan.deep_roots(), recursive=True, watcher=self)
        await self.deep.start()

    async def set_plan(self, plan: WatchPlan) -> None:
        async with self._lock:
            if plan == self.plan:
                return
            await self.stop()
            self.plan = plan
            await self.start()

    def classify(self, raw: Iterable[tuple[watchfiles.Change, str]]) -> ChangeSet | None:
        paths: set[str] = set()
        config = layout = False
        deep = set(self.deep.roots) if self.deep is not None else set()
        for change, text in raw:
            path = Path(text)
            was_dir = (change == watchfiles.Change.added and path.is_dir()) or \
                (change == watchfiles.Change.deleted and path in deep)
            kind = self.plan.kind_of(path, top_level_dir=was_dir)
            if kind is None:
                continue
            config = config or kind == "config"
            layout = layout or kind == "layout"
            paths.add(_display(path, self.plan.script_root))
        return ChangeSet(frozenset(paths), config, layout) if paths else None

    async def changes(self) -> AsyncIterator[ChangeSet]:
        """Each watch ends its batch after half a step of quiet; batches from both watches
        within a further step are one change set (a checkout touches both at once)."""
        loop = asyncio.get_running_loop()
        while True:
            batch = await self.queue.get()
            deadline = loop.time() + self.debounce_ms / 1000
            while True:
                wait = min(self.step_ms / 1000, deadline - loop.time())
                if wait <= 0:
                    break
                try:
                    batch = batch.merge(await asyncio.wait_for(self.queue.get(), wait))
                except asyncio.TimeoutError:
                    break
            if batch.layout:
                # Rebuild the recursive watch before the reload reads the files: anything
                # written after this point raises a new change.
                async with self._lock:
                    if self.deep is not None:
                        await self.deep.stop()
                        await self._start_deep()
            yield batch

    async def stop(self) -> None:
        for stream in (self.deep, self.flat):
            if stream is not None:
                await stream.stop()
        self.deep = self.flat = None
