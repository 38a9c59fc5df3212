"""dbt, in-process through dbtRunner, with results turned into a DbtReport.

Never a `dbt` found on PATH: the dbt imported here is the one installed next to sbdk.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sbdk.errors import DbtError
from sbdk.run.process import collector_paused
from sbdk.run.reporters import NULL_REPORTER, Reporter
from sbdk.run.results import DbtReport, NodeResult
from sbdk.settings import Settings
from sbdk.testing import pause_point

_PACKAGE_FILES = ("packages.yml", "dependencies.yml")


def release_duckdb() -> None:
    """Close the DuckDB file dbt-duckdb keeps open after invoke() returns.

    dbt-duckdb 1.11 holds one shared connection for the life of the process (its keep_open
    default), even after a failed build, so no other process - and no differently configured
    connection in this one - can open the file. dbt's cleanup_connections()/reset_adapters() do not
    release it; closing its shared environment does (NOTES.md). `_ENV` and `_LOCK` are private:
    tests/test_dbt.py checks another process can open the file after a build.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb not imported yet: nothing is open
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None:
            env.close()


def _configure_dbt(settings: Settings) -> None:
    from sbdk.dbt.profiles import PASSWORD_ENV

    # The profile reads the database path from here, so the rendered profile stays identical from
    # run to run and dbt keeps its partial-parse cache.
    os.environ["DBT_DUCKDB_PATH"] = str(settings.paths.duckdb_path)
    if settings.active_target.password:
        os.environ[PASSWORD_ENV] = settings.active_target.password
    else:
        os.environ.pop(PASSWORD_ENV, None)
    # Never phone home, never check PyPI for a newer version (there may be no network).
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    os.environ["DBT_VERSION_CHECK"] = "false"


def check_project(settings: Settings) -> None:
    from sbdk.dbt.profiles import dbt_profiles_dir

    project = settings.paths.dbt_project_dir
    if not (project / "dbt_project.yml").is_file():
        raise DbtError(
            f"No dbt project at {project} (dbt_project.yml is missing).",
            hint="Fix dbt_path in sbdk_config.json, or run `sbdk init --force .` to restore the template.",
        )
    if not (dbt_profiles_dir(settings) / "profiles.yml").is_file():
        raise DbtError(
            f"No profiles.yml in {dbt_profiles_dir(settings)}.",
            hint="Fix profiles_dir in sbdk_config.json, or run `sbdk init --force .` to restore it.",
        )


class _Progress:
    """dbt event callback: forwards node start/finish to the reporter (called on dbt's threads)."""

    def __init__(self, reporter: Reporter, verbose: bool) -> None:
        self.reporter = reporter
        self.verbose = verbose
        self.lock = threading.Lock()
        self.parsed_at: float | None = None

    def __call__(self, event: Any) -> None:
        # An exception here would fail the dbt node it was raised for: never let one escape.
        try:
            self._handle(event)
        except Exception as exc:
            self.reporter.log(f"progress display error: {exc!r}")

    def _handle(self, event: Any) -> None:
        name = event.info.name
        with self.lock:
            if self.parsed_at is None and name in ("ConcurrencyLine", "NodeStart", "NothingToDo"):
                self.parsed_at = time.perf_counter()
            if name == "NodeStart":
                info = event.data.node_info
                self.reporter.node_started(info.node_name, info.resource_type)
            elif name == "NodeFinished":
                info, result = event.data.node_info, event.data.run_result
                if info.node_name == "user_metrics":
                    pause_point("dbt")
                self.reporter.node_finished(
                    NodeResult(
                        unique_id=info.unique_id,
                        name=info.node_name,
                        resource_type=info.resource_type,
                        status=str(result.status),
                        seconds=float(result.execution_time or 0.0),
                        message=result.message or None,
                        failures=getattr(result, "num_failures", None),
                    )
                )
            elif self.verbose and event.info.level in ("info", "warn", "error"):
                message = event.info.msg
                if message:
                    self.reporter.log(str(message))


def _node_results(result: Any, project_dir: Path) -> tuple[NodeResult, ...]:
    nodes = []
    for item in getattr(result, "results", None) or ():
        node = item.node
        compiled = getattr(node, "compiled_path", None)
        nodes.append(
            NodeResult(
                unique_id=node.unique_id,
                name=node.name,
                resource_type=str(node.resource_type),
                status=str(item.status),
                seconds=float(item.execution_time or 0.0),
                message=item.message or None,
                failures=item.failures,
                compiled_path=(project_dir / compiled) if compiled else None,
            )
        )
    return tuple(nodes)


def _invoke(
    settings: Settings, command: str, select: Sequence[str], fail_fast: bool, verbose: bool, progress: _Progress
) -> Any:
    """dbtRunner's result for `dbt <command>` (after `dbt deps` when packages are declared and missing)."""
    from dbt.cli.main import dbtRunner

    from sbdk.dbt.profiles import dbt_profiles_dir

    project_dir = settings.paths.dbt_project_dir
    common = [
        "--project-dir", str(project_dir),
        "--profiles-dir", str(dbt_profiles_dir(settings)),
    ]  # fmt: skip
    if any((project_dir / name).is_file() for name in _PACKAGE_FILES) and not (project_dir / "dbt_packages").is_dir():
        deps = dbtRunner().invoke(["deps", *common, "--log-level", "none" if not verbose else "info"])
        if not deps.success:
            raise DbtError(
                f"`dbt deps` failed for {project_dir}: {deps.exception or 'see dbt/logs/dbt.log'}",
                hint="Check packages.yml; packages must be installable without network access beyond PyPI.",
            )
    args = [command, *common, "--log-level", "info" if verbose else "none", "--log-level-file", "info"]
    for value in select:
        args += ["--select", value]
    if fail_fast:
        args.append("--fail-fast")
    return dbtRunner(callbacks=[progress]).invoke(args)


def run_dbt(
    settings: Settings,
    command: str = "build",
    *,
    select: Sequence[str] = (),
    fail_fast: bool = False,
    verbose: bool = False,
    reporter: Reporter = NULL_REPORTER,
    require_raw: bool = True,
) -> DbtReport:
    """`dbt <command>` on the project, in this process. Never raises for failing models or tests:
    they are in the report (`success` False); raises DbtError when dbt cannot run at all."""
    from sbdk.dbt.profiles import PASSWORD_ENV
    from sbdk.stores import store_for

    check_project(settings)
    store = store_for(settings)
    if require_raw and command in ("build", "run", "test"):
        present = store.row_counts()
        if not present:
            raise DbtError(
                f"The raw tables do not exist yet in {store.describe()}.",
                hint="Run `sbdk dev` (or `sbdk dev --pipelines-only`) first to generate and load them.",
            )
    _configure_dbt(settings)
    project_dir = settings.paths.dbt_project_dir
    progress = _Progress(reporter, verbose)
    started = time.perf_counter()
    try:
        with collector_paused():
            outcome = _invoke(settings, command, select, fail_fast, verbose, progress)
    finally:
        release_duckdb()
        # A server password lives in the environment only while dbt runs.
        os.environ.pop(PASSWORD_ENV, None)
    seconds = time.perf_counter() - started
    nodes = _node_results(outcome.result, project_dir)
    error = None
    # dbtRunner turns Ctrl-C into a failed result: give it back to the caller as what it is.
    if isinstance(outcome.exception, KeyboardInterrupt):
        raise KeyboardInterrupt
    if outcome.exception is not None:
        error = str(outcome.exception)
        translated = store.translate(outcome.exception)
        if translated:
            raise translated from outcome.exception
    elif not outcome.success and not any(n.failed for n in nodes):
        error = "dbt reported a failure; see dbt/logs/dbt.log"
    for node in nodes:
        if node.message:
            translated = store.translate(Exception(node.message))
            if translated:
                raise translated
    if select and not nodes and error is None:
        raise DbtError(
            f"--select {' '.join(select)} matched no models, tests or seeds.",
            hint="Check the names (`stg_orders`, `stg_orders+`, `tag:daily`, `path:models/marts`).",
        )
    return DbtReport(
        command=command,
        success=bool(outcome.success),
        nodes=nodes,
        seconds=seconds,
        parse_seconds=(progress.parsed_at or time.perf_counter()) - started,
        error=error,
    )
