"""Process-wide settings for sbdk's own processes: the CLI and the webhook server's run worker.

Never applied on import: a program that imports sbdk as a library keeps its own settings.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

# Python's default (700, 10, 10) makes the collector run ~750 times while dbt and dlt import and
# build, about 0.9 s of a 1x `sbdk dev` on 2 cores; with 10,000 it is ~60 times and 0.3 s, and the
# process holds about as many objects at the end (measured with gc.callbacks, see bench_dev.py).
GC_THRESHOLD = (10_000, 10, 10)

# Modules whose import makes the interpreter's own shutdown slow.
_HEAVY_MODULES = ("dbt", "dlt")


_single_run = False


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLD)


def set_single_run(value: bool = True) -> None:
    """Whether this process does at most one run, then exits: true for the CLI (`sbdk start`, the
    one long-lived command that runs dbt in-process, sets it back) and a webhook run's worker."""
    global _single_run
    _single_run = value


@contextmanager
def collector_paused() -> Iterator[None]:
    """In a single-run process, Python's cyclic garbage collector is off while dbt imports and builds.

    dbt's import and a build allocate a large graph of objects that mostly live on: at 1x the
    collector ran ~50 times during a build, about 0.5 s of a 7 s `sbdk dev --dbt-only`, and freed
    almost nothing (peak RSS within 20 MB with it off). Afterwards everything dbt allocated moves
    straight to the oldest generation (freeze, then unfreeze); left in the young one, the next
    collection would walk all of it (~0.2 s). A build leaves ~75k objects of garbage there (set by
    the size of the dbt project, not of the data) that only a full collection frees: fine for a
    process about to exit, not for a long-lived one (`sbdk start`), which keeps the collector on.
    """
    if not _single_run:
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
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # output piped into `head` and the like: nothing left to say
            pass
        except (OSError, ValueError):  # a full disk: the output is cut short, say so in the code
            code = code or 120  # what Python itself exits with when its final flush fails
    os._exit(code & 0xFF)
