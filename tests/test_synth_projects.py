"""Synthetic data for a dbt project the user already has (issue #17, part 2): three dbt projects written for
these tests, each run from its sources alone. `sbdk init sandbox --from-dbt <project>` reads the project,
`sbdk dev` makes data that satisfies every declared type and data test, loads it, and dbt builds every model
and passes every test, with nothing in the dbt project changed but dbt's own folders.

- synth_declared: sources with every column and its `data_type` declared, tests on the source columns
  (relationships between source tables), a custom `identifier`, a `loaded_at_field` with freshness.
- synth_inferred: sources with no column at all; jaffle-shop staging models rename, cast and compute, and
  the tests are on the staging models' columns, so every fact about the source comes from SQL and renames.
- synth_star: a star schema (fact -> dimension -> sub-dimension, two levels of relationships on the sources)
  whose generic tests (`accepted_range`, `expression_is_true`) come from a package already installed in
  dbt_packages/ (a hub package: `dbt deps` would need the network).

Each project has a profile name of its own; seeds, packages sbdk installs and a custom generate_schema_name
are covered by tests/test_own_dbt_project.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import query

from sbdk.synth.model import Kind

pytestmark = pytest.mark.slow

PROJECTS = Path(__file__).parent / "dbt_projects"
DBT_OWN = {"target", "logs", "dbt_packages"}


@dataclass(frozen=True)
class Table:
    """A source table as the tests expect to find it: `schema.relation` in dev.duckdb (the source's schema and
    identifier), and the columns the project declares or its SQL reads, with the type each must load as:
    a Kind, "numeric", "temporal", or None when the project says nothing of it."""

    name: str
    relation: str
    columns: dict[str, Kind | str | None]


@dataclass(frozen=True)
class Case:
    folder: str
    models: int
    tests: int
    tables: list[Table]
    # (child "schema.table.column", parent "schema.table.column"): what the relationships tests imply.
    foreign_keys: list[tuple[str, str]] = field(default_factory=list)


DECLARED = Case(
    folder="synth_declared",
    models=7,
    tests=22,
    tables=[
        Table(
            "customers",
            "shop_raw.customers",
            {
                "customer_id": Kind.INTEGER,
                "email": Kind.VARCHAR,
                "first_name": Kind.VARCHAR,
                "last_name": Kind.VARCHAR,
                "country_code": Kind.VARCHAR,
                "created_at": Kind.TIMESTAMP,
            },
        ),
        Table(
            "products",
            "shop_raw.products",
            {"product_id": Kind.INTEGER, "product_name": Kind.VARCHAR, "category": Kind.VARCHAR, "price": Kind.DECIMAL},
        ),
        Table(
            "orders",
            "shop_raw.orders",
            {
                "order_id": Kind.INTEGER,
                "customer_id": Kind.INTEGER,
                "status": Kind.VARCHAR,
                "ordered_at": Kind.TIMESTAMP,
                "_loaded_at": Kind.TIMESTAMP,
            },
        ),
        Table(
            "order_items",
            "shop_raw.order_lines",
            {
                "order_item_id": Kind.INTEGER,
                "order_id": Kind.INTEGER,
                "product_id": Kind.INTEGER,
                "quantity": Kind.INTEGER,
                "unit_price": Kind.DECIMAL,
            },
        ),
    ],
    foreign_keys=[
        ("shop_raw.orders.customer_id", "shop_raw.customers.customer_id"),
        ("shop_raw.order_lines.order_id", "shop_raw.orders.order_id"),
        ("shop_raw.order_lines.product_id", "shop_raw.products.product_id"),
    ],
)

INFERRED = Case(
    folder="synth_inferred",
    models=6,
    tests=21,
    tables=[
        Table(
            "raw_customers", "ecom.raw_customers", {"id": None, "first_name": None, "last_name": None, "email": None}
        ),
        Table(
            "raw_orders",
            "ecom.raw_orders",
            {
                "id": None,
                "user_id": None,
                "store_id": None,
                "status": Kind.VARCHAR,
                "subtotal": "numeric",
                "tax_paid": "numeric",
                "order_date": "temporal",
            },
        ),
        Table(
            "raw_payments",
            "ecom.raw_payments",
            {"id": None, "order_id": None, "payment_method": Kind.VARCHAR, "amount": "numeric"},
        ),
        Table(
            "raw_stores", "ecom.raw_stores", {"id": None, "name": None, "tax_rate": "numeric", "opened_at": "temporal"}
        ),
    ],
    # The tests are on the staging models; through their renames they constrain these source columns.
    foreign_keys=[
        ("ecom.raw_orders.user_id", "ecom.raw_customers.id"),
        ("ecom.raw_orders.store_id", "ecom.raw_stores.id"),
        ("ecom.raw_payments.order_id", "ecom.raw_orders.id"),
    ],
)

STAR = Case(
    folder="synth_star",
    models=7,
    tests=24,
    tables=[
        Table("regions", "pos_warehouse.regions", {"region_id": Kind.INTEGER, "region_name": Kind.VARCHAR}),
        Table(
            "stores",
            "pos_warehouse.stores",
            {"store_id": Kind.INTEGER, "store_name": Kind.VARCHAR, "region_id": Kind.INTEGER, "opened_on": Kind.DATE},
        ),
        Table("categories", "pos_warehouse.categories", {"category_id": Kind.INTEGER, "category_name": Kind.VARCHAR}),
        Table(
            "products",
            "pos_warehouse.products",
            {
                "product_id": Kind.INTEGER,
                "product_name": Kind.VARCHAR,
                "category_id": Kind.INTEGER,
                "list_price": Kind.DECIMAL,
            },
        ),
        Table(
            "sales",
            "pos_warehouse.sales",
            {
                "sale_id": Kind.INTEGER,
                "sold_at": Kind.TIMESTAMP,
                "store_id": Kind.INTEGER,
                "product_id": Kind.INTEGER,
                "quantity": Kind.INTEGER,
                "unit_price": Kind.DECIMAL,
                "line_total": Kind.DECIMAL,
            },
        ),
    ],
    foreign_keys=[
        ("pos_warehouse.sales.product_id", "pos_warehouse.products.product_id"),
        ("pos_warehouse.products.category_id", "pos_warehouse.categories.category_id"),
        ("pos_warehouse.sales.store_id", "pos_warehouse.stores.store_id"),
        ("pos_warehouse.stores.region_id", "pos_warehouse.regions.region_id"),
    ],
)


def _tree(folder: Path) -> dict[str, str]:
    """Every file of the dbt project outside dbt's own folders, with a digest of its bytes."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not DBT_OWN & set(path.relative_to(folder).parts)
    }


def _copy(case: Case, tmp_path: Path) -> Path:
    """The dbt project, copied so that nothing in the repository changes."""
    project = tmp_path / "analytics"
    shutil.copytree(PROJECTS / case.folder, project)
    installed = project / "dbt_packages"
    if installed.is_dir():
        # As `dbt deps` leaves it: installed after packages.yml was written, so sbdk builds offline.
        os.utime(installed)
    return project


def _init_from_dbt(cli, tmp_path: Path, case: Case) -> Path:
    """`sbdk init sandbox --from-dbt analytics`: a project that points at the dbt project, with a synth.yml
    and one pipeline per source table."""
    result = cli("init", "sandbox", "--from-dbt", "analytics", "--no-input", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    root = tmp_path / "sandbox"
    config = json.loads((root / "sbdk_config.json").read_text())
    assert (root / config["dbt_path"]).resolve() == (tmp_path / "analytics").resolve()
    assert (root / "synth.yml").is_file()
    pipelines = [path.stem for path in (root / "pipelines").glob("*.py") if not path.name.startswith("_")]
    assert len(pipelines) == len(case.tables), pipelines
    for table in case.tables:
        identifier = table.relation.split(".")[1]
        assert any(table.name in stem or identifier in stem for stem in pipelines), (table.name, pipelines)
    return root


def _dev(cli, root: Path) -> None:
    result = cli("dev", cwd=root)
    assert result.exit_code == 0, result.output
    assert "Finished with failures" not in result.output


def _assert_every_node_passed(project: Path, case: Case) -> None:
    """Every model and data test dbt knows of ran in `sbdk dev`'s build: models built, tests passed."""
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    expected = {uid for uid, node in manifest["nodes"].items() if node["resource_type"] in ("model", "test")}
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results if r["unique_id"] in expected}
    failed = {uid: status for uid, status in statuses.items() if status not in ("success", "pass")}
    assert not failed, failed
    assert set(statuses) == expected, expected - set(statuses)
    assert sum(uid.startswith("model.") for uid in statuses) == case.models
    assert sum(uid.startswith("test.") for uid in statuses) == case.tests


def _fits(expected: Kind | str | None, duckdb_type: str) -> bool:
    kind = Kind.of(duckdb_type)
    if expected is None:
        return True
    if expected == "numeric":
        return kind is not None and kind.numeric
    if expected == "temporal":
        return kind is not None and kind.temporal
    return kind == expected


def _assert_sources_loaded(root: Path, case: Case) -> None:
    """Each source table is in dev.duckdb where the project's sources say, with rows, its columns of the
    type declared or implied, and every foreign key the relationships tests imply holds (and is used)."""
    for table in case.tables:
        schema, name = table.relation.split(".")
        assert query(root, f"select count(*) from {table.relation}")[0][0] > 0, table.relation
        types = dict(
            query(
                root,
                "select lower(column_name), data_type from information_schema.columns "
                f"where table_schema = '{schema}' and table_name = '{name}'",
            )
        )
        wrong = {c: types.get(c) for c, kind in table.columns.items() if c not in types or not _fits(kind, types[c])}
        assert not wrong, (table.relation, wrong)
    for child, parent in case.foreign_keys:
        child_relation, child_column = child.rsplit(".", 1)
        parent_relation, parent_column = parent.rsplit(".", 1)
        orphans, used = query(
            root,
            f"select count(*) filter (where p.{parent_column} is null), count(c.{child_column}) "
            f"from {child_relation} c left join {parent_relation} p on p.{parent_column} = c.{child_column} "
            f"where c.{child_column} is not null",
        )[0]
        assert orphans == 0 and used > 0, (child, parent, orphans, used)


def _word(name: str, line: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", line) is not None


def _unlisted(output: str, case: Case) -> list[tuple[str, str]]:
    """The (table, column) pairs `sbdk sources` shows no row for. A row names its column, and its table
    either on the row itself or in the heading of its group (a line that names a table and no column)."""
    names = {table.name: {table.name, table.relation.split(".")[1]} for table in case.tables}
    columns = {column for table in case.tables for column in table.columns}
    shown: set[tuple[str, str]] = set()
    heading: set[str] = set()
    for line in output.splitlines():
        named = {table for table, spellings in names.items() if any(_word(s, line) for s in spellings)}
        if named and not any(_word(column, line) for column in columns):
            heading = named
            continue
        shown.update((table, column) for table in named | heading for column in columns if _word(column, line))
    return [(t.name, column) for t in case.tables for column in t.columns if (t.name, column) not in shown]


def _assert_sources_listed(cli, root: Path, case: Case) -> None:
    result = cli("sources", cwd=root)
    assert result.exit_code == 0, result.output
    assert not _unlisted(result.output, case), (_unlisted(result.output, case), result.output)


@pytest.mark.parametrize("case", [DECLARED, INFERRED, STAR], ids=lambda case: case.folder)
def test_a_dbt_project_builds_and_passes_its_tests_on_data_made_from_its_sources(case: Case, cli, tmp_path) -> None:
    project = _copy(case, tmp_path)
    before = _tree(project)

    root = _init_from_dbt(cli, tmp_path, case)
    _dev(cli, root)

    _assert_every_node_passed(project, case)
    _assert_sources_loaded(root, case)
    _assert_sources_listed(cli, root, case)
    assert _tree(project) == before


def test_sources_limits_synthesis_to_the_tables_named(cli, tmp_path) -> None:
    _copy(DECLARED, tmp_path)
    result = cli(
        "init", "sandbox", "--from-dbt", "analytics", "--no-input", "--sources", "shop.customers, shop.products",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    root = tmp_path / "sandbox"
    spec = (root / "synth.yml").read_text()
    assert "shop.customers:" in spec and "shop.products:" in spec and "shop.orders:" not in spec
    assert sorted(p.stem for p in (root / "pipelines").glob("*.py")) == ["shop_customers", "shop_products"]

    result = cli("init", "other", "--from-dbt", "analytics", "--no-input", "--sources", "shop.nope", cwd=tmp_path)
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "--sources names shop.nope, which the dbt project does not declare." in message
    assert "it declares: shop.customers, shop.order_items, shop.orders, shop.products." in message
