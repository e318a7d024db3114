"""The app the reload tests copy and edit while the host runs."""

import asyncio
import os
import time

import azure.functions as func
from lib.greeting import greeting

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

VERSION = "v1"


@app.route(route="version", methods=["GET", "POST"])
def version(req: func.HttpRequest) -> str:
    return VERSION


@app.route(route="hello")
def hello(req: func.HttpRequest) -> str:
    return greeting("world")


@app.route(route="pid")
def pid(req: func.HttpRequest) -> str:
    return str(os.getpid())


@app.route(route="setting")
def setting(req: func.HttpRequest) -> str:
    return os.environ.get("RELOAD_SETTING", "unset")


@app.route(route="sleep/{seconds:int}")
def sleep(req: func.HttpRequest) -> str:
    time.sleep(int(req.route_params["seconds"]))
    return f"slept on {VERSION}"


@app.route(route="block")
async def block(req: func.HttpRequest) -> str:
    # Blocks the worker's event loop, so the worker cannot even read a shutdown request.
    time.sleep(3600)
    await asyncio.sleep(0)
    return "never"
