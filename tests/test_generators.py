"""The generators alone: pure, seeded, relational, bounded batches, and a product that behaves (issue #16).

Every figure is measured on the generated Arrow tables (numpy, or DuckDB in memory for the joins) and
compared with what the profile configures, so that a change of a knob shows in the data.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sbdk.generators import BATCH_ROWS, HISTORY_DAYS, MICROS_PER_DAY, events, orders, users
from sbdk.generators.world import Days, World, day_number, traits
from sbdk.settings.model import DEFAULTS, DataProfile, Funnel

PROFILE = DataProfile.from_dict(DEFAULTS["data_profile"])
AS_OF = date.fromisoformat(DEFAULTS["as_of"])
FIRST = AS_OF - timedelta(days=HISTORY_DAYS)
# The days of a full load, as `sbdk dev` makes them: the last incremental_days are left for --incremental.
HISTORY = Days(FIRST, FIRST, AS_OF - timedelta(days=PROFILE.incremental_days))
DEFAULT_VOLUME = (DEFAULTS["data_volume"]["users"], DEFAULTS["data_volume"]["events"])
TEN_X = (DEFAULT_VOLUME[0] * 10, DEFAULT_VOLUME[1] * 10)
# Large enough for figures of one day (holidays, incremental days) to be steady.
DAILY_VOLUME = (50_000, 500_000)
HOUR = 3_600_000_000
# Written out rather than imported: the dbt project's `usd_per_currency_unit` var says the same.
USD_PER_UNIT = {"USD": 1.00, "EUR": 1.08, "GBP": 1.27}
EURO_COUNTRIES = {"DE", "FR", "ES", "IT", "NL", "SE"}


@dataclass(frozen=True)
class Load:
    world: World
    users: pa.Table
    events: pa.Table
    orders: pa.Table


def tables(world: World) -> Load:
    def table(module) -> pa.Table:
        return pa.Table.from_batches(list(module.generate(world)), schema=module.SCHEMA)

    return Load(world, table(users), table(events), table(orders))


@lru_cache(maxsize=8)
def full_load(
    volume: tuple[int, int] = DEFAULT_VOLUME, seed: int = 42, profile: DataProfile = PROFILE, days: Days = HISTORY
) -> Load:
    """A full load; shared by the tests that only read it."""
    return tables(World(seed, profile, days, users=volume[0], events=volume[1]))


def micros(column: pa.ChunkedArray) -> np.ndarray:
    return column.cast(pa.int64()).to_numpy()


def utc_days(column: pa.ChunkedArray) -> np.ndarray:
    return micros(column) // MICROS_PER_DAY


def utc_hours(column: pa.ChunkedArray) -> np.ndarray:
    return micros(column) % MICROS_PER_DAY // HOUR


def strings(column: pa.ChunkedArray) -> np.ndarray:
    return column.to_numpy(zero_copy_only=False)


def sql(query: str, **named: pa.Table) -> list[tuple]:
    with duckdb.connect() as con:
        for name, table in named.items():
            con.register(name, table)
        return con.execute(query).fetchall()


def events_per_day(load: Load, days: Days) -> np.ndarray:
    """Events on each of days.start..stop-1 (index 0: days.start)."""
    return np.bincount(utc_days(load.events["occurred_at"]) - day_number(days.start), minlength=len(days.numbers))


def weekdays(days: Days) -> np.ndarray:
    """Monday 0 .. Sunday 6 of each of the days."""
    return np.array([(days.start + timedelta(days=i)).weekday() for i in range(len(days.numbers))])


def holiday_factor(profile: DataProfile, day: date) -> float:
    return next((factor for month, dom, factor in profile.holidays if (month, dom) == (day.month, day.day)), 1.0)


def order_faults(e: pa.Table, o: pa.Table) -> dict[str, int]:
    """Orders breaking the rule "an order is its purchase event, minutes later, the same day", by fault."""
    row = sql(
        """
        select
            count(*) filter (where e.event_id is null),
            count(*) filter (where e.event_type <> 'purchase'),
            count(*) filter (where e.user_id <> o.user_id),
            count(*) filter (where e.session_id <> o.session_id),
            count(*) filter (where epoch_us(o.ordered_at) - epoch_us(e.occurred_at) not between 0 and 300000000),
            count(*) filter (where epoch_us(o.ordered_at) // 86400000000 <> epoch_us(e.occurred_at) // 86400000000),
            count(*) - count(distinct o.event_id),
            count(*) - count(distinct o.order_id),
            (select count(*) from e where event_type = 'purchase') - count(distinct o.event_id),
            (select count(*) from o where user_id not in (select user_id from e))
        from o left join e on e.event_id = o.event_id
        """,
        e=e,
        o=o,
    )[0]
    names = ("no event", "not a purchase", "other user", "other session", "not 0-5 min after", "other UTC day",
             "event with two orders", "duplicate order_id", "purchases without order", "user without events")  # fmt: skip
    return dict(zip(names, row))


def assert_orders_are_the_purchases(load: Load) -> None:
    faults = order_faults(load.events, load.orders)
    assert faults == dict.fromkeys(faults, 0)
    assert load.orders.num_rows > 0


@pytest.mark.parametrize("volume", [DEFAULT_VOLUME, TEN_X], ids=["1x", "10x"])
def test_exact_row_counts_and_unique_ids(volume):
    load = full_load(volume)
    assert load.users.num_rows == volume[0]
    assert load.events.num_rows == volume[1]
    for table, column in ((load.users, "user_id"), (load.events, "event_id"), (load.orders, "order_id")):
        ids = table[column].to_numpy()
        assert (ids == np.arange(1, table.num_rows + 1)).all(), column


@pytest.mark.parametrize("volume", [DEFAULT_VOLUME, TEN_X], ids=["1x", "10x"])
def test_orders_are_the_purchase_events_one_to_one(volume):
    load = full_load(volume)
    assert_orders_are_the_purchases(load)


def test_order_faults_are_detected():
    """The check above can fail: an order moved to another session, a day later, or dropped."""
    load = full_load()
    session = load.orders["session_id"].to_numpy().copy()
    session[0] += 1
    ordered = micros(load.orders["ordered_at"]).copy()
    ordered[1] += MICROS_PER_DAY
    broken = (
        load.orders.set_column(2, "session_id", pa.array(session))
        .set_column(4, "ordered_at", pa.array(ordered, pa.timestamp("us", tz="UTC")))
        .slice(0, load.orders.num_rows - 1)
    )
    faults = order_faults(load.events, broken)
    assert faults["other session"] == 1
    assert faults["not 0-5 min after"] == 1 and faults["other UTC day"] == 1
    assert faults["purchases without order"] == 1


def test_emails_are_unique_at_100k_users_case_insensitively():
    u = pa.Table.from_batches(users.generate(World(1, PROFILE, HISTORY, users=100_000, events=0)))
    assert u.num_rows == 100_000
    assert pc.count_distinct(pc.utf8_lower(u["email"])).as_py() == 100_000
    assert pc.count_distinct(u["username"]).as_py() == 100_000


def test_same_seed_gives_identical_tables_and_another_seed_does_not():
    first = tables(World(7, PROFILE, HISTORY, users=2_000, events=20_000))
    second = tables(World(7, PROFILE, HISTORY, users=2_000, events=20_000))
    other = tables(World(8, PROFILE, HISTORY, users=2_000, events=20_000))
    for name in ("users", "events", "orders"):
        assert getattr(first, name).equals(getattr(second, name)), name
        assert not getattr(first, name).equals(getattr(other, name)), name


def test_threads_reading_one_world_at_once_share_one_computation():
    # A load makes every table in a thread of its own (sbdk.pipelines.load): events and orders both
    # read the sessions first thing (functools.cached_property has no lock since Python 3.12).
    world = World(7, PROFILE, HISTORY, users=2_000, events=20_000)
    together = threading.Barrier(4)

    def read(_: int) -> tuple[object, object]:
        together.wait()
        return world.sessions, world.user_traits

    with ThreadPoolExecutor(4) as pool:
        seen = list(pool.map(read, range(4)))
    assert all(sessions is seen[0][0] and user_traits is seen[0][1] for sessions, user_traits in seen)
    alone = tables(World(7, PROFILE, HISTORY, users=2_000, events=20_000))
    for name in ("users", "events", "orders"):
        assert getattr(tables(world), name).equals(getattr(alone, name)), name


def test_everything_happens_after_signup_and_within_the_days():
    load = full_load()
    signup = micros(load.users["signup_at"])
    start, end = day_number(HISTORY.start) * MICROS_PER_DAY, HISTORY.end_micros
    assert start <= signup.min() and signup.max() < end
    for table, column in ((load.events, "occurred_at"), (load.orders, "ordered_at")):
        when = micros(table[column])
        assert (when > signup[table["user_id"].to_numpy() - 1]).all(), column
        assert when.max() < end, column
    updated = micros(load.orders["status_updated_at"])
    assert (updated >= micros(load.orders["ordered_at"])).all()
    assert updated.max() < end


def test_users_are_adults_and_columns_are_complete():
    load = full_load()
    signup = load.users["signup_at"].to_pylist()
    for born, joined in zip(load.users["date_of_birth"].to_pylist(), signup):
        # 18 on the day of signing up at the latest (born on 29 February: 28 February counts, the stricter).
        birthday = date(born.year + 18, born.month, 28 if (born.month, born.day) == (2, 29) else born.day)
        assert birthday <= joined.date() and joined.year - born.year <= 81
    assert set(load.users["plan"].to_pylist()) <= set(users.PLANS)
    for table in (load.users, load.events, load.orders):
        for column in table.column_names:
            assert table[column].null_count == 0, column


def test_sessions_are_one_user_one_utc_day_in_id_order():
    e = full_load().events
    (multi_user, multi_day, out_of_order, landing, sessions) = sql(
        """
        with s as (
            select session_id, count(distinct user_id) as users,
                   count(distinct epoch_us(occurred_at) // 86400000000) as days,
                   min(occurred_at) as started, arg_min(event_type, event_id) as first_type
            from e group by session_id
        )
        select count(*) filter (where users > 1), count(*) filter (where days > 1),
               count(*) filter (where started < previous), count(*) filter (where first_type not in ('page_view', 'login')),
               count(*)
        from (select *, lag(started) over (order by session_id) as previous from s)
        """,
        e=e,
    )[0]
    assert (multi_user, multi_day, out_of_order, landing) == (0, 0, 0, 0)
    assert e.num_rows / sessions > 2
    assert set(e["event_type"].to_pylist()) <= set(events.EVENT_TYPES)


def test_events_of_a_session_are_in_time_order():
    e = full_load().events
    session, when = e["session_id"].to_numpy(), micros(e["occurred_at"])
    same = session[1:] == session[:-1]
    assert (when[1:][same] >= when[:-1][same]).all()


def test_activity_is_skewed_towards_a_fifth_of_users():
    load = full_load()
    per_user = np.bincount(load.events["user_id"].to_numpy(), minlength=load.users.num_rows + 1)[1:]
    top_fifth = np.sort(per_user)[::-1][: load.users.num_rows // 5].sum()
    assert top_fifth / per_user.sum() > 0.6


def test_batches_are_bounded_so_memory_stays_flat():
    world = World(3, PROFILE, HISTORY, users=2_500, events=25_000)
    assert [b.num_rows for b in users.generate(world, batch_rows=1_000)] == [1_000, 1_000, 500]
    order_sizes = [b.num_rows for b in orders.generate(world, batch_rows=100)]
    assert len(order_sizes) > 2 and set(order_sizes[:-1]) == {100} and 0 < order_sizes[-1] <= 100
    batches = list(events.generate(world, batch_rows=4_000))
    assert sum(b.num_rows for b in batches) == 25_000
    # A batch ends with the session that reaches the next multiple of batch_rows: no session is
    # split, and the batches stay within one session of batch_rows.
    sessions = [set(b["session_id"].to_pylist()) for b in batches]
    assert all(not (a & b) for a, b in itertools.pairwise(sessions))
    ends = np.cumsum([b.num_rows for b in batches])[:-1]
    wanted = 4_000 * np.arange(1, len(batches))
    assert len(batches) == 7
    assert ((ends >= wanted) & (ends < wanted + world.sessions.lengths.max())).all()
    # The same at the default batch size: a million events come in ten batches of about BATCH_ROWS.
    default_sizes = [b.num_rows for b in full_load(TEN_X).events.to_batches()]
    assert len(default_sizes) == 10 and max(default_sizes) < BATCH_ROWS + 100


def test_events_without_users_are_refused():
    with pytest.raises(ValueError, match="at least one user"):
        list(events.generate(World(1, PROFILE, HISTORY, users=0, events=10)))


def test_currency_follows_the_country_and_amounts_the_category_prices():
    load = full_load()
    country = strings(load.users["country"])[load.orders["user_id"].to_numpy() - 1]
    expected = np.where(country == "GB", "GBP", np.where(np.isin(country, list(EURO_COUNTRIES)), "EUR", "USD"))
    currency = strings(load.orders["currency"])
    assert (currency == expected).all()
    assert {"USD", "EUR", "GBP"} <= set(currency)
    cents = (
        pc.multiply(pc.add(load.orders["amount"], load.orders["discount"]), 100).cast(pa.float64()).to_numpy()
        / load.orders["quantity"].to_numpy()
    )
    assert (cents == np.round(cents)).all()  # whole cents per unit: the amount is quantity x a unit price
    rate = np.vectorize(USD_PER_UNIT.get)(currency)
    unit_usd = cents / 100 * rate
    prices = {name: (low, high) for name, low, high in PROFILE.prices}
    category = strings(load.orders["product_category"])
    low = np.vectorize(lambda c: prices[c][0])(category)
    high = np.vectorize(lambda c: prices[c][1])(category)
    # Half a cent of rounding, in the order's currency.
    assert (unit_usd >= low - 0.005 * rate).all() and (unit_usd <= high + 0.005 * rate).all()
    # The range is used, not a corner of it: electronics run from tens of dollars to a thousand.
    electronics = unit_usd[category == "electronics"]
    assert electronics.min() < 60 and electronics.max() > 800
    discount = load.orders["discount"].cast(pa.float64()).to_numpy()
    assert (discount >= 0).all() and (load.orders["amount"].cast(pa.float64()).to_numpy() > 0).all()


def test_peak_hour_has_at_least_three_times_the_events_of_the_quietest():
    per_hour = np.bincount(utc_hours(full_load().events["occurred_at"]), minlength=24)
    assert per_hour.min() > 0
    assert per_hour.max() >= 3 * per_hour.min()
    # And the peak is where the profile puts it (evening UTC), the trough at night.
    assert abs(int(per_hour.argmax()) - int(np.argmax(PROFILE.hourly))) <= 2
    assert abs(int(per_hour.argmin()) - int(np.argmin(PROFILE.hourly))) <= 2


def weekend_ratio(load: Load) -> float:
    per_day, weekday = events_per_day(load, load.world.days), weekdays(load.world.days)
    return per_day[weekday >= 5].mean() / per_day[weekday < 5].mean()


def expected_weekend_ratio(profile: DataProfile) -> float:
    return float(np.mean(profile.weekly[5:]) / np.mean(profile.weekly[:5]))


@pytest.mark.parametrize(
    "weekly", [PROFILE.weekly, (1, 1, 1, 1, 1, 2, 2), (1.5, 1.5, 1.5, 1.5, 1.5, 1, 1)], ids=["default", "2x", "0.67x"]
)
def test_weekend_to_weekday_events_follow_the_weekly_weights(weekly):
    profile = replace(PROFILE, weekly=tuple(float(w) for w in weekly))
    expected = expected_weekend_ratio(profile)
    assert weekend_ratio(full_load(profile=profile)) == pytest.approx(expected, rel=0.2)


def monthly_signups_per_day(load: Load) -> np.ndarray:
    """Signups per day in each full calendar month of the history, in order."""
    days = utc_days(load.users["signup_at"]).astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    full = np.arange(np.datetime64(HISTORY.start, "M"), np.datetime64(HISTORY.stop, "M"))
    lengths = ((full + 1).astype("datetime64[D]") - full.astype("datetime64[D]")).astype(int)
    return np.array([(months == m).sum() for m in full]) / lengths


def test_signups_grow_month_after_month():
    rates = monthly_signups_per_day(full_load())
    assert len(rates) >= 11
    # 5 % a month: about 1.05 ** 8 = 1.48 times as many signups in the last 3 months as in the first 3.
    assert rates[-3:].sum() / rates[:3].sum() > 1.3
    assert np.corrcoef(np.arange(len(rates)), rates)[0, 1] > 0.8


def test_signups_stay_flat_without_growth():
    rates = monthly_signups_per_day(full_load(profile=replace(PROFILE, monthly_growth=0.0)))
    assert rates[-3:].sum() / rates[:3].sum() == pytest.approx(1.0, abs=0.1)


def funnel_rates(e: pa.Table) -> dict[str, tuple[int, int]]:
    """(sessions reaching the step, sessions reaching the step before) for each step of the funnel."""
    session, kind = e["session_id"].to_numpy(), strings(e["event_type"])
    reached = {step: len(np.unique(session[kind == step])) for step in ("add_to_cart", "checkout", "purchase")}
    return {
        "add_to_cart": (reached["add_to_cart"], len(np.unique(session))),
        "checkout": (reached["checkout"], reached["add_to_cart"]),
        "purchase": (reached["purchase"], reached["checkout"]),
    }


@pytest.mark.parametrize(
    "funnel", [PROFILE.funnel, Funnel(add_to_cart=0.4, checkout=0.3, purchase=0.9)], ids=["default", "changed"]
)
def test_funnel_step_rates_match_the_profile(funnel):
    load = full_load(profile=replace(PROFILE, funnel=funnel))
    for step, (reached, of) in funnel_rates(load.events).items():
        rate = getattr(funnel, step)
        # Four standard errors of a binomial share: the sessions are independent draws.
        assert abs(reached / of - rate) <= 4 * np.sqrt(rate * (1 - rate) / of), (step, reached, of)
    assert load.orders.num_rows == funnel_rates(load.events)["purchase"][0]


def test_users_who_never_return_are_seen_on_their_signup_day_only():
    load = full_load()
    returns = traits(42, PROFILE, 1, load.users.num_rows).returns
    assert (load.users["is_active"].to_numpy() == returns).all()
    assert 0.3 < 1 - returns.mean() < 0.4  # never_return = 0.35
    user = load.events["user_id"].to_numpy()
    since = utc_days(load.events["occurred_at"]) - utc_days(load.users["signup_at"])[user - 1]
    gone = ~returns[user - 1]
    assert gone.sum() > 1_000
    assert (since[gone] == 0).all()
    assert (since[~gone] > 0).mean() > 0.5


def test_activity_decays_after_signup():
    load = full_load()
    e = load.events
    first_event = np.unique(e["session_id"].to_numpy(), return_index=True)[1]
    user = e["user_id"].to_numpy()[first_event]
    signup_day = utc_days(load.users["signup_at"])[user - 1]
    since = utc_days(e["occurred_at"])[first_event] - signup_day
    # Only users who could have sessions 60 to 66 days after signing up within the history.
    old = signup_day <= HISTORY.numbers[-1] - 66
    first_week = ((since <= 6) & old).sum()
    ninth_week = ((since >= 60) & (since <= 66) & old).sum()
    assert ninth_week > 0
    assert first_week > 3 * ninth_week


def test_activity_follows_the_users_traits():
    load = full_load()
    activity = traits(42, PROFILE, 1, load.users.num_rows).activity
    per_user = np.bincount(load.events["user_id"].to_numpy(), minlength=load.users.num_rows + 1)[1:]
    heavy = activity >= np.quantile(activity, 0.8)
    assert per_user[heavy].sum() / per_user.sum() > 0.5


def test_traits_belong_to_the_user_id_whatever_the_load():
    many = traits(42, PROFILE, 1, 70_000)
    for first_id, count in ((500, 10), (1, 1_000), (65_530, 20), (65_537, 3)):
        some = traits(42, PROFILE, first_id, count)
        window = slice(first_id - 1, first_id - 1 + count)
        assert (some.activity == many.activity[window]).all()
        assert (some.returns == many.returns[window]).all()
        assert (some.country == many.country[window]).all()
    assert not (traits(43, PROFILE, 1, 1_000).activity == many.activity[:1_000]).all()


def holiday_ratio(load: Load, day: date) -> float:
    """Events on `day` over the mean of the same weekday two and one weeks before and after."""
    per_day = events_per_day(load, load.world.days)
    i = (day - load.world.days.start).days
    return per_day[i] / per_day[[i - 14, i - 7, i + 7, i + 14]].mean()


def test_a_holiday_has_its_factor_times_the_traffic_of_its_weekday():
    # 28 November 2025, a Friday: factor 2.5 in the default profile.
    black_friday = date(2025, 11, 28)
    assert holiday_factor(PROFILE, black_friday) == 2.5
    assert holiday_ratio(full_load(DAILY_VOLUME), black_friday) == pytest.approx(2.5, rel=0.3)


def test_a_moved_holiday_moves_the_traffic():
    profile = replace(PROFILE, holidays=((6, 13, 3.0),))
    load = full_load(DAILY_VOLUME, profile=profile)
    assert holiday_ratio(load, date(2025, 6, 13)) == pytest.approx(3.0, rel=0.3)
    assert holiday_ratio(load, date(2025, 11, 28)) == pytest.approx(1.0, rel=0.3)


def next_world(history: list[Load], day: date, seed: int = 42) -> World:
    """The World of `sbdk dev --incremental` on `day`, after the loads of `history` (a full one first)."""
    user_ids = np.concatenate([load.users["user_id"].to_numpy() for load in history])
    signup_at = np.concatenate([micros(load.users["signup_at"]) for load in history])
    known = np.full(int(user_ids.max()), -1, dtype=np.int64)
    known[user_ids - 1] = signup_at
    recent: dict[date, int] = {}
    for load in history:
        per_day = pa.table(
            {"day": utc_days(load.events["occurred_at"]), "session_id": load.events["session_id"]}
        ).group_by("day").aggregate([("session_id", "count_distinct")])  # fmt: skip
        for number, sessions in zip(per_day["day"].to_pylist(), per_day["session_id_count_distinct"].to_pylist()):
            recent[date(1970, 1, 1) + timedelta(days=number)] = sessions

    def after(column: str, *named: str) -> int:
        return 1 + max(int(pc.max(getattr(load, table)[column]).as_py() or 0) for load in history for table in named)

    first_ids = {
        "user_id": after("user_id", "users"),
        "event_id": after("event_id", "events"),
        "session_id": after("session_id", "events"),
        "order_id": after("order_id", "orders"),
    }
    return World(
        seed,
        PROFILE,
        Days(FIRST, day, day + timedelta(days=1)),
        events=None,
        known_signups=known,
        recent_sessions=recent,
        new_users=True,
        first_ids=first_ids,
    )


@lru_cache(maxsize=1)
def incremental_days(count: int = 3) -> list[Load]:
    """A full load at DAILY_VOLUME, then `count` incremental days after it, each knowing the ones before."""
    history = [full_load(DAILY_VOLUME)]
    for i in range(count):
        history.append(tables(next_world(history, HISTORY.stop + timedelta(days=i))))
    return history


def test_incremental_days_are_new_days_with_continuing_ids():
    history = incremental_days()
    full, days = history[0], history[1:]
    for i, load in enumerate(days):
        day = day_number(HISTORY.stop) + i
        assert load.events.num_rows > 0 and load.users.num_rows > 0 and load.orders.num_rows > 0
        assert set(utc_days(load.events["occurred_at"])) == {day}
        assert set(utc_days(load.orders["ordered_at"])) == {day}
        assert set(utc_days(load.users["signup_at"])) == {day}
        before = history[: i + 1]
        for table, column in (("users", "user_id"), ("events", "event_id"), ("orders", "order_id")):
            ids = getattr(load, table)[column].to_numpy()
            previous = max(int(pc.max(getattr(b, table)[column]).as_py()) for b in before)
            assert (ids == np.arange(previous + 1, previous + 1 + len(ids))).all(), (i, column)
        sessions = load.events["session_id"].to_numpy()
        assert sessions.min() > max(int(pc.max(b.events["session_id"]).as_py()) for b in before)
        assert_orders_are_the_purchases(load)
        # Events belong to users loaded before, or signed up that day, and come after their signup.
        signups = np.concatenate([micros(b.users["signup_at"]) for b in history[: i + 2]])
        user = load.events["user_id"].to_numpy()
        assert user.max() <= len(signups)
        assert (micros(load.events["occurred_at"]) > signups[user - 1]).all()
        assert np.isin(user, load.users["user_id"].to_numpy()).any() and (user < full.users.num_rows).any()


def test_incremental_days_keep_the_level_of_the_same_weekday():
    history = incremental_days()
    full = history[0]
    per_day = events_per_day(full, HISTORY)
    for i, load in enumerate(history[1:]):
        day = HISTORY.stop + timedelta(days=i)
        weeks = [day - timedelta(weeks=k) for k in range(1, 5)]
        # Holidays among the days compared (11-28, 12-20 and 12-26 by default) count at their factor.
        level = np.mean([per_day[(d - HISTORY.start).days] / holiday_factor(PROFILE, d) for d in weeks])
        expected = level * holiday_factor(PROFILE, day)
        assert load.events.num_rows == pytest.approx(expected, rel=0.3), day
        signups = np.bincount(utc_days(full.users["signup_at"]) - day_number(HISTORY.start))
        signup_level = np.mean([signups[(d - HISTORY.start).days] / holiday_factor(PROFILE, d) for d in weeks])
        assert load.users.num_rows == pytest.approx(signup_level * holiday_factor(PROFILE, day), rel=0.4), day


def test_incremental_days_keep_the_rhythm_of_the_hours():
    by_weight = np.argsort(PROFILE.hourly)
    quiet, busy = by_weight[:6], by_weight[-6:]
    for load in incremental_days()[1:]:
        per_hour = np.bincount(utc_hours(load.events["occurred_at"]), minlength=24)
        # About 8.7 times as many by default: the six busiest hours weigh 7.8, the six quietest 0.9.
        assert per_hour[busy].sum() > 3 * per_hour[quiet].sum()
        assert per_hour.max() > per_hour.min()


def test_incremental_days_are_byte_identical_for_the_same_arguments():
    history = incremental_days()
    again = tables(next_world(history[:1], HISTORY.stop))
    other = tables(next_world(history[:1], HISTORY.stop, seed=43))
    for name in ("users", "events", "orders"):
        assert getattr(again, name).equals(getattr(history[1], name)), name
        assert not getattr(other, name).equals(getattr(history[1], name)), name
