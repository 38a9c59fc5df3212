"""Save a leaf mart model, wait for its rebuild: the warm `sbdk start` watcher against a cold command.

DESIGN.md §7 and issue #5: in the watcher, a saved model is rebuilt and tested in about the time dbt
needs for that model alone; the target is at least 3x faster than a cold
`sbdk dev --dbt-only --select <model>+` started after the same save. Both are measured here, on
the same freshly built project, as the median of --runs saves each:

- cold: the whole process, from the save to its exit (Python, dbt import, partial parse, build);
- warm: from the save to the watcher's "rebuild finished" (debounce included, so it is what a user
  waits for), in a long-lived Watcher with the default settings of `sbdk start`.

    python benchmarks/bench_watch.py [--runs 5] [--model funnel] [--debounce 250] [--scale 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path


def build(parent: Path, scale: float) -> Path:
    from sbdk.ops.scaffold import InitOptions, init_project
    from sbdk.run.plan import RunPlan
    from sbdk.run.runner import run
    from sbdk.settings import DEFAULTS, load_settings

    sizes = {name: round(n * scale) for name, n in DEFAULTS["data_volume"].items()}
    root = init_project(InitOptions(folder=parent / "bench", as_of=date(2026, 11, 1), **sizes)).root
    report = run(load_settings(root / "sbdk_config.json"), RunPlan(trigger="bench_watch"))
    if not report.success:
        raise SystemExit(f"the initial build failed: {report.dbt.failures if report.dbt else report.error}")
    return root


def save(model: Path, n: int) -> None:
    """A real edit (dbt's partial parsing hashes file contents): a new trailing comment each time."""
    text = model.read_text().split("\n-- bench save")[0]
    model.write_text(f"{text}\n-- bench save {n}\n")


def cold(root: Path, model: Path, runs: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBDK_", "DBT_", "DLT_"))}
    argv = [sys.executable, "-m", "sbdk", "dev", "--dbt-only", "--select", f"{model.stem}+"]
    times = []
    for n in range(runs):
        save(model, 1000 + n)
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return times


def warm(root: Path, model: Path, runs: int, debounce: float) -> tuple[list[float], list[float], int]:
    from sbdk.settings import load_settings
    from sbdk.testing import Recorder
    from sbdk.watch import Watcher

    recorder = Recorder()
    watcher = Watcher(load_settings(root / "sbdk_config.json"), debounce=debounce, listener=recorder)
    thread = threading.Thread(target=watcher.serve, kwargs={"initial_run": False}, daemon=True)
    thread.start()
    recorder.wait_for("watching")
    totals, runs_only, nodes = [], [], 0
    try:
        # One untimed save: the process's first rebuild imports dbt and reads the parse cache.
        for n in range(runs + 1):
            start = len(recorder.events)
            save(model, n)
            saved = time.perf_counter()
            _, kind, payload = recorder.wait_for("rebuild_finished", "rebuild_failed", after=start)
            finished = time.perf_counter()
            if kind == "rebuild_failed" or not payload[1].success:
                raise SystemExit(f"the warm rebuild failed: {payload[1]!r}")
            if n:
                totals.append(finished - saved)
                runs_only.append(payload[1].seconds)
                nodes = len(payload[1].dbt.nodes)
    finally:
        watcher.stop()
        thread.join(timeout=120)
    return totals, runs_only, nodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed saves of each kind (default 5)")
    parser.add_argument("--model", default="funnel", help="a leaf mart model (default funnel)")
    parser.add_argument("--debounce", type=int, default=250, help="watcher debounce in ms (default 250, as sbdk start)")
    parser.add_argument("--scale", type=float, default=1.0, help="data volume, times the default (default 1)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sbdk-bench-watch-") as folder:
        print(f"building a project at {args.scale:g}x the default volume ...", flush=True)
        root = build(Path(folder), args.scale)
        model = next((root / "dbt" / "models").rglob(f"{args.model}.sql"), None)
        if model is None:
            raise SystemExit(f"no model {args.model}.sql in the project")
        cold_times = cold(root, model, args.runs)
        warm_times, warm_runs, nodes = warm(root, model, args.runs, args.debounce / 1000)

    cold_s, warm_s, run_s = (statistics.median(t) for t in (cold_times, warm_times, warm_runs))
    print(
        f"median of {args.runs} saves of {args.model}.sql ({nodes} dbt nodes: the model and its tests), "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print(
        f"cold  sbdk dev --dbt-only --select {args.model}+   {cold_s:6.2f} s   "
        f"(each: {', '.join(f'{t:.2f}' for t in cold_times)})"
    )
    print(
        f"warm  sbdk start, save -> rebuilt              {warm_s:6.2f} s   "
        f"(each: {', '.join(f'{t:.2f}' for t in warm_times)}; debounce {args.debounce} ms included)"
    )
    print(f"      of which the run itself                  {run_s:6.2f} s")
    print(f"ratio cold / warm: {cold_s / warm_s:.1f}x  (target: at least 3x)")


if __name__ == "__main__":
    main()
