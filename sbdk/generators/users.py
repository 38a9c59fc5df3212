"""raw_users: one row per person who signed up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sbdk.generators import (
    BATCH_ROWS,
    HISTORY_DAYS,
    MICROS_PER_DAY,
    STREAM_SIGNUPS,
    STREAM_USERS,
    batch_bounds,
    end_micros,
    rng,
)
from sbdk.generators._pools import categorical, pools, weighted_choice

PLANS = ("free", "basic", "pro", "enterprise")
PLAN_WEIGHTS = np.array([0.52, 0.25, 0.16, 0.07])
REFERRERS = ("organic", "search", "social", "referral", "email", "ads")
REFERRER_WEIGHTS = np.array([0.30, 0.25, 0.15, 0.12, 0.08, 0.10])

SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("email", pa.string(), nullable=False),
        pa.field("first_name", pa.string()),
        pa.field("last_name", pa.string()),
        pa.field("username", pa.string(), nullable=False),
        pa.field("country", pa.string()),
        pa.field("city", pa.string()),
        pa.field("signup_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("plan", pa.string()),
        pa.field("referrer", pa.string()),
        pa.field("is_active", pa.bool_()),
        pa.field("date_of_birth", pa.date32()),
    ]
)


def signups(users: int, seed: int, as_of: date, batch_rows: int = BATCH_ROWS) -> np.ndarray:
    """Signup time (µs since epoch, UTC) of users 1..`users`; events and orders start after it.

    Signups lean towards recent dates (a growing product) and end a day before `as_of`, so every
    user has time to act before the end of the history.
    """
    out = np.empty(users, dtype=np.int64)
    last = end_micros(as_of) - MICROS_PER_DAY
    span = (HISTORY_DAYS - 1) * MICROS_PER_DAY
    for number, start, stop in batch_bounds(users, batch_rows):
        u = rng(seed, STREAM_SIGNUPS, number).random(stop - start) ** 0.6
        out[start:stop] = last - span + (u * span).astype(np.int64)
    return out


def generate(users: int, *, seed: int, as_of: date, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    p = pools()
    signup = signups(users, seed, as_of, batch_rows)
    as_of_days = (np.datetime64(as_of, "D") - np.datetime64("1970-01-01", "D")).astype(np.int32)
    if users == 0:
        # An empty batch still carries the schema, so the table exists (empty) after loading.
        yield pa.RecordBatch.from_pylist([], schema=SCHEMA)
        return
    for number, start, stop in batch_bounds(users, batch_rows):
        n = stop - start
        r = rng(seed, STREAM_USERS, number)
        ids = np.arange(start + 1, stop + 1, dtype=np.int64)
        country = weighted_choice(r, p.country_weights, n)
        first_idx = pa.array(p.first_names.sample(country, r.random(n)))
        last_idx = pa.array(p.last_names.sample(country, r.random(n)))
        first_slug = p.first_names.slugs.take(first_idx)
        last_slug = p.last_names.slugs.take(last_idx)
        id_text = pc.cast(pa.array(ids), pa.string())
        domain = p.domains.take(pa.array(r.integers(0, len(p.domains), n)))
        # The user id inside the address makes every email unique by construction, at any volume.
        # Some addresses keep capitals, as real sign-up forms do; staging lower-cases them.
        local = pc.binary_join_element_wise(first_slug, last_slug, id_text, "")
        local = pc.if_else(pa.array(r.random(n) < 0.1), pc.utf8_capitalize(local), local)
        email = pc.binary_join_element_wise(local, domain, "@")
        username = pc.binary_join_element_wise(pc.utf8_slice_codeunits(first_slug, 0, 1), last_slug, id_text, "")
        # Adults: 19 to 80 years old at `as_of` (18+ at signup, which is at most two years earlier).
        dob = as_of_days - r.integers(19 * 365 + 5, 80 * 365, n).astype(np.int32)
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array(ids),
                email,
                p.first_names.values.take(first_idx),
                p.last_names.values.take(last_idx),
                username,
                p.country_codes.take(pa.array(country)),
                p.cities.values.take(pa.array(p.cities.sample(country, r.random(n)))),
                pa.array(signup[start:stop], pa.timestamp("us", tz="UTC")),
                categorical(PLANS, weighted_choice(r, PLAN_WEIGHTS, n)),
                categorical(REFERRERS, weighted_choice(r, REFERRER_WEIGHTS, n)),
                pa.array(r.random(n) < 0.85),
                pa.array(dob, pa.date32()),
            ],
            schema=SCHEMA,
        )
        yield batch
