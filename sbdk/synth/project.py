"""What a dbt project declares and reads, as synthesis needs it: its sources, its models' compiled SQL,
its data tests. Read from dbt itself (`dbt compile`, in this process), never by rendering Jinja here.

dbt compiles into a scratch folder under `.sbdk/synth/` against a scratch DuckDB file, so that neither
the project's own target/ nor the sandbox's database is touched; only dbt's logs/ and, when packages
are declared and missing, dbt_packages/ change in the user's project (issue #17).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbdk.errors import ConfigError, DbtError
from sbdk.settings import Settings

# `source('shop', 'orders')`, `ref('stg_orders')`, `ref('package', 'model')` in a test's kwargs (Jinja).
_SOURCE_CALL = re.compile(r"""source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)""")
_REF_CALL = re.compile(r"""ref\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?(?:,\s*v(?:ersion)?=\s*\S+)?\)""")


@dataclass(frozen=True)
class Source:
    """One source table: `source('<source>', '<table>')`, read by dbt from `<schema>.<identifier>`."""

    source: str
    table: str
    schema: str
    identifier: str
    declared: dict[str, str | None]  # column -> its data_type (None: not given), as declared
    loaded_at_field: str | None
    path: str  # the YAML file that declares it, relative to the dbt project

    @property
    def key(self) -> str:
        return f"source:{self.source}.{self.table}"


@dataclass(frozen=True)
class Model:
    name: str
    path: str  # relative to the dbt project
    raw: str
    compiled: str | None  # None: it did not compile (error says why)
    error: str | None = None

    @property
    def key(self) -> str:
        return f"model:{self.name}"


@dataclass(frozen=True)
class DataTest:
    """One generic data test, as dbt parsed it."""

    name: str  # unique, not_null, accepted_values, relationships, accepted_range, expression_is_true...
    namespace: str | None  # dbt_utils, or None for dbt's own
    on: str | None  # the relation it tests: "source:shop.orders" or "model:stg_orders" (None: neither)
    column: str | None
    kwargs: dict[str, Any]
    path: str  # the YAML file that declares it
    to: str | None = None  # relationships: the relation `to` names

    @property
    def label(self) -> str:
        target = self.on.split(":", 1)[1] if self.on else "?"
        column = f".{self.column}" if self.column else ""
        return f"{self.namespace + '.' if self.namespace else ''}{self.name} on {target}{column}"


@dataclass
class DbtProject:
    root: Path
    name: str
    sources: list[Source]
    models: list[Model]
    tests: list[DataTest]
    relations: dict[tuple[str, str], str]  # (schema, identifier), lower case -> "source:..."/"model:..."
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def check_dbt_project(folder: Path) -> str:
    """The name of the dbt project in `folder`, or a ConfigError that says what is wrong with it."""
    import yaml

    if not folder.exists():
        raise ConfigError(f"{folder} does not exist.", hint="Give the folder that holds your dbt_project.yml.")
    if not folder.is_dir():
        raise ConfigError(f"{folder} is a file, not a dbt project folder.", hint="Give the folder that holds it.")
    config = folder / "dbt_project.yml"
    if not config.is_file():
        raise ConfigError(
            f"{folder} is not a dbt project: it has no dbt_project.yml.",
            hint="Give the folder of your dbt project (where `dbt build` runs).",
        )
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise yaml_error(
            str(config),
            exc,
            "Fix the file (`dbt parse` in the project shows the same problem); sbdk changes nothing in it.",
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"].strip():
        raise ConfigError(
            f"{config} does not name the project (`name:` is missing).",
            hint="Add `name: my_project` to it, as dbt requires.",
        )
    return str(data["name"])


def yaml_error(shown: str, exc: Exception, hint: str) -> ConfigError:
    """A YAML file that does not parse: its name, the line the parser stopped at, and its problem."""
    mark = getattr(exc, "problem_mark", None)
    line = f", line {mark.line + 1}" if mark is not None else ""
    return ConfigError(f"{shown} is not valid YAML{line}: {getattr(exc, 'problem', None) or exc}.", hint=hint)


def read_project(settings: Settings) -> DbtProject:
    """Compile the settings' dbt project and read what synthesis needs from dbt's own results."""
    from dbt.cli.main import dbtRunner

    from sbdk.dbt.invoke import install_packages
    from sbdk.dbt.profiles import dbt_environment, dbt_profiles_dir, profile_args
    from sbdk.dbt.release import release_duckdb
    from sbdk.dbt.schemas import kept_schemas
    from sbdk.run.process import environment

    root = settings.paths.dbt_project_dir
    name = check_dbt_project(root)
    scratch = scratch_dir(settings)
    scratch.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    install_packages(settings)
    env = dbt_environment(settings) | {"DBT_DUCKDB_PATH": str(scratch / "compile.duckdb")}
    args = [
        "compile",
        "--project-dir", str(root),
        "--profiles-dir", str(dbt_profiles_dir(settings)),
        *profile_args(settings),
        "--target-path", str(scratch / "target"),
        "--log-path", str(scratch / "logs"),
        "--log-level", "none",
        "--select", "resource_type:model", "resource_type:snapshot",
        "--indirect-selection", "empty",
    ]  # fmt: skip
    manifest_path = scratch / "target" / "manifest.json"
    excluded: dict[str, str] = {}  # model -> why it cannot compile yet
    while True:
        manifest_path.unlink(missing_ok=True)
        try:
            with environment(env), kept_schemas(settings.paths.state_dir):
                outcome = dbtRunner().invoke(args + (["--exclude", *excluded] if excluded else []))
        finally:
            release_duckdb()
        failed = _failed_node(outcome.exception) if manifest_path.is_file() else None
        if failed is None or failed in excluded or len(excluded) >= _MAX_EXCLUDED:
            break
        # A model that queries its sources while compiling (run_query, dbt_utils.get_column_values)
        # fails against the empty scratch database, and dbt compile stops there: the others are read
        # without it, and the data made from them lets it build in `sbdk dev`.
        excluded[failed] = _first_lines(outcome.exception)
    if outcome.exception is not None or not manifest_path.is_file():
        raise DbtError(
            f"dbt could not read the project {root}: {_first_lines(outcome.exception or 'no manifest was written')}",
            hint="Fix the project (`dbt parse` there shows the same error); sbdk changed nothing in it.",
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    compiled = _compiled(outcome.result)
    project = _from_manifest(root, name, manifest, compiled)
    for model, error in excluded.items():
        path = next((m.path for m in project.models if m.name == model), model)
        project.warnings.append(
            f"{path} does not compile before its sources hold data ({error}); the columns it reads are not "
            "inferred: add them to synth.yml (or declare them in the sources YAML) if `sbdk dev` says they are missing."
        )
    project.seconds = time.perf_counter() - started
    return project


_MAX_EXCLUDED = 20
# dbt's first line for a node that failed: "Runtime Error in model order_statuses (models/x.sql)".
_FAILED_NODE = re.compile(r"Error in (?:model|snapshot) (\w+) \(")


def _failed_node(exception: BaseException | None) -> str | None:
    """The model a compile error is about (None: the project itself cannot be read)."""
    match = _FAILED_NODE.search(str(exception or ""))
    return match.group(1) if match else None


def scratch_dir(settings: Settings) -> Path:
    return settings.paths.state_dir / "synth"


def _first_lines(error: object, limit: int = 3) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return " ".join(lines[:limit])


def _compiled(result: Any) -> dict[str, tuple[str | None, str | None]]:
    """unique_id -> (compiled SQL, error) for each node dbt compiled (or failed to)."""
    found: dict[str, tuple[str | None, str | None]] = {}
    for item in getattr(result, "results", None) or ():
        node = item.node
        status = str(getattr(item.status, "value", item.status))
        if status in ("error", "fail"):
            found[node.unique_id] = (None, _first_lines(item.message or "it does not compile"))
        else:
            found[node.unique_id] = (getattr(node, "compiled_code", None), None)
    return found


def _from_manifest(
    root: Path, name: str, manifest: dict[str, Any], compiled: dict[str, tuple[str | None, str | None]]
) -> DbtProject:
    sources: list[Source] = []
    relations: dict[tuple[str, str], str] = {}
    keys: dict[str, str] = {}  # unique_id -> relation key
    for unique_id, node in manifest.get("sources", {}).items():
        source = Source(
            source=node["source_name"],
            table=node["name"],
            schema=str(node.get("schema") or node["source_name"]),
            identifier=str(node.get("identifier") or node["name"]),
            declared={c: (v.get("data_type") or None) for c, v in (node.get("columns") or {}).items()},
            loaded_at_field=node.get("loaded_at_field"),
            path=node.get("original_file_path", ""),
        )
        sources.append(source)
        relations[(source.schema.lower(), source.identifier.lower())] = source.key
        keys[unique_id] = source.key
    models: list[Model] = []
    warnings: list[str] = []
    for unique_id, node in manifest.get("nodes", {}).items():
        if node.get("resource_type") not in ("model", "snapshot"):
            continue
        key = f"model:{node['name']}"
        keys[unique_id] = key
        alias = node.get("alias") or node["name"]
        relations.setdefault((str(node.get("schema", "")).lower(), str(alias).lower()), key)
        if node.get("package_name") != name:
            continue  # a package's models read the project's sources only through its own vars
        code, error = compiled.get(unique_id, (node.get("compiled_code"), None))
        if error:
            warnings.append(f"{node.get('original_file_path', node['name'])} does not compile: {error}")
        models.append(Model(node["name"], node.get("original_file_path", ""), node.get("raw_code", ""), code, error))
    tests = [_test(node, keys) for node in manifest.get("nodes", {}).values() if _is_generic_test(node)]
    return DbtProject(
        root, name, sorted(sources, key=lambda s: (s.source, s.table)), models, tests, relations, warnings
    )


def _is_generic_test(node: dict[str, Any]) -> bool:
    return node.get("resource_type") == "test" and bool(node.get("test_metadata"))


def _test(node: dict[str, Any], keys: dict[str, str]) -> DataTest:
    meta = node["test_metadata"]
    kwargs = dict(meta.get("kwargs") or {})
    on = keys.get(node.get("attached_node") or "") or _relation_in(str(kwargs.get("model", "")), keys)
    to = _relation_in(str(kwargs.get("to", "")), keys) if "to" in kwargs else None
    column = node.get("column_name") or kwargs.get("column_name")
    return DataTest(
        name=str(meta.get("name")),
        namespace=meta.get("namespace"),
        on=on,
        column=str(column).strip('"').lower() if column else None,
        kwargs=kwargs,
        path=node.get("original_file_path", ""),
        to=to,
    )


def _relation_in(text: str, keys: dict[str, str]) -> str | None:
    """The relation key a Jinja `source(...)`/`ref(...)` call in `text` names (None: none)."""
    wanted = set(keys.values())
    if match := _SOURCE_CALL.search(text):
        key = f"source:{match.group(1)}.{match.group(2)}"
        return key if key in wanted else None
    if match := _REF_CALL.search(text):
        key = f"model:{match.group(2) or match.group(1)}"
        return key if key in wanted else None
    return None
