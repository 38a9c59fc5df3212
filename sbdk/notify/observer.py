"""`NotifyObserver`: the run observer that sends notifications (built by sbdk.run.observers when
`notify` is configured, for every trigger: `sbdk dev`, `sbdk start`, webhook runs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sbdk.notify.events import Event, Message, run_events, run_message, schema_message
from sbdk.notify.schema import column_changes, read_columns
from sbdk.notify.send import MissingVariable, Sending, secret_values, secrets_wanted, start, target_name
from sbdk.notify.state import read_state, write_state
from sbdk.run.observers import RunObserver
from sbdk.run.reporters import ForwardingReporter, Reporter
from sbdk.run.results import RunStatus

if TYPE_CHECKING:
    from sbdk.run.context import RunContext
    from sbdk.run.results import LoadReport, RunReport
    from sbdk.settings import Settings

# How long the end of a run waits for its messages. A process that exits right after its run (the
# CLI, a webhook run's worker) kills daemon threads: a message not sent by then is lost, so it gets
# this much of a chance, and a target slower than that is a warning in the run's log. The watcher
# and the server live on, and the message goes on trying in the background (send.SEND_SECONDS).
FINISH_WAIT_SECONDS = 1.0


class NotifyObserver(RunObserver):
    """Announces a run's outcome (and a changed raw schema, right after the load) to the targets
    that ask for it, without changing the run: messages go out in daemon threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stage: str | None = None  # the stage the run is in: where a failed run stopped
        self._sendings: list[Sending] = []
        self._problems: list[str] = []
        self._variables: dict[str, str] | None = None

    def wrap(self, reporter: Reporter) -> Reporter:
        return _StageSeen(reporter, self)

    def loaded(self, run: RunContext, load: LoadReport) -> None:
        """Compare the live raw tables' columns with the last load's, before dbt reads them."""
        state_dir = self.settings.paths.state_dir
        state = read_state(state_dir)
        columns = read_columns(run.store)
        before = state.columns.get(self.settings.target)
        state.columns[self.settings.target] = columns
        write_state(state_dir, state)
        changes = column_changes(before, columns) if before is not None else ()
        if changes:
            message = schema_message(
                self.settings.project,
                run.run_id,
                str(run.plan.trigger),
                changes,
                dbt_next=run.plan.dbt,
                log=self._log(run.run_id),
            )
            self._send((Event.SCHEMA_CHANGED,), lambda _event: message)

    def finished(self, report: RunReport, reporter: Reporter) -> None:
        """Announce the outcome, then give the run's messages up to FINISH_WAIT_SECONDS; each
        target that failed or did not answer by then is a warning in the run's log."""
        if report.status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
            self._announce(report)
        for problem in self._settle(FINISH_WAIT_SECONDS):
            reporter.warn(f"Notification: {problem}")

    def _announce(self, report: RunReport) -> None:
        state_dir = self.settings.paths.state_dir
        state = read_state(state_dir)
        before = state.outcome
        events, state.outcome = run_events(before, report)
        try:
            write_state(state_dir, state)
        except OSError as exc:  # a read-only project: the messages still go, the next run may repeat one
            self._problems.append(f"could not save {exc.filename or state_dir}: {exc.strerror or exc}")
        log = self._log(report.run_id)

        def message(event: Event) -> Message:
            return run_message(
                self.settings.project, report, event, stage=self.stage, failed_runs=before.failed_runs, log=log
            )

        self._send(events, message)

    def _send(self, events: tuple[Event, ...], message: Callable[[Event], Message]) -> None:
        """Each target gets the first of `events` it asks for, if any."""
        built: dict[Event, Message] = {}
        for target in self.settings.notify:
            event = next((e for e in events if e.value in target.events), None)
            if event is None:
                continue
            if event not in built:
                built[event] = message(event)
            try:
                self._sendings.append(start(target, built[event], self._secrets()))
            except MissingVariable as exc:
                self._problems.append(f"{event.headline} not sent to {target_name(target.url)}: {exc}")

    def _secrets(self) -> dict[str, str]:
        if self._variables is None:
            wanted = secrets_wanted(self.settings.notify)
            self._variables = secret_values(self.settings) if wanted else {}
        return self._variables

    def _settle(self, seconds: float) -> list[str]:
        """Wait for the messages under way (`seconds` in all); what failed or is still under way."""
        deadline = time.monotonic() + seconds
        problems, self._problems = self._problems, []
        for sending in self._sendings:
            delivery = sending.wait(deadline - time.monotonic())
            if delivery is None:
                waited = time.monotonic() - sending.started
                problems.append(f"{sending.name} did not answer within {waited:.1f} s (still trying in the background)")
            elif not delivery.ok:
                problems.append(f"{delivery.target} failed: {delivery.detail}")
        self._sendings = []
        return problems

    def _log(self, run_id: str) -> Path | None:
        from sbdk.run.runlog import find_log

        return find_log(self.settings, run_id)


class _StageSeen(ForwardingReporter):
    """Forwards every call to `inner`, noting the stage the run is in."""

    def __init__(self, inner: Reporter, observer: NotifyObserver) -> None:
        super().__init__(inner)
        self.observer = observer

    def stage(self, name: str, detail: str = "") -> None:
        self.observer.stage = name
        super().stage(name, detail)
