"""`sbdk doctor`: check the installation and the project, each check with a verdict and a fix.

Nothing is changed, with one exception: parsing the dbt project refreshes dbt's own parse cache in
dbt/target/, exactly as the next `sbdk dev` would (not tried on a nearly full disk). Nothing needs
writing to report, so doctor works on a full disk and says so.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from sbdk.errors import SbdkError
from sbdk.ops import human_size
from sbdk.paths import shown as display
from sbdk.paths import user_path
from sbdk.settings import Settings

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
MB = 1024**2
GB = 1024**3
# Below this, a run or a backup is likely to die half-way: fail. Below the warning level, say so.
DISK_FAIL_BYTES = 100 * MB
DISK_FULL_BYTES = 1 * MB  # below this, the disk check says the disk is full
DISK_WARN_BYTES = 1 * GB
MIN_SECRET_LENGTH = 16
_NEEDS_CONFIG = "Not checked: needs a valid sbdk_config.json (see the config check)."


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass, warn, fail or skip
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[Check, ...]
    root: Path | None  # the project checked, when its config was found

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if c.status == FAIL)

    @property
    def warned(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if c.status == WARN)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "project": str(self.root) if self.root else None,
            "failed": list(self.failed),
            "warned": list(self.warned),
            "checks": [asdict(c) for c in self.checks],
        }


def diagnose(
    config_file: Path | None = None,
    *,
    start: Path | None = None,
    parse_dbt: bool = True,
    target: str | None = None,
    on_check: Callable[[Check], None] = lambda check: None,
) -> DoctorReport:
    """Run every check (a failing one never stops the others); `on_check` sees each as it completes.
    `target` checks that target of the config instead of its default one."""
    checks: list[Check] = []

    def add(check: Check) -> None:
        checks.append(check)
        on_check(check)

    add(check_python())
    add(check_packages())
    add(check_dbt_adapter())
    settings, config_check = check_config(config_file, start)
    if settings is not None and target is not None:
        try:
            settings = settings.with_target(target)
        except SbdkError as exc:
            settings, config_check = None, Check("config", FAIL, exc.message, exc.hint)
    add(config_check)
    if settings is None:
        for name in ("database", "dbt project", "dbt profile", "pipelines", "disk space", "webhook secret"):
            add(Check(name, SKIP, _NEEDS_CONFIG))
        return DoctorReport(tuple(checks), None)
    # The database first: parsing the dbt project imports dbt-duckdb in this process.
    add(check_database(settings))
    if settings.active_target.type != "duckdb":
        add(check_target(settings))
    add(check_dbt_project(settings, parse=parse_dbt))
    add(check_profile(settings))
    add(check_pipelines(settings))
    add(check_disk(settings))
    add(check_webhook_secret(settings))
    return DoctorReport(tuple(checks), settings.paths.root)


def _guard(name: str, func: Callable[[], Check]) -> Check:
    try:
        return func()
    except SbdkError as exc:
        return Check(name, FAIL, exc.message, exc.hint)


def check_python() -> Check:
    version = ".".join(str(p) for p in sys.version_info[:3])
    _requires_python()
    return Check("python", PASS, f"Python {version} ({sys.executable})")


def _requires_python() -> str | None:
    try:
        return metadata.metadata("sbdk")["Requires-Python"]
    except metadata.PackageNotFoundError:
        return None


def _problems(dist: str, only: set[str] | None = None) -> tuple[list[str], list[str]]:
    """(requirements of `dist` that the installed packages break, `name version` of those checked)."""
    from packaging.requirements import Requirement

    broken, seen = [], []
    for text in metadata.requires(dist) or ():
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = requirement.name
        if only is not None and name not in only:
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            broken.append(f"{name} is not installed ({dist} needs {requirement.specifier or 'it'})")
            continue
        seen.append(f"{name} {installed}")
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            broken.append(f"{name} {installed} does not satisfy {dist}'s {name}{requirement.specifier}")
    return broken, seen


def check_packages() -> Check:
    try:
        broken, seen = _problems("sbdk")
    except metadata.PackageNotFoundError:
        return Check(
            "packages",
            WARN,
            "sbdk is not installed as a package, so its requirements cannot be checked.",
            "Install it: `pip install -e .` in a checkout, or `pip install sbdk`.",
        )
    except ImportError:
        return Check(
            "packages",
            WARN,
            "The `packaging` library is missing, so versions cannot be checked.",
            "`pip install packaging`.",
        )
    if broken:
        return Check(
            "packages",
            FAIL,
            "; ".join(broken) + ".",
            "Reinstall sbdk's requirements: `pip install -e .` (or `pip install --upgrade sbdk`).",
        )
    key = [s for s in seen if s.split()[0] in ("dlt", "dbt-core", "dbt-duckdb", "duckdb")]
    return Check("packages", PASS, f"{', '.join(key)}; all {len(seen)} requirements of sbdk are met.")


def check_dbt_adapter() -> Check:
    """dbt-core and dbt-duckdb agree with each other (not only with sbdk's pins)."""
    try:
        core, adapter = metadata.version("dbt-core"), metadata.version("dbt-duckdb")
    except metadata.PackageNotFoundError as exc:
        return Check(
            "dbt-duckdb",
            FAIL,
            f"{exc.name or exc} is not installed.",
            "`pip install -e .` (sbdk depends on dbt-core and dbt-duckdb).",
        )
    try:
        broken = _problems("dbt-duckdb", {"dbt-core", "dbt-adapters", "dbt-common", "duckdb"})[0]
        broken += _problems("dbt-core", {"dbt-adapters", "dbt-common"})[0]
    except ImportError:
        broken = []
    minor = ".".join(core.split(".")[:2])
    if broken:
        return Check(
            "dbt-duckdb",
            FAIL,
            "; ".join(broken) + ".",
            f'Install matching versions: `pip install "dbt-core=={core}" "dbt-duckdb~={minor}.0"`.',
        )
    if core.split(".")[:2] != adapter.split(".")[:2]:
        return Check(
            "dbt-duckdb",
            WARN,
            f"dbt-duckdb {adapter} with dbt-core {core}: they work together, but dbt-duckdb is tested "
            "against the same minor version of dbt-core.",
            f'`pip install "dbt-duckdb~={minor}.0"`.',
        )
    return Check("dbt-duckdb", PASS, f"dbt-duckdb {adapter} matches dbt-core {core}.")


def check_config(config_file: Path | None, start: Path | None) -> tuple[Any, Check]:
    from sbdk.settings import load_settings

    try:
        settings = load_settings(config_file, start=start)
    except SbdkError as exc:
        return None, Check("config", FAIL, exc.message, exc.hint)
    if settings.warnings:
        detail = f"{settings.paths.config_file}: " + " ".join(settings.warnings)
        return settings, Check("config", WARN, detail, "Remove or correct those keys.")
    detail = f"{settings.paths.config_file} is valid (project {settings.project})."
    return settings, Check("config", PASS, detail)


def check_dbt_project(settings: Settings, *, parse: bool = True) -> Check:
    """The dbt project is there and parses. Parsing writes dbt/target/ and dbt/logs/: on a disk with
    less room than DISK_FAIL_BYTES (which the disk check fails), it is not tried."""
    from sbdk.dbt.invoke import run_dbt
    from sbdk.dbt.profiles import check_project
    from sbdk.disk import free_bytes, full_disk_error
    from sbdk.run.context import RunContext
    from sbdk.run.reporters import NULL_REPORTER
    from sbdk.run.runlog import third_party_logs

    def run() -> Check:
        check_project(settings)
        project = settings.paths.dbt_project_dir
        if not parse:
            return Check("dbt project", PASS, f"{project} has dbt_project.yml (not parsed).")
        free = free_bytes(project)
        if free is not None and free < DISK_FAIL_BYTES:
            return Check(
                "dbt project",
                SKIP,
                f"{project} has dbt_project.yml; not parsed: parsing writes dbt/target/, and only "
                f"{human_size(free)} are free on its disk (see the disk space check).",
            )
        # dbt's own log file failing to write (a disk filling up) must not print tracebacks.
        with third_party_logs(NULL_REPORTER):
            report = run_dbt(RunContext.of(settings), "parse")
        full = full_disk_error(project, report.error, doing="parsing the dbt project")
        if full is not None:
            return Check("dbt project", FAIL, full.message, full.hint)
        if not report.success:
            return Check(
                "dbt project",
                FAIL,
                f"dbt cannot parse {project}: {report.error or 'see dbt/logs/dbt.log'}",
                "Fix the file named above; `sbdk dev --verbose` shows dbt's full output.",
            )
        return Check("dbt project", PASS, f"{project} parses ({report.seconds:.1f}s).")

    return _guard("dbt project", run)


def check_profile(settings: Settings) -> Check:
    """The dbt profile sbdk uses points at the configured DuckDB file."""
    paths = settings.paths
    if not (paths.dbt_project_dir / "dbt_project.yml").is_file():
        return Check("dbt profile", SKIP, "Not checked: there is no dbt_project.yml (see the dbt project check).")
    from sbdk.dbt.profiles import profile_name, profiles_define

    name = profile_name(settings)
    if not profiles_define(settings, name):
        # A dbt project brought as it is (issue #17): sbdk renders its profile into .sbdk/profiles/.
        return Check(
            "dbt profile",
            PASS,
            f"dbt_project.yml asks for the profile {name!r}, which {paths.profiles_dir.name}/profiles.yml does not "
            f"define: sbdk renders it, pointing at {display(paths.duckdb_path, paths.root)}.",
        )
    found = _profile_output(settings)
    if isinstance(found, Check):
        return found
    name, target, output = found
    if output.get("type") != "duckdb":
        return _profile_fail(
            f"Profile {name!r} target {target!r} is of type {output.get('type')!r}, not duckdb.",
            "sbdk builds into DuckDB: set `type: duckdb`.",
        )
    return _check_profile_path(settings, name, target, str(output.get("path", "")))


def _profile_fail(detail: str, fix: str) -> Check:
    return Check("dbt profile", FAIL, detail, fix)


def _profile_output(settings: Settings) -> tuple[str, str, dict[str, Any]] | Check:
    """(profile name, target, that target's output) as dbt would pick them, or the failed Check."""
    import yaml

    project_file = settings.paths.dbt_project_dir / "dbt_project.yml"
    profiles_file = settings.paths.profiles_dir / "profiles.yml"
    if not profiles_file.is_file():
        return _profile_fail(
            f"There is no {profiles_file}.", "Run `sbdk init --force .` to restore it, or fix profiles_dir."
        )
    try:
        name = (yaml.safe_load(project_file.read_text(encoding="utf-8")) or {}).get("profile")
        profiles = yaml.safe_load(profiles_file.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError) as exc:
        return _profile_fail(f"Cannot read the dbt profile: {exc}", f"Fix the YAML of {profiles_file}.")
    profile = profiles.get(name) if isinstance(profiles, dict) else None
    if not isinstance(profile, dict):
        return _profile_fail(
            f"dbt_project.yml uses the profile {name!r}, which {profiles_file} does not define.",
            f"Set `profile:` in dbt_project.yml to a profile of {profiles_file.name} (sbdk's is 'sbdk').",
        )
    target = str(profile.get("target", "default"))
    output = (profile.get("outputs") or {}).get(target)
    if not isinstance(output, dict):
        return _profile_fail(f"Profile {name!r} has no output {target!r}.", f"Add outputs.{target} to {profiles_file}.")
    return str(name), target, output


def _check_profile_path(settings: Settings, name: str, target: str, raw: str) -> Check:
    """The output's `path` leads dbt to the configured DuckDB file, from any working folder."""
    paths = settings.paths
    profiles_file = paths.profiles_dir / "profiles.yml"
    template = "path: \"{{ env_var('DBT_DUCKDB_PATH', '" + display(paths.duckdb_path, paths.root) + "') }}\""
    if "env_var" in raw:
        if "DBT_DUCKDB_PATH" not in raw:
            return _profile_fail(
                f"The profile's path {raw!r} reads another variable than DBT_DUCKDB_PATH, which sbdk sets.",
                f"Use {template}.",
            )
        detail = f"Profile {name!r} ({target}) reads DBT_DUCKDB_PATH, which sbdk sets to {paths.duckdb_path}."
        return Check("dbt profile", PASS, detail)
    if not raw:
        return _profile_fail(f"Profile {name!r} target {target!r} has no path.", f"Add {template}.")
    pointed = user_path(raw)
    # dbt-duckdb resolves a relative path against the working folder; sbdk runs from anywhere.
    resolved = pointed if pointed.is_absolute() else (paths.root / pointed)
    if resolved.resolve() != paths.duckdb_path.resolve():
        return _profile_fail(
            f"The profile points dbt at {raw}, but duckdb_path in the config is {paths.duckdb_path}.",
            f"Use {template} in {profiles_file}.",
        )
    if not pointed.is_absolute():
        return Check(
            "dbt profile",
            WARN,
            f"The profile's relative path {raw!r} is right only when dbt runs from {paths.root}.",
            f"Use {template} in {profiles_file}.",
        )
    return Check("dbt profile", PASS, f"Profile {name!r} ({target}) points at {paths.duckdb_path}.")


def check_database(settings: Settings) -> Check:
    """Present, openable for writing (nobody else holds it), with raw tables loaded."""
    from sbdk.disk import full_disk_error
    from sbdk.errors import LockError
    from sbdk.run import lock
    from sbdk.run.lock import active_run
    from sbdk.stores import duckdb as duckdb_store

    db = settings.paths.duckdb_path
    shown = display(db, settings.paths.root)
    if not db.exists():
        return Check(
            "database",
            WARN,
            f"No database yet at {shown}.",
            "Run `sbdk dev` to create and load it.",
        )
    running = active_run(settings.paths.lock_file)
    if running:
        return Check(
            "database",
            WARN,
            f"{shown} not opened: {lock.describe(running)}.",
            "Run `sbdk doctor` again when it has finished.",
        )
    try:
        # Opening for writing is what `sbdk dev` needs: it also catches a read-only holder. The run
        # lock keeps a run from starting meanwhile, even when the disk is too full to say who holds it.
        lock_file = settings.paths.lock_file
        with lock.run_lock(lock_file, "sbdk doctor", must_record=False), duckdb_store.connect(db) as con:
            tables = duckdb_store.live_tables(con)
    except LockError as exc:
        if active_run(settings.paths.lock_file):
            return Check(
                "database",
                WARN,
                f"{shown} not opened: a run started meanwhile.",
                "Run `sbdk doctor` again when it has finished.",
            )
        return Check("database", FAIL, exc.message, exc.hint)
    except SbdkError as exc:
        error = full_disk_error(db.parent, exc, doing="opening the database") or exc
        return Check("database", FAIL, error.message, error.hint)
    size = human_size(db.stat().st_size)
    if not tables:
        return Check(
            "database",
            WARN,
            f"{shown} ({size}) opens, but no raw tables are loaded.",
            "Run `sbdk dev`.",
        )
    listing = ", ".join(f"{name} {rows:,}" for name, (_schema, rows) in sorted(tables.items()))
    return Check("database", PASS, f"{shown} ({size}) opens for writing; rows: {listing}.")


def check_target(settings: Settings) -> Check:
    """A server target (config `target` other than dev): its driver and adapter, and that it answers."""
    import importlib.util

    from sbdk.stores import store_for

    target = settings.active_target
    name = f"target {target.name}"
    extra = "Spark" if target.type == "spark" else "PostgreSQL"
    if importlib.util.find_spec(f"dbt.adapters.{target.type}") is None:
        return Check(
            name,
            FAIL,
            f"dbt-{target.type} is not installed, so dbt cannot build into {target.describe()}.",
            f"Install the {extra} extra: pip install -e '.[{target.type}]' (or pip install 'sbdk[{target.type}]').",
        )
    if target.type == "spark":
        return _guard(name, lambda: check_spark(settings))

    def run() -> Check:
        # Reads only: the bookkeeping schemas are created by the first run, not by a check.
        rows = store_for(settings).row_counts()
        if not rows:
            return Check(name, WARN, f"{target.describe()} answers, but no raw tables are loaded.", "Run `sbdk dev`.")
        listing = ", ".join(f"{table} {count:,}" for table, count in rows.items())
        return Check(name, PASS, f"{target.describe()} answers; rows: {listing}.")

    return _guard(name, run)


def check_spark(settings: Settings) -> Check:
    """A spark target: Java, pyspark, the lake can be written, the cluster answers, and Spark starts
    with the project's catalog (seconds: a JVM starts)."""
    import platform

    from sbdk.stores import spark

    target = settings.active_target
    name = f"target {target.name}"
    pyspark = spark.require_spark()
    problem = spark.java_problem() or spark.lake_problem(target.lake or "") or spark.master_problem(target)
    if problem is not None:
        return Check(name, FAIL, problem.message, problem.hint)
    session = spark.SparkStore(target, settings).spark()
    jvm = getattr(session, "_jvm", None)  # none in this process with Spark Connect
    java = f", Java {jvm.java.lang.System.getProperty('java.version')}" if jvm is not None else ""
    found = f"Spark {session.version} (pyspark {pyspark.__version__}{java}, Python {platform.python_version()})"
    rows = spark.SparkStore(target, settings).row_counts()
    if not rows:
        return Check(name, WARN, f"{found} starts and {target.lake} can be written, but no raw tables are loaded.",
                     "Run `sbdk dev`.")  # fmt: skip
    listing = ", ".join(f"{table} {count:,}" for table, count in rows.items())
    return Check(name, PASS, f"{found} starts; {target.lake} can be written; rows: {listing}.")


def check_pipelines(settings: Settings) -> Check:
    """The pipelines import, and each CURSOR names a timestamp column of its loaded table.

    Which columns a pipeline yields is known only by generating, which doctor does not do: a table not
    loaded yet has its CURSOR checked by its first load.
    """
    from sbdk.pipelines.discovery import cursor_error, discover

    def run() -> Check:
        specs = discover(settings.paths.pipelines_dir)
        if not specs:
            return Check(
                "pipelines",
                WARN,
                f"No pipelines in {settings.paths.pipelines_dir}.",
                "Add one (see the README), or `sbdk init --force .` for the defaults.",
            )
        detail = f"{len(specs)} import cleanly: " + ", ".join(f"{s.path.name} -> {s.table}" for s in specs) + "."
        cursors = [s for s in specs if s.cursor]
        if not cursors:
            return Check("pipelines", PASS, detail)
        loaded = _loaded_columns(settings, {s.table for s in cursors})
        if loaded is None:
            return Check(
                "pipelines", PASS, f"{detail} CURSOR not checked against the loaded tables now; each load checks it."
            )
        for spec in (s for s in cursors if s.table in loaded):
            error = cursor_error(spec, loaded[spec.table], f"the loaded {spec.table} has the columns")
            if error is not None:
                fix = f"{error.hint} If generate(ctx) yields it now, one `sbdk dev` (without --incremental) loads it."
                return Check("pipelines", FAIL, error.message, fix)
        matched = [f"{s.path.name} ({s.cursor})" for s in cursors if s.table in loaded]
        first = [f"{s.path.name} ({s.cursor})" for s in cursors if s.table not in loaded]
        if matched:
            detail += f" CURSOR is a timestamp column of the loaded table: {', '.join(matched)}."
        if first:
            detail += f" CURSOR checked on the first load: {', '.join(first)}."
        return Check("pipelines", PASS, detail)

    return _guard("pipelines", run)


def _loaded_columns(settings: Settings, tables: set[str]) -> dict[str, dict[str, str]] | None:
    """column -> type of each of `tables` loaded in the DuckDB file, read briefly and read-only; None
    when it cannot be read now (a run or another program holds it, or the target is a server)."""
    from sbdk.run.lock import active_run
    from sbdk.stores import duckdb as duckdb_store

    db = settings.paths.duckdb_path
    if settings.active_target.type != "duckdb":
        return None
    if not db.exists():
        return {}
    if active_run(settings.paths.lock_file):
        return None
    try:
        with duckdb_store.connect(db, read_only=True) as con:
            session = duckdb_store.DuckDBSession(con)
            live = session.live_tables()
            return {table: session.columns(table) for table in sorted(tables & set(live))}
    except SbdkError:
        return None


def check_disk(settings: Settings) -> Check:
    root = settings.paths.root
    db = settings.paths.duckdb_path
    free = shutil.disk_usage(root).free
    size = db.stat().st_size if db.is_file() else 0
    detail = f"{human_size(free)} free in {root}" + (f"; the database is {human_size(size)}" if size else "")
    if free < DISK_FULL_BYTES:
        detail = "The disk is full: " + detail
    if free < max(DISK_FAIL_BYTES, size):
        return Check(
            "disk space",
            FAIL,
            detail + ".",
            "Free some space (or move the project to a disk with room): a run needs room for a second "
            "copy of the raw tables, a backup for a copy of the file.",
        )
    # A full run briefly holds the old and the new raw tables; a backup copies the whole file.
    if free < max(DISK_WARN_BYTES, 3 * size):
        return Check(
            "disk space",
            WARN,
            detail + ": little room for the next run or backup.",
            "Free some space, or remove old backups (`sbdk backup --list`).",
        )
    return Check("disk space", PASS, detail + ".")


def check_webhook_secret(settings: Settings) -> Check:
    secret = settings.webhook_secret
    make = "python -c 'import secrets; print(secrets.token_hex(32))'"
    if not secret:
        return Check(
            "webhook secret",
            WARN,
            "SBDK_WEBHOOK_SECRET is not set: `sbdk webhooks` refuses every delivery (only needed for webhooks).",
            f"Add SBDK_WEBHOOK_SECRET=... to {settings.paths.env_file} (make one with `{make}`).",
        )
    if len(secret) < MIN_SECRET_LENGTH:
        return Check(
            "webhook secret",
            WARN,
            f"SBDK_WEBHOOK_SECRET is set but only {len(secret)} characters long.",
            f"Use at least {MIN_SECRET_LENGTH} random characters (`{make}`).",
        )
    return Check("webhook secret", PASS, f"SBDK_WEBHOOK_SECRET is set ({len(secret)} characters).")
