"""Function keys and auth levels, as `func start --enableAuth` applies them."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

KEY_HEADER = "x-functions-key"


def generate_key() -> str:
    return secrets.token_urlsafe(40)


@dataclass(frozen=True)
class KeyStore:
    master_key: str
    host_key: str
    function_keys: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, master_key: str | None, host_key: str | None,
               function_keys: Mapping[str, str]) -> KeyStore:
        return cls(master_key or generate_key(), host_key or generate_key(), dict(function_keys))

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
