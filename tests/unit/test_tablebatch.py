"""The lean $batch writer: entity JSON with EDM annotations, the multipart body, and the
parts of an answer."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from runtime.storage.tablebatch import Operation, build_body, encode_entity, parse_response


def test_encode_entity_annotates_what_json_cannot_say() -> None:
    when = datetime(2024, 3, 1, 12, 0, 5, 123456, tzinfo=timezone.utc)
    encoded = encode_entity({"PartitionKey": "p", "RowKey": "r", "S": "x", "B": True,
                             "I": 7, "Big": 2**40, "F": 1.5, "T": when, "N": None,
                             "Bin": b"\x00\x01"})
    assert encoded["S"] == "x" and encoded["B"] is True and encoded["I"] == 7
    assert encoded["Big"] == str(2**40) and encoded["Big@odata.type"] == "Edm.Int64"
    assert encoded["F@odata.type"] == "Edm.Double"
    assert encoded["T"] == "2024-03-01T12:00:05.123456Z"
    assert encoded["T@odata.type"] == "Edm.DateTime"
    assert "N" not in encoded
    assert encoded["Bin"] == "AAE=" and encoded["Bin@odata.type"] == "Edm.Binary"


def test_encode_entity_rejects_unknown_types() -> None:
    with pytest.raises(TypeError, match="column 'X'"):
        encode_entity({"X": object()})


def test_body_has_one_part_per_operation_with_methods_and_etag() -> None:
    ops = [Operation("upsert", {"PartitionKey": "a'b", "RowKey": "0001", "V": 1}),
           Operation("create", {"PartitionKey": "a'b", "RowKey": "sentinel"}),
           Operation("merge", {"PartitionKey": "a'b", "RowKey": "sentinel"}, 'W/"1"')]
    content_type, body = build_body("http://h/acct/T", ops)
    boundary = content_type.split("boundary=")[1]
    assert body.startswith(f"--{boundary}\r\n") and body.endswith(f"--{boundary}--\r\n")
    assert "PUT http://h/acct/T(PartitionKey='a%27%27b',RowKey='0001') HTTP/1.1" in body
    assert "POST http://h/acct/T HTTP/1.1" in body
    assert "MERGE http://h/acct/T(PartitionKey='a%27%27b',RowKey='sentinel') HTTP/1.1" in body
    assert 'If-Match: W/"1"' in body
    assert json.dumps({"PartitionKey": "a'b", "RowKey": "0001", "V": 1},
                      separators=(",", ":")) in body


def test_parse_response_reads_status_and_etag_of_each_part() -> None:
    answer = ("--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2"
              "\r\n\r\n--changesetresponse_2\r\nContent-Type: application/http\r\n\r\n"
              "HTTP/1.1 204 No Content\r\nETag: W/\"a\"\r\n\r\n\r\n"
              "--changesetresponse_2\r\nContent-Type: application/http\r\n\r\n"
              "HTTP/1.1 204 No Content\r\nETag: W/\"b\"\r\n\r\n\r\n"
              "--changesetresponse_2--\r\n--batchresponse_1--\r\n")
    assert [(s, e) for s, e, _ in parse_response(answer)] == [(204, 'W/"a"'), (204, 'W/"b"')]
    failed = ("--b\r\n\r\nHTTP/1.1 412 Precondition Failed\r\nContent-Type: application/json"
              "\r\n\r\n{\"odata.error\":{\"code\":\"UpdateConditionNotSatisfied\"}}\r\n--b--")
    status, etag, text = parse_response(failed)[0]
    assert (status, etag) == (412, None)
    assert "UpdateConditionNotSatisfied" in text
