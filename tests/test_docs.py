"""The READMEs, run as written (issue #15, item 6).

Every fenced block of README.md and of the README that `sbdk init` gives a project is executed for
real, in order, in a temporary project at test volumes, the way a new user copies them:
```bash lines run with bash from the folder the previous command ended in, and must exit 0 (or the
code a `# exit N` comment on the line names); ```python pipeline examples are saved into pipelines/
and run with `sbdk dev` (and `sbdk dev --incremental` when they set CURSOR); ```json config fragments
are merged into sbdk_config.json and must validate. The commands not run are listed in SKIPPED, each
with its reason. A block that cannot run as written is a docs bug: fix the doc, not this test.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sbdk.errors import ConfigError
from sbdk.settings import load_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PROJECT_TEMPLATES = REPO / "templates" / "project"

# Commands in the docs that are not run here, by how they start, and why. Everything else runs.
SKIPPED = {
    "pip install": "installs packages: this test runs in the environment they were installed into",
    "python -m pytest": "runs this test suite, which contains this test",
    "python benchmarks/": "timings at up to 100x the default volume (minutes); DESIGN.md §7 keeps them out of tests",
    "sbdk webhooks": "serves until stopped; tests/test_webhooks.py runs the server",
    "sbdk dev --target prod": "needs a PostgreSQL server; tests/test_postgres.py runs against one when there is",
    "docker ": "needs a Docker daemon; tests/test_ci_files.py lints the Dockerfile with hadolint",
    "sbdk dev --target lake": "starts Spark (a JVM, about a minute with dbt-spark); tests/test_spark.py runs it",
    "sbdk query --target lake": "starts Spark; tests/test_spark.py queries the lake",
    "sbdk doctor --target lake": "starts Spark; tests/test_spark.py covers its checks",
    # The README's own dbt project example names the user's project (../analytics), which a test has not.
    "sbdk init sandbox --from-dbt": "needs the user's dbt project; tests/test_synth_projects.py runs it on three",
    # (the `sbdk dev` after it then runs in the quickstart's project, where everything is up to date)
    "cd sandbox": "the sandbox of the line before; tests/test_synth_projects.py runs `sbdk dev` in one",
    "sbdk sources": "the sandbox's; tests/test_synth_projects.py and test_synth_bad_input.py run it",
}
# The one command run differently from how the README writes it: the quickstart at test volumes.
QUICKSTART = "sbdk init demo --no-input"
SMALL_INIT = f"{QUICKSTART} --users 200 --events 1000"

_FENCE = re.compile(r"^```(\w*)\s*$")
_EXPECTED_EXIT = re.compile(r"#.*\bexit (\d+)\b")
_CREATED_BY = re.compile(r"created by the first `([^`]+)`")


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence
    lang: str
    text: str

    def __str__(self) -> str:
        return f"{self.doc.name}:{self.line} ({self.lang or 'plain'})"


def blocks(doc: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, in order."""
    found: list[Block] = []
    lang: str | None = None
    start, body = 0, list[str]()
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        match = _FENCE.match(line)
        if lang is None and match:
            lang, start, body = match.group(1), number, []
        elif lang is not None and line.strip() == "```":
            found.append(Block(doc, start, lang, "\n".join(body) + "\n"))
            lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"{doc.name}:{start}: a code block is never closed"
    return found


def commands(block: Block) -> list[str]:
    """The command lines of a bash block (continuation lines joined, comment lines dropped)."""
    lines = block.text.replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def skip_reason(command: str) -> str | None:
    return next((reason for prefix, reason in SKIPPED.items() if command.startswith(prefix)), None)


def tree(block: Block) -> dict[str, str | None]:
    """A layout block (`demo/` then one indented entry a line): entry -> the command that creates it
    when the comment says `created by the first ...`, else None (created by `sbdk init`)."""
    entries: dict[str, str | None] = {}
    for line in block.text.splitlines()[1:]:
        entry, _, comment = line.strip().partition("#")
        created = _CREATED_BY.search(comment)
        entries[entry.strip()] = created.group(1) if created else None
    return entries


def project_layout() -> Block:
    [layout] = [block for block in blocks(README) if block.lang == "" and block.text.startswith("demo/\n")]
    return layout


def project_tree() -> dict[str, str | None]:
    return tree(project_layout())


def project_comment(entry: str) -> str:
    """The comment beside `entry` in the README's project layout."""
    [line] = [line for line in project_layout().text.splitlines() if line.strip().startswith(entry + " ")]
    return line.partition("#")[2]


class Terminal:
    """A user's shell session: each command runs with bash from the folder the previous one left."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.pwd_file = cwd / ".docs-pwd"
        # `sbdk` and `python` are this environment's, as after `pip install -e .` and activating it.
        self.env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        self.skipped: list[tuple[str, str]] = []

    def run(self, command: str, where: Block | str) -> str:
        expected = _EXPECTED_EXIT.search(command)
        script = f"{command}\nstatus=$?\npwd > {shlex.quote(str(self.pwd_file))}\nexit $status\n"
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
        )
        code = int(expected.group(1)) if expected else 0
        assert result.returncode == code, (
            f"{where}: `{command}` exited {result.returncode}, not {code}\n{result.stdout}\n{result.stderr}"
        )
        self.cwd = Path(self.pwd_file.read_text().strip())
        return result.stdout + result.stderr

    def bash(self, block: Block) -> None:
        for command in commands(block):
            # A skipped part of an `a && b` line is left out; the rest of the line still runs.
            parts = [part.strip() for part in command.split(" && ")]
            self.skipped += [(part, reason) for part in parts if (reason := skip_reason(part))]
            kept = " && ".join(part for part in parts if skip_reason(part) is None)
            if kept:
                self.run(kept.replace(QUICKSTART, SMALL_INIT), block)

    def python(self, block: Block, project: Path) -> None:
        """A pipeline example: saved as pipelines/<name>.py, it must load, and append when it sets CURSOR."""
        assert "def generate(ctx)" in block.text, f"{block}: a Python block that is not a pipeline; teach this test"
        table = re.search(r'^TABLE = "(\w+)"', block.text, re.M)
        assert table, f"{block}: a pipeline example names its TABLE"
        name = table.group(1).removeprefix("raw_")
        (project / "pipelines" / f"{name}.py").write_text(block.text, encoding="utf-8")
        self.run("sbdk dev", block)
        loaded = count_rows(self, project, table.group(1))
        assert loaded > 0, f"{block}: sbdk dev loaded no rows into {table.group(1)}"
        if re.search(r"^CURSOR = ", block.text, re.M):
            self.run("sbdk dev --incremental", block)
            assert count_rows(self, project, table.group(1)) > loaded, f"{block}: --incremental appended nothing"

    def json(self, block: Block, project: Path) -> None:
        """A config fragment (`"key": value`): merged into sbdk_config.json, which must still validate."""
        fragment = json.loads("{" + block.text + "}")
        config = project / "sbdk_config.json"
        merged = json.loads(config.read_text())
        for key, value in fragment.items():
            # A second target is added beside the first, as a user adds one.
            both = key == "targets" and isinstance(merged.get(key), dict)
            merged[key] = {**merged[key], **value} if both else value
        config.write_text(json.dumps(merged, indent=2), encoding="utf-8")
        load_settings(config)


def count_rows(terminal: Terminal, project: Path, table: str) -> int:
    output = terminal.run(f'sbdk query "select count(*) as n from raw.{table}" --format json', f"rows of {table}")
    return json.loads(output)[0]["n"]


def run_doc(doc: Path, terminal: Terminal, project: Path) -> None:
    for block in blocks(doc):
        if block.lang == "bash":
            terminal.bash(block)
        elif block.lang == "python":
            terminal.python(block, project)
        elif block.lang == "json":
            terminal.json(block, project)
        else:
            assert block.lang == "", f"{block}: no way to run a {block.lang!r} block; teach this test"


def no_dlt_warnings(project: Path) -> None:
    """The issue's symptom: a pipeline example whose columns disagree with its hints makes dlt warn."""
    for log in sorted((project / "logs").glob("*.log")):
        assert "dlt warning" not in log.read_text(encoding="utf-8"), f"{log.name} holds a dlt warning"


def test_every_block_of_the_readme_runs(tmp_path: Path) -> None:
    terminal = Terminal(tmp_path)
    quickstart = [c for b in blocks(README) if b.lang == "bash" for c in commands(b) if QUICKSTART in c]
    assert len(quickstart) == 1, "the README's quickstart (sbdk init demo --no-input) moved: update QUICKSTART"
    project = tmp_path / "demo"
    run_doc(README, terminal, project)
    # What the README promises about the project's layout holds once all its commands have run.
    promised = project_tree()
    for entry in promised:
        assert (project / entry).exists(), f"README promises {entry} in a project"
    top_level = {path.name + ("/" if path.is_dir() else "") for path in project.iterdir()}
    listed = {entry.split("/")[0] + ("/" if "/" in entry else "") for entry in promised}
    assert top_level == listed, "the README's project layout and a project that ran its commands differ"
    no_dlt_warnings(project)
    print("\n".join(f"skipped: {command}  ({reason})" for command, reason in terminal.skipped))


def test_every_block_of_a_projects_readme_runs(tmp_path: Path) -> None:
    terminal = Terminal(tmp_path)
    terminal.run(SMALL_INIT, "the project under test")
    project = tmp_path / "demo"
    terminal.cwd = project
    run_doc(project / "README.md", terminal, project)
    assert not terminal.skipped


def test_init_creates_what_the_readme_layout_says_and_no_more(tmp_path: Path) -> None:
    terminal = Terminal(tmp_path)
    terminal.run(SMALL_INIT, "the project under test")
    project = tmp_path / "demo"
    promised = project_tree()
    for entry, creator in promised.items():
        if creator is None:
            assert (project / entry).exists(), f"README says `sbdk init` creates {entry}"
        else:
            assert not (project / entry).exists(), f"README says {creator} creates {entry}, but init did"
    by_init = {e.split("/")[0] + ("/" if "/" in e else "") for e, creator in promised.items() if creator is None}
    # init makes data/ empty, for the DuckDB file the first run writes.
    top_level = {path.name + ("/" if path.is_dir() else "") for path in project.iterdir()}
    assert top_level == by_init | {"data/"}
    # "pipelines/  # users.py, events.py, orders.py: ..." names the pipelines init writes.
    listed = re.findall(r"\w+\.py", project_comment("pipelines/"))
    assert sorted(listed) == sorted(path.name for path in (project / "pipelines").glob("*.py"))


def docstring_examples(path: Path) -> list[str]:
    """The indented code examples inside a pipeline's module docstring."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=True) or ""
    examples: list[list[str]] = [[]]
    for line in docstring.splitlines():
        if line.startswith("    ") or (examples[-1] and not line.strip()):
            examples[-1].append(line[4:])
        elif examples[-1]:
            examples.append([])
    return ["\n".join(lines).strip() + "\n" for lines in examples if lines]


EXAMPLES = [
    pytest.param(path.name, example, id=f"{path.name}-{number}")
    for path in sorted((PROJECT_TEMPLATES / "pipelines").glob("*.py"))
    for number, example in enumerate(docstring_examples(path), 1)
]


@pytest.mark.parametrize(("pipeline", "example"), EXAMPLES)
def test_template_pipeline_docstring_examples_run(tmp_path: Path, pipeline: str, example: str) -> None:
    terminal = Terminal(tmp_path)
    terminal.run(SMALL_INIT, "the project under test")
    project = tmp_path / "demo"
    terminal.cwd = project
    path = project / "pipelines" / pipeline
    # The example replaces generate: a later definition in the same file wins.
    path.write_text(path.read_text(encoding="utf-8") + "\n\n" + example, encoding="utf-8")
    terminal.run("sbdk dev --pipelines-only", f"{pipeline}'s docstring example")
    no_dlt_warnings(project)


def test_every_skip_is_still_needed_and_names_real_files() -> None:
    docs = (README, PROJECT_TEMPLATES / "README.md")
    parts = [
        part.strip()
        for doc in docs
        for block in blocks(doc)
        if block.lang == "bash"
        for command in commands(block)
        for part in command.split(" && ")
    ]
    for prefix in SKIPPED:
        assert any(part.startswith(prefix) for part in parts), f"SKIPPED lists {prefix!r}, which no doc has any more"
    scripts = [word for part in parts if skip_reason(part) for word in shlex.split(part, comments=True)]
    for script in (word for word in scripts if word.endswith(".py")):
        assert (REPO / script).is_file(), f"the README runs {script}, which does not exist"


def test_config_hints_point_at_what_a_user_has(tmp_path: Path) -> None:
    # A project has no sbdk_config.json.example; the README's Configuration section and `sbdk doctor`
    # are what a user has.
    stale = [
        str(path.relative_to(REPO))
        for path in (REPO / "sbdk").rglob("*.py")
        if "sbdk_config.json.example" in path.read_text(encoding="utf-8")
    ]
    assert not stale, f"hints name sbdk_config.json.example, which projects do not have: {stale}"
    assert "\n## Configuration\n" in README.read_text(encoding="utf-8")
    config = tmp_path / "sbdk_config.json"
    for broken in ("{", "[]", '{"seed": "many"}'):
        config.write_text(broken, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_settings(config)
        assert "Configuration section of sbdk's README" in (caught.value.hint or ""), broken
