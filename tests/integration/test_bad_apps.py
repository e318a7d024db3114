"""Apps that cannot be served, or only in part: clear errors, never a silent hang."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.host import APPS, free_port, run_cli, start_host


def _start_fails(script_root: Path) -> str:
    result = run_cli("start", "--script-root", str(script_root), "--port", str(free_port()),
                     "--no-reload", "--no-azurite", timeout=60)
    assert result.returncode != 0
    return result.stdout + result.stderr


def test_missing_function_app_py(tmp_path: Path) -> None:
    output = _start_fails(tmp_path)
    assert "function_app.py was not found" in output


def test_no_app_object() -> None:
    output = _start_fails(APPS / "no_app")
    assert "Could not find top level function app instances in function_app.py." in output


def test_two_app_objects() -> None:
    output = _start_fails(APPS / "two_apps")
    assert "More than one FunctionApp or other top level function app instances" in output


def test_syntax_error_shows_file_and_line(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(APPS / "broken_syntax", app)
    output = _start_fails(app)
    assert "SyntaxError" in output
    assert "function_app.py" in output
    assert "line 3" in output or "line 5" in output


def test_import_error_shows_traceback() -> None:
    output = _start_fails(APPS / "import_error")
    assert "ModuleNotFoundError: No module named 'module_that_does_not_exist'" in output
    assert "Traceback" in output


@pytest.mark.parametrize("content", ['{"version": "2.0",}', '{"version": "1.0"}',
                                     '{"version": "2.0", "functionTimeout": 5}'])
def test_bad_host_json_names_the_file(tmp_path: Path, content: str) -> None:
    app = tmp_path / "app"
    shutil.copytree(APPS / "unsupported_binding", app)
    (app / "host.json").write_text(content)
    output = _start_fails(app)
    assert "host.json" in output
    assert "line 1" in output


def test_bad_local_settings_names_file_line_and_key(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(APPS / "unsupported_binding", app)
    (app / "local.settings.json").write_text(
        '{\n  "IsEncrypted": false,\n  "Host": {\n    "LocalHttpPort": "lots"\n  }\n}\n')
    output = _start_fails(app)
    assert "local.settings.json" in output
    assert "line 4" in output
    assert "LocalHttpPort" in output


def test_unsupported_binding_skips_only_that_function() -> None:
    host = start_host(APPS / "unsupported_binding")
    try:
        assert host.get("/api/ok").text == "still served"
        assert host.get("/api/enqueue").status == 404
        host.wait_for_log("Function 'enqueue': The binding type(s) 'queue' are not supported")
    finally:
        host.stop()


def test_reserved_and_conflicting_routes_are_rejected() -> None:
    host = start_host(APPS / "bad_routes")
    try:
        host.wait_for_log("The function 'reserved' is skipped: The specified route conflicts "
                          "with one or more built in routes.")
        host.wait_for_log("The function 'second' is skipped: The route specified conflicts "
                          "with the route defined by function 'first'.")
        assert host.get("/api/same").text == "first"
        assert host.get("/api/fine").text == "fine"
    finally:
        host.stop()
