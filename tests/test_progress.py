"""What a person watching `sbdk dev` sees: counters that move, dbt's lines once, rows of what was built."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sbdk.run import history

pytestmark = pytest.mark.slow


def sbdk(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBDK")}
    return subprocess.run(
        [sys.executable, "-m", "sbdk", *args], cwd=root, env=env, capture_output=True, text=True, timeout=180
    )


def test_build_shows_n_of_total_and_the_rows_of_the_tables_built(project_copy: Path) -> None:
    result = sbdk(project_copy, "dev", "--dbt-only", "--full")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    counters = [line.split()[0] for line in lines if "/76 " in line]
    assert counters[0] == "1/76" and counters[-1] == "76/76" and len(counters) == 76
    assert "table built" in result.stdout
    built = {line.split()[0]: line.split()[-1] for line in lines if line.split()[:1] in (["user_metrics"], ["funnel"])}
    assert built["user_metrics"] == "200"
    entry = history.last(project_copy / ".sbdk", 1)[0]
    assert entry["model_rows"]["user_metrics"] == 200
    assert set(entry["model_rows"]) == {"user_metrics", "daily_kpis", "funnel"}  # tables; views are not counted


def test_verbose_shows_each_dbt_line_once_and_no_escape_codes_when_piped(project_copy: Path) -> None:
    result = sbdk(project_copy, "-v", "dev", "--dbt-only", "--select", "funnel")
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout
    running = [line for line in result.stdout.splitlines() if "Running with dbt=" in line]
    assert len(running) == 1, running
