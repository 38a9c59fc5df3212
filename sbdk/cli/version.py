"""`sbdk version`: versions of sbdk and its stack, from package metadata only (no heavy imports)."""

from __future__ import annotations

import json
import platform
import sys

from sbdk.cli.options import JsonOpt

STACK = ("dlt", "dbt-core", "dbt-duckdb", "duckdb", "faker", "fastapi", "pyarrow", "typer")


def collect() -> dict[str, str | None]:
    from importlib import metadata

    from sbdk import __version__

    info: dict[str, str | None] = {
        "sbdk": __version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "executable": sys.executable,
    }
    for dist in STACK:
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[dist] = None
    return info


def version(as_json: JsonOpt = False) -> None:
    """Print the versions of sbdk, Python and the data stack.

    Example: [bold]sbdk version --json[/]
    """
    info = collect()
    if as_json:
        print(json.dumps(info))
        return
    from rich.table import Table

    from sbdk.cli.render import console

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold cyan")
    table.add_column()
    for name, value in info.items():
        table.add_row(name, value if value is not None else "[red]not installed[/]")
    console.print(table)
