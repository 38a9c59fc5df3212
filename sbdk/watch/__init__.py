"""`sbdk start`: watch a project and rebuild only what a change affects."""

from sbdk.watch.watcher import *  # noqa: F403  (split into modules below)
