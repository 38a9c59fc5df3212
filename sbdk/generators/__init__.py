"""Pure, seeded generators of synthetic data as Arrow record batches.

They take sizes, a seed and the `as_of` date, and know nothing of dlt or DuckDB (the pipelines wrap
them). Every column is drawn with numpy in bounded batches, so memory stays flat at any volume; the
same arguments always give byte-identical batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

import numpy as np

BATCH_ROWS = 100_000
MICROS_PER_DAY = 86_400_000_000
# How far back the synthetic history reaches from `as_of`.
HISTORY_DAYS = 730
# Stream ids keep every column's random numbers independent of the others.
STREAM_USERS, STREAM_SIGNUPS, STREAM_EVENTS, STREAM_ORDERS, STREAM_ACTIVITY = 1, 2, 3, 4, 5


def end_micros(as_of: date) -> int:
    """Microseconds since the epoch of midnight UTC starting `as_of`: every timestamp lies before it."""
    moment = datetime(as_of.year, as_of.month, as_of.day, tzinfo=timezone.utc)
    return int(moment.timestamp()) * 1_000_000


@dataclass(frozen=True)
class Window:
    """Where new activity may happen: (start, end) in µs since epoch, UTC; end is exclusive."""

    start: int
    end: int

    @classmethod
    def history(cls, as_of: date) -> Window:
        """The whole generated history: the HISTORY_DAYS before `as_of`."""
        end = end_micros(as_of)
        return cls(end - HISTORY_DAYS * MICROS_PER_DAY, end)


def rng(seed: int, stream: int, *parts: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, *parts])


def batch_bounds(rows: int, batch_rows: int = BATCH_ROWS):
    """(batch number, first row, stop row) for each batch of `rows`."""
    for number, start in enumerate(range(0, rows, batch_rows)):
        yield number, start, min(start + batch_rows, rows)
