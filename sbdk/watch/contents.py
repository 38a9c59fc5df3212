"""What each watched file held when the watcher last planned: a save that changes nothing (`touch`,
an editor writing an unchanged buffer) is no change, and a properties file is compared entry by entry
with what it said before.

Only the thread that plans touches it. A digest is a sha1 of the bytes; properties files also keep
their bytes (they are small), parsed only when they change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20
# Properties files larger than this are compared as a whole, never entry by entry.
MAX_KEPT_BYTES = 1 << 20


@dataclass(frozen=True)
class Seen:
    """A file as the planner finds it, against what it held at the last plan."""

    changed: bool  # deleted, new, unknown until now, or different bytes
    previous: bytes | None = None  # its bytes at the last plan, when they were kept


class Contents:
    """The digest (and, for properties files, the bytes) of each watched file at the last plan."""

    def __init__(self) -> None:
        self._digests: dict[Path, str] = {}
        self._kept: dict[Path, bytes] = {}

    def remember(self, path: Path, *, keep: bool = False) -> None:
        """Record `path` as it is now, as the state already built (when the watcher starts)."""
        self.update(path, keep=keep)

    def update(self, path: Path, *, keep: bool = False) -> Seen:
        """Whether `path` differs from the last plan, and record it as it is now. `keep`: also keep
        its bytes, for the next change to be compared with."""
        previous_digest = self._digests.pop(path, None)
        previous = self._kept.pop(path, None)
        digest, data = _read(path, keep)
        if digest is None:  # deleted, or unreadable: always a change
            return Seen(changed=True, previous=previous)
        self._digests[path] = digest
        if data is not None:
            self._kept[path] = data
        return Seen(changed=digest != previous_digest, previous=previous)

    def forget(self, paths: Iterable[Path]) -> None:
        """Treat `paths` as unknown: their next event counts whatever they hold (a rebuild that
        could not run built nothing, so saving the same file again must retry it)."""
        for path in paths:
            self._digests.pop(path, None)
            self._kept.pop(path, None)

    def clear(self) -> None:
        self._digests.clear()
        self._kept.clear()


def _read(path: Path, keep: bool) -> tuple[str | None, bytes | None]:
    """(sha1 of the file's bytes, the bytes when `keep` and small enough); (None, None) when it
    cannot be read."""
    sha1 = hashlib.sha1(usedforsecurity=False)
    kept = bytearray() if keep else None
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                sha1.update(chunk)
                if kept is not None:
                    kept += chunk
                    if len(kept) > MAX_KEPT_BYTES:
                        kept = None
    except OSError:  # gone, a folder, or not ours to read
        return None, None
    return sha1.hexdigest(), bytes(kept) if kept is not None else None
