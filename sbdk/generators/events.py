"""raw_events: the events of the world's sessions, in time order (see sbdk.generators.world).

A session is a landing (a page view, or a login), some browsing (page views, clicks, searches), then
maybe a funnel tail: the product's page, add_to_cart, checkout, purchase. Event and session ids grow
with time; every event lies after its user's signup, in its session's UTC day.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from sbdk.generators import BATCH_ROWS, STREAM_EVENTS, rng
from sbdk.generators._pools import categorical, weighted_choice
from sbdk.generators.world import (
    CLICK,
    DEVICES,
    EVENT_TYPES,
    LOGIN,
    PAGE_VIEW,
    SEARCH,
    TAIL_LENGTHS,
    TAILS,
    World,
)

SITE = "https://shop.example.com"
# What browsing events are (after the landing, before the tail).
BROWSE_TYPES = np.array([PAGE_VIEW, CLICK, SEARCH])
BROWSE_WEIGHTS = np.array([0.55, 0.30, 0.15])

SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.int64(), nullable=False),
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("session_id", pa.int64(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("occurred_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("page_url", pa.string()),
        pa.field("device", pa.string()),
    ]
)


def pages(world: World) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(page paths, the page of each event type (-1: a browsing page), browsing pages, each
    category's product page)."""
    categories = [name for name, _low, _high in world.profile.prices]
    paths = ["/", "/products", "/search", "/cart", "/checkout", "/checkout/complete", "/account", "/login",
             "/logout", "/blog", "/help", "/pricing"] + [f"/products/{name}" for name in categories]  # fmt: skip
    index = {path: i for i, path in enumerate(paths)}
    by_type = np.array(
        [-1, -1, index["/search"], index["/login"], index["/logout"], -2, index["/cart"], index["/checkout"],
         index["/checkout/complete"]]
    )  # fmt: skip
    browse = np.array(
        [index[p] for p in ("/", "/products", "/account", "/blog", "/help", "/pricing")]
        + [index[f"/products/{name}"] for name in categories]
    )
    product = np.array([index[f"/products/{name}"] for name in categories])
    return paths, by_type, browse, product


def generate(world: World, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The events of every session of `world`, about `batch_rows` per batch."""
    sessions = world.sessions
    if not len(sessions):
        # An empty batch still carries the schema, so the table exists (empty) after loading.
        yield pa.RecordBatch.from_pylist([], schema=SCHEMA)
        return
    lengths = sessions.lengths
    ends = np.cumsum(lengths)
    cuts = np.searchsorted(ends, np.arange(batch_rows, int(ends[-1]), batch_rows), side="left") + 1
    bounds = [0, *sorted({int(c) for c in cuts if 0 < c < len(sessions)}), len(sessions)]
    first_event = world.first_id("event_id")
    first_session = world.first_id("session_id")
    paths, by_type, browse_pages, product_pages = pages(world)
    urls = pa.array([SITE + path for path in paths], pa.string())
    for number, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        events_before = int(ends[lo - 1]) if lo else 0
        yield _batch(world, sessions, lo, hi, first_event + events_before, first_session, number, urls, by_type,
                     browse_pages, product_pages)  # fmt: skip


def _batch(world, sessions, lo, hi, first_event, first_session, number, urls, by_type, browse_pages, product_pages):
    r = rng(world.seed, STREAM_EVENTS, world._key, number)
    length = sessions.lengths[lo:hi]
    n = int(length.sum())
    session = np.repeat(np.arange(lo, hi), length)
    starts = np.concatenate([[0], np.cumsum(length)[:-1]])
    position = np.arange(n) - np.repeat(starts, length)
    tail_length = TAIL_LENGTHS[sessions.tail[lo:hi]]
    tail_from = np.repeat(length - tail_length, length)

    kind = BROWSE_TYPES[weighted_choice(r, BROWSE_WEIGHTS, n)].astype(np.int64)
    landing = position == 0
    kind[landing] = np.where(sessions.landing_login[lo:hi], LOGIN, PAGE_VIEW)
    in_tail = position >= tail_from
    kind[in_tail] = TAILS[sessions.tail[session[in_tail]], position[in_tail] - tail_from[in_tail]]

    page = by_type[kind]
    browsing = page == -1
    page[browsing] = browse_pages[r.integers(0, len(browse_pages), int(browsing.sum()))]
    # The tail's product page and add_to_cart are on the page of the cart's category.
    product = in_tail & ((kind == PAGE_VIEW) | (page == -2))
    page[product] = product_pages[sessions.category[session[product]]]

    # Times: the session's duration split at random between its events; the last event ends it.
    gaps = r.exponential(1.0, n)
    gaps[landing] = 0.0
    run = np.cumsum(gaps)
    run_from = np.repeat(run[starts], length)
    total = np.repeat(run[starts + length - 1], length) - run_from
    share = np.divide(run - run_from, total, out=np.zeros(n), where=total > 0)
    last = position == np.repeat(length - 1, length)
    share[last] = 1.0
    duration = sessions.duration[session]
    occurred = sessions.start[session] + (share * duration).astype(np.int64)
    occurred[last] = sessions.start[session[last]] + duration[last]

    return pa.RecordBatch.from_arrays(
        [
            pa.array(np.arange(first_event, first_event + n, dtype=np.int64)),
            pa.array(sessions.user[session]),
            pa.array(first_session + session),
            categorical(EVENT_TYPES, kind),
            pa.array(occurred, pa.timestamp("us", tz="UTC")),
            urls.take(pa.array(page)),
            categorical(DEVICES, sessions.device[session]),
        ],
        schema=SCHEMA,
    )
