"""Run notifications through Apprise (issue #19; DESIGN.md §10).

`"notify": [{"url": <Apprise URL>, "events": [...]}]` in sbdk_config.json sends, to each target, the
events it asks for: a run failed, its data tests failed, the first success after failures
(recovered), the raw tables' columns changed since the last load (sent right after the load, before
dbt), and, when asked, every success. `${NAME}` in a URL is filled in from the environment or .env
when sending, and never shown (`send`).

Nothing here changes a run. Messages go out in daemon threads that give up after about five
seconds; the end of a run waits for them at most one second (`observer.FINISH_WAIT_SECONDS`), since
a process that exits right after its run would cut them off, and a target that failed or has not
answered by then is a warning in the run's log. Repeated failures announce nothing new (`events`),
so a watcher failing ten saves in a row sends one "failed" and one "recovered".

Imported, with Apprise, only when `notify` is configured (sbdk.run.observers) or by `sbdk notify`;
Apprise itself only when a message is sent.
"""

from sbdk.notify.observer import NotifyObserver
from sbdk.notify.send import Delivery, send_test, target_name

__all__ = ["Delivery", "NotifyObserver", "send_test", "target_name"]
