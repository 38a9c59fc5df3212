"""Rich consoles, the layout rules every command shares, and the one place errors become messages.

On a terminal, output fits its width: text wraps at word boundaries (a hanging indent under a label),
tables choose their column widths. Piped or redirected, nothing is wrapped (Rich would assume 80 columns):
each line goes out whole, so a path can be copied and `grep` finds a row, tables at their natural width,
and no line ends in padding. Colours follow Rich: off when not a terminal, and NO_COLOR is respected.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from typing import Any

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.segment import Segment, Segments
from rich.table import Table
from rich.text import Text

# Wider than any table sbdk prints: tables written to a pipe are measured against it.
_UNBOUNDED = 100_000


class SbdkConsole(Console):
    """A Rich console that wraps only on a terminal (see the module docstring)."""

    def print(self, *objects: Any, soft_wrap: bool | None = None, **kwargs: Any) -> None:
        if self.is_terminal:
            super().print(*objects, soft_wrap=soft_wrap, **kwargs)
            return
        shown = [unpadded(self, item) if isinstance(item, Table) else item for item in objects]
        super().print(*shown, soft_wrap=True if soft_wrap is None else soft_wrap, **kwargs)


console = SbdkConsole(highlight=False)
err_console = SbdkConsole(stderr=True, highlight=False)


def unpadded(console: Console, renderable: RenderableType) -> Segments:
    """`renderable` at its natural width, each line without the padding that would end it."""
    width = Measurement.get(console, console.options.update_width(_UNBOUNDED), renderable).maximum
    segments: list[Segment] = []
    for line in console.render_lines(renderable, console.options.update_width(max(width, 1)), pad=False):
        segments += _rstrip(line)
        segments.append(Segment.line())
    return Segments(segments)


def _rstrip(line: list[Segment]) -> list[Segment]:
    while line and not line[-1].control:
        text = line[-1].text.rstrip()
        if text:
            line[-1] = Segment(text, line[-1].style)
            break
        line.pop()
    return line


def hanging(lead: str | Text, body: str | Text) -> Table:
    """`lead`, then `body` wrapped at word boundaries in the width left, its later lines indented
    under its first (a hanging indent). Strings are markup."""
    grid = Table.grid()
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(lead, body)
    return grid


def print_whole(console: Console, label: str, token: str, *, style: str = "") -> None:
    """`label` and a `token` that must stay whole to be copied (a path): on one line when it fits,
    else the token alone on the next line, never split by sbdk (a terminal soft-wraps it, and copies
    it whole)."""
    line = Text.assemble(label, token, style=style)
    if not console.is_terminal or line.cell_len <= console.width:
        console.print(line, soft_wrap=True)
        return
    console.print(Text(label.rstrip(), style=style))
    console.print(Text(token, style=style), soft_wrap=True)


def table_overhead(columns: int) -> int:
    """Cells a `Table(show_edge=False)` adds to its columns' widths: padding and separators."""
    return 3 * columns - 1 if columns else 0


def fit_columns(natural: Sequence[int], minimum: Sequence[int], width: int) -> list[int] | None:
    """Column widths for a `Table(show_edge=False)` at most `width` cells wide: each column at least
    its minimum, the space left shared out to the columns that want more; None when the minimums
    alone do not fit."""
    spare = width - table_overhead(len(natural)) - sum(minimum)
    if spare < 0:
        return None
    widths = list(minimum)
    wanting = sorted((i for i in range(len(widths)) if natural[i] > widths[i]), key=lambda i: natural[i] - widths[i])
    for done, index in enumerate(wanting):
        extra = min(spare // (len(wanting) - done), natural[index] - widths[index])
        widths[index] += extra
        spare -= extra
    return widths


def warn(message: str) -> None:
    err_console.print(hanging("[yellow]warning:[/] ", escape(message)))


def error(exc: BaseException, *, verbose: bool) -> None:
    """Red one-paragraph message with the fix; the traceback only when verbose."""
    from sbdk.errors import SbdkError

    if verbose:
        err_console.print(escape("".join(traceback.format_exception(exc))), style="dim")
    if isinstance(exc, SbdkError):
        err_console.print(hanging("[bold red]error:[/] ", escape(exc.message)))
        if exc.hint:
            err_console.print(hanging("[bold]fix:[/] ", escape(exc.hint)))
    else:
        err_console.print(hanging("[bold red]error:[/] ", escape(str(exc))))
