"""dbt, in-process through dbtRunner, with results turned into a DbtReport.


Never a `dbt` found on PATH: the dbt imported here is the one installed next to sbdk.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sbdk.dbt.profiles import dbt_environment, dbt_profiles_dir
from sbdk.dbt.release import release_duckdb
from sbdk.errors import DbtError
from sbdk.run.context import RunContext
from sbdk.run.process import collector_paused, environment
from sbdk.run.reporters import Reporter
from sbdk.run.results import DbtReport, NodeResult
from sbdk.testing import Faults

if TYPE_CHECKING:
    from sbdk.stores.base import Store

_PACKAGE_FILES = ("packages.yml", "dependencies.yml")
# dbt colours some messages even for a callback: keep the text only.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# The commands a selection and --fail-fast apply to.
_BUILDING = ("build", "run", "test")


class _Progress:
    """dbt event callback: forwards node start/finish to the reporter (called on dbt's threads)."""

    def __init__(self, reporter: Reporter, verbose: bool, faults: Faults) -> None:
        self.reporter = reporter
        self.verbose = verbose
        self.faults = faults
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
            if name == "ConcurrencyLine":
                self.reporter.dbt_nodes(int(event.data.node_count))
            elif name == "NodeStart":
                info = event.data.node_info
                self.reporter.node_started(info.node_name, info.resource_type)
            elif name == "NodeFinished":
                info, result = event.data.node_info, event.data.run_result
                self.faults.reached("dbt", info.node_name)
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
                message = _ANSI.sub("", str(event.info.msg or ""))
                if message.strip():
                    self.reporter.log(message)


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
                relation=getattr(node, "relation_name", None) or None,
                materialized=str(getattr(getattr(node, "config", None), "materialized", "") or "") or None,
            )
        )
    return tuple(nodes)


def _invoke(context: RunContext, command: str, progress: _Progress) -> Any:
    """dbtRunner's result for `dbt <command>` (after `dbt deps` when packages are declared and missing)."""
    from dbt.cli.main import dbtRunner

    settings, plan = context.settings, context.plan
    project_dir = settings.paths.dbt_project_dir
    common = [
        "--project-dir", str(project_dir),
        "--profiles-dir", str(dbt_profiles_dir(settings)),
    ]  # fmt: skip
    # dbt never writes to the console itself: with --verbose its lines reach the reporter through the
    # event callback (one copy, and a closed or full stdout cannot break a dbt worker thread).
    log_level = "none"
    packages = any((project_dir / name).is_file() for name in _PACKAGE_FILES)
    if command != "deps" and packages and not (project_dir / "dbt_packages").is_dir():
        deps = dbtRunner().invoke(["deps", *common, "--log-level", log_level])
        if not deps.success:
            raise DbtError(
                f"`dbt deps` failed for {project_dir}: {deps.exception or 'see dbt/logs/dbt.log'}",
                hint="Check packages.yml; packages must be installable without network access beyond PyPI.",
            )
    args = [command, *common, "--log-level", log_level, "--log-level-file", "info"]
    if command in _BUILDING:
        for value in plan.select:
            args += ["--select", value]
        if plan.fail_fast:
            args.append("--fail-fast")
    return dbtRunner(callbacks=[progress]).invoke(args)


def run_dbt(context: RunContext, command: str = "build") -> DbtReport:
    """`dbt <command>` on the run's project and store, in this process (the plan's selection and
    options apply to build/run/test). Never raises for failing models or tests: they are in the
    report (`success` False); raises DbtError when dbt cannot run at all."""
    progress = _Progress(context.reporter, context.plan.verbose, context.faults)
    started = time.perf_counter()
    try:
        with environment(dbt_environment(context.settings)), collector_paused(context.pause_gc):
            outcome = _invoke(context, command, progress)
    finally:
        release_duckdb()
    seconds = time.perf_counter() - started
    nodes = _node_results(outcome.result, context.settings.paths.dbt_project_dir)
    error = _run_error(context.store, outcome, nodes)
    select = context.plan.select if command in _BUILDING else ()
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


def _run_error(store: Store, outcome: Any, nodes: tuple[NodeResult, ...]) -> str | None:
    """Why dbt failed as a whole (None when it ran), raising what deserves its own error: a Ctrl-C,
    or a store error (a lock, a refused login) that dbt reported as text."""
    # dbtRunner turns Ctrl-C into a failed result: give it back to the caller as what it is.
    if isinstance(outcome.exception, KeyboardInterrupt):
        raise KeyboardInterrupt
    for text in [outcome.exception, *(n.message for n in nodes)]:
        translated = store.translate(text if isinstance(text, BaseException) else Exception(text)) if text else None
        if translated:
            raise translated
    if outcome.exception is not None:
        return str(outcome.exception)
    if not outcome.success and not any(n.failed for n in nodes):
        return "dbt reported a failure; see dbt/logs/dbt.log"
    return None
