"""Reading compiled dbt SQL for what models read from their relations (issue #17): pure, no dbt.

The SQL is written the way dbt-duckdb compiles it: three-part quoted names, CTE chains of
`source -> renamed -> select *`, marts joining staging models. Each test states one fact synthesis relies
on: which relation's column a reference reads, the type its use implies, and which model columns pass a
relation's column through.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbdk.synth.infer import Analysis, Rename, Usage, analyse
from sbdk.synth.model import Kind

ORDERS = "source:shop.orders"
CUSTOMERS = "source:shop.customers"
PAYMENTS = "source:shop.payments"
SOURCES = {("shop", "raw_orders"): ORDERS, ("shop", "raw_customers"): CUSTOMERS, ("shop", "raw_payments"): PAYMENTS}
STG_ORDERS = "model:stg_orders"
STG_CUSTOMERS = "model:stg_customers"
MODELS = {("main", "stg_orders"): STG_ORDERS, ("main", "stg_customers"): STG_CUSTOMERS}

STG_ORDERS_SQL = """with source as (
    select * from "dev"."shop"."raw_orders"
),
renamed as (
    select
        id as order_id,
        customer as customer_id,
        ordered_at::date as order_date,
        (order_total / 100.0) as order_total,
        status
    from source
)
select * from renamed"""

CUSTOMERS_MART_SQL = """with orders as (
    select * from "dev"."main"."stg_orders"
),
customers as (
    select * from "dev"."main"."stg_customers"
),
customer_orders as (
    select
        customer_id,
        min(order_date) as first_order,
        count(order_id) as number_of_orders,
        sum(case when status = 'completed' then order_total else 0 end) as lifetime_value
    from orders
    group by customer_id
),
final as (
    select
        customers.customer_id,
        customers.name as customer_name,
        customer_orders.first_order,
        coalesce(customer_orders.number_of_orders, 0) as number_of_orders,
        customer_orders.lifetime_value
    from customers
    left join customer_orders
        on customers.customer_id = customer_orders.customer_id
)
select * from final"""


def uses(analysis: Analysis, relation: str, column: str) -> list[Usage]:
    """The usages of one relation's column."""
    return [usage for usage in analysis.usages if (usage.relation, usage.column) == (relation, column)]


def one(analysis: Analysis, relation: str, column: str, detail: str) -> Usage:
    """The single usage of a column with a detail (fails, listing what there is, otherwise)."""
    found = [usage for usage in uses(analysis, relation, column) if usage.detail == detail]
    assert len(found) == 1, analysis.usages
    return found[0]


def kind_of_use(expression: str, where: str = "") -> tuple[Kind | None, str]:
    """The kind and detail one expression over `raw_orders.x` implies."""
    analysis = analyse(f"select {expression} from shop.raw_orders {where}", SOURCES)
    found = uses(analysis, ORDERS, "x")
    assert len(found) == 1, analysis
    return found[0].kind, found[0].detail


# Staging models: CTE chains, renames, casts.


def test_jaffle_staging_renames_pass_columns_through_ctes_and_star() -> None:
    analysis = analyse(STG_ORDERS_SQL, SOURCES)

    assert analysis.renames == [
        Rename("order_id", ORDERS, "id"),
        Rename("customer_id", ORDERS, "customer"),
        Rename("order_date", ORDERS, "ordered_at"),
        Rename("order_total", ORDERS, "order_total", 0.01),
        Rename("status", ORDERS, "status"),
    ]
    assert analysis.warnings == []


def test_jaffle_staging_usages_carry_types_and_lines() -> None:
    analysis = analyse(STG_ORDERS_SQL, SOURCES)

    assert one(analysis, ORDERS, "id", "selected") == Usage(ORDERS, "id", None, "selected", 6)
    assert one(analysis, ORDERS, "ordered_at", "cast to date").kind is Kind.DATE
    assert one(analysis, ORDERS, "ordered_at", "cast to date").line == 8
    assert one(analysis, ORDERS, "order_total", "arithmetic") == Usage(
        ORDERS, "order_total", Kind.DOUBLE, "arithmetic", 9
    )
    assert {usage.relation for usage in analysis.usages} == {ORDERS}


def test_computed_columns_are_not_renames() -> None:
    analysis = analyse(
        "select id + 1 as next_id, upper(name) as name, cast(id as int) as id from shop.raw_orders", SOURCES
    )

    assert analysis.renames == [Rename("id", ORDERS, "id")]


def test_star_of_a_relation_is_a_star_rename_and_its_extra_columns_are_named() -> None:
    sql = """with source as (select * from "dev"."shop"."raw_customers"),
    renamed as (select *, first_name as given_name, lower(email) as email_lower from source)
    select * from renamed"""

    assert analyse(sql, SOURCES).renames == [Rename("*", CUSTOMERS, "*"), Rename("given_name", CUSTOMERS, "first_name")]


def test_star_exclude_drops_and_replace_recasts() -> None:
    sql = """with source as (select id as order_id, status, amount from shop.raw_orders)
    select * exclude (status) replace (cast(amount as int) as amount) from source"""

    assert analyse(sql, SOURCES).renames == [Rename("order_id", ORDERS, "id"), Rename("amount", ORDERS, "amount")]


def test_subqueries_and_qualified_stars_pass_columns_through() -> None:
    sql = """select s.*, c.name as customer_name
    from (select id as order_id, customer from shop.raw_orders) as s
    join shop.raw_customers c on s.customer = c.id"""

    assert analyse(sql, SOURCES).renames == [
        Rename("order_id", ORDERS, "id"),
        Rename("customer", ORDERS, "customer"),
        Rename("customer_name", CUSTOMERS, "name"),
    ]


def test_union_renames_every_branch_by_position() -> None:
    sql = "select id as person_id from shop.raw_customers union all select customer from shop.raw_orders"

    assert analyse(sql, SOURCES).renames == [
        Rename("person_id", CUSTOMERS, "id"),
        Rename("person_id", ORDERS, "customer"),
    ]


# Scaled renames: cents to amounts and back.

JAFFLE_STG_ORDERS_SQL = """with source as (select * from "dev"."raw"."raw_orders"),
renamed as (
    select
        id as order_id,
        subtotal as subtotal_cents,
        (subtotal / 100)::numeric(16, 2) as subtotal,
        (tax_paid / 100)::numeric(16, 2) as tax_paid,
        (order_total / 100)::numeric(16, 2) as order_total,
        date_trunc('day', ordered_at) as ordered_at
    from source
)
select * from renamed"""


def test_jaffle_shop_stg_orders_divides_cents_by_a_hundred() -> None:
    raw = "source:ecom.raw_orders"
    analysis = analyse(JAFFLE_STG_ORDERS_SQL, {("raw", "raw_orders"): raw})

    assert analysis.renames == [
        Rename("order_id", raw, "id"),
        Rename("subtotal_cents", raw, "subtotal"),
        Rename("subtotal", raw, "subtotal", scale=0.01),
        Rename("tax_paid", raw, "tax_paid", scale=0.01),
        Rename("order_total", raw, "order_total", scale=0.01),
    ]
    assert [rename.scale for rename in analysis.renames[:2]] == [1.0, 1.0]
    assert "ordered_at" not in {rename.model_column for rename in analysis.renames}  # date_trunc computes it
    assert analysis.warnings == []
    # The usages are the source column's own: the division is arithmetic on it, nothing is traced through it.
    assert one(analysis, raw, "subtotal", "arithmetic").kind is Kind.DOUBLE


@pytest.mark.parametrize(
    ("expression", "scale"),
    [
        ("amount", 1.0),
        ("amount * 100", 100.0),
        ("100 * amount", 100.0),
        ("cast(amount as double) / 100.0", 0.01),
        ("amount::bigint::double / 100", 0.01),
        ("((amount) / 100)", 0.01),
        ("round(amount / 100, 2)", 0.01),
        ("round(amount::double / 100, 2)::numeric(16, 2)", 0.01),
        ("cast(round(amount * 1e2) as bigint)", 100.0),
        ("amount / 100 * 2", 0.02),
        ("amount / 4::double", 0.25),
    ],
)
def test_a_column_scaled_by_a_number_is_a_scaled_rename(expression: str, scale: float) -> None:
    analysis = analyse(f"select {expression} as out from shop.raw_orders", SOURCES)

    assert analysis.renames == [Rename("out", ORDERS, "amount", scale)]


@pytest.mark.parametrize(
    "expression",
    [
        "amount + 1",
        "amount - 100",
        "amount / other",
        "amount * other",
        "100 / amount",
        "amount * 0",
        "amount * -1",
        "amount / '100'",
        "amount // 100",
        "amount % 100",
        "abs(amount / 100)",
        "round(amount / 100, digits)",
        "sum(amount) / 100",
        "(amount + 1) / 100",
    ],
)
def test_other_arithmetic_is_not_a_rename(expression: str) -> None:
    assert analyse(f"select {expression} as out from shop.raw_orders", SOURCES).renames == []


def test_scales_compose_across_ctes_and_subqueries() -> None:
    sql = """with cents as (select amount * 100 as amount_cents, id from "dev"."shop"."raw_orders"),
    dollars as (select amount_cents / 100.0 as amount, id as order_id, amount_cents from cents)
    select amount, round(amount_cents / 1000, 1) as thousands, order_id, tenths
    from dollars cross join (select amount / 10 as tenths from "dev"."shop"."raw_payments") as p"""

    assert analyse(sql, SOURCES).renames == [
        Rename("amount", ORDERS, "amount"),
        Rename("thousands", ORDERS, "amount", 0.1),
        Rename("order_id", ORDERS, "id"),
        Rename("tenths", PAYMENTS, "amount", 0.1),
    ]


def test_scaled_columns_through_star_and_replace() -> None:
    sql = """with s as (select id, amount / 100 as amount from shop.raw_orders)
    select * replace (amount * 1000 as amount) from s"""

    assert analyse(sql, SOURCES).renames == [Rename("id", ORDERS, "id"), Rename("amount", ORDERS, "amount", 10.0)]


def test_uses_of_a_scaled_column_downstream_are_not_traced_to_the_source() -> None:
    """`where amount > 5` on dollars says nothing about cents: 5 is not a value the source column holds."""
    sql = """with s as (select amount / 100 as amount from shop.raw_orders)
    select amount from s where amount > 5"""
    analysis = analyse(sql, SOURCES)

    assert [usage.detail for usage in uses(analysis, ORDERS, "amount")] == ["arithmetic"]
    assert analysis.renames == [Rename("amount", ORDERS, "amount", 0.01)]


# Relations: which table in the SQL is which.


def test_quoted_three_part_names_match_in_any_case() -> None:
    analysis = analyse('select "Id" from "DEV"."Shop"."RAW_ORDERS"', SOURCES)

    assert analysis.renames == [Rename("id", ORDERS, "id")]
    assert one(analysis, ORDERS, "id", "selected").line == 1


def test_one_part_name_matches_only_when_unique() -> None:
    assert analyse("select id from raw_orders", SOURCES).renames == [Rename("id", ORDERS, "id")]

    twice = {**SOURCES, ("other", "raw_orders"): "source:other.orders"}
    assert analyse("select id from raw_orders", twice).usages == []


def test_tables_not_asked_about_are_ignored() -> None:
    analysis = analyse("select a.id, b.code from shop.raw_orders a join lookups.codes b on a.code = b.code", SOURCES)

    assert {usage.relation for usage in analysis.usages} == {ORDERS}
    assert one(analysis, ORDERS, "code", "compared with a column").joined_to is None


def test_cte_named_like_a_relation_shadows_it() -> None:
    sql = "with raw_orders as (select customer as id from shop.raw_customers) select id from raw_orders"

    assert analyse(sql, SOURCES).renames == [Rename("id", CUSTOMERS, "customer")]


# Marts: joins of staging models, aggregations, windows.


def test_mart_joining_two_staging_models_records_the_join_both_ways() -> None:
    analysis = analyse(CUSTOMERS_MART_SQL, MODELS)

    left = one(analysis, STG_CUSTOMERS, "customer_id", f"joined to {STG_ORDERS}.customer_id")
    right = one(analysis, STG_ORDERS, "customer_id", f"joined to {STG_CUSTOMERS}.customer_id")
    assert (left.joined_to, right.joined_to) == ((STG_ORDERS, "customer_id"), (STG_CUSTOMERS, "customer_id"))
    assert left.line == right.line == 25


def test_mart_aggregations_imply_types_and_literals() -> None:
    analysis = analyse(CUSTOMERS_MART_SQL, MODELS)

    status = one(analysis, STG_ORDERS, "status", "compared with 'completed'")
    assert (status.kind, status.literals, status.line) == (Kind.VARCHAR, ("completed",), 12)
    assert one(analysis, STG_ORDERS, "order_total", "summed").kind is Kind.DOUBLE
    assert one(analysis, STG_ORDERS, "order_id", "counted").kind is None
    assert one(analysis, STG_ORDERS, "customer_id", "grouped by").line == 14


def test_mart_renames_only_the_passthrough_columns() -> None:
    assert analyse(CUSTOMERS_MART_SQL, MODELS).renames == [
        Rename("customer_id", STG_CUSTOMERS, "customer_id"),
        Rename("customer_name", STG_CUSTOMERS, "name"),
    ]


def test_window_functions() -> None:
    sql = """select
        order_id,
        row_number() over (partition by customer_id order by order_date) as order_number,
        sum(order_total) over (partition by customer_id) as customer_total,
        lag(order_date) over (order by order_date) as previous
    from "dev"."main"."stg_orders"
    qualify row_number() over (partition by order_id order by order_date desc) = 1"""
    analysis = analyse(sql, MODELS)

    assert {usage.detail for usage in uses(analysis, STG_ORDERS, "customer_id")} == {"partitioned by"}
    assert {usage.detail for usage in uses(analysis, STG_ORDERS, "order_date")} == {"ordered by", "used"}
    assert one(analysis, STG_ORDERS, "order_total", "summed").kind is Kind.DOUBLE
    assert [usage.line for usage in uses(analysis, STG_ORDERS, "customer_id")] == [3, 4]
    assert analysis.renames == [Rename("order_id", STG_ORDERS, "order_id")]


def test_model_reading_two_sources() -> None:
    sql = """with orders as (select * from "dev"."shop"."raw_orders"),
    payments as (select order_id, amount / 100 as amount from "dev"."shop"."raw_payments")
    select orders.id as order_id, orders.ordered_at, sum(payments.amount) as paid
    from orders
    left join payments on payments.order_id = orders.id
    where orders.status <> 'returned'
    group by 1, 2"""
    analysis = analyse(sql, SOURCES)

    assert one(analysis, PAYMENTS, "order_id", f"joined to {ORDERS}.id").joined_to == (ORDERS, "id")
    assert one(analysis, ORDERS, "id", f"joined to {PAYMENTS}.order_id").joined_to == (PAYMENTS, "order_id")
    assert one(analysis, PAYMENTS, "amount", "arithmetic").kind is Kind.DOUBLE
    assert uses(analysis, PAYMENTS, "paid") == []
    assert analysis.renames == [Rename("order_id", ORDERS, "id"), Rename("ordered_at", ORDERS, "ordered_at")]


def test_join_in_where_and_join_using() -> None:
    analysis = analyse("select o.id from shop.raw_orders o, shop.raw_customers c where o.customer = c.id", SOURCES)
    assert one(analysis, ORDERS, "customer", f"joined to {CUSTOMERS}.id").joined_to == (CUSTOMERS, "id")

    analysis = analyse("select id from shop.raw_orders join shop.raw_payments using (id)", SOURCES)
    assert one(analysis, PAYMENTS, "id", f"joined to {ORDERS}.id").joined_to == (ORDERS, "id")
    assert analysis.renames == [Rename("id", ORDERS, "id")]
    assert analysis.warnings == []


def test_correlated_subquery_is_counted_once() -> None:
    sql = """select c.id,
        (select count(*) from shop.raw_orders o where o.customer = c.id) as orders
    from shop.raw_customers c"""
    analysis = analyse(sql, SOURCES)

    assert len(uses(analysis, CUSTOMERS, "id")) == 2
    assert one(analysis, ORDERS, "customer", f"joined to {CUSTOMERS}.id").line == 2


def test_unqualified_column_over_two_relations_is_a_warning() -> None:
    analysis = analyse("select status from shop.raw_orders o join shop.raw_customers c on o.customer = c.id", SOURCES)

    assert uses(analysis, ORDERS, "status") == []
    assert analysis.warnings == ["could not tell which relation `status` on line 1 is read from"]


def test_unqualified_column_resolves_to_the_cte_that_names_it() -> None:
    sql = """with a as (select id as order_id from shop.raw_orders),
    b as (select id as customer_id from shop.raw_customers)
    select order_id, customer_id from a cross join b"""

    assert analyse(sql, SOURCES).renames == [Rename("order_id", ORDERS, "id"), Rename("customer_id", CUSTOMERS, "id")]


def test_use_through_a_cast_passthrough_keeps_literals_but_not_kind() -> None:
    sql = """with s as (select cast(status as varchar) as state from shop.raw_orders)
    select * from s where state = 'done'"""
    analysis = analyse(sql, SOURCES)

    # sqlglot spells DuckDB's varchar `text`.
    assert one(analysis, ORDERS, "status", "cast to text").kind is Kind.VARCHAR
    later = one(analysis, ORDERS, "status", "compared with 'done'")
    assert (later.kind, later.literals) == (None, ("done",))
    assert analysis.renames == [Rename("state", ORDERS, "status")]


def test_recursive_cte_terminates() -> None:
    sql = """with recursive r as (
        select id from shop.raw_orders union all select id + 1 from r where id < 10
    ) select * from r"""

    assert analyse(sql, SOURCES).renames == [Rename("id", ORDERS, "id")]


# Types from use, one expression at a time.


@pytest.mark.parametrize(
    ("expression", "kind", "detail"),
    [
        ("x::date", Kind.DATE, "cast to date"),
        ("cast(x as bigint)", Kind.INTEGER, "cast to bigint"),
        ("try_cast(x as timestamp)", Kind.TIMESTAMP, "cast to timestamp"),
        ("x::numeric(10, 2)", Kind.DECIMAL, "cast to decimal(10, 2)"),
        ("x::struct(a int)", None, "cast to struct(a int)"),
        ("x * 2", Kind.DOUBLE, "arithmetic"),
        ("-x", Kind.DOUBLE, "arithmetic"),
        ("sum(x)", Kind.DOUBLE, "summed"),
        ("avg(x)", Kind.DOUBLE, "averaged"),
        ("round(x, 2)", Kind.DOUBLE, "rounded"),
        ("sum(case when is_paid then x else 0 end)", Kind.DOUBLE, "summed"),
        ("sum(coalesce(x, y))", Kind.DOUBLE, "summed"),
        ("date_trunc('month', x)", Kind.TIMESTAMP, "date function date_trunc"),
        ("date_part('year', x)", Kind.TIMESTAMP, "date function date_part"),
        ("extract(year from x)", Kind.TIMESTAMP, "date function extract"),
        ("datediff('day', x, current_date)", Kind.TIMESTAMP, "date function date_diff"),
        ("date_add(x, interval 1 day)", Kind.TIMESTAMP, "date function date_add"),
        ("strftime(x, '%Y-%m')", Kind.TIMESTAMP, "date function strftime"),
        ("year(x)", Kind.TIMESTAMP, "date function year"),
        ("x + interval 7 day", Kind.TIMESTAMP, "date arithmetic with an interval"),
        ("lower(x)", Kind.VARCHAR, "string function lower"),
        ("trim(x)", Kind.VARCHAR, "string function trim"),
        ("concat(x, '-')", Kind.VARCHAR, "string function concat"),
        ("x || y", Kind.VARCHAR, "string function ||"),
        ("split_part(x, '@', 2)", Kind.VARCHAR, "string function split_part"),
        ("replace(x, 'a', 'b')", Kind.VARCHAR, "string function replace"),
        ("length(x)", Kind.VARCHAR, "string function length"),
        ("coalesce(x, 0)", Kind.INTEGER, "coalesced with a number"),
        ("coalesce(x, 'unknown')", Kind.VARCHAR, "coalesced with 'unknown'"),
        ("max(x)", None, "selected"),
        ("count(distinct x)", None, "counted"),
        ("x", None, "selected"),
    ],
)
def test_type_from_use_in_select(expression: str, kind: Kind | None, detail: str) -> None:
    assert kind_of_use(expression) == (kind, detail)


@pytest.mark.parametrize(
    ("where", "kind", "detail", "literals"),
    [
        ("where x = 3", Kind.INTEGER, "compared with a number", (3,)),
        ("where x > -2.5", Kind.DOUBLE, "compared with a number", (-2.5,)),
        ("where x >= '2024-01-01'", Kind.DATE, "compared with '2024-01-01'", ("2024-01-01",)),
        (
            "where x < '2024-01-01 12:00:00'",
            Kind.TIMESTAMP,
            "compared with '2024-01-01 12:00:00'",
            ("2024-01-01 12:00:00",),
        ),
        ("where x >= date '2024-01-01'", Kind.DATE, "compared with '2024-01-01'", ("2024-01-01",)),
        ("where 'completed' = x", Kind.VARCHAR, "compared with 'completed'", ("completed",)),
        ("where x in ('placed', 'shipped')", Kind.VARCHAR, "compared with 'placed', 'shipped'", ("placed", "shipped")),
        ("where x not in (1, 2.5)", Kind.DOUBLE, "compared with numbers", (1, 2.5)),
        ("where x between 1 and 10", Kind.INTEGER, "compared with numbers", (1, 10)),
        ("where x = true", Kind.BOOLEAN, "compared with true", (True,)),
        ("where x is false", Kind.BOOLEAN, "compared with false", (False,)),
        ("where x", Kind.BOOLEAN, "used as a condition", ()),
        ("where not x", Kind.BOOLEAN, "used as a condition", ()),
        ("where y > 1 and x", Kind.BOOLEAN, "used as a condition", ()),
        ("where x like 'A%'", Kind.VARCHAR, "string function like", ()),
        ("where x ilike '%a'", Kind.VARCHAR, "string function ilike", ()),
        ("where x >= current_date - interval 30 day", Kind.DATE, "compared with current_date - interval '30' day", ()),
        ("where x is null", None, "checked for null", ()),
    ],
)
def test_type_from_use_in_where(where: str, kind: Kind | None, detail: str, literals: tuple) -> None:
    analysis = analyse(f"select 1 from shop.raw_orders {where}", SOURCES)

    assert [(u.kind, u.detail, u.literals) for u in uses(analysis, ORDERS, "x")] == [(kind, detail, literals)]


def test_case_when_literals_and_conditions() -> None:
    sql = """select
        case x when 'a' then 1 when 'b' then 2 end as code,
        case when is_gift then 'gift' end as gift,
        case when kind = 'retail' then amount end as retail_amount
    from shop.raw_orders"""
    analysis = analyse(sql, SOURCES)

    assert one(analysis, ORDERS, "x", "compared with 'a', 'b'").literals == ("a", "b")
    assert one(analysis, ORDERS, "is_gift", "used as a condition").kind is Kind.BOOLEAN
    assert one(analysis, ORDERS, "kind", "compared with 'retail'").kind is Kind.VARCHAR
    assert one(analysis, ORDERS, "amount", "selected").kind is None


# Bad SQL: a warning, never an exception.


@pytest.mark.parametrize(
    ("sql", "warning"),
    [
        ("select ((", "could not parse the compiled SQL: "),
        ("select 'unterminated", "could not parse the compiled SQL: "),
        ("select id from {{ ref('stg_orders') }}", "could not parse the compiled SQL: "),
        ("select " + "(" * 5000 + "1" + ")" * 5000, "could not parse the compiled SQL: "),
        ("", "the compiled SQL has no select to read"),
        ("describe shop.raw_orders", "the compiled SQL has no select to read"),
        ("select * from shop.raw_orders a join shop.raw_customers a on 1 = 1", "could not "),
    ],
)
def test_bad_sql_is_a_warning(sql: str, warning: str) -> None:
    analysis = analyse(sql, SOURCES)

    assert analysis.warnings and analysis.warnings[0].startswith(warning)
    assert "\n" not in analysis.warnings[0]


def test_parse_error_warning_names_the_problem() -> None:
    analysis = analyse("select id from where", SOURCES)

    assert analysis == Analysis(warnings=[analysis.warnings[0]])
    assert "Line 1" in analysis.warnings[0]


def test_create_table_as_is_read_like_its_select() -> None:
    sql = 'create table "dev"."main"."stg_orders" as (select id as order_id from "dev"."shop"."raw_orders")'

    assert analyse(sql, SOURCES).renames == [Rename("order_id", ORDERS, "id")]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([*"*(),.'\"=<>:;x1", "select", "from", "join", "on", "with", "as", "raw_orders"])).map(
        " ".join
    )
)
def test_never_raises(sql: str) -> None:
    assert isinstance(analyse(sql, SOURCES), Analysis)
