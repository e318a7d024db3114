"""Storage endpoints from a connection string (pure): account-key connection strings and
`UseDevelopmentStorage=true`, as the storage SDKs and the Functions host read them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from runtime.errors import ConfigError

DEV_ACCOUNT_NAME = "devstoreaccount1"
# The emulator's published, well-known key: not a secret.
DEV_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
SERVICES = ("blob", "queue", "table")
DEFAULT_PORTS: Mapping[str, int] = {"blob": 10000, "queue": 10001, "table": 10002}

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class StorageEndpoints:
    """Where the three storage services of one account live, and the key to sign with."""

    account_name: str
    account_key: str = field(repr=False)
    blob_url: str
    queue_url: str
    table_url: str

    @property
    def is_local_emulator(self) -> bool:
        return all(urlsplit(url).hostname in _LOCAL_HOSTS
                   for url in (self.blob_url, self.queue_url, self.table_url))

    @property
    def connection_string(self) -> str:
        """An explicit connection string: the SDK clients never guess the endpoints."""
        protocol = urlsplit(self.blob_url).scheme
        return (f"DefaultEndpointsProtocol={protocol};AccountName={self.account_name};"
                f"AccountKey={self.account_key};BlobEndpoint={self.blob_url};"
                f"QueueEndpoint={self.queue_url};TableEndpoint={self.table_url};")

    def url(self, service: str) -> str:
        return {"blob": self.blob_url, "queue": self.queue_url, "table": self.table_url}[service]

    def address(self, service: str) -> tuple[str, int]:
        """(host, port) of one service, with the scheme's default port when none is given."""
        parts = urlsplit(self.url(service))
        default = 443 if parts.scheme == "https" else 80
        return parts.hostname or "", parts.port or default


def parse_connection_string(conn: str, *, setting: str = "AzureWebJobsStorage"
                            ) -> StorageEndpoints:
    """Endpoints of an account-key connection string or of `UseDevelopmentStorage=true`.

    `setting` names where the string came from, for error messages; the key never appears in
    them.
    """
    values = _split_connection_string(conn, setting)
    if values.get("usedevelopmentstorage", "").lower() == "true":
        return _development_storage(values.get("developmentstorageproxyuri"), setting)
    name = values.get("accountname")
    key = values.get("accountkey")
    if not name:
        raise ConfigError(setting, "the connection string has no AccountName")
    if not key:
        raise ConfigError(setting, "the connection string has no AccountKey "
                                   "(only account-key connection strings are supported)")
    protocol = values.get("defaultendpointsprotocol", "https").lower()
    if protocol not in ("http", "https"):
        raise ConfigError(setting, f"DefaultEndpointsProtocol must be http or https, "
                                   f"not '{protocol}'")
    suffix = values.get("endpointsuffix", "core.windows.net")
    urls: dict[str, str] = {}
    for service in SERVICES:
        explicit = values.get(f"{service}endpoint")
        if explicit:
            urls[service] = _checked_url(explicit, f"{service.capitalize()}Endpoint", setting)
        else:
            urls[service] = f"{protocol}://{name}.{service}.{suffix}"
    return StorageEndpoints(name, key, urls["blob"], urls["queue"], urls["table"])


def _split_connection_string(conn: str, setting: str) -> dict[str, str]:
    values: dict[str, str] = {}
    parts = [part.strip() for part in conn.strip().split(";")]
    for index, part in enumerate(parts, start=1):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            # Say which part, never what it holds: it might be a piece of a key.
            raise ConfigError(setting, f"part {index} of the connection string is not Name=Value")
        values[name.strip().lower()] = value.strip()
    if not values:
        raise ConfigError(setting, "the connection string is empty")
    return values


def _development_storage(proxy_uri: str | None, setting: str) -> StorageEndpoints:
    scheme, host = "http", "127.0.0.1"
    if proxy_uri:
        proxy = urlsplit(_checked_url(proxy_uri, "DevelopmentStorageProxyUri", setting))
        scheme, host = proxy.scheme, proxy.hostname or host
    urls = [f"{scheme}://{url_host(host)}:{DEFAULT_PORTS[s]}/{DEV_ACCOUNT_NAME}"
            for s in SERVICES]
    return StorageEndpoints(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY, *urls)


def _checked_url(url: str, key: str, setting: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(setting, f"{key} must be an http(s) URL with a host, not '{url}'")
    return url.rstrip("/")


def url_host(host: str) -> str:
    """A host name as it goes in a URL (IPv6 addresses in brackets)."""
    return f"[{host}]" if ":" in host else host


__all__ = ["DEFAULT_PORTS", "DEV_ACCOUNT_KEY", "DEV_ACCOUNT_NAME", "SERVICES",
           "StorageEndpoints", "parse_connection_string", "url_host"]
