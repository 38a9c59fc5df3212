"""raw_events: what users did, in sessions that each tell one story (browse, cart, checkout, purchase).

Every event belongs to a user of raw_users and happens after that user's signup, within its session's
UTC day. CURSOR makes this table --incremental: each run appends the sessions of the next day,
continuing the event and session ids.
"""

from sbdk.generators import events

TABLE = "raw_events"
PRIMARY_KEY = "event_id"
CURSOR = "occurred_at"


def generate(ctx):
    yield from events.generate(ctx.world)
