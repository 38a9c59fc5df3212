"""Follow the runs of a project as they happen, for the page's Server-Sent Events.

Every run appends its progress to `.sbdk/runs/<run id>.jsonl` (sbdk.run.events), whichever process
runs it, so the page follows runs of `sbdk dev` in a terminal, of the watcher and of the webhook
server alike. A `Tail` remembers how far it has read each file and hands back only new events.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# The events the page is told about, as the run's events file names them.
FORWARDED = (
    "run_started",
    "stage",
    "stage_finished",
    "nodes_planned",
    "node_started",
    "node_finished",
    "run_finished",
    "table_done",
)


class Tail:
    """New events in a folder of JSON lines files, from the moment the tail was made."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._offsets: dict[str, int] = {name: size for name, size, _mtime in self._files()}

    def _files(self) -> list[tuple[str, int, int]]:
        try:
            with os.scandir(self.folder) as entries:
                return [
                    (entry.name, stat.st_size, stat.st_mtime_ns)
                    for entry in entries
                    if entry.name.endswith(".jsonl") and (stat := entry.stat())
                ]
        except OSError:
            return []

    def poll(self) -> list[dict[str, Any]]:
        """Events written since the last poll, oldest first, each with its `run_id`."""
        out: list[dict[str, Any]] = []
        for name, size, _mtime in sorted(self._files(), key=lambda f: f[2]):
            start = self._offsets.get(name, 0)
            if size <= start:
                continue
            try:
                with open(self.folder / name, "rb") as handle:
                    handle.seek(start)
                    chunk = handle.read(size - start)
            except OSError:
                continue
            complete = chunk.rfind(b"\n") + 1  # a line still being written is read next time
            self._offsets[name] = start + complete
            run_id = name.removesuffix(".jsonl")
            for line in chunk[:complete].splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and event.get("event") in FORWARDED:
                    out.append({**event, "run_id": run_id})
        return out
