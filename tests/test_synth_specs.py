"""From what a dbt project declares and reads to synth.yml: constraints from tests (through staging
renames), types from use, and a spec file that never loses what the user edited. No dbt here: the
project is built as dbt's manifest would describe it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbdk.errors import ConfigError
from sbdk.synth import spec
from sbdk.synth.constraints import infer_specs
from sbdk.synth.infer import analyse
from sbdk.synth.model import Kind
from sbdk.synth.project import DataTest, DbtProject, Model, Source
from sbdk.synth.values import GENERATORS, choose

STG_CUSTOMERS = """with source as (select * from "dev"."shop"."raw_customers"),
renamed as (select id as customer_id, name as customer_name, created_at::date as signup_date from source)
select * from renamed"""
STG_ORDERS = """with source as (select * from "dev"."shop"."raw_orders")
select id as order_id, customer as customer_id, status, amount / 100.0 as amount, ordered_at
from source where status <> 'test'"""
MART = """select c.customer_id, count(o.order_id) as orders, sum(o.amount) as revenue
from "dev"."main"."stg_customers" c left join "dev"."main"."stg_orders" o on o.customer_id = c.customer_id
where o.ordered_at >= date_trunc('month', o.ordered_at) and o.status in ('placed', 'shipped', 'returned')
group by 1"""


def _source(table: str, declared: dict[str, str | None] | None = None, loaded_at: str | None = None) -> Source:
    return Source("shop", table, "shop", f"raw_{table}", declared or {}, loaded_at, "models/sources.yml")


def _test(name: str, on: str, column: str | None, **kwargs) -> DataTest:
    to = kwargs.pop("_to", None)
    return DataTest(name, None, on, column, kwargs, "models/schema.yml", to)


def _project(tests: list[DataTest], sources: list[Source] | None = None) -> DbtProject:
    sources = sources or [_source("customers"), _source("orders")]
    models = [
        Model("stg_customers", "models/stg_customers.sql", STG_CUSTOMERS, STG_CUSTOMERS),
        Model("stg_orders", "models/stg_orders.sql", STG_ORDERS, STG_ORDERS),
        Model("customer_revenue", "models/customer_revenue.sql", MART, MART),
    ]
    relations = {(s.schema, s.identifier): s.key for s in sources}
    relations |= {("main", m.name): m.key for m in models}
    return DbtProject(Path("/nowhere"), "shop", sources, models, tests, relations)


def _infer(project: DbtProject):
    analyses = {m.key: analyse(m.compiled or "", project.relations) for m in project.models}
    return infer_specs(project, analyses, choose)


def test_tests_on_staging_renames_constrain_the_source_columns() -> None:
    tests = [
        _test("unique", "model:stg_customers", "customer_id"),
        _test("not_null", "model:stg_customers", "customer_id"),
        _test("unique", "model:stg_orders", "order_id"),
        _test("accepted_values", "model:stg_orders", "status", values=["placed", "shipped", "returned"]),
        _test("relationships", "model:stg_orders", "customer_id", to="ref('stg_customers')", field="customer_id",
              _to="model:stg_customers"),
    ]  # fmt: skip
    inference = _infer(_project(tests))
    customers, orders = inference.table("shop.customers"), inference.table("shop.orders")
    assert customers is not None and orders is not None
    # id as customer_id: the source column is `id`, unique, made as a sequence.
    key = customers.column("id")
    assert key is not None and key.unique and key.generator == "sequence" and key.kind == Kind.INTEGER
    assert orders.column("id") is not None and orders.column("id").unique
    assert orders.column("status").values == ["placed", "shipped", "returned"]
    assert orders.column("customer").references == "shop.customers.id"
    # Types from use: a cast to date, arithmetic.
    assert customers.column("created_at").kind.temporal
    assert orders.column("amount").kind.numeric
    assert inference.unsatisfied == []
    # Parents first.
    assert [t.key for t in inference.tables] == ["shop.customers", "shop.orders"]


def test_origins_name_the_file_and_line_of_what_was_inferred() -> None:
    inference = _infer(_project([_test("unique", "model:stg_customers", "customer_id")]))
    reasons = inference.origins["shop.customers"]["created_at"]
    assert any("models/stg_customers.sql:2" in r and "cast" in r for r in reasons), reasons
    assert "tests in models/schema.yml: unique" in inference.origins["shop.customers"]["id"]


def test_a_test_on_a_computed_column_is_listed_as_one_that_may_fail() -> None:
    tests = [_test("accepted_values", "model:customer_revenue", "revenue", values=[1, 2])]
    inference = _infer(_project(tests))
    assert len(inference.unsatisfied) == 1
    test, why = inference.unsatisfied[0]
    assert "revenue" in test and "computed by" in why


def test_declared_types_win_and_loaded_at_field_makes_recent_timestamps() -> None:
    sources = [
        _source("customers", {"id": "integer", "created_at": "varchar"}, loaded_at="_loaded_at"),
        _source("orders"),
    ]
    inference = _infer(_project([], sources))
    customers = inference.table("shop.customers")
    assert customers.column("created_at").kind == Kind.VARCHAR  # declared, though the SQL casts it to date
    assert customers.column("_loaded_at").generator == "recent_timestamp"


def test_expression_tests_bound_and_compute_columns() -> None:
    tests = [
        _test("expression_is_true", "source:shop.orders", "amount", expression=">= 0"),
        _test("expression_is_true", "source:shop.orders", None, expression="total = amount + tax"),
        _test("expression_is_true", "source:shop.orders", None, expression="shipped_at >= ordered_at"),
        _test("expression_is_true", "source:shop.orders", None, expression="coalesce(a, b) like '%x'"),
    ]
    inference = _infer(_project(tests))
    orders = inference.table("shop.orders")
    assert orders.column("amount").min == 0
    assert orders.column("total").expression == '"amount" + "tax"'
    assert orders.column("shipped_at").generator == "expression"
    assert [why for _t, why in inference.unsatisfied if "coalesce" in why or "like" in why.lower()]


def test_relationships_in_a_cycle_are_a_warning_not_an_error() -> None:
    tests = [
        _test("relationships", "source:shop.orders", "customer", to="source('shop', 'customers')", field="id",
              _to="source:shop.customers"),
        _test("relationships", "source:shop.customers", "last_order", to="source('shop', 'orders')", field="id",
              _to="source:shop.orders"),
    ]  # fmt: skip
    inference = _infer(_project(tests))
    assert any("cycle" in w for w in inference.warnings)
    assert {t.key for t in inference.tables} == {"shop.customers", "shop.orders"}


def test_synth_yml_round_trips_and_merging_keeps_every_edit(tmp_path: Path) -> None:
    inference = _infer(_project([_test("unique", "model:stg_customers", "customer_id")]))
    tables = {t.key: spec.table_entry(t) for t in inference.tables}
    path = tmp_path / "synth.yml"
    path.write_text(spec.render(tables, "../analytics", sorted(GENERATORS)), encoding="utf-8")
    loaded = spec.load(path, set(GENERATORS))
    assert {k: spec.table_entry(t) for k, t in loaded.items()} == tables

    # The user edits a column and the rows; the dbt project gains a column and loses another.
    edited = spec.read_raw(path)
    edited["shop.customers"]["rows"] = 500
    edited["shop.customers"]["columns"]["name"] = {"type": "varchar", "generator": "first_name"}
    edited["shop.customers"]["columns"]["legacy"] = {"type": "bigint", "generator": "integer"}
    newer = _infer(_project([_test("unique", "model:stg_customers", "customer_id")]))
    newer.table("shop.customers").columns = [c for c in newer.table("shop.customers").columns if c.name != "created_at"]
    from sbdk.synth.model import ColumnSpec

    newer.table("shop.customers").columns.append(ColumnSpec("email", Kind.VARCHAR, "email"))
    merged, changes = spec.merge(edited, newer.tables)
    assert merged["shop.customers"]["rows"] == 500
    assert merged["shop.customers"]["columns"]["name"] == {"type": "varchar", "generator": "first_name"}
    assert "email" in merged["shop.customers"]["columns"] and "legacy" in merged["shop.customers"]["columns"]
    assert {str(c) for c in changes} >= {
        "column shop.customers.email added to synth.yml (new in the dbt project)",
        "shop.customers.legacy is no longer in the dbt project; kept in synth.yml (delete it if unused)",
    }


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{type: bigint, generator: nope}", "has generator 'nope', which does not exist"),
        ("{type: blob, generator: integer}", "has type 'blob', which sbdk cannot make"),
        ("{type: bigint, generator: integer, nulls: 2}", "nulls must be a share between 0 and 1"),
        ("{type: varchar, generator: choice}", "the generator choice needs a list of values"),
        ("{type: bigint, generator: integer, references: shop.nothing.id}", "which synth.yml does not define"),
    ],
)
def test_a_bad_synth_yml_entry_is_a_config_error_naming_it(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "synth.yml"
    path.write_text(f"tables:\n  shop.orders:\n    rows: 10\n    columns:\n      x: {entry}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        spec.load(path, set(GENERATORS))
    assert "synth.yml: shop.orders" in error.value.message and message in error.value.message
