"""A pipeline's batches made ahead in a thread of their own (sbdk.pipelines.load runs every pipeline so)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any


class Prefetched:
    """A pipeline's items, made one ahead in a thread of their own while the caller takes the previous one.

    Every pipeline of a load runs in its own thread, so independent tables are generated at the same
    time and while dlt writes out the batches already made (numpy and pyarrow release the GIL). At
    most one item waits per pipeline, so memory stays bounded. The thread is a daemon and the caller
    waits in short steps: a Ctrl-C (or the webhook server going away) ends the run at once, even
    while a pipeline blocks; the thread stops at its next item. An error in the pipeline is raised
    in the caller, with the pipeline's own traceback. `seconds`: the CPU time spent making the items
    handed over so far (and maybe the next one).
    """

    _WAIT = 0.05  # seconds between checks for an interrupt (the caller) or the end (the thread)

    def __init__(self, make: Callable[[], Iterable[Any] | None], name: str) -> None:
        self.seconds = 0.0
        self._items: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._make, args=(make,), name=f"sbdk-generate-{name}", daemon=True)

    def start(self) -> None:
        """Start making the items now (once; iterating starts it too). Called from the caller's thread."""
        if self._thread.ident is None:
            self._thread.start()

    def stop(self) -> None:
        """No more items are wanted: the thread ends at its next one."""
        self._stopped.set()

    def _make(self, make: Callable[[], Iterable[Any] | None]) -> None:
        try:
            # The thread's own CPU time: waiting for a value of the World another pipeline is making
            # (events and orders both need the sessions) is that pipeline's time, not this one's.
            started = time.thread_time()
            for item in make() or ():
                self.seconds += time.thread_time() - started
                if not self._put((False, item)):
                    return
                started = time.thread_time()
            self.seconds += time.thread_time() - started
        except BaseException as exc:  # Ctrl-C or sys.exit() raised in a pipeline too: the caller decides
            self._put((True, exc))
        else:
            self._put((True, None))

    def _put(self, entry: tuple[bool, Any]) -> bool:
        while not self._stopped.is_set():
            try:
                self._items.put(entry, timeout=self._WAIT)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Any]:
        self.start()
        try:
            while True:
                try:
                    last, value = self._items.get(timeout=self._WAIT)
                except queue.Empty:
                    continue
                if not last:
                    yield value
                elif value is None:
                    return
                else:
                    raise value
        finally:
            self.stop()
