"""runtime/worker/pool.py with real worker processes on tests/apps/http_basic (kept to a
few tests: the pool is covered in depth by the integration tests)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.errors import FunctionInvocationError, IndexingError
from runtime.worker.pool import WorkerPool, default_worker_count
from runtime.worker.protocol import HttpRequestData, HttpResponseData

APP = Path(__file__).resolve().parents[1] / "apps" / "http_basic"


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[WorkerPool]:
    pool = WorkerPool(APP, dict(os.environ), count=1)
    await pool.start()
    try:
        yield pool
    finally:
        await pool.stop()


async def test_a_pool_indexes_the_app_and_invokes_an_http_function(pool: WorkerPool) -> None:
    assert {"echo", "boom", "from_blueprint"} <= {f.name for f in pool.index.functions}
    assert len(pool.pids) == 1 and pool.pids[0] != os.getpid()
    request = HttpRequestData(
        method="POST", url="http://localhost:7071/api/echo/a/b?x=1",
        headers={"content-type": "text/plain", "x-one": "1"}, params={"x": "1"},
        route_params={"rest": "a/b"}, body=b"hello worker")
    result = await pool.invoke("echo", {"req": request.to_json()}, timeout=10)
    answer = HttpResponseData.from_json(result)
    assert answer.status == 200
    # The library adds a charset only to text/* mimetypes (HttpResponseConverter.encode).
    assert ("Content-Type", "application/json") in answer.headers
    echoed = json.loads(answer.body)
    assert echoed["method"] == "POST"
    assert echoed["url"] == "http://localhost:7071/api/echo/a/b?x=1"
    assert echoed["params"] == {"x": "1"}
    assert echoed["route_params"] == {"rest": "a/b"}
    assert echoed["headers"]["x-one"] == "1"
    assert echoed["body_text"] == "hello worker"


async def test_a_function_that_raises_gives_function_invocation_error(pool: WorkerPool) -> None:
    request = HttpRequestData(method="GET", url="http://localhost:7071/api/boom", headers={},
                              params={}, route_params={})
    with pytest.raises(FunctionInvocationError) as caught:
        await pool.invoke("boom", {"req": request.to_json()}, timeout=10)
    error = caught.value
    assert (error.function_name, error.exc_type) == ("boom", "ValueError")
    assert error.exc_message == "the boom function always fails"
    assert str(error) == "ValueError: the boom function always fails"
    assert "function_app.py" in error.traceback_text
    # the worker survives a function that raised
    echo = HttpRequestData(method="GET", url="http://localhost:7071/api/echo/x", headers={},
                           params={}, route_params={"rest": "x"})
    result = await pool.invoke("echo", {"req": echo.to_json()}, timeout=10)
    assert HttpResponseData.from_json(result).status == 200


def test_default_worker_count_reads_functions_worker_process_count(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUNCTIONS_WORKER_PROCESS_COUNT", raising=False)
    assert default_worker_count({"FUNCTIONS_WORKER_PROCESS_COUNT": "3"}) == 3
    assert default_worker_count({"FUNCTIONS_WORKER_PROCESS_COUNT": "0"}) == 1
    assert default_worker_count({"FUNCTIONS_WORKER_PROCESS_COUNT": "many"}) == 1
    assert default_worker_count({}) == 1
    monkeypatch.setenv("FUNCTIONS_WORKER_PROCESS_COUNT", "4")
    assert default_worker_count({}) == 4
    assert default_worker_count({"FUNCTIONS_WORKER_PROCESS_COUNT": "2"}) == 2


COUNTING_APP = '''
import azure.functions as func
from helpers import VERSION

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
CALLS = []


@app.route(route="count")
def count(req: func.HttpRequest) -> func.HttpResponse:
    CALLS.append(1)
    return func.HttpResponse(f"{VERSION}:{len(CALLS)}")
'''


async def test_reindex_imports_the_app_afresh_in_the_same_process(tmp_path: Path) -> None:
    (tmp_path / "function_app.py").write_text(COUNTING_APP)
    (tmp_path / "helpers.py").write_text("VERSION = 'one'\n")
    pool = WorkerPool(tmp_path, dict(os.environ), count=1)
    await pool.start()
    request = HttpRequestData(method="GET", url="http://localhost/api/count", headers={},
                              params={}, route_params={})

    async def count() -> bytes:
        return HttpResponseData.from_json(
            await pool.invoke("count", {"req": request.to_json()}, timeout=10)).body
    try:
        assert [await count(), await count()] == [b"one:1", b"one:2"]
        pid = pool.pids
        (tmp_path / "helpers.py").write_text("VERSION = 'two'\n")
        index = await pool.reindex()
        assert [f.name for f in index.functions] == ["count"]
        # Module state starts over, imported modules of the app are read again, and the
        # process is the same one.
        assert await count() == b"two:1"
        assert pool.pids == pid
        (tmp_path / "function_app.py").write_text(COUNTING_APP + "\nraise KeyError('x')\n")
        with pytest.raises(IndexingError, match="Error importing function_app.py: KeyError"):
            await pool.reindex()
        (tmp_path / "function_app.py").write_text(COUNTING_APP)
        await pool.reindex()
        assert await count() == b"two:1"
    finally:
        await pool.stop()
