"""`sbdk dev --fresh` on DuckDB, PostgreSQL and a Spark lake, at 1x and 10x the default volume, per stage.

For each scale and target, a new project (`sbdk init`, data_volume set to the scale) runs
`sbdk dev --fresh --target <t>` in a subprocess, `--repeat` times; reported are the wall time of the
process and the seconds of each stage as the run history records them (generate, load, dbt_parse,
dbt_build). The targets:
  duckdb   - the project's DuckDB file (target "dev")
  postgres - a throwaway PostgreSQL cluster on a free loopback port (as the `postgres` user when run
             as root), one database per scale; skipped, with a note, without the server binaries
  spark    - a lake target `{"type": "spark", "lake": "data/lake", "master": "local[2]"}`: dlt writes
             Parquet, the raw tables are switched in Spark's catalog (a Derby metastore in .sbdk/spark),
             dbt-spark builds the models in the same process; skipped without pyspark or Java

"spark_start" is the run's first stage on Spark: its JVM starting and the catalog opening (store.check()).
"start+checks" is the wall time minus the stages: starting Python, the target's checks, and exiting. For
DuckDB and Spark, "query cold" is one more process, `sbdk query --target <t> "select count(*) from
raw.raw_users"`: for Spark, a JVM start and the catalog's opening just to read one count.

Each (scale, target) has its own new project, so the first run there parses dbt's project from scratch
and, on Spark, creates the metastore; `--warmup 1` runs once unmeasured first. With `--repeat` above 1
the table shows medians (every run is in the `--json` file).

Usage: python benchmarks/bench_spark.py [--scales 1 10] [--targets duckdb postgres spark] [--repeat N]
                                        [--warmup N] [--json PATH]
A quick check on a small volume: python benchmarks/bench_spark.py --scales 0.05 --targets duckdb spark
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

AS_OF = date(2026, 11, 1)
PASSWORD = "bench-pw"
TARGETS = ("duckdb", "postgres", "spark")
LABELS = {"duckdb": "DuckDB", "postgres": "PostgreSQL", "spark": "Spark"}
# The target names in sbdk_config.json ("dev" is always the project's DuckDB file).
NAMES = {"duckdb": "dev", "postgres": "pg", "spark": "lake"}
STAGES = ("spark_start", "generate", "load", "dbt_parse", "dbt_build")
COUNT_SQL = "select count(*) from raw.raw_users"
MASTER = "local[2]"  # the Spark target's master: two cores, as on the 2-core benchmark machine


def pg_binary(name: str) -> str | None:
    """A PostgreSQL server binary (on PATH, or Debian's /usr/lib/postgresql/<version>/bin)."""
    found = shutil.which(name)
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found or (candidates[-1] if candidates else None)


def unavailable(target: str) -> str | None:
    """Why `target` cannot be benchmarked here, or None."""
    if target == "postgres":
        if not (pg_binary("initdb") and pg_binary("pg_ctl")):
            return "PostgreSQL server binaries (initdb, pg_ctl) not found"
        if importlib.util.find_spec("psycopg2") is None:
            return "psycopg2 is not installed (pip install -e '.[postgres]')"
    if target == "spark":
        if importlib.util.find_spec("pyspark") is None or importlib.util.find_spec("dbt.adapters.spark") is None:
            return "pyspark or dbt-spark is not installed (pip install -e '.[spark]')"
        from sbdk.stores.spark import java_problem

        problem = java_problem()
        if problem is not None:
            return str(problem)
    return None


class Cluster:
    """A throwaway PostgreSQL cluster on a free loopback port, password auth over TCP (as bench_postgres.py)."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="sbdk-bench-spark-pg-"))
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # not as root
        self.pg_ctl = pg_binary("pg_ctl") or "pg_ctl"
        if self.run_as:
            shutil.chown(self.base, "postgres")
        pwfile = self.base / "pw"
        pwfile.write_text(PASSWORD)
        if self.run_as:
            shutil.chown(pwfile, "postgres")
        initdb = [pg_binary("initdb") or "initdb", "-D", str(self.base / "data"), "-U", "postgres"]
        subprocess.run(
            [*self.run_as, *initdb, "--auth-host=scram-sha-256", f"--pwfile={pwfile}"], check=True, capture_output=True
        )
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1"
        start = [self.pg_ctl, "-D", str(self.base / "data"), "-l", str(self.base / "log"), "-w", "start", "-o", options]
        subprocess.run([*self.run_as, *start], check=True, capture_output=True)

    def create_database(self, name: str) -> None:
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", password=PASSWORD, dbname="postgres")
        con.autocommit = True
        try:
            with con.cursor() as cur:
                cur.execute(f'drop database if exists "{name}"')
                cur.execute(f'create database "{name}"')
        finally:
            con.close()

    def remove(self) -> None:
        stop = [self.pg_ctl, "-D", str(self.base / "data"), "-m", "immediate", "stop"]
        subprocess.run([*self.run_as, *stop], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def new_project(workdir: Path, target: str, scale: float, sizes: dict[str, int], cluster: Cluster | None) -> Path:
    """`sbdk init` with the scale's volume, and the target declared in its sbdk_config.json."""
    from sbdk.ops.scaffold import InitOptions, init_project

    name = f"{target}_{scale:g}".replace(".", "_")
    options = InitOptions(folder=workdir / name, as_of=AS_OF, users=sizes["users"], events=sizes["events"])
    root = init_project(options).root
    config = json.loads((root / "sbdk_config.json").read_text())
    if target == "postgres":
        assert cluster is not None
        cluster.create_database(name)
        server = {"host": "127.0.0.1", "port": cluster.port, "database": name, "user": "postgres"}
        config["targets"] = {NAMES[target]: {"type": "postgres", **server}}
    elif target == "spark":
        config["targets"] = {NAMES[target]: {"type": "spark", "lake": "data/lake", "master": MASTER}}
    (root / "sbdk_config.json").write_text(json.dumps(config, indent=2))
    return root


def sbdk(root: Path, target: str, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    """(wall seconds, the finished process) of `sbdk <args>` run in project `root`."""
    env = {**os.environ, "COLUMNS": "120"}
    if target == "postgres":  # only there: the variable alone would declare a (partial) target "pg"
        env[f"SBDK_TARGETS__{NAMES[target].upper()}__PASSWORD"] = PASSWORD
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sbdk", *args], cwd=root, env=env, capture_output=True, text=True)
    return time.perf_counter() - started, done


def failure(what: str, done: subprocess.CompletedProcess[str]) -> str:
    return f"`{what}` exited with {done.returncode}:\n{done.stdout[-2500:]}\n{done.stderr[-2500:]}"


def last_run(root: Path) -> dict[str, Any]:
    """The newest record of the project's run history (.sbdk/history.jsonl, as `sbdk history --json`)."""
    from sbdk.run import history

    runs = history.last(root / ".sbdk", 1)
    return runs[0] if runs else {}


def dev_run(root: Path, target: str) -> dict[str, Any]:
    """One `sbdk dev --fresh --target <t>`: wall seconds, the history's stages, and start+checks."""
    before = last_run(root).get("run_id")
    wall, done = sbdk(root, target, "dev", "--fresh", "--target", NAMES[target])
    entry = last_run(root)
    if entry.get("run_id") == before:  # the run ended before it was recorded (invalid settings, say)
        entry = {}
    stages = {stage: float(entry.get("stages", {}).get(stage, 0.0)) for stage in STAGES}
    run = {
        "wall": round(wall, 3),
        "stages": stages,
        "start_checks": round(wall - sum(stages.values()), 3),
        "history_seconds": entry.get("seconds"),
        "run_id": entry.get("run_id"),
        "status": entry.get("status", "no history record"),
        "error": entry.get("error"),
    }
    if done.returncode != 0:
        run["status"] = run["status"] if run["status"] != "succeeded" else f"exit {done.returncode}"
        run["error"] = failure(f"sbdk dev --fresh --target {NAMES[target]}", done)
    return run


def cold_query(root: Path, target: str, users: int) -> dict[str, Any]:
    """One `sbdk query` process reading the row count of raw.raw_users."""
    wall, done = sbdk(root, target, "query", "--target", NAMES[target], "--format", "json", COUNT_SQL)
    result: dict[str, Any] = {"wall": round(wall, 3), "ok": False}
    if done.returncode != 0:
        result["error"] = failure(f"sbdk query --target {NAMES[target]} {COUNT_SQL!r}", done)
        return result
    try:
        count = next(iter(json.loads(done.stdout.strip().splitlines()[-1])[0].values()))
    except (ValueError, IndexError, StopIteration, AttributeError):
        result["error"] = f"unexpected output of sbdk query: {done.stdout[-500:]!r}"
        return result
    result["ok"] = count == users
    if not result["ok"]:
        result["error"] = f"raw.raw_users has {count} rows, expected {users}"
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(case: dict[str, Any]) -> dict[str, float]:
    """Medians over the runs that succeeded: wall, start+checks, each stage; and the cold query."""
    runs = [r for r in case["runs"] if r["status"] == "succeeded"]
    shown = {"wall": median([r["wall"] for r in runs]), "start_checks": median([r["start_checks"] for r in runs])}
    shown |= {stage: median([r["stages"][stage] for r in runs]) for stage in STAGES}
    queries = [q["wall"] for q in case["queries"] if q["ok"]]
    shown["query"] = median(queries) if queries else float("nan")
    return shown


def cell(value: float, width: int) -> str:
    return f"{'-':>{width}}" if value != value else f"{value:>{width}.2f}"  # NaN: not measured


def report(cases: list[dict[str, Any]]) -> None:
    print(
        f"\n{'target':<10} {'scale':>5} {'users':>9} {'events':>10} | {'wall s':>7} {'start+checks':>12} "
        f"{'spark_start':>11} {'generate':>8} {'load':>7} {'dbt_parse':>9} {'dbt_build':>9} | {'query cold':>10} | status"
    )
    for case in cases:
        s = summarize(case)
        statuses = sorted({r["status"] for r in case["runs"]})
        print(
            f"{LABELS[case['target']]:<10} {case['scale']:>5g} {case['users']:>9,} {case['events']:>10,} | "
            f"{cell(s['wall'], 7)} {cell(s['start_checks'], 12)} {cell(s['spark_start'], 11)} {cell(s['generate'], 8)} {cell(s['load'], 7)} "
            f"{cell(s['dbt_parse'], 9)} {cell(s['dbt_build'], 9)} | {cell(s['query'], 10)} | {', '.join(statuses)}"
        )
    print(
        "\nSeconds (medians over the runs that succeeded). wall: the whole `sbdk dev --fresh` process; stages: from\n"
        "the run history (spark_start: Spark's JVM starting and its catalog opening, before the first stage);\n"
        "start+checks: wall minus the stages (Python start, the target's checks, and exit); query cold: a separate `sbdk query` process counting\n"
        "raw.raw_users (DuckDB and Spark only)."
    )
    baseline = {c["scale"]: summarize(c)["wall"] for c in cases if c["target"] == "duckdb"}
    for case in cases:
        if case["target"] != "spark":
            continue
        s = summarize(case)
        if s["wall"] != s["wall"]:
            print(f"\nWhere Spark's time goes at {case['scale']:g}x: no run succeeded.")
            continue
        parts = {"start+checks": s["start_checks"], "spark_start": s["spark_start"]}
        parts |= {"generate": s["generate"], "load": s["load"]}
        parts |= {"dbt_parse": s["dbt_parse"], "dbt_build": s["dbt_build"]}
        shares = ", ".join(f"{name} {seconds:.1f} s ({seconds / s['wall']:.0%})" for name, seconds in parts.items())
        versus = f"; {s['wall'] / baseline[case['scale']]:.1f}x DuckDB's wall" if case["scale"] in baseline else ""
        print(f"\nWhere Spark's time goes at {case['scale']:g}x: {s['wall']:.1f} s = {shares}{versus}.", end="")
        print(f" A cold `sbdk query`: {s['query']:.1f} s." if s["query"] == s["query"] else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 10], help="x the default data_volume")
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=None, help="default: all available")
    parser.add_argument("--repeat", type=int, default=1, help="measured runs per scale and target")
    parser.add_argument("--warmup", type=int, default=0, help="unmeasured runs first, per scale and target")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write every run here")
    args = parser.parse_args()
    from sbdk.settings.model import DEFAULTS

    targets = []
    for target in args.targets or TARGETS:
        reason = unavailable(target)
        if reason:
            print(f"Skipping {LABELS[target]}: {reason}.", flush=True)
        else:
            targets.append(target)
    if not targets:
        raise SystemExit("No target to benchmark.")

    cases: list[dict[str, Any]] = []
    cluster = Cluster() if "postgres" in targets else None
    try:
        with tempfile.TemporaryDirectory(prefix="sbdk-bench-spark-") as workdir:
            for scale in args.scales:
                sizes = {k: int(v * scale) for k, v in DEFAULTS["data_volume"].items()}
                for target in targets:
                    root = new_project(Path(workdir), target, scale, sizes, cluster)
                    case: dict[str, Any] = {"target": target, "scale": scale, **sizes, "runs": [], "queries": []}
                    for _ in range(args.warmup):
                        dev_run(root, target)
                    for _ in range(args.repeat):
                        run = dev_run(root, target)
                        case["runs"].append(run)
                        if run["status"] != "succeeded":
                            print(f"{LABELS[target]} at {scale:g}x failed: {run['error']}", flush=True)
                            continue
                        if target != "postgres":  # `sbdk query` on a postgres target reads the DuckDB file
                            case["queries"].append(cold_query(root, target, sizes["users"]))
                            if not case["queries"][-1]["ok"]:
                                print(f"query on {LABELS[target]} at {scale:g}x: {case['queries'][-1]['error']}")
                    print(
                        f"{LABELS[target]} at {scale:g}x: wall {[r['wall'] for r in case['runs']]}, "
                        f"query {[q['wall'] for q in case['queries']]}",
                        flush=True,
                    )
                    cases.append(case)
    finally:
        if cluster is not None:
            cluster.remove()
    report(cases)
    if args.json:
        settings = {"as_of": str(AS_OF), "spark_master": MASTER, "repeat": args.repeat, "warmup": args.warmup}
        args.json.write_text(json.dumps({"settings": settings, "cases": cases}, indent=2) + "\n")
        print(f"\nEvery run: {args.json}")
    if any(r["status"] != "succeeded" for c in cases for r in c["runs"]):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
