from __future__ import annotations

import pytest

from runtime.errors import ConfigError
from runtime.storage.connection import DEV_ACCOUNT_KEY, parse_connection_string

REAL_KEY = "c2VjcmV0LWtleS1mb3ItdGVzdHM="  # base64, ends in '=' like real keys


def test_development_storage_uses_the_well_known_account() -> None:
    endpoints = parse_connection_string("UseDevelopmentStorage=true")

    assert endpoints.account_name == "devstoreaccount1"
    assert endpoints.account_key == DEV_ACCOUNT_KEY
    assert endpoints.blob_url == "http://127.0.0.1:10000/devstoreaccount1"
    assert endpoints.queue_url == "http://127.0.0.1:10001/devstoreaccount1"
    assert endpoints.table_url == "http://127.0.0.1:10002/devstoreaccount1"
    assert endpoints.is_local_emulator


def test_development_storage_is_case_insensitive_and_tolerates_spaces() -> None:
    endpoints = parse_connection_string(" usedevelopmentstorage = TRUE ; ")

    assert endpoints.table_url == "http://127.0.0.1:10002/devstoreaccount1"


def test_development_storage_proxy_uri_replaces_the_host() -> None:
    endpoints = parse_connection_string(
        "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://storage.test")

    assert endpoints.blob_url == "http://storage.test:10000/devstoreaccount1"
    assert endpoints.table_url == "http://storage.test:10002/devstoreaccount1"
    assert not endpoints.is_local_emulator


def test_account_connection_string_builds_endpoints_from_protocol_and_suffix() -> None:
    endpoints = parse_connection_string(
        f"DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey={REAL_KEY};"
        "EndpointSuffix=core.chinacloudapi.cn")

    assert endpoints.account_name == "myacct"
    assert endpoints.account_key == REAL_KEY
    assert endpoints.blob_url == "https://myacct.blob.core.chinacloudapi.cn"
    assert endpoints.queue_url == "https://myacct.queue.core.chinacloudapi.cn"
    assert endpoints.table_url == "https://myacct.table.core.chinacloudapi.cn"
    assert not endpoints.is_local_emulator


def test_account_defaults_to_https_and_the_public_cloud() -> None:
    endpoints = parse_connection_string(f"AccountName=myacct;AccountKey={REAL_KEY}")

    assert endpoints.table_url == "https://myacct.table.core.windows.net"


def test_explicit_endpoints_win_and_local_hosts_mean_emulator() -> None:
    endpoints = parse_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={DEV_ACCOUNT_KEY};"
        "BlobEndpoint=http://127.0.0.1:20000/devstoreaccount1/;"
        "QueueEndpoint=http://localhost:20001/devstoreaccount1;"
        "TableEndpoint=http://[::1]:20002/devstoreaccount1;")

    assert endpoints.blob_url == "http://127.0.0.1:20000/devstoreaccount1"
    assert endpoints.address("queue") == ("localhost", 20001)
    assert endpoints.address("table") == ("::1", 20002)
    assert endpoints.is_local_emulator


def test_one_remote_endpoint_means_not_an_emulator() -> None:
    endpoints = parse_connection_string(
        f"AccountName=devstoreaccount1;AccountKey={DEV_ACCOUNT_KEY};"
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
        "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1")

    assert endpoints.queue_url == "https://devstoreaccount1.queue.core.windows.net"
    assert not endpoints.is_local_emulator


def test_address_uses_the_scheme_default_port() -> None:
    endpoints = parse_connection_string(f"AccountName=myacct;AccountKey={REAL_KEY}")

    assert endpoints.address("blob") == ("myacct.blob.core.windows.net", 443)


def test_connection_string_round_trips_with_explicit_endpoints() -> None:
    original = parse_connection_string("UseDevelopmentStorage=true")

    text = original.connection_string

    assert "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;" in text
    assert "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;" in text
    assert "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;" in text
    assert parse_connection_string(text) == original


def test_repr_hides_the_key() -> None:
    endpoints = parse_connection_string(f"AccountName=myacct;AccountKey={REAL_KEY}")

    assert REAL_KEY not in repr(endpoints)


@pytest.mark.parametrize(("conn", "message"), [
    ("", "AzureWebJobsStorage: the connection string is empty"),
    (" ; ", "AzureWebJobsStorage: the connection string is empty"),
    (f"AccountKey={REAL_KEY}", "AzureWebJobsStorage: the connection string has no AccountName"),
    ("AccountName=myacct", "AzureWebJobsStorage: the connection string has no AccountKey "
                           "(only account-key connection strings are supported)"),
    (f"AccountName=a;AccountKey={REAL_KEY};DefaultEndpointsProtocol=ftp",
     "AzureWebJobsStorage: DefaultEndpointsProtocol must be http or https, not 'ftp'"),
    (f"AccountName=a;AccountKey={REAL_KEY};TableEndpoint=localhost:10002",
     "AzureWebJobsStorage: TableEndpoint must be an http(s) URL with a host, "
     "not 'localhost:10002'"),
    (f"AccountName=a;AccountKey={REAL_KEY};secretish",
     "AzureWebJobsStorage: part 3 of the connection string is not Name=Value"),
])
def test_malformed_strings_say_what_is_wrong(conn: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_connection_string(conn)

    assert str(caught.value) == message


def test_errors_name_the_setting_they_came_from() -> None:
    with pytest.raises(ConfigError, match=r"^MyStorage: the connection string has no AccountName"):
        parse_connection_string(f"AccountKey={REAL_KEY}", setting="MyStorage")
