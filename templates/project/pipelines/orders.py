"""raw_orders: purchases, after each user's signup, amounts in DECIMAL(12,2).

CURSOR makes this table --incremental: a new, later slice is appended with continuing order ids.
"""

from sbdk.generators import orders

TABLE = "raw_orders"
PRIMARY_KEY = "order_id"
CURSOR = "ordered_at"


def generate(ctx):
    yield from orders.generate(
        ctx.volume.orders,
        seed=ctx.seed,
        signups=ctx.signups,
        window=ctx.window,
        first_order_id=ctx.next_id("order_id"),
    )
