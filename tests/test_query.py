"""`sbdk query` stays read-only (issue #14): every way SQL was seen to write a file, change a setting
or read another file is refused by the statement check and, behind it, by the connection itself
(`connect_read_only`); `--format json` is strict JSON; several statements show every result."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import duckdb
import pytest
from helpers import small_sbdk_db

from sbdk.errors import LockError, UsageError
from sbdk.ops.doctor import PASS, check_database
from sbdk.ops.query import json_value, refuse_writes
from sbdk.run.lock import run_lock
from sbdk.settings import load_settings
from sbdk.stores import duckdb as duckdb_store

# What was tried against `sbdk query`, as templates: {db} is the project's database, {out} a folder
# outside the project, {secret} a text file there, {other} another DuckDB file there.
ATTACKS = {
    "log_query_path onto the database": "set log_query_path='{db}'; select 1",
    "profiling_output": "pragma enable_profiling='json'; set profiling_output='{out}/profile.json'; select 1",
    "enable_logging to a file": "call enable_logging(storage='file', storage_path='{out}/logs'); select 1",
    "temp_directory": "set temp_directory='{out}/tmp'; select 1",
    "read_csv outside the project": "select * from read_csv('{secret}', header=false)",
    "read_text outside the project": "select content from read_text('{secret}')",
    "glob outside the project": "select * from glob('{out}/*')",
    "attach": "attach '{other}' as other (read_only false); create table other.pwned as select 1",
    "copy to": "copy (select * from raw.raw_users) to '{out}/users.csv'",
    "install": "install httpfs",
    "load": "load httpfs",
    "export database": "export database '{out}/export'",
    "create table": "create table main.pwned as select 1",
    "a comment before a delete": "/* just a look */ delete from raw.raw_users",
    "a CTE before a delete": "with a as (select 1) delete from _sbdk.raw_tables where 1 in (select * from a)",
    "a delete inside a CTE of a select": "with gone as (delete from _sbdk.raw_tables returning *) select count(*) from gone",
    "a copy inside a CTE of a select": "with x as (copy (select 1) to '{out}/cte.csv') select 1",
    "explain analyze of a copy": "explain analyze copy (select 1) to '{out}/explained.csv'",
}
# What each of those did on a plain read-only connection (the opening `sbdk query` used before):
# the file it wrote, or what it read. The others were refused by DuckDB's read-only mode already, or
# need the network (INSTALL), but slipped past the statement check or must still be refused.
WROTE = {
    "log_query_path onto the database": "{db}",
    "profiling_output": "{out}/profile.json",
    "enable_logging to a file": "{out}/logs",
    "attach": "{other}",
    "copy to": "{out}/users.csv",
    "export database": "{out}/export",
    "a copy inside a CTE of a select": "{out}/cte.csv",
    "explain analyze of a copy": "{out}/explained.csv",
}
READ = ("read_csv outside the project", "read_text outside the project", "glob outside the project")
SECRET = "a line of a file outside the project"


def outside(tmp_path: Path) -> dict[str, str]:
    """The folder outside the project, with a secret and another database in it; the template values."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret.txt").write_text(SECRET + "\n")
    other = duckdb.connect(str(out / "other.duckdb"))
    other.execute("create table kept as select 1 as x")
    other.close()
    return {"out": str(out), "secret": str(out / "secret.txt"), "other": str(out / "other.duckdb")}


def snapshot(*folders: Path) -> dict[str, tuple[int, int, str]]:
    """path -> (size, mtime in ns, sha256) of every file under `folders`."""
    files = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                stat = path.stat()
                files[str(path)] = (stat.st_size, stat.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return files


def plain(output: str) -> str:
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", output).split())


def strict_json(text: str):
    def refuse(constant: str):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


# -- the attacks, through the CLI on a built project


@pytest.mark.slow
@pytest.mark.parametrize("name", ATTACKS)
def test_query_refuses_the_attack_and_nothing_changes(
    name: str, project_copy: Path, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"  # where INSTALL or a persistent secret would write
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    db = project_copy / "data" / "dev.duckdb"
    sql = ATTACKS[name].format(db=db, **outside(tmp_path))
    before = snapshot(project_copy, tmp_path / "outside", home)

    result = cli("query", sql, cwd=project_copy)

    assert result.exit_code != 0, result.output
    message = plain(result.stderr)
    assert message.startswith("error: `sbdk query` "), message
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 2  # the error and its fix, one line each
    assert SECRET not in result.output
    assert snapshot(project_copy, tmp_path / "outside", home) == before
    check = check_database(load_settings(project_copy / "sbdk_config.json"))
    assert check.status == PASS, check.detail


@pytest.mark.slow
def test_query_still_reads_after_refusals(project_copy: Path, cli) -> None:
    refused = cli("query", "set log_query_path='data/dev.duckdb'; select 1", cwd=project_copy)
    read = cli("query", "select count(*) as n from raw.raw_users", "-f", "csv", cwd=project_copy)

    assert "refused the SET statement `set log_query_path='data/dev.duckdb'`" in plain(refused.stderr)
    assert "nothing was run" in refused.stderr
    assert read.exit_code == 0 and read.stdout == "n\n200\n"


# -- the same attacks on the connection itself, the statement check bypassed


@pytest.mark.parametrize("name", ATTACKS)
def test_the_read_only_connection_refuses_the_attack_by_itself(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    db = small_sbdk_db(tmp_path / "project" / "data" / "dev.duckdb")
    sql = ATTACKS[name].format(db=db, **outside(tmp_path))
    before = snapshot(tmp_path)

    with duckdb_store.connect_read_only(db) as con:
        with pytest.raises(duckdb.Error) as refused:
            con.execute(sql).fetchall()

    assert SECRET not in str(refused.value)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", [*WROTE, *READ])
def test_the_attack_works_on_a_plain_read_only_connection(name: str, tmp_path: Path) -> None:
    """The reproduction: what the hardened connection stops did happen with `read_only=True` alone."""
    db = small_sbdk_db(tmp_path / "project" / "data" / "dev.duckdb")
    places = {"db": str(db), **outside(tmp_path)}
    before = snapshot(tmp_path)

    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(ATTACKS[name].format(**places)).fetchall()
    finally:
        con.close()

    if name in READ:
        assert SECRET in str(rows) or places["secret"] in str(rows)
    else:
        written = Path(WROTE[name].format(**places))
        changed = {path for path, facts in snapshot(tmp_path).items() if before.get(path) != facts}
        assert any(path == str(written) or path.startswith(str(written) + os.sep) for path in changed), changed
    if name == "log_query_path onto the database":
        with pytest.raises(duckdb.IOException, match="not a valid DuckDB database file"):
            duckdb.connect(str(db), read_only=True)


def test_the_read_only_connection_has_its_settings(tmp_path: Path) -> None:
    db = small_sbdk_db(tmp_path / "dev.duckdb")

    with duckdb_store.connect_read_only(db) as con:
        settings = dict(con.execute("select name, value from duckdb_settings()").fetchall())
        rows = con.execute("select count(*) from raw.raw_users").fetchall()

    assert rows == [(5,)]
    assert settings["access_mode"] == "read_only"
    assert settings["enable_external_access"] == "false"
    assert settings["lock_configuration"] == "true"
    assert settings["temp_directory"] == ""
    assert settings["allow_persistent_secrets"] == "false"
    assert settings["autoinstall_known_extensions"] == settings["autoload_known_extensions"] == "false"
    # Nothing but the database's own files is allowed despite external access being off.
    assert settings["allowed_directories"] == "[]"
    assert set(settings["allowed_paths"].strip("[]").split(", ")) == {
        f"{db}{suffix}" for suffix in ("", ".wal", ".wal.checkpoint", ".wal.recovery")
    }


def test_the_read_only_connection_needs_a_database(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="There is no database at"):
        with duckdb_store.connect_read_only(tmp_path / "missing.duckdb"):
            pass
    assert not (tmp_path / "missing.duckdb").exists()


# -- the statement check


@pytest.mark.parametrize(
    "sql, kind",
    [
        ("/* just a look */ delete from t", "DELETE"),
        ("-- a note\ndrop table t", "DROP"),
        ("with a as (select 1) insert into t select * from a", "INSERT"),
        ("with gone as (delete from t returning *) select * from gone", "DELETE"),
        ("select 1 where 1 in (with y as (update t set a = 2 returning a) select a from y)", "UPDATE"),
        ("with x as (copy (select 1) to 'f.csv') select 1", "COPY"),
        ("explain analyze copy t to 'f.csv'", "COPY"),
        ("/* a */ EXPLAIN /* b */ ANALYZE -- c\n insert into t values (1)", "INSERT"),
        ("explain (analyze, format json) delete from t", "DELETE"),
        ("set log_query_path = 'dev.duckdb'", "SET"),
        ("reset threads", "RESET"),
        ("use memory", "USE"),
        ("set variable x = 1", "SET"),
        ("pragma profiling_output = 'p.json'", "PRAGMA"),
        ("call enable_logging(storage = 'file')", "CALL"),
        ("checkpoint", "CHECKPOINT"),
        ("attach 'other.duckdb'", "ATTACH"),
        ("detach other", "DETACH"),
        ("export database 'out'", "EXPORT"),
        ("import database 'out'", "IMPORT"),
        ("install httpfs", "INSTALL"),
        ("load httpfs", "LOAD"),
        ("update extensions", "UPDATE"),  # a statement type the duckdb package has no name for
        ("begin", "BEGIN"),
        ("pivot t on a", "PIVOT"),  # without an IN list DuckDB runs several statements
        ("select 1; truncate t", "TRUNCATE"),
    ],
)
def test_the_statement_check_refuses_anything_but_a_read(sql: str, kind: str) -> None:
    con = duckdb.connect()
    con.execute("create table t (a int)")

    with pytest.raises(UsageError) as caught:
        refuse_writes(con, sql)

    assert caught.value.message.startswith(f"`sbdk query` is read-only: refused the {kind} statement `")
    assert caught.value.message.endswith("; nothing was run.")
    assert con.execute("select count(*) from t").fetchall() == [(0,)]


@pytest.mark.parametrize(
    "sql",
    [
        "explain analyze select * from t",
        "explain (analyze, format json) select 1",
        "explain (select 1)",
        "explain analyze (select 1) union (select 2)",
        "with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) select * from r",
        "select * from (select 1) union select 2 intersect select 3",
        "pivot t on a in (1, 2) using count(*)",
        "unpivot (select 1 as a, 2 as b) on a, b into name k value v",
        "show all tables",
        "describe t",
        "table t",
        "values (1), (2)",
        "select * from pragma_table_info('t')",
    ],
)
def test_the_statement_check_lets_reads_through(sql: str) -> None:
    con = duckdb.connect()
    con.execute("create table t (a int)")

    assert len(refuse_writes(con, sql)) == 1


# -- JSON and several statements


def test_json_values_are_null_for_nan_and_infinity() -> None:
    nan, inf = float("nan"), float("inf")

    assert json_value(nan) is None and json_value(inf) is None and json_value(-inf) is None
    assert json_value([1.5, nan, {"x": -inf}]) == [1.5, None, {"x": None}]
    assert json_value(0.0) == 0.0


def test_query_json_is_strict_json(project: Path, cli) -> None:
    small_sbdk_db(project / "data" / "dev.duckdb")
    sql = (
        "select 'nan'::double as nan, 'inf'::double as inf, '-inf'::float as minus_inf, 1.5 as num, "
        "['nan'::double, 2.0] as list, {'x': 'inf'::double} as struct, map(['k'], ['-inf'::double]) as map"
    )

    result = cli("query", sql, "-f", "json", cwd=project)

    assert result.exit_code == 0, result.output
    assert "NaN" not in result.stdout and "Infinity" not in result.stdout
    assert strict_json(result.stdout) == [
        {"nan": None, "inf": None, "minus_inf": None, "num": 1.5, "list": [None, 2.0], "struct": {"x": None}, "map": {"k": None}}
    ]  # fmt: skip


def test_query_shows_the_result_of_every_statement(project: Path, cli) -> None:
    small_sbdk_db(project / "data" / "dev.duckdb")
    sql = "select 1 as a; select count(*) as n, 'x' as s from raw.raw_users; select 'nan'::double as f"

    as_json = cli("query", sql, "-f", "json", cwd=project)
    as_csv = cli("query", sql, "-f", "csv", cwd=project)
    as_table = cli("query", sql, cwd=project)

    assert as_json.exit_code == as_csv.exit_code == as_table.exit_code == 0
    assert [strict_json(line) for line in as_json.stdout.splitlines()] == [
        [{"a": 1}],
        [{"n": 5, "s": "x"}],
        [{"f": None}],
    ]
    assert as_csv.stdout == "a\n1\n\nn,s\n5,x\n\nf\nnan\n"
    text = plain(as_table.stdout)
    assert re.fullmatch(r"a ━+ 1 1 row n ┃ s ━+╇━+ 5 │ x 1 row f ━+ nan 1 row", text), text


def test_a_failing_statement_is_named_and_nothing_is_printed(project: Path, cli) -> None:
    small_sbdk_db(project / "data" / "dev.duckdb")

    result = cli("query", "select 1 as a; select nope from raw.raw_users", "-f", "json", cwd=project)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert plain(result.stderr).startswith('error: In statement 2 of 2: Binder Error: Referenced column "nope"')


def test_several_statements_are_refused_before_any_runs(project: Path, cli) -> None:
    small_sbdk_db(project / "data" / "dev.duckdb")

    result = cli("query", "select 1 as a; copy (select 1) to 'x.csv'", "-f", "json", cwd=project)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "refused the COPY statement" in plain(result.stderr)
    assert not (project / "x.csv").exists()


# -- who holds the file


def test_query_while_this_process_writes_says_so(project: Path, cli) -> None:
    db = small_sbdk_db(project / "data" / "dev.duckdb")

    with duckdb_store.connect(db):
        result = cli("query", "select 1", cwd=project)
        with pytest.raises(LockError, match="open in this process for writing"):
            with duckdb_store.connect_read_only(db):
                pass

    assert result.exit_code == 6
    assert "is open in this process for writing" in plain(result.stderr)


def test_query_while_a_run_of_this_process_writes_names_the_run(project: Path, cli) -> None:
    # The webhook server runs builds in a worker thread; its page or MCP server reads in the same process.
    db = small_sbdk_db(project / "data" / "dev.duckdb")
    settings = load_settings(project / "sbdk_config.json")

    with run_lock(settings.paths.lock_file, "sbdk webhooks"), duckdb_store.connect(db):
        result = cli("query", "select 1", cwd=project)

    assert result.exit_code == 6
    message = plain(result.stderr)
    assert f"The database is busy: another sbdk run (pid {os.getpid()}, `sbdk webhooks`" in message
    assert "Query again when the run has finished" in message
