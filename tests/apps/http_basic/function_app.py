import asyncio
import json
import os
import time

import azure.functions as func
from blueprint import bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(bp)


@app.route(route="echo/{*rest}", methods=["GET", "POST", "PUT", "DELETE"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    body = req.get_body()
    payload = {
        "method": req.method,
        "url": req.url,
        "headers": dict(req.headers),
        "params": dict(req.params),
        "route_params": dict(req.route_params),
        "body_length": len(body),
        "body_text": body.decode("utf-8", "replace") if len(body) < 1000 else None,
    }
    return func.HttpResponse(json.dumps(payload), mimetype="application/json")


@app.route(route="products/{category:alpha}/{id:int?}", methods=["GET"])
def products(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(dict(req.route_params)), mimetype="application/json")


@app.route(route="items/{id:int:min(1)}", methods=["GET"])
def item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"item {req.route_params['id']}")


@app.route(route="greet/{name=stranger}")
def greet(req: func.HttpRequest) -> str:
    return f"Hi {req.route_params['name']}"


@app.route(route="binary", methods=["POST"])
def binary(req: func.HttpRequest) -> func.HttpResponse:
    data = req.get_body()
    return func.HttpResponse(bytes(reversed(data)), mimetype="application/octet-stream",
                             headers={"X-Length": str(len(data))})


@app.route(route="status/{code:int}")
def status(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("custom", status_code=int(req.route_params["code"]),
                             headers={"X-Custom": "yes"})


@app.route(route="boom")
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise ValueError("the boom function always fails")


@app.route(route="slow")
def slow(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(3600)
    return func.HttpResponse("never")


@app.route(route="exit")
def hard_exit(req: func.HttpRequest) -> func.HttpResponse:
    os._exit(3)


@app.route(route="pid")
def pid(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(str(os.getpid()))


@app.route(route="ctx")
async def ctx(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    await asyncio.sleep(0)
    return func.HttpResponse(json.dumps({"function": context.function_name,
                                         "invocation_id": context.invocation_id}))


@app.route(route="env")
def env(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({k: os.environ.get(k) for k in
                                         ("FROM_SETTINGS", "OVERRIDDEN",
                                          "AZURE_FUNCTIONS_ENVIRONMENT")}))


@app.route(route="secret", auth_level=func.AuthLevel.FUNCTION)
def secret(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("the secret body")


@app.route(route="ops/admin-level", auth_level=func.AuthLevel.ADMIN)
def adminonly(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin body")


@app.route(route="print")
def printer(req: func.HttpRequest) -> func.HttpResponse:
    print("printed by user code")
    return func.HttpResponse("ok")
