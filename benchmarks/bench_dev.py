"""End-to-end `sbdk dev` against a minimal reference, at 1x and 100x the default volume (issues #4, #20).

sbdk     - `sbdk dev` in a fresh process (dbt's partial parse warm, as for a user) in four cases: --fresh
           (everything again), no change, one leaf model edited, one pipeline edited; stages from the run
           history (generate, load, dbt parse, dbt build)
reference - a minimal script on a copy of the same project: the same tables made with numpy/pyarrow,
           inserted straight into DuckDB, then `dbtRunner().invoke(["build"])`
Peak RSS of each process is reported (ru_maxrss of the child).

Each scale gets one warm-up round, then `--runs` rounds of the reference and each case; medians are
reported (this 2-core machine's timings vary by 10-20% run to run).

Usage: python benchmarks/bench_dev.py [--scales 1 100] [--runs 5] [--cases "no change" "leaf edited"]
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


CASES = ("fresh", "no change", "leaf edited", "pipeline edited")
# Issue #20's targets: each case's time over the reference's, at 1x (and at 100x for "no change").
TARGETS = {"no change": (0.4, 0.1), "leaf edited": (0.6, 0.6), "pipeline edited": (0.8, 0.8)}


def touch(path: Path, round_number: int, comment: str) -> None:
    """A change that alters the file's bytes (a new comment each round), not its meaning."""
    with path.open("a") as f:
        f.write(f"\n{comment} bench round {round_number}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 100])
    parser.add_argument("--runs", type=int, default=5, help="measured rounds per scale, after one warm-up round")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
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
            # One warm-up round (dbt's first parse, file caches), then rounds that alternate the commands
            # so that a slow spell of this shared machine hits all of them alike.
            child([*sbdk, "dev"], root)
            child(reference, ref_root)
            times: dict[str, list[float]] = {case: [] for case in (*args.cases, "reference")}
            peaks: dict[str, list[float]] = {case: [] for case in times}
            stages: dict[str, list[dict]] = {case: [] for case in args.cases}
            for number in range(args.runs):
                seconds, mb, _ = child(reference, ref_root)
                times["reference"].append(seconds)
                peaks["reference"].append(mb)
                for case in args.cases:
                    command = [*sbdk, "dev"]
                    if case == "fresh":
                        command.append("--fresh")
                    elif case == "leaf edited":
                        touch(root / "dbt" / "models" / "marts" / "funnel.sql", number, "--")
                    elif case == "pipeline edited":
                        touch(root / "pipelines" / "events.py", number, "#")
                    seconds, mb, _ = child(command, root)
                    times[case].append(seconds)
                    peaks[case].append(mb)
                    stages[case].append(last_run(root)["stages"])
            rows.append((scale, times, peaks, stages))
            print(
                f"scale {scale:g}: " + "; ".join(f"{k} {[round(x, 2) for x in v]}" for k, v in times.items()),
                flush=True,
            )

    print(f"\n{'scale':>5} | {'case':<16} {'seconds':>8} {'peak MB':>8} | {'x reference':>11} {'target':>7} | stages")
    for scale, times, peaks, stages in rows:
        print(f"{scale:>5g} | {'reference':<16} {median(times['reference']):>8.2f} {max(peaks['reference']):>8.0f} |")
        for case in args.cases:
            ratio = median([t / r for t, r in zip(times[case], times["reference"])])
            target = TARGETS.get(case, (None, None))[0 if scale < 10 else 1]
            shown = (
                {k: round(median([s.get(k, 0.0) for s in stages[case]]), 2) for k in stages[case][0]}
                if stages[case][0]
                else {}
            )
            print(
                f"{'':>5} | {case:<16} {median(times[case]):>8.2f} {max(peaks[case]):>8.0f} | {ratio:>10.2f}x "
                f"{('<= ' + format(target, 'g')) if target else '':>7} | {shown or 'nothing run'}"
            )
    print(
        "\nSeconds are medians over the rounds, whole process (start to exit); ratios are medians of the per-round\n"
        "ratios to the reference of the same round (a script that regenerates everything, inserts it into DuckDB and\n"
        "runs `dbt build`). fresh: `sbdk dev --fresh`; no change: `sbdk dev` again; leaf edited: a comment added to\n"
        "the funnel mart, then `sbdk dev`; pipeline edited: a comment added to pipelines/events.py, then `sbdk dev`.\n"
        "stages: sbdk's stages from its run history. peak MB: the largest peak RSS of that process over the rounds."
    )


if __name__ == "__main__":
    main()
