"""Process-wide settings for sbdk's own processes: the CLI and the webhook server's run worker.

Never applied on import: a program that imports sbdk as a library keeps its own settings.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn

# Python's default (700, 10, 10) makes the collector run ~750 times while dbt and dlt import and
# build, about 0.9 s of a 1x `sbdk dev` on 2 cores; with 10,000 it is ~60 times and 0.3 s, and the
# process holds about as many objects at the end (measured with gc.callbacks, see bench_dev.py).
GC_THRESHOLD = (10_000, 10, 10)

# Modules whose import makes the interpreter's own shutdown slow.
_HEAVY_MODULES = ("dbt", "dlt")


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLD)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """`values` set in os.environ for the duration of the block, then put back as they were.

    dlt and dbt read their configuration from the environment; setting it only around their calls
    keeps one project's settings (its dlt folder, its database path) from leaking into the next run
    in a long-lived process, or into a program that imports sbdk as a library.
    """
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def collector_paused(pause: bool = True) -> Iterator[None]:
    """When `pause` (a single-run process), Python's cyclic garbage collector is off while dbt imports and builds.

    dbt's import and a build allocate a large graph of objects that mostly live on: at 1x the
    collector ran ~50 times during a build, about 0.5 s of a 7 s `sbdk dev --dbt-only`, and freed
    almost nothing (peak RSS within 20 MB with it off). Afterwards everything dbt allocated moves
    straight to the oldest generation (freeze, then unfreeze); left in the young one, the next
    collection would walk all of it (~0.2 s). A build leaves ~75k objects of garbage there (set by
    the size of the dbt project, not of the data) that only a full collection frees: fine for a
    process about to exit. A long-lived one (`sbdk start`) uses `IdleCollector` instead, which pauses
    the collector for a whole rebuild and collects once the rebuild is over.
    """
    if not pause:
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()


class IdleCollector:
    """Python's cyclic garbage collector in a long-lived process that works in bursts (`sbdk start`):
    off from `pause()` until `collect()`, which runs one full collection when the process is idle.

    A warm rebuild of one mart at 1x allocates enough for the collector to run ~150 times at Python's
    default thresholds (0.12 s of a 0.58 s rebuild) or ~9 times at sbdk's (0.03 s, and every few
    rebuilds a full collection of the whole dbt heap: 0.15-0.25 s more). It leaves ~18,000 objects in
    cycles that only a full collection frees; run between rebuilds, that takes ~0.1 s that nobody waits
    for. A process where nothing is paused keeps its collector as it is.
    """

    def __init__(self) -> None:
        # Whether the collector was on before the first pause() since the last collect(); None: no pause.
        self._was_enabled: bool | None = None
        self.owed = 0  # pause() calls since the last collect() or resume()

    def pause(self) -> None:
        """The collector off until collect(); the garbage made meanwhile waits for it."""
        if self._was_enabled is None:
            self._was_enabled = gc.isenabled()
        gc.disable()
        self.owed += 1

    def collect(self) -> None:
        """After a pause(): one full collection, then the collector back as it was before the pause."""
        if self._was_enabled is not None:
            gc.collect()
            self.resume()

    def resume(self) -> None:
        """The collector back as it was before the pause, without a collection (the work is over)."""
        if self._was_enabled:
            gc.enable()
        self._was_enabled = None
        self.owed = 0


def exit_now(code: Any) -> NoReturn:
    """Exit with `code`, skipping the interpreter's teardown once dbt or dlt has been imported.

    Freeing the hundreds of thousands of objects dbt and dlt create takes CPython about 0.8 s on a
    2-core laptop, longer than a `--select` rebuild. What must happen at exit still does: thread
    pools are stopped and non-daemon threads waited for, atexit handlers run (logging's flush,
    multiprocessing's clean-up), the standard streams are flushed, and sbdk holds no file or
    database open by then (every connection is a context manager).
    """
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): print it, as Python does
        print(code, file=sys.stderr)
        code = 1
    if not any(name in sys.modules for name in _HEAVY_MODULES):
        raise SystemExit(code)
    import atexit
    import threading

    # What Python's own shutdown does, in its order: stop thread pools and wait for non-daemon
    # threads (threading._shutdown), run atexit handlers, flush the standard streams.
    threading._shutdown()  # type: ignore[attr-defined]  # private since 3.x, stable through 3.13
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # output piped into `head` and the like: nothing left to say
            pass
        except (OSError, ValueError):  # a full disk: the output is cut short, say so in the code
            code = code or 120  # what Python itself exits with when its final flush fails
    os._exit(code & 0xFF)
