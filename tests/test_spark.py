"""A lake target on a real local Spark (issue #21): dlt -> Parquet in the lake -> Spark's catalog -> dbt-spark.

Every sbdk command that starts Spark runs as its own process, as a user runs it: a local Spark's
catalog (a Derby metastore in the project's .sbdk/spark) serves one process at a time, and a JVM
started inside the test process would hold it until the end of the session. Spark runs on
`local[2]` with its UI off; the checks that must fail before any JVM starts run in-process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import AS_OF, SMALL, edit_config
from tests_support import free_port

from sbdk.ops.scaffold import InitOptions, init_project

LAKE = {"type": "spark", "lake": "data/lake", "master": "local[2]", "conf": {"spark.driver.memory": "1g"}}
# The JVMs of these tests only compile with C1, the JIT tier for short runs: a lake query's process takes
# ~25 s of CPU instead of ~43 s (a 76-node dbt-spark build: 122 s instead of 158 s), and CI's two test
# workers share two cores. What Spark computes is the same; sbdk never sets it for a user's Spark.
JVM = {"JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1"}


def _sbdk(root: Path, *args: str, **extra_env: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBDK", "SPARK_REMOTE"))}
    env.update(JVM)
    env.update(extra_env)
    return subprocess.Popen(
        [sys.executable, "-m", "sbdk", *args],
        cwd=root,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a SIGKILL of its group takes Spark's JVM with it
    )


def _run(root: Path, *args: str, timeout: float = 300, **extra_env: str) -> tuple[int, str, str]:
    process = _sbdk(root, *args, **extra_env)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def _query(root: Path, sql: str) -> list[dict]:
    code, out, err = _run(root, "query", "--target", "lake", "--format", "json", sql)
    assert code == 0, out + err
    return json.loads(out)


def _lake_project(parent: Path, name: str = "lake") -> Path:
    root = init_project(InitOptions(folder=parent / name, as_of=AS_OF, **SMALL)).root
    edit_config(root, targets={"lake": LAKE})
    return root


COUNTS = """
select
    (select count(*) from raw.raw_users) as users,
    (select count(*) from raw.raw_events) as events,
    (select count(*) from raw.raw_events where event_type = 'purchase') as purchases,
    (select count(*) from raw.raw_orders) as orders,
    (select count(*) from raw.raw_orders o left anti join raw.raw_users u on o.user_id = u.user_id) as orphan_orders,
    (select count(*) from analytics.user_metrics) as user_metrics,
    (select sum(hash(*)) from raw.raw_events) as events_digest
"""


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A project after one `sbdk dev --target lake`: its folder, the run's output and the counts read back."""
    root = _lake_project(tmp_path_factory.mktemp("spark"))
    code, out, err = _run(root, "dev", "--target", "lake")
    assert code == 0, out + err
    (counts,) = _query(root, COUNTS)
    return {"root": root, "out": out, "err": err, "counts": counts}


@pytest.mark.slow
def test_dev_on_the_lake_loads_builds_and_tests_everything(lake):
    root, counts = lake["root"], lake["counts"]
    assert "66 tests passed, 0 failed" in lake["out"]
    assert "dlt -> Parquet in the lake" in lake["out"]
    assert counts["users"] == SMALL["users"]
    assert counts["events"] == SMALL["events"]
    # An order per purchase event, each of a loaded user.
    assert counts["orders"] == counts["purchases"] > 0
    assert counts["orphan_orders"] == 0
    assert counts["user_metrics"] == SMALL["users"]
    results = json.loads((root / "dbt" / "target" / "run_results.json").read_text())["results"]
    assert len(results) == 76
    assert {r["status"] for r in results} == {"success", "pass"}
    # The raw tables are Parquet written by dlt in the lake, one folder per load; the DuckDB file is untouched.
    loads = sorted(p.name for p in (root / "data" / "lake").iterdir() if p.name.startswith("_sbdk_load_"))
    assert loads == ["_sbdk_load_1"]
    assert list((root / "data" / "lake" / "_sbdk_load_1" / "raw_users").glob("*.parquet"))
    assert not (root / "data" / "dev.duckdb").exists()
    # Spark's start-up and log lines go to the project's Spark log, not the terminal.
    assert "log4j" not in lake["err"] and "WARN" not in lake["err"]
    assert (root / ".sbdk" / "spark" / "spark.log").is_file()


@pytest.mark.slow
def test_a_second_process_sees_the_catalog(lake):
    """The catalog persists: dbt alone, in a new process, finds the raw tables and builds on them (its
    data tests read them: unique and not-null ids, each event's and order's user in stg_users)."""
    root = lake["root"]
    code, out, err = _run(root, "dev", "--target", "lake", "--dbt-only", "--select", "stg_users")
    assert code == 0, out + err
    assert "1 models built; 15 tests passed, 0 failed" in out, out
    assert "Traceback" not in err


@pytest.mark.slow
def test_query_on_the_lake_refuses_writes_and_java_calls(lake):
    root = lake["root"]
    refused = {
        "drop table raw.raw_users;": "it is a DropTable statement",
        "insert into raw.raw_users select * from raw.raw_users;": "it is a InsertIntoStatement statement",
        "select 1; set spark.sql.ansi.enabled = true;": "it is a SetCommand statement",
        "select reflect('java.lang.System', 'exit', 1);": "it calls reflect(), which runs Java code",
        "select * from parquet.`/etc`;": "The table or view `parquet`.`/etc` cannot be found",
    }
    # One process (one JVM) reads the statements from a pipe, each refused on its own, as a script.
    script = "\n".join([*refused, "select count(*) as users from raw.raw_users;"]) + "\n"
    process = _sbdk(root, "query", "--target", "lake", "--format", "json")
    out, err = process.communicate(script, timeout=120)
    assert process.returncode == 1, out + err
    for why in refused.values():
        assert why in err, err
    assert err.count("`sbdk query` only reads.") == 4
    assert "Traceback" not in err and "Warning" not in err, err
    assert json.loads(out.strip().splitlines()[-1]) == [{"users": SMALL["users"]}]


@pytest.mark.slow
def test_killed_load_keeps_the_previous_raw_tables_readable(lake, tmp_path):
    root = lake["root"]
    before = lake["counts"]
    # Paused inside dlt's load, then once every new Parquet file is written, before the first table
    # switches to them; killed with Spark's JVM each time.
    for moment in ("load", "swap"):
        marker = tmp_path / f"paused-{moment}"
        victim = _sbdk(
            root, "dev", "--target", "lake", "--pipelines-only", "--fresh", "--seed", "7",
            SBDKTEST_PAUSE_AT=moment, SBDKTEST_PAUSE_FILE=str(marker),
        )  # fmt: skip
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert victim.poll() is None, victim.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        if moment == "load":
            # Meanwhile the catalog is the run's: a reader is told so at once, before starting Spark.
            code, out, err = _run(root, "query", "--target", "lake", "select count(*) from raw.raw_users")
            assert code == 6, out + err
            assert "The Spark catalog of this project" in err and f"pid {victim.pid}" in err
        else:
            assert list((root / "data" / "lake").glob("_sbdk_load_*/raw_events/*.parquet"))
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
    (after,) = _query(root, COUNTS)
    assert after == before
    # The next run drops the killed loads' folders and loads again. With the first run's seed: the same
    # rows in a new load folder, so the marts the first run built stay true to the raw tables (the
    # watcher's test after this one rebuilds one mart on this load and tests it against the others),
    # without a second full dbt-spark build of the project.
    code, out, err = _run(root, "dev", "--target", "lake", "--pipelines-only", "--fresh")
    assert code == 0, out + err
    (again,) = _query(root, COUNTS)
    assert again == before
    loads = [p.name for p in (root / "data" / "lake").iterdir() if p.name.startswith("_sbdk_load_")]
    assert len(loads) == 1 and loads != ["_sbdk_load_1"], loads


def test_missing_java_is_a_clear_error_before_spark_starts(tmp_path, cli, monkeypatch):
    root = _lake_project(tmp_path)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
    result = cli("dev", "--target", "lake", cwd=root)
    assert result.exit_code == 4, result.output
    assert f"JAVA_HOME is {tmp_path / 'no-java'}, which has no bin/java" in result.stderr
    assert "Traceback" not in result.output
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    result = cli("dev", "--target", "lake", cwd=root)
    assert result.exit_code == 4, result.output
    assert "Java is not installed (no `java` on PATH and JAVA_HOME is not set)" in result.stderr


def test_unwritable_lake_is_a_clear_error_before_spark_starts(tmp_path, cli):
    root = _lake_project(tmp_path)
    (root / "data" / "blocked").write_text("a file, not a folder")
    edit_config(root, targets={"lake": {**LAKE, "lake": "data/blocked/lake"}})
    result = cli("dev", "--target", "lake", cwd=root)
    assert result.exit_code == 4, result.output
    assert f"The lake {root / 'data' / 'blocked' / 'lake'} cannot be written" in result.stderr
    assert "Set the target's `lake` in sbdk_config.json" in result.stderr
    assert not (root / ".sbdk" / "spark" / "spark.log").exists()


@pytest.mark.parametrize("scheme", ["spark", "sc"])
def test_a_cluster_that_does_not_answer_is_a_clear_error(tmp_path, cli, scheme):
    root = _lake_project(tmp_path)
    port = free_port()
    edit_config(root, targets={"lake": {**LAKE, "master": f"{scheme}://127.0.0.1:{port}", "connect_timeout": 2}})
    result = cli("dev", "--target", "lake", cwd=root)
    assert result.exit_code == 4, result.output
    assert f"The Spark cluster at {scheme}://127.0.0.1:{port} does not answer" in result.stderr
    assert "Traceback" not in result.output


def test_spark_target_settings_are_checked(tmp_path, cli):
    root = _lake_project(tmp_path)
    edit_config(
        root,
        targets={
            "a": {"type": "spark", "master": "local[two]"},
            "b": {"type": "spark", "lake": "ftp://host/lake"},
            "c": {"type": "spark", "host": "db"},
            "d": {"type": "spark", "conf": {"driver.memory": "2g"}},
        },
    )
    result = cli("dev", cwd=root)
    assert result.exit_code == 3
    message = " ".join(result.stderr.split())
    assert "targets.a.master must be local, local[N], local[*], spark://host:port" in message
    assert "targets.b.lake must be a folder (relative to the project or absolute) or a URL starting with" in message
    assert "targets.c.host is not a setting of a spark target (allowed: conf, connect_timeout, lake, master" in message
    assert 'targets.d.conf must be an object of Spark settings such as {"spark.driver.memory": "2g"}' in message


def test_py4j_tracebacks_never_reach_stderr_through_the_root_logger():
    """py4j's java_gateway logs a command that meets a JVM going away with `logging.exception`, on the
    root logger (CI once showed that traceback after a `sbdk query` on the lake had answered)."""
    import logging

    from sbdk.stores.spark import _quiet_python_side

    root = logging.getLogger()
    before = list(root.filters)
    try:
        _quiet_python_side()
        _quiet_python_side()  # once is enough: no second filter
        made = [f for f in root.filters if f not in before]
        assert len(made) == 1

        def record(path: str) -> logging.LogRecord:
            return logging.LogRecord("root", logging.ERROR, path, 1059, "Exception while sending command.", (), None)

        assert not root.filter(record("/venv/lib/python3.11/site-packages/py4j/java_gateway.py"))
        assert root.filter(record("/venv/lib/python3.11/site-packages/dlt/pipeline.py"))
    finally:
        for added in [f for f in root.filters if f not in before]:
            root.removeFilter(added)


def test_spark_profile_joins_sbdks_session(tmp_path):
    from sbdk.dbt.profiles import dbt_profiles_dir
    from sbdk.settings import load_settings

    root = _lake_project(tmp_path)
    settings = load_settings(root / "sbdk_config.json").with_target("lake")
    assert settings.active_target.lake == str(root / "data" / "lake")
    profile = (dbt_profiles_dir(settings) / "profiles.yml").read_text()
    assert "type: spark" in profile and "method: session" in profile
    assert "schema: analytics" in profile
    assert '"spark.sql.session.timeZone": "UTC"' in profile


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory: pytest.TempPathFactory):
    """A Spark Connect server (pyspark's own sbin script, local[2], its own Derby catalog) on a free port."""
    import pyspark

    home = Path(pyspark.__file__).parent
    base = tmp_path_factory.mktemp("connect")
    port = free_port()
    env = {**os.environ, **JVM, "SPARK_HOME": str(home), "SPARK_LOG_DIR": str(base), "SPARK_PID_DIR": str(base)}
    server = subprocess.Popen(
        [
            "bash", str(home / "sbin" / "start-connect-server.sh"), "--wait", "--master", "local[2]",
            "--conf", f"spark.connect.grpc.binding.port={port}", "--conf", "spark.ui.enabled=false",
            "--conf", "spark.sql.catalogImplementation=hive", "--conf", f"spark.sql.warehouse.dir={base / 'warehouse'}",
            "--conf", f"spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName={base / 'metastore'};create=true",
            "--conf", f"spark.driver.extraJavaOptions=-Dderby.system.home={base}",
            "--conf", "spark.sql.session.timeZone=UTC", "--conf", "spark.sql.shuffle.partitions=4",
        ],
        env=env, cwd=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert server.poll() is None, "the Spark Connect server exited"
            assert time.monotonic() < deadline, "the Spark Connect server did not listen within 120 s"
            time.sleep(0.5)
    try:
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


@pytest.mark.slow
def test_a_spark_connect_server_runs_the_same_project(connect_server, tmp_path):
    """`master: sc://...`: the load's catalog updates, dbt-spark and queries all go through Spark Connect."""
    root = _lake_project(tmp_path, "connect")
    edit_config(root, targets={"cx": {"type": "spark", "lake": str(tmp_path / "lake"), "master": connect_server}})
    code, out, err = _run(root, "dev", "--target", "cx")
    assert code == 0, out + err
    assert "66 tests passed, 0 failed" in out, out
    assert f"user_metrics │  {SMALL['users']}" in out
    assert "Traceback" not in err and "Warning" not in err, err
    # A query cannot be checked to only read without Spark's parser, which a Connect client cannot reach.
    code, out, err = _run(root, "query", "--target", "cx", "select 1")
    assert code == 1 and "`sbdk query` cannot read through Spark Connect" in err, out + err


@pytest.mark.slow
def test_doctor_checks_java_the_lake_and_spark(lake):
    code, out, err = _run(lake["root"], "doctor", "--target", "lake")
    assert code == 0, out + err
    line = next(line for line in out.splitlines() if "target lake" in line)
    assert "PASS" in line and "Spark 4." in line and "Java 17" in line
    assert f"rows: raw_events {SMALL['events']:,}, raw_orders" in " ".join(out.split())


def test_doctor_names_a_missing_java(tmp_path, cli, monkeypatch):
    root = _lake_project(tmp_path)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
    result = cli("doctor", "--target", "lake", cwd=root)
    assert result.exit_code == 1
    assert "FAIL  target lake" in result.stdout
    assert "which has no bin/java" in " ".join(result.stdout.split())


@pytest.mark.slow
def test_the_watcher_rebuilds_on_the_lake(lake):
    """`sbdk start` follows the config's target: a saved model is rebuilt on Spark, in the watcher's
    own Spark session. Last in this module: the watcher holds the catalog while it runs."""
    import threading

    root = lake["root"]
    edit_config(root, target="lake")
    watcher = _sbdk(root, "start", "--no-initial-run", "--dbt-only", "--debounce", "100")
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(watcher.stdout.readline, "")), daemon=True)
    reader.start()

    def wait_for(text: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not any(text in line for line in lines):
            assert watcher.poll() is None, "".join(lines) + watcher.stderr.read()
            assert time.monotonic() < deadline, f"no {text!r} in:\n" + "".join(lines)
            time.sleep(0.2)

    try:
        wait_for("Watching", 60)
        model = root / "dbt" / "models" / "marts" / "funnel.sql"
        model.write_text(model.read_text().replace("-- The page_view", "-- Edited. The page_view"))
        wait_for("funnel changed", 30)
        wait_for("1 models built; 9 tests passed, 0 failed", 180)
    finally:
        watcher.send_signal(signal.SIGINT)
        try:
            watcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(watcher.pid, signal.SIGKILL)
            watcher.wait()
        reader.join(timeout=5)
    assert "spark starting local[2]" in "".join(lines)
    assert watcher.returncode in (0, 130)
