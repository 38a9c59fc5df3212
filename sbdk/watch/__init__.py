"""`sbdk start`: watch a project and rebuild only what a change affects.

layout (what to watch and ignore) -> classify (what kind of change a path is) -> plan (the smallest
RunPlan, naming its nodes from the last parse in manifest) -> watcher (the loop that runs it).
"""

from sbdk.watch.classify import Change, ChangeKind, classify
from sbdk.watch.layout import Area, Layout, Scope
from sbdk.watch.manifest import Manifest
from sbdk.watch.plan import Rebuild, plan_rebuild
from sbdk.watch.watcher import DEFAULT_DEBOUNCE, NULL_LISTENER, NullListener, Watcher, WatchListener

__all__ = [
    "DEFAULT_DEBOUNCE",
    "NULL_LISTENER",
    "Area",
    "Change",
    "ChangeKind",
    "Layout",
    "Manifest",
    "NullListener",
    "Rebuild",
    "Scope",
    "WatchListener",
    "Watcher",
    "classify",
    "plan_rebuild",
]
