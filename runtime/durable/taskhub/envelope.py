"""The queue message envelope of DurableTask.AzureStorage (MessageData), built and read.

Fields: ActivityId (a new GUID per send), TaskMessage {Event, SequenceNumber,
OrchestrationInstance {InstanceId, ExecutionId}}, CompressedBlobName (set when the body
went to a blob), SequenceNumber (orders this process's sends when InsertedOn ties),
Episode (the sender's episode) and Sender {InstanceId, ExecutionId}. DTFx may be set to
Base64-encode messages; both encodings are read.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import uuid
from typing import Any

# Orders messages sent by this process when their InsertedOn ties (DTFx's SequenceNumber).
_sequence = itertools.count(1)


def new_envelope(instance_id: str, execution_id: str | None, event: dict[str, Any], *,
                 sender: tuple[str, str] | None = None,
                 episode: int | None = None) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "ActivityId": str(uuid.uuid4()),
        "TaskMessage": {
            "Event": event,
            "SequenceNumber": 0,
            "OrchestrationInstance": {"InstanceId": instance_id,
                                      "ExecutionId": execution_id},
        },
        "CompressedBlobName": None,
        "SequenceNumber": next(_sequence),
        "Sender": (None if sender is None
                   else {"InstanceId": sender[0], "ExecutionId": sender[1]}),
    }
    if episode is not None:
        envelope["Episode"] = episode
    return envelope


def encode(envelope: dict[str, Any]) -> str:
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))


def parse_message_text(text: Any) -> dict[str, Any]:
    """The envelope in a queue message's text (JSON, or Base64 JSON); ValueError when it
    is neither."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if not isinstance(text, str):
        raise ValueError("empty message")
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        try:
            stripped = base64.b64decode(stripped, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError("message is neither JSON nor Base64 JSON") from exc
    body = json.loads(stripped)
    if not isinstance(body, dict):
        raise ValueError("message is not a JSON object")
    return body


def check(body: dict[str, Any]) -> None:
    """KeyError/TypeError unless the envelope names its target instance."""
    body["TaskMessage"]["OrchestrationInstance"]["InstanceId"]  # noqa: B018


__all__ = ["check", "encode", "new_envelope", "parse_message_text"]
