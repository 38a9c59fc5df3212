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
    process about to exit, not for a long-lived one (`sbdk start`), which keeps the collector on.
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
