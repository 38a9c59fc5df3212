"""The generators alone: pure, seeded, relational, bounded batches (no dlt, no DuckDB)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sbdk.generators import BATCH_ROWS, HISTORY_DAYS, MICROS_PER_DAY, Window, end_micros, events, orders, users

AS_OF = date(2026, 11, 1)
END = end_micros(AS_OF)
WINDOW = Window(END - HISTORY_DAYS * MICROS_PER_DAY, END)


def table(batches) -> pa.Table:
    return pa.Table.from_batches(list(batches))


def make(n_users=2_000, n_events=10_000, n_orders=4_000, seed=7):
    signups = users.signups(n_users, seed, AS_OF)
    return (
        table(users.generate(n_users, seed=seed, as_of=AS_OF)),
        table(events.generate(n_events, seed=seed, signups=signups, window=WINDOW)),
        table(orders.generate(n_orders, seed=seed, signups=signups, window=WINDOW)),
    )


def micros(column: pa.ChunkedArray) -> np.ndarray:
    return column.cast(pa.int64()).to_numpy()


def test_emails_are_unique_at_100k_users_case_insensitively():
    u = table(users.generate(100_000, seed=1, as_of=AS_OF))
    assert u.num_rows == 100_000
    assert pc.count_distinct(pc.utf8_lower(u["email"])).as_py() == 100_000
    assert pc.count_distinct(u["user_id"]).as_py() == 100_000


def test_same_seed_gives_identical_data_and_another_seed_does_not():
    first, second, other = make(seed=7), make(seed=7), make(seed=8)
    for a, b in zip(first, second):
        assert a.equals(b)
    for a, c in zip(first, other):
        assert not a.equals(c)


def test_events_and_orders_belong_to_users_after_signup_and_before_as_of():
    u, e, o = make()
    signup = dict(zip(u["user_id"].to_pylist(), micros(u["signup_at"])))
    for t, column in ((e, "occurred_at"), (o, "ordered_at")):
        user_ids = t["user_id"].to_numpy()
        assert set(user_ids) <= set(signup)
        when = micros(t[column])
        assert (when >= np.array([signup[i] for i in user_ids])).all()
        assert (when < END).all()
    assert (micros(u["signup_at"]) < END).all()


def test_users_are_adults_and_columns_are_complete():
    u, _, _ = make()
    as_of_days = (np.datetime64(AS_OF, "D") - np.datetime64("1970-01-01", "D")).astype(int)
    dob = u["date_of_birth"].cast(pa.int32()).to_numpy()
    assert ((as_of_days - dob) >= 18 * 365).all()
    assert set(u["plan"].to_pylist()) <= set(users.PLANS)
    for column in u.column_names:
        assert u[column].null_count == 0, column


def test_activity_is_skewed_towards_a_minority_of_users():
    _, e, _ = make(n_users=2_000, n_events=50_000)
    per_user = np.sort(np.bincount(e["user_id"].to_numpy()))[::-1]
    top_fifth = per_user[: 2_000 // 5].sum()
    assert top_fifth / per_user.sum() > 0.5


def test_sessions_group_events_of_one_user_and_event_types_are_fixed():
    _, e, _ = make()
    sessions = e.group_by("session_id").aggregate([("user_id", "count_distinct"), ("event_id", "count")])
    assert pc.max(sessions["user_id_count_distinct"]).as_py() == 1
    assert pc.mean(sessions["event_id_count"]).as_py() > 1.5
    assert set(e["event_type"].to_pylist()) <= set(events.EVENT_TYPES)
    assert pc.count_distinct(e["event_id"]).as_py() == e.num_rows


def test_orders_have_positive_amounts_and_known_categories():
    _, _, o = make()
    assert pc.min(o["amount"]).as_py() > 0
    assert pc.min(o["discount"]).as_py() >= 0
    assert o.schema.field("amount").type == pa.decimal128(12, 2)
    assert set(o["status"].to_pylist()) <= set(orders.STATUSES)
    assert set(o["currency"].to_pylist()) <= set(orders.CURRENCIES)
    assert pc.min(o["quantity"]).as_py() >= 1


def test_batches_are_bounded_so_memory_stays_flat():
    signups = users.signups(1_000, 3, AS_OF)
    sizes = [b.num_rows for b in events.generate(BATCH_ROWS * 2 + 5, seed=3, signups=signups, window=WINDOW)]
    assert sizes == [BATCH_ROWS, BATCH_ROWS, 5]


def test_events_without_users_are_refused():
    with pytest.raises(ValueError, match="at least one user"):
        list(events.generate(10, seed=1, signups=np.array([], dtype=np.int64), window=WINDOW))
