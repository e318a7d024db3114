import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="admin/thing")
def reserved(req: func.HttpRequest) -> str:
    return "never"


@app.route(route="same", methods=["GET"])
def first(req: func.HttpRequest) -> str:
    return "first"


@app.route(route="Same", methods=["GET", "POST"])
def second(req: func.HttpRequest) -> str:
    return "second"


@app.route(route="fine")
def fine(req: func.HttpRequest) -> str:
    return "fine"
