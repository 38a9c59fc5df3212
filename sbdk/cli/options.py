"""Options shared by several commands, defined once."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sbdk.settings import Settings

VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show detailed logs, dbt's own output and tracebacks.")
]
ConfigFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--config-file",
        "-c",
        help="Use this sbdk_config.json instead of the one found from the current folder.",
        dir_okay=True,
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print errors only (for CI: the exit code tells the outcome).")
]


class LogFormat(str, Enum):
    text = "text"
    json = "json"
    # A text log file, plus GitHub Actions annotations for failing models and tests and a job summary
    # in $GITHUB_STEP_SUMMARY (sbdk/cli/github.py).
    github = "github"


LogFormatOpt = Annotated[
    LogFormat,
    typer.Option(
        "--log-format",
        help="Format of the run's log file in logs/: text, or json (one object per line); github: a text "
        "log, plus `sbdk dev` failures as GitHub Actions annotations and a job summary.",
        case_sensitive=False,
    ),
]
PipelinesOnlyOpt = Annotated[
    bool, typer.Option("--pipelines-only", help="Only generate and load the raw tables (no dbt).")
]
DbtOnlyOpt = Annotated[bool, typer.Option("--dbt-only", help="Only run dbt on the data already loaded.")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="If a run holds the project, wait for it to finish.")]


@dataclass
class CliState:
    """What the global options set, read by every command and by the error handler."""

    verbose: bool = False
    config_file: Path | None = None
    quiet: bool = False
    log_format: str = "text"


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def load(ctx: typer.Context, config_file: Path | None = None, verbose: bool = False) -> Settings:
    """Merge command-level and global options, load the project's settings, show their warnings."""
    from sbdk.cli.render import warn
    from sbdk.settings import load_settings

    st = state(ctx)
    st.verbose = st.verbose or verbose
    settings = load_settings(config_file or st.config_file)
    for message in settings.warnings:
        warn(message)
    return settings
