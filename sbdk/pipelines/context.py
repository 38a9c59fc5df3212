"""What a pipeline's generate(ctx) receives."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from sbdk.generators import locked_cached_property
from sbdk.settings import DataVolume
from sbdk.settings.model import DataProfile

if TYPE_CHECKING:
    import numpy as np

    from sbdk.generators.world import Days, World

_MICROS_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class Window:
    """Where new activity may happen: (start, end) in µs since epoch, UTC; end is exclusive."""

    start: int
    end: int


@dataclass
class PipelineContext:
    """Everything a pipeline needs to make reproducible rows.

    seed, as_of, profile: fix the data; the same values always give the same rows.
    volume: rows of a full load (users, events; orders follow from the purchases).
    days: the days this load makes (`days.start`..`days.stop`-1; the history began on `days.first`).
    window: the same days as (start, end) µs since epoch (UTC), end exclusive.
    incremental: True when appending the next day after what is loaded.
    next_ids: first value of each id column to use (1, or max loaded + 1 when incremental).
    world: the synthetic product's users and sessions for this load, shared by every pipeline of a
    run (sbdk.generators.world), so that the tables agree with each other.
    """

    seed: int
    as_of: date
    volume: DataVolume
    days: Days
    profile: DataProfile
    incremental: bool = False
    next_ids: Mapping[str, int] = field(default_factory=dict)
    # Incremental loads, and reloads of some tables only: the users loaded now, and the sessions of
    # the loaded recent days (read from the database when first needed).
    known_signups: Callable[[], np.ndarray] | None = None
    recent_sessions: Callable[[], dict[date, int]] | None = None
    new_users: bool = True

    @property
    def window(self) -> Window:
        epoch = date(1970, 1, 1)
        return Window((self.days.start - epoch).days * _MICROS_PER_DAY, (self.days.stop - epoch).days * _MICROS_PER_DAY)

    @locked_cached_property
    def world(self) -> World:
        from sbdk.generators.world import World

        return World(
            seed=self.seed,
            profile=self.profile,
            days=self.days,
            users=self.volume.users,
            events=None if self.incremental else self.volume.events,
            known_signups=self.known_signups() if self.known_signups else None,
            recent_sessions=self.recent_sessions() if self.recent_sessions else {},
            new_users=self.new_users,
            first_ids=dict(self.next_ids),
        )

    @property
    def signups(self) -> np.ndarray:
        """Signup time (µs since epoch, UTC) of user i+1 at index i (-1: no such user)."""
        return self.world.signups

    def next_id(self, column: str) -> int:
        return int(self.next_ids.get(column, 1))


def release_world(ctx: PipelineContext) -> None:
    """Forget `ctx.world` once every pipeline is done with it (it is made again if read again)."""
    ctx.__dict__.pop("world", None)
