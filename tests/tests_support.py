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

SMALL = {"users": 200, "events": 1_000, "orders": 400}


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
