"""A full disk, for real: a small tmpfs mounted for each test (root only), the project inside it.

Each full-disk test mounts its own tmpfs and unmounts it in a finalizer; without root, or where
mounting is not allowed, those tests are skipped with the reason. A failed run must end in one
clear error naming the folder and its free space (exit code 7), never a traceback or dlt's log
lines on the terminal, and leave no dlt scratch files behind; doctor must report the disk.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import warnings
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from sbdk.errors import DiskFullError, ExitCode
from sbdk.ops.scaffold import InitOptions, init_project
from sbdk.run import history
from sbdk.run.lock import run_lock
from sbdk.run.plan import RunPlan
from sbdk.run.reporters import Reporter
from sbdk.run.runlog import third_party_logs
from sbdk.run.runner import run
from sbdk.settings import load_settings
from sbdk.stores.duckdb import row_counts

pytestmark = pytest.mark.slow

SMALL = {"users": 200, "events": 1_000}
FREE = re.compile(r"is full \((?P<free>[\d,.]+ (bytes|KB|MB)) free\)")


class Notes(Reporter):
    """A reporter that keeps what it was told to log and to warn about."""

    def __init__(self) -> None:
        self.logged: list[str] = []
        self.warned: list[str] = []

    def log(self, message: str) -> None:
        self.logged.append(message)

    def warn(self, message: str) -> None:
        self.warned.append(message)


def mount_tmpfs(where: Path, size: str, request: pytest.FixtureRequest) -> Path:
    """A real small disk at `where`, unmounted when the test ends; skips the test when it cannot be."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a disk to fill) needs root on Linux")
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")

    def unmount() -> None:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)

    request.addfinalizer(unmount)
    return where


@pytest.fixture
def disk(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A 24 MB disk: an sbdk project and a small load fit, a few hundred thousand rows do not."""
    return mount_tmpfs(tmp_path / "disk", "24m", request)


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill the disk holding `folder` with one file, leaving about `leave` bytes free; returns it."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while (free := shutil.disk_usage(folder).free) > leave:
            try:
                os.write(fd, b"\0" * min(1 << 20, free - leave))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    finally:
        os.close(fd)
    return filler


def make_project(parent: Path) -> Path:
    return init_project(InitOptions(folder=parent / "demo", as_of=date(2026, 11, 1), **SMALL)).root


def load_small(root: Path) -> dict[str, int]:
    """A successful `sbdk dev --pipelines-only`, in this process: the tables a failed run must keep."""
    report = run(load_settings(root / "sbdk_config.json"), RunPlan(dbt=False))
    assert report.success
    return row_counts(root / "data" / "dev.duckdb")


def sbdk(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sbdk", *args], cwd=root, capture_output=True, text=True, timeout=300)


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error of a failed command, asserting that stderr holds it and its fix, and nothing else."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("fix: "), result.stderr
    assert "Free some space on that disk, or move the project" in lines[1]
    return lines[0]


def test_dev_on_a_full_disk_fails_cleanly_keeps_the_tables_and_runs_once_there_is_room(disk: Path) -> None:
    root = make_project(disk)
    before = load_small(root)
    dlt_before = size_of(root / ".sbdk" / "dlt")
    filler = fill(disk, leave=1 << 20)

    result = sbdk(root, "dev", "--scale", "100")

    assert result.returncode == ExitCode.DISK_FULL, result.stdout + result.stderr
    error = one_error(result)
    assert error.startswith(f"error: The disk holding {root}"), error
    assert FREE.search(error), error
    assert size_of(root / ".sbdk" / "dlt") <= dlt_before
    assert row_counts(root / "data" / "dev.duckdb") == before
    (last,) = history.last(root / ".sbdk", 1)
    if last["status"] == "failed":  # when the disk still took its end record
        assert "is full" in last["error"]

    filler.unlink()
    again = sbdk(root, "dev", "--pipelines-only")

    assert again.returncode == 0, again.stdout + again.stderr
    assert row_counts(root / "data" / "dev.duckdb") == before


def test_the_run_lock_on_a_full_disk_is_one_clear_error(disk: Path) -> None:
    root = make_project(disk)
    settings = load_settings(root / "sbdk_config.json")
    fill(disk)

    with pytest.raises(DiskFullError) as caught, run_lock(settings.paths.lock_file, "sbdk dev"):
        pass
    assert caught.value.exit_code == ExitCode.DISK_FULL
    assert caught.value.message == (
        f"The disk holding {root / '.sbdk'} is full (0 bytes free): writing the run lock failed."
    )
    # The same through the runner (run log and history warn, they do not crash) and the CLI.
    notes = Notes()
    with pytest.raises(DiskFullError):
        run(settings, RunPlan(), notes)
    assert any("the run log" in w and "the disk is full (0 bytes free)" in w for w in notes.warned), notes.warned
    result = sbdk(root, "dev")
    assert result.returncode == ExitCode.DISK_FULL
    assert (
        one_error(result)
        == f"error: The disk holding {root / '.sbdk'} is full (0 bytes free): writing the run lock failed."
    )


def test_a_history_record_cut_short_by_a_full_disk_warns_and_loses_no_later_record(disk: Path) -> None:
    state = disk / ".sbdk"
    state.mkdir()
    first = json.dumps({"run_id": "first", "status": "succeeded", "pad": ""})
    # The file ends 50 bytes before the end of its page: the next record fits only in part.
    history.history_path(state).write_text(first[:-2] + "x" * (4096 - 50 - len(first) - 1) + '"}\n')
    filler = fill(disk)
    now = datetime.now(timezone.utc)

    with pytest.raises(OSError) as caught:
        history.started(state, "torn", "sbdk dev", started_at=now, options={})
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(history.history_path(state))

    filler.unlink()
    history.started(state, "next", "sbdk dev", started_at=now, options={})
    assert [r["run_id"] for r in history.read(state)] == ["first", "next"]


def test_doctor_on_a_full_disk_reports_it_without_writing(disk: Path) -> None:
    root = make_project(disk)
    load_small(root)
    lock = root / ".sbdk" / "run.lock"
    fill(disk)

    result = sbdk(root, "doctor", "--json")

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == ""
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["disk space"]["status"] == "fail"
    assert "The disk is full: 0 bytes free in" in checks["disk space"]["detail"]
    assert checks["database"]["status"] == "pass", checks["database"]
    assert checks["dbt project"]["status"] == "skip" and "0 bytes are free" in checks["dbt project"]["detail"]
    assert json.loads(result.stdout)["failed"] == ["disk space"]
    assert lock.read_bytes() == b""


def test_a_database_folder_on_its_own_full_disk_is_named_and_dlt_logs_go_to_the_run_log(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    root = make_project(tmp_path)
    mount_tmpfs(root / "data", "4m", request)
    before = load_small(root)
    dlt_before = size_of(root / ".sbdk" / "dlt")

    result = sbdk(root, "dev", "--pipelines-only", "--scale", "100")

    assert result.returncode == ExitCode.DISK_FULL, result.stdout + result.stderr
    error = one_error(result)
    assert error.startswith(f"error: The disk holding {root / 'data'} is full ("), error
    assert "Your previous tables are unchanged." in result.stderr
    for noise in ("Transient exception", "|dlt|", "[ERROR]", "[WARNING]"):
        assert noise not in result.stdout + result.stderr
    # What dlt logged is in the failed run's log (the project's disk has room for it).
    (log,) = [p.read_text() for p in (root / "logs").glob("*.log") if "status=failed" in p.read_text()]
    assert "dlt error: Transient exception in job" in log, log[-2000:]
    assert size_of(root / ".sbdk" / "dlt") <= dlt_before
    assert row_counts(root / "data" / "dev.duckdb") == before


def test_third_party_logs_and_warnings_reach_the_reporter_and_never_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    dlt_logger = logging.getLogger("dlt")
    handlers, propagate = list(dlt_logger.handlers), dlt_logger.propagate
    notes = Notes()

    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                raise OSError(errno.ENOSPC, "No space left on device")
            except OSError:
                self.handleError(record)  # prints "--- Logging error ---" unless raiseExceptions is off

    dbt_file_log = logging.getLogger("tests.file_log")
    dbt_file_log.addHandler(Broken())
    try:
        with third_party_logs(notes):
            dlt_logger.warning("Failed to create trace dump via pickle")
            try:
                raise OSError(errno.ENOSPC, "No space left on device")
            except OSError:
                dlt_logger.exception("Transient exception in job")
            warnings.warn("a library's warning", UserWarning, stacklevel=1)
            dbt_file_log.error("a line dbt.log could not take")
    finally:
        dbt_file_log.handlers.clear()

    assert notes.logged[0] == "dlt warning: Failed to create trace dump via pickle"
    assert notes.logged[1].startswith("dlt error: Transient exception in job\nTraceback")
    assert notes.logged[2].startswith("UserWarning: a library's warning (")
    assert capfd.readouterr().err == ""
    assert dlt_logger.handlers == handlers and dlt_logger.propagate is propagate
    assert logging.raiseExceptions is True
