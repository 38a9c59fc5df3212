"""`sbdk dev` on DuckDB and on a local PostgreSQL, at 1x and 10x the default volume, per stage (issue #9).

Starts a throwaway PostgreSQL cluster on a free loopback port (as the `postgres` user when run as
root), runs `sbdk dev` twice per target and volume (the second run is reported: dbt's partial parse
warm, as for a user) and prints the stages recorded in the run history. Stops the cluster afterwards.

Usage: python benchmarks/bench_postgres.py [--scales 1 10]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

PASSWORD = "bench-pw"


def binary(name: str) -> str:
    found = shutil.which(name) or (sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [None])[-1]
    if not found:
        raise SystemExit(f"{name} not found: install the postgresql server package")
    return found


def start_cluster(base: Path) -> tuple[int, list[str]]:
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if run_as:
        shutil.chown(base, "postgres")
    (base / "pw").write_text(PASSWORD)
    if run_as:
        shutil.chown(base / "pw", "postgres")
    subprocess.run(
        [
            *run_as,
            binary("initdb"),
            "-D",
            str(base / "data"),
            "-U",
            "postgres",
            "--auth-host=scram-sha-256",
            f"--pwfile={base / 'pw'}",
        ],
        check=True,
        capture_output=True,
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    subprocess.run(
        [
            *run_as,
            binary("pg_ctl"),
            "-D",
            str(base / "data"),
            "-l",
            str(base / "log"),
            "-w",
            "start",
            "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return port, run_as


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 10])
    args = parser.parse_args()
    from sbdk.ops.scaffold import InitOptions, init_project

    base = Path(tempfile.mkdtemp(prefix="sbdk-bench-pg-"))
    port, run_as = start_cluster(base)
    import psycopg2

    admin = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", password=PASSWORD, dbname="postgres")
    admin.autocommit = True
    rows = []
    try:
        for scale in args.scales:
            sizes = {k: int(v * scale) for k, v in {"users": 10_000, "events": 100_000}.items()}
            root = init_project(InitOptions(folder=base / f"s{scale:g}", as_of=date(2026, 11, 1), **sizes)).root
            name = f"bench_{scale:g}".replace(".", "_")
            with admin.cursor() as cur:
                cur.execute(f"create database {name}")
            config = json.loads((root / "sbdk_config.json").read_text())
            config["targets"] = {
                "prod": {"type": "postgres", "host": "127.0.0.1", "port": port, "database": name, "user": "postgres"}
            }
            (root / "sbdk_config.json").write_text(json.dumps(config))
            env = {**os.environ, "SBDK_TARGETS__PROD__PASSWORD": PASSWORD}
            for target in ("dev", "prod"):
                for _ in range(2):
                    started = time.perf_counter()
                    subprocess.run(
                        [sys.executable, "-m", "sbdk", "dev", "--target", target],
                        cwd=root,
                        env=env,
                        check=True,
                        capture_output=True,
                    )
                    wall = time.perf_counter() - started
                last = json.loads((root / ".sbdk" / "history.jsonl").read_text().splitlines()[-1])
                rows.append((scale, target, wall, last["stages"], last["status"]))
    finally:
        admin.close()
        subprocess.run(
            [*run_as, binary("pg_ctl"), "-D", str(base / "data"), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(base, ignore_errors=True)
    print(f"{'scale':>5} {'target':>10} | {'total s':>7} {'generate':>8} {'load':>6} {'dbt':>6} | status")
    for scale, target, wall, stages, status in rows:
        label = "DuckDB" if target == "dev" else "PostgreSQL"
        print(
            f"{scale:>5g} {label:>10} | {wall:>7.2f} {stages.get('generate', 0):>8.2f} "
            f"{stages.get('load', 0):>6.2f} {stages.get('dbt_parse', 0) + stages.get('dbt_build', 0):>6.2f} | {status}"
        )


if __name__ == "__main__":
    main()
