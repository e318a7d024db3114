import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="ok")
def ok(req: func.HttpRequest) -> str:
    return "still served"


@app.route(route="enqueue")
@app.queue_output(arg_name="msg", queue_name="outq", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, msg: func.Out[str]) -> str:
    msg.set("hello")
    return "queued"
