"""Transient failures are retried, within a bound, and nothing else is (issue #19, item 4).

The policy alone first (fast), then for real: a PostgreSQL server that starts late, a DuckDB file a
reader holds for a moment, a model with bad SQL that must fail once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import edit_config
from helpers import purchases
from test_postgres import PASSWORD, _sbdk
from tests_support import PostgresCluster, free_port

from sbdk.errors import LockError, PipelineError, TargetError
from sbdk.run.reporters import Reporter
from sbdk.run.retry import NO_RETRY, Retry, reason, retrying
from sbdk.settings import Retries


class Recorder(Reporter):
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


class Flaky:
    """Raises each of `errors` in turn, then returns "done"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def _transient(exc: BaseException) -> bool:
    return "refused" in str(exc)


def _retry(flaky: Flaky, attempts: int = 3, max_seconds: int = 30, is_transient=_transient):
    reporter, sleeps = Recorder(), []
    try:
        result: object = retrying(
            Retries(attempts=attempts, max_seconds=max_seconds),
            reporter,
            is_transient,
            flaky,
            what="Connecting to db",
            sleep=sleeps.append,
        )
    except BaseException as exc:
        result = exc
    return result, reporter.warnings, sleeps


# -- the policy


def test_transient_failures_are_retried_with_backoff_and_each_retry_is_told():
    flaky = Flaky(ConnectionError("connection refused"), ConnectionError("connection refused\nmore detail"))
    result, warnings, sleeps = _retry(flaky)
    assert result == "done" and flaky.calls == 3
    assert sleeps == [1.0, 2.0]
    assert warnings == [
        "Connecting to db failed; retrying in 1.0 s (2 of 3): connection refused",
        "Connecting to db failed; retrying in 2.0 s (3 of 3): connection refused",
    ]


def test_bound_by_attempts_then_the_error_says_how_often_it_was_tried():
    flaky = Flaky(*[TargetError("Cannot connect: refused", hint="Start it.") for _ in range(5)])
    error, warnings, sleeps = _retry(flaky, attempts=4)
    assert isinstance(error, TargetError) and flaky.calls == 4
    assert sleeps == [1.0, 2.0, 4.0]
    assert [w.split("(")[1].split(")")[0] for w in warnings] == ["2 of 4", "3 of 4", "4 of 4"]
    assert error.message.startswith("Cannot connect: refused (tried 4 times in ")
    assert error.hint == "Start it." and str(error).endswith("Start it.")


def test_an_error_outside_the_family_keeps_its_text_and_the_give_up_is_told():
    flaky = Flaky(*[ConnectionError("refused") for _ in range(2)])
    error, warnings, _sleeps = _retry(flaky, attempts=2)
    assert isinstance(error, ConnectionError) and str(error) == "refused"
    assert warnings[-1].startswith("Connecting to db failed (tried 2 times in ")


def test_bound_by_max_seconds_no_wait_ends_past_it():
    # Waits are 1, 2, 4 ... s: within 2 s there is room for the first wait only.
    flaky = Flaky(*[ConnectionError("refused") for _ in range(10)])
    error, warnings, sleeps = _retry(flaky, attempts=10, max_seconds=2)
    assert isinstance(error, ConnectionError) and flaky.calls == 2 and sleeps == [1.0]
    assert len(warnings) == 2  # one retry, then the give-up
    for max_seconds in (0, 1):
        flaky = Flaky(ConnectionError("refused"))
        error, warnings, sleeps = _retry(flaky, attempts=10, max_seconds=max_seconds)
        assert isinstance(error, ConnectionError) and flaky.calls == 1 and sleeps == [] and warnings == []


def test_a_non_transient_error_is_never_retried():
    flaky = Flaky(PipelineError("Binder Error: column nope not found"))
    error, warnings, sleeps = _retry(flaky, attempts=10)
    assert isinstance(error, PipelineError) and flaky.calls == 1 and sleeps == [] and warnings == []
    assert "tried" not in error.message
    # A transient failure, then a real one: the real one ends it.
    flaky = Flaky(ConnectionError("refused"), ValueError("bad config"), ConnectionError("refused"))
    error, warnings, sleeps = _retry(flaky, attempts=10)
    assert isinstance(error, ValueError) and flaky.calls == 2 and sleeps == [1.0]


def test_one_attempt_means_no_retry_and_ctrl_c_is_never_retried():
    flaky = Flaky(ConnectionError("refused"))
    error, warnings, sleeps = _retry(flaky, attempts=1)
    assert isinstance(error, ConnectionError) and flaky.calls == 1 and warnings == [] and sleeps == []
    flaky = Flaky(KeyboardInterrupt())
    error, warnings, _sleeps = _retry(flaky, is_transient=lambda exc: True)
    assert isinstance(error, KeyboardInterrupt) and flaky.calls == 1
    assert NO_RETRY.retries.attempts == 1 and Retry().call(lambda: 7, _transient, what="x") == 7


def test_reason_is_one_line_from_the_sbdk_error_or_the_innermost_cause():
    try:
        try:
            raise OSError("IO Error: Could not set lock on file\nsecond line")
        except OSError as inner:
            raise RuntimeError("Pipeline execution failed at `step=load`") from inner
    except RuntimeError as outer:
        assert reason(outer) == "IO Error: Could not set lock on file"
        wrapped = LockError("The database x is in use by y (PID 1).", hint="Close it.")
        wrapped.__cause__ = outer
        assert reason(wrapped) == "The database x is in use by y (PID 1)."
    assert reason(ValueError("")) == "ValueError"


def test_the_stores_know_what_is_transient():
    from sbdk.stores import duckdb as duckdb_store
    from sbdk.stores import postgres

    refused = Exception(
        'connection to server at "127.0.0.1", port 5999 failed: Connection refused\n\tIs the server running?'
    )
    for text in (
        refused,
        Exception("server closed the connection unexpectedly\n\tThis probably means the server terminated"),
        Exception("FATAL:  the database system is starting up"),
    ):
        assert postgres.is_transient(text)
    for text in (
        'FATAL:  password authentication failed for user "postgres"',
        'could not translate host name "nope" to address',
        'FATAL:  database "nope" does not exist',
        'syntax error at or near "selec"',
    ):
        assert not postgres.is_transient(Exception(text))
    # dlt and the store's own error hide the driver's: the chain is read.
    wrapped = RuntimeError("Pipeline execution failed at `step=load`")
    wrapped.__cause__ = refused
    assert postgres.is_transient(wrapped)

    held = Exception('IO Error: Could not set lock on file "/x.duckdb": Conflicting lock is held in python3 (PID 7).')
    error = duckdb_store.lock_error(Path("/x.duckdb"), held)
    error.__cause__ = held
    assert duckdb_store.is_transient(error) and duckdb_store.is_transient(held)
    for text in (
        "Binder Error: Referenced column nope not found",
        "Can't open a connection to same database file with a different configuration",
        "IO Error: Cannot open file: Permission denied",
    ):
        assert not duckdb_store.is_transient(Exception(text))


def test_dbt_deps_is_retried_on_the_network_only():
    from sbdk.dbt.invoke import is_transient_download

    class Response:
        def __init__(self, status: int) -> None:
            self.status_code = status

    class HTTPError(Exception):
        def __init__(self, status: int) -> None:
            super().__init__(f"{status} Error")
            self.response = Response(status)

    def wrapped(inner: BaseException) -> BaseException:
        # dbt_common's connection_exception_retry, after its own tries: ConnectionError, in `except`.
        try:
            try:
                raise inner
            except Exception:
                raise ConnectionError(f"External connection exception occurred: {inner}") from None
        except ConnectionError as exc:
            exc.__context__ = inner
            return exc

    assert is_transient_download(wrapped(OSError("Failed to establish a new connection: [Errno 111]")))
    assert is_transient_download(wrapped(HTTPError(503)))
    assert is_transient_download(Exception("fatal: unable to access: Could not resolve host: github.com"))
    assert not is_transient_download(wrapped(HTTPError(404)))
    assert not is_transient_download(Exception("Package dbt-labs/nope was not found in the package index"))


def test_a_run_context_gives_its_store_the_configured_policy(project):
    from sbdk.run.context import RunContext
    from sbdk.settings import load_settings

    edit_config(project, retries={"attempts": 5, "max_seconds": 12})
    reporter = Recorder()
    context = RunContext.of(load_settings(project / "sbdk_config.json"), reporter=reporter)
    assert context.retry == Retry(Retries(attempts=5, max_seconds=12), reporter)
    assert context.store.retry is context.retry  # type: ignore[attr-defined]
    defaults = RunContext.of(load_settings(project / "sbdk_config.json"))
    assert defaults.retry.retries == Retries(attempts=5, max_seconds=12)
    edit_config(project, retries={})
    assert RunContext.of(load_settings(project / "sbdk_config.json")).retry.retries == Retries(3, 30)


def test_dbt_deps_download_is_retried_then_succeeds(project, monkeypatch):
    import dbt.cli.main

    from sbdk.dbt.invoke import run_dbt
    from sbdk.run.context import RunContext
    from sbdk.run.plan import RunPlan
    from sbdk.settings import load_settings

    calls: list[list[str]] = []

    class Result:
        def __init__(self, success: bool, exception: BaseException | None = None) -> None:
            self.success, self.exception, self.result = success, exception, None

    class FlakyRunner:
        def __init__(self, callbacks=None) -> None:
            pass

        def invoke(self, args: list[str]) -> Result:
            calls.append(args)
            if len(calls) == 1:
                return Result(False, ConnectionError("External connection exception occurred: Connection reset"))
            return Result(True)

    monkeypatch.setattr(dbt.cli.main, "dbtRunner", FlakyRunner)
    reporter = Recorder()
    context = RunContext.of(load_settings(project / "sbdk_config.json"), RunPlan(pipelines=False), reporter=reporter)
    report = run_dbt(context, "deps")
    assert report.success and [args[0] for args in calls] == ["deps", "deps"]
    assert reporter.warnings == [
        "dbt deps failed; retrying in 1.0 s (2 of 3): External connection exception occurred: Connection reset"
    ]


# -- for real: DuckDB


def _hold(db: Path, seconds: float | None) -> subprocess.Popen:
    """Another process holding the DuckDB file, for `seconds` (None: until its stdin closes)."""
    wait = f"time.sleep({seconds})" if seconds is not None else "sys.stdin.read()"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys, time; c = duckdb.connect({str(db)!r}); print('ready', flush=True); {wait}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    return holder


def _run_log(root: Path) -> str:
    return "\n".join(path.read_text() for path in sorted((root / "logs").glob("*.log")))


def _last_run(root: Path) -> dict:
    return json.loads((root / ".sbdk" / "history.jsonl").read_text().splitlines()[-1])


@pytest.mark.slow
def test_a_duckdb_file_held_for_a_moment_is_waited_for(project, cli):
    holder = _hold(project / "data" / "dev.duckdb", 1.5)
    try:
        result = cli("dev", "--pipelines-only", cwd=project)
    finally:
        holder.communicate()
    assert result.exit_code == 0, result.output
    output = result.output + result.stderr
    assert "Opening dev.duckdb for writing failed; retrying in 1.0 s (2 of 3): The database" in output
    assert f"is in use by {sys.executable}" in output or f"(PID {holder.pid})" in output
    assert "retrying in 1.0 s (2 of 3)" in _run_log(project)
    assert _last_run(project)["status"] == "succeeded"


@pytest.mark.slow
def test_dbt_alone_waits_for_a_file_held_for_a_moment_too(project_copy, cli):
    holder = _hold(project_copy / "data" / "dev.duckdb", 1.5)
    try:
        result = cli("dev", "--dbt-only", "--select", "stg_users", cwd=project_copy)
    finally:
        holder.communicate()
    assert result.exit_code == 0, result.output
    assert "retrying in 1.0 s (2 of 3)" in result.output + result.stderr


def test_a_duckdb_file_held_with_one_attempt_fails_at_once(project, cli):
    edit_config(project, retries={"attempts": 1})
    holder = _hold(project / "data" / "dev.duckdb", None)
    try:
        started = time.monotonic()
        result = cli("dev", "--pipelines-only", cwd=project)
        seconds = time.monotonic() - started
    finally:
        holder.communicate("")
    assert result.exit_code == 6
    assert "is in use by" in result.stderr and f"PID {holder.pid}" in result.stderr
    assert "retrying" not in result.output + result.stderr and "tried" not in result.stderr
    assert seconds < 3
    assert "retrying" not in _run_log(project)


class HoldAt:
    """A fault point that has another process take the DuckDB file for `seconds` when the run gets there."""

    def __init__(self, point: str, db: Path, seconds: float) -> None:
        self.point, self.db, self.seconds = point, db, seconds
        self.holders: list[subprocess.Popen] = []

    def reached(self, point: str, detail: str = "") -> None:
        if point == self.point and not self.holders:
            self.holders.append(_hold(self.db, self.seconds))


@pytest.mark.slow
def test_dlt_load_into_a_file_taken_meanwhile_is_resumed(project):
    from sbdk.pipelines.load import load
    from sbdk.run.context import RunContext
    from sbdk.run.plan import RunPlan
    from sbdk.settings import load_settings

    db = project / "data" / "dev.duckdb"
    faults, reporter = HoldAt("load", db, 1.5), Recorder()
    context = RunContext.of(
        load_settings(project / "sbdk_config.json"), RunPlan(dbt=False), reporter=reporter, faults=faults
    )
    try:
        report = load(context)
    finally:
        for holder in faults.holders:
            holder.communicate()
    assert faults.holders and {t.table: t.rows for t in report.tables} == {
        "raw_users": 200,
        "raw_events": 1_000,
        "raw_orders": purchases(project),
    }
    assert reporter.warnings[0].startswith(f"Loading into {db} failed; retrying in 1.0 s (2 of 3): ")
    assert "Conflicting lock" in reporter.warnings[0]


@pytest.mark.slow
def test_a_sql_error_is_never_retried(project_copy, cli):
    model = project_copy / "dbt" / "models" / "staging" / "stg_users.sql"
    model.write_text("select no_such_column from {{ source('raw', 'raw_users') }}\n")
    result = cli("dev", "--dbt-only", cwd=project_copy)
    assert result.exit_code == 1, result.output
    log = _run_log(project_copy)
    assert "retrying" not in log and "tried" not in log
    # dbt built once: it planned its nodes once, and ran the broken model once.
    assert log.count("nodes_planned") == 1
    assert sum("node_finished" in line and "stg_users" in line and "error" in line for line in log.splitlines()) == 1
    entry = _last_run(project_copy)
    assert entry["status"] == "failed"
    assert [f["name"] for f in entry["dbt"]["failures"]] == ["stg_users"]
    assert "no_such_column" in entry["dbt"]["failures"][0]["message"]


# -- for real: PostgreSQL


@pytest.fixture
def cluster():
    """A PostgreSQL cluster with database `late`, stopped: the test starts it (`start()`) when it wants."""
    cluster = PostgresCluster.create(prefix="sbdk-pg-late-")
    if cluster is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; .ci/run installs them")
    cluster.start()
    con = cluster.connect()
    with con.cursor() as cur:
        cur.execute("create database late")
    con.close()
    cluster.stop()
    try:
        yield {"port": cluster.port, "start": cluster.start}
    finally:
        cluster.remove()


def _postgres_project(make_project, port: int, **retries: int) -> Path:
    root = make_project("pg_retry")
    config = json.loads((root / "sbdk_config.json").read_text())
    config["targets"] = {
        "prod": {"type": "postgres", "host": "127.0.0.1", "port": port, "database": "late", "user": "postgres",
                 "connect_timeout": 3}
    }  # fmt: skip
    config["retries"] = retries
    (root / "sbdk_config.json").write_text(json.dumps(config, indent=2))
    (root / ".env").write_text(f"SBDK_TARGETS__PROD__PASSWORD={PASSWORD}\n")
    return root


@pytest.mark.slow
def test_a_postgres_server_that_starts_late_is_waited_for(make_project, cluster):
    root = _postgres_project(make_project, cluster["port"], attempts=6, max_seconds=60)
    run = _sbdk(root, "dev", "--target", "prod", "--pipelines-only")
    time.sleep(2)
    cluster["start"]()
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, out + err
    assert "Connecting to PostgreSQL at 127.0.0.1" in out + err and "retrying in 1.0 s (2 of 6)" in out + err
    log = _run_log(root)
    assert "retrying in 1.0 s (2 of 6)" in log and "Connection refused" in log
    assert _last_run(root)["status"] == "succeeded"
    rows = _last_run(root)["rows"]
    assert rows["raw_events"] == 1_000 and rows["raw_users"] == 200 and rows["raw_orders"] > 0


@pytest.mark.slow
def test_a_closed_port_takes_the_configured_attempts_and_says_so(make_project, cli):
    port = free_port()
    root = _postgres_project(make_project, port, attempts=3, max_seconds=30)
    started = time.monotonic()
    result = cli("dev", "--target", "prod", cwd=root)
    seconds = time.monotonic() - started
    assert result.exit_code == 4
    output = result.output + result.stderr
    assert f"Connecting to PostgreSQL at 127.0.0.1:{port} failed; retrying in 1.0 s (2 of 3)" in output
    assert "retrying in 2.0 s (3 of 3)" in output
    assert f"Cannot connect to PostgreSQL at 127.0.0.1:{port}" in result.stderr
    assert "(tried 3 times in " in result.stderr
    assert 3 <= seconds < 30
    assert "Traceback" not in output
    assert "(tried 3 times in " in _last_run(root)["error"]
