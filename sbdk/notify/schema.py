"""The columns of the live raw tables, and what changed in them between two loads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sbdk.stores.base import Store

Columns = dict[str, dict[str, str]]  # table -> column -> lower-case type, as the store names it


@dataclass(frozen=True)
class ColumnChange:
    table: str
    column: str | None  # None: the whole table is gone
    before: str | None  # the column's type before; None when it was added
    after: str | None  # its type now; None when it was removed

    @property
    def kind(self) -> str:
        if self.before is None:
            return "added"
        return "removed" if self.after is None else "retyped"

    def describe(self) -> str:
        if self.column is None:
            return f"{self.table}: table removed"
        if self.kind == "retyped":
            return f"{self.table}.{self.column} retyped: {self.before} -> {self.after}"
        return f"{self.table}.{self.column} {self.kind} ({self.before or self.after})"


def read_columns(store: Store) -> Columns:
    """The columns of every live raw table of `store`, read through one short session."""
    with store.session() as session:
        return {table: session.columns(table) for table in sorted(session.live_tables())}


def column_changes(before: Columns, after: Columns) -> tuple[ColumnChange, ...]:
    """Columns removed, retyped or added in the tables both loads have, and tables gone (a new
    table is no change: nothing read it before)."""
    changes: list[ColumnChange] = []
    for table in sorted(before):
        if table not in after:
            changes.append(ColumnChange(table, None, "table", None))
            continue
        old, new = before[table], after[table]
        changes += [ColumnChange(table, c, old[c], None) for c in old if c not in new]
        changes += [ColumnChange(table, c, old[c], new[c]) for c in old if c in new and old[c] != new[c]]
        changes += [ColumnChange(table, c, None, new[c]) for c in new if c not in old]
    return tuple(changes)
