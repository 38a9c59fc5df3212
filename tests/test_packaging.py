"""What a user installs: the wheel carries the templates, and the pins hold."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parent.parent


def requirements() -> dict[str, Requirement]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    parsed = (Requirement(line) for line in pyproject["project"]["dependencies"])
    return {requirement.name: requirement for requirement in parsed}


def test_dbt_core_is_pinned_below_1_12() -> None:
    # dbt-core 1.12 cannot be installed from PyPI alone (dbt-core issue #15670).
    assert requirements()["dbt-core"].specifier == SpecifierSet(">=1.11,<1.12")


def test_installed_stack_matches_the_pins() -> None:
    for name in ("dbt-core", "dbt-duckdb", "dlt", "duckdb", "dynaconf", "typer"):
        assert requirements()[name].specifier.contains(metadata.version(name)), name


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built for real from the checkout."""
    outdir = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(outdir)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = outdir.glob("sbdk-*.whl")
    return built


@pytest.mark.slow
def test_wheel_carries_the_cli_and_the_templates(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())

    assert "sbdk/cli/app.py" in names
    assert "sbdk/templates/dbt_project/dbt_project.yml" in names
    assert "sbdk/templates/dbt_project/models/staging/stg_orders.sql" in names
    assert "sbdk/templates/project/pipelines/users.py" in names
    # Every template file, not only the ones named above.
    templates = {
        "sbdk/templates/" + path.relative_to(REPO / "templates").as_posix()
        for path in (REPO / "templates").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert sorted(templates - names) == []
    assert not any("__pycache__" in name for name in names)


@pytest.mark.slow
def test_init_works_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sys, sbdk, pathlib\n"
        "from sbdk.ops.scaffold import InitOptions, init_project, templates_dir\n"
        "print(sbdk.__file__)\n"
        "print(templates_dir())\n"
        "init_project(InitOptions(folder=pathlib.Path(sys.argv[1])))\n"
    )
    # PYTHONPATH puts the unpacked wheel ahead of the editable checkout.
    env = {**os.environ, "PYTHONPATH": str(site)}

    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "shop")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    package_file, templates = result.stdout.splitlines()
    assert package_file == str(site / "sbdk" / "__init__.py")
    assert templates == str(site / "sbdk" / "templates")
    assert (tmp_path / "shop" / "dbt" / "models" / "marts" / "user_metrics.sql").is_file()
