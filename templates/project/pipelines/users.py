"""raw_users: one row per person who signed up.

Edit freely: this file is yours. generate(ctx) yields pyarrow batches; ctx.seed and ctx.as_of make the
data reproducible, ctx.volume.users says how many rows to make. To add a column, append it to each
batch; for example, replace generate with this (the import goes at the top of the file):

    import pyarrow as pa


    def generate(ctx):
        for batch in users.generate(ctx.volume.users, seed=ctx.seed, as_of=ctx.as_of):
            yield batch.append_column("source", pa.array(["signup_form"] * batch.num_rows))
"""

from sbdk.generators import users

TABLE = "raw_users"
PRIMARY_KEY = "user_id"


def generate(ctx):
    yield from users.generate(ctx.volume.users, seed=ctx.seed, as_of=ctx.as_of)
