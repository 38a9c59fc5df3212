"""Synthesis and `sbdk dev` on a dbt project brought with `sbdk init --from-dbt` (issue #17).

The project is benchmarks/dbt_projects/shop6: six source tables (schema `shop`, no columns declared),
jaffle-style staging views, four marts and 26 data tests. At 1x every source table has 10,000 rows;
`--scale S` multiplies them.

inference - `sbdk init sandbox --from-dbt <copy of shop6> --no-input` in a fresh process (it runs
            `dbt compile` and infers synth.yml), once
synthesis - in this process, the Arrow batches of every source table, as the generated pipelines make
            them (sbdk.synth.values.table over synth.yml's specs, with runtime.rows' parents, seed and
            as_of), every batch consumed; imports and the reading of synth.yml are not timed
sbdk dev  - `sbdk dev --scale S --fresh` in a fresh process: generate, load with dlt, dbt parse + build
dbt build - plain `dbt build` in a fresh process on the very same DuckDB file right after, with the
            profile sbdk renders (.sbdk/profiles/dev) and DBT_DUCKDB_PATH pointing at the sandbox's
            data/dev.duckdb (the rendered profile reads the path from there, see sbdk/dbt/profiles.py)

Ratios: sbdk dev / dbt build, and, fairer, (sbdk dev - its generate and load stages) / dbt build, the
overhead sbdk adds around dbt. Targets: synthesis under 2 s at 1x; sbdk dev within 1.3x of dbt build.
Each scale gets one warm-up round (dbt's partial parse, file caches), then `--runs` measured rounds;
medians are reported (this 2-core machine's timings vary by 10-20% run to run).

Everything runs with this interpreter (sbdk and dbt from its environment): run it with the Python of
the install you want to measure. A user's `pip install -e .` has no pandas; an environment with the
spark or test extras has it (pyspark's connect extra), and there pyarrow imports it on its first
`pa.array()` of the process (about 0.27 s of every `sbdk dev`; plain `dbt build` never imports it).

Usage: python benchmarks/bench_synth.py --scales 1 10 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent / "dbt_projects" / "shop6"
SYNTH_TARGET = 2.0  # seconds, at 1x
DEV_TARGET = 1.3  # sbdk dev over plain dbt build


def child(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """(wall seconds, stdout) of a command run to its end; exits with its output if it fails."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.run(
            cmd, cwd=cwd, stdout=out, stderr=err, env={**os.environ, "COLUMNS": "120", **(env or {})}
        )
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout = out.read()
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{stdout[-3000:]}\n{err.read()[-3000:]}")
    return seconds, stdout


def last_run(root: Path) -> dict:
    lines = (root / ".sbdk" / "history.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


def synthesize(root: Path, scale: float) -> tuple[float, int]:
    """(seconds, rows): every source table's batches at `scale`, as sbdk.synth.runtime.rows makes them."""
    from sbdk.settings import load_settings
    from sbdk.synth import runtime, values

    settings = load_settings(root / "sbdk_config.json")
    tables = runtime.specs(root / "synth.yml")

    def count(table) -> int:  # runtime._rows
        return max(0, round(table.rows * scale))

    parents = {f"{t.key}.{c.name}": (c, count(t)) for t in tables.values() for c in t.columns}
    rows = 0
    started = time.perf_counter()
    for table in tables.values():
        for batch in values.table(table, count(table), seed=settings.seed, as_of=settings.as_of, parents=parents):
            rows += batch.num_rows
    return time.perf_counter() - started, rows


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 10])
    parser.add_argument("--runs", type=int, default=3, help="measured rounds per scale, after one warm-up round")
    args = parser.parse_args()
    sbdk = [sys.executable, "-m", "sbdk"]
    dbt = str(Path(sys.executable).with_name("dbt"))

    results = []
    cold: float | None = None
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        project = work / "shop6"
        shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
        inference, _ = child([*sbdk, "init", "sandbox", "--from-dbt", str(project), "--no-input"], work)
        root = work / "sandbox"
        print(f"inference (sbdk init --from-dbt, runs dbt compile): {inference:.2f} s", flush=True)
        plain = [
            dbt, "build", "--project-dir", str(project), "--profiles-dir", str(root / ".sbdk" / "profiles" / "dev"),
        ]  # fmt: skip
        # What sbdk sets around its own dbt calls (sbdk.dbt.profiles.dbt_environment), so both parse alike.
        plain_env = {
            "DBT_DUCKDB_PATH": str(root / "data" / "dev.duckdb"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_VERSION_CHECK": "false",
        }
        for scale in args.scales:
            dev = [*sbdk, "dev", "--scale", f"{scale:g}", "--fresh"]
            # Warm-up: lazily built generator tables, numpy's first calls. The first call of the process is
            # what a `sbdk dev` process pays once: reported as "cold".
            seconds, _ = synthesize(root, scale)
            cold = seconds if cold is None else cold
            child(dev, root)
            child(plain, root, plain_env)
            times: dict[str, list[float]] = {"synthesis": [], "dev": [], "dbt": [], "overhead": []}
            stages: list[dict] = []
            rows = 0
            for _ in range(args.runs):
                seconds, rows = synthesize(root, scale)
                times["synthesis"].append(seconds)
                seconds, _ = child(dev, root)
                run = last_run(root)
                if run.get("status") != "succeeded":
                    raise SystemExit(f"sbdk dev --scale {scale:g}: {run.get('status')}")
                times["dev"].append(seconds)
                stages.append(run["stages"])
                seconds, _ = child(plain, root, plain_env)
                times["dbt"].append(seconds)
                times["overhead"].append(
                    times["dev"][-1] - run["stages"].get("generate", 0.0) - run["stages"].get("load", 0.0)
                )
            ratios = [d / b for d, b in zip(times["dev"], times["dbt"])]
            overheads = [o / b for o, b in zip(times["overhead"], times["dbt"])]
            shown = {k: round(median([s.get(k, 0.0) for s in stages]), 2) for k in stages[0]}
            results.append(
                (scale, rows, {k: median(v) for k, v in times.items()}, median(ratios), median(overheads), shown)
            )
            print(
                f"scale {scale:g}: " + "; ".join(f"{k} {[round(x, 2) for x in v]}" for k, v in times.items()),
                flush=True,
            )

    print(
        f"\n{'scale':>5} {'rows':>9} | {'synthesis s':>11} {'sbdk dev s':>10} {'dbt build s':>11} | "
        f"{'dev/dbt':>7} {'(dev-gen-load)/dbt':>18} | targets"
    )
    for scale, rows, m, ratio, overhead, shown in results:
        verdicts = []
        if scale == 1:
            verdicts.append(f"synthesis < {SYNTH_TARGET:g} s: {'met' if m['synthesis'] < SYNTH_TARGET else 'NOT met'}")
        verdicts.append(f"dev <= {DEV_TARGET}x: {'met' if ratio <= DEV_TARGET else 'NOT met'}")
        verdicts.append(f"overhead <= {DEV_TARGET}x: {'met' if overhead <= DEV_TARGET else 'NOT met'}")
        print(
            f"{scale:>5g} {rows:>9,} | {m['synthesis']:>11.2f} {m['dev']:>10.2f} {m['dbt']:>11.2f} | "
            f"{ratio:>6.2f}x {overhead:>17.2f}x | {'; '.join(verdicts)}"
        )
        print(f"{'':>15} sbdk dev stages: {shown}")
    print(
        f"\ninference: {inference:.2f} s (once). synthesis at {args.scales[0]:g}x as the first call in this process\n"
        f"(cold: generator tables built lazily): {cold:.2f} s; the synthesis figures above are warm.\n"
        f"Seconds are medians over {args.runs} round(s); ratios are medians of the per-round ratios. sbdk dev and\n"
        "dbt build are whole processes, start to exit; synthesis is in-process, all rows of the six tables\n"
        "(rows above). dev-gen-load: sbdk dev less its generate and load stages."
    )


if __name__ == "__main__":
    main()
