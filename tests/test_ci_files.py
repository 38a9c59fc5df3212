"""The files `sbdk init` writes for other tools (issue #19, items 2 and 3), checked by those tools' own
linters (check-jsonschema, zizmor, hadolint), the workflow's steps run for real, and `--log-format
github`: the annotations and the job summary, exact."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import version
from pathlib import Path, PurePosixPath

import pytest
import yaml

from sbdk.cli import github
from sbdk.ops.scaffold import image_name
from sbdk.run import history
from sbdk.run.results import DbtReport, LoadReport, NodeResult, RunReport, TableLoad

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = ".github/workflows/sbdk.yml"
CI_FILES = (WORKFLOW, "Dockerfile", ".dockerignore")
# The workflow's install of sbdk from PyPI, and the Dockerfile's.
PIP_INSTALL = f'pip install "sbdk=={version("sbdk")}"'
FAILING_TEST = "select user_id from {{ ref('stg_users') }} where user_id <= 3\n"
BROKEN_COLUMN = "        no_such_column + 1 as broken"


def tool(name: str) -> str:
    """A linter installed with the test extras, beside this Python (or on PATH)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[test]'"
    return found


def lint(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool(args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


def workflow(project: Path) -> dict:
    return yaml.safe_load((project / WORKFLOW).read_text(encoding="utf-8"))


def steps(project: Path) -> list[dict]:
    (job,) = workflow(project)["jobs"].values()
    return job["steps"]


@pytest.fixture
def github_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A step's environment on GitHub Actions: the job summary file, and no repository root (the
    annotations then name files from the project's folder)."""
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    return summary


# -- what init writes


def test_init_writes_the_ci_files_pinned_to_this_sbdk(project: Path) -> None:
    for relative in CI_FILES:
        assert (project / relative).is_file(), relative
    assert (project / WORKFLOW).read_text().count(PIP_INSTALL) == 1
    assert 'RUN pip install --no-cache-dir "sbdk==' + version("sbdk") + '"\n' in (project / "Dockerfile").read_text()
    leftovers = [p.name for p in project.rglob("*") if p.is_file() and "__SBDK_" in p.read_text(encoding="utf-8")]
    assert leftovers == []


def test_init_force_restores_deleted_ci_files(tmp_path: Path, cli) -> None:
    assert cli("init", "shop", "--no-input", cwd=tmp_path).exit_code == 0
    root = tmp_path / "shop"
    written = {relative: (root / relative).read_text() for relative in CI_FILES}
    shutil.rmtree(root / ".github")
    (root / "Dockerfile").unlink()
    (root / ".dockerignore").unlink()

    result = cli("init", "--force", ".", "--no-input", cwd=root)

    assert result.exit_code == 0, result.output
    assert {relative: (root / relative).read_text() for relative in CI_FILES} == written
    for relative in CI_FILES:
        assert relative in result.output


def test_the_projects_readme_mentions_ci_and_docker(project: Path) -> None:
    readme = (project / "README.md").read_text()
    assert WORKFLOW in readme and "sbdk --log-format github dev" in readme
    assert "docker build -t demo ." in readme and "docker run" in readme


@pytest.mark.parametrize(
    ("name", "image"), [("shop", "shop"), ("My__Shop_", "my_shop"), ("_a1", "a1"), ("__", "sbdk-project")]
)
def test_image_names_follow_dockers_rule(name: str, image: str) -> None:
    assert image_name(name) == image
    assert re.fullmatch(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", image)


# -- the workflow


def test_the_workflow_validates_against_githubs_schema(project: Path) -> None:
    result = lint("check-jsonschema", "--builtin-schema", "vendor.github-workflows", WORKFLOW, cwd=project)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_zizmor_finds_nothing_in_the_workflow(project: Path) -> None:
    result = lint("zizmor", "--offline", WORKFLOW, cwd=project)

    # zizmor exits 0 only without findings (10 + the highest severity otherwise).
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout
    # Not even the pedantic ones (nothing suppressed, no code smell).
    pedantic = lint("zizmor", "--offline", "--persona", "pedantic", "--format", "json", WORKFLOW, cwd=project)
    assert pedantic.returncode == 0 and json.loads(pedantic.stdout) == [], pedantic.stdout


def test_the_workflow_reads_only_pins_its_actions_and_keeps_no_credentials(project: Path) -> None:
    text = (project / WORKFLOW).read_text()
    assert workflow(project)["permissions"] == {"contents": "read"}
    uses = re.findall(r"uses: (\S+)@(\S+) # (v\S+)$", text, re.M)
    assert [action for action, _, _ in uses] == ["actions/checkout", "actions/setup-python", "actions/upload-artifact"]
    assert all(re.fullmatch(r"[0-9a-f]{40}", sha) for _, sha, _ in uses), uses
    assert text.count("uses:") == len(uses)
    checkout, setup, *_ = steps(project)
    assert checkout["with"] == {"persist-credentials": False}
    assert setup["with"]["cache"] == "pip"
    assert (project / setup["with"]["cache-dependency-path"]).is_file()


def test_the_workflow_uploads_the_run_log_history_and_run_results_always(project: Path) -> None:
    upload = steps(project)[-1]
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["if"] == "${{ always() }}"
    assert upload["with"]["path"].split() == ["logs/", ".sbdk/history.jsonl", "dbt/target/run_results.json"]
    assert upload["with"]["include-hidden-files"] is True  # .sbdk/ is hidden
    runs = [step["run"] for step in steps(project) if "run" in step]
    assert runs == [PIP_INSTALL, "sbdk --log-format github dev"]


@pytest.mark.slow
def test_the_workflows_run_steps_pass_in_a_fresh_virtualenv(project: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    # A venv made from this test's venv gets the base interpreter's packages, not this environment's:
    # a .pth file adds this environment's site-packages too, so every dependency is already installed
    # and the workflow's steps download nothing.
    (site_packages,) = (venv / "lib").glob("python*/site-packages")
    outer = sysconfig.get_paths()["purelib"]
    (site_packages / "_outer_environment.pth").write_text(f"import site; site.addsitedir({outer!r})\n")
    summary = tmp_path / "step_summary.md"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SBDK_", "GITHUB_", "VIRTUAL_ENV"))},
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "VIRTUAL_ENV": str(venv),
        "PIP_NO_INDEX": "1",  # offline: nothing is fetched
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(project),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    installs = 0
    for step in steps(project):
        if "run" not in step:
            continue  # checkout, setup-python (this venv) and the artifact upload (checked below)
        script = step["run"]
        if script == PIP_INSTALL:
            # The one line run differently: this checkout of sbdk instead of the release on PyPI. Not
            # editable (`-e`): hatchling's editable build needs the `editables` package, which this
            # environment does not have, and build isolation would fetch hatchling from the index.
            script, installs = f"pip install --no-deps --no-build-isolation {REPO}", installs + 1
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, f"{step['name']}: {script}\n{result.stdout}\n{result.stderr}"
    assert installs == 1

    assert (venv / "bin" / "sbdk").is_file()
    assert "::error" not in result.stdout
    upload = steps(project)[-1]
    for path in upload["with"]["path"].split():
        assert (project / path).exists(), f"the artifact's {path} was not written"
    (entry,) = history.last(project / ".sbdk", 1)
    assert entry["status"] == "succeeded"
    written = summary.read_text()
    assert written.startswith(f"## sbdk dev: succeeded\n\nRun `{entry['run_id']}`.\n\n| stage | seconds |\n")
    for stage, seconds in entry["stages"].items():
        assert f"| {stage} | {seconds:.3f} |\n" in written
    assert "### Failures" not in written


# -- the Dockerfile


def test_the_dockerfile_passes_hadolint(project: Path) -> None:
    result = lint("hadolint", "Dockerfile", cwd=project)

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_the_dockerfile_serves_the_webhooks_as_a_user_with_a_health_check(project: Path) -> None:
    text = (project / "Dockerfile").read_text()
    instructions = [line for line in text.replace("\\\n", " ").splitlines() if line and not line.startswith("#")]
    (base,) = [line for line in instructions if line.startswith("FROM ")]
    assert re.fullmatch(r"FROM python:3\.\d+\.\d+-slim-\w+", base)
    (user,) = [line for line in instructions if line.startswith("USER ")]
    assert user.split()[1].split(":")[0] not in ("0", "root")
    assert instructions[-1] == 'CMD ["sbdk", "webhooks", "--host", "0.0.0.0"]'
    (health,) = [line for line in instructions if line.startswith("HEALTHCHECK ")]
    assert "urllib.request.urlopen('http://127.0.0.1:8000/health'" in health and "curl" not in health
    # The DuckDB file's folder, as the project's config places it, is the volume.
    config = json.loads((project / "sbdk_config.json").read_text())
    data = PurePosixPath(config["duckdb_path"]).parent
    assert f'VOLUME ["/app/{data}"]' in instructions


def test_the_dockerignore_keeps_data_secrets_and_build_output_out(project: Path) -> None:
    ignored = {line for line in (project / ".dockerignore").read_text().splitlines() if not line.startswith("#")}
    assert {"data/", ".env", ".sbdk/", "logs/", "backups/", "dbt/target/"} <= ignored


# -- --log-format github: the formatting, without a run


def test_messages_escape_percent_and_line_breaks() -> None:
    assert github.escape_data("100% done\r\nnext: a, b") == "100%25 done%0D%0Anext: a, b"


def test_properties_also_escape_colons_and_commas() -> None:
    assert github.escape_property("a:b,c%\nd") == "a%3Ab%2Cc%25%0Ad"


def test_a_workflow_command_leaves_out_missing_properties() -> None:
    assert github.workflow_command("error", "x,y: z", file="a,b.sql", line=3, title=None) == (
        "::error file=a%2Cb.sql,line=3::x,y: z"
    )
    assert github.workflow_command("warning", "50%") == "::warning::50%25"


def node(name: str, resource_type: str, status: str, message: str | None = None, **more) -> NodeResult:
    return NodeResult(f"{resource_type}.demo.{name}", name, resource_type, status, 0.1, message, **more)


BROKEN = node(
    "stg_orders",
    "model",
    "error",
    'model stg_orders: models/staging/stg_orders.sql:14: Binder Error: column "x" not found\n\nLINE 14:  x\n          ^',
    source_path="models/staging/stg_orders.sql",
)
FAILED = node(
    "no_early_users",
    "test",
    "fail",
    "Got 3 results, configured to fail if != 0",
    failures=3,
    source_path="tests/no_early_users.sql",
    failing_rows=(("user_id", "note"), ((1, "a|b"), (2, "two\nlines"))),
)
WARNED = node("unique_x", "test", "warn", "Got 1 result, configured to warn if != 0", source_path="models/_x.yml")


def report(*nodes: NodeResult, error: str | None = None) -> RunReport:
    load = LoadReport((TableLoad("raw_users", 200, 0.1),), "replace", 0.25, 0.5, 0.125)
    dbt = DbtReport("build", not any(n.failed for n in nodes), nodes, seconds=3.5, parse_seconds=1.25)
    return RunReport("abc123def456", "sbdk dev", load=load, dbt=dbt, seconds=4.5, error=error)


def test_the_location_of_a_failure_is_its_file_and_the_line_the_error_names() -> None:
    dbt = PurePosixPath("dbt")
    assert github.node_location(BROKEN, dbt) == (
        "dbt/models/staging/stg_orders.sql",
        14,
        'Binder Error: column "x" not found\n\nLINE 14:  x\n          ^',
    )
    assert github.node_location(FAILED, dbt) == ("dbt/tests/no_early_users.sql", 1, FAILED.message)
    # A line of the compiled SQL is not a line of the file: the message keeps it.
    compiled = node(
        "m", "model", "error", "model m: target/compiled/demo/models/m.sql:3: boom", source_path="models/m.sql"
    )
    assert github.node_location(compiled, dbt) == ("dbt/models/m.sql", 1, compiled.message)
    assert github.node_location(node("m", "model", "error", "boom"), dbt) == (None, 1, "boom")


def test_annotations_of_failed_and_warned_nodes_and_of_the_runs_error() -> None:
    passed = node("stg_users", "model", "success")
    lines = github.annotate(report(passed, BROKEN, FAILED, WARNED, error="disk gone"), PurePosixPath("project/dbt"))

    assert lines == [
        "::error file=project/dbt/models/staging/stg_orders.sql,line=14,title=model stg_orders error::"
        'Binder Error: column "x" not found%0A%0ALINE 14:  x%0A          ^',
        "::error file=project/dbt/tests/no_early_users.sql,line=1,title=test no_early_users fail::"
        "Got 3 results, configured to fail if != 0",
        "::warning file=project/dbt/models/_x.yml,line=1,title=test unique_x warn::"
        "Got 1 result, configured to warn if != 0",
        "::error title=sbdk run failed::disk gone",
    ]


def test_a_run_that_could_not_start_is_one_annotation() -> None:
    assert github.error_annotation("The raw tables do not exist yet.", "Run `sbdk dev`.") == (
        "::error title=sbdk dev failed::The raw tables do not exist yet.%0ARun `sbdk dev`."
    )


def test_the_summary_lists_stages_counts_and_failures() -> None:
    skipped = node("user_metrics", "model", "skipped")
    passed = node("unique_users", "test", "pass")

    markdown = github.summary(report(BROKEN, skipped, passed, FAILED, WARNED), PurePosixPath("dbt"))

    assert markdown == (
        "## sbdk dev: failed\n\nRun `abc123def456`.\n\n"
        "| stage | seconds |\n|---|---:|\n"
        "| generate | 0.250 |\n| load | 0.625 |\n| dbt_parse | 1.250 |\n| dbt_build | 2.250 |\n"
        "| **total** | **4.500** |\n\n"
        "| | passed | failed | skipped |\n|---|---:|---:|---:|\n"
        "| models | 0 | 1 | 1 |\n| tests | 1 | 1 | 0 |\n\n"
        "1 test warned.\n\n"
        "### Failures\n\n"
        "**model `stg_orders`** error in `dbt/models/staging/stg_orders.sql:14`\n\n"
        '```text\nBinder Error: column "x" not found\n\nLINE 14:  x\n          ^\n```\n\n'
        "**test `no_early_users`** fail in `dbt/tests/no_early_users.sql:1`\n\n"
        "```text\nGot 3 results, configured to fail if != 0\n```\n\n"
        "First 2 of 3 failing rows:\n\n"
        "| user_id | note |\n|---|---|\n| 1 | a\\|b |\n| 2 | two lines |\n"
    )


def test_a_summary_without_dbt_or_failures_is_the_stages_only() -> None:
    run = RunReport("r1", "sbdk dev", seconds=0.5)

    assert github.summary(run, PurePosixPath("dbt")) == (
        "## sbdk dev: succeeded\n\nRun `r1`.\n\n| stage | seconds |\n|---|---:|\n| **total** | **0.500** |\n"
    )


def test_a_message_holding_backticks_keeps_its_fence() -> None:
    text = "see ```sql\nselect 1\n```"
    assert github.error_summary(text) == f"## sbdk dev: failed\n\n````text\n{text}\n````\n"


def test_the_dbt_folder_is_named_from_the_repository_root_when_the_project_is_inside_it(tmp_path: Path) -> None:
    project = tmp_path / "repo" / "analytics"
    dbt = project / "dbt"
    assert github.dbt_folder(dbt, project, str(tmp_path / "repo")) == PurePosixPath("analytics/dbt")
    assert github.dbt_folder(dbt, project, None) == PurePosixPath("dbt")
    assert github.dbt_folder(dbt, project, str(tmp_path / "elsewhere")) == PurePosixPath("dbt")


# -- --log-format github: real runs


def test_github_format_annotates_a_run_that_cannot_start(project: Path, cli, github_env: Path) -> None:
    result = cli("--log-format", "github", "dev", "--dbt-only", cwd=project)

    assert result.exit_code == 5
    database = project / "data" / "dev.duckdb"
    hint = "Run `sbdk dev` (or `sbdk dev --pipelines-only`) first to generate and load them."
    assert f"::error title=sbdk dev failed::The raw tables do not exist yet in {database}.%0A{hint}\n" in result.stdout
    assert github_env.read_text() == (
        f"## sbdk dev: failed\n\n```text\nThe raw tables do not exist yet in {database}.\n```\n\n{hint}\n\n"
    )


@pytest.mark.slow
def test_github_format_annotates_failing_models_and_tests(project_copy: Path, cli, github_env: Path) -> None:
    model = project_copy / "dbt" / "models" / "staging" / "stg_orders.sql"
    text = model.read_text().replace(
        "lower(trim(payment_method)) as payment_method",
        "lower(trim(payment_method)) as payment_method,\n" + BROKEN_COLUMN,
    )
    model.write_text(text)
    line = text.splitlines().index(BROKEN_COLUMN) + 1
    (project_copy / "dbt" / "tests" / "no_early_users.sql").write_text(FAILING_TEST)

    # A full build, so that the failures come in the DAG's order (a build of what changed may run the
    # new test first).
    result = cli("--log-format", "github", "dev", "--dbt-only", "--full", cwd=project_copy)

    assert result.exit_code == 1
    (entry,) = history.last(project_copy / ".sbdk", 1)
    broken, failed = entry["dbt"]["failures"]
    location = f"model stg_orders: models/staging/stg_orders.sql:{line}: "
    assert broken["message"].startswith(location + 'Binder Error: Referenced column "no_such_column" not found')
    message = broken["message"].removeprefix(location)
    assert "%" not in message and "\r" not in message
    annotations = [text for text in result.stdout.splitlines() if text.startswith("::")]
    assert annotations == [
        f"::error file=dbt/models/staging/stg_orders.sql,line={line},title=model stg_orders error::"
        + message.replace("\n", "%0A"),
        "::error file=dbt/tests/no_early_users.sql,line=1,title=test no_early_users fail::"
        "Got 3 results, configured to fail if != 0",
    ]
    assert failed["message"] == "Got 3 results, configured to fail if != 0"

    dbt = entry["dbt"]
    stages = "".join(f"| {stage} | {seconds:.3f} |\n" for stage, seconds in entry["stages"].items())
    assert github_env.read_text() == (
        f"## sbdk dev: failed\n\nRun `{entry['run_id']}`.\n\n| stage | seconds |\n|---|---:|\n{stages}"
        f"| **total** | **{entry['seconds']:.3f}** |\n\n"
        "| | passed | failed | skipped |\n|---|---:|---:|---:|\n"
        f"| models | {dbt['models_passed']} | 1 | {dbt['models_skipped']} |\n"
        f"| tests | {dbt['tests_passed']} | 1 | {dbt['tests_skipped']} |\n\n"
        "### Failures\n\n"
        f"**model `stg_orders`** error in `dbt/models/staging/stg_orders.sql:{line}`\n\n"
        f"```text\n{message}\n```\n\n"
        "**test `no_early_users`** fail in `dbt/tests/no_early_users.sql:1`\n\n"
        "```text\nGot 3 results, configured to fail if != 0\n```\n\n"
        "First 3 of 3 failing rows:\n\n| user_id |\n|---|\n| 1 |\n| 2 |\n| 3 |\n\n"
    )
    # The run's log file stays text.
    (log,) = (project_copy / "logs").glob("*.log")
    assert re.match(r"\d{4}-\d\d-\d\dT\S+Z INFO +run=", log.read_text())
