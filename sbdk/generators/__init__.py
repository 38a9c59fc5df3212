"""Pure, seeded generators of synthetic data as Arrow record batches.

`world.World` holds the behaviour of the product (signups, sessions, their stories) for one load; the
`users`, `events` and `orders` modules turn it into the rows of each raw table. They know nothing of
dlt or DuckDB (the pipelines wrap them). Every column is drawn with numpy, rows in bounded batches;
the same arguments always give byte-identical batches.
"""

from __future__ import annotations

import numpy as np

BATCH_ROWS = 100_000
MICROS_PER_DAY = 86_400_000_000
# How far back the synthetic history reaches from `as_of`.
HISTORY_DAYS = 365
# Stream ids keep every column's random numbers independent of the others.
STREAM_USERS, STREAM_EVENTS, STREAM_ORDERS = 1, 3, 4


def rng(seed: int, stream: int, *parts: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, *parts])


def batch_bounds(rows: int, batch_rows: int = BATCH_ROWS):
    """(batch number, first row, stop row) for each batch of `rows`."""
    for number, start in enumerate(range(0, rows, batch_rows)):
        yield number, start, min(start + batch_rows, rows)
