"""Builders shared by slow test modules (kept out of conftest so fixtures stay explicit)."""

from __future__ import annotations

import os
import shutil
import tempfile
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


def built_parent(base: Path) -> Path:
    """A new folder `built-XXXXXXXX` in `base`: every such name has the same length (`copy_built`)."""
    return Path(tempfile.mkdtemp(prefix="built-", dir=base))


def copy_built(template: Path, base: Path) -> Path:
    """A copy of `template` (a project `build_project` made in a `built_parent`) in a new `built_parent`
    of `base`, exactly as if it had been built there; the copy never refers to `template`.

    Nothing is left out: a fresh build has dbt's target/ (its partial-parse cache included), logs/,
    .sbdk/dlt/, history.jsonl and the run's events, and tests read them. Modification times are kept
    (copytree copies with copy2), as sbdk orders dbt's artifacts and the runs' files by them.

    A built project names its own folder in a few files, rewritten here to name the copy's:
    - .sbdk/runs/<run_id>.jsonl and logs/*.log: the DuckDB file of the run;
    - dbt/target/run_results.json: the project, profiles and log folders of dbt's invocation;
    - dbt/target/partial_parse.msgpack: the project root of each of the project's own files (dbt keeps
      these entries for the files that did not change), and a hash of the DuckDB file's path
      (profile_hash, fixed at the end);
    - .sbdk/dlt/<pipeline>/load/loaded/*/load_package_state.json and trace.pickle: dlt's job files.
    The others hold none: the DuckDB file, dbt's manifests (target/ and .sbdk/dbt_state/, whose digests
    use relative paths only), the rendered or project profiles.yml (DBT_DUCKDB_PATH is read from the
    environment) and history.jsonl. The two folders' names have the same length, so a path keeps its
    length and the binary files (msgpack, pickle: strings prefixed by their length) stay valid; the
    check at the end fails on any other form of the template's path (a new file sbdk writes, say).
    """
    root = built_parent(base) / template.name
    shutil.copytree(template, root, symlinks=True)
    renames = {
        str(template).encode(): str(root).encode(),
        str(template.resolve()).encode(): str(root.resolve()).encode(),
    }
    assert all(len(old) == len(new) for old, new in renames.items()), renames
    marker = template.parent.name.encode()  # the template's folder, `built-XXXXXXXX`: unique to it
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        data = original = path.read_bytes()
        for old, new in renames.items():
            data = data.replace(old, new)
        if data != original:
            stat = path.stat()
            path.write_bytes(data)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert marker not in data, f"{path} still refers to the template {template.parent}"
    # dbt keeps its partial-parse cache only while the profile's connection info, the DuckDB file's
    # absolute path included, has the hash the cache recorded: give the copy's cache the copy's hash,
    # or its first dbt run would parse everything again ("profile has changed"), unlike a fresh build.
    cache = load_settings(root / "sbdk_config.json").paths.dbt_project_dir / "target" / "partial_parse.msgpack"
    if cache.is_file():
        old, new = _dbt_profile_hash(template).encode(), _dbt_profile_hash(root).encode()
        data = cache.read_bytes()
        assert data.count(old) == 1, "dbt no longer hashes the profile as _dbt_profile_hash does"
        stat = cache.stat()
        cache.write_bytes(data.replace(old, new))
        os.utime(cache, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return root


def _dbt_profile_hash(root: Path) -> str:
    """The profile_hash dbt records in the partial-parse cache of project `root` (as
    dbt.parser.manifest.ManifestLoader.build_manifest_state_check computes it): the sha256 of its
    credentials' connection info, rendered with the environment sbdk gives dbt."""
    import contextvars
    import hashlib
    import pprint

    import yaml
    from dbt.config.profile import Profile
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    from sbdk.dbt.profiles import dbt_environment, dbt_profiles_dir, profile_name

    settings = load_settings(root / "sbdk_config.json")
    name = profile_name(settings)
    raw = yaml.safe_load((dbt_profiles_dir(settings) / "profiles.yml").read_text())[name]

    def credentials():  # in a copy of the context: the invocation context is dbt's, not this process's
        set_invocation_context({**os.environ, **dbt_environment(settings)})
        target, data = Profile.render_profile(raw, name, None, ProfileRenderer({}))
        return Profile._credentials_from_profile(data, name, target)

    info = sorted(contextvars.copy_context().run(credentials).connection_info())
    return hashlib.sha256(pprint.pformat(info).encode()).hexdigest()


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
