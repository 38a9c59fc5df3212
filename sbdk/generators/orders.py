"""raw_orders: one order per purchase event of the world's sessions (see sbdk.generators.world).

An order is placed seconds to minutes after its purchase event, in the same session and UTC day. Its
product category is the cart's; its amount follows that category's price range, in the currency of
the user's country. Its status is where the order stands at the end of the loaded days: recent
orders are still pending or processing, older ones shipped, completed, cancelled or refunded.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from sbdk.generators import BATCH_ROWS, MICROS_PER_DAY, STREAM_ORDERS, batch_bounds, rng
from sbdk.generators._pools import categorical, decimal_from_cents, weighted_choice
from sbdk.generators.world import HOUR, TAIL_PURCHASE, World

STATUSES = ("pending", "processing", "shipped", "completed", "cancelled", "refunded")
PENDING, PROCESSING, SHIPPED, COMPLETED, CANCELLED, REFUNDED = range(6)
CANCELLED_SHARE = 0.06  # orders cancelled before they ship
REFUNDED_SHARE = 0.05  # orders refunded after delivery
# The shop bills in three currencies: pounds in the UK, euros in the euro area and Sweden, dollars
# elsewhere. USD per unit, as in the dbt project's `usd_per_currency_unit` var.
CURRENCIES = ("USD", "EUR", "GBP")
USD_PER_UNIT = np.array([1.00, 1.08, 1.27])
CURRENCY_OF_COUNTRY = {"GB": 2, "DE": 1, "FR": 1, "ES": 1, "IT": 1, "NL": 1, "SE": 1}
PAYMENT_METHODS = ("card", "paypal", "bank_transfer", "apple_pay", "google_pay")
PAYMENT_WEIGHTS = np.array([0.55, 0.2, 0.07, 0.1, 0.08])

SCHEMA = pa.schema(
    [
        pa.field("order_id", pa.int64(), nullable=False),
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("session_id", pa.int64(), nullable=False),
        pa.field("event_id", pa.int64(), nullable=False),
        pa.field("ordered_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("status_updated_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("amount", pa.decimal128(12, 2), nullable=False),
        pa.field("currency", pa.string()),
        pa.field("quantity", pa.int32()),
        pa.field("product_category", pa.string()),
        pa.field("payment_method", pa.string()),
        pa.field("discount", pa.decimal128(12, 2)),
    ]
)


def generate(world: World, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """One order per purchase session of `world`, in time order, ids from world.first_id("order_id")."""
    sessions = world.sessions
    bought = np.flatnonzero(sessions.tail == TAIL_PURCHASE)
    if not len(bought):
        # An empty batch still carries the schema, so the table exists (empty) after loading.
        yield pa.RecordBatch.from_pylist([], schema=SCHEMA)
        return
    # The purchase is the last event of its session.
    purchase_event = world.first_id("event_id") + np.cumsum(sessions.lengths)[bought] - 1
    first_order = world.first_id("order_id")
    categories = tuple(name for name, _low, _high in world.profile.prices)
    low = np.log(np.array([lo for _name, lo, _hi in world.profile.prices]))
    high = np.log(np.array([hi for _name, _lo, hi in world.profile.prices]))
    codes = [code for code, _share in world.profile.countries]
    currency_of = np.array([CURRENCY_OF_COUNTRY.get(code, 0) for code in codes], dtype=np.int64)
    for number, start, stop in batch_bounds(len(bought), batch_rows):
        r = rng(world.seed, STREAM_ORDERS, world._key, number)
        n = stop - start
        s = bought[start:stop]
        user = sessions.user[s]
        ordered = sessions.start[s] + sessions.duration[s] + sessions.order_delay[s]
        category = sessions.category[s].astype(np.int64)
        currency = currency_of[world.user_traits.country[user - 1]]
        quantity = np.minimum(r.geometric(0.6, n), 5).astype(np.int32)
        unit_usd = np.exp(low[category] + r.random(n) * (high[category] - low[category]))
        unit_cents = np.maximum(np.round(unit_usd / USD_PER_UNIT[currency] * 100), 1).astype(np.int64)
        gross = unit_cents * quantity
        discounted = r.random(n) < 0.25
        discount = np.where(discounted, (gross * r.uniform(0.05, 0.3, n)).astype(np.int64), 0)
        status, updated = _lifecycle(r, ordered, world.days.end_micros)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(np.arange(first_order + start, first_order + stop, dtype=np.int64)),
                pa.array(user),
                pa.array(world.first_id("session_id") + s),
                pa.array(purchase_event[start:stop]),
                pa.array(ordered, pa.timestamp("us", tz="UTC")),
                categorical(STATUSES, status),
                pa.array(updated, pa.timestamp("us", tz="UTC")),
                decimal_from_cents(gross - discount),
                categorical(CURRENCIES, currency),
                pa.array(quantity),
                categorical(categories, category),
                categorical(PAYMENT_METHODS, weighted_choice(r, PAYMENT_WEIGHTS, n)),
                decimal_from_cents(discount),
            ],
            schema=SCHEMA,
        )


def _lifecycle(r: np.random.Generator, ordered: np.ndarray, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Each order's status at `end` (the end of the loaded days) and when it got there.

    pending -> processing (within the hour) -> shipped (half a day to 3 days) -> completed (1 to 6
    days later); some are cancelled before shipping, some refunded 2 to 25 days after completion.
    """
    n = len(ordered)
    fate = r.random(n)
    cancelled, refunded = fate < CANCELLED_SHARE, fate > 1 - REFUNDED_SHARE
    processing_at = ordered + (r.exponential(0.3, n) * HOUR).astype(np.int64) + 1
    cancelled_at = ordered + (r.uniform(0.2, 48.0, n) * HOUR).astype(np.int64)
    shipped_at = ordered + (r.uniform(0.5, 3.0, n) * MICROS_PER_DAY).astype(np.int64)
    completed_at = shipped_at + (r.uniform(1.0, 6.0, n) * MICROS_PER_DAY).astype(np.int64)
    refunded_at = completed_at + (r.uniform(2.0, 25.0, n) * MICROS_PER_DAY).astype(np.int64)
    status = np.full(n, PENDING, dtype=np.int64)
    updated = ordered.copy()
    for reached, at, value in (
        (~cancelled, processing_at, PROCESSING),
        (~cancelled, shipped_at, SHIPPED),
        (~cancelled, completed_at, COMPLETED),
        (refunded, refunded_at, REFUNDED),
        (cancelled, cancelled_at, CANCELLED),
    ):
        done = reached & (at < end)
        status[done] = value
        updated[done] = at[done]
    return status, updated
