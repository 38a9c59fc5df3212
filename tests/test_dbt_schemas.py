"""dbt's JSON schemas are built once and kept in the state folder (sbdk.dbt.schemas, issue #20).

Each check runs in a fresh Python process, as `sbdk dev` does: within one process dbt keeps its schemas
in memory anyway, so only a new process shows whether the kept ones were used.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import query

from sbdk.dbt.schemas import FILE

# Asks dbt for two schemas inside kept_schemas(folder) and prints how many mashumaro had to build and
# a digest of what dbt got.
_ASK = textwrap.dedent(
    """
    import hashlib, json, sys
    from pathlib import Path
    import dbt_common.dataclass_schema as dataclass_schema
    from dbt.contracts.graph.nodes import ModelNode
    from dbt.contracts.project import Project
    from sbdk.dbt.schemas import kept_schemas

    built = []
    build = dataclass_schema.build_json_schema
    dataclass_schema.build_json_schema = lambda cls, *a, **k: built.append(cls.__name__) or build(cls, *a, **k)
    with kept_schemas(Path(sys.argv[1])):
        schemas = [ModelNode.json_schema(), Project.json_schema()]
    digest = hashlib.sha256(json.dumps(schemas, sort_keys=True).encode()).hexdigest()
    print(json.dumps({"built": sorted(built), "digest": digest}))
    """
)


def ask(folder: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", _ASK, str(folder)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_schemas_built_by_one_process_are_used_by_the_next(tmp_path: Path) -> None:
    first = ask(tmp_path)
    assert first["built"] == ["ModelNode", "Project"]
    kept = json.loads((tmp_path / FILE).read_text())
    assert kept["versions"]["dbt-core"]
    assert any(key.startswith("dbt.contracts.graph.nodes.ModelNode@") for key in kept["schemas"])

    second = ask(tmp_path)
    assert second == {"built": [], "digest": first["digest"]}


@pytest.mark.parametrize("damage", ["other versions", "not json", "cut short"])
def test_an_outdated_or_damaged_file_is_built_again_and_replaced(tmp_path: Path, damage: str) -> None:
    first = ask(tmp_path)
    path = tmp_path / FILE
    if damage == "other versions":
        kept = json.loads(path.read_text())
        kept["versions"]["dbt-core"] = "0.0.1"
        path.write_text(json.dumps(kept))
    elif damage == "not json":
        path.write_text("<html>")
    else:
        path.write_text(path.read_text()[:100])

    again = ask(tmp_path)
    assert again == {"built": ["ModelNode", "Project"], "digest": first["digest"]}
    assert ask(tmp_path)["built"] == []


@pytest.mark.slow
def test_dbt_still_rejects_a_bad_config_with_the_kept_schemas(project_copy: Path) -> None:
    """The built project keeps its schemas; a wrong type in a model's config still fails the parse, in a
    new process, with dbt's own message, and the marts built before stay as they were."""
    assert (project_copy / ".sbdk" / FILE).is_file()
    before = query(project_copy, "select count(*) from main.funnel")
    yml = project_copy / "dbt" / "models" / "marts" / "_marts.yml"
    text = yml.read_text()
    assert "  - name: funnel\n" in text
    yml.write_text(text.replace("  - name: funnel\n", "  - name: funnel\n    config:\n      materialized: 5\n"))

    done = subprocess.run([sys.executable, "-m", "sbdk", "dev"], cwd=project_copy, capture_output=True, text=True)

    assert done.returncode != 0, done.stdout
    assert "at path ['materialized']: 5 is not of type 'string'" in done.stdout + done.stderr
    assert query(project_copy, "select count(*) from main.funnel") == before
