"""The command line as a whole: help for every command, placeholders, `version`, and fast startup."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import typer

from sbdk.cli.app import app

COMMANDS = (
    "init",
    "dev",
    "start",
    "webhooks",
    "version",
    "history",
    "query",
    "doctor",
    "backup",
    "restore",
    "clean",
    "notify",
    "ui",
    "mcp",
    "sources",
)
# Importing any of these costs tens of milliseconds to a second; `--help` and `version` need none.
HEAVY = {
    "dlt",
    "dbt",
    "duckdb",
    "faker",
    "fastapi",
    "uvicorn",
    "watchdog",
    "pyarrow",
    "numpy",
    "dynaconf",
    "pydantic",
    "apprise",
}


def registered() -> dict[str, object]:
    return typer.main.get_command(app).commands


def test_the_expected_commands_are_registered() -> None:
    assert set(registered()) == set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(cli, name: str) -> None:
    command = registered()[name]
    docstring = inspect.getdoc(command.callback)
    assert docstring, f"`sbdk {name}` has no docstring"

    result = cli(name, "--help")

    assert result.exit_code == 0
    assert f"Usage: sbdk {name}" in result.output
    # The summary line, up to where Rich may wrap it at the terminal's width.
    assert " ".join(docstring.splitlines()[0].split()[:6]) in " ".join(result.output.split())


def test_top_level_help_lists_every_command(cli) -> None:
    result = cli("--help")

    assert result.exit_code == 0
    for name in COMMANDS:
        assert f" {name} " in result.output, name


def test_no_arguments_shows_help(cli) -> None:
    result = cli()

    assert "Usage: sbdk [OPTIONS] COMMAND [ARGS]..." in result.output


def test_unknown_command_is_a_usage_error(cli) -> None:
    result = cli("deploy")

    assert result.exit_code == 2
    assert "No such command 'deploy'" in result.output


def test_version_json_names_the_whole_stack(cli) -> None:
    result = cli("version", "--json")

    assert result.exit_code == 0
    info = json.loads(result.output)
    for key in ("sbdk", "python", "platform", "dlt", "dbt-core", "dbt-duckdb", "duckdb", "faker", "fastapi"):
        assert info.get(key), key
    assert info["sbdk"] == "0.1.0"
    assert info["python"] == "{}.{}.{}".format(*sys.version_info[:3])


def test_version_table_shows_the_same_versions(cli) -> None:
    info = json.loads(cli("version", "--json").output)

    result = cli("version")

    assert result.exit_code == 0
    assert info["dbt-core"] in result.output
    assert info["sbdk"] in result.output


def imported_after(tmp_path: Path, *argvs: list[str]) -> list[str]:
    """sys.modules of a fresh interpreter after running `sbdk` with each argv in turn."""
    out = tmp_path / "modules.json"
    code = textwrap.dedent(
        f"""
        import json, sys
        from sbdk.cli.app import main

        for argv in {[["sbdk", *argv] for argv in argvs]!r}:
            sys.argv = argv
            try:
                main()
            except SystemExit:
                pass
        with open({str(out)!r}, "w") as out:
            json.dump(sorted(sys.modules), out)
        """
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True, timeout=60)
    return json.loads(out.read_text())


def heavy(modules: list[str]) -> list[str]:
    top_level = {name.split(".")[0] for name in modules}
    return sorted(name for name in top_level if name in HEAVY or name.startswith("dbt"))


def test_help_and_version_import_nothing_heavy(tmp_path: Path) -> None:
    modules = imported_after(tmp_path, ["--help"], ["version"])

    # The listing is real: the CLI was imported and both commands ran.
    assert {"sbdk.cli.app", "sbdk.cli.version", "typer", "rich.table"} <= set(modules)
    # Typer itself imports pydantic to convert option values once a command runs; not sbdk's doing.
    assert [name for name in heavy(modules) if name != "pydantic"] == []


def test_help_imports_nothing_heavy_not_even_pydantic(tmp_path: Path) -> None:
    modules = imported_after(tmp_path, ["--help"])

    assert "sbdk.cli.app" in modules
    assert heavy(modules) == []


def test_python_dash_m_sbdk(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sbdk", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert "Usage: sbdk [OPTIONS] COMMAND [ARGS]..." in result.stdout
    assert result.stderr == ""


EXIT_SCRIPT = """
import atexit, os, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
{heavy}
from sbdk.run.process import exit_now

class Teardown:
    def __del__(self):
        os.write(2, b"teardown")

marker = Teardown()  # freed only by the interpreter's teardown
pool = ThreadPoolExecutor(1)  # idle, still referenced: stopped by Python's shutdown, not by us
pool.submit(time.sleep, 0.1)
atexit.register(lambda: print("atexit ran", end=""))
sys.stdout.write("buffered, ")
threading.Thread(target=lambda: (time.sleep(0.5), sys.stdout.write("thread done, "))).start()
exit_now({code!r})
print("never")
"""


@pytest.mark.parametrize(
    ("code", "returncode", "stderr"),
    [(3, 3, ""), (None, 0, ""), ("cannot go on", 1, "cannot go on\n"), (256 + 4, 4, "")],
)
def test_fast_exit_after_dlt_runs_atexit_flushes_and_keeps_the_code(
    tmp_path: Path, code: object, returncode: int, stderr: str
) -> None:
    # Once dlt or dbt is loaded sbdk skips the interpreter's slow teardown (the marker's __del__
    # never runs); what a normal exit guarantees must still hold: thread pools stop, threads
    # finish, atexit handlers run, buffered output is written, the exit code is kept.
    script = EXIT_SCRIPT.format(heavy="import dlt", code=code)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert result.returncode == returncode
    assert result.stdout == "buffered, thread done, atexit ran"
    assert result.stderr == stderr


def test_exit_without_dlt_or_dbt_is_a_normal_exit(tmp_path: Path) -> None:
    script = EXIT_SCRIPT.format(heavy="", code=3)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert result.returncode == 3
    assert result.stdout == "buffered, thread done, atexit ran"
    assert result.stderr == "teardown"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["dev", "-q"], ["-q", "dev"]),
        (["dev", "--log-format", "json", "--select", "x"], ["--log-format", "json", "dev", "--select", "x"]),
        (["dev", "--log-format=json"], ["--log-format=json", "dev"]),
        (["-v", "dev", "-c", "a.json"], ["-v", "-c", "a.json", "dev"]),
        (["-c", "x.json", "query", "select 1", "--quiet"], ["-c", "x.json", "--quiet", "query", "select 1"]),
        (["query", "--", "-q"], ["query", "--", "-q"]),
        (["dev", "-c"], ["dev", "-c"]),
        (["--help"], ["--help"]),
    ],
)
def test_global_options_after_the_command_are_moved_before_it(args: list[str], expected: list[str]) -> None:
    from sbdk.cli.app import hoist_global_options

    assert hoist_global_options(args) == expected


def test_global_options_work_after_the_command(project: Path, cli) -> None:
    quiet = cli("dev", "--pipelines-only", "-q", "--log-format", "json", cwd=project)
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stdout == ""  # --quiet: errors only
    (log,) = (project / "logs").glob("*.log")
    assert log.read_text().startswith('{"ts": ')  # --log-format json reached the run


def test_version_option_prints_the_version(cli) -> None:
    from importlib.metadata import version

    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"sbdk {version('sbdk')}"


@pytest.mark.parametrize("name", ["dev", "init", "start", "query"])
def test_help_shows_no_type_for_flags_and_plain_defaults(cli, name: str) -> None:
    result = cli(name, "--help")
    assert "<bool>" not in result.output
    assert "[default: (" not in result.output
