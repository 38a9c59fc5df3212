"""Bad input to synthesis (issue #17): `sbdk init NAME --from-dbt PATH`, `sbdk dev` and `sbdk sources` on a
path that is no dbt project, an invalid dbt_project.yml, models that do not compile, a column used with
conflicting types, relationships that form a cycle, a test the synthesizer cannot satisfy, a dbt project
edited after synthesis and a bad synth.yml. Each gives a clear message (an error with its fix, or a warning
that says what was done instead), never a traceback, and nothing in the user's dbt project changes but dbt's
own folders (target/, logs/, dbt_packages/).

Each dbt project here is tiny (1-3 models), written by the test into tmp_path; where data is made, the
synth.yml rows are cut to 200 per table.
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from pathlib import Path

import pytest
from helpers import query

from sbdk.errors import ExitCode

pytestmark = pytest.mark.slow

DBT_OWN = {"target", "logs", "dbt_packages"}
CONFIG = int(ExitCode.CONFIG)
DBT = int(ExitCode.DBT)

DBT_PROJECT = """\
name: tiny_shop
version: "1.0.0"
config-version: 2
profile: tiny_shop
"""
# Two sources with no declared column: every column comes from the models' SQL.
SOURCES = """\
version: 2
sources:
  - name: shop
    tables:
      - name: customers
      - name: orders
"""
STG_CUSTOMERS = "select id as customer_id, full_name from {{ source('shop', 'customers') }}\n"
STG_ORDERS = "select id as order_id, customer_id, amount from {{ source('shop', 'orders') }}\n"
BASE = {
    "dbt_project.yml": DBT_PROJECT,
    "models/sources.yml": SOURCES,
    "models/stg_customers.sql": STG_CUSTOMERS,
    "models/stg_orders.sql": STG_ORDERS,
}


# --- helpers -----------------------------------------------------------------------------------------------


def _write(folder: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def _project(tmp_path: Path, files: dict[str, str | None] | None = None) -> Path:
    """The dbt project `analytics` in tmp_path: BASE with `files` added or replaced (None: left out)."""
    merged = {**BASE, **(files or {})}
    return _write(tmp_path / "analytics", {k: v for k, v in merged.items() if v is not None})


def _tree(folder: Path) -> dict[str, str]:
    """Every file of the dbt project outside dbt's own folders, with a digest of its bytes."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not DBT_OWN & set(path.relative_to(folder).parts)
    }


def _clean(result) -> str:
    """The command's output (stdout and stderr), checked to hold no traceback."""
    assert "Traceback" not in result.output, result.output
    return result.output


def _one_line(output: str) -> str:
    """The output with its lines joined: a long message must match whatever the line breaks."""
    return " ".join(line.strip() for line in output.splitlines())


def _init(cli, tmp_path: Path):
    return cli("init", "sandbox", "--from-dbt", "analytics", "--no-input", cwd=tmp_path)


def _init_ok(cli, tmp_path: Path, rows: int = 200) -> tuple[Path, str]:
    """`sbdk init sandbox --from-dbt analytics`, successful, with synth.yml cut to `rows` per table."""
    result = _init(cli, tmp_path)
    output = _clean(result)
    assert result.exit_code == 0, output
    root = tmp_path / "sandbox"
    _set_rows(root, rows)
    return root, output


def _set_rows(root: Path, rows: int) -> None:
    spec = root / "synth.yml"
    text, count = re.subn(r"(?m)^(    rows: )\d+$", rf"\g<1>{rows}", spec.read_text(encoding="utf-8"))
    assert count, text
    spec.write_text(text, encoding="utf-8")


def _dev(cli, root: Path):
    return cli("dev", cwd=root)


def _columns(root: Path, relation: str) -> list[str]:
    schema, name = relation.split(".")
    return [
        row[0]
        for row in query(
            root,
            "select lower(column_name) from information_schema.columns "
            f"where table_schema = '{schema}' and table_name = '{name}' order by ordinal_position",
        )
    ]


def _test_statuses(project: Path) -> dict[str, str]:
    """The data tests of the last dbt build, by name, with their status."""
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[2]: r["status"] for r in results if r["unique_id"].startswith("test.")}


# --- 1-4: a path that is not a dbt project, an invalid dbt_project.yml --------------------------------------


def test_a_path_that_does_not_exist_is_a_config_error_naming_it(cli, tmp_path: Path) -> None:
    result = cli("init", "x", "--from-dbt", "missing/", "--no-input", cwd=tmp_path)

    output = _clean(result)
    assert result.exit_code == CONFIG, output
    assert f"error: {tmp_path / 'missing'} does not exist." in output
    assert "fix: Give the folder that holds your dbt_project.yml." in output
    assert not (tmp_path / "x").exists()


def test_a_folder_without_dbt_project_yml_is_a_config_error(cli, tmp_path: Path) -> None:
    folder = _write(tmp_path / "analytics", {"models/a.sql": "select 1 as x\n"})
    before = _tree(folder)

    result = _init(cli, tmp_path)

    output = _clean(result)
    assert result.exit_code == CONFIG, output
    assert f"error: {folder} is not a dbt project: it has no dbt_project.yml." in output
    assert "fix: Give the folder of your dbt project (where `dbt build` runs)." in output
    assert not (tmp_path / "sandbox").exists()
    assert _tree(folder) == before


def test_a_file_instead_of_a_folder_is_a_config_error(cli, tmp_path: Path) -> None:
    (tmp_path / "analytics").write_text("name: shop\n")

    result = _init(cli, tmp_path)

    output = _clean(result)
    assert result.exit_code == CONFIG, output
    assert f"error: {tmp_path / 'analytics'} is a file, not a dbt project folder." in output
    assert not (tmp_path / "sandbox").exists()


def test_an_invalid_dbt_project_yml_is_a_config_error_naming_the_line(cli, tmp_path: Path) -> None:
    # Line 4 is indented under a scalar: "mapping values are not allowed here".
    folder = _project(
        tmp_path, {"dbt_project.yml": 'name: tiny_shop\nversion: "1.0.0"\nprofile: tiny_shop\n  bad: x\n'}
    )
    before = _tree(folder)

    result = _init(cli, tmp_path)

    output = _clean(result)
    assert result.exit_code == CONFIG, output
    assert (
        f"error: {folder / 'dbt_project.yml'} is not valid YAML, line 4: mapping values are not allowed here."
    ) in output
    assert "sbdk changes nothing in it" in output
    assert not (tmp_path / "sandbox").exists()
    assert _tree(folder) == before


def test_a_dbt_project_yml_without_a_name_is_a_config_error(cli, tmp_path: Path) -> None:
    folder = _project(tmp_path, {"dbt_project.yml": 'version: "1.0.0"\nconfig-version: 2\nprofile: tiny_shop\n'})
    before = _tree(folder)

    result = _init(cli, tmp_path)

    output = _clean(result)
    assert result.exit_code == CONFIG, output
    assert f"error: {folder / 'dbt_project.yml'} does not name the project (`name:` is missing)." in output
    assert "fix: Add `name: my_project` to it, as dbt requires." in output
    assert not (tmp_path / "sandbox").exists()
    assert _tree(folder) == before


# --- 5: a model that does not compile ---------------------------------------------------------------------


def test_a_missing_ref_is_a_dbt_error_and_sources_refresh_finishes_the_sandbox(cli, tmp_path: Path) -> None:
    """A ref to no model fails dbt's parse of the whole project: an error that says the sandbox exists and
    how to finish it once the project compiles; then `sbdk sources --refresh` does."""
    folder = _project(tmp_path, {"models/broken.sql": "select * from {{ ref('nope') }}\n"})
    before = _tree(folder)

    result = _init(cli, tmp_path)

    output = _one_line(_clean(result))
    root = tmp_path / "sandbox"
    assert result.exit_code == DBT, output
    assert f"error: dbt could not read the project {folder}: Compilation Error" in output
    assert "models/broken.sql" in output and "'nope' which was not found" in output
    assert (
        f"The sandbox {root} is created: once the dbt project compiles, run `sbdk sources --refresh` in it."
    ) in output
    assert (root / "sbdk_config.json").is_file() and not (root / "synth.yml").exists()
    assert _tree(folder) == before

    (folder / "models" / "broken.sql").write_text("select order_id from {{ ref('stg_orders') }}\n")
    before = _tree(folder)
    refreshed = cli("sources", "--refresh", cwd=root)

    output = _clean(refreshed)
    assert refreshed.exit_code == 0, output
    assert (root / "synth.yml").is_file()
    assert "wrote shop_orders.py" in output and "wrote shop_customers.py" in output
    assert "shop.orders" in output and "shop.customers" in output
    assert _tree(folder) == before


def test_dev_in_a_sandbox_whose_synthesis_failed_synthesizes_once_the_project_compiles(cli, tmp_path: Path) -> None:
    folder = _project(tmp_path, {"models/broken.sql": "select * from {{ ref('nope') }}\n"})
    before = _tree(folder)
    assert _init(cli, tmp_path).exit_code == DBT

    # Still broken: `sbdk dev` tries the synthesis again and names the model, not the template's fix.
    result = _dev(cli, tmp_path / "sandbox")
    output = _one_line(_clean(result))
    assert result.exit_code == DBT, output
    assert "models/broken.sql" in output and "init --force" not in output
    assert _tree(folder) == before

    # Fixed: the next `sbdk dev` writes synth.yml and the pipelines, then loads and builds.
    (folder / "models/broken.sql").write_text("select * from {{ source('shop', 'orders') }}\n")
    result = _dev(cli, tmp_path / "sandbox")
    assert result.exit_code == 0, _clean(result)
    assert (tmp_path / "sandbox" / "synth.yml").is_file()


def test_a_jinja_syntax_error_in_one_model_is_a_dbt_error_naming_the_model(cli, tmp_path: Path) -> None:
    broken = "select * from {{ source('shop', 'orders') }}\n{% if true %}\n"
    folder = _project(tmp_path, {"models/broken.sql": broken})
    before = _tree(folder)

    result = _init(cli, tmp_path)

    output = _one_line(_clean(result))
    root = tmp_path / "sandbox"
    assert result.exit_code == DBT, output
    assert f"error: dbt could not read the project {folder}: Compilation Error in model broken (models/broken.sql)" in (
        output
    )
    assert "Unexpected end of template" in output
    assert f"The sandbox {root} is created" in output and "`sbdk sources --refresh`" in output
    assert _tree(folder) == before


# A model that reads its source's values while compiling (as dbt_utils.get_column_values does, to pivot):
# valid (`dbt parse` and, once the source is loaded, `dbt build` pass), but it cannot compile before the
# source table exists.
INTROSPECTING = """\
{% set statuses = [] %}
{% if execute %}
{% set statuses = run_query("select distinct status from " ~ source('shop', 'orders')).columns[0].values() %}
{% endif %}
select count(*) as orders{% for s in statuses %}, count(*) filter (where status = '{{ s }}') as n_{{ s }}{% endfor %}
from {{ source('shop', 'orders') }}
"""


def test_a_model_that_cannot_compile_before_its_source_exists_is_a_warning_not_an_error(cli, tmp_path: Path) -> None:
    folder = _project(tmp_path, {"models/order_statuses.sql": INTROSPECTING})
    before = _tree(folder)

    result = _init(cli, tmp_path)

    output = _one_line(_clean(result))
    assert result.exit_code == 0, output
    assert "warning:" in output and "models/order_statuses.sql does not compile" in output
    assert "add them to synth.yml" in output
    root = tmp_path / "sandbox"
    _set_rows(root, 200)
    # As the warning says: the column its run_query reads, added to synth.yml.
    spec = root / "synth.yml"
    text = spec.read_text()
    anchor = "  shop.orders:\n    rows: 200\n    columns:\n"
    assert anchor in text, text
    spec.write_text(
        text.replace(anchor, anchor + "      status: {type: varchar, generator: choice, values: [placed, shipped]}\n")
    )
    built = _dev(cli, root)
    assert built.exit_code == 0, _clean(built)
    assert _tree(folder) == before


# --- 6: a column used with conflicting types ---------------------------------------------------------------


def test_a_column_used_with_conflicting_types_is_a_warning_naming_both_places(cli, tmp_path: Path) -> None:
    folder = _project(
        tmp_path,
        {
            "models/stg_orders.sql": (
                "select id as order_id, customer_id, amount, cast(placed_at as date) as placed_on\n"
                "from {{ source('shop', 'orders') }}\n"
            ),
            "models/order_totals.sql": "select sum(placed_at) as total\nfrom {{ source('shop', 'orders') }}\n",
        },
    )
    before = _tree(folder)

    root, output = _init_ok(cli, tmp_path)

    warning = (
        "shop.orders.placed_at is used as a date (models/stg_orders.sql:1) and as a number "
        "(models/order_totals.sql:1); generated as date. Set its type in synth.yml if that is wrong."
    )
    assert f"warning: {warning}" in _one_line(output)
    assert re.search(r"(?m)^      placed_at: \{type: date, ", (root / "synth.yml").read_text())

    shown = cli("sources", cwd=root)
    listing = _clean(shown)
    assert shown.exit_code == 0, listing
    assert "Warnings" in listing and warning in _one_line(listing)
    assert _tree(folder) == before


# --- 7: relationships that form a cycle --------------------------------------------------------------------

CYCLE = {
    "models/sources.yml": """\
        version: 2
        sources:
          - name: shop
            tables:
              - name: customers
                columns:
                  - name: id
                    data_tests: [unique, not_null]
                  - name: first_order_id
                    data_tests:
                      - relationships:
                          arguments:
                            to: source('shop', 'orders')
                            field: id
              - name: orders
                columns:
                  - name: id
                    data_tests: [unique, not_null]
                  - name: customer_id
                    data_tests:
                      - relationships:
                          arguments:
                            to: source('shop', 'customers')
                            field: id
        """,
    "models/stg_customers.sql": "select id as customer_id, first_order_id from {{ source('shop', 'customers') }}\n",
    "models/stg_orders.sql": "select id as order_id, customer_id from {{ source('shop', 'orders') }}\n",
}


def test_relationships_that_form_a_cycle_are_a_warning_and_both_hold(cli, tmp_path: Path) -> None:
    folder = _project(tmp_path, CYCLE)
    before = _tree(folder)

    root, output = _init_ok(cli, tmp_path)

    assert (
        "warning: relationships form a cycle (shop.customers -> shop.orders -> shop.customers); "
        "each side is generated from row numbers, so both hold."
    ) in _one_line(output)
    spec = (root / "synth.yml").read_text()
    assert "references: shop.orders.id" in spec and "references: shop.customers.id" in spec

    built = _dev(cli, root)
    assert built.exit_code == 0, _clean(built)
    statuses = _test_statuses(folder)
    relationships = {name: status for name, status in statuses.items() if name.startswith("source_relationships")}
    assert len(relationships) == 2 and set(relationships.values()) == {"pass"}, statuses
    assert set(statuses.values()) == {"pass"}, statuses
    assert query(root, "select count(*) from shop.orders")[0][0] == 200
    assert _tree(folder) == before


# --- 8: a test the synthesizer cannot satisfy --------------------------------------------------------------


def test_a_test_on_a_computed_column_is_listed_as_one_that_may_fail(cli, tmp_path: Path) -> None:
    folder = _project(
        tmp_path,
        {
            "models/order_sizes.sql": (
                "select order_id, case when amount > 100 then 'big' else 'small' end as size\n"
                "from {{ ref('stg_orders') }}\n"
            ),
            "models/marts.yml": """\
                version: 2
                models:
                  - name: order_sizes
                    columns:
                      - name: size
                        data_tests:
                          - accepted_values:
                              arguments:
                                values: [big, small, medium]
                """,
        },
    )
    before = _tree(folder)

    root, output = _init_ok(cli, tmp_path)
    assert "1 data test(s) may fail on synthesized data; `sbdk sources` lists them and why." in output

    shown = cli("sources", cwd=root)
    listing = _clean(shown)
    assert shown.exit_code == 0, listing
    assert "Tests that may fail on synthesized data" in listing
    assert (
        "accepted_values on order_sizes.size (models/marts.yml): "
        "size is computed by order_sizes, not read from a source as is"
    ) in _one_line(listing)
    assert _tree(folder) == before


# --- 9: the dbt project edited after synthesis -------------------------------------------------------------


def test_synthesis_again_keeps_edits_and_reports_added_and_removed_columns(cli, tmp_path: Path) -> None:
    folder = _project(tmp_path)
    root, _ = _init_ok(cli, tmp_path)
    spec = root / "synth.yml"
    text = spec.read_text()
    # The user's edits: another generator and a range for amount, rows for orders.
    amount = re.search(r"(?m)^      amount: .*$", text)
    assert amount, text
    edited_amount = "      amount: {type: double, generator: double, min: 5, max: 10}"
    text = text.replace(amount.group(0), edited_amount)
    text = re.sub(r"(?m)^(  shop\.orders:\n    rows: )\d+$", r"\g<1>150", text)
    spec.write_text(text)
    edited_orders = text.split("  shop.orders:\n", 1)[1]

    # A new column read by a staging model.
    (folder / "models" / "stg_orders.sql").write_text(
        "select id as order_id, customer_id, amount, coupon_code from {{ source('shop', 'orders') }}\n"
    )
    before = _tree(folder)
    result = _dev(cli, root)

    output = _one_line(_clean(result))
    assert result.exit_code == 0, output
    assert "column shop.orders.coupon_code added to synth.yml (new in the dbt project)" in output
    after = spec.read_text()
    assert edited_amount in after.splitlines()
    assert re.search(r"(?m)^  shop\.orders:\n    rows: 150$", after)
    for line in edited_orders.splitlines():
        assert line in after.splitlines(), line  # every line of the edited table is kept as it was
    assert "coupon_code" in _columns(root, "shop.orders")
    low, high, rows = query(root, "select min(amount), max(amount), count(*) from shop.orders")[0]
    assert 5 <= low <= high <= 10 and rows == 150
    assert _tree(folder) == before

    # The column's use removed: reported, kept in synth.yml, and shown so by `sbdk sources`.
    (folder / "models" / "stg_orders.sql").write_text(STG_ORDERS)
    before = _tree(folder)
    again = _dev(cli, root)

    output = _one_line(_clean(again))
    assert again.exit_code == 0, output
    assert "shop.orders.coupon_code is no longer in the dbt project; kept in synth.yml (delete it if unused)" in output
    assert re.search(r"(?m)^      coupon_code: ", spec.read_text())
    assert edited_amount in spec.read_text().splitlines()
    shown = cli("sources", cwd=root)
    assert shown.exit_code == 0, shown.output
    row = next(line for line in _clean(shown).splitlines() if "coupon_code" in line)
    assert "not in the dbt project (kept from synth.yml)" in row
    assert _tree(folder) == before


# --- 10: a bad synth.yml ----------------------------------------------------------------------------------

# (the generator amount changed to, the error line expected, the start of the fix line expected)
BAD_GENERATORS = [
    pytest.param(
        "money",
        "error: synth.yml: shop.orders.amount has generator 'money', which does not exist.",
        "fix: Use one of address, amount, boolean, choice,",
        id="unknown",
    ),
    pytest.param(
        "integer",
        "error: synth.yml: shop.orders.amount is decimal(18,2), which integer values cannot be written as.",
        "fix: Pick a generator that makes decimal(18,2) values, or change the column's type.",
        id="wrong-type",
    ),
]


def _bad_generator(root: Path, generator: str) -> None:
    spec = root / "synth.yml"
    text, count = re.subn(r"(?m)^(      amount: \{.*generator: )amount\b", rf"\g<1>{generator}", spec.read_text())
    assert count == 1, text
    spec.write_text(text)


def _orders_digest(root: Path) -> str:
    return query(root, "select md5(string_agg(cast(t as varchar), '|' order by id)) from shop.orders t")[0][0]


def test_a_bad_synth_yml_fails_without_a_traceback_and_keeps_the_loaded_data(cli, tmp_path: Path) -> None:
    folder = _project(tmp_path)
    root, _ = _init_ok(cli, tmp_path)
    first = _dev(cli, root)
    assert first.exit_code == 0, _clean(first)
    loaded = _orders_digest(root)
    before = _tree(folder)
    good = (root / "synth.yml").read_text()

    for generator in ("money", "integer"):
        (root / "synth.yml").write_text(good)
        _bad_generator(root, generator)
        result = _dev(cli, root)

        output = _one_line(_clean(result))
        assert result.exit_code != 0, output
        assert "shop.orders.amount" in output and "error:" in output and "fix:" in output
        assert _orders_digest(root) == loaded
        assert _tree(folder) == before


@pytest.mark.parametrize(("generator", "message", "fix"), BAD_GENERATORS)
def test_a_bad_generator_in_synth_yml_is_a_config_error_naming_synth_yml_and_the_column(
    cli, tmp_path: Path, generator: str, message: str, fix: str
) -> None:
    folder = _project(tmp_path)
    root, _ = _init_ok(cli, tmp_path)
    _bad_generator(root, generator)
    before = _tree(folder)

    result = _dev(cli, root)

    output = _clean(result)
    assert result.exit_code == CONFIG, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert errors == [message], output
    fixes = [line for line in output.splitlines() if line.startswith("fix:")]
    assert len(fixes) == 1 and fixes[0].startswith(fix), output
    assert "pipelines/" not in output and ".py" not in output, output
    assert _tree(folder) == before
