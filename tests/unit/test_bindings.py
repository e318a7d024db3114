"""runtime/bindings.py: a function's inputs for one invocation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.bindings import Bindings, DurableBinding
from runtime.durable.urls import WEBHOOK_PATH
from runtime.errors import BindingError
from runtime.functions import FunctionSpec

ORIGIN = "http://localhost:7071"
REQUEST = {"method": "GET", "url": f"{ORIGIN}/api/start", "headers": {}, "params": {},
           "route_params": {}, "body_b64": ""}


def spec(name: str, *bindings: dict[str, Any]) -> FunctionSpec:
    return FunctionSpec.from_description({"name": name, "bindings": list(bindings)})


HTTP = {"type": "httpTrigger", "name": "req", "direction": "in", "authLevel": "ANONYMOUS"}
RETURN = {"type": "http", "name": "$return", "direction": "out"}
CLIENT = {"type": "durableClient", "name": "client", "direction": "in"}


def durable_bindings(key: str | None = None,
                     rpc: str = "http://127.0.0.1:50123/durabletask") -> Bindings:
    bindings = Bindings()
    bindings.durable = DurableBinding("MyTaskHub", lambda: rpc, key)
    return bindings


def test_the_trigger_payload_goes_under_the_trigger_binding_name() -> None:
    inputs = Bindings().inputs(spec("hello", HTTP, RETURN), REQUEST, origin=ORIGIN)
    assert inputs == {"req": REQUEST}


def test_a_trigger_with_another_name() -> None:
    activity = spec("say", {"type": "activityTrigger", "name": "city", "direction": "in"})
    assert Bindings().inputs(activity, '"Tokyo"', origin=ORIGIN) == {"city": '"Tokyo"'}


def test_a_durable_client_input_gets_the_binding_json() -> None:
    inputs = durable_bindings().inputs(spec("starter", HTTP, CLIENT, RETURN), REQUEST,
                                       origin=ORIGIN)
    assert set(inputs) == {"req", "client"}
    assert inputs["req"] == REQUEST
    assert isinstance(inputs["client"], str)
    binding = json.loads(inputs["client"])
    assert binding["taskHubName"] == "MyTaskHub"
    assert binding["rpcBaseUrl"] == "http://127.0.0.1:50123/durabletask/"
    assert binding["baseUrl"] == f"{ORIGIN}{WEBHOOK_PATH}"
    assert binding["requiredQueryStringParameters"] == ""
    urls = binding["managementUrls"]
    instance = f"{ORIGIN}{WEBHOOK_PATH}/instances/INSTANCEID"
    query = "taskHub=MyTaskHub&connection=Storage"
    assert urls["id"] == "INSTANCEID"
    assert urls["statusQueryGetUri"] == f"{instance}?{query}"
    assert urls["sendEventPostUri"] == f"{instance}/raiseEvent/{{eventName}}?{query}"
    assert urls["terminatePostUri"] == f"{instance}/terminate?reason={{text}}&{query}"
    assert urls["purgeHistoryDeleteUri"] == f"{instance}?{query}"
    assert binding["creationUrls"]["createNewInstancePostUri"] == \
        f"{ORIGIN}{WEBHOOK_PATH}/orchestrators/{{functionName}}[/{{instanceId}}]"


def test_the_rpc_url_keeps_a_single_trailing_slash() -> None:
    bindings = durable_bindings(rpc="http://127.0.0.1:9/durabletask/")
    binding = json.loads(bindings.inputs(spec("s", HTTP, CLIENT), REQUEST,
                                         origin=ORIGIN)["client"])
    assert binding["rpcBaseUrl"] == "http://127.0.0.1:9/durabletask/"


def test_the_rpc_url_is_read_at_each_invocation() -> None:
    urls = iter(["http://127.0.0.1:1/durabletask", "http://127.0.0.1:2/durabletask"])
    bindings = Bindings()
    bindings.durable = DurableBinding("Hub", lambda: next(urls))
    first, second = (json.loads(bindings.inputs(spec("s", HTTP, CLIENT), REQUEST,
                                                origin=ORIGIN)["client"]) for _ in range(2))
    assert first["rpcBaseUrl"] == "http://127.0.0.1:1/durabletask/"
    assert second["rpcBaseUrl"] == "http://127.0.0.1:2/durabletask/"


def test_management_urls_follow_the_callers_origin_and_carry_the_key() -> None:
    bindings = durable_bindings(key="k3y")
    binding = json.loads(bindings.inputs(spec("s", HTTP, CLIENT), REQUEST,
                                         origin="https://myhost.example:8443/")["client"])
    assert binding["managementUrls"]["statusQueryGetUri"] == (
        "https://myhost.example:8443/runtime/webhooks/durabletask/instances/INSTANCEID"
        "?taskHub=MyTaskHub&connection=Storage&code=k3y")
    assert binding["requiredQueryStringParameters"] == "code=k3y"
    assert binding["creationUrls"]["createNewInstancePostUri"].endswith("?code=k3y")


def test_every_durable_client_binding_is_filled_whatever_the_trigger() -> None:
    function = spec("fan", {"type": "activityTrigger", "name": "item"},
                    {**CLIENT, "name": "first"},
                    {**CLIENT, "name": "second", "type": "DurableClient"})
    inputs = durable_bindings().inputs(function, '"x"', origin=ORIGIN)
    assert set(inputs) == {"item", "first", "second"}
    assert inputs["first"] == inputs["second"]


def test_without_durable_a_durable_client_input_is_a_binding_error() -> None:
    with pytest.raises(BindingError) as caught:
        Bindings().inputs(spec("start_order", HTTP, CLIENT, RETURN), REQUEST, origin=ORIGIN)
    assert str(caught.value) == (
        "The function 'start_order' has a durableClient input, but Durable Functions are "
        "not available.")


def test_a_function_without_a_trigger_name_gets_req() -> None:
    function = spec("odd", {"type": "httpTrigger", "direction": "in"})
    assert Bindings().inputs(function, REQUEST, origin=ORIGIN) == {"req": REQUEST}
