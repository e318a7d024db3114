"""Small HTTP functions for the compatibility table (docs/compatibility.md): each shows
one behaviour of the host's request and response conversion or of its routing."""

import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


# -- the request as the function sees it ----------------------------------------------

@app.route(route="echo/{first?}/{*rest}")  # no methods: every method reaches it
def echo(req: func.HttpRequest) -> func.HttpResponse:
    body = req.get_body()
    try:
        parsed, json_error = req.get_json(), None
    except ValueError as error:
        parsed, json_error = None, str(error)
    return func.HttpResponse(json.dumps({
        "method": req.method,
        "url": req.url,
        "headers": dict(req.headers),
        "params": dict(req.params),
        "route_params": dict(req.route_params),
        "body": body.decode("utf-8", "replace"),
        "body_type": type(body).__name__,
        "json": parsed,
        "json_error": json_error,
        "form": dict(req.form),
    }), mimetype="application/json")


@app.route(route="typed/{id:int}/{name?}", methods=["GET"])
def typed(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(dict(req.route_params)), mimetype="application/json")


# -- what the function returns, as the client gets it -----------------------------------

COOKIES = {
    "two": ["first=1", "second=2"],
    "attributes": ["foo3=42; Domain=example.com; Expires=Thu, 12-Jan-2017 13:55:08 GMT; "
                   "Path=/; Max-Age=10000000; Secure; HttpOnly"],
    "defaults": ["foo=bar"],
    "escaped": ['v="a b,c"; SameSite=Lax'],
    "two-in-one": ["a=1; b=2"],
    "empty": [""],
    "unparseable": ["foo3=42; SecureFalse; HttpOnly"],
    "bad-expires": ["foo=bar; Domain=123; Expires=Dummy"],
}


@app.route(route="cookies/{case}", methods=["GET"])
def cookies(req: func.HttpRequest) -> func.HttpResponse:
    response = func.HttpResponse("ok")
    for value in COOKIES[req.route_params["case"]]:
        response.headers.add("Set-Cookie", value)
    return response


def _answer(case: str):
    if case == "plain":
        return func.HttpResponse("hi")
    if case == "json-mimetype":
        return func.HttpResponse('{"a":1}', mimetype="application/json")
    if case == "html-mimetype":
        return func.HttpResponse("<p>", mimetype="text/html")
    if case == "header-content-type":
        return func.HttpResponse("<x/>", headers={"Content-Type": "application/xml"},
                                 mimetype="application/json")
    if case == "same-name":
        response = func.HttpResponse("x")
        response.headers.add("X-Twice", "1")
        response.headers.add("X-Twice", "2")
        return response
    if case == "case-variants":
        return func.HttpResponse("x", headers={"X-Case": "first", "x-case": "second"})
    if case == "status":
        return func.HttpResponse("made", status_code=201, headers={"Location": "/api/x"})
    if case == "no-content":
        return func.HttpResponse(status_code=204)
    if case == "binary":
        return func.HttpResponse(b"\x00\xff", mimetype="application/octet-stream")
    if case == "str":
        return "plain text"
    if case == "str-json-object":
        return '{"a": [1, 2], "b": {"c": null}}'
    if case == "str-json-true":
        return "true"
    if case == "str-json-string":
        return '"quoted"'
    if case == "str-response-object":
        return json.dumps({"body": "from a str", "statusCode": 202,
                           "headers": {"X-From": "str"}})
    if case == "none":
        return None
    if case == "bytes":
        return b"raw"
    if case == "dict":
        return {"a": 1}
    raise ValueError("the function failed")


@app.route(route="answer/{case}", methods=["GET"])
def answer(req: func.HttpRequest):
    return _answer(req.route_params["case"])


@app.route(route="head-ok", methods=["GET", "HEAD"])
def head_ok(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("a body", headers={"X-Method": req.method})


# -- routing ------------------------------------------------------------------------------

@app.route(route="products/{id}")
def Details(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"Details {req.route_params['id']}")


@app.route(route="products/list")
def List(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("List")


@app.route(route="catalog", methods=["GET", "POST"])
def catalog(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"catalog {req.method}")


@app.route(route="never", methods=[])
def never(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("unreachable")


@app.function_name("DefaultRoute")
@app.route()
def default_route(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("default route")


# Two functions on one route: registered zeta first, but the host validates in
# function-name order, so alpha_clash is served and zeta_clash is skipped.
@app.route(route="clash", methods=["GET"])
def zeta_clash(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("zeta")


@app.route(route="clash", methods=["GET"])
def alpha_clash(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("alpha")
