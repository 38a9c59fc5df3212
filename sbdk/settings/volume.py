"""The data volume rules, written once: each table holds MIN_ROWS..MAX_ROWS rows, and there are no
events without users. The settings validation, `sbdk init` and `sbdk dev`'s options
(--users/--events/--scale) all check them here; only the wording of the key differs.

Orders are no volume: every order comes from a purchase event (data_profile.funnel).
"""

from __future__ import annotations

from sbdk.errors import UsageError
from sbdk.settings.model import MAX_ROWS_PER_TABLE, DataVolume

MIN_ROWS = 0
MAX_ROWS = MAX_ROWS_PER_TABLE
# Why the cross-table rule holds: every generated event (and so every order) carries a user_id from raw_users.
NEEDS_USERS = "every event belongs to a user"


def rows_allowed(count: int) -> bool:
    return MIN_ROWS <= count <= MAX_ROWS


def lacks_users(users: int, events: int) -> bool:
    """True when events would have no user to belong to."""
    return users == 0 and events > 0


def check_option(name: str, count: int) -> int:
    """`count` given as --<name> on the command line, or a UsageError naming the option."""
    if not rows_allowed(count):
        raise UsageError(
            f"--{name} {count} is outside {MIN_ROWS}..{MAX_ROWS:,}.", hint="Give a number of rows in that range."
        )
    return count


def check_options(users: int, events: int) -> DataVolume:
    """The volume given on the command line (`sbdk init --users ...`), or a UsageError."""
    volume = DataVolume(users=check_option("users", users), events=check_option("events", events))
    _check_users(volume)
    return volume


def resolve_volume(configured: DataVolume, *, users: int | None, events: int | None, scale: float | None) -> DataVolume:
    """The volume of one `sbdk dev` run: the configured one scaled by --scale, then each table given as
    --users/--events replaced; a UsageError naming the option when a rule is broken."""
    largest = max(configured.as_dict().values())
    if scale is not None and not (0 <= scale and scale * largest <= MAX_ROWS):
        raise UsageError(
            f"--scale {scale} must be between 0 and {MAX_ROWS // max(1, largest):,} "
            f"for this project (at most {MAX_ROWS:,} rows per table).",
            hint="Give a positive factor such as 0.1, 2 or 10.",
        )
    factor = 1.0 if scale is None else scale
    values = {}
    for name, given in (("users", users), ("events", events)):
        values[name] = check_option(name, given) if given is not None else round(getattr(configured, name) * factor)
    volume = DataVolume(**values)
    _check_users(volume)
    return volume


def _check_users(volume: DataVolume) -> None:
    if lacks_users(volume.users, volume.events):
        raise UsageError(f"0 users with events: {NEEDS_USERS}.", hint="Give --users 1 or more, or --events 0.")
