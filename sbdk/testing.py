"""Fault-injection points for the crash-safety tests (tests/test_reliability.py).

When the environment variable SBDKTEST_PAUSE_AT names a point, the run writes the file named by
SBDKTEST_PAUSE_FILE when it reaches it and then sleeps, so a test can SIGKILL or SIGINT the
process at exactly that moment. Unset (always, outside those tests), a point costs one dict lookup.
"""

from __future__ import annotations

import os
import time

ENV_POINT = "SBDKTEST_PAUSE_AT"
ENV_FILE = "SBDKTEST_PAUSE_FILE"


def pause_point(name: str) -> None:
    if os.environ.get(ENV_POINT) != name:
        return
    marker = os.environ.get(ENV_FILE)
    if marker:
        with open(marker, "w", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()} {name}\n")
    time.sleep(float(os.environ.get("SBDKTEST_PAUSE_SECONDS", "60")))
