"""Paths as users type them and as sbdk shows them."""

from __future__ import annotations

from pathlib import Path

from sbdk.errors import UsageError


def user_path(value: str | Path) -> Path:
    """`value` with a leading `~` or `~user` expanded as a shell would; an unknown user is a
    UsageError, not the RuntimeError pathlib raises ("~nosuchuser", or "~0" with no such user)."""
    path = Path(value)
    # Only a leading ~ is a home folder: pathlib reads "./~" as "~" and would expand it.
    if not str(value).startswith("~"):
        return path
    try:
        return path.expanduser()
    except RuntimeError as exc:
        first = path.parts[0] if path.parts else str(value)
        raise UsageError(
            f"Cannot expand {first!r} in {str(value)!r}: there is no such user's home folder.",
            hint=f"Write the path without the leading ~ (for example ./{str(value).lstrip('~')}), or quote it as a relative path.",
        ) from exc


def shown(path: Path, root: Path) -> str:
    """`path` relative to `root` when it lies inside it (as a user would type it), else in full."""
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return str(path)
