"""JSON from the network, read strictly: every way a body can fail is a `BadJson` with a message for
its sender, never another exception (issue #14: non-UTF-8 bytes, JSON nested 10,000 deep and a
5,000-digit number each ended in a 500 and a traceback).

Pure standard library, like sbdk/server/github.py. Python's `json` accepts more than JSON: NaN and
Infinity (which then reach the server's database), numbers of any length (a long integer raises a
ValueError that names sys.set_int_max_str_digits), and nesting as deep as the interpreter's stack.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# No JSON a person or GitHub writes has a number this long (a float is exact to 17 digits).
MAX_NUMBER_CHARS = 100
# A \uXXXX escape of a surrogate (D800-DFFF): paired ones are fine, lone ones are not text.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class BadJson(ValueError):
    """The body is not JSON this server reads; the message says why, for the sender."""


def utf8(body: bytes) -> str:
    """The body as text: JSON on the network is UTF-8 (RFC 8259)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadJson(f"The body is not UTF-8 text: {exc.reason} at byte {exc.start}.") from None


def loads(text: str, *, max_depth: int | None = None) -> Any:
    """The JSON value of `text`, refusing NaN, Infinity, numbers over MAX_NUMBER_CHARS characters,
    strings that are not Unicode text (a lone surrogate escape such as \\ud800, which no UTF-8
    writer, log line or database takes) and, given `max_depth`, arrays and objects nested deeper."""
    try:
        value = json.loads(text, parse_constant=_constant, parse_int=_integer, parse_float=_float)
    except json.JSONDecodeError as exc:
        raise BadJson(f"The body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None
    except RecursionError:
        raise BadJson("The body's JSON is nested too deeply to be read.") from None
    # Walked only when needed: the body of a GitHub delivery may be 25 MB of JSON.
    surrogates = _SURROGATE_ESCAPE.search(text) is not None
    if max_depth is not None or surrogates:
        _check(value, max_depth, surrogates)
    return value


def parse(body: bytes, *, max_depth: int | None = None) -> Any:
    """`loads` of the body's UTF-8 text."""
    return loads(utf8(body), max_depth=max_depth)


def _check(value: Any, max_depth: int | None, surrogates: bool) -> None:
    """Refuse nesting over `max_depth` (a scalar is level 0) and, if `surrogates`, strings holding a
    lone surrogate. Iterative: the point is not to need the interpreter's stack."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: list[Any] = [*item.keys(), *item.values()] if surrogates else list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            if surrogates and isinstance(item, str) and not _unicode(item):
                raise BadJson("A string of the body holds a lone surrogate (\\ud800 to \\udfff without its pair).")
            continue
        if max_depth is not None and level > max_depth:
            raise BadJson(f"The body's JSON is nested more than {max_depth} levels deep.")
        stack.extend((child, level + 1) for child in children)


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _constant(name: str) -> Any:
    raise BadJson(f"{name} is not JSON: numbers must be finite.")


def _long(text: str) -> BadJson:
    return BadJson(f"A number of {len(text):,} characters: this server reads numbers of at most {MAX_NUMBER_CHARS}.")


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _long(text)
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _long(text)
    value = float(text)
    if not math.isfinite(value):
        raise BadJson(f"{text} is too large a number: numbers must be finite.")
    return value
