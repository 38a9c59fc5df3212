"""Shared fixtures: real projects in tmp_path, a clean environment, the CLI runner."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from typer.testing import CliRunner

from sbdk.cli.app import app
from sbdk.ops.scaffold import InitOptions, init_project

# CI (CI=true) runs every property test on the same derandomized examples, so a run never fails by
# chance; locally the default profile keeps exploring new examples.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

# Small volumes keep each real dlt + dbt run to a few seconds.
SMALL = {"users": 200, "events": 1_000}
AS_OF = date(2026, 11, 1)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SBDK_* setting of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("SBDK_") or name in ("DBT_DUCKDB_PATH",):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Create an sbdk project (the real `init`) with small volumes; returns its folder."""

    def make(name: str = "demo", **volume: int) -> Path:
        sizes = {**SMALL, **volume}
        report = init_project(InitOptions(folder=tmp_path / name, as_of=AS_OF, **sizes))
        return report.root

    return make


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project()


@pytest.fixture(scope="session")
def built_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project after a full, successful `sbdk dev`, built once per test process (each xdist worker
    has its own basetemp); only `built` copies it, no test sees or changes it."""
    from tests_support import build_project, built_parent

    return build_project(built_parent(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="module")
def built(built_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project per test module after a full, successful `sbdk dev` (copy it to change it): the
    module's own copy of `built_template`, the same as one built in its folder (tests_support.copy_built),
    so no module sees what another changed in its project."""
    from tests_support import copy_built

    return copy_built(built_template, tmp_path_factory.getbasetemp())


@pytest.fixture
def project_copy(built: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "demo"
    shutil.copytree(built, target, ignore=shutil.ignore_patterns("target", "logs", "dlt"))
    return target


def edit_config(root: Path, **changes) -> None:
    path = root / "sbdk_config.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data, indent=2))


class Cli:
    """Runs `sbdk` in-process from a given folder, like a user in a terminal."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, cwd: Path | None = None, input: str | None = None):
        old = Path.cwd()
        if cwd is not None:
            os.chdir(cwd)
        try:
            return self.runner.invoke(app, list(args), input=input, catch_exceptions=False)
        finally:
            os.chdir(old)


@pytest.fixture
def served():
    """Starts `sbdk webhooks` processes (tests/test_webhooks.py `Served`) and kills them afterwards."""
    from test_webhooks import Served

    started: list[Served] = []

    def start(root: Path, *args: str) -> Served:
        server = Served(root, *args)
        started.append(server)
        server.ready()
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture
def cli() -> Cli:
    return Cli()


# Fixtures that build a project with dbt (or start a server): a test using one is slow, and must say so
# so that `-m "not slow"` stays a fast inner loop.
SLOW_FIXTURES = {"built_template", "built", "project_copy", "copy", "live", "server", "server_project"}


# The longest modules start first: pytest-xdist (--dist loadscope --no-loadscope-reorder, in
# pyproject.toml) hands modules to its workers in the order collected; by default it would order them by
# their number of tests, and the Spark module (few tests, five minutes) would run alone at the end.
LONGEST_FIRST = ("test_spark.py", "test_ui_browser.py", "test_ui_api.py", "test_mcp.py", "test_postgres.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
    unmarked = [
        item.nodeid
        for item in items
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("slow") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "These tests build with dbt or start a server but are not marked slow "
            f"(add `pytestmark = pytest.mark.slow` or @pytest.mark.slow): {', '.join(unmarked[:10])}"
        )
