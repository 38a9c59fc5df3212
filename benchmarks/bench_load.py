"""Generation and loading throughput at 1x, 10x and 100x the default volume (issue #3).

For each scale, in fresh subprocesses (so peak RSS is per measurement):
  generate  - sbdk's generators alone, batches discarded (rows/s)
  load      - sbdk's real load(): generators -> dlt (Arrow path) -> DuckDB, swapped in atomically
  direct    - the physical limit: the same rows as Arrow tables, `CREATE TABLE ... AS SELECT` in DuckDB

Usage: python benchmarks/bench_load.py [--scales 1 10 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap

DEFAULT = {"users": 10_000, "events": 50_000, "orders": 20_000}

COMMON = textwrap.dedent(
    f"""
    import json, resource, sys, time
    from datetime import date
    from pathlib import Path
    scale, workdir = float(sys.argv[1]), Path(sys.argv[2])
    sizes = {{k: int(v * scale) for k, v in {DEFAULT!r}.items()}}
    as_of = date(2026, 11, 1)
    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    """
)

GENERATE = COMMON + textwrap.dedent(
    """
    from sbdk.generators import Window, events, orders, users
    from sbdk.generators._pools import pools
    pools()  # built once per process; reported with the load figures, not here
    started = time.perf_counter()
    signups = users.signups(sizes["users"], 42, as_of)
    window = Window.history(as_of)
    rows = sum(b.num_rows for b in users.generate(sizes["users"], seed=42, as_of=as_of))
    rows += sum(b.num_rows for b in events.generate(sizes["events"], seed=42, signups=signups, window=window))
    rows += sum(b.num_rows for b in orders.generate(sizes["orders"], seed=42, signups=signups, window=window))
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_mb()}))
    """
)

LOAD = COMMON + textwrap.dedent(
    """
    from sbdk.settings import DataVolume, load_settings
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
    print(json.dumps({"rows": report.rows, "seconds": seconds, "generate_and_extract": report.generate_seconds,
                      "dlt_normalize_and_load": report.load_seconds, "swap": report.swap_seconds,
                      "peak_mb": peak_mb()}))
    """
)

DIRECT = COMMON + textwrap.dedent(
    """
    import duckdb, pyarrow as pa
    from sbdk.generators import Window, events, orders, users
    signups = users.signups(sizes["users"], 42, as_of)
    window = Window.history(as_of)
    tables = {
        "raw_users": pa.Table.from_batches(list(users.generate(sizes["users"], seed=42, as_of=as_of))),
        "raw_events": pa.Table.from_batches(list(events.generate(sizes["events"], seed=42, signups=signups, window=window))),
        "raw_orders": pa.Table.from_batches(list(orders.generate(sizes["orders"], seed=42, signups=signups, window=window))),
    }
    con = duckdb.connect(str(workdir / "direct.duckdb"))
    started = time.perf_counter()
    for name, table in tables.items():
        con.register("incoming", table)
        con.execute(f"create or replace table {name} as select * from incoming")
        con.unregister("incoming")
    con.close()
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": sum(t.num_rows for t in tables.values()), "seconds": seconds, "peak_mb": peak_mb()}))
    """
)


def measure(script: str, scale: float) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        out = subprocess.run(
            [sys.executable, "-c", script, str(scale), workdir], capture_output=True, text=True, check=True
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 10, 100])
    args = parser.parse_args()
    print(
        f"{'scale':>5} {'rows':>10} | {'gen s':>7} {'gen rows/s':>12} {'gen MB':>7} | "
        f"{'load s':>7} {'load rows/s':>12} {'load MB':>8} | {'direct s':>8} {'direct MB':>9} | {'load/direct':>11}"
    )
    for scale in args.scales:
        gen, load, direct = measure(GENERATE, scale), measure(LOAD, scale), measure(DIRECT, scale)
        print(
            f"{scale:>5g} {gen['rows']:>10,} | {gen['seconds']:>7.3f} {gen['rows'] / gen['seconds']:>12,.0f} "
            f"{gen['peak_mb']:>7.0f} | {load['seconds']:>7.3f} {load['rows'] / load['seconds']:>12,.0f} "
            f"{load['peak_mb']:>8.0f} | {direct['seconds']:>8.3f} {direct['peak_mb']:>9.0f} | "
            f"{load['seconds'] / direct['seconds']:>10.2f}x"
        )
        print(f"      load detail: {json.dumps({k: round(v, 3) for k, v in load.items() if k != 'rows'})}")


if __name__ == "__main__":
    main()
