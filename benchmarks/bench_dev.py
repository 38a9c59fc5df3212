"""End-to-end `sbdk dev` against a minimal reference, at 1x, 10x and 100x the default volume (issue #4).

sbdk     - `sbdk dev` in a fresh process (a second run, so dbt's partial parse is warm, as for a user)
           and `sbdk dev --dbt-only`; stages from the run history (generate, load, dbt parse, dbt build)
reference - a minimal script on a copy of the same project: the same tables made with numpy/pyarrow,
           inserted straight into DuckDB, then `dbtRunner().invoke(["build"])` (also a second run)
Peak RSS of each process is reported (ru_maxrss of the child).

Usage: python benchmarks/bench_dev.py [--scales 1 10 100] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date
from pathlib import Path

REFERENCE = textwrap.dedent(
    """
    import json, os, sys, time
    from datetime import date
    from pathlib import Path
    started = time.perf_counter()
    root, scale = Path(sys.argv[1]), float(sys.argv[2])
    import duckdb, pyarrow as pa
    from sbdk.generators import HISTORY_DAYS, MICROS_PER_DAY, end_micros, events, orders, users
    sizes = {k: int(v * scale) for k, v in {"users": 10_000, "events": 50_000, "orders": 20_000}.items()}
    as_of = date(2026, 11, 1)
    signups = users.signups(sizes["users"], 42, as_of)
    window = events.Window(end_micros(as_of) - HISTORY_DAYS * MICROS_PER_DAY, end_micros(as_of))
    tables = {
        "raw_users": pa.Table.from_batches(list(users.generate(sizes["users"], seed=42, as_of=as_of))),
        "raw_events": pa.Table.from_batches(list(events.generate(sizes["events"], seed=42, signups=signups, window=window))),
        "raw_orders": pa.Table.from_batches(list(orders.generate(sizes["orders"], seed=42, signups=signups, window=window))),
    }
    generated = time.perf_counter()
    db = root / "data" / "reference.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create schema if not exists raw")
    for name, table in tables.items():
        con.register("incoming", table)
        con.execute(f"create or replace table raw.{name} as select * from incoming")
        con.unregister("incoming")
    con.close()
    del tables
    loaded = time.perf_counter()
    os.environ["DBT_DUCKDB_PATH"] = str(db)
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    from dbt.cli.main import dbtRunner
    result = dbtRunner().invoke(["build", "--project-dir", str(root / "dbt"), "--profiles-dir", str(root / "profiles"),
                                 "--log-level", "none"])
    done = time.perf_counter()
    print(json.dumps({"ok": result.success, "generate": generated - started, "load": loaded - generated,
                      "dbt": done - loaded, "total": done - started}))
    """
)


def child(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB of this child alone, stdout)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, env={**os.environ, "COLUMNS": "120"})
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read()
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{stdout[-3000:]}\n{err.read()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, stdout


def last_run(root: Path) -> dict:
    lines = (root / ".sbdk" / "history.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 10, 100])
    parser.add_argument("--runs", type=int, default=2, help="runs per measurement; the last one is reported")
    args = parser.parse_args()
    sbdk = [sys.executable, "-m", "sbdk"]
    from sbdk.scaffold import InitOptions, init_project

    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for scale in args.scales:
            sizes = {k: int(v * scale) for k, v in {"users": 10_000, "events": 50_000, "orders": 20_000}.items()}
            root = init_project(InitOptions(folder=Path(workdir) / f"s{scale:g}", as_of=date(2026, 11, 1), **sizes)).root
            ref_root = init_project(InitOptions(folder=Path(workdir) / f"r{scale:g}", as_of=date(2026, 11, 1), **sizes)).root
            for _ in range(args.runs):
                dev_s, dev_mb, _ = child([*sbdk, "dev"], root)
            dev = last_run(root)
            for _ in range(args.runs):
                dbt_only_s, _, _ = child([*sbdk, "dev", "--dbt-only"], root)
            for _ in range(args.runs):
                ref_s, ref_mb, out = child([sys.executable, "-c", REFERENCE, str(ref_root), str(scale)], ref_root)
            ref = json.loads(out.strip().splitlines()[-1])
            rows.append((scale, dev_s, dev_mb, dev, dbt_only_s, ref_s, ref_mb, ref))

    print(f"{'scale':>5} | {'sbdk dev s':>10} {'MB':>6} {'gen':>6} {'load':>6} {'parse':>6} {'dbt':>6} | "
          f"{'ref s':>6} {'MB':>6} {'ref dbt':>7} | {'dev/ref':>7} | {'--dbt-only':>10} {'/ref dbt':>8}")
    for scale, dev_s, dev_mb, dev, dbt_only_s, ref_s, ref_mb, ref in rows:
        stages = dev["stages"]
        print(
            f"{scale:>5g} | {dev_s:>10.2f} {dev_mb:>6.0f} {stages.get('generate', 0):>6.2f} {stages.get('load', 0):>6.2f} "
            f"{stages.get('dbt_parse', 0):>6.2f} {stages.get('dbt', 0):>6.2f} | {ref_s:>6.2f} {ref_mb:>6.0f} {ref['dbt']:>7.2f} | "
            f"{dev_s / ref_s:>6.2f}x | {dbt_only_s:>10.2f} {dbt_only_s / (ref['dbt'] + 0.0):>7.2f}x"
        )
    print("\nWhole-process seconds; stage seconds from the run history; MB = peak RSS of that process.")


if __name__ == "__main__":
    main()
