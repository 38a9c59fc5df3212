"""`target: prod` on a real, throwaway PostgreSQL server started in tmp (issue #9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests_support import PG_PASSWORD, SMALL, PostgresCluster, free_port

pytestmark = pytest.mark.slow
PASSWORD = PG_PASSWORD


@pytest.fixture(scope="module")
def server():
    """A PostgreSQL cluster on a free loopback port, password auth over TCP; stopped afterwards."""
    cluster = PostgresCluster.create()
    if cluster is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) not found; .ci/run installs them"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    cluster.start()
    con = cluster.connect()
    try:
        yield {"port": cluster.port, "con": con}
    finally:
        con.close()
        cluster.remove()


def _database(server, name: str) -> str:
    with server["con"].cursor() as cur:
        cur.execute(f'drop database if exists "{name}"')
        cur.execute(f'create database "{name}"')
    return name


def _project(make_project, server, name: str, port: int | None = None) -> Path:
    root = make_project(name)
    config = json.loads((root / "sbdk_config.json").read_text())
    config["targets"] = {
        "prod": {
            "type": "postgres", "host": "127.0.0.1", "port": port or server["port"],
            "database": _database(server, name), "user": "postgres", "connect_timeout": 3,
        }
    }  # fmt: skip
    (root / "sbdk_config.json").write_text(json.dumps(config, indent=2))
    (root / ".env").write_text(f"SBDK_TARGETS__PROD__PASSWORD={PASSWORD}\n")
    return root


def _query(server, database: str, sql: str) -> list[tuple]:
    import psycopg2

    con = psycopg2.connect(host="127.0.0.1", port=server["port"], user="postgres", password=PASSWORD, dbname=database)
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        con.close()


def _checksums(server, database: str) -> dict[str, str]:
    keys = {"raw_users": "user_id", "raw_events": "event_id", "raw_orders": "order_id"}
    return {
        table: _query(server, database, f"select md5(string_agg(t::text, '|' order by {key})) from raw.{table} t")[0][0]
        for table, key in keys.items()
    }


def _sbdk(root: Path, *args: str, **extra_env: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBDK")}
    env.update(extra_env)
    return subprocess.Popen(
        [sys.executable, "-m", "sbdk", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_full_dev_on_postgres_builds_and_tests_everything(make_project, server, cli):
    root = _project(make_project, server, "pg_full")
    result = cli("dev", "--target", "prod", cwd=root)
    assert result.exit_code == 0, result.output
    assert "66 tests passed, 0 failed" in result.stdout
    assert "dlt -> PostgreSQL" in result.stdout
    assert _query(server, "pg_full", "select count(*) from raw.raw_users")[0][0] == SMALL["users"]
    assert _query(server, "pg_full", "select count(*) from raw.raw_events")[0][0] == SMALL["events"]
    # An order per purchase event: their number follows from the events, not from a volume.
    purchases = "select count(*) from raw.raw_events where event_type = 'purchase'"
    assert _query(server, "pg_full", "select count(*) from raw.raw_orders") == _query(server, "pg_full", purchases)
    orphans = _query(
        server, "pg_full",
        "select count(*) from raw.raw_orders o left join raw.raw_users u using (user_id) where u.user_id is null",
    )  # fmt: skip
    assert orphans == [(0,)]
    assert _query(server, "pg_full", "select count(*) from analytics.user_metrics")[0][0] == SMALL["users"]
    # The local DuckDB file was not touched: the default target stays dev.
    assert not (root / "data" / "dev.duckdb").exists()


def test_killed_load_leaves_previous_postgres_tables_whole(make_project, server, tmp_path):
    root = _project(make_project, server, "pg_kill")
    first = _sbdk(root, "dev", "--target", "prod", "--pipelines-only")
    assert first.wait(timeout=120) == 0, first.communicate()
    before = _checksums(server, "pg_kill")
    for moment in ("load", "swap"):
        marker = tmp_path / f"paused-{moment}"
        victim = _sbdk(
            root, "dev", "--target", "prod", "--pipelines-only", "--seed", "7",
            SBDKTEST_PAUSE_AT=moment, SBDKTEST_PAUSE_FILE=str(marker),
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert victim.poll() is None, victim.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        assert _checksums(server, "pg_kill") == before, moment
    again = _sbdk(root, "dev", "--target", "prod", "--pipelines-only", "--seed", "7")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, out + err
    assert _checksums(server, "pg_kill") != before
    assert _query(server, "pg_kill", "select count(*) from raw.raw_events")[0][0] == SMALL["events"]


def test_two_projects_on_one_database_take_turns(make_project, server, tmp_path):
    first_root = _project(make_project, server, "pg_shared")
    second_root = make_project("pg_shared_too")
    # The second project points at the same database (another machine, or a colleague's checkout).
    (second_root / "sbdk_config.json").write_text((first_root / "sbdk_config.json").read_text())
    (second_root / ".env").write_text((first_root / ".env").read_text())
    marker = tmp_path / "paused"
    first = _sbdk(
        first_root, "dev", "--target", "prod", "--pipelines-only",
        SBDKTEST_PAUSE_AT="generate", SBDKTEST_PAUSE_FILE=str(marker), SBDKTEST_PAUSE_SECONDS="5",
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while not marker.exists():
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = _sbdk(second_root, "dev", "--target", "prod", "--pipelines-only")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 6, out + err
    assert "Another sbdk run is loading into postgres://postgres@127.0.0.1" in err
    assert f"`sbdk sbdk dev pid {first.pid} on " in err
    assert "Traceback" not in err
    assert first.wait(timeout=120) == 0, first.communicate()
    again = _sbdk(second_root, "dev", "--target", "prod", "--pipelines-only")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, out + err


def test_wrong_password_is_a_clear_error_fast(make_project, server, cli):
    root = _project(make_project, server, "pg_pw")
    (root / ".env").write_text("SBDK_TARGETS__PROD__PASSWORD=wrong\n")
    started = time.monotonic()
    result = cli("dev", "--target", "prod", cwd=root)
    assert time.monotonic() - started < 30
    assert result.exit_code == 4
    assert f"PostgreSQL at 127.0.0.1:{server['port']} refused the login of user 'postgres'" in result.stderr
    assert "SBDK_TARGETS__PROD__PASSWORD" in result.stderr
    assert "Traceback" not in result.output


def test_closed_port_is_a_clear_error_fast(make_project, server, cli):
    port = free_port()
    root = _project(make_project, server, "pg_port", port=port)
    # A closed port is retried by default (tests/test_retries.py): one attempt fails at once.
    config = json.loads((root / "sbdk_config.json").read_text())
    (root / "sbdk_config.json").write_text(json.dumps({**config, "retries": {"attempts": 1}}))
    result = cli("dev", "--target", "prod", cwd=root)
    assert result.exit_code == 4
    assert f"Cannot connect to PostgreSQL at 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.output


def test_password_in_the_config_file_is_refused(make_project, server, cli):
    root = _project(make_project, server, "pg_secret")
    config = json.loads((root / "sbdk_config.json").read_text())
    config["targets"]["prod"]["password"] = "oops"
    (root / "sbdk_config.json").write_text(json.dumps(config))
    result = cli("dev", "--target", "prod", cwd=root)
    assert result.exit_code == 3
    assert "targets.prod.password is written in sbdk_config.json" in result.stderr
    assert "SBDK_TARGETS__PROD__PASSWORD" in result.stderr


def test_unknown_target_names_the_known_ones(project, cli):
    result = cli("dev", "--target", "staging", cwd=project)
    assert result.exit_code == 2
    assert "--target 'staging' is not a target of this project (known: dev)" in result.stderr


def test_missing_driver_names_the_extra(monkeypatch):
    from sbdk.errors import UsageError
    from sbdk.stores.postgres import require_driver

    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(UsageError) as info:
        require_driver()
    assert "pip install -e '.[postgres]'" in info.value.hint
