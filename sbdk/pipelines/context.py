"""What a pipeline's generate(ctx) receives."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING

from sbdk.settings import DataVolume

if TYPE_CHECKING:
    import numpy as np

    from sbdk.generators import Window


@dataclass
class PipelineContext:
    """Everything a pipeline needs to make reproducible rows.

    seed, as_of: fix the data; the same values always give the same rows.
    volume: rows to make per table (in incremental mode: the size of the new slice).
    window: (start, end) µs since epoch (UTC) in which new timestamps must fall.
    incremental: True when appending a slice after what is loaded.
    next_ids: first value of each id column to use (1, or max loaded + 1 when incremental).
    """

    seed: int
    as_of: date
    volume: DataVolume
    window: Window
    incremental: bool = False
    next_ids: Mapping[str, int] = field(default_factory=dict)
    _signups: Callable[[], np.ndarray] | None = None

    @cached_property
    def signups(self) -> np.ndarray:
        """Signup time (µs since epoch, UTC) of user i+1 at index i."""
        if self._signups is None:
            from sbdk.generators import users

            return users.signups(self.volume.users, self.seed, self.as_of)
        return self._signups()

    def next_id(self, column: str) -> int:
        return int(self.next_ids.get(column, 1))
