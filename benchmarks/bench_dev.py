"""End-to-end `sbdk dev` against a minimal reference, at 1x, 10x and 100x the default volume (issue #4).

sbdk     - `sbdk dev` in a fresh process (dbt's partial parse warm, as for a user) and
           `sbdk dev --dbt-only`; stages from the run history (generate, load, dbt parse, dbt build)
reference - a minimal script on a copy of the same project: the same tables made with numpy/pyarrow,
           inserted straight into DuckDB, then `dbtRunner().invoke(["build"])`
Peak RSS of each process is reported (ru_maxrss of the child).

Each scale gets one warm-up round, then `--runs` rounds alternating sbdk dev, the reference and
`sbdk dev --dbt-only`; medians are reported (this 2-core machine's timings vary by 10-20% run to run).

Usage: python benchmarks/bench_dev.py [--scales 1 10 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date
from pathlib import Path

AS_OF = date(2026, 11, 1)

REFERENCE = textwrap.dedent(
    """
    import json, os, sys, time
    from datetime import date, timedelta
    from pathlib import Path
    started = time.perf_counter()
    root, scale = Path(sys.argv[1]), float(sys.argv[2])
    import duckdb, pyarrow as pa
    from sbdk.generators import HISTORY_DAYS, events, orders, users
    from sbdk.generators.world import Days, World
    from sbdk.settings.model import DEFAULTS, DataProfile
    sizes = {k: int(v * scale) for k, v in DEFAULTS["data_volume"].items()}
    # The days and profile of `sbdk dev`'s full load on the project (sbdk.pipelines.load.history_days).
    as_of, profile = date.fromisoformat(sys.argv[3]), DataProfile.from_dict(DEFAULTS["data_profile"])
    first = as_of - timedelta(days=HISTORY_DAYS)
    days = Days(first, first, as_of - timedelta(days=profile.incremental_days))
    world = World(DEFAULTS["seed"], profile, days, users=sizes["users"], events=sizes["events"])
    tables = {
        "raw_users": pa.Table.from_batches(list(users.generate(world))),
        "raw_events": pa.Table.from_batches(list(events.generate(world))),
        "raw_orders": pa.Table.from_batches(list(orders.generate(world))),
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


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 10, 100])
    parser.add_argument("--runs", type=int, default=5, help="measured rounds per scale, after one warm-up round")
    args = parser.parse_args()
    sbdk = [sys.executable, "-m", "sbdk"]
    from sbdk.ops.scaffold import InitOptions, init_project
    from sbdk.settings.model import DEFAULTS

    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for scale in args.scales:
            sizes = {k: int(v * scale) for k, v in DEFAULTS["data_volume"].items()}
            root = init_project(InitOptions(folder=Path(workdir) / f"s{scale:g}", as_of=AS_OF, **sizes)).root
            ref_root = init_project(InitOptions(folder=Path(workdir) / f"r{scale:g}", as_of=AS_OF, **sizes)).root
            reference = [sys.executable, "-c", REFERENCE, str(ref_root), str(scale), AS_OF.isoformat()]
            # One warm-up round (dbt's first parse, file caches), then rounds that alternate the three
            # commands so that a slow spell of this shared machine hits all of them alike.
            child([*sbdk, "dev"], root)
            child(reference, ref_root)
            m: dict[str, list] = {
                k: [] for k in ("dev", "dev_mb", "stages", "dbt_only", "dbt_only_mb", "ref", "ref_mb", "ref_parts")
            }
            for _ in range(args.runs):
                seconds, mb, _ = child([*sbdk, "dev"], root)
                m["dev"].append(seconds)
                m["dev_mb"].append(mb)
                m["stages"].append(last_run(root)["stages"])
                seconds, mb, out = child(reference, ref_root)
                m["ref"].append(seconds)
                m["ref_mb"].append(mb)
                m["ref_parts"].append(json.loads(out.strip().splitlines()[-1]))
                seconds, mb, _ = child([*sbdk, "dev", "--dbt-only"], root)
                m["dbt_only"].append(seconds)
                m["dbt_only_mb"].append(mb)
            rows.append((scale, m))
            print(
                f"scale {scale:g}: dev {[round(x, 2) for x in m['dev']]} ref {[round(x, 2) for x in m['ref']]} "
                f"--dbt-only {[round(x, 2) for x in m['dbt_only']]} ref dbt {[round(r['dbt'], 2) for r in m['ref_parts']]}",
                flush=True,
            )

    print(
        f"\n{'scale':>5} | {'sbdk dev s':>10} {'MB':>6} {'gen':>5} {'load':>5} {'parse':>5} {'dbt':>5} | "
        f"{'ref s':>6} {'MB':>6} {'ref dbt':>7} | {'dev/ref':>7} | {'--dbt-only':>10} {'MB':>6} {'/ref dbt':>8}"
    )
    for scale, m in rows:
        stage = {
            k: median([s.get(k, 0.0) for s in m["stages"]]) for k in ("generate", "load", "dbt_parse", "dbt_build")
        }
        ref_dbt = [r["dbt"] for r in m["ref_parts"]]
        dev_ratio = median([d / r for d, r in zip(m["dev"], m["ref"])])
        dbt_only_ratio = median([d / r for d, r in zip(m["dbt_only"], ref_dbt)])
        print(
            f"{scale:>5g} | {median(m['dev']):>10.2f} {max(m['dev_mb']):>6.0f} {stage['generate']:>5.2f} {stage['load']:>5.2f} "
            f"{stage['dbt_parse']:>5.2f} {stage['dbt_build']:>5.2f} | {median(m['ref']):>6.2f} {max(m['ref_mb']):>6.0f} "
            f"{median(ref_dbt):>7.2f} | {dev_ratio:>6.2f}x | {median(m['dbt_only']):>10.2f} {max(m['dbt_only_mb']):>6.0f} "
            f"{dbt_only_ratio:>7.2f}x"
        )
    print(
        "\nSeconds are medians over the rounds, whole process (start to exit) unless noted; ratios are medians of the\n"
        "per-round ratios. gen/load/parse/dbt: sbdk's stages from its run history (parse = dbt import + parse, up to\n"
        "the first node; dbt = the build after it). ref dbt: the reference's dbtRunner import + build, in-process.\n"
        "MB: the largest peak RSS of that process over the rounds."
    )


if __name__ == "__main__":
    main()
