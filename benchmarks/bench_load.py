"""Generation and loading throughput at 1x, 10x and 100x the default volume (issues #3 and #16).

For each scale, in fresh subprocesses (so peak RSS is per measurement):
  generate  - sbdk's generators alone over a full load's days (the World, then users, events and
              orders), batches discarded: rows/s and peak RSS; the target is 2 M rows/s at 100x
  load      - sbdk's real load(): generators -> dlt (Arrow path) -> DuckDB, swapped in atomically
  direct    - the physical limit: the same rows as Arrow tables, `CREATE TABLE ... AS SELECT` in DuckDB

Usage: python benchmarks/bench_load.py [--scales 1 10 100] [--modes generate load direct]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap

MODES = ("generate", "load", "direct")
# rows/s that generation should reach at 100x the default volume (issue #16).
GENERATE_TARGET = 2_000_000

COMMON = textwrap.dedent(
    """
    import json, resource, sys, time
    from datetime import date, timedelta
    from pathlib import Path
    from sbdk.settings.model import DEFAULTS
    scale, workdir = float(sys.argv[1]), Path(sys.argv[2])
    sizes = {k: int(v * scale) for k, v in DEFAULTS["data_volume"].items()}
    as_of = date.fromisoformat(DEFAULTS["as_of"])
    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    def world():
        # The days of `sbdk dev`'s full load (sbdk.pipelines.load.history_days), the default profile.
        from sbdk.generators import HISTORY_DAYS
        from sbdk.generators.world import Days, World
        from sbdk.settings.model import DataProfile
        profile = DataProfile.from_dict(DEFAULTS["data_profile"])
        first = as_of - timedelta(days=HISTORY_DAYS)
        days = Days(first, first, as_of - timedelta(days=profile.incremental_days))
        return World(DEFAULTS["seed"], profile, days, users=sizes["users"], events=sizes["events"])
    """
)

GENERATE = COMMON + textwrap.dedent(
    """
    from sbdk.generators import events, orders, users
    from sbdk.generators._pools import pools
    pools()  # built once per process; reported with the load figures, not here
    started = time.perf_counter()
    w = world()
    _ = (w.new_signups, w.sessions)  # who signs up when, and every session's story, time and user
    detail = {"world s": round(time.perf_counter() - started, 3)}
    rows = 0
    for name, module in (("users", users), ("events", events), ("orders", orders)):
        at = time.perf_counter()
        count = sum(b.num_rows for b in module.generate(w))
        detail[f"{name} s"], detail[name] = round(time.perf_counter() - at, 3), count
        rows += count
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_mb(), "detail": detail}))
    """
)

LOAD = COMMON + textwrap.dedent(
    """
    from sbdk.settings import load_settings
    from sbdk.pipelines.load import load
    from sbdk.run.context import RunContext
    from sbdk.run.plan import RunPlan
    from sbdk.ops.scaffold import InitOptions, init_project
    root = init_project(InitOptions(folder=workdir / "proj", as_of=as_of, **sizes)).root
    settings = load_settings(root / "sbdk_config.json")
    import dlt  # import cost is not loading cost
    started = time.perf_counter()
    report = load(RunContext.of(settings, RunPlan(dbt=False)))
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": report.rows, "seconds": seconds, "peak_mb": peak_mb(),
                      "detail": {"generate_and_extract": round(report.generate_seconds, 3),
                                 "dlt_normalize_and_load": round(report.load_seconds, 3),
                                 "swap": round(report.swap_seconds, 3)}}))
    """
)

DIRECT = COMMON + textwrap.dedent(
    """
    import duckdb, pyarrow as pa
    from sbdk.generators import events, orders, users
    w = world()
    tables = {
        "raw_users": pa.Table.from_batches(list(users.generate(w))),
        "raw_events": pa.Table.from_batches(list(events.generate(w))),
        "raw_orders": pa.Table.from_batches(list(orders.generate(w))),
    }
    con = duckdb.connect(str(workdir / "direct.duckdb"))
    started = time.perf_counter()
    for name, table in tables.items():
        con.register("incoming", table)
        con.execute(f"create or replace table {name} as select * from incoming")
        con.unregister("incoming")
    con.close()
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": sum(t.num_rows for t in tables.values()), "seconds": seconds, "peak_mb": peak_mb(),
                      "detail": {}}))
    """
)

SCRIPTS = {"generate": GENERATE, "load": LOAD, "direct": DIRECT}


def measure(script: str, scale: float) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        out = subprocess.run(
            [sys.executable, "-c", script, str(scale), workdir], capture_output=True, text=True, check=True
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 10, 100])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = parser.parse_args()
    print(f"{'scale':>5} {'mode':>8} {'rows':>11} {'seconds':>8} {'rows/s':>11} {'peak MB':>8}  detail")
    for scale in args.scales:
        results = {mode: measure(SCRIPTS[mode], scale) for mode in args.modes}
        for mode, m in results.items():
            print(
                f"{scale:>5g} {mode:>8} {m['rows']:>11,} {m['seconds']:>8.3f} {m['rows'] / m['seconds']:>11,.0f} "
                f"{m['peak_mb']:>8.0f}  {json.dumps(m['detail'])}",
                flush=True,
            )
        if "load" in results and "direct" in results:
            print(f"{'':>5} load/direct {results['load']['seconds'] / results['direct']['seconds']:.2f}x")
        if "generate" in results and scale == 100:
            rate = results["generate"]["rows"] / results["generate"]["seconds"]
            verdict = "meets" if rate >= GENERATE_TARGET else "misses"
            print(
                f"{'':>5} generate at 100x: {rate:,.0f} rows/s, peak RSS {results['generate']['peak_mb']:,.0f} MB "
                f"({verdict} the target of {GENERATE_TARGET:,} rows/s)"
            )


if __name__ == "__main__":
    main()
