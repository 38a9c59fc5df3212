"""What a run announces, and the message each announcement is: pure functions of the run's report.

No flood: a run that fails like the one before it announces nothing (a watcher failing ten saves in a
row sends one "failed", then one "recovered"); the last outcome is kept between runs by
`sbdk.notify.state`. Interrupted, refused and killed runs announce nothing and change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from sbdk.run.results import RunReport, RunStatus

if TYPE_CHECKING:
    from sbdk.notify.schema import ColumnChange

SHOWN = 5  # failed nodes, changed columns: a message names the first few and counts the rest
_LINE = 200  # characters of each message line kept


class Event(str, Enum):
    """What a notification target asks for in its "events" (sbdk.settings.NOTIFY_EVENTS)."""

    FAILED = "failed"
    TESTS_FAILED = "tests_failed"
    RECOVERED = "recovered"
    SCHEMA_CHANGED = "schema_changed"
    SUCCEEDED = "succeeded"

    def __str__(self) -> str:
        return self.value

    @property
    def headline(self) -> str:
        return _HEADLINES[self]


_HEADLINES = {
    Event.FAILED: "run failed",
    Event.TESTS_FAILED: "data tests failed",
    Event.RECOVERED: "recovered",
    Event.SCHEMA_CHANGED: "raw schema changed",
    Event.SUCCEEDED: "run succeeded",
}


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    kind: str  # Apprise's notify type: info, success, warning, failure


@dataclass(frozen=True)
class Outcome:
    """The outcome of the last run that succeeded or failed, as the state file keeps it."""

    last: Event | None = None  # FAILED, TESTS_FAILED or SUCCEEDED; None before the first such run
    failed_runs: int = 0  # failed runs in a row since the last success


def run_events(before: Outcome, report: RunReport) -> tuple[tuple[Event, ...], Outcome]:
    """What a finished run announces (each target gets the first of them it asks for) and the
    outcome to remember. A failure like the last one announces nothing; the first success after
    failures is "recovered" (or "succeeded" for a target that asks only for that)."""
    if report.status is RunStatus.FAILED:
        kind = Event.TESTS_FAILED if only_tests_failed(report) else Event.FAILED
        after = Outcome(kind, before.failed_runs + 1)
        return ((), after) if before.last is kind else ((kind,), after)
    if report.status is RunStatus.SUCCEEDED:
        recovered = before.last in (Event.FAILED, Event.TESTS_FAILED)
        events = (Event.RECOVERED, Event.SUCCEEDED) if recovered else (Event.SUCCEEDED,)
        return events, Outcome(Event.SUCCEEDED)
    return (), before


def only_tests_failed(report: RunReport) -> bool:
    """The run went through and only data tests failed (no error, no model)."""
    dbt = report.dbt
    if report.error is not None or dbt is None or dbt.error is not None or not dbt.failures:
        return False
    return all(node.resource_type == "test" for node in dbt.failures)


def run_message(
    project: str, report: RunReport, event: Event, *, stage: str | None, failed_runs: int, log: Path | None
) -> Message:
    """The message `event` sends about a finished run."""
    status = "failed" if report.status is RunStatus.FAILED else "succeeded"
    lines = [f"Run {report.run_id} ({report.trigger}) {status} after {report.seconds:.1f} s."]
    if event is Event.FAILED:
        lines.append(f"Stage: {stage or 'checks, before any work'}.")
        lines += _listed("Failed", _what_failed(report))
    elif event is Event.TESTS_FAILED and report.dbt is not None:
        counts = report.dbt.counts()
        ran = counts.tests_passed + counts.tests_failed + counts.tests_warned
        failed = [f"{n.name}: {first_line(n.message)}" for n in report.dbt.failures]
        lines += _listed(f"{counts.tests_failed} of {ran} data tests failed", failed)
    elif event is Event.RECOVERED:
        runs = f"{failed_runs} failed run{'s' if failed_runs != 1 else ''}"
        lines.append(f"It succeeded after {runs}." if failed_runs else "It succeeded after a failure.")
    if report.status is RunStatus.SUCCEEDED:
        lines.append(_built(report))
    if log is not None:
        lines.append(f"Log: {log}")
    kind = "failure" if event in (Event.FAILED, Event.TESTS_FAILED) else "success"
    return Message(f"sbdk {project}: {event.headline}", "\n".join(lines), kind)


def schema_message(
    project: str, run_id: str, trigger: str, changes: Sequence[ColumnChange], *, dbt_next: bool, log: Path | None
) -> Message:
    """The message sent when a load changed the columns of raw tables (before dbt runs on them)."""
    then = " dbt runs on them next." if dbt_next else ""
    lines = [f"Run {run_id} ({trigger}) loaded raw tables whose columns changed since the last load.{then}"]
    lines += _listed("Changes", [change.describe() for change in changes])
    if log is not None:
        lines.append(f"Log: {log}")
    return Message(f"sbdk {project}: {Event.SCHEMA_CHANGED.headline}", "\n".join(lines), "warning")


def ping_message(project: str, events: frozenset[str]) -> Message:
    """What `sbdk notify --test` sends."""
    wanted = ", ".join(event.value for event in Event if event.value in events)
    body = f"A test message from `sbdk notify --test`. This target is sent: {wanted}."
    return Message(f"sbdk {project}: test message", body, "info")


def first_line(text: str | None) -> str:
    line = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    return line if len(line) <= _LINE else line[: _LINE - 3] + "..."


def _what_failed(report: RunReport) -> list[str]:
    items = [f"error: {first_line(report.error)}"] if report.error else []
    if report.dbt is not None:
        if report.dbt.error:
            items.append(f"dbt: {first_line(report.dbt.error)}")
        items += [f"{n.resource_type} {n.name} {n.status}: {first_line(n.message)}" for n in report.dbt.failures]
    return items


def _listed(heading: str, items: Sequence[str]) -> list[str]:
    """`heading`, then the first SHOWN items one a line, then how many more."""
    if not items:
        return []
    lines = [f"{heading}:", *(f"- {item}" for item in items[:SHOWN])]
    if len(items) > SHOWN:
        lines.append(f"- and {len(items) - SHOWN} more")
    return lines


def _built(report: RunReport) -> str:
    parts = []
    if report.row_counts:
        parts.append(f"{len(report.row_counts)} raw tables, {sum(report.row_counts.values()):,} rows")
    if report.dbt is not None:
        counts = report.dbt.counts()
        parts.append(f"{counts.models_passed} models built, {counts.tests_passed} tests passed")
    return (", ".join(parts) or "Nothing to build") + "."
