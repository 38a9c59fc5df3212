"""raw_orders: purchases by users, after their signup, with a realistic spread of amounts."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from sbdk.generators import BATCH_ROWS, STREAM_ORDERS, Window, batch_bounds, rng
from sbdk.generators._pools import categorical, decimal_from_cents, weighted_choice
from sbdk.generators.events import activity_weights

STATUSES = ("pending", "processing", "shipped", "completed", "cancelled", "refunded")
STATUS_WEIGHTS = np.array([0.05, 0.05, 0.15, 0.62, 0.08, 0.05])
CURRENCIES = ("USD", "EUR", "GBP")
CURRENCY_WEIGHTS = np.array([0.55, 0.33, 0.12])
CATEGORIES = ("electronics", "books", "home", "clothing", "sports", "beauty", "toys", "grocery")
CATEGORY_WEIGHTS = np.array([0.18, 0.14, 0.14, 0.18, 0.10, 0.09, 0.07, 0.10])
PAYMENT_METHODS = ("card", "paypal", "bank_transfer", "apple_pay", "google_pay")
PAYMENT_WEIGHTS = np.array([0.55, 0.2, 0.07, 0.1, 0.08])

SCHEMA = pa.schema(
    [
        pa.field("order_id", pa.int64(), nullable=False),
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("ordered_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("amount", pa.decimal128(12, 2), nullable=False),
        pa.field("currency", pa.string()),
        pa.field("quantity", pa.int32()),
        pa.field("product_category", pa.string()),
        pa.field("payment_method", pa.string()),
        pa.field("discount", pa.decimal128(12, 2)),
    ]
)


def generate(
    orders: int,
    *,
    seed: int,
    signups: np.ndarray,
    window: Window,
    first_order_id: int = 1,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """`orders` orders of the users whose signup times are `signups`, inside `window`."""
    if orders and not len(signups):
        raise ValueError("orders need at least one user")
    # Buyers are the same heavy users who click the most (shared activity weights).
    weights = activity_weights(len(signups), seed)
    if orders == 0:
        # An empty batch still carries the schema, so the table exists (empty) after loading.
        yield pa.RecordBatch.from_pylist([], schema=SCHEMA)
        return
    for number, start, stop in batch_bounds(orders, batch_rows):
        n = stop - start
        r = rng(seed, STREAM_ORDERS, number, first_order_id)
        user = weighted_choice(r, weights, n)
        earliest = np.maximum(signups[user], window.start)
        ordered = earliest + (r.random(n) * (window.end - 1 - earliest)).astype(np.int64)
        quantity = np.minimum(r.geometric(0.6, n), 10).astype(np.int32)
        unit_cents = np.round(r.lognormal(3.4, 0.8, n) * 100).astype(np.int64) + 99
        gross = unit_cents * quantity
        discounted = r.random(n) < 0.3
        discount = np.where(discounted, (gross * r.uniform(0.05, 0.3, n)).astype(np.int64), 0)
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array(np.arange(first_order_id + start, first_order_id + stop, dtype=np.int64)),
                pa.array(user + 1),
                pa.array(ordered, pa.timestamp("us", tz="UTC")),
                categorical(STATUSES, weighted_choice(r, STATUS_WEIGHTS, n)),
                decimal_from_cents(gross - discount),
                categorical(CURRENCIES, weighted_choice(r, CURRENCY_WEIGHTS, n)),
                pa.array(quantity),
                categorical(CATEGORIES, weighted_choice(r, CATEGORY_WEIGHTS, n)),
                categorical(PAYMENT_METHODS, weighted_choice(r, PAYMENT_WEIGHTS, n)),
                decimal_from_cents(discount),
            ],
            schema=SCHEMA,
        )
        yield batch
