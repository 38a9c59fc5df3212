"""The sources a dbt project declares, read from its YAML files without running dbt.

sbdk loads its raw tables into the schema `raw`; a dbt project the user brings (issue #17) may read
none of them, some, or tables of its own (seeds). Before a dbt-only build, sbdk checks only the raw
tables the project's sources actually name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sbdk.watch.layout import Area, Layout, read_yaml


@dataclass(frozen=True)
class DeclaredSource:
    source: str  # the source's name in dbt (`source('shop', 'orders')`: shop)
    table: str  # the table's name in dbt (orders)
    schema: str  # where dbt reads it: the source's `schema`, else its name
    identifier: str  # the relation's name: the table's `identifier`, else its name


def declared_sources(layout: Layout) -> list[DeclaredSource]:
    """Every source table the YAML files under the project's model paths declare (a name or schema
    written with Jinja is kept as written: it matches no table of sbdk's)."""
    found: list[DeclaredSource] = []
    for folder in layout.resource_dirs[Area.MODEL]:
        for path in sorted(_yaml_files(folder)):
            for source in read_yaml(path).get("sources") or ():
                if not isinstance(source, dict) or not source.get("name"):
                    continue
                name = str(source["name"])
                schema = str(source.get("schema") or name)
                for table in source.get("tables") or ():
                    if isinstance(table, dict) and table.get("name"):
                        found.append(
                            DeclaredSource(
                                name, str(table["name"]), schema, str(table.get("identifier") or table["name"])
                            )
                        )
    return found


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()]
