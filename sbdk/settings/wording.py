"""How values and lists of problems read in a settings message.

A bad value is shown as the user would recognise it, but never so that the message itself fails or
floods the terminal: a value can be a 4,000-digit number, a nested list thousands deep, or text with
characters no terminal encodes.
"""

from __future__ import annotations

import sys
from datetime import date, time
from typing import Any

# Long enough for any real path or value; short enough that a 5,000-character one does not flood the terminal.
_LONGEST = 200


def shown(value: Any) -> str:
    """`value` as Python writes it (`'text'`, `5`, `None`), cut to a readable length."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return number(value)
    if isinstance(value, (date, time)):
        # As the user typed it: a date or time read from a variable, not Python's datetime(...).
        return repr(value.isoformat())
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        return f"a {type(value).__name__} nested too deeply to show"
    return text if len(text) <= _LONGEST else text[: _LONGEST - 3] + "..."


def number(value: int) -> str:
    """A whole number with thousands separators; a very long one by its length."""
    if value.bit_length() <= 200:
        return f"{value:,}"
    sign = "a negative" if value < 0 else "a"
    try:
        return f"{sign} number of {len(str(abs(value))):,} digits"
    except ValueError:  # Python converts at most sys.get_int_max_str_digits() digits to text
        return f"{sign} number of more than {sys.get_int_max_str_digits():,} digits"


def printable(key: str) -> str:
    """A key as text a terminal can show (escapes, not raw control characters or lone surrogates)."""
    return key if key.isprintable() else repr(key)[1:-1]


def numbered(problems: list[str]) -> str:
    """One problem as it is; several as (1) ... (2) ..."""
    if len(problems) == 1:
        return problems[0]
    return " ".join(f"({position}) {problem}" for position, problem in enumerate(problems, start=1))
