"""raw_events: what users did, grouped into sessions.

Every event belongs to an existing user (ctx.signups holds their signup times) and happens after
that user's signup, inside ctx.window. CURSOR makes this table --incremental: a new, later slice is
appended, continuing the event and session ids.
"""

from sbdk.generators import events

TABLE = "raw_events"
PRIMARY_KEY = "event_id"
CURSOR = "occurred_at"


def generate(ctx):
    yield from events.generate(
        ctx.volume.events,
        seed=ctx.seed,
        signups=ctx.signups,
        window=ctx.window,
        first_event_id=ctx.next_id("event_id"),
        first_session_id=ctx.next_id("session_id"),
    )
