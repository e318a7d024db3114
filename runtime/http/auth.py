"""Function keys and auth levels, as `func start --enableAuth` applies them."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

KEY_HEADER = "x-functions-key"


def generate_key() -> str:
    return secrets.token_urlsafe(40)


DURABLE_SYSTEM_KEY = "durabletask_extension"  # the Durable extension's system key name


@dataclass(frozen=True)
class KeyStore:
    """The keys of a host with auth on, as the Functions host scopes them: the master
    key opens everything; the host key and function keys open function-level triggers;
    a system key opens only its extension's webhook routes (the Durable extension's
    `durabletask_extension` key is the one its management URLs carry)."""

    master_key: str
    host_key: str
    function_keys: Mapping[str, str] = field(default_factory=dict)
    system_keys: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, master_key: str | None, host_key: str | None,
               function_keys: Mapping[str, str],
               system_keys: Mapping[str, str] | None = None) -> KeyStore:
        systems = dict(system_keys or {})
        systems.setdefault(DURABLE_SYSTEM_KEY, generate_key())
        return cls(master_key or generate_key(), host_key or generate_key(),
                   dict(function_keys), systems)

    @property
    def durable_key(self) -> str:
        return self.system_keys[DURABLE_SYSTEM_KEY]

    def allows_extension(self, extension: str, presented: str | None) -> bool:
        """Whether `presented` opens an extension's webhook routes: its system key or
        the master key (not the host key or function keys)."""
        if not presented:
            return False
        key = self.system_keys.get(extension)
        return _same(presented, self.master_key) or (key is not None and
                                                      _same(presented, key))

    def allows(self, level: str, function_name: str | None, presented: str | None) -> bool:
        """Whether a request presenting `presented` may call something at `level`."""
        level = level.lower()
        if level == "anonymous":
            return True
        if not presented:
            return False
        if _same(presented, self.master_key):
            return True
        if level == "admin":
            return False
        if _same(presented, self.host_key):
            return True
        if function_name is not None:
            key = self.function_keys.get(function_name)
            return key is not None and _same(presented, key)
        return False


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
