"""Anonymous usage tracking, client side: off unless `tracking.enabled` is true in the config.

Never in the way of the user: events go out on a daemon thread with a one-second timeout, every
error is swallowed, and nothing personal is sent (the project's UUID, the event name, sbdk's and
Python's versions, the operating system's name and the few properties the caller passes).
"""

from __future__ import annotations

import json
import platform
import threading
from typing import Any

from sbdk import __version__
from sbdk.settings import Settings

TIMEOUT_SECONDS = 1.0


def send_usage_event(
    settings: Settings, event: str, properties: dict[str, Any] | None = None
) -> threading.Thread | None:
    """POST one usage event to `tracking.endpoint` in the background.

    Returns the (daemon) thread, or None when tracking is off or the project has no UUID yet.
    The caller never needs to join it: a slow or missing endpoint cannot delay or fail anything.
    """
    tracking = settings.tracking
    if not tracking.enabled or not tracking.uuid:
        return None
    payload = {
        "uuid": tracking.uuid,
        "event": event,
        "properties": {**_environment(), **(properties or {})},
    }
    thread = threading.Thread(
        target=_post_quietly, args=(tracking.endpoint, "/track/usage", payload), name="sbdk-tracking", daemon=True
    )
    thread.start()
    return thread


def register_project(settings_or_endpoint: Settings | str, project: str) -> str | None:
    """Register `project` with the tracking server and return its new UUID; None on any failure.

    Given Settings, does nothing (None) unless tracking is enabled; given an endpoint URL, always
    tries. Blocks for at most about a second: call it where the user expects a short wait (init).
    """
    if isinstance(settings_or_endpoint, Settings):
        if not settings_or_endpoint.tracking.enabled:
            return None
        endpoint = settings_or_endpoint.tracking.endpoint
    else:
        endpoint = settings_or_endpoint
    answer = _post_quietly(endpoint, "/register", {"project": project, "sbdk_version": __version__})
    uuid = answer.get("uuid") if isinstance(answer, dict) else None
    return uuid if isinstance(uuid, str) and uuid else None


def _environment() -> dict[str, str]:
    return {"sbdk_version": __version__, "python": platform.python_version(), "os": platform.system()}


def _post_quietly(endpoint: str, path: str, payload: dict[str, Any]) -> Any:
    """POST JSON; the decoded JSON answer, or None on any error (tracking never raises)."""
    # Imported here: urllib.request pulls in http.client and ssl, which `sbdk --help` must not pay for.
    import urllib.parse
    import urllib.request

    try:
        url = endpoint.rstrip("/") + path
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode("utf-8"),
            headers={"Content-Type": "application/json", "User-Agent": f"sbdk/{__version__}"},
            method="POST",
        )
        # A proxy from the environment must not capture a server on this machine.
        handlers = [urllib.request.ProxyHandler({})] if _is_loopback(parts.hostname) else []
        with urllib.request.build_opener(*handlers).open(request, timeout=TIMEOUT_SECONDS) as response:
            return json.loads(response.read(64 * 1024) or b"null")
    except Exception:
        return None


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
