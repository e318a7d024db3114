"""The id a host process uses in the partition leases (leases.py).

Lease ids are random per process, so two processes never hold one lease. The exception is
a host restarted after a crash on the same machine, app and port: it takes over the lease
id of its dead predecessor, recorded in the user's cache directory
(`~/.cache/funclocal/leases/<hash>.json` with the predecessor's pid), so it gets its
partitions back at once instead of after the leases expire (15 s). A record whose process is
alive is never reused, and a clean stop removes its record. Records of crashed processes
older than a week are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import uuid
from pathlib import Path

from runtime.storage.app_azurite import pid_alive

log = logging.getLogger("runtime.durable.leases")


def lease_identity(owner_id: str, hub_name: str) -> str:
    """This process's id in the leases (hex of a UUID): new, or the one of a dead
    process that ran with the same owner label and hub on this machine (see the module
    docstring). The record is best effort: without a writable cache, ids are new."""
    digest = _digest(owner_id, hub_name)
    if digest in _IDENTITIES:  # the same host opening the hub again (a reload)
        return _IDENTITIES[digest]
    record = _cache_dir() / f"{digest}.json"
    identity = uuid.uuid4().hex
    try:
        previous = json.loads(record.read_text("utf-8"))
        pid = int(previous["pid"])
        if pid != os.getpid() and not pid_alive(pid):
            identity = uuid.UUID(str(previous["lease"])).hex
            log.info("Taking over the partition leases of the previous host process "
                     "(pid %s), which is gone.", previous["pid"])
        else:
            log.debug("Lease record %s belongs to live process %s", record, previous["pid"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.debug("No lease record to take over at %s: %r", record, exc)
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"pid": os.getpid(), "lease": identity}), "utf-8")
    except OSError:
        pass
    _IDENTITIES[digest] = identity
    _prune_once(record)
    return identity


def forget_lease_identity(owner_id: str, hub_name: str) -> None:
    """The host released its leases (a clean stop): its record goes, so the next start
    does not take for a crash what was a stop, and the next open gets a new id."""
    digest = _digest(owner_id, hub_name)
    _IDENTITIES.pop(digest, None)
    record = _cache_dir() / f"{digest}.json"
    try:
        if int(json.loads(record.read_text("utf-8"))["pid"]) == os.getpid():
            record.unlink()
    except (OSError, ValueError, KeyError, TypeError):
        pass


def _digest(owner_id: str, hub_name: str) -> str:
    return hashlib.sha256(f"{owner_id}|{hub_name}".encode()).hexdigest()[:32]


def _prune_once(written: Path) -> None:
    """Records left by crashed processes of hubs never opened again (test hubs, say) go
    once a week older than the one just `written`, once per process: the folder does not
    grow without bound. (The age is by file times, not by the clock.)"""
    global _PRUNED
    if _PRUNED:
        return
    _PRUNED = True
    try:
        cutoff = written.stat().st_mtime - RECORD_DAYS * 86400
        old = [f for f in written.parent.glob("*.json") if f.stat().st_mtime < cutoff]
    except OSError:
        return
    for stale in old:
        try:
            if not pid_alive(int(json.loads(stale.read_text("utf-8"))["pid"])):
                stale.unlink()
        except (OSError, ValueError, KeyError, TypeError):
            with contextlib.suppress(OSError):
                stale.unlink()


RECORD_DAYS = 7
_PRUNED = False
_IDENTITIES: dict[str, str] = {}  # this process's ids, by owner label and hub


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "funclocal" / "leases"
