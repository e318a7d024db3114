"""The Durable HTTP API's address and the URLs the extension hands to clients (pure):
the check-status payload and the durableClient binding JSON (BindingHelper,
HttpApiHandler.CreateCheckStatusResponse)."""

from __future__ import annotations

import json

# Where the management API lives on the public port; the route prefix does not apply.
WEBHOOK_PATH = "/runtime/webhooks/durabletask"
# The path below the loopback RPC listener's root (`rpcBaseUrl`).
RPC_PATH = "/durabletask"
INSTANCE_PLACEHOLDER = "INSTANCEID"


_URL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!*()")


def url_encode(text: str) -> str:
    """WebUtility.UrlEncode: letters, digits and `-_.!*()` kept, a space as '+', every
    other UTF-8 byte as %XX (upper-case hex)."""
    return "".join(char if char in _URL_SAFE else "+" if char == " " else
                   "".join(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass"))
                   for char in text)


def management_urls(origin: str, hub_name: str, instance_id: str,
                    key: str | None = None, *, connection: str = "Storage") -> dict[str, str]:
    """The check-status payload URLs, as the extension builds them (GetClientResponse-
    Links: the id in the path is WebUtility.UrlEncode'd; `id` is the id itself)."""
    base = f"{origin.rstrip('/')}{WEBHOOK_PATH}"
    query = f"taskHub={hub_name}&connection={connection}"
    if key:
        query += f"&code={key}"
    instance = f"{base}/instances/{url_encode(instance_id)}"
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{instance}?{query}",
        "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
        "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
        "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
        "purgeHistoryDeleteUri": f"{instance}?{query}",
        "restartPostUri": f"{instance}/restart?{query}",
        "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
        "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
    }


def client_binding_json(origin: str, hub_name: str, rpc_base_url: str,
                        key: str | None = None) -> str:
    """The JSON the extension hands a durableClient parameter."""
    base = f"{origin.rstrip('/')}{WEBHOOK_PATH}"
    code = f"code={key}" if key else ""
    suffix = f"?{code}" if code else ""
    wait = "?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}"
    payload = {
        "taskHubName": hub_name,
        "connectionName": None,
        "creationUrls": {
            "createNewInstancePostUri":
                f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]{suffix}",
            "createAndWaitOnNewInstancePostUri":
                f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]{wait}"
                + (f"&{code}" if code else ""),
        },
        "managementUrls": management_urls(origin, hub_name, INSTANCE_PLACEHOLDER, key),
        "baseUrl": base,
        "requiredQueryStringParameters": code,
        "rpcBaseUrl": rpc_base_url if rpc_base_url.endswith("/") else rpc_base_url + "/",
        "httpBaseUrl": None,
    }
    return json.dumps(payload)


__all__ = ["INSTANCE_PLACEHOLDER", "RPC_PATH", "WEBHOOK_PATH", "client_binding_json",
           "management_urls", "url_encode"]
