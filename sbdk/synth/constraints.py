"""From what a dbt project declares and reads to one spec per source table, with the reason for each fact.

Facts come from three places, strongest first: the sources YAML (declared columns and `data_type`),
the data tests (on a source column, or on a model column that is a plain rename of one), and the
models' compiled SQL (which columns they read, and the types their use implies). A column nothing
says anything about gets a default from its name, and `sbdk sources` says so.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sbdk.synth.infer import Analysis, Usage
from sbdk.synth.model import ColumnSpec, Kind, Origin, TableSpec
from sbdk.synth.project import DataTest, DbtProject, Model, Source

ROWS = 10_000  # rows of each source table at 1x, until synth.yml says otherwise
# Values for a status-like column nothing else describes.
_STATUSES = ["active", "pending", "completed", "cancelled"]
# Generic tests whose name says what they check, whatever package defines them (dbt_utils' or the project's).
_NATURALLY_TRUE = {"not_null", "not_constant", "not_empty_string", "at_least_one", "not_null_proportion"}
_TABLE_LEVEL = {"equal_rowcount", "fewer_rows_than", "cardinality_equality", "equality", "expression_is_true"}


@dataclass
class _Column:
    name: str
    order: int
    declared: str | None = None
    declared_at: str = ""
    kinds: list[tuple[Kind, Origin]] = field(default_factory=list)
    origins: list[Origin] = field(default_factory=list)
    literals: list[Any] = field(default_factory=list)
    unique: bool = False
    values: list[Any] | None = None
    references: str | None = None
    minimum: Any = None
    maximum: Any = None
    expression: str | None = None
    after: tuple[str, bool] | None = None  # (SQL of another column, strictly): this one is at least that
    whole: bool = False  # whole numbers only: scaled by a model (cents to dollars) in an equation that must hold
    recent: bool = False
    sequence: bool = False


@dataclass
class _Table:
    source: Source
    columns: dict[str, _Column] = field(default_factory=dict)
    equations: list[frozenset[str]] = field(default_factory=list)  # columns of each equation applied

    def column(self, name: str) -> _Column:
        name = name.lower()
        if name not in self.columns:
            self.columns[name] = _Column(name, len(self.columns))
        return self.columns[name]


@dataclass
class Inference:
    """What synthesis inferred: one spec per source table, and why."""

    tables: list[TableSpec]
    origins: dict[str, dict[str, list[str]]]  # "source.table" -> column -> reasons, as shown by `sbdk sources`
    defaults: dict[str, dict[str, str]]  # "source.table" -> column -> what could not be inferred, default used
    unsatisfied: list[tuple[str, str]]  # (test, why it may fail on synthesized data)
    warnings: list[str]

    def table(self, key: str) -> TableSpec | None:
        return next((t for t in self.tables if t.key == key), None)


class _Renames:
    """Where a model's output column comes from, through plain renames (`id as customer_id`), chased to a
    source column across models; a scaled one (`(subtotal / 100)::numeric(16, 2) as subtotal`) carries
    its factor, which only expression tests use."""

    def __init__(self, analyses: Mapping[str, Analysis]) -> None:
        self._explicit: dict[str, dict[str, tuple[str, str, float]]] = {}
        self._stars: dict[str, list[str]] = {}
        for model, analysis in analyses.items():
            for rename in analysis.renames:
                if rename.model_column == "*":
                    self._stars.setdefault(model, []).append(rename.relation)
                else:
                    self._explicit.setdefault(model, {})[rename.model_column.lower()] = (
                        rename.relation,
                        rename.column.lower(),
                        float(getattr(rename, "scale", 1.0)),
                    )

    def resolve(self, relation: str, column: str) -> tuple[str, str] | None:
        """(source key, column) that `relation`.`column` is, or None when a model computes it."""
        found = self.scaled(relation, column)
        return (found[0], found[1]) if found and found[2] == 1.0 else None

    def scaled(
        self, relation: str, column: str, seen: frozenset[tuple[str, str]] = frozenset()
    ) -> tuple[str, str, float] | None:
        """(source key, column, factor): `relation`.`column` is that source column times the factor."""
        column = column.lower()
        if relation.startswith("source:"):
            return relation, column, 1.0
        if (relation, column) in seen:
            return None
        seen = seen | {(relation, column)}
        explicit = self._explicit.get(relation, {})
        if column in explicit:
            parent, name, factor = explicit[column]
            found = self.scaled(parent, name, seen)
            return (found[0], found[1], found[2] * factor) if found else None
        stars = self._stars.get(relation, [])
        if len(stars) == 1:
            return self.scaled(stars[0], column, seen)
        return None


def infer_specs(project: DbtProject, analyses: Mapping[str, Analysis], choose: Any, rows: int = ROWS) -> Inference:
    """One TableSpec per source table of `project`, from its declarations, tests and models' SQL
    (`analyses`: model key -> sbdk.synth.infer.Analysis); `choose(name, kind) -> (generator, kind)`
    picks a generator where nothing else decides it (sbdk.synth.values.choose)."""
    tables = {s.key: _Table(s) for s in project.sources}
    renames = _Renames(analyses)
    models = {m.key: m for m in project.models}
    warnings: list[str] = []
    for table in tables.values():
        _declared(table, project)
    for model_key, analysis in analyses.items():
        model = models.get(model_key)
        for usage in analysis.usages:
            found = renames.resolve(usage.relation, usage.column)
            if found and found[0] in tables:
                _use(tables[found[0]].column(found[1]), usage, model, renames, tables)
    unsatisfied: list[tuple[str, str]] = []
    for test in project.tests:
        reason = _apply_test(test, renames, tables)
        if reason:
            unsatisfied.append((f"{test.label} ({test.path})", reason))
    for table in tables.values():
        if table.source.loaded_at_field:
            column = table.column(table.source.loaded_at_field)
            column.recent = True
            column.origins.append(Origin("declared", table.source.path, "loaded_at_field: recent timestamps"))
    _own_keys(tables)
    _foreign_keys_by_name(tables)
    return _finish(tables, choose, rows, warnings, unsatisfied)


def _declared(table: _Table, project: DbtProject) -> None:
    text = _read(project, table.source.path)
    for name, data_type in table.source.declared.items():
        column = table.column(name)
        column.declared = data_type
        column.declared_at = f"{table.source.path}:{_line_of(text, name)}" if text else table.source.path
        if data_type:
            kind = Kind.of(data_type)
            if kind is not None:
                column.kinds.append((kind, Origin("declared", column.declared_at, f"data_type {data_type}")))


def _use(column: _Column, usage: Usage, model: Model | None, renames: _Renames, tables: dict[str, _Table]) -> None:
    where = _where(model, usage)
    if usage.kind is not None:
        column.kinds.append((usage.kind, Origin("inferred", where, usage.detail)))
    elif not column.origins and not column.declared:
        column.origins.append(Origin("inferred", where, usage.detail))
    column.literals.extend(v for v in usage.literals if v is not None)
    if usage.joined_to is not None:
        other = renames.resolve(*usage.joined_to)
        if other and other[0] in tables:
            column.origins.append(Origin("inferred", where, f"joined to {other[0][7:]}.{other[1]}"))
            _join(column, other, tables)


def _join(column: _Column, other: tuple[str, str], tables: dict[str, _Table]) -> None:
    """A join between two source columns: the side named like a key of its table (`id`) is the parent."""
    parent_table = tables[other[0]]
    parent = parent_table.column(other[1])
    if column.references is None and _is_own_key(parent.name, parent_table.source.table):
        column.references = f"{other[0][7:]}.{other[1]}"
        parent.unique = True


def _where(model: Model | None, usage: Usage) -> str:
    if model is None:
        return ""
    line = _line_of(model.raw, usage.column) or usage.line
    return f"{model.path}:{line}"


def _line_of(text: str, word: str) -> int:
    """The first line of `text` that holds `word` as a whole word (0: none); for people, not parsing."""
    pattern = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", re.IGNORECASE)
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.search(line):
            return number
    return 0


def _read(project: DbtProject, relative: str) -> str:
    try:
        return (project.root / relative).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _apply_test(test: DataTest, renames: _Renames, tables: dict[str, _Table]) -> str | None:
    """Constrain the columns `test` checks; the reason it may still fail, or None."""
    if test.on is None:
        return None  # a seed's or a snapshot's: the project brings that data
    name = test.name
    origin = Origin("test", test.path, _describe(test))
    if name == "expression_is_true" or (test.column is None and name in _TABLE_LEVEL):
        return _expression_test(test, renames, tables, origin)
    if name == "unique_combination_of_columns":
        return _combination(test, renames, tables, origin)
    if name == "recency":
        field_name = str(test.kwargs.get("field") or "")
        found = renames.resolve(test.on, field_name) if field_name else None
        if not found or found[0] not in tables:
            return f"{field_name or 'its field'} is computed by a model, not read from a source as is"
        column = tables[found[0]].column(found[1])
        column.recent = True
        column.origins.append(origin)
        return None
    if test.column is None:
        return "a table-level test the synthesizer does not know" if name not in _NATURALLY_TRUE else None
    found = renames.resolve(test.on, test.column)
    if not found or found[0] not in tables:
        if name in ("unique", *_NATURALLY_TRUE):
            return None  # a model's own computed column: nothing to synthesize, and usually holds
        return f"{test.column} is computed by {test.on[6:]}, not read from a source as is"
    column = tables[found[0]].column(found[1])
    column.origins.append(origin)
    return _column_test(test, column, renames, tables)


def _column_test(test: DataTest, column: _Column, renames: _Renames, tables: dict[str, _Table]) -> str | None:
    kwargs = test.kwargs
    if test.name == "unique":
        column.unique = True
    elif test.name == "accepted_values":
        values = list(kwargs.get("values") or [])
        if not values:
            return "accepted_values lists no values"
        column.values = values
    elif test.name in ("relationships", "relationships_where"):
        field_name = str(kwargs.get("field") or "")
        parent = renames.resolve(test.to, field_name) if test.to and field_name else None
        if not parent or parent[0] not in tables:
            return f"its parent {kwargs.get('to')}.{field_name} is not read from a source as is"
        if tables[parent[0]].column(parent[1]) is column:
            return None  # a mart's key checked against the staging model it comes from: the same column
        column.references = f"{parent[0][7:]}.{parent[1]}"
        tables[parent[0]].column(parent[1]).unique = True
    elif test.name == "accepted_range":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        inclusive = kwargs.get("inclusive", True) not in (False, "false", "False")
        step = 0 if inclusive else 1
        if low is not None:
            column.minimum = _number(low, +step)
        if high is not None:
            column.maximum = _number(high, -step)
    elif test.name == "sequential_values":
        column.sequence = True
        column.unique = True
    elif test.name not in _NATURALLY_TRUE:
        return f"the synthesizer does not know the test {test.name}; values are made without it"
    return None


def _number(value: Any, step: int) -> Any:
    """A bound as a number where it is one, moved by `step` (an exclusive bound made inclusive)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    number = number + step if step and number.is_integer() else number + step * 0.01
    return int(number) if number.is_integer() else number


def _describe(test: DataTest) -> str:
    parts = [f"{test.namespace}.{test.name}" if test.namespace else test.name]
    if test.name == "accepted_values":
        parts.append(", ".join(map(str, test.kwargs.get("values") or [])))
    elif test.name in ("relationships", "relationships_where"):
        parts.append(f"to {test.kwargs.get('to')}.{test.kwargs.get('field')}")
    elif test.name == "accepted_range":
        parts.append(f"{test.kwargs.get('min_value', '')}..{test.kwargs.get('max_value', '')}")
    elif test.name == "expression_is_true":
        parts.append(str(test.kwargs.get("expression", "")))
    return ": ".join(parts) if len(parts) > 1 else parts[0]


def _combination(test: DataTest, renames: _Renames, tables: dict[str, _Table], origin: Origin) -> str | None:
    names = [str(c).lower() for c in test.kwargs.get("combination_of_columns") or []]
    found = [renames.resolve(test.on, n) for n in names] if test.on else []
    resolved = [f for f in found if f and f[0] in tables]
    if not resolved or len(resolved) < len(names):
        return "its columns are not all read from one source as they are"
    columns = [tables[f[0]].column(f[1]) for f in resolved]
    if not any(c.unique for c in columns):
        columns[0].unique = True
        columns[0].origins.append(origin)
    return None


def _expression_test(test: DataTest, renames: _Renames, tables: dict[str, _Table], origin: Origin) -> str | None:
    """`dbt_utils.expression_is_true`: `col >= 0` bounds a column; `total = price * quantity` computes one."""
    from sbdk.synth.expressions import constrain

    expression = str(test.kwargs.get("expression") or "").strip()
    if test.column:
        expression = f"{test.column} {expression}"
    if not expression or test.on is None:
        return "an expression test the synthesizer cannot read"
    on = test.on
    return constrain(expression, lambda name: renames.scaled(on, name), tables, origin)


def _is_own_key(column: str, table: str) -> bool:
    """`id`, or `<table>_id` for the table's name or a tail of it, singular or not (`order_item_id` in
    `jaffle_order_items`, `customer_id` in `raw_customers`): the table's own key."""
    return column == "id" or (column.endswith("_id") and column[:-3] in _singulars(table))


def _singulars(table: str) -> set[str]:
    """The names a key column may use for `table`: every tail of its name (`jaffle_order_items`:
    `jaffle_order_items`, `order_items`, `items`), each also in the singular."""
    base = table.lower().removeprefix("raw_").removeprefix("src_").removeprefix("stg_")
    parts = base.split("_")
    found: set[str] = set()
    for start in range(len(parts)):
        tail = "_".join(parts[start:])
        found.add(tail)
        if tail.endswith("ies"):
            found.add(tail[:-3] + "y")
        elif tail.endswith("s") and not tail.endswith("ss"):
            found.add(tail[:-1])
    found.discard("")
    return found


def _own_keys(tables: dict[str, _Table]) -> None:
    """A table's own key column (see _is_own_key) is unique: rows of a real table have distinct ids,
    and joins on them stay one-to-many, as the models expect."""
    for table in tables.values():
        for column in table.columns.values():
            if not column.references and _is_own_key(column.name, table.source.table):
                column.unique = True


def _foreign_keys_by_name(tables: dict[str, _Table]) -> None:
    """`customer_id` in orders (or `manager_employee_id` in employees), with no test or join saying it,
    references the key of the one other source table named like it (`customers`, `jaffle_employee`)."""
    by_name: dict[str, set[str]] = {}
    for key, table in tables.items():
        for name in _singulars(table.source.table):
            by_name.setdefault(name, set()).add(key)
    for table in tables.values():
        for column in list(table.columns.values()):
            if column.references or column.unique or not column.name.endswith("_id"):
                continue
            parent_key = _named_parent(column.name[:-3], by_name)
            if parent_key is None:
                continue
            parent = tables[parent_key]
            target = next(
                (c.name for c in parent.columns.values() if _is_own_key(c.name, parent.source.table) and c.unique), None
            )
            if target is None:
                continue
            column.references = f"{parent_key[7:]}.{target}"
            column.origins.append(Origin("default", "", f"named like {parent.source.table}'s key"))


def _named_parent(stem: str, by_name: dict[str, set[str]]) -> str | None:
    """The one table a key named `<stem>_id` points at, trying the longest tail of the stem first."""
    parts = stem.split("_")
    for start in range(len(parts)):
        candidates = by_name.get("_".join(parts[start:]), set())
        if len(candidates) == 1:
            return next(iter(candidates))
        if candidates:
            return None  # ambiguous
    return None


def _finish(
    tables: dict[str, _Table], choose: Any, rows: int, warnings: list[str], unsatisfied: list[tuple[str, str]]
) -> Inference:
    specs: list[TableSpec] = []
    origins: dict[str, dict[str, list[str]]] = {}
    defaults: dict[str, dict[str, str]] = {}
    for key, table in tables.items():
        name = key[7:]
        spec = TableSpec(table.source.source, table.source.table, rows)
        if not table.columns:
            warnings.append(f"source {name}: no column is declared or read by a model; it gets an `id` column only.")
            table.column("id").origins.append(Origin("default", "", "no column known"))
        for column in sorted(table.columns.values(), key=lambda c: c.order):
            kind, why = _kind(column, name, warnings)
            spec.columns.append(_column_spec(column, kind, choose, defaults.setdefault(name, {}), why))
            origins.setdefault(name, {})[column.name] = _reasons(column)
        specs.append(spec)
    _check_references(specs, warnings)
    return Inference(_parents_first(specs, warnings), origins, defaults, unsatisfied, warnings)


def _reasons(column: _Column) -> list[str]:
    """Why the column is as it is, shortest first: where its type comes from, what else its use says,
    then its tests grouped by the file declaring them."""
    found = [str(o) for _k, o in column.kinds[:1]]
    tests: dict[str, list[str]] = {}
    for origin in _unique(column.origins):
        if origin.what == "test":
            tests.setdefault(origin.where, []).append(origin.detail)
        elif origin.detail != "selected" or not found:
            found.append(str(origin))
    found += [f"tests in {where}: {', '.join(dict.fromkeys(names))}" for where, names in tests.items()]
    return [reason.replace("model:", "").replace("source:", "") for reason in dict.fromkeys(found)]


def _unique(origins: Iterable[Origin]) -> list[Origin]:
    seen: list[Origin] = []
    for origin in origins:
        if origin not in seen:
            seen.append(origin)
    return seen


def _kind(column: _Column, table: str, warnings: list[str]) -> tuple[Kind | None, str]:
    """The column's kind: declared, else a cast, else what most uses say; a real conflict is warned about."""
    if not column.kinds:
        return None, ""
    if column.declared and Kind.of(column.declared):
        return column.kinds[0][0], str(column.kinds[0][1])
    casts = [(k, o) for k, o in column.kinds if o.detail.startswith("cast")]
    pool = casts or column.kinds
    families = Counter(_family(k) for k, _o in pool)
    family = families.most_common(1)[0][0]
    chosen = [(k, o) for k, o in pool if _family(k) == family]
    kind = _widest([k for k, _o in chosen])
    others = sorted({_family(k) for k, _o in column.kinds} - {family})
    if others:
        clash = next(o for k, o in column.kinds if _family(k) in others)
        warnings.append(
            f"{table}.{column.name} is used as {family} ({chosen[0][1].where}) and as {others[0]} ({clash.where}); "
            f"generated as {kind.value}. Set its type in synth.yml if that is wrong."
        )
    return kind, str(chosen[0][1])


def _family(kind: Kind) -> str:
    return "a number" if kind.numeric else "a date" if kind.temporal else kind.value


def _widest(kinds: list[Kind]) -> Kind:
    for kind in (Kind.TIMESTAMP, Kind.DOUBLE, Kind.DECIMAL, Kind.INTEGER):
        if kind in kinds:
            return kind
    return kinds[0]


def _column_spec(column: _Column, kind: Kind | None, choose: Any, defaults: dict[str, str], why: str) -> ColumnSpec:
    generator, chosen = choose(column.name, kind)
    if kind is None:
        defaults[column.name] = f"type not inferred: {chosen.value} from its name"
        kind = chosen
    values = column.values
    if values is None and generator == "choice":
        literals = list(dict.fromkeys(column.literals))
        values = literals + (["other"] if len(literals) == 1 else []) if literals else list(_STATUSES)
        if not literals:
            defaults[column.name] = f"values not inferred: {', '.join(_STATUSES)}"
    if column.values is not None:
        generator = "choice"
    elif column.recent:
        generator, kind = "recent_timestamp", kind if kind.temporal else Kind.TIMESTAMP
    elif column.sequence or (column.unique and kind == Kind.INTEGER and generator in ("integer", "sequence")):
        generator = "sequence"
    if column.whole and kind in (Kind.DOUBLE, Kind.DECIMAL) and not column.expression:
        # Cents: a model divides them by 100 and rounds, and only whole cents keep its equations exact.
        generator, kind = "integer", Kind.INTEGER
        column.minimum = 100 if column.minimum is None else column.minimum
        column.maximum = 50_000 if column.maximum is None else column.maximum
    spec = ColumnSpec(
        name=column.name,
        kind=kind,
        generator=generator,
        unique=column.unique and not column.references,
        values=values if generator == "choice" else None,
        min=column.minimum,
        max=column.maximum,
        references=column.references,
        expression=column.expression,
    )
    if column.after and not column.expression:
        from sbdk.synth.expressions import offset

        text, strict = column.after
        spec.expression = offset(text, kind.temporal, strict=strict)
    if spec.expression:
        spec.generator = "expression"
    return spec


def _check_references(specs: list[TableSpec], warnings: list[str]) -> None:
    """A reference to a column the parent does not make becomes a plain column, with a warning."""
    columns = {f"{t.key}.{c.name}": c for t in specs for c in t.columns}
    for table in specs:
        for column in table.columns:
            if column.references and column.references not in columns:
                warnings.append(f"{table.key}.{column.name} references {column.references}, which is not generated.")
                column.references = None


def _parents_first(specs: list[TableSpec], warnings: list[str]) -> list[TableSpec]:
    """Tables ordered so that each comes after the tables it references; a cycle is warned about and
    broken (keys are made from row numbers, so both sides still hold)."""
    by_key = {t.key: t for t in specs}
    ordered: list[TableSpec] = []
    state: dict[str, int] = {}

    def visit(key: str, path: list[str]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            cycle = " -> ".join([*path[path.index(key) :], key])
            warnings.append(
                f"relationships form a cycle ({cycle}); each side is generated from row numbers, so both hold."
            )
            return
        state[key] = 1
        for column in by_key[key].columns:
            if column.references:
                parent = column.references.rsplit(".", 1)[0]
                if parent in by_key and parent != key:
                    visit(parent, [*path, key])
        state[key] = 2
        ordered.append(by_key[key])

    for key in sorted(by_key):
        visit(key, [])
    return ordered
