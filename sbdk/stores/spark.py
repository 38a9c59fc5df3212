"""A lake on Spark as a load target (`"type": "spark"` under `targets`).

dlt writes each load as Parquet into a new folder of the lake, `<lake>/_sbdk_load_<n>/<table>/`. Once
every file is written, each raw table `raw.<table>` of Spark's catalog is switched to its new folder
(one metastore update per table, rolled back on a failure) and the folders no table uses any more are
deleted. A failed or killed load therefore leaves the previous tables whole and readable: their
folders are untouched until the new ones are live. dbt-spark then builds the models in session mode,
in this process, on the same Spark session.

What sbdk knows of a load (which folder, rows, days, fingerprint) is kept in each raw table's
properties (`sbdk_*`), written with the switch.

The catalog persists: for a local Spark it is a Derby metastore in the project's state folder
(`.sbdk/spark/metastore_db`), which one process opens at a time; with a cluster, set
`spark.hadoop.hive.metastore.uris` (or the catalog the cluster uses) in the target's `conf`.

Needs the `spark` extra: `pip install -e '.[spark]'` (pyspark, dbt-spark[session]) and Java 17+.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sbdk.errors import LockError, SbdkError, TargetError, UsageError, causes
from sbdk.run.retry import NO_RETRY, Retry
from sbdk.stores.base import LOAD_PREFIX, RAW_SCHEMA, append_error
from sbdk.testing import NO_FAULTS, Faults

if TYPE_CHECKING:
    from sbdk.settings import Settings, Target

EXTRA_HINT = "Install the Spark extra: pip install -e '.[spark]' (or pip install 'sbdk[spark]')."
LOG4J = Path(__file__).with_name("spark-log4j2.properties")
# What sbdk records on each raw table (table properties, written with the switch to a new load).
PROP = "sbdk_"
_SESSIONS: dict[tuple[str, ...], Any] = {}
_STARTING = threading.Lock()


def quote(name: str) -> str:
    """`name` as a Spark SQL identifier (backticks)."""
    return "`" + name.replace("`", "``") + "`"


def literal(value: Any) -> str:
    """`value` as a Spark SQL string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def is_local(target: Target) -> bool:
    return target.master.startswith("local")


def state_dir(settings: Settings) -> Path:
    return settings.paths.state_dir / "spark"


def _lake_is_local(lake: str) -> bool:
    return "://" not in lake or lake.startswith("file://")


def _local_path(lake: str) -> Path:
    return Path(urlsplit(lake).path) if lake.startswith("file://") else Path(lake)


def require_spark() -> Any:
    try:
        import pyspark
    except ImportError as exc:
        raise UsageError("pyspark is not installed, so sbdk cannot run on Spark.", hint=EXTRA_HINT) from exc
    return pyspark


def java_problem(environ: Mapping[str, str] = os.environ) -> SbdkError | None:
    """Why Spark cannot start a JVM here (no Java found the way Spark's scripts look for it), or None."""
    home = environ.get("JAVA_HOME")
    if home:
        if not (Path(home) / "bin" / "java").is_file():
            return TargetError(
                f"JAVA_HOME is {home}, which has no bin/java: Spark needs Java (17 or newer) to start.",
                hint="Point JAVA_HOME at a Java installation (e.g. /usr/lib/jvm/java-17-openjdk-amd64), or unset it "
                "to use the `java` on PATH.",
            )
        return None
    if shutil.which("java", path=environ.get("PATH")) is None:
        return TargetError(
            "Java is not installed (no `java` on PATH and JAVA_HOME is not set): Spark needs Java 17 or newer.",
            hint="Install a JDK (e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME.",
        )
    return None


def lake_problem(lake: str) -> SbdkError | None:
    """Why the lake cannot be written (checked with a small file), or None. Object storage is checked
    by the load itself, with the credentials dlt finds in the environment."""
    if not _lake_is_local(lake):
        return None
    path = _local_path(lake)
    probe = path / ".sbdk-write-check"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return TargetError(
            f"The lake {path} cannot be written: {exc.strerror or exc}.",
            hint="Set the target's `lake` in sbdk_config.json to a folder sbdk may create and write.",
        )
    return None


def master_problem(target: Target) -> SbdkError | None:
    """Why the cluster of `spark://host:port` or `sc://host:port` does not answer (a TCP connection
    within connect_timeout), or None; Spark itself would retry for minutes."""
    parts = urlsplit(target.master)
    if parts.scheme not in ("spark", "sc"):
        return None
    port = parts.port or (7077 if parts.scheme == "spark" else 15002)
    host = parts.hostname or ""
    try:
        with socket.create_connection((host, port), timeout=target.connect_timeout):
            return None
    except OSError as exc:
        return TargetError(
            f"The Spark cluster at {target.master} does not answer ({host}:{port}: {exc.strerror or exc}).",
            hint=f"Check that it is running and reachable, or fix `master` of target {target.name!r} in sbdk_config.json.",
        )


def _settings_for(target: Target, settings: Settings) -> dict[str, str]:
    """The Spark settings of a session for `target`: the catalog, the warehouse for dbt's tables, UTC,
    a quiet JVM; then the target's own `conf`, which wins."""
    state = state_dir(settings)
    values = {
        "spark.app.name": f"sbdk {settings.project}",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # Dates and days are UTC, as on DuckDB and PostgreSQL (the models' to_utc_timestamp relies on it).
        "spark.sql.session.timeZone": "UTC",
        # dbt-spark sets it too (for the same results on Spark 3 and 4): set from the start, for every query.
        "spark.sql.ansi.enabled": "false",
        # dbt's models and tests are tables and views of the catalog, stored in the lake.
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": _join(target.lake or "", "warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={state} -Dlog4j2.configurationFile={LOG4J.as_uri()}",
    }
    if is_local(target):
        # The default (200) makes every small aggregation 200 tasks on a laptop.
        values["spark.sql.shuffle.partitions"] = "4"
    conf = dict(target.conf)
    if not any(key.startswith("spark.hadoop.hive.metastore.uris") for key in conf):
        values["spark.hadoop.javax.jdo.option.ConnectionURL"] = (
            f"jdbc:derby:;databaseName={state / 'metastore_db'};create=true"
        )
    values.update(conf)
    return values


def _join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def running() -> bool:
    """Whether this process has started Spark."""
    return bool(_SESSIONS)


def spark_session(target: Target, settings: Settings) -> Any:
    """This process's Spark session for `target`, started on first use (a JVM: seconds). dbt-spark's
    session mode finds it (SparkSession.builder.getOrCreate), so dbt builds on the same catalog."""
    values = _settings_for(target, settings)
    key = (target.master, *sorted(f"{k}={v}" for k, v in values.items()))
    with _STARTING:
        spark = _SESSIONS.get(key)
        if spark is not None:
            return spark
        if _SESSIONS:
            raise UsageError(
                "This process already runs Spark for another project or target; Spark runs one per process.",
                hint="Run the other project or target in its own `sbdk` command.",
            )
        spark = _start(target, settings, values)
        _SESSIONS[key] = spark
        return spark


def _start(target: Target, settings: Settings, values: dict[str, str]) -> Any:
    require_spark()
    problem = java_problem() or master_problem(target)
    if problem is not None:
        raise problem
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    state = state_dir(settings)
    state.mkdir(parents=True, exist_ok=True)
    if "spark.hadoop.javax.jdo.option.ConnectionURL" in values:
        _check_metastore_free(settings)
    if target.master.startswith("sc://"):
        import warnings

        # pyspark's connect client raises FutureWarnings of its own (deprecated calls, library versions
        # it was not tried with: pandas, pyarrow) that a user of sbdk can do nothing about.
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark\..*")
        builder = SparkSession.builder.remote(target.master)
        # Only the session's own SQL settings: the server's static ones (its catalog, warehouse) are its own.
        static = (
            "spark.driver.",
            "spark.ui.",
            "spark.hadoop.",
            "spark.sql.catalogImpl",
            "spark.sql.warehouse",
            "spark.app.",
        )
        for name, value in values.items():
            if not name.startswith(static):
                builder = builder.config(name, value)
        os.environ["SPARK_REMOTE"] = target.master  # dbt-spark's getOrCreate() then joins this session
        _quiet_python_side()
        return builder.getOrCreate()
    conf = SparkConf().setMaster(target.master)
    for name, value in values.items():
        conf.set(name, value)
    # The JVM's own output (Spark's and Derby's start-up lines, warnings) goes to a log, not the terminal.
    log = (state / "spark.log").open("ab")
    try:
        gateway = launch_gateway(conf, popen_kwargs={"stdout": log, "stderr": log})
    except Exception as exc:
        raise TargetError(
            f"Spark did not start: {_first_line(exc)}",
            hint=f"Its output is in {state / 'spark.log'}; `sbdk doctor` checks Java and Spark.",
        ) from exc
    finally:
        log.close()
    # The JVM ends when its stdin closes, and holds the catalog until it has: the next command (a
    # query right after a run) must find it free, so this process waits for it on its way out.
    atexit.register(_stop_jvm, gateway)
    # SparkContext replaces the SIGINT handler of the main thread with its own (cancel the jobs, raise
    # KeyboardInterrupt): sbdk's own handling of Ctrl-C (the watcher's stop, exit 130) must stay.
    previous = signal.getsignal(signal.SIGINT)
    try:
        context = SparkContext(conf=conf, gateway=gateway)
    finally:
        if threading.current_thread() is threading.main_thread() and previous is not None:
            signal.signal(signal.SIGINT, previous)
    context.setLogLevel("ERROR")
    _quiet_python_side()
    return SparkSession.builder.getOrCreate()


def _stop_jvm(gateway: Any, timeout: float = 30) -> None:
    process = getattr(gateway, "proc", None)
    if process is None:
        return
    try:
        process.stdin.close()
        process.wait(timeout=timeout)
    except Exception:  # an exit must not fail over a JVM that is gone or hangs
        process.kill()


def _quiet_python_side() -> None:
    """pyspark logs every SQL error it raises as JSON on stderr; sbdk reports the error itself. py4j logs
    a traceback when a command meets the JVM going away as the process exits (seen once in CI after a
    `sbdk query` on the lake had answered): the error that matters reaches sbdk as an exception anyway."""
    import logging

    from pyspark.logger import PySparkLogger

    PySparkLogger.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    logging.getLogger("py4j").setLevel(logging.CRITICAL)
    # py4j's java_gateway reports that one through the root logger (`logging.exception(...)`), which
    # the "py4j" logger's level does not reach: a filter on the root logger drops records made in py4j.
    root = logging.getLogger()
    if not any(isinstance(f, _FromPy4j) for f in root.filters):
        root.addFilter(_FromPy4j())


class _FromPy4j:
    """A logging filter that drops the records py4j's own modules log (through any logger)."""

    def filter(self, record: Any) -> bool:
        return "py4j" not in Path(record.pathname).parts


def _check_metastore_free(settings: Settings) -> None:
    """Fail at once when another process has the project's Derby metastore open (Derby holds a lock on
    dbex.lck while it runs); Spark would try for about 20 s before saying so."""
    import fcntl

    lock_file = state_dir(settings) / "metastore_db" / "dbex.lck"
    try:
        fd = os.open(lock_file, os.O_RDWR)
    except OSError:
        return  # never opened yet, or not readable: Spark will say
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.lockf(fd, fcntl.LOCK_UN)
    except OSError:
        raise _catalog_in_use(settings) from None
    finally:
        os.close(fd)


def _catalog_in_use(settings: Settings) -> LockError:
    from sbdk.run import lock

    running = lock.active_run(settings.paths.lock_file)
    holder = lock.describe(running) if running else "another sbdk command (`sbdk query`, `sbdk start`, `sbdk doctor`)"
    return LockError(
        f"The Spark catalog of this project ({state_dir(settings) / 'metastore_db'}) is open in another process: "
        f"{holder}. A local Spark catalog serves one process at a time.",
        hint="Wait for it to finish, then run again (or point the target's conf at a shared Hive metastore).",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def metastore_in_use(exc: BaseException) -> bool:
    return any("Another instance of Derby may have already booted" in str(c) for c in causes(exc))


class SparkLakeSession:
    """The loader's view of the lake and its catalog (sbdk.stores.base.Session)."""

    def __init__(self, spark: Any, target: Target, faults: Faults = NO_FAULTS) -> None:
        self.spark = spark
        self.lake = target.lake or ""
        self.faults = faults

    def _sql(self, sql: str) -> list[Any]:
        return self.spark.sql(sql).collect()

    def _relation(self, table: str) -> str:
        return f"{RAW_SCHEMA}.{quote(table)}"

    def _raw_tables(self) -> list[str]:
        return [row.tableName for row in self._sql(f"show tables in {RAW_SCHEMA}") if not row.isTemporary]

    def _properties(self, table: str) -> dict[str, str]:
        rows = self._sql(f"show tblproperties {self._relation(table)}")
        return {row.key: row.value for row in rows if row.key.startswith(PROP)}

    def _recorded(self) -> dict[str, dict[str, str]]:
        """table -> sbdk's properties, for each raw table loaded by sbdk."""
        found = {table: self._properties(table) for table in self._raw_tables()}
        return {table: props for table, props in found.items() if props.get(PROP + "load")}

    def _folder(self, load_schema: str, table: str | None = None) -> str:
        return _join(self.lake, load_schema, *([table] if table else []))

    def _filesystem(self) -> tuple[Any, str]:
        import fsspec

        if _lake_is_local(self.lake):
            return fsspec.filesystem("file"), str(_local_path(self.lake))
        fs, path = fsspec.core.url_to_fs(self.lake)
        return fs, path

    def _load_folders(self) -> list[str]:
        fs, root = self._filesystem()
        try:
            entries = fs.ls(root, detail=False)
        except FileNotFoundError:
            return []
        names = [entry.rstrip("/").rsplit("/", 1)[-1] for entry in entries]
        return [name for name in names if name.startswith(LOAD_PREFIX)]

    def _delete_folder(self, load_schema: str) -> None:
        fs, root = self._filesystem()
        try:
            fs.rm(f"{root.rstrip('/')}/{load_schema}", recursive=True)
        except FileNotFoundError:
            pass

    def prepare(self) -> None:
        self.spark.sql(f"create database if not exists {RAW_SCHEMA}")
        # Loads left by failed or killed runs: every folder no raw table reads from.
        live = {props[PROP + "load"] for props in self._recorded().values()}
        for folder in self._load_folders():
            if folder not in live:
                self._delete_folder(folder)

    def live_tables(self) -> dict[str, tuple[str, int]]:
        return {t: (p[PROP + "load"], int(p.get(PROP + "rows", 0))) for t, p in self._recorded().items()}

    def new_load_schema(self) -> str:
        names = [p[PROP + "load"] for p in self._recorded().values()] + self._load_folders()
        numbers = [int(n[len(LOAD_PREFIX) :]) for n in names if n[len(LOAD_PREFIX) :].isdigit()]
        return f"{LOAD_PREFIX}{max(numbers, default=0) + 1}"

    def _incoming(self, load_schema: str, table: str) -> Any:
        return self.spark.read.parquet(self._folder(load_schema, table))

    def _columns_of(self, table: str) -> list[tuple[str, str]]:
        return [(name, kind) for name, kind in self.spark.table(self._relation(table)).dtypes]

    def _set_properties(self, table: str, props: Mapping[str, str]) -> None:
        pairs = ", ".join(f"{literal(key)} = {literal(value)}" for key, value in props.items())
        self.spark.sql(f"alter table {self._relation(table)} set tblproperties ({pairs})")

    def _create(self, table: str, location: str, props: Mapping[str, str]) -> None:
        pairs = ", ".join(f"{literal(key)} = {literal(value)}" for key, value in props.items())
        self.spark.sql(
            f"create table {self._relation(table)} using parquet location {literal(location)} tblproperties ({pairs})"
        )

    def _location(self, table: str) -> str:
        rows = self._sql(f"describe table extended {self._relation(table)}")
        return next((row.data_type for row in rows if row.col_name == "Location"), "")

    def _switch(self, table: str, location: str, props: Mapping[str, str], same_columns: bool) -> None:
        """Point `table` at `location` with `props`: a table that keeps its columns changes location
        (its fingerprint is cleared first, so a stop in between never reads as up to date); one whose
        columns changed is made again (dependent views are rebuilt by the next dbt run)."""
        exists = self.spark.catalog.tableExists(self._relation(table))
        if exists and same_columns:
            self._set_properties(table, {PROP + "fingerprint": ""})
            self.spark.sql(f"alter table {self._relation(table)} set location {literal(location)}")
            self._set_properties(table, props)
        else:
            if exists:
                self.spark.sql(f"drop table {self._relation(table)}")
            self._create(table, location, props)

    def swap_in(
        self,
        load_schema: str,
        tables: Iterable[str],
        days: tuple[date, date] | None = None,
        fingerprints: Mapping[str, str] | None = None,
    ) -> dict[str, int]:
        first, last = days or (None, None)
        fingerprints = fingerprints or {}
        recorded = self._recorded()
        loaded_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        planned = []
        for table in tables:
            incoming = self._incoming(load_schema, table)
            rows = incoming.count()
            current = self._columns_of(table) if table in recorded else None
            props = {
                PROP + "load": load_schema,
                PROP + "rows": str(rows),
                PROP + "loaded_at": loaded_at,
                PROP + "first_day": first.isoformat() if first else "",
                PROP + "last_day": last.isoformat() if last else "",
                PROP + "fingerprint": fingerprints.get(table, ""),
            }
            planned.append((table, rows, props, current == list(incoming.dtypes)))
        self.faults.reached("swap")
        done: list[tuple[str, str, dict[str, str]]] = []
        try:
            for table, _rows, props, same in planned:
                before = (self._location(table), recorded[table]) if table in recorded else None
                self._switch(table, self._folder(load_schema, table), props, same)
                if before is not None:
                    done.append((table, *before))
        except BaseException:
            for table, location, props in reversed(done):  # the tables switched already go back
                self._switch(table, location, props, same_columns=False)
            raise
        self._drop_unused(self._recorded())
        return {table: rows for table, rows, _props, _same in planned}

    def _drop_unused(self, recorded: dict[str, dict[str, str]]) -> None:
        live = {props[PROP + "load"] for props in recorded.values()}
        for folder in self._load_folders():
            if folder not in live:
                self._delete_folder(folder)

    def append_in(self, load_schema: str, tables: Iterable[str], day: date | None = None) -> dict[str, int]:
        from pyspark.errors import PySparkException

        added: dict[str, int] = {}
        recorded = self._recorded()
        for table in tables:
            live_columns = [name for name, _kind in self._columns_of(table)]
            incoming = self._incoming(load_schema, table)
            try:
                incoming.select(*live_columns).write.insertInto(self._relation(table))
            except PySparkException as exc:
                raise append_error(table, exc, live_columns, incoming.columns) from exc
            rows = incoming.count()
            props = {
                PROP + "rows": str(int(recorded[table].get(PROP + "rows", 0)) + rows),
                PROP + "fingerprint": "",
                PROP + "loaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            if day is not None:
                props[PROP + "last_day"] = day.isoformat()
            self._set_properties(table, props)
            self.spark.sql(f"refresh table {self._relation(table)}")
            added[table] = rows
        self._delete_folder(load_schema)
        return added

    def loaded_days(self) -> dict[str, tuple[date, date] | None]:
        days: dict[str, tuple[date, date] | None] = {}
        for table, props in self._recorded().items():
            first, last = props.get(PROP + "first_day"), props.get(PROP + "last_day")
            days[table] = (date.fromisoformat(first), date.fromisoformat(last)) if first and last else None
        return days

    def fingerprints(self) -> dict[str, str | None]:
        return {t: p.get(PROP + "fingerprint") or None for t, p in self._recorded().items()}

    def count(self, table: str) -> int:
        return int(self.spark.table(self._relation(table)).count())

    def sessions_per_day(self, first: date, last: date) -> dict[date, int]:
        # The session's time zone is UTC (spark_session), so a cast to date is the UTC day.
        rows = self._sql(
            f"select cast(occurred_at as date) as day, count(distinct session_id) as sessions "
            f"from {self._relation('raw_events')} "
            f"where cast(occurred_at as date) between date {literal(first)} and date {literal(last)} group by 1"
        )
        return {row.day: int(row.sessions) for row in rows}

    def max_value(self, table: str, column: str) -> Any:
        return self._sql(f"select max({quote(column)}) from {self._relation(table)}")[0][0]

    def columns(self, table: str) -> dict[str, str]:
        spelled = {"int": "integer"}
        return {name: spelled.get(kind, kind) for name, kind in self._columns_of(table)}

    def user_signups(self) -> tuple[list[int], list[Any]]:
        data = self.spark.sql(
            f"select user_id, signup_at from {self._relation('raw_users')} order by user_id"
        ).toArrow()
        return data.column("user_id").to_pylist(), data.column("signup_at").to_pylist()

    def expose(self, views: Mapping[str, tuple[str, str]]) -> None:
        for table, (schema, name) in views.items():
            self._sql(f"create database if not exists {quote(schema)}")
            self._sql(f"create or replace view {quote(schema)}.{quote(name)} as select * from {self._relation(table)}")

    def tables_in(self, schema: str) -> set[str]:
        fs, root = self._filesystem()
        try:
            entries = fs.ls(f"{root.rstrip('/')}/{schema}", detail=True)
        except FileNotFoundError:
            return set()
        names = {e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e["type"] == "directory"}
        return {name for name in names if not name.startswith("_")}

    def create_empty(self, schema: str, table: str, arrow_schema: Any) -> None:
        import pyarrow.parquet as pq

        fs, root = self._filesystem()
        folder = f"{root.rstrip('/')}/{schema}/{table}"
        fs.makedirs(folder, exist_ok=True)
        with fs.open(f"{folder}/empty.parquet", "wb") as handle:
            pq.write_table(arrow_schema.empty_table(), handle)


class SparkStore:
    kind = "spark"

    def __init__(self, target: Target, settings: Settings, faults: Faults = NO_FAULTS, retry: Retry = NO_RETRY) -> None:
        self.target = target
        self.settings = settings
        self.faults = faults
        self.retry = retry

    def describe(self) -> str:
        return self.target.describe()

    def is_transient(self, exc: BaseException) -> bool:
        return False

    def spark(self) -> Any:
        try:
            return spark_session(self.target, self.settings)
        except SbdkError:
            raise
        except Exception as exc:
            raise self.translate(exc) or TargetError(
                f"Spark did not start: {_first_line(exc)}",
                hint=f"Its output is in {state_dir(self.settings) / 'spark.log'}; `sbdk doctor` checks Java and Spark.",
            ) from exc

    def check(self, *, load: bool = True) -> None:
        """The extra is installed, Java and the lake are usable, the cluster answers, the catalog opens."""
        require_spark()
        try:
            __import__("dbt.adapters.spark")
        except ImportError as exc:
            raise UsageError("dbt-spark is not installed.", hint=EXTRA_HINT) from exc
        problem = java_problem() or (lake_problem(self.target.lake or "") if load else None)
        if problem is not None:
            raise problem
        with self.session() as session:
            session.prepare()

    def hold(self, command: str) -> Any:
        # A local catalog serves one process at a time (Derby); a cluster's catalog is the cluster's.
        return nullcontext()

    @contextmanager
    def session(self) -> Iterator[SparkLakeSession]:
        spark = self.spark()
        try:
            yield SparkLakeSession(spark, self.target, self.faults)
        except SbdkError:
            raise
        except Exception as exc:
            translated = self.translate(exc)
            if translated is not None:
                raise translated from exc
            raise

    def dlt_destination(self) -> Any:
        import dlt

        lake = self.target.lake or ""
        url = _local_path(lake).as_uri() if _lake_is_local(lake) else lake
        return dlt.destinations.filesystem(bucket_url=url)

    def row_counts(self) -> dict[str, int]:
        with self.session() as session:
            return {name: rows for name, (_s, rows) in sorted(session.live_tables().items())}

    def build_facts(self) -> tuple[dict[str, str | None], set[str]]:
        with self.session() as session:
            recorded = session._recorded()
            prints = {
                table: (props.get(PROP + "fingerprint") or None)
                if session.count(table) == int(props.get(PROP + "rows", -1))
                else None
                for table, props in recorded.items()
            }
            relations = set()
            for row in session._sql("show databases"):
                database = row[0]
                for table in session._sql(f"show tables in {quote(database)}"):
                    if not table.isTemporary:
                        relations.add(f"{database}.{table.tableName}".lower())
        return prints, relations

    def count_rows(self, relations: dict[str, str]) -> dict[str, int]:
        if not relations:
            return {}
        with self.session() as session:
            return {name: int(session._sql(f"select count(*) from {rel}")[0][0]) for name, rel in relations.items()}

    def failing_rows(self, relation: str, limit: int) -> tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]]:
        with self.session() as session:
            frame = session.spark.sql(f"select * from {relation} limit {int(limit)}")
            return tuple(frame.columns), tuple(tuple(row) for row in frame.collect())

    def translate(self, exc: BaseException) -> SbdkError | None:
        if metastore_in_use(exc) or "SessionHiveMetaStoreClient" in str(exc):
            return _catalog_in_use(self.settings)
        return None
