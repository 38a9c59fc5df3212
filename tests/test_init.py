"""`sbdk init` and the scaffold behind it: layout, names, refusals, and nothing written elsewhere."""

from __future__ import annotations

import json
import re
import stat
import types
from datetime import date
from pathlib import Path

import pytest
import yaml

from sbdk.errors import UsageError
from sbdk.ops.scaffold import InitOptions, init_project, validate_name
from sbdk.settings import DEFAULTS, load_settings

LAYOUT = (
    "sbdk_config.json",
    ".env",
    ".env.example",
    ".gitignore",
    ".github/workflows/sbdk.yml",
    "Dockerfile",
    ".dockerignore",
    "README.md",
    "pipelines/users.py",
    "pipelines/events.py",
    "pipelines/orders.py",
    "dbt/dbt_project.yml",
    "dbt/models/staging/stg_users.sql",
    "dbt/models/marts/user_metrics.sql",
    "dbt/macros/revenue.sql",
    "dbt/tests/generic/accepted_range.sql",
    "profiles/profiles.yml",
)


def plain(output: str) -> str:
    """CLI output without colour codes and with Rich's line wrapping undone."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", output).split())


def tree(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*")}


@pytest.fixture
def created(tmp_path: Path, cli) -> Path:
    """A project made by `sbdk init shop` with no options, as a user would."""
    result = cli("init", "shop", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    return tmp_path / "shop"


def test_init_creates_the_design_layout(created: Path) -> None:
    for relative in LAYOUT:
        assert (created / relative).is_file(), relative
    assert (created / "data").is_dir()
    assert not (created / "data" / "dev.duckdb").exists()


def test_config_has_the_project_name_defaults_and_today_as_as_of(created: Path) -> None:
    data = json.loads((created / "sbdk_config.json").read_text())

    assert data["project"] == "shop"
    assert data["target"] == "dev"
    assert data["data_volume"] == DEFAULTS["data_volume"]
    assert data["data_profile"] == DEFAULTS["data_profile"]
    assert data["seed"] == 42
    assert date.fromisoformat(data["as_of"]) <= date.today()
    assert "webhook_secret" not in data


def test_dotenv_is_private_and_ignored_by_git(created: Path) -> None:
    assert stat.S_IMODE((created / ".env").stat().st_mode) == 0o600
    ignored = (created / ".gitignore").read_text().splitlines()
    assert ".env" in ignored
    assert "data/" in ignored
    assert "SBDK_WEBHOOK_SECRET=" in (created / ".env.example").read_text()


def test_project_name_replaces_every_placeholder(created: Path) -> None:
    leftovers = [
        path.relative_to(created).as_posix()
        for path in created.rglob("*")
        if path.is_file() and "__SBDK_PROJECT__" in path.read_text(encoding="utf-8")
    ]
    assert leftovers == []

    dbt_project = yaml.safe_load((created / "dbt" / "dbt_project.yml").read_text())
    assert dbt_project["name"] == "shop"
    assert list(dbt_project["models"]) == ["shop"]
    assert (created / "README.md").read_text().startswith("# shop\n")


def test_profile_points_dbt_at_duckdb(created: Path) -> None:
    profiles = yaml.safe_load((created / "profiles" / "profiles.yml").read_text())
    dbt_project = yaml.safe_load((created / "dbt" / "dbt_project.yml").read_text())

    assert dbt_project["profile"] in profiles
    assert profiles[dbt_project["profile"]]["outputs"]["dev"]["type"] == "duckdb"


def test_pipelines_are_valid_python_with_a_generate_function(created: Path) -> None:
    for name in ("users", "events", "orders"):
        source = (created / "pipelines" / f"{name}.py").read_text()
        compile(source, name, "exec")
        assert "def generate(ctx" in source, name


def test_config_loads_and_validates_right_after_init(created: Path) -> None:
    settings = load_settings(created / "sbdk_config.json")

    assert settings.project == "shop"
    assert settings.warnings == ()
    assert settings.paths.pipelines_dir.is_dir()
    assert (settings.paths.dbt_project_dir / "dbt_project.yml").is_file()
    assert (settings.paths.profiles_dir / "profiles.yml").is_file()


def test_init_prints_next_steps(tmp_path: Path, cli) -> None:
    result = cli("init", "shop", cwd=tmp_path)

    output = plain(result.output)
    assert f"Created project shop in {tmp_path / 'shop'}" in output
    assert "Next steps: cd shop sbdk dev" in output


def test_options_reach_the_config(tmp_path: Path, cli) -> None:
    result = cli("init", "shop", "--users", "5", "--events", "10", "--seed", "9", cwd=tmp_path)

    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "shop" / "sbdk_config.json").read_text())
    assert data["data_volume"] == {"users": 5, "events": 10}
    assert data["seed"] == 9


def test_no_input_flag_and_no_terminal_both_skip_prompts(tmp_path: Path, cli) -> None:
    # CliRunner's stdin is not a TTY: without --no-input sbdk must not prompt either.
    for name, flags in (("a", ["--no-input"]), ("b", [])):
        result = cli("init", name, *flags, cwd=tmp_path)

        assert result.exit_code == 0, result.output
        assert "Users" not in result.output
        assert (tmp_path / name / "sbdk_config.json").is_file()


def test_without_a_terminal_a_name_is_required(tmp_path: Path, cli) -> None:
    result = cli("init", cwd=tmp_path)

    assert result.exit_code == 2
    assert plain(result.output) == "error: No project name given. fix: Run `sbdk init my_project`."
    assert tree(tmp_path) == set()


@pytest.fixture
def fake_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `sbdk init` believe stdin is a terminal (CliRunner's never is)."""
    import sbdk.cli.init as init_module

    stdin = types.SimpleNamespace(isatty=lambda: True)
    monkeypatch.setattr(init_module, "sys", types.SimpleNamespace(stdin=stdin))


def test_on_a_terminal_init_prompts(tmp_path: Path, cli, fake_tty) -> None:
    result = cli("init", cwd=tmp_path, input="shop\n7\n\n")

    assert result.exit_code == 0, result.output
    assert "Project name [my_project]:" in result.output
    data = json.loads((tmp_path / "shop" / "sbdk_config.json").read_text())
    assert data["data_volume"] == {"users": 7, "events": DEFAULTS["data_volume"]["events"]}
    assert "Orders" not in result.output


def test_no_input_never_prompts_even_on_a_terminal(tmp_path: Path, cli, fake_tty) -> None:
    result = cli("init", "shop", "--no-input", cwd=tmp_path, input="")

    assert result.exit_code == 0, result.output
    assert "Users" not in result.output
    data = json.loads((tmp_path / "shop" / "sbdk_config.json").read_text())
    assert data["data_volume"] == DEFAULTS["data_volume"]


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("my-proj", "my_proj"), ("1proj", "p_1proj"), ("my proj", "my_proj"), ("shop.v2", "shop_v2")],
)
def test_names_dbt_would_reject_are_refused_with_a_suggestion(tmp_path: Path, cli, name: str, suggestion: str) -> None:
    result = cli("init", name, cwd=tmp_path)

    assert result.exit_code == 2
    assert plain(result.output) == (
        f"error: Project name {name!r} is not allowed: dbt project names use only letters, digits "
        f"and underscores, and do not start with a digit. fix: Try `sbdk init {suggestion}`."
    )
    assert tree(tmp_path) == set()


@pytest.mark.parametrize("name", ["shop", "_shop", "Shop2", "a" * 64])
def test_names_dbt_accepts_pass(name: str) -> None:
    assert validate_name(name) == name


def test_an_overlong_name_is_refused() -> None:
    with pytest.raises(UsageError, match="is 65 characters long; the limit is 64"):
        validate_name("a" * 65)


def test_non_empty_folder_needs_force(tmp_path: Path, cli) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "notes.txt").write_text("mine")

    result = cli("init", "shop", cwd=tmp_path)

    assert result.exit_code == 2
    output = plain(result.output)
    assert f"error: Folder {tmp_path / 'shop'} already exists and is not empty; sbdk will not overwrite it." in output
    assert "pass --force" in output
    assert tree(tmp_path) == {"shop", "shop/notes.txt"}


def test_force_keeps_unrelated_files_and_an_existing_dotenv(tmp_path: Path, cli) -> None:
    folder = tmp_path / "shop"
    (folder / "data").mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    (folder / "data" / "dev.duckdb").write_bytes(b"not really a database")
    (folder / ".env").write_text("SBDK_WEBHOOK_SECRET=keep-me\n")

    result = cli("init", "shop", "--force", cwd=tmp_path)

    assert result.exit_code == 0, result.output
    assert (folder / "notes.txt").read_text() == "mine"
    assert (folder / "data" / "dev.duckdb").read_bytes() == b"not really a database"
    assert (folder / ".env").read_text() == "SBDK_WEBHOOK_SECRET=keep-me\n"
    assert (folder / "dbt" / "dbt_project.yml").is_file()


def test_an_empty_existing_folder_is_used_without_force(tmp_path: Path, cli) -> None:
    (tmp_path / "shop").mkdir()

    result = cli("init", "shop", cwd=tmp_path)

    assert result.exit_code == 0, result.output
    assert (tmp_path / "shop" / "sbdk_config.json").is_file()


def test_a_file_in_the_way_is_refused(tmp_path: Path, cli) -> None:
    (tmp_path / "shop").write_text("a file")

    result = cli("init", "shop", "--force", cwd=tmp_path)

    assert result.exit_code == 2
    assert f"error: {tmp_path / 'shop'} exists and is a file." in plain(result.output)
    assert (tmp_path / "shop").read_text() == "a file"


def test_missing_parent_folder_is_refused(tmp_path: Path, cli) -> None:
    result = cli("init", "missing/shop", cwd=tmp_path)

    assert result.exit_code == 2
    assert (
        f"error: Cannot create {tmp_path / 'missing' / 'shop'}: its parent folder "
        f"{tmp_path / 'missing'} does not exist." in plain(result.output)
    )
    assert tree(tmp_path) == set()


def test_the_last_part_of_a_path_is_the_project_name(tmp_path: Path, cli) -> None:
    (tmp_path / "work").mkdir()

    result = cli("init", "work/shop", cwd=tmp_path)

    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "work" / "shop" / "sbdk_config.json").read_text())["project"] == "shop"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--users", "-1"], "error: --users -1 is outside 0..50,000,000."),
        (["--events", "50000001"], "error: --events 50000001 is outside 0..50,000,000."),
        (["--users", "0"], "error: 0 users with events: every event belongs to a user."),
        (["--orders", "3"], "No such option: --orders"),
    ],
)
def test_bad_volumes_are_refused_before_writing(tmp_path: Path, cli, args, message) -> None:
    result = cli("init", "shop", *args, cwd=tmp_path)

    assert result.exit_code == 2
    assert message in plain(result.output)
    assert tree(tmp_path) == set()


def test_init_writes_only_inside_the_new_folder(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    before = tree(tmp_path)

    result = cli("init", str(tmp_path / "shop"), cwd=cwd)

    assert result.exit_code == 0, result.output
    new = tree(tmp_path) - before
    assert new and all(path == "shop" or path.startswith("shop/") for path in new)
    assert tree(tmp_path) - new == before


def test_report_lists_the_files_written(tmp_path: Path) -> None:
    report = init_project(InitOptions(folder=tmp_path / "shop", as_of=date(2026, 3, 1)))

    assert report.project == "shop"
    assert report.root == tmp_path / "shop"
    written = {path.relative_to(report.root).as_posix() for path in report.files}
    assert set(LAYOUT) <= written
    assert json.loads((report.root / "sbdk_config.json").read_text())["as_of"] == "2026-03-01"


def test_init_with_tracking_enabled_and_no_server_still_succeeds(tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("SBDK_TRACKING__ENABLED", "true")
    monkeypatch.setenv("SBDK_TRACKING__ENDPOINT", "http://127.0.0.1:9")

    result = cli("init", "tracked", "--no-input", cwd=tmp_path)

    assert result.exit_code == 0, result.output
    assert "did not answer; not registered" in result.output
    assert json.loads((tmp_path / "tracked" / "sbdk_config.json").read_text())["tracking"]["uuid"] is None


def test_force_dot_restores_missing_files_and_keeps_edited_ones(tmp_path: Path, cli) -> None:
    assert cli("init", "shop", "--no-input", cwd=tmp_path).exit_code == 0
    root = tmp_path / "shop"
    (root / "pipelines" / "orders.py").unlink()
    edited = root / "pipelines" / "users.py"
    edited.write_text(edited.read_text() + "\n# my change\n")
    config = json.loads((root / "sbdk_config.json").read_text())
    config["seed"] = 7
    (root / "sbdk_config.json").write_text(json.dumps(config))

    result = cli("init", "--force", ".", "--no-input", cwd=root)

    assert result.exit_code == 0, result.output
    assert (root / "pipelines" / "orders.py").is_file()
    assert edited.read_text().endswith("# my change\n")
    assert json.loads((root / "sbdk_config.json").read_text())["seed"] == 7
