"""Rich consoles and the one place errors become messages."""

from __future__ import annotations

import traceback

from rich.console import Console
from rich.markup import escape

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}")


def error(exc: BaseException, *, verbose: bool) -> None:
    """Red one-paragraph message with the fix; the traceback only when verbose."""
    from sbdk.errors import SbdkError

    if verbose:
        err_console.print(escape("".join(traceback.format_exception(exc))), style="dim")
    if isinstance(exc, SbdkError):
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
        if exc.hint:
            err_console.print(f"[bold]fix:[/] {escape(exc.hint)}", soft_wrap=True)
    else:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
