"""raw_users: one row per person who signed up, ids in signup order.

Edit freely: this file is yours. generate(ctx) yields pyarrow batches; ctx.world is the synthetic
product shared by every pipeline of a run (who signs up when, their sessions and purchases), shaped by
seed, as_of, data_volume and data_profile in sbdk_config.json. To add a column, append it to each
batch; for example, replace generate with this (the import goes at the top of the file):

    import pyarrow as pa


    def generate(ctx):
        for batch in users.generate(ctx.world):
            yield batch.append_column("source", pa.array(["signup_form"] * batch.num_rows))

CURSOR makes this table --incremental: each run appends the signups of the next day.
"""

from sbdk.generators import users

TABLE = "raw_users"
PRIMARY_KEY = "user_id"
CURSOR = "signup_at"


def generate(ctx):
    yield from users.generate(ctx.world)
