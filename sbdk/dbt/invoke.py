"""dbt, in-process through dbtRunner, with results turned into a DbtReport.


Never a `dbt` found on PATH: the dbt imported here is the one installed next to sbdk.
"""

from __future__ import annotations

import json
import re
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sbdk.dbt.profiles import dbt_environment, dbt_profiles_dir, profile_args
from sbdk.dbt.release import release_duckdb
from sbdk.dbt.schemas import kept_schemas
from sbdk.errors import DbtError, causes
from sbdk.run.context import RunContext
from sbdk.run.plan import Trigger
from sbdk.run.process import collector_paused, environment
from sbdk.run.reporters import Reporter
from sbdk.run.results import DbtReport, NodeResult
from sbdk.run.retry import Predicate, transient_for
from sbdk.settings import Settings
from sbdk.testing import Faults

if TYPE_CHECKING:
    from sbdk.stores.base import Store

_PACKAGE_FILES = ("packages.yml", "dependencies.yml")
# dbt colours some messages even for a callback: keep the text only.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# The commands a selection and --fail-fast apply to.
_BUILDING = ("build", "run", "test")
# DuckDB and PostgreSQL name the line of the SQL they ran that an error is on: "LINE 26: <its text>".
_ERROR_LINE = re.compile(r"^\s*LINE (\d+):(.*)$", re.MULTILINE)
# A JVM's stack frames inside an error (dbt-spark passes Spark's whole trace on): the first line says it.
_JAVA_FRAMES = re.compile(r"^\s+(at [\w$.<>/]+\(.*\)|\.\.\. \d+ more)\s*$\n?", re.MULTILINE)
# dbt's first line of a node error, "Runtime Error in model x (models/x.sql)": the location says it.
_DBT_HEADER = re.compile(r"\A\w+ Error in \w+ \S+ \(.*\)\n")
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}")
# Failing rows shown per failed data test (the query hint shows them all).
FAILING_ROWS_SHOWN = 5
# A download that did not get through, in git's words (a hub or tarball package fails with a Python
# ConnectionError, after dbt_common's connection_exception_retry has tried it five more times).
# No name resolution at all (urllib3's NameResolutionError): a machine without network. Not tried
# again (dbt has retried five times already); the error says what to do offline.
_NO_NETWORK_TEXTS = ("Failed to resolve", "Name or service not known")
_NETWORK_TEXTS = (
    "Could not resolve host",
    "Temporary failure in name resolution",
    "Failed to connect to",
    "Connection timed out",
    "Connection refused",
    "Connection reset",
    "The remote end hung up unexpectedly",
    "early EOF",
)


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
                        message=_JAVA_FRAMES.sub("", result.message) if result.message else None,
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
        message = _JAVA_FRAMES.sub("", item.message) if item.message else None
        if message and str(item.status) == "error":
            message = _located(message, node, project_dir)
        nodes.append(
            NodeResult(
                unique_id=node.unique_id,
                name=node.name,
                resource_type=str(node.resource_type),
                status=str(item.status),
                seconds=float(item.execution_time or 0.0),
                message=message,
                failures=item.failures,
                compiled_path=(project_dir / compiled) if compiled else None,
                source_path=getattr(node, "original_file_path", None) or None,
                relation=getattr(node, "relation_name", None) or None,
                materialized=str(getattr(getattr(node, "config", None), "materialized", "") or "") or None,
            )
        )
    return tuple(nodes)


def _nearest(lines: list[str], matches: Callable[[str], bool], near: int) -> int | None:
    """The number (from 1) of the line that `matches`, nearest to line `near`."""
    found = [number for number, line in enumerate(lines, 1) if matches(line)]
    return min(found, key=lambda number: (abs(number - near), number), default=None)


def _renders_to(source_line: str, compiled_line: str) -> bool:
    """Whether a source line holding Jinja ({{ }}, {% %}) can have rendered as `compiled_line`: its
    literal parts, in order, around whatever the Jinja became."""
    parts = _JINJA.split(source_line.strip())
    if len(parts) < 2 or not "".join(parts).strip():
        return False
    return re.fullmatch(".*?".join(map(re.escape, parts)), compiled_line.strip(), re.DOTALL) is not None


def error_location(
    message: str, compiled_code: str, source: str | None, executed: str | None = None
) -> tuple[str, int] | None:
    """Where a database error points, as ("source" or "compiled", line number from 1) in the node's
    own file or its compiled SQL; None when the message names no line of it.

    The database numbers the lines of the SQL dbt ran (`executed`: the compiled SQL inside dbt's DDL),
    and Jinja makes the compiled lines differ from the file's: the source line is found by its text,
    nearest to the compiled line."""
    match = _ERROR_LINE.search(message)
    # The database may cut a long line short, with "..." where it did.
    shown = match.group(2).strip().removeprefix("...").removesuffix("...").strip() if match else ""
    if not match or not shown:
        return None
    number, compiled = int(match.group(1)), compiled_code.splitlines()
    line = None
    if executed and compiled_code in executed:
        # The compiled SQL starts this many lines down the SQL that ran.
        exact = number - executed[: executed.index(compiled_code)].count("\n")
        line = exact if 1 <= exact <= len(compiled) and shown in compiled[exact - 1] else None
    if line is None:  # a whole line rather than a part of one, when the database showed it all
        line = _nearest(compiled, lambda text: text.strip() == shown, number)
    if line is None:
        line = _nearest(compiled, lambda text: shown in text, number)
    if line is None:
        return None
    text = compiled[line - 1].strip()
    lines = source.splitlines() if source is not None else []
    same = [number for number, candidate in enumerate(lines, 1) if candidate.strip() == text]
    twins = [number for number, candidate in enumerate(compiled, 1) if candidate.strip() == text]
    if same and len(same) == len(twins):
        # The text is on as many lines of both (a `)`, a `from t`): the same one in order.
        found: int | None = same[twins.index(line)]
    else:
        found = _nearest(lines, lambda candidate: candidate.strip() == text, line)
    if found is None:
        found = _nearest(lines, lambda candidate: _renders_to(candidate, text), line)
    return ("source", found) if found is not None else ("compiled", line)


def _located(message: str, node: Any, project_dir: Path) -> str:
    """dbt's error text, led by the file and line it is about when the database named a line:
    `model stg_orders: models/staging/stg_orders.sql:14: Binder Error: ...`."""
    compiled_code, compiled_path = getattr(node, "compiled_code", None), getattr(node, "compiled_path", None)
    path = str(getattr(node, "original_file_path", "") or "")
    if not compiled_code or not compiled_path:
        return message
    # A generic test's file is the YAML that declares it; target/run holds the SQL that ran.
    source = _read(project_dir / path) if path.endswith(".sql") else None
    executed = getattr(node, "build_path", None)
    location = error_location(message, compiled_code, source, _read(project_dir / executed) if executed else None)
    if location is None:
        return message
    where, line = location
    body = _renumbered(textwrap.dedent(_DBT_HEADER.sub("", message, count=1)).strip(), line)
    return f"{node.resource_type} {node.name}: {path if where == 'source' else compiled_path}:{line}: {body}"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _renumbered(text: str, line: int) -> str:
    """The database's `LINE 26: <text>` as `LINE <line>:`, the number of the file the location names,
    with the ^^^ marker under it kept in place."""
    lines = text.split("\n")
    for index, current in enumerate(lines):
        match = _ERROR_LINE.match(current)
        if match is None:
            continue
        label_start, label_end = match.start(1) - len("LINE "), match.end(1) + 1
        label = f"LINE {line}:"
        lines[index] = current[:label_start] + label + current[label_end:]
        shift = len(label) - (label_end - label_start)
        below = lines[index + 1] if index + 1 < len(lines) else ""
        if below.strip() and set(below.strip()) == {"^"}:
            lines[index + 1] = (
                " " * shift + below if shift >= 0 else below[min(-shift, len(below) - len(below.lstrip())) :]
            )
        break
    return "\n".join(lines)


def is_transient_download(exc: BaseException) -> bool:
    """Whether `dbt deps` failed on the network (worth downloading again), not because the answer was no
    (a package or version that does not exist, a bad packages.yml)."""
    chain = list(causes(exc))
    for current in chain:
        # The server answered, and said no (404): dbt wraps that in a ConnectionError too.
        status = getattr(getattr(current, "response", None), "status_code", None)
        if isinstance(status, int) and 400 <= status < 500 and status != 429:
            return False
    return any(
        isinstance(current, (ConnectionError, TimeoutError)) or any(text in str(current) for text in _NETWORK_TEXTS)
        for current in chain
    )


class _FailedForNow(Exception):
    """A dbt invocation that failed for a passing reason: raised to invoke it again, with its result."""

    def __init__(self, outcome: Any, why: str) -> None:
        super().__init__(why)
        self.outcome = outcome


def _retried(
    context: RunContext, what: str, invoke: Callable[[], Any], failed_for_now: Callable[[Any], str | None]
) -> Any:
    """dbtRunner's result of `invoke()`, invoked again (the run's retries) while `failed_for_now` says
    why it failed (dbtRunner never raises); once they are used up, the last result as it is."""

    def attempt() -> Any:
        outcome = invoke()
        why = None if outcome.success else failed_for_now(outcome)
        if why:
            raise _FailedForNow(outcome, why)
        return outcome

    try:
        return context.retry.call(attempt, lambda exc: isinstance(exc, _FailedForNow), what=what)
    except _FailedForNow as exc:
        return exc.outcome


def _download_failure(outcome: Any) -> str | None:
    exc = outcome.exception
    return str(exc) if isinstance(exc, BaseException) and is_transient_download(exc) else None


def _connection_failure(is_transient: Predicate, outcome: Any) -> str | None:
    """The error of a build that could not reach its database for a moment (a server restarting, a file
    a reader holds): dbt's own exception, or a node's error."""
    failed = [item.message for item in getattr(outcome.result, "results", None) or () if str(item.status) == "error"]
    for error in [outcome.exception, *failed]:
        if error and is_transient(error if isinstance(error, BaseException) else Exception(error)):
            return " ".join(str(error).split())[:300]
    return None


def _failed_for_now(context: RunContext, command: str) -> Callable[[Any], str | None]:
    """How `dbt <command>` fails for a passing reason: deps on the network, a build on its database."""
    if command == "deps":
        return _download_failure
    if command in _BUILDING:
        is_transient = transient_for(context.store)
        return lambda outcome: _connection_failure(is_transient, outcome)
    return lambda outcome: None


_DEPS_STATE = "dbt_packages.json"


def _package_digest(project_dir: Path) -> str | None:
    """A digest of the project's package files (None when it declares no package)."""
    import hashlib

    files = [project_dir / name for name in _PACKAGE_FILES if (project_dir / name).is_file()]
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _packages_stale(settings: Settings) -> bool:
    """Whether `dbt deps` must run first: packages are declared and dbt_packages/ is missing, or the
    package files changed since sbdk last installed them (a project whose packages are installed and
    unchanged builds offline)."""
    project_dir = settings.paths.dbt_project_dir
    digest = _package_digest(project_dir)
    if digest is None:
        return False
    installed = project_dir / _packages_dir(project_dir)
    if not installed.is_dir():
        return True
    try:
        recorded = json.loads((settings.paths.state_dir / _DEPS_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = {}
    known = recorded.get(str(project_dir)) if isinstance(recorded, dict) else None
    if known is not None:
        return bool(known != digest)
    # Installed by the user (or an older sbdk): stale only when a package file changed after it.
    changed = max((project_dir / n).stat().st_mtime for n in _PACKAGE_FILES if (project_dir / n).is_file())
    return changed > installed.stat().st_mtime


def _packages_installed(settings: Settings) -> None:
    project_dir = settings.paths.dbt_project_dir
    path = settings.paths.state_dir / _DEPS_STATE
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = {}
    recorded = recorded if isinstance(recorded, dict) else {}
    recorded[str(project_dir)] = _package_digest(project_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(recorded, indent=1), encoding="utf-8")
    except OSError:
        pass  # the next run installs them again: slower, not wrong


def _packages_dir(project_dir: Path) -> str:
    from sbdk.watch.layout import read_yaml

    return str(read_yaml(project_dir / "dbt_project.yml").get("packages-install-path") or "dbt_packages")


@contextmanager
def _lock_file_kept_as_it_was(project_dir: Path) -> Iterator[None]:
    """`dbt deps` writes package-lock.yml into the project; a dbt project sbdk did not make is left as
    it was (issue #17: only dbt's target/, logs/ and dbt_packages/ may change)."""
    lock = project_dir / "package-lock.yml"
    before = lock.read_bytes() if lock.is_file() else None
    try:
        yield
    finally:
        try:
            if before is None:
                lock.unlink(missing_ok=True)
            elif lock.read_bytes() != before:
                lock.write_bytes(before)
        except OSError:
            pass


def install_packages(settings: Settings) -> None:
    """`dbt deps` once, when the project's packages are declared and missing or outdated (synthesis
    compiles the project before any run; a run installs them through _invoke, with retries)."""
    from dbt.cli.main import dbtRunner

    if not _packages_stale(settings):
        return
    project_dir = settings.paths.dbt_project_dir
    args = ["deps", "--project-dir", str(project_dir), "--profiles-dir", str(dbt_profiles_dir(settings))]
    args += profile_args(settings)
    with environment(dbt_environment(settings)), _lock_file_kept_as_it_was(project_dir):
        deps = dbtRunner().invoke([*args, "--log-level", "none"])
    if not deps.success:
        raise _deps_error(project_dir, deps.exception)
    _packages_installed(settings)


def _declared_packages(project_dir: Path) -> list[str]:
    from sbdk.watch.layout import read_yaml

    names = []
    for name in _PACKAGE_FILES:
        for entry in read_yaml(project_dir / name).get("packages") or ():
            if isinstance(entry, dict):
                label = entry.get("package") or entry.get("git") or entry.get("local") or entry.get("tarball")
                version = entry.get("version") or entry.get("revision")
                names.append(f"{label}{f' {version}' if version else ''}")
    return names


def _deps_error(project_dir: Path, exception: BaseException | None) -> DbtError:
    declared = _declared_packages(project_dir)
    downloaded = [p for p in declared if not p.startswith((".", "/"))] or declared
    packages = ", ".join(downloaded) or "the packages"
    if exception is not None and (
        is_transient_download(exception) or any(t in str(c) for c in causes(exception) for t in _NO_NETWORK_TEXTS)
    ):
        return DbtError(
            f"`dbt deps` could not download {packages} for {project_dir}: the network cannot reach "
            f"their registry ({_first_line(exception)}).",
            hint="Install them once where there is network (`dbt deps` in the dbt project, or `sbdk dev` there) and "
            "keep its dbt_packages/ folder; sbdk then builds offline. Or declare them as `local:` packages.",
        )
    return DbtError(
        f"`dbt deps` failed to install {packages} for {project_dir}: {exception or 'see the dbt log in its logs/'}",
        hint="Check the names and versions in packages.yml (or dependencies.yml).",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def _common_args(context: RunContext) -> list[str]:
    settings = context.settings
    return [
        "--project-dir", str(settings.paths.dbt_project_dir),
        "--profiles-dir", str(dbt_profiles_dir(settings)),
        *profile_args(settings),
    ]  # fmt: skip


def _invoke(context: RunContext, command: str, progress: _Progress) -> Any:
    """dbtRunner's result for `dbt <command>` (after `dbt deps` when packages are declared and missing)."""
    from dbt.cli.main import dbtRunner

    settings, plan = context.settings, context.plan
    project_dir = settings.paths.dbt_project_dir
    common = _common_args(context)
    # dbt never writes to the console itself: with --verbose its lines reach the reporter through the
    # event callback (one copy, and a closed or full stdout cannot break a dbt worker thread).
    log_level = "none"
    if command != "deps" and _packages_stale(settings):
        deps_args = ["deps", *common, "--log-level", log_level]
        with _lock_file_kept_as_it_was(project_dir):
            deps = _retried(context, "dbt deps", lambda: dbtRunner().invoke(deps_args), _download_failure)
        if not deps.success:
            raise _deps_error(project_dir, deps.exception)
        _packages_installed(settings)
    args = [command, *common, "--log-level", log_level, "--log-level-file", "info"]
    if command in _BUILDING:
        for value in plan.select:
            args += ["--select", value]
        if plan.fail_fast:
            args.append("--fail-fast")
        if plan.trigger == Trigger.WATCH and plan.select:
            # A watch rebuild skips dbt's JSON artifacts (manifest.json twice, run_results.json): 0.07 s
            # of a 0.45 s leaf rebuild. The watcher plans from dbt's partial-parse cache instead
            # (sbdk.watch.manifest), the run log and history hold the results, and a whole build (the
            # initial run, `sbdk dev`) still writes them for dbt's state (sbdk.dbt.state).
            args.append("--no-write-json")
    return dbtRunner(callbacks=[progress]).invoke(args)


def run_dbt(context: RunContext, command: str = "build") -> DbtReport:
    """`dbt <command>` on the run's project and store, in this process (the plan's selection and
    options apply to build/run/test). Never raises for failing models or tests: they are in the
    report (`success` False); raises DbtError when dbt cannot run at all."""
    progress = _Progress(context.reporter, context.plan.verbose, context.faults)
    started = time.perf_counter()

    def invoke() -> Any:
        try:
            with (
                environment(dbt_environment(context.settings)),
                collector_paused(context.pause_gc),
                kept_schemas(context.settings.paths.state_dir),
            ):
                return _invoke(context, command, progress)
        finally:
            release_duckdb()

    outcome = _retried(context, f"dbt {command}", invoke, _failed_for_now(context, command))
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
        store_kind=context.store.kind,
    )


def with_failing_rows(context: RunContext, report: DbtReport, limit: int = FAILING_ROWS_SHOWN) -> DbtReport:
    """`report` with the first `limit` failing rows of each data test that failed, read from where
    dbt's store_failures put them. Reading them never fails the run: a warning says what went wrong."""
    failed = [n for n in report.nodes if n.resource_type == "test" and n.status == "fail"]
    if not failed:
        return report
    # A test the project already stores the failures of carries the relation it stored them in.
    relations = {n.unique_id: n.relation for n in failed if n.relation}
    missing = tuple(n for n in failed if n.unique_id not in relations)
    started = time.perf_counter()
    if missing:
        try:
            relations.update(_store_failures(context, missing))
        except Exception as exc:
            context.reporter.warn(f"Could not store the failing rows of the tests that failed: {exc}")
    seconds = time.perf_counter() - started  # dbt's time too
    nodes = []
    for node in report.nodes:
        relation = relations.get(node.unique_id)
        if relation:
            try:
                node = replace(
                    node, failures_relation=relation, failing_rows=context.store.failing_rows(relation, limit)
                )
            except Exception as exc:
                context.reporter.warn(f"Could not read the failing rows of test {node.name} from {relation}: {exc}")
        nodes.append(node)
    return replace(report, nodes=tuple(nodes), seconds=report.seconds + seconds)


def _store_failures(context: RunContext, tests: tuple[NodeResult, ...]) -> dict[str, str]:
    """unique_id -> relation holding its failing rows, for `tests` run again with --store-failures.

    Not --store-failures on every build: every test then writes a table, passing or not, which made a
    passing build of the default project 45% slower (1.44 s -> 2.08 s warm, median of 7). Only the
    tests that failed run again, right after the build, on the data it left."""
    from dbt.cli.main import dbtRunner

    args = ["test", *_common_args(context), "--log-level", "none", "--log-level-file", "info"]
    # --no-write-json: target/run_results.json stays the build's; empty indirect selection: a model
    # named like a test does not bring its own tests along.
    args += ["--store-failures", "--no-write-json", "--indirect-selection", "empty"]
    for test in tests:
        args += ["--select", test.name]
    context.reporter.log(f"storing the failing rows of {len(tests)} test(s): dbt {' '.join(args)}")
    try:
        with environment(dbt_environment(context.settings)), collector_paused(context.pause_gc):
            outcome = dbtRunner().invoke(args)
    finally:
        release_duckdb()
    if isinstance(outcome.exception, KeyboardInterrupt):
        raise KeyboardInterrupt
    wanted = {test.unique_id for test in tests}
    relations = {}
    for item in getattr(outcome.result, "results", None) or ():
        relation = getattr(item.node, "relation_name", None)
        if item.node.unique_id in wanted and relation and str(item.status) == "fail":
            relations[item.node.unique_id] = relation
    return relations


def _error_text(exc: BaseException) -> str:
    """dbt's message for `exc`, naming the node dbt was parsing if dbt lost it: a config of the wrong
    type (`materialized: 5`) is a SchemaConfigError whose `node` dbt's base class sets back to None, so
    the message named no file. The node is still a local of the parser's frames in the traceback (the
    innermost one with a file wins), and so is the properties file when the config came from one:
    "Parsing Error in model funnel (models/marts/funnel.sql) ... set in models/marts/_marts.yml"."""
    if getattr(exc, "node", False) is not None:  # named already, or not a dbt error
        return str(exc)
    node = patch = None
    frame = exc.__traceback__
    while frame is not None:
        found = frame.tb_frame.f_locals
        for name in ("parsed_node", "node"):
            candidate = found.get(name)
            if isinstance(getattr(candidate, "original_file_path", None), str) and hasattr(candidate, "resource_type"):
                node = candidate
                break
        if isinstance(getattr(found.get("patch"), "original_file_path", None), str):
            patch = found["patch"].original_file_path
        frame = frame.tb_next
    if node is None:
        return str(exc)
    exc.node = node  # type: ignore[attr-defined]
    text = str(exc)
    if patch and patch != node.original_file_path:
        text += f"\n  (set in {patch}, under {node.name})"
    return text


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
        return _error_text(outcome.exception)
    if not outcome.success and not any(n.failed for n in nodes):
        return "dbt reported a failure; see dbt/logs/dbt.log"
    return None
