import azure.functions as func

bp = func.Blueprint()


@bp.route(route="from-blueprint", methods=["GET"])
def from_blueprint(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("blueprint")
