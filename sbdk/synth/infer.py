"""What a dbt model reads from its relations, and which types its SQL implies, from the compiled SQL.

Synthesis has to invent source tables that the user's models can run on. The sources YAML often lists
columns without types; the models' SQL says much more: `ordered_at::date`, `sum(amount)`,
`status = 'completed'`, `orders.customer_id = customers.id`. This module reads those facts from the
compiled SQL with sqlglot's scopes (never with regular expressions) and traces every column back through
CTEs, subqueries, aliases and `select *` to the relation it is read from. It never raises on bad SQL: what
it cannot read becomes a warning, because a model synthesis cannot understand must not stop the others.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, build_scope

from sbdk.synth.model import Kind

Value = str | int | float | bool
Source = exp.Table | Scope
T = TypeVar("T")


@dataclass(frozen=True)
class Usage:
    """One use of a relation's column in a model, and the type that use implies (None: it says nothing)."""

    relation: str
    column: str
    kind: Kind | None
    detail: str
    line: int
    literals: tuple[Value, ...] = ()
    joined_to: tuple[str, str] | None = None


@dataclass(frozen=True)
class Rename:
    """An output column of the model that is a relation's column passed through (or only cast), times `scale`.

    model_column "*" with column "*": every column of `relation` passes through under its own name.
    scale: the output is the column multiplied by it, as in `(subtotal / 100)::numeric(16, 2) as subtotal`
    (0.01): staging models turn cents into amounts, and a test on the amount constrains the cents. Scales
    compose through CTEs and subqueries; a plain passthrough's is 1.0.
    """

    model_column: str
    relation: str
    column: str
    scale: float = 1.0


@dataclass
class Analysis:
    """What `analyse` found in one model's compiled SQL."""

    usages: list[Usage] = field(default_factory=list)
    renames: list[Rename] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def analyse(sql: str, relations: Mapping[tuple[str, str], str]) -> Analysis:
    """The usages and renames of the relations in `relations` ((schema, identifier) -> key) in `sql`.

    Only tables named in `relations` are reported; any other table is read past, since synthesis only
    makes the sources and models it was asked about.
    """
    analysis = Analysis()
    try:
        statements = sqlglot.parse(sql, read="duckdb")
    # sqlglot's parser recurses once per nesting level: thousands of parentheses overflow the stack.
    except (SqlglotError, RecursionError) as error:
        analysis.warnings.append(f"could not parse the compiled SQL: {_first_line(error)}")
        return analysis
    queries = [query for query in map(_query_of, statements) if query is not None]
    if not queries:
        analysis.warnings.append("the compiled SQL has no select to read")
    resolver = _Resolver(relations)
    for query in queries:
        _analyse_query(query, resolver, analysis)
    analysis.usages = list(dict.fromkeys(analysis.usages))
    analysis.renames = list(dict.fromkeys(analysis.renames))
    analysis.warnings = list(dict.fromkeys(analysis.warnings))
    return analysis


def _first_line(error: BaseException) -> str:
    """The first line of an error: sqlglot appends the highlighted SQL, too long for a warning."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _query_of(statement: exp.Expr | None) -> exp.Query | None:
    """The select a statement runs: itself, or the one inside `create table ... as` / `insert`."""
    if statement is None or isinstance(statement, exp.Query):
        return statement
    inner = statement.args.get("expression")
    if isinstance(inner, exp.Subquery):
        inner = inner.unnest()
    return inner if isinstance(inner, exp.Query) else None


def _analyse_query(query: exp.Query, resolver: _Resolver, analysis: Analysis) -> None:
    """Add one query's usages, renames and warnings to `analysis`.

    Each select is read on its own, so that one sqlglot cannot follow (two derived tables without an
    alias, say) costs only its own facts.
    """
    odd = next((cte for cte in query.find_all(exp.CTE) if not isinstance(cte.this, exp.Query)), None)
    if odd is not None:
        # sqlglot would log its own warning and skip it; say it once, in our words.
        analysis.warnings.append(f"could not analyse the compiled SQL: CTE `{odd.alias}` is not a select")
        return
    try:
        root = build_scope(query)
        scopes = list(root.traverse()) if root is not None else []
    except (SqlglotError, RecursionError) as error:
        analysis.warnings.append(f"could not analyse the compiled SQL: {_first_line(error)}")
        return
    for scope in scopes:
        try:
            analysis.usages.extend(_scope_usages(resolver, scope, analysis.warnings))
        except (SqlglotError, RecursionError) as error:
            analysis.warnings.append(f"could not analyse part of the compiled SQL: {_first_line(error)}")
    if root is not None:
        try:
            analysis.renames.extend(resolver.renames(root))
        except (SqlglotError, RecursionError) as error:
            analysis.warnings.append(f"could not follow the model's columns: {_first_line(error)}")


def _scope_usages(resolver: _Resolver, scope: Scope, warnings: list[str]) -> list[Usage]:
    """The usages the column references of one select make."""
    usages: list[Usage] = []
    for column in scope.columns:
        # A correlated subquery's column is listed in the outer scope as well: count it once, where it is.
        if id(column) in scope.column_index:
            usages += _column_usages(resolver, scope, column, warnings)
    return usages + _using_usages(resolver, scope)


@dataclass(frozen=True)
class _Found:
    """A relation's column that a reference reads; cast: the value was cast on the way (its type is the cast's);
    scale: it was multiplied by that on the way (only when the caller asked to follow scaling)."""

    relation: str
    column: str
    cast: bool = False
    scale: float = 1.0


class _Resolver:
    """Traces column references back to the relations' columns, through passthroughs only.

    A passthrough is a bare column or a cast of one: anything computed is a new value whose type says
    nothing certain about its inputs (the use of the inputs inside the computation is recorded instead).
    Renames (`scaled=True`) also follow a column multiplied or divided by a number, and rounded: usages do
    not, since a literal compared with the scaled value is not one the column itself holds.
    """

    def __init__(self, relations: Mapping[tuple[str, str], str]) -> None:
        self._relations = {(schema.lower(), name.lower()): key for (schema, name), key in relations.items()}
        self._active: set[tuple[int, str]] = set()

    def relation(self, table: exp.Table) -> str | None:
        """The key of the relation a table names: by (schema, table), or by a table name that is unique."""
        name, schema = table.name.lower(), table.db.lower()
        if schema:
            return self._relations.get((schema, name))
        keys = [key for (_, candidate), key in self._relations.items() if candidate == name]
        return keys[0] if len(keys) == 1 else None

    def column(self, scope: Scope, column: exp.Column, scaled: bool = False) -> list[_Found]:
        """What a column reference in `scope` reads (nothing when its source is unknown or ambiguous)."""
        sources = self.sources_for(scope, column)
        return self.read(sources[0], column.name.lower(), scaled) if len(sources) == 1 else []

    def sources_for(self, scope: Scope, column: exp.Column) -> list[Source]:
        """The sources that may hold a column: its qualifier's (here or, if correlated, outside), or candidates."""
        qualifier = column.table
        if not qualifier:
            candidates = self.candidates(_selected(scope), column.name.lower())
            # `join ... using (id)` merges the sides' `id` into one column: read it from the first.
            return candidates[:1] if column.name.lower() in _using_names(scope) else candidates
        outer: Scope | None = scope
        while outer is not None:
            found = _lookup(outer.selected_sources, qualifier)
            if found is not None:
                return [found]
            outer = outer.parent
        return []

    def candidates(self, sources: list[Source], name: str) -> list[Source]:
        """The sources that may hold `name`: those known to, else those that might (more than one: ambiguous)."""
        exposed = [(source, self.exposes(source, name)) for source in sources]
        known = [source for source, exposes in exposed if exposes is True]
        return known or [source for source, exposes in exposed if exposes is None]

    def exposes(self, source: Source, name: str) -> bool | None:
        """Whether a source has an output column `name`; None when unknown (a table, or a star over one)."""
        if isinstance(source, exp.Table):
            return None
        first = _branches(source)[0]
        if any(_name(projection) == name for projection in _selects(first) if _star(projection) is None):
            return True
        answers = {self._guarded(star_source, name, self.exposes) for star_source in _star_sources(first, name)}
        if True in answers:
            return True
        return None if None in answers else False

    def read(self, source: Source, name: str, scaled: bool = False) -> list[_Found]:
        """What reading column `name` of a source reads."""
        if isinstance(source, exp.Table):
            relation = self.relation(source)
            return [_Found(relation, name)] if relation else []
        return self._guarded(source, name, lambda scope, _: self._output(scope, name, scaled)) or []

    def _guarded(self, source: Source, name: str, method: Callable[[Any, str], T]) -> T | None:
        """`method(source, name)`, or None when already under way: a recursive CTE must not loop forever."""
        if isinstance(source, exp.Table):
            return method(source, name)
        marker = (id(source), name)
        if marker in self._active:
            return None
        self._active.add(marker)
        try:
            return method(source, name)
        finally:
            self._active.discard(marker)

    def _output(self, scope: Scope, name: str, scaled: bool) -> list[_Found]:
        """Where a scope's output column `name` comes from; a union's branches by position."""
        branches = _branches(scope)
        names = _output_names(branches[0])
        index = names.index(name) if names is not None and name in names else None
        found: list[_Found] = []
        for branch in branches:
            projection = _projection(branch, name, index)
            if projection is not None:
                found += self.value(branch, projection, scaled)
            else:
                found += self._through_stars(branch, name, scaled)
        return found

    def _through_stars(self, scope: Scope, name: str, scaled: bool) -> list[_Found]:
        """What column `name` reads when a select does not name it but has `*` or `t.*`."""
        for projection in _selects(scope):
            star = _star(projection)
            replaced = _replaced(star).get(name) if star is not None else None
            if replaced is not None:
                return self.value(scope, replaced, scaled)
        sources = self.candidates(_star_sources(scope, name), name)
        return self.read(sources[0], name, scaled) if len(sources) == 1 else []

    def value(self, scope: Scope, expression: exp.Expr, scaled: bool = False) -> list[_Found]:
        """What a projection reads when it is a bare column or a cast of one (`scaled`: or a scaling of one);
        computed values read nothing."""
        node, scale, cast = _peel(expression.unalias(), scaled)
        if not isinstance(node, exp.Column) or isinstance(node.this, exp.Star):
            return []
        return [
            replace(found, cast=found.cast or cast, scale=_tidy(found.scale * scale))
            for found in self.column(scope, node, scaled)
        ]

    def renames(self, scope: Scope) -> list[Rename]:
        """A scope's output columns that pass a relation's column through (a union: every branch's)."""
        branches = _branches(scope)
        names = _output_names(branches[0])
        renames: list[Rename] = []
        for branch in branches:
            for index, projection in enumerate(_selects(branch)):
                star = _star(projection)
                if star is not None:
                    renames += self._star_renames(branch, projection, star)
                    continue
                name = names[index] if names is not None and index < len(names) else _name(projection)
                found = self.value(branch, projection, scaled=True)
                renames += [Rename(name, each.relation, each.column, each.scale) for each in found]
        return renames

    def _star_renames(self, scope: Scope, projection: exp.Expr, star: exp.Star) -> list[Rename]:
        """The renames a `*` or `t.*` projection passes on, less its `exclude` and with its `replace`."""
        dropped = _excluded(star) | set(_replaced(star))
        renames: list[Rename] = []
        for source in _sources_of_star(scope, projection):
            if isinstance(source, exp.Table):
                relation = self.relation(source)
                renames += [Rename("*", relation, "*")] if relation else []
            else:
                inner = self._guarded(source, "*", lambda inner_scope, _: self.renames(inner_scope)) or []
                renames += [rename for rename in inner if rename.model_column not in dropped]
        for name, value in _replaced(star).items():
            found = self.value(scope, value, scaled=True)
            renames += [Rename(name, each.relation, each.column, each.scale) for each in found]
        return renames


def _selected(scope: Scope) -> list[Source]:
    """The sources a scope selects from (FROM and JOIN), in order."""
    return [source for _, source in scope.selected_sources.values()]


def _using_names(scope: Scope) -> set[str]:
    """The columns a select's joins merge with `using (...)`."""
    joins = scope.expression.args.get("joins") or []
    return {identifier.name.lower() for join in joins for identifier in join.args.get("using") or []}


def _lookup(selected: Mapping[str, tuple[exp.Expr, Source]], qualifier: str) -> Source | None:
    """The source a qualifier names: exactly, else ignoring case (unquoted names fold, quoted ones do not)."""
    if qualifier in selected:
        return selected[qualifier][1]
    matches = [source for alias, (_, source) in selected.items() if alias.lower() == qualifier.lower()]
    return matches[0] if len(matches) == 1 else None


def _branches(scope: Scope) -> list[Scope]:
    """The selects a scope is made of: itself, or every branch of a union, left to right."""
    if isinstance(scope.expression, exp.SetOperation) and scope.set_operation_scopes:
        return [branch for child in scope.set_operation_scopes for branch in _branches(child)]
    return [scope]


def _selects(scope: Scope) -> list[exp.Expr]:
    """A select scope's projections (a union has none of its own: see `_branches`)."""
    query = scope.expression
    return list(query.selects) if isinstance(query, exp.Query) else []


def _name(projection: exp.Expr) -> str:
    """A projection's output column name, lower-case as DuckDB folds unquoted names."""
    return projection.alias_or_name.lower()


def _output_names(scope: Scope) -> list[str] | None:
    """A select's output names by position; None when a star makes the positions unknown."""
    selects = _selects(scope)
    if any(_star(projection) is not None for projection in selects):
        return None
    return [_name(projection) for projection in selects]


def _projection(scope: Scope, name: str, index: int | None) -> exp.Expr | None:
    """The projection giving output `name`: at `index` in a union branch without a star, else by name."""
    selects = _selects(scope)
    if index is not None and _output_names(scope) is not None and index < len(selects):
        return selects[index]
    return next((p for p in selects if _star(p) is None and _name(p) == name), None)


def _star(projection: exp.Expr) -> exp.Star | None:
    """The star of a `*` or `t.*` projection."""
    if isinstance(projection, exp.Star):
        return projection
    if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
        return projection.this
    return None


def _excluded(star: exp.Star) -> set[str]:
    """The columns `* exclude (...)` leaves out."""
    return {column.name.lower() for column in star.args.get("except_") or []}


def _replaced(star: exp.Star) -> dict[str, exp.Expr]:
    """The columns `* replace (... as name)` computes anew, by name."""
    return {alias.alias.lower(): alias.this for alias in star.args.get("replace") or []}


def _sources_of_star(scope: Scope, projection: exp.Expr) -> list[Source]:
    """The sources a star projection spreads: all of the select's for `*`, one for `t.*`."""
    if isinstance(projection, exp.Column) and projection.table:
        source = _lookup(scope.selected_sources, projection.table)
        return [source] if source is not None else []
    return _selected(scope)


def _star_sources(scope: Scope, name: str) -> list[Source]:
    """The sources whose column `name` a select's stars could pass on (an `exclude` of it passes nothing)."""
    sources: list[Source] = []
    for projection in _selects(scope):
        star = _star(projection)
        if star is not None and name not in _excluded(star) and name not in _replaced(star):
            sources += [source for source in _sources_of_star(scope, projection) if source not in sources]
    return sources


def _peel(node: exp.Expr, scaled: bool) -> tuple[exp.Expr, float, bool]:
    """What is left of an expression without its parentheses and casts (and, when `scaled`, without
    `round(..., n)` and multiplications and divisions by a number): that, the factor, whether it was cast."""
    scale, cast = 1.0, False
    while True:
        node = _unwrap(node)
        factor = _factor(node) if scaled else None
        if isinstance(node, exp.Cast):
            node, cast = node.this, True
        elif scaled and isinstance(node, exp.Round) and _is_int_literal(node.args.get("decimals")):
            node = node.this
        elif factor is not None:
            node, scale = factor[0], scale * factor[1]
        else:
            return node, scale, cast


def _factor(node: exp.Expr) -> tuple[exp.Expr, float] | None:
    """`x * 100`, `100 * x`, `x / 100`: x and the factor. Only positive numbers: a sign flip (or a zero)
    would turn the column's minimum into the model's maximum, which is not what a rename promises."""
    if isinstance(node, exp.Mul):
        for this, other in ((node.this, node.expression), (node.expression, node.this)):
            number = _positive_number(other)
            if number is not None:
                return this, number
    if isinstance(node, exp.Div):
        number = _positive_number(node.expression)
        return (node.this, 1 / number) if number is not None else None
    return None


def _positive_number(node: exp.Expr) -> float | None:
    """The value of a positive numeric literal (`100`, `100.0`, `1e2`, `100::double`), else None."""
    literal = _literal(_unwrap(node))
    if literal is None or isinstance(literal[0], bool | str):
        return None
    return float(literal[0]) if literal[0] > 0 else None


def _is_int_literal(node: exp.Expr | None) -> bool:
    """Whether a `round` has no digits argument or an integer literal one (`round(x, 2)`, not `round(x, y)`)."""
    if node is None:
        return True
    literal = _literal(_unwrap(node))
    return literal is not None and isinstance(literal[0], int) and not isinstance(literal[0], bool)


def _tidy(scale: float) -> float:
    """A composed scale without float noise: 0.01 * 100 is 1.0, 0.1 * 0.1 is 0.01 (not 0.010000000000000002)."""
    return float(f"{scale:.12g}")


def _unwrap(node: exp.Expr) -> exp.Expr:
    """An expression without its parentheses."""
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _line(node: exp.Expr) -> int:
    """The 1-based line where a column (or identifier) is written; sqlglot keeps it on the identifier."""
    identifier = node.this if isinstance(node, exp.Column) else node
    meta = identifier.meta if isinstance(identifier, exp.Expr) else {}
    return int(meta.get("line") or 1)


def _column_usages(resolver: _Resolver, scope: Scope, column: exp.Column, warnings: list[str]) -> list[Usage]:
    """The usages one column reference makes of the relations it reads."""
    name = column.name.lower()
    sources = resolver.sources_for(scope, column)
    if len(sources) > 1:
        if any(resolver.read(source, name) for source in sources):
            warnings.append(f"could not tell which relation `{name}` on line {_line(column)} is read from")
        return []
    found = resolver.read(sources[0], name) if sources else []
    if not found:
        return []
    use = _use(column)
    joined_to = None
    if use.partner is not None:
        partners = resolver.column(scope, use.partner)
        if len(partners) == 1:
            joined_to = (partners[0].relation, partners[0].column)
            use = replace(use, detail=f"joined to {joined_to[0]}.{joined_to[1]}")
    return [
        Usage(
            each.relation,
            each.column,
            None if each.cast else use.kind,
            use.detail,
            _line(column),
            use.literals,
            joined_to,
        )
        for each in found
    ]


def _using_usages(resolver: _Resolver, scope: Scope) -> list[Usage]:
    """Usages of `join ... using (col)`: the column of the joined source equals the one on the left."""
    select = scope.expression
    if not isinstance(select, exp.Select) or not select.args.get("from_"):
        return []
    left = [select.args["from_"].this.alias_or_name]
    usages: list[Usage] = []
    for join in select.args.get("joins") or []:
        right = join.this.alias_or_name
        for identifier in join.args.get("using") or []:
            usages += _using_pair(resolver, scope, left, right, identifier)
        left.append(right)
    return usages


def _using_pair(resolver: _Resolver, scope: Scope, left: list[str], right: str, identifier: exp.Expr) -> list[Usage]:
    """The two usages one `using` column makes: each side joined to the other when both are known."""
    name, selected = identifier.name.lower(), scope.selected_sources
    right_found = resolver.read(selected[right][1], name) if right in selected else []
    candidates = resolver.candidates([selected[alias][1] for alias in left if alias in selected], name)
    left_found = resolver.read(candidates[0], name) if len(candidates) == 1 else []
    usages = []
    for mine, theirs in ((right_found, left_found), (left_found, right_found)):
        other = (theirs[0].relation, theirs[0].column) if len(theirs) == 1 else None
        detail = f"joined to {other[0]}.{other[1]}" if other else "joined"
        usages += [Usage(f.relation, f.column, None, detail, _line(identifier), (), other) for f in mine]
    return usages


@dataclass(frozen=True)
class _Use:
    """What one occurrence of a column does: the type it implies, words for people, what it is compared with."""

    kind: Kind | None
    detail: str
    literals: tuple[Value, ...] = ()
    partner: exp.Column | None = None


def _use(column: exp.Column) -> _Use:
    """The use a column reference is put to: the first rule that recognises its (value-preserving) context."""
    node = _climb(column)
    parent = node.parent
    rules = (_cast_use, _coalesce_use, _comparison_use, _membership_use, _arithmetic_use, _function_use, _condition_use)
    for rule in rules:
        use = rule(node, parent)
        if use is not None:
            return use
    return _Use(None, _plain_detail(node, parent))


def _climb(node: exp.Expr) -> exp.Expr:
    """The outermost expression that still has the column's value: `(x)`, `case ... then x`, `max(x)`..."""
    while node.parent is not None and _passes_value(node, node.parent):
        node = node.parent
    return node


def _passes_value(node: exp.Expr, parent: exp.Expr) -> bool:
    """Whether `parent` has the value of `node` (so the use of `parent` is the use of the column)."""
    if isinstance(parent, exp.Paren | exp.Distinct | exp.Min | exp.Max | exp.AnyValue | exp.First | exp.Last):
        return True
    if isinstance(parent, exp.If):
        return node.arg_key in ("true", "false")
    if isinstance(parent, exp.Case):
        # `case when ... then col` is an If (holding col) in the Case's ifs; `else col` is its default.
        return node.arg_key in ("ifs", "default")
    if isinstance(parent, exp.Window):
        return node.arg_key == "this"
    if isinstance(parent, exp.Coalesce):
        return all(_literal(arg) is None for arg in _coalesce_args(parent))
    return False


def _coalesce_args(coalesce: exp.Coalesce) -> list[exp.Expr]:
    """All of a coalesce's arguments, the first included."""
    return [coalesce.this, *coalesce.expressions]


def _cast_use(node: exp.Expr, parent: exp.Expr | None) -> _Use | None:
    """`col::date`, `cast(col as int)`, `try_cast(...)`: the type is the cast's."""
    if not isinstance(parent, exp.Cast) or node.arg_key != "this":
        return None
    written = parent.to.sql("duckdb").lower()
    return _Use(Kind.of(written), f"cast to {written}")


_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Nullif)


def _coalesce_use(node: exp.Expr, parent: exp.Expr | None) -> _Use | None:
    """`coalesce(col, 0)`: the column is of the fallback's kind (`_climb` passes a coalesce without one)."""
    if not isinstance(parent, exp.Coalesce):
        return None
    literal = next(filter(None, map(_literal, _coalesce_args(parent))), None)
    return _Use(literal[1], f"coalesced with {_describe([literal[0]])}") if literal else None


def _comparison_use(node: exp.Expr, parent: exp.Expr | None) -> _Use | None:
    """`col = 'x'`, `col > 0`, `col = other.col` (a join), `col >= current_date`."""
    if not isinstance(parent, _COMPARISONS):
        return None
    other = _unwrap(parent.expression if node.arg_key == "this" else parent.this)
    literal = _literal(other)
    if literal is not None:
        return _Use(literal[1], f"compared with {_describe([literal[0]])}", (literal[0],))
    if isinstance(other, exp.Column) and isinstance(parent, exp.EQ | exp.NullSafeEQ):
        return _Use(None, "compared with a column", partner=other)
    clock = _clock_kind(other)
    return _Use(clock, f"compared with {other.sql('duckdb').lower()}") if clock else None


def _clock_kind(node: exp.Expr) -> Kind | None:
    """The kind of `current_date`, `now()`, `current_timestamp - interval 7 day`..., else None."""
    if isinstance(node, exp.Add | exp.Sub):
        return _clock_kind(_unwrap(node.this))
    if isinstance(node, exp.CurrentDate):
        return Kind.DATE
    if isinstance(node, exp.CurrentTimestamp | exp.CurrentDatetime):
        return Kind.TIMESTAMP
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("now", "get_current_timestamp"):
        return Kind.TIMESTAMP
    return None


def _membership_use(node: exp.Expr, parent: exp.Expr | None) -> _Use | None:
    """`col in ('a', 'b')`, `col between 1 and 9`, `case col when 'a' then ...`: compared with literals."""
    if isinstance(parent, exp.In) and node.arg_key == "this":
        options = parent.expressions
    elif isinstance(parent, exp.Between) and node.arg_key == "this":
        options = [parent.args.get("low"), parent.args.get("high")]
    elif isinstance(parent, exp.Case) and node.arg_key == "this":
        options = [branch.this for branch in parent.args.get("ifs") or []]
    else:
        return None
    literals = [_literal(_unwrap(option)) if isinstance(option, exp.Expr) else None for option in options]
    if not literals or any(literal is None for literal in literals):
        return None
    values = [literal[0] for literal in literals if literal]
    kind = _common_kind([literal[1] for literal in literals if literal])
    return _Use(kind, f"compared with {_describe(values)}", tuple(values))


def _arithmetic_use(node: exp.Expr, parent: exp.Expr | None) -> _Use | None:
    """`col * 2`, `-col` -> DOUBLE; `col + interval 1 day` -> TIMESTAMP."""
    if isinstance(parent, exp.Neg):
        return _Use(Kind.DOUBLE, "arithmetic")
    if not isinstance(parent, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod | exp.IntDiv):
        return None
    other = _unwrap(parent.expression if node.arg_key == "this" else parent.this)
    if isinstance(other, exp.Interval):
        return _Use(Kind.TIMESTAMP, "date arithmetic with an interval")
    return _Use(Kind.DOUBLE, "arithmetic")


_NUMERIC: dict[type[exp.Expr], str] = {
    exp.Sum: "summed",
    exp.Avg: "averaged",
    exp.Round: "rounded",
    **{function: f"numeric function {name}" for function, name in [
        (exp.Stddev, "stddev"), (exp.Variance, "variance"), (exp.Median, "median"), (exp.Quantile, "quantile"),
        (exp.Abs, "abs"), (exp.Ceil, "ceil"), (exp.Floor, "floor"), (exp.Sqrt, "sqrt"), (exp.Ln, "ln"),
        (exp.Exp, "exp"), (exp.Pow, "pow"),
    ]},
}  # fmt: skip
_DATE_FUNCTIONS: dict[type[exp.Expr], str] = {
    exp.TimestampTrunc: "date_trunc", exp.DateTrunc: "date_trunc", exp.Extract: "extract",
    exp.DateDiff: "date_diff", exp.DateAdd: "date_add", exp.DateSub: "date_sub", exp.TsOrDsAdd: "date_add",
    exp.TimeToStr: "strftime", exp.Year: "year", exp.Month: "month", exp.Day: "day", exp.Hour: "hour",
    exp.Minute: "minute", exp.Second: "second", exp.DayOfWeek: "dayofweek", exp.DayOfYear: "dayofyear",
    exp.Week: "week", exp.WeekOfYear: "weekofyear", exp.Quarter: "quarter", exp.TimeToUnix: "epoch",
    exp.LastDay: "last_day", exp.Dayname: "dayname",
}  # fmt: skip
_STRING_FUNCTIONS: dict[type[exp.Expr], str] = {
    exp.Lower: "lower", exp.Upper: "upper", exp.Trim: "trim", exp.Concat: "concat", exp.DPipe: "||",
    exp.Like: "like", exp.ILike: "ilike", exp.SplitPart: "split_part", exp.Replace: "replace",
    exp.Length: "length", exp.Substring: "substring", exp.Left: "left", exp.Right: "right",
    exp.RegexpLike: "regexp_matches", exp.RegexpExtract: "regexp_extract", exp.RegexpReplace: "regexp_replace",
    exp.StartsWith: "starts_with", exp.Contains: "contains", exp.Initcap: "initcap", exp.Pad: "lpad/rpad",
    exp.StrPosition: "position",
}  # fmt: skip
# Functions sqlglot does not model for DuckDB arrive as Anonymous: known by name.
_ANONYMOUS: dict[str, tuple[Kind, str]] = {
    **dict.fromkeys(
        ("date_part", "datepart", "date_sub", "age", "epoch_ms", "monthname", "isodow", "yearweek", "time_bucket"),
        (Kind.TIMESTAMP, "date function"),
    ),
    **dict.fromkeys(
        ("strlen", "ltrim", "rtrim", "ucase", "lcase", "string_split", "str_split", "md5", "ascii"),
        (Kind.VARCHAR, "string function"),
    ),
}
# Arguments that hold the value a function works on; the others are units, formats, separators, counts.
_VALUE_ARGS = frozenset({"this", "expression", "expressions"})


def _function_use(node: exp.Expr, parent: exp.Expr | None) -> _Use | None:
    """Numeric, date and string functions applied to the column."""
    if parent is None or node.arg_key not in _VALUE_ARGS:
        return None
    if isinstance(parent, exp.Anonymous):
        kind, what = _ANONYMOUS.get(parent.name.lower(), (None, ""))
        return _Use(kind, f"{what} {parent.name.lower()}") if kind else None
    for table, kind, prefix in (
        (_NUMERIC, Kind.DOUBLE, ""),
        (_DATE_FUNCTIONS, Kind.TIMESTAMP, "date function "),
        (_STRING_FUNCTIONS, Kind.VARCHAR, "string function "),
    ):
        name = _by_type(table, parent)
        if name is not None:
            return _Use(kind, prefix + name)
    return None


def _by_type(table: Mapping[type[exp.Expr], str], node: exp.Expr) -> str | None:
    """A table's entry for the node's class or its nearest base (ConcatWs is a Concat)."""
    return next((table[cls] for cls in type(node).__mro__ if cls in table), None)


def _condition_use(node: exp.Expr, parent: exp.Expr | None) -> _Use | None:
    """`where col`, `not col`, `a and b`, `case when col then`, `col is true`: the column is a boolean."""
    if isinstance(parent, exp.Where | exp.Having | exp.Qualify | exp.Not | exp.Connector):
        return _Use(Kind.BOOLEAN, "used as a condition")
    if isinstance(parent, exp.If) and node.arg_key == "this":
        return _Use(Kind.BOOLEAN, "used as a condition")
    if isinstance(parent, exp.Join) and node.arg_key == "on":
        return _Use(Kind.BOOLEAN, "used as a condition")
    if isinstance(parent, exp.Is) and isinstance(parent.expression, exp.Boolean):
        value = parent.expression.this
        return _Use(Kind.BOOLEAN, f"compared with {_describe([value])}", (value,))
    return None


def _plain_detail(node: exp.Expr, parent: exp.Expr | None) -> str:
    """Words for a use that implies no type."""
    if isinstance(parent, exp.Alias | exp.Select):
        return "selected"
    if isinstance(parent, exp.Group):
        return "grouped by"
    if isinstance(parent, exp.Ordered):
        return "ordered by"
    if isinstance(parent, exp.Window) and node.arg_key == "partition_by":
        return "partitioned by"
    if isinstance(parent, exp.Count):
        return "counted"
    if isinstance(parent, exp.Is):
        return "checked for null"
    return "used"


def _literal(node: exp.Expr) -> tuple[Value, Kind] | None:
    """A literal's Python value and kind: 1, -2.5, 'x', '2024-01-01', true, '2024-01-01'::date."""
    if isinstance(node, exp.Boolean):
        return bool(node.this), Kind.BOOLEAN
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        inner = _literal(node.this)
        return (-inner[0], inner[1]) if inner and isinstance(inner[0], int | float) else None
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal):
        inner = _literal(node.this)
        return (inner[0], Kind.of(node.to.sql("duckdb")) or inner[1]) if inner else None
    if not isinstance(node, exp.Literal):
        return None
    if node.is_string:
        return node.this, _string_kind(node.this)
    if node.is_int:
        return int(node.this), Kind.INTEGER
    try:
        return float(node.this), Kind.DOUBLE
    except ValueError:
        return None


def _string_kind(text: str) -> Kind:
    """DATE for 'YYYY-MM-DD', TIMESTAMP for 'YYYY-MM-DD HH:MM[:SS]', VARCHAR for any other string."""
    if len(text) < 10 or text[4:5] != "-" or text[7:8] != "-":
        return Kind.VARCHAR
    try:
        if len(text) == 10:
            datetime.date.fromisoformat(text)
            return Kind.DATE
        datetime.datetime.fromisoformat(text)
        return Kind.TIMESTAMP
    except ValueError:
        return Kind.VARCHAR


def _common_kind(kinds: list[Kind]) -> Kind | None:
    """One kind for several literals: theirs if they agree, DOUBLE for mixed numbers, VARCHAR for mixed strings."""
    distinct = set(kinds)
    if len(distinct) == 1:
        return kinds[0]
    if distinct <= {Kind.INTEGER, Kind.DOUBLE}:
        return Kind.DOUBLE
    if distinct <= {Kind.VARCHAR, Kind.DATE, Kind.TIMESTAMP}:
        return Kind.VARCHAR
    return None


def _describe(values: list[Value]) -> str:
    """Literals in a few words: "'completed'", "'a', 'b', 'c', ...", "a number", "numbers", "true"."""
    if all(isinstance(value, bool) for value in values):
        return ", ".join(str(value).lower() for value in values)
    if all(isinstance(value, str) for value in values):
        shown = ", ".join(f"'{value}'" for value in values[:3])
        return shown + (", ..." if len(values) > 3 else "")
    return "a number" if len(values) == 1 else "numbers"
