"""raw_users: one row per person who signed up, ids in signup order (see sbdk.generators.world)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sbdk.generators import BATCH_ROWS, MICROS_PER_DAY, STREAM_USERS, batch_bounds, rng
from sbdk.generators._pools import COUNTRIES, categorical, pools, weighted_choice
from sbdk.generators.world import World

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


def generate(world: World, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The users who sign up on the world's days: all of a full load, or an incremental day's new ones."""
    p = pools()
    signups = world.new_signups
    first_id = len(world.signups) - len(signups) + 1
    # Pools list countries in COUNTRIES order; the profile may name a subset, in any order.
    pool_index = np.array([list(COUNTRIES).index(code) for code, _share in world.profile.countries])
    if not len(signups):
        # An empty batch still carries the schema, so the table exists (empty) after loading.
        yield pa.RecordBatch.from_pylist([], schema=SCHEMA)
        return
    for number, start, stop in batch_bounds(len(signups), batch_rows):
        n = stop - start
        r = rng(world.seed, STREAM_USERS, world._key, number)
        ids = np.arange(first_id + start, first_id + stop, dtype=np.int64)
        traits = world.user_traits
        country = pool_index[traits.country[ids - 1]]
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
        signup = signups[start:stop]
        # Adults: 18 to 80 years old when they sign up.
        signup_day = (signup // MICROS_PER_DAY).astype(np.int32)
        dob = signup_day - r.integers(18 * 365 + 5, 80 * 365, n).astype(np.int32)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(ids),
                email,
                p.first_names.values.take(first_idx),
                p.last_names.values.take(last_idx),
                username,
                p.country_codes.take(pa.array(country)),
                p.cities.values.take(pa.array(p.cities.sample(country, r.random(n)))),
                pa.array(signup, pa.timestamp("us", tz="UTC")),
                categorical(PLANS, weighted_choice(r, PLAN_WEIGHTS, n)),
                categorical(REFERRERS, weighted_choice(r, REFERRER_WEIGHTS, n)),
                # Users who never came back after their signup day count as inactive.
                pa.array(traits.returns[ids - 1]),
                pa.array(dob, pa.date32()),
            ],
            schema=SCHEMA,
        )
