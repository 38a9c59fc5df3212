"""Save a leaf mart model, wait for its rebuild: the warm `sbdk start` watcher against a cold command.

DESIGN.md §7 and issue #20: in the watcher, a saved leaf model is rebuilt and tested in at most
0.4 s of run, at least 6x faster than a cold `sbdk dev --dbt-only --select <model>+` started after
the same save. Both are measured here, on the same freshly built project, as the median of --runs
saves each:

- cold: the whole process, from the save to its exit (Python, dbt import, partial parse, build);
- warm, run: the runner's own time for the rebuild (`RunReport.seconds`: lock, history, run log, dbt,
  row counts), in a long-lived Watcher with the default settings of `sbdk start` (its GC thresholds
  included); the target applies to this one;
- warm, from save: from the save to the watcher's "rebuild finished" (what a user waits for: the
  debounce, the plan and the run).

Each save waits for the watcher to be idle again, as a person editing does: the watcher collects the
last rebuild's garbage between rebuilds.

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
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any


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


@dataclass
class Warm:
    """The warm rebuilds' timings, one entry per timed save."""

    from_save: list[float] = field(default_factory=list)
    run: list[float] = field(default_factory=list)
    dbt_parse: list[float] = field(default_factory=list)  # dbt's invoke up to its first node
    dbt_build: list[float] = field(default_factory=list)  # the nodes, dbt's artifacts, releasing the file
    around: list[float] = field(default_factory=list)  # the run's own work around dbt
    nodes: int = 0


def warm_rebuilds(root: Path, model: Path, runs: int, debounce: float) -> Warm:
    from sbdk.run.process import tune_gc
    from sbdk.settings import load_settings
    from sbdk.testing import Recorder
    from sbdk.watch import Watcher

    class Stamped(Recorder):
        """When each event was reported: `sbdk start` shows a rebuild's result at that moment (the
        watcher then collects garbage on its thread, which can keep this one waiting for the GIL)."""

        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def _add(self, kind: str, *payload: Any) -> None:
            self.times.append(time.perf_counter())
            super()._add(kind, *payload)

    tune_gc()  # as `sbdk start` does (sbdk/cli/app.py), like every sbdk command
    recorder = Stamped()
    watcher = Watcher(load_settings(root / "sbdk_config.json"), debounce=debounce, listener=recorder)
    thread = threading.Thread(target=watcher.serve, kwargs={"initial_run": False}, daemon=True)
    thread.start()
    recorder.wait_for("watching")
    timings = Warm()
    try:
        # One untimed save: the process's first rebuild imports dbt and reads the parse cache.
        for n in range(runs + 1):
            start = len(recorder.events)
            save(model, n)
            saved = time.perf_counter()
            index, kind, payload = recorder.wait_for("rebuild_finished", "rebuild_failed", after=start)
            finished = recorder.times[index]
            report = payload[1]
            if kind == "rebuild_failed" or not report.success:
                raise SystemExit(f"the warm rebuild failed: {report!r}")
            if n:
                timings.from_save.append(finished - saved)
                timings.run.append(report.seconds)
                timings.dbt_parse.append(report.dbt.parse_seconds)
                timings.dbt_build.append(report.dbt.seconds - report.dbt.parse_seconds)
                timings.around.append(report.seconds - report.dbt.seconds)
                timings.nodes = len(report.dbt.nodes)
            # Idle again (its garbage collected) before the next save, as between two edits.
            recorder.wait_for("watching", after=index)
    finally:
        watcher.stop()
        thread.join(timeout=120)
    return timings


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
        warm = warm_rebuilds(root, model, args.runs, args.debounce / 1000)

    cold_s = statistics.median(cold_times)
    from_save_s, run_s = statistics.median(warm.from_save), statistics.median(warm.run)
    print(
        f"median of {args.runs} saves of {args.model}.sql ({warm.nodes} dbt nodes: the model and its tests), "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print(f"cold  sbdk dev --dbt-only --select {args.model}+   {cold_s:6.2f} s   ({each(cold_times)})")
    print(f"warm  sbdk start, run seconds                  {run_s:6.2f} s   ({each(warm.run)}; target: at most 0.4 s)")
    for label, times in [
        ("dbt up to its first node (parse)", warm.dbt_parse),
        ("dbt nodes, artifacts, release", warm.dbt_build),
        ("sbdk around dbt (checks, row counts)", warm.around),
    ]:
        print(f"        {label:<38} {statistics.median(times):6.2f} s   ({each(times)})")
    print(
        f"warm  sbdk start, save -> rebuilt              {from_save_s:6.2f} s   "
        f"({each(warm.from_save)}; debounce {args.debounce} ms included)"
    )
    print(f"ratio cold / warm run: {cold_s / run_s:.1f}x  (target: at least 6x)")
    print(f"ratio cold / warm from save: {cold_s / from_save_s:.1f}x")


def each(times: list[float]) -> str:
    return "each: " + ", ".join(f"{t:.2f}" for t in times)


if __name__ == "__main__":
    main()
