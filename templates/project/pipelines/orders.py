"""raw_orders: one order per purchase event, minutes after it, in the same session (event_id links them).

Amounts are DECIMAL(12,2) in the currency of the user's country. CURSOR makes this table
--incremental: each run appends the orders of the next day, continuing the order ids.
"""

from sbdk.generators import orders

TABLE = "raw_orders"
PRIMARY_KEY = "order_id"
CURSOR = "ordered_at"


def generate(ctx):
    yield from orders.generate(ctx.world)
