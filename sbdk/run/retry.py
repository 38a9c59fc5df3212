"""Transient failures, tried again with backoff, within a bound (issue #19).

A PostgreSQL server that refuses or drops a connection for a moment, a DuckDB file a reader holds for a
moment, a `dbt deps` download cut short: each is tried again, `retries.attempts` times in all and never
past `retries.max_seconds`, waiting 1 s, 2 s, 4 s ... in between. Every retry is a reporter warning
("<what> failed; retrying in 1.0 s (2 of 3): <reason>"), so it is shown and in the run's log. Only what
the caller's `is_transient` recognises is retried: bad SQL, bad config, a failing test or a wrong
password fail at once, whatever the settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sbdk.errors import SbdkError, causes
from sbdk.run.reporters import NULL_REPORTER, Reporter
from sbdk.settings import Retries

if TYPE_CHECKING:
    from tenacity import RetryCallState

T = TypeVar("T")
Predicate = Callable[[BaseException], bool]

FIRST_WAIT = 1.0  # seconds before the second try, doubled before each next one
LONGEST_WAIT = 10.0  # waits stop doubling here: `max_seconds` bounds a step, not one long sleep
NO_RETRIES = Retries(attempts=1, max_seconds=0)


def never(exc: BaseException) -> bool:
    """The predicate of a store that knows no transient failure: nothing is retried."""
    return False


def reason(exc: BaseException) -> str:
    """One line on why `exc` failed: the first sbdk message in its chain, else its innermost cause."""
    chain = list(causes(exc))
    first = next((c for c in chain if isinstance(c, SbdkError)), None)
    text = first.message if first is not None else str(chain[-1])
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(chain[-1]).__name__


def retrying(
    retries: Retries,
    reporter: Reporter,
    is_transient: Predicate,
    call: Callable[[], T],
    *,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, called again while it raises what `is_transient` accepts, `retries.attempts` times in
    all; no wait may end past `retries.max_seconds` from the first call. Each retry is a warning to
    `reporter`; the last error is raised as it is, an sbdk error saying how often it was tried."""
    if retries.attempts <= 1:
        return call()
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_before_delay, wait_exponential

    tries = 0
    started = time.monotonic()

    def attempt() -> T:
        nonlocal tries
        tries += 1
        return call()

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        why = reason(error) if error is not None else "unknown"
        reporter.warn(
            f"{what} failed; retrying in {state.upcoming_sleep:.1f} s "
            f"({state.attempt_number + 1} of {retries.attempts}): {why}"
        )

    controller = Retrying(
        stop=stop_after_attempt(retries.attempts) | stop_before_delay(retries.max_seconds),
        wait=wait_exponential(multiplier=FIRST_WAIT, max=LONGEST_WAIT),
        # A Ctrl-C (any BaseException that is no Exception) ends the run, whatever the predicate says.
        retry=retry_if_exception(lambda exc: isinstance(exc, Exception) and is_transient(exc)),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    try:
        return controller(attempt)
    except BaseException as exc:
        if tries > 1:
            tried = f"tried {tries} times in {time.monotonic() - started:.1f} s"
            if isinstance(exc, SbdkError):
                exc.message = f"{exc.message} ({tried})"
                exc.args = (exc.message,)
            else:  # the caller wraps it in its own error: the log still says how often
                reporter.warn(f"{what} failed ({tried}): {reason(exc)}")
        raise


@dataclass(frozen=True)
class Retry:
    """A run's retry policy: the configured bound, and the reporter every retry is told to."""

    retries: Retries = NO_RETRIES
    reporter: Reporter = NULL_REPORTER

    def call(self, call: Callable[[], T], is_transient: Predicate, *, what: str) -> T:
        return retrying(self.retries, self.reporter, is_transient, call, what=what)


NO_RETRY = Retry()


def transient_for(store: object) -> Predicate:
    """The store's test of a transient failure (for an object that has none, nothing is)."""
    test = getattr(store, "is_transient", None)
    return test if callable(test) else never
