"""`--log-format github`: a run as GitHub Actions sees it.

Pure functions from a `RunReport` to the workflow commands sbdk prints (`::error file=...,line=...,
title=...::message`, which GitHub shows as annotations on the failing model's or test's file) and to
the Markdown of the job summary (appended to the file `$GITHUB_STEP_SUMMARY` names). Escaping follows
GitHub's runner (actions/toolkit, `command.ts`): `%`, `\\r` and `\\n` in the message, and also `:` and
`,` in the properties.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sbdk.run.results import NodeResult, RunReport

# Failures listed in the job summary, each with its message. GitHub shows at most 10 error annotations
# of a step, so the summary lists more; the run log (in the workflow's artifact) has every one.
SUMMARY_FAILURES = 20


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(command: str, message: str, **properties: str | int | None) -> str:
    """`::command key=value,...::message`, escaped; properties that are None are left out."""
    given = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items() if value is not None)
    return f"::{command}{' ' + given if given else ''}::{escape_data(message)}"


def dbt_folder(dbt_project_dir: Path, project_root: Path, workspace: str | None) -> PurePosixPath:
    """The dbt project's folder as the annotations name it: relative to the repository root (GitHub's
    workspace, when the project lies inside it), else to the project's folder."""
    for base in (Path(workspace) if workspace else None, project_root):
        if base is not None and dbt_project_dir.resolve().is_relative_to(base.resolve()):
            return PurePosixPath(dbt_project_dir.resolve().relative_to(base.resolve()).as_posix())
    return PurePosixPath(dbt_project_dir.as_posix())


def node_location(node: NodeResult, dbt_dir: PurePosixPath) -> tuple[str | None, int, str]:
    """(file, line, message) of a failed node: its own file, the line of it the error is on (1 when the
    failure is the file's as a whole: a data test's rows, an error the database did not place), and
    the message without the `model x: models/x.sql:14: ` that the file and line now say."""
    message = (node.message or node.status).strip()
    if node.source_path is None:
        return None, 1, message
    located = re.match(rf"{re.escape(f'{node.resource_type} {node.name}: {node.source_path}')}:(\d+): ", message)
    if located is None:
        return str(dbt_dir / node.source_path), 1, message
    return str(dbt_dir / node.source_path), int(located.group(1)), message[located.end() :].strip()


def annotate(report: RunReport, dbt_dir: PurePosixPath) -> list[str]:
    """An `::error` for each failed model and test (a `::warning` for a test that warned), and one
    for the run's own error."""
    lines = []
    nodes = report.dbt.nodes if report.dbt is not None else ()
    for node in nodes:
        if node.failed or node.status == "warn":
            file, line, message = node_location(node, dbt_dir)
            title = f"{node.resource_type} {node.name} {node.status}"
            level = "error" if node.failed else "warning"
            lines.append(workflow_command(level, message, file=file, line=line if file else None, title=title))
    if report.dbt is not None and report.dbt.error:
        lines.append(workflow_command("error", report.dbt.error, title="dbt could not run"))
    if report.error:
        lines.append(workflow_command("error", report.error, title=f"sbdk run {report.status}"))
    return lines


def error_annotation(message: str, hint: str | None = None) -> str:
    """An `::error` for a run that stopped before it had a report (an SbdkError)."""
    return workflow_command("error", f"{message}\n{hint}" if hint else message, title="sbdk dev failed")


def summary(report: RunReport, dbt_dir: PurePosixPath) -> str:
    """The job summary: seconds per stage, models and tests passed/failed/skipped, then the failures."""
    lines = [f"## sbdk dev: {report.status}", "", f"Run `{report.run_id}`.", ""]
    lines += ["| stage | seconds |", "|---|---:|"]
    lines += [f"| {stage} | {seconds:.3f} |" for stage, seconds in report.stage_seconds().items()]
    lines += [f"| **total** | **{report.seconds:.3f}** |", ""]
    if report.dbt is not None:
        counts = report.dbt.counts()
        lines += ["| | passed | failed | skipped |", "|---|---:|---:|---:|"]
        lines.append(f"| models | {counts.models_passed} | {counts.models_failed} | {counts.models_skipped} |")
        lines += [f"| tests | {counts.tests_passed} | {counts.tests_failed} | {counts.tests_skipped} |", ""]
        if counts.tests_warned:
            lines += [f"{counts.tests_warned} {'test' if counts.tests_warned == 1 else 'tests'} warned.", ""]
    failures = report.dbt.failures if report.dbt is not None else ()
    errors = [error for error in (report.dbt.error if report.dbt else None, report.error) if error]
    if failures or errors:
        lines += ["### Failures", ""]
    for node in failures[:SUMMARY_FAILURES]:
        file, line, message = node_location(node, dbt_dir)
        where = f" in `{file}:{line}`" if file else ""
        lines += [f"**{node.resource_type} `{node.name}`** {node.status}{where}", "", *_fenced(message), ""]
        if node.failing_rows is not None:
            columns, rows = node.failing_rows
            lines += [f"First {len(rows)} of {node.failures or len(rows)} failing rows:", ""]
            lines += [*_rows_table(columns, rows), ""]
    if len(failures) > SUMMARY_FAILURES:
        lines += [f"And {len(failures) - SUMMARY_FAILURES} more: the run log lists every one.", ""]
    for error in errors:
        lines += [*_fenced(error), ""]
    return "\n".join(lines)


def error_summary(message: str, hint: str | None = None) -> str:
    """The job summary of a run that stopped before it had a report."""
    return "\n".join(["## sbdk dev: failed", "", *_fenced(message), "", *([hint, ""] if hint else [])])


def _fenced(text: str) -> list[str]:
    """`text` as a fenced block, its fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", text, fence]


def _rows_table(columns: tuple[str, ...], rows: tuple[tuple[object, ...], ...]) -> list[str]:
    """A test's failing rows as a Markdown table (`|` and line breaks in values escaped)."""

    def cell(value: object) -> str:
        return " ".join(str(value).split()).replace("|", "\\|")

    return [
        "| " + " | ".join(cell(c) for c in columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows),
    ]
