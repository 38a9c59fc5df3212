"""The expressions of `expression_is_true` tests, read with sqlglot, turned into constraints where they
can be satisfied: a bound (`amount >= 0`, `quantity between 1 and 10`), a computed column
(`total = subtotal + tax`) or an order between two columns (`shipped_at >= ordered_at`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from sbdk.synth.model import Origin

if TYPE_CHECKING:
    from sbdk.synth.constraints import _Column, _Table

# A name as the test sees it -> (source key, column, factor): the name is that source column times factor.
Resolver = Callable[[str], "tuple[str, str, float] | None"]
_FLIP: dict[type, type] = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE, exp.EQ: exp.EQ}


def constrain(expression: str, resolve: Resolver, tables: dict[str, _Table], origin: Origin) -> str | None:
    """Apply `expression` to the columns it names (`resolve`: a name as the test sees it -> (source key,
    column)); the reason it cannot be satisfied, or None."""
    try:
        tree = sqlglot.parse_one(expression, dialect="duckdb")
    except sqlglot.errors.ParseError:
        return f"the expression `{expression}` does not parse"
    parts = list(tree.flatten()) if isinstance(tree, exp.And) else [tree]
    for part in parts:
        reason = _one(part, resolve, tables, origin)
        if reason:
            return f"cannot satisfy `{expression}`: {reason}"
    return None


def _one(part: Any, resolve: Resolver, tables: dict[str, _Table], origin: Origin) -> str | None:
    if isinstance(part, exp.Paren):
        return _one(part.this, resolve, tables, origin)
    if isinstance(part, exp.Not) and isinstance(part.this, exp.Is):
        return None  # `x is not null`: nothing is null unless synth.yml says so
    if isinstance(part, exp.Between) and isinstance(part.this, exp.Column):
        column = _column(part.this, resolve, tables)
        low, high = _literal(part.args.get("low")), _literal(part.args.get("high"))
        if column is None or low is None or high is None:
            return "only a column between two numbers is understood"
        column.minimum, column.maximum = low, high
        column.origins.append(origin)
        return None
    if type(part) not in _FLIP:
        return f"`{part.sql()}` is not a comparison"
    left, right, kind = part.this, part.expression, type(part)  # a comparison: a Binary
    if not isinstance(left, exp.Column) and isinstance(right, exp.Column):
        left, right, kind = right, left, _FLIP[kind]
    if not isinstance(left, exp.Column):
        return f"`{part.sql()}` compares no column"
    column = _column(left, resolve, tables)
    if column is None:
        return f"{left.name} is not read from a source as is"
    column.origins.append(origin)
    literal = _literal(right)
    if literal is not None:
        found = resolve(left.name)
        return _bound(column, kind, literal, found[2] if found else 1.0)
    return _computed(column, kind, right, resolve, tables, left)


def _bound(column: _Column, kind: type, value: Any, factor: float = 1.0) -> str | None:
    if factor != 1.0 and isinstance(value, (int, float)):
        value = value / factor  # a bound on dollars is one on cents
        value = int(value) if float(value).is_integer() else value
    step = 0.01 if isinstance(value, float) else 1
    if kind is exp.GTE:
        column.minimum = value
    elif kind is exp.GT:
        column.minimum = value + step
    elif kind is exp.LTE:
        column.maximum = value
    elif kind is exp.LT:
        column.maximum = value - step
    else:
        column.values = [value]
    return None


def _computed(
    column: _Column, kind: type, right: exp.Expression, resolve: Resolver, tables: dict[str, _Table], left: exp.Column
) -> str | None:
    """`a = <expression of b, c>` computes a; `a >= b` makes a = b plus a non-negative offset. Columns a
    model scaled alike (all cents / 100) keep an equation of sums and differences: it holds on the
    source columns too, in whole numbers."""
    home = resolve(left.name)
    names = list(right.find_all(exp.Column))
    resolved = [resolve(c.name) for c in names]
    if not names or home is None or any(r is None or r[0] != home[0] for r in resolved):
        return "its columns are not all read from one source table as they are"
    factors = {home[2], *(r[2] for r in resolved if r is not None)}
    scaled = factors != {1.0}
    if scaled and (len(factors) > 1 or any(right.find_all(exp.Mul, exp.Div))):
        return "its columns are scaled differently by the models (or multiplied), so no source values make it hold"
    table = tables[home[0]]
    equation = frozenset([home[1], *(r[1] for r in resolved if r is not None)])
    if kind is exp.EQ and equation in table.equations:
        return None  # the same equation, rearranged (`a - b = c` after `c + b = a`): it already holds
    renamed = right.copy()
    for node, found in zip(list(renamed.find_all(exp.Column)), resolved, strict=True):
        assert found is not None
        other = table.column(found[1])  # the other side is made too
        other.whole = other.whole or scaled
        node.replace(exp.column(found[1], quoted=True))
    column.whole = column.whole or scaled
    text = renamed.sql(dialect="duckdb")
    if kind is exp.EQ:
        if column.expression is not None:
            return f"{left.name} is already computed by another expression"
        column.expression = text
        table.equations.append(equation)
    elif kind in (exp.GTE, exp.GT):
        column.after = (text, kind is exp.GT)
    else:
        return f"`{left.name} {'<' if kind is exp.LT else '<='} ...` is not supported; write it as `... >= {left.name}`"
    return None


def offset(text: str, temporal: bool, *, strict: bool) -> str:
    """`text` plus a non-negative offset that varies from row to row without randomness (DuckDB's hash
    of `text`): up to 3 days for dates and times, up to 99 for numbers; at least 1 when `strict`."""
    if temporal:
        return f"({text}) + to_seconds((hash({text}) % 259200)::bigint + {1 if strict else 0})"
    return f"({text}) + (hash({text}) % 100)::bigint + {1 if strict else 0}"


def _column(node: exp.Column, resolve: Resolver, tables: dict[str, _Table]) -> _Column | None:
    found = resolve(node.name)
    if found is None or found[0] not in tables:
        return None
    return tables[found[0]].column(found[1])


def _literal(node: exp.Expression | None) -> Any:
    """A literal number (or a negated one) or string as a Python value; None for anything else."""
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        value = _literal(node.this)
        return -value if value is not None else None
    if isinstance(node, exp.Paren):
        return _literal(node.this)
    if not isinstance(node, exp.Literal):
        return None
    if node.is_string:
        return node.this
    number = float(node.this)
    return int(number) if number.is_integer() and "." not in node.this else number
