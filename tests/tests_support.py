"""Builders shared by slow test modules (kept out of conftest so fixtures stay explicit)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from sbdk.ops.scaffold import InitOptions, init_project
from sbdk.run.runner import RunPlan, run
from sbdk.settings import load_settings

SMALL = {"users": 200, "events": 1_000}


def build_project(parent: Path, name: str = "demo") -> Path:
    """`sbdk init` + a full `sbdk dev`, asserting it succeeded."""
    root = init_project(InitOptions(folder=parent / name, as_of=date(2026, 11, 1), **SMALL)).root
    report = run(load_settings(root / "sbdk_config.json"), RunPlan())
    assert report.success, [(n.name, n.message) for n in report.dbt.failures]
    return root


@contextmanager
def serve_project(root: Path, before_stop: Callable[[], None] | None = None) -> Iterator[str]:
    """The sbdk server of project `root` under a real uvicorn on a free loopback port, in a thread;
    yields its base URL. `before_stop` runs first when the block ends (to release a held run)."""
    from sbdk.server import create_app
    from sbdk.server.serving import bind, make_server, url

    sock = bind("127.0.0.1", 0)
    server = make_server(create_app(load_settings(root / "sbdk_config.json")))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield url(sock)
    finally:
        if before_stop is not None:
            before_stop()
        server.should_exit = True
        thread.join(120)
        sock.close()


def server_db(root: Path, sql: str) -> list[tuple]:
    """Read the server's database, `.sbdk/server.duckdb` (after the server has stopped)."""
    import duckdb

    con = duckdb.connect(str(root / ".sbdk" / "server.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


PG_PASSWORD = "sbdk-test-pw"


def pg_binary(name: str) -> str | None:
    """A PostgreSQL server binary (on PATH, or Debian's /usr/lib/postgresql/<version>/bin)."""
    import glob
    import shutil

    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresCluster:
    """A throwaway PostgreSQL cluster on a free loopback port, password auth over TCP (user postgres,
    PG_PASSWORD). Created stopped; `start()` / `stop()`; `remove()` stops it and deletes its folder.
    None from `create()` when the server binaries are missing."""

    def __init__(self, base: Path, run_as: list[str], pg_ctl: str) -> None:
        self.base, self.run_as, self.pg_ctl = base, run_as, pg_ctl
        self.port = free_port()

    @classmethod
    def create(cls, prefix: str = "sbdk-pg-") -> PostgresCluster | None:
        import os
        import shutil
        import subprocess
        import tempfile

        initdb, pg_ctl = pg_binary("initdb"), pg_binary("pg_ctl")
        if not (initdb and pg_ctl):
            return None
        # Not under pytest's tmp folder: that is private to root, and the server runs as postgres.
        base = Path(tempfile.mkdtemp(prefix=prefix))
        run_as: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            run_as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(base, "postgres")
        pwfile = base / "pw"
        pwfile.write_text(PG_PASSWORD)
        if run_as:
            shutil.chown(pwfile, "postgres")
        subprocess.run(
            [*run_as, initdb, "-D", str(base / "data"), "-U", "postgres", "--auth-host=scram-sha-256",
             "--auth-local=trust", f"--pwfile={pwfile}"],
            check=True, capture_output=True,
        )  # fmt: skip
        return cls(base, run_as, pg_ctl)

    def start(self) -> None:
        import subprocess

        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*self.run_as, self.pg_ctl, "-D", str(self.base / "data"), "-o", options, "-l", str(self.base / "log"),
             "-w", "start"],
            check=True, capture_output=True,
        )  # fmt: skip

    def stop(self) -> None:
        import subprocess

        subprocess.run(
            [*self.run_as, self.pg_ctl, "-D", str(self.base / "data"), "-m", "immediate", "stop"], capture_output=True
        )

    def connect(self, database: str = "postgres"):
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", password=PG_PASSWORD, dbname=database)
        con.autocommit = True
        return con

    def remove(self) -> None:
        import shutil

        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
