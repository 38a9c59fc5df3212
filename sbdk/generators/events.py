"""raw_events: what users did, grouped into sessions, skewed towards a minority of heavy users."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from sbdk.generators import BATCH_ROWS, STREAM_ACTIVITY, STREAM_EVENTS, Window, batch_bounds, rng
from sbdk.generators._pools import categorical, weighted_choice

EVENT_TYPES = (
    "page_view", "click", "search", "login", "logout",
    "add_to_cart", "remove_from_cart", "checkout", "purchase",
)  # fmt: skip
# Weights of events after the first of a session (the first is a login or a page view).
EVENT_WEIGHTS = np.array([0.42, 0.20, 0.10, 0.0, 0.03, 0.12, 0.03, 0.06, 0.04])
DEVICES = ("desktop", "mobile", "tablet")
DEVICE_WEIGHTS = np.array([0.50, 0.42, 0.08])
PAGES = (
    "/", "/products", "/products/electronics", "/products/books", "/products/home",
    "/products/clothing", "/products/sports", "/products/beauty", "/products/toys",
    "/search", "/cart", "/checkout", "/checkout/complete", "/account", "/login", "/logout",
    "/blog", "/help", "/pricing",
)  # fmt: skip
# The page each event type happens on; -1 means "any product or content page".
_PAGE_OF_TYPE = np.array([-1, -1, 9, 14, 15, 10, 10, 11, 12])
_BROWSE_PAGES = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 17, 18, 13])
SITE = "https://shop.example.com"
MEAN_EVENTS_PER_SESSION = 5.0
MEAN_SECONDS_BETWEEN_EVENTS = 45.0

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


def activity_weights(users: int, seed: int) -> np.ndarray:
    """How active each user is: log-normal, so about a fifth of users make well over half the rows."""
    return rng(seed, STREAM_ACTIVITY).lognormal(0.0, 1.3, users)


def generate(
    events: int,
    *,
    seed: int,
    signups: np.ndarray,
    window: Window,
    first_event_id: int = 1,
    first_session_id: int = 1,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """`events` events of the users whose signup times are `signups` (user i+1 at index i).

    Each session starts after its user's signup and inside `window`, and lasts minutes, so every
    event lies at or after the signup and before `window.end`.
    """
    if events and not len(signups):
        raise ValueError("events need at least one user")
    weights = activity_weights(len(signups), seed)
    next_session = first_session_id
    if events == 0:
        # An empty batch still carries the schema, so the table exists (empty) after loading.
        yield pa.RecordBatch.from_pylist([], schema=SCHEMA)
        return
    for number, start, stop in batch_bounds(events, batch_rows):
        n = stop - start
        r = rng(seed, STREAM_EVENTS, number, first_event_id)
        lengths = r.geometric(1.0 / MEAN_EVENTS_PER_SESSION, int(n / MEAN_EVENTS_PER_SESSION * 1.5) + 16)
        while lengths.sum() < n:
            lengths = np.concatenate([lengths, r.geometric(1.0 / MEAN_EVENTS_PER_SESSION, len(lengths))])
        cut = int(np.searchsorted(np.cumsum(lengths), n))
        lengths = lengths[: cut + 1].copy()
        lengths[-1] -= lengths.sum() - n
        sessions = len(lengths)

        session_user = weighted_choice(r, weights, sessions)
        # A session starts between the later of signup and window start, and an hour before the end.
        earliest = np.maximum(signups[session_user], window.start)
        latest = np.maximum(window.end - 3_600_000_000, earliest)
        session_start = earliest + (r.random(sessions) * (latest - earliest)).astype(np.int64)
        session_device = weighted_choice(r, DEVICE_WEIGHTS, sessions)

        session_of_event = np.repeat(np.arange(sessions), lengths)
        first_in_session = np.zeros(n, dtype=bool)
        first_in_session[np.concatenate([[0], np.cumsum(lengths)[:-1]])] = True
        gaps = (r.exponential(MEAN_SECONDS_BETWEEN_EVENTS, n) * 1_000_000).astype(np.int64)
        gaps = np.minimum(gaps, 600_000_000)  # at most 10 minutes between two clicks
        gaps[first_in_session] = 0
        # Time since session start: running sum of gaps, restarted at every session.
        run = np.cumsum(gaps)
        offsets = run - np.repeat(run[first_in_session], lengths)
        occurred = np.minimum(session_start[session_of_event] + offsets, window.end - 1)

        kind = weighted_choice(r, EVENT_WEIGHTS, n)
        kind[first_in_session] = np.where(r.random(sessions) < 0.35, 3, 0)
        page = _PAGE_OF_TYPE[kind]
        browse = page < 0
        page[browse] = _BROWSE_PAGES[r.integers(0, len(_BROWSE_PAGES), int(browse.sum()))]
        urls = pa.array([SITE + path for path in PAGES], pa.string())

        batch = pa.RecordBatch.from_arrays(
            [
                pa.array(np.arange(first_event_id + start, first_event_id + stop, dtype=np.int64)),
                pa.array(session_user[session_of_event] + 1),
                pa.array(next_session + session_of_event),
                categorical(EVENT_TYPES, kind),
                pa.array(occurred, pa.timestamp("us", tz="UTC")),
                urls.take(pa.array(page)),
                categorical(DEVICES, session_device[session_of_event]),
            ],
            schema=SCHEMA,
        )
        next_session += sessions
        yield batch
