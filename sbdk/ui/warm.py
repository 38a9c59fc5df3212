"""Answers worked out ahead: after each build, the page's answers are read once in the background.

A profile of a large view computes the view (about a second at 10x the default volume); done here,
right after the build that changed it, the page then answers from ProjectView's cache in
milliseconds. The warmer stops as soon as a run starts (the view reads nothing while one runs) and
never holds the database for more than one answer at a time, like every other read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from sbdk.errors import SbdkError
from sbdk.view import ProjectView
from sbdk.view.catalog import relation_of

log = logging.getLogger("sbdk.ui")
CHECK_SECONDS = 1.0


class Warmer:
    """A daemon thread that reads every page's answers once after each build (and at start)."""

    def __init__(self, view: ProjectView) -> None:
        self.view = view
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sbdk-ui-warm", daemon=True)
        self._warmed: Any = object()

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 30.0) -> None:
        """Stop, and wait (up to `wait` seconds) for the answer being read to finish: after this,
        the warmer holds no connection to the database."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(wait)

    def _stamp(self) -> Any:
        return (self.view._generation(), self.view.manifest._candidates())

    def _loop(self) -> None:
        while not self._stop.wait(CHECK_SECONDS if self._warmed is not None else 0):
            stamp = self._stamp()
            if stamp == self._warmed or self.view.building() is not None:
                continue
            try:
                self._warm()
                self._warmed = stamp
            except Exception:
                log.debug("warming the page's answers failed", exc_info=True)
                self._warmed = stamp

    def _warm(self) -> None:
        steps: list[Callable[[], Any]] = [self.view.overview, self.view.lineage]
        try:
            catalog = self.view.catalog()
        except SbdkError:
            catalog = None
        if catalog is not None and self.view.settings.active_target.type == "duckdb":
            order = {"mart": 0, "model": 1, "intermediate": 2, "staging": 3, "seed": 4, "snapshot": 5, "source": 6}
            from sbdk.view.catalog import layer_of

            relations = sorted(
                (uid for uid, node in catalog.nodes.items() if relation_of(node)),
                key=lambda uid: order.get(layer_of(catalog.nodes[uid]), 9),
            )
            for uid in relations:
                steps += [
                    partial(self.view.node, uid),
                    partial(self.view.rows, uid, 0, 50),
                    partial(self.view.profile, uid),
                    partial(self.view.chart, uid),
                ]
        for step in steps:
            if self._stop.is_set() or self.view.building() is not None:
                return
            try:
                step()
            except SbdkError:
                continue
