"""Pure, seeded generators of synthetic data as Arrow record batches.

`world.World` holds the behaviour of the product (signups, sessions, their stories) for one load; the
`users`, `events` and `orders` modules turn it into the rows of each raw table. They know nothing of
dlt or DuckDB (the pipelines wrap them). Every column is drawn with numpy, rows in bounded batches;
the same arguments always give byte-identical batches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

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


T = TypeVar("T")


class locked_cached_property(Generic[T]):
    """A value computed on first use and kept in the instance, computed once across threads.

    A load runs every pipeline's generator in a thread of its own, and they share one World: events
    and orders both read `world.sessions` first thing. functools.cached_property held a lock up to
    Python 3.11 and holds none since 3.12, where both threads would compute it (at 100x the default
    volume, 2.8 s and 150 MB each). One lock per property, as 3.11 had: a property that needs
    others takes their locks after its own, in the order of those needs, which has no cycle. Once
    the value is stored, reading it no longer goes through here (nor the lock).
    """

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__
        self.lock = threading.RLock()

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> locked_cached_property[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> T | locked_cached_property[T]:
        if instance is None:
            return self
        values = instance.__dict__
        with self.lock:
            if self.name not in values:
                values[self.name] = self.compute(instance)
            return values[self.name]
