import azure.functions as func

app = func.FunctionApp(

@app.route(route="x")
def x(req):
    return "x"
