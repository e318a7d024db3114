"""The four queue operations of the durable hot path, as plain signed HTTP requests.

Every activity costs a send and a delete, and polls receive; through the queue SDK's
policy pipeline each of these costs ~2 ms of CPU, which made the host, not storage, the
bottleneck of fan-outs and bursts. These requests are simple enough to send directly over
the shared aiohttp session, signed with the account key (SharedKey). Errors are raised as
the SDK's exception types with the same status codes and error codes, so the callers'
handling (404 is fine, pop-receipt mismatch, transient retries) is unchanged. Accounts
reached by SAS or AAD keep using the SDK.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

import aiohttp
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

API_VERSION = "2021-02-12"


@dataclass(frozen=True)
class RawMessage:
    """A queue message as the service describes it."""

    id: str
    pop_receipt: str
    dequeue_count: int
    inserted_on: datetime
    content: str


class LeanQueues:
    def __init__(self, session: aiohttp.ClientSession, queue_endpoint: str, account: str,
                 key: str, *, timeout: float) -> None:
        parts = urlsplit(queue_endpoint.rstrip("/"))
        self.session = session
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.base_path = parts.path  # "/devstoreaccount1" on the emulator, "" on Azure
        self.account = account
        self.key = base64.b64decode(key)
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    # -- operations ----------------------------------------------------------------

    async def send(self, queue: str, text: str, visibility_timeout: int | None) -> RawMessage:
        query = {"messagettl": "-1"}
        if visibility_timeout:
            query["visibilitytimeout"] = str(visibility_timeout)
        body = f"<QueueMessage><MessageText>{escape(text)}</MessageText></QueueMessage>"
        status, _, payload = await self._request("POST", f"{queue}/messages", query,
                                                 body.encode("utf-8"), expect=201)
        return _messages(payload, text)[0]

    async def receive(self, queue: str, count: int, visibility_timeout: int) -> list[RawMessage]:
        query = {"numofmessages": str(count), "visibilitytimeout": str(visibility_timeout)}
        _, _, payload = await self._request("GET", f"{queue}/messages", query, None, expect=200)
        return _messages(payload, None)

    async def delete(self, queue: str, message_id: str, pop_receipt: str) -> None:
        await self._request("DELETE", f"{queue}/messages/{message_id}",
                            {"popreceipt": pop_receipt}, None, expect=204)

    async def update(self, queue: str, message_id: str, pop_receipt: str,
                     visibility_timeout: int) -> str:
        """Change a message's visibility; returns its new pop receipt."""
        _, headers, _ = await self._request(
            "PUT", f"{queue}/messages/{message_id}",
            {"popreceipt": pop_receipt, "visibilitytimeout": str(visibility_timeout)}, None,
            expect=204)
        return headers.get("x-ms-popreceipt", "")

    # -- the request -----------------------------------------------------------------

    async def _request(self, method: str, path: str, query: dict[str, str],
                       body: bytes | None, *, expect: int) -> tuple[int, dict[str, str], bytes]:
        full_path = f"{self.base_path}/{path}"
        headers = {
            "x-ms-date": format_datetime(datetime.now(timezone.utc), usegmt=True),
            "x-ms-version": API_VERSION,
        }
        if body is not None:
            headers["Content-Type"] = "application/xml"
        length = str(len(body)) if body else ""
        headers["Authorization"] = self._authorization(method, full_path, query, headers,
                                                       length)
        url = self.origin + quote(full_path) + "?" + "&".join(
            f"{k}={quote(v, safe='')}" for k, v in query.items())
        # aiohttp would add a Content-Type to a bodiless PUT, which the signature omits.
        skip = () if body is not None else ("Content-Type",)
        async with self.session.request(method, url, data=body, headers=headers,
                                        skip_auto_headers=skip,
                                        timeout=self.timeout) as response:
            payload = await response.read()
            status = response.status
            response_headers = {k.lower(): v for k, v in response.headers.items()}
        if status != expect:
            raise _error(status, response_headers, payload)
        return status, response_headers, payload

    def _authorization(self, method: str, path: str, query: dict[str, str],
                       headers: dict[str, str], length: str) -> str:
        canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(
            (k.lower(), v.strip()) for k, v in headers.items() if k.lower().startswith("x-ms-")))
        resource = f"/{self.account}{path}" + "".join(
            f"\n{k.lower()}:{v}" for k, v in sorted(query.items(), key=lambda kv: kv[0].lower()))
        to_sign = "\n".join([method, "", "", length, "", headers.get("Content-Type", ""),
                             "", "", "", "", "", ""]) + "\n" + canonical_headers + resource
        digest = hmac.new(self.key, to_sign.encode("utf-8"), hashlib.sha256).digest()
        return f"SharedKey {self.account}:{base64.b64encode(digest).decode('ascii')}"


def _messages(payload: bytes, sent_text: str | None) -> list[RawMessage]:
    root = ElementTree.fromstring(payload)
    found: list[RawMessage] = []
    for node in root.findall("QueueMessage"):
        text = node.findtext("MessageText")
        found.append(RawMessage(
            id=node.findtext("MessageId") or "",
            pop_receipt=node.findtext("PopReceipt") or "",
            dequeue_count=int(node.findtext("DequeueCount") or 0),
            inserted_on=parsedate_to_datetime(node.findtext("InsertionTime") or ""),
            content=sent_text if sent_text is not None else (text or "")))
    return found


def _error(status: int, headers: dict[str, str], payload: bytes) -> HttpResponseError:
    code = headers.get("x-ms-error-code", "")
    message = f"Queue request failed with {status} {code}".strip()
    error_type: Any = ResourceNotFoundError if status == 404 else HttpResponseError
    error = error_type(message=message)
    error.status_code = status
    error.error_code = code
    error.reason = payload[:200].decode("utf-8", "replace")
    return error  # type: ignore[no-any-return]
