"""sbdk.synth.values: seeded, vectorised column values, one invariant per test (pure: no dbt, no dlt)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from sbdk.errors import ExitCode, SbdkError
from sbdk.synth.errors import SynthError
from sbdk.synth.model import ColumnSpec, Kind, TableSpec
from sbdk.synth.values import GENERATORS, arrow_type, choose, key_values, table

AS_OF = date(2026, 1, 1)
MIDNIGHT = datetime(2026, 1, 1)
# Generators whose natural kind is not VARCHAR.
KINDS = {
    "sequence": Kind.INTEGER,
    "integer": Kind.INTEGER,
    "double": Kind.DOUBLE,
    "amount": Kind.DECIMAL,
    "boolean": Kind.BOOLEAN,
    "date": Kind.DATE,
    "timestamp": Kind.TIMESTAMP,
    "recent_timestamp": Kind.TIMESTAMP,
}
MADE = [name for name in GENERATORS if name != "expression"]
STATUSES = ["completed", "shipped", "placed", "returned"]


def col(name: str, generator: str, kind: Kind | None = None, **options) -> ColumnSpec:
    if generator == "choice":
        options.setdefault("values", STATUSES)
    return ColumnSpec(name, kind or KINDS.get(generator, Kind.VARCHAR), generator, **options)


def make(*columns: ColumnSpec, rows: int = 200, seed: int = 7, parents=None, name: str = "t", **kw) -> pa.Table:
    spec = TableSpec("src", name, rows, list(columns))
    batches = list(table(spec, rows, seed=seed, as_of=AS_OF, parents=parents or {}, **kw))
    return pa.concat_tables(batches)


def values(column: ColumnSpec, **kw) -> list:
    return make(column, **kw).column(column.name).to_pylist()


def test_same_arguments_give_the_same_values_and_another_seed_others():
    columns = [col(name, name) for name in MADE]
    assert make(*columns).equals(make(*columns))
    other = make(*columns, seed=8)
    for name in MADE:
        if name != "sequence":
            assert other.column(name) != make(*columns).column(name), name


def test_batch_size_does_not_change_any_value():
    columns = [col(name, name, unique=name not in ("boolean", "choice")) for name in MADE]
    columns.append(col("maybe", "integer", nulls=0.3))
    whole = make(*columns, rows=300, batch_rows=1000)
    assert make(*columns, rows=300, batch_rows=7).equals(whole)


def test_batches_are_bounded():
    spec = TableSpec("src", "t", 25, [col("id", "sequence")])
    sizes = [b.num_rows for b in table(spec, 25, seed=1, as_of=AS_OF, parents={}, batch_rows=10)]
    assert sizes == [10, 10, 5]


def test_adding_a_column_leaves_the_others_alone():
    before = make(col("email", "email"), col("amount", "amount"))
    after = make(col("city", "city"), col("email", "email"), col("x", "integer"), col("amount", "amount"))
    assert after.select(["email", "amount"]).equals(before)


def test_each_kind_has_its_arrow_type():
    columns = [ColumnSpec(kind.name.lower(), kind, choose("x", kind)[0]) for kind in Kind]
    schema = make(*columns).schema
    for kind in Kind:
        assert schema.field(kind.name.lower()).type == arrow_type(kind)
    assert arrow_type(Kind.TIMESTAMP) == pa.timestamp("us")  # naive: UTC
    assert arrow_type(Kind.DECIMAL) == pa.decimal128(18, 2)


def test_no_rows_still_gives_the_schema():
    batches = list(table(TableSpec("src", "t", 0, [col("id", "sequence")]), 0, seed=1, as_of=AS_OF, parents={}))
    assert len(batches) == 1 and batches[0].num_rows == 0
    assert batches[0].schema.field("id").type == pa.int64()


@pytest.mark.parametrize("generator", MADE)
def test_every_generator_makes_its_kind_without_nulls(generator):
    made = make(col("c", generator), rows=50).column("c")
    assert made.null_count == 0 and len(made) == 50
    assert made.type == arrow_type(KINDS.get(generator, Kind.VARCHAR))


@pytest.mark.parametrize("generator", [g for g in MADE if g not in ("boolean", "choice", "date")])
def test_unique_columns_never_repeat(generator):
    made = values(col("c", generator, unique=True), rows=5_000)
    assert len(set(made)) == 5_000


@pytest.mark.parametrize(
    ("column", "rows"),
    [
        (col("c", "boolean", unique=True), 2),
        (col("c", "choice", unique=True), len(STATUSES)),
        (col("c", "date", unique=True), 365),
        (col("c", "integer", unique=True, min=1, max=500), 500),
    ],
)
def test_unique_small_ranges_are_filled_exactly(column, rows):
    made = values(column, rows=rows)
    assert len(set(made)) == rows


def test_a_unique_integer_without_bounds_has_room():
    assert len(set(values(col("c", "integer", unique=True), rows=20_000))) == 20_000


@pytest.mark.parametrize(
    ("column", "rows"),
    [
        (col("flag", "boolean", unique=True), 3),
        (col("status", "choice", unique=True), 5),
        (col("day", "date", unique=True, min="2024-01-01", max="2024-01-10"), 11),
        (col("n", "integer", unique=True, min=1, max=10), 11),
        (col("price", "amount", unique=True, min=1, max=1.05), 7),
    ],
)
def test_unique_beyond_the_range_raises_naming_the_column(column, rows):
    with pytest.raises(SynthError, match=rf"src\.t\.{column.name} is unique"):
        table(TableSpec("src", "t", rows, [column]), rows, seed=1, as_of=AS_OF, parents={})


def test_unique_expression_raises():
    with pytest.raises(SynthError, match="unique and computed"):
        make(col("a", "integer"), col("b", "expression", Kind.INTEGER, expression="a + 1", unique=True))


def test_nulls_are_exactly_their_share_across_batches():
    made = make(col("a", "integer", nulls=0.25), col("b", "email", nulls=0.1, unique=True), rows=1000, batch_rows=64)
    assert made.column("a").null_count == 250
    assert made.column("b").null_count == 100
    assert len(set(made.column("b").drop_null().to_pylist())) == 900
    assert make(col("a", "integer", nulls=1.0), rows=10).column("a").null_count == 10


def test_nulls_fall_on_different_rows_for_different_columns():
    made = make(col("a", "integer", nulls=0.5), col("b", "integer", nulls=0.5), rows=400)
    a, b = (np.array(made.column(n).is_null()) for n in ("a", "b"))
    assert 0 < (a & b).sum() < 200


def test_integer_bounds_are_inclusive():
    assert set(values(col("n", "integer", min=3, max=5), rows=300)) == {3, 4, 5}
    assert set(values(col("n", "integer", min=-2, max=-2), rows=10)) == {-2}


def test_amounts_have_cents_within_bounds():
    made = values(col("p", "amount", min=0.5, max=0.52), rows=300)
    assert set(made) == {Decimal("0.50"), Decimal("0.51"), Decimal("0.52")}
    negative = values(col("p", "amount", min=-10, max=-9), rows=300)
    assert min(negative) >= Decimal("-10.00") and max(negative) <= Decimal("-9.00") and min(negative) < Decimal("-9.5")


def test_doubles_stay_within_bounds():
    made = np.array(values(col("x", "double", min=2.5, max=3.0), rows=500))
    assert made.min() >= 2.5 and made.max() <= 3.0 and made.std() > 0.1


def test_date_and_timestamp_bounds_are_inclusive():
    days = values(col("d", "date", min="2024-02-27", max="2024-03-01"), rows=300)
    assert set(days) == {date(2024, 2, 27), date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1)}
    times = values(col("t", "timestamp", min="2024-01-01 00:00:00", max="2024-01-01 00:00:02"), rows=300)
    assert set(times) == {datetime(2024, 1, 1, 0, 0, s) for s in range(3)}
    yaml_dates = values(col("d", "date", min=date(2024, 1, 1), max=date(2024, 1, 1)), rows=5)
    assert set(yaml_dates) == {date(2024, 1, 1)}


def test_default_window_is_the_365_days_before_as_of():
    days = values(col("d", "date"), rows=3000)
    assert min(days) >= AS_OF - timedelta(days=365) and max(days) == AS_OF - timedelta(days=1)
    times = values(col("t", "timestamp"), rows=3000)
    assert min(times) >= MIDNIGHT - timedelta(days=365) and max(times) < MIDNIGHT
    assert max(times) - min(times) > timedelta(days=360)


def test_recent_timestamps_are_the_last_day_before_as_of():
    times = values(col("loaded_at", "recent_timestamp"), rows=1000)
    assert min(times) >= MIDNIGHT - timedelta(hours=24) and max(times) < MIDNIGHT
    assert max(times) - min(times) > timedelta(hours=23)


def test_one_bound_alone_moves_the_default_range():
    assert min(values(col("n", "integer", min=500), rows=200)) >= 500
    assert max(values(col("n", "integer", max=-500), rows=200)) <= -500
    later = values(col("d", "date", min="2030-01-01"), rows=200)
    assert min(later) >= date(2030, 1, 1)


def test_timestamps_written_as_text_have_whole_seconds():
    made = values(col("created_at", "timestamp", Kind.VARCHAR), rows=20)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", v) for v in made)


def test_sequence_counts_from_min_and_by_day_for_dates():
    assert values(col("id", "sequence"), rows=5) == [1, 2, 3, 4, 5]
    assert values(col("id", "sequence", min=100), rows=3) == [100, 101, 102]
    days = values(col("day", "sequence", Kind.DATE, min="2024-12-30"), rows=3)
    assert days == [date(2024, 12, 30), date(2024, 12, 31), date(2025, 1, 1)]
    assert values(col("id", "sequence", Kind.VARCHAR), rows=2) == ["1", "2"]


def test_choice_draws_only_its_values_the_first_most_common():
    made = values(col("status", "choice"), rows=4000)
    counts = [made.count(v) for v in STATUSES]
    assert set(made) == set(STATUSES)
    assert counts == sorted(counts, reverse=True)


def test_choice_weights_decide_the_shares():
    made = values(col("s", "choice", values=["a", "b", "c"], weights=[0, 3, 1]), rows=4000)
    assert "a" not in made and 0.7 < made.count("b") / 4000 < 0.8


def test_choice_values_take_the_column_kind():
    assert set(values(col("n", "choice", Kind.INTEGER, values=[1, 2]), rows=50)) == {1, 2}
    assert set(values(col("b", "choice", Kind.VARCHAR, values=[True, False]), rows=50)) == {"true", "false"}
    assert set(values(col("d", "choice", Kind.DATE, values=["2024-01-01"]), rows=5)) == {date(2024, 1, 1)}


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (col("s", "choice", values=[]), "lists no values"),
        (col("s", "choice", values=["a", "b"], weights=[1.0]), "1 weights for 2 values"),
        (col("n", "choice", Kind.INTEGER, values=["x"]), "not all bigint"),
        (col("c", "no_such_thing"), "does not have"),
        (col("c", "expression"), "without an expression"),
        (col("c", "integer", nulls=1.5), "nulls 1.5"),
        (col("c", "integer", distribution="bimodal"), "distribution 'bimodal'"),
        (col("c", "integer", min="ten"), "min 'ten'"),
        (col("c", "integer", min=10, max=1), "above max"),
        (col("c", "date", min="01/02/2024"), "min '01/02/2024'"),
        (col("c", "email", Kind.INTEGER), "cannot be written as"),
        (col("c", "boolean", Kind.DATE), "cannot be written as"),
    ],
)
def test_bad_specs_raise_before_any_batch_naming_the_column(column, message):
    spec = TableSpec("src", "t", 10, [column])
    with pytest.raises(SynthError, match=re.escape(message)) as raised:
        table(spec, 10, seed=1, as_of=AS_OF, parents={})
    assert "src.t.c" in str(raised.value) or "src.t.s" in str(raised.value) or "src.t.n" in str(raised.value)
    assert raised.value.hint


def test_synth_error_exits_like_a_config_error():
    assert issubclass(SynthError, SbdkError)
    assert SynthError("x").exit_code == ExitCode.CONFIG


def test_normal_and_skewed_distributions():
    uniform = np.array(values(col("x", "double"), rows=5000))
    normal = np.array(values(col("x", "double", distribution="normal"), rows=5000))
    skewed = np.array(values(col("x", "double", distribution="skewed"), rows=5000))
    assert abs(np.mean(normal) - 50) < 1.5 and np.std(normal) < np.std(uniform) * 0.7
    assert normal.min() >= 0 and normal.max() <= 100
    assert np.median(skewed) < 20 < np.median(uniform)


def parent_table(column: ColumnSpec, rows: int) -> tuple[pa.Table, dict]:
    parent = make(column, rows=rows, name="customers")
    return parent, {f"src.customers.{column.name}": (column, rows)}


@pytest.mark.parametrize("generator", ["sequence", "uuid", "email", "integer", "city"])
def test_references_draw_only_existing_keys(generator):
    key = col("id", generator, unique=generator != "integer")
    parent, parents = parent_table(key, 50)
    child = col("customer_id", "integer", KINDS.get(generator, Kind.VARCHAR), references="src.customers.id")
    made = values(child, rows=2000, parents=parents)
    # 2,000 rows over 50 parents: every parent value turns up, and nothing else.
    assert set(made) == set(parent.column("id").to_pylist())


def test_references_skip_null_parent_keys():
    key = col("id", "uuid", nulls=0.4)
    parent, parents = parent_table(key, 100)
    made = values(col("customer_id", "uuid", references="src.customers.id"), rows=3000, parents=parents)
    existing = set(parent.column("id").drop_null().to_pylist())
    assert None not in made and set(made) == existing


def test_a_unique_reference_is_one_to_one():
    parent, parents = parent_table(col("id", "sequence"), 100)
    made = values(col("customer_id", "integer", unique=True, references="src.customers.id"), rows=100, parents=parents)
    assert sorted(made) == parent.column("id").to_pylist()
    with pytest.raises(SynthError, match="unique and references"):
        make(col("customer_id", "integer", unique=True, references="src.customers.id"), rows=101, parents=parents)


def test_a_reference_to_a_table_not_made_raises():
    with pytest.raises(SynthError, match=re.escape("src.t.customer_id references src.customers.id")):
        make(col("customer_id", "integer", references="src.customers.id"))


def test_a_skewed_reference_favours_some_parents():
    _, parents = parent_table(col("id", "sequence"), 100)
    made = values(col("customer_id", "integer", references="src.customers.id", distribution="skewed"), parents=parents)
    assert np.median(made) < 25


@pytest.mark.parametrize(
    ("generator", "unique"), [(g, u) for g in MADE for u in (False, True) if not (u and g == "boolean")]
)
def test_key_values_equal_the_rows_of_table(generator, unique):
    options = {"min": "2024-01-01"} if unique and generator == "date" else {}
    column = col("k", generator, unique=unique, **options)
    rows = 300 if not (unique and generator == "choice") else len(STATUSES)
    made = make(column, rows=rows, batch_rows=64).column("k").combine_chunks()
    indices = np.array([rows - 1, 0, 5, 5, rows // 2]) % rows
    keys = key_values(column, "src.t", indices, seed=7, as_of=AS_OF)
    assert keys.equals(made.take(pa.array(indices)))


def test_key_values_refuse_computed_and_referencing_columns():
    with pytest.raises(SynthError, match="computed by an expression"):
        key_values(col("k", "expression", expression="1"), "src.t", np.arange(3), seed=1, as_of=AS_OF)
    with pytest.raises(SynthError, match=re.escape("references src.a.id itself")):
        key_values(col("k", "integer", references="src.a.id"), "src.t", np.arange(3), seed=1, as_of=AS_OF)


def test_expressions_see_the_other_columns_and_take_their_kind():
    made = make(
        col("total", "expression", Kind.DECIMAL, expression="subtotal + tax"),
        col("subtotal", "amount", min=10, max=20),
        col("tax", "amount", min=1, max=2),
        col("cents", "expression", Kind.INTEGER, expression="total * 100"),
        rows=300,
        batch_rows=100,
    )
    rows = made.to_pylist()
    assert all(r["total"] == r["subtotal"] + r["tax"] for r in rows)
    assert made.schema.field("total").type == pa.decimal128(18, 2)
    assert made.schema.field("cents").type == pa.int64()
    assert all(r["cents"] == r["total"] * 100 for r in rows)


def test_expression_nulls_and_a_table_of_expressions_only():
    made = make(col("one", "expression", Kind.INTEGER, expression="1", nulls=0.5), rows=10)
    assert made.column("one").to_pylist().count(1) == 5 and made.column("one").null_count == 5


@pytest.mark.parametrize(
    ("expression", "message"),
    [("no_such_column + 1", "The expression of src.t.bad failed"), ("sum(a)", "gave 1 values for 2 rows")],
)
def test_bad_expressions_raise_naming_the_column(expression, message):
    spec = TableSpec(
        "src", "t", 10, [col("a", "integer"), col("bad", "expression", Kind.INTEGER, expression=expression)]
    )
    with pytest.raises(SynthError, match=re.escape(message)) as raised:
        table(spec, 10, seed=1, as_of=AS_OF, parents={})
    assert "select" in (raised.value.hint or "") or "one value per row" in (raised.value.hint or "")


def test_uuids_are_version_4():
    made = values(col("u", "uuid"), rows=100)
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", u) for u in made)


def test_emails_look_like_addresses():
    made = values(col("e", "email"), rows=100)
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+\d+@[a-z.]+", e) for e in made)


def test_pools_are_varied():
    for generator in ("first_name", "last_name", "city", "company", "address", "postal_code", "phone", "text"):
        assert len(set(values(col("c", generator), rows=500))) > 30, generator


@pytest.mark.parametrize(
    ("name", "kind", "generator", "chosen"),
    [
        ("id", None, "sequence", Kind.INTEGER),
        ("id", Kind.VARCHAR, "uuid", Kind.VARCHAR),
        ("customer_id", None, "integer", Kind.INTEGER),
        ("customer_id", Kind.VARCHAR, "uuid", Kind.VARCHAR),
        ("order_uuid", None, "uuid", Kind.VARCHAR),
        ("email", None, "email", Kind.VARCHAR),
        ("Customer_Email", None, "email", Kind.VARCHAR),
        ("first_name", None, "first_name", Kind.VARCHAR),
        ("last_name", None, "last_name", Kind.VARCHAR),
        ("name", None, "name", Kind.VARCHAR),
        ("customer_name", None, "name", Kind.VARCHAR),
        ("product_name", None, "text", Kind.VARCHAR),
        ("company_name", None, "company", Kind.VARCHAR),
        ("city", None, "city", Kind.VARCHAR),
        ("country", None, "country", Kind.VARCHAR),
        ("country_code", None, "country_code", Kind.VARCHAR),
        ("state", None, "state", Kind.VARCHAR),
        ("zip", None, "postal_code", Kind.VARCHAR),
        ("postal_code", None, "postal_code", Kind.VARCHAR),
        ("phone_number", None, "phone", Kind.VARCHAR),
        ("website", None, "url", Kind.VARCHAR),
        ("street_address", None, "address", Kind.VARCHAR),
        ("amount", None, "amount", Kind.DECIMAL),
        ("order_total", None, "amount", Kind.DECIMAL),
        ("price", Kind.DOUBLE, "amount", Kind.DOUBLE),
        ("quantity", None, "integer", Kind.INTEGER),
        ("item_count", None, "integer", Kind.INTEGER),
        ("status", None, "choice", Kind.VARCHAR),
        ("payment_method", None, "choice", Kind.VARCHAR),
        ("order_type", Kind.INTEGER, "choice", Kind.INTEGER),
        ("created_at", None, "timestamp", Kind.TIMESTAMP),
        ("created_at", Kind.DATE, "date", Kind.DATE),
        ("created_at", Kind.VARCHAR, "timestamp", Kind.VARCHAR),
        ("updated", None, "timestamp", Kind.TIMESTAMP),
        ("order_date", None, "date", Kind.DATE),
        ("order_date", Kind.TIMESTAMP, "timestamp", Kind.TIMESTAMP),
        ("_loaded_at", None, "recent_timestamp", Kind.TIMESTAMP),
        ("_fivetran_synced", None, "recent_timestamp", Kind.TIMESTAMP),
        ("is_active", None, "boolean", Kind.BOOLEAN),
        ("has_discount", None, "boolean", Kind.BOOLEAN),
        ("deleted_at", None, "timestamp", Kind.TIMESTAMP),
        ("notes", None, "sentence", Kind.VARCHAR),
        ("email", Kind.INTEGER, "integer", Kind.INTEGER),
        ("something", None, "text", Kind.VARCHAR),
        ("something", Kind.DOUBLE, "double", Kind.DOUBLE),
        ("something", Kind.DECIMAL, "amount", Kind.DECIMAL),
        ("something", Kind.BOOLEAN, "boolean", Kind.BOOLEAN),
        ("paid", None, "text", Kind.VARCHAR),
    ],
)
def test_choose_from_name_then_type(name, kind, generator, chosen):
    assert choose(name, kind) == (generator, chosen)


def test_every_generator_is_described_and_chosen_ones_exist():
    assert all(GENERATORS.values())
    for name in ["id", "x", "email", "status", "created_at", "loaded_at", "zip", "notes"]:
        for kind in [None, *Kind]:
            assert choose(name, kind)[0] in GENERATORS
