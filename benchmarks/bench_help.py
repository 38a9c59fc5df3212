"""How long `sbdk --help` and `sbdk version` take, next to a bare Typer app and an empty Python.

DESIGN.md §7: `sbdk --help` and `sbdk version` should be within a few tens of milliseconds of
`python -c pass`. Whole processes are timed (what a user waits for), each the median of --runs.

    python benchmarks/bench_help.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The same shape as sbdk's app: Rich help, five documented commands, a callback with two options.
BARE_APP = '''
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(rich_markup_mode="rich", no_args_is_help=True, add_completion=False)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show more.")] = False,
    config_file: Annotated[Optional[Path], typer.Option("--config-file", "-c", help="A config file.")] = None,
) -> None:
    """A bare Typer app with [bold]Rich[/] help."""


@app.command()
def init(name: str) -> None:
    """Create a project."""


@app.command()
def dev() -> None:
    """Run the pipeline."""


@app.command()
def start() -> None:
    """Watch and rebuild."""


@app.command()
def webhooks() -> None:
    """Serve webhooks."""


@app.command()
def version() -> None:
    """Print the version."""
    print("0.0.0")


if __name__ == "__main__":
    app()
'''


def median_ms(argv: list[str], runs: int, cwd: Path) -> float:
    # One untimed run first, so every command starts with the same warm file cache.
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per command (default 15)")
    args = parser.parse_args()

    python = sys.executable
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        bare = cwd / "bare_app.py"
        bare.write_text(BARE_APP)
        cases = {
            "python -c pass": [python, "-c", "pass"],
            "bare typer --help": [python, str(bare), "--help"],
            "bare typer version": [python, str(bare), "version"],
            "python -m sbdk --help": [python, "-m", "sbdk", "--help"],
            "python -m sbdk version": [python, "-m", "sbdk", "version"],
        }
        entry_point = Path(python).with_name("sbdk")
        if entry_point.is_file():
            cases["sbdk --help (entry point)"] = [str(entry_point), "--help"]
        results = {label: median_ms(argv, args.runs, cwd) for label, argv in cases.items()}

    baseline = results["python -c pass"]
    print(
        f"median of {args.runs} runs, Python {sys.version.split()[0]}, "
        f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}"
    )
    width = max(map(len, results))
    print(f"{'command':<{width}}  {'ms':>7}  {'vs python -c pass':>18}")
    for label, ms in results.items():
        print(f"{label:<{width}}  {ms:7.1f}  {ms - baseline:+17.1f}ms")
    print(f"ratio sbdk/bare --help:  {results['python -m sbdk --help'] / results['bare typer --help']:.2f}")
    print(f"ratio sbdk/bare version: {results['python -m sbdk version'] / results['bare typer version']:.2f}")


if __name__ == "__main__":
    main()
