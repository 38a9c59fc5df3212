"""Sending a message to a target with Apprise: secrets filled in at the last moment, in a daemon
thread with a bounded time, and never shown.

A target's URL in sbdk_config.json holds `${NAME}` where a secret goes; the value comes, when the
message is sent, from the environment or else the project's .env, as is (URL-encode what needs it).
Everything sbdk says about a target names it by the URL as written, cut to scheme and host
(`target_name`), and what Apprise logs while sending (its errors quote the whole URL) is kept from
the logging system; the reason for a failure is taken from it with every secret value blanked out.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sbdk.notify.events import Message, ping_message

if TYPE_CHECKING:
    from sbdk.settings import NotifyTarget, Settings

# The longest one message may take to one target: Apprise's socket timeouts, lowered to these when a
# URL asks for more (its `cto=` and `rto=`), so a target that accepts and never answers gives up.
CONNECT_SECONDS = 2.0
ANSWER_SECONDS = 3.0
SEND_SECONDS = CONNECT_SECONDS + ANSWER_SECONDS

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SCHEME_AND_HOST = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(?:[^/?#]*@)?([^/?#]*)")


class MissingVariable(Exception):
    """A `${NAME}` in a target's URL that neither the environment nor .env sets."""


def target_name(url: str) -> str:
    """A target as sbdk shows it: the scheme and host of its URL as written (`${NAME}` unfilled),
    without user, password, path or query."""
    match = _SCHEME_AND_HOST.match(url)
    return f"{match.group(1)}://{match.group(2)}" if match else url.split("://", 1)[0] + "://"


def secrets_wanted(targets: Sequence[NotifyTarget]) -> bool:
    return any(_VARIABLE.search(target.url) for target in targets)


def secret_values(settings: Settings) -> dict[str, str]:
    """The variables a URL may name: the project's .env, overridden by the environment (as for settings)."""
    from sbdk.settings import read_dotenv

    return {**read_dotenv(settings.paths.env_file), **os.environ}


def fill(url: str, variables: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """`url` with each `${NAME}` replaced by its value, and the values used (name -> value)."""
    names = list(dict.fromkeys(_VARIABLE.findall(url)))
    missing = [name for name in names if name not in variables]
    if missing:
        listed = ", ".join(f"${{{name}}}" for name in missing)
        raise MissingVariable(
            f"{listed} {'is' if len(missing) == 1 else 'are'} set neither in the environment nor in .env"
        )
    used = {name: variables[name] for name in names}
    return _VARIABLE.sub(lambda m: used[m.group(1)], url), used


@dataclass(frozen=True)
class Delivery:
    target: str  # as `target_name` shows it
    ok: bool
    detail: str = ""  # why it failed, secrets blanked out


class Sending:
    """One message on its way to one target, in a daemon thread: it never keeps a process alive, and
    gives up after about SEND_SECONDS."""

    def __init__(self, name: str, url: str, secrets: Mapping[str, str], message: Message) -> None:
        self.name = name
        self.started = time.monotonic()
        self._url, self._secrets, self._message = url, dict(secrets), message
        self._delivery: Delivery | None = None
        self._thread = threading.Thread(target=self._send, name=f"sbdk-notify {name}", daemon=True)
        self._thread.start()

    def wait(self, seconds: float) -> Delivery | None:
        """The delivery, once it has ended within `seconds`; None while it is still under way."""
        self._thread.join(max(seconds, 0.0))
        return self._delivery

    def _send(self) -> None:
        try:
            reason = deliver(self._url, self._message)
        except Exception as exc:  # an Apprise plugin's bug is this target's failure, nothing more
            reason = f"{type(exc).__name__}: {exc}"
        detail = _blank(reason, self._secrets) if reason else ""
        self._delivery = Delivery(self.name, reason is None, detail)


def start(target: NotifyTarget, message: Message, variables: Mapping[str, str]) -> Sending:
    """Start sending `message` to `target`; raises MissingVariable (naming it) when a secret is unset."""
    url, used = fill(target.url, variables)
    return Sending(target_name(target.url), url, used, message)


def send_test(settings: Settings) -> list[Delivery]:
    """A test message to every target at once; each target's delivery, in the order of the config."""
    variables = secret_values(settings) if secrets_wanted(settings.notify) else {}
    under_way: list[Sending | Delivery] = []
    for target in settings.notify:
        try:
            under_way.append(start(target, ping_message(settings.project, target.events), variables))
        except MissingVariable as exc:
            under_way.append(Delivery(target_name(target.url), False, f"not sent: {exc}"))
    deadline = time.monotonic() + SEND_SECONDS + 1.0
    deliveries = []
    for item in under_way:
        if isinstance(item, Sending):
            done = item.wait(deadline - time.monotonic())
            item = done or Delivery(item.name, False, f"no answer within {SEND_SECONDS:g} s")
        deliveries.append(item)
    return deliveries


def deliver(url: str, message: Message) -> str | None:
    """Send `message` to the Apprise `url` in this thread; None when it was accepted, else why not."""
    import apprise

    _quiet_apprise()
    heard: list[str] = []
    _CAPTURE.lines.heard = heard
    try:
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            return _reason(heard, "not a URL Apprise can send to: check its scheme and form (see Apprise's docs)")
        plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, CONNECT_SECONDS)
        plugin.socket_read_timeout = min(plugin.socket_read_timeout, ANSWER_SECONDS)
        if plugin.notify(body=message.body, title=message.title, notify_type=apprise.NotifyType(message.kind)):
            return None
        return _reason(heard, "the target did not accept the message")
    finally:
        _CAPTURE.lines.heard = None


class _Capture(logging.Filter):
    """On Apprise's logger: what it logs from a thread that is sending for sbdk is kept for that
    thread (warnings and errors) and goes no further, since Apprise quotes whole URLs; what other
    code's use of Apprise logs passes untouched."""

    def __init__(self) -> None:
        super().__init__()
        self.lines = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        heard = getattr(self.lines, "heard", None)
        if heard is None:
            return True
        if record.levelno >= logging.WARNING:
            heard.append(record.getMessage())
        return False


_CAPTURE = _Capture()
_INSTALL = threading.Lock()


def _quiet_apprise() -> None:
    logger = logging.getLogger("apprise")
    with _INSTALL:
        if _CAPTURE not in logger.filters:
            logger.addFilter(_CAPTURE)


def _reason(heard: list[str], default: str) -> str:
    """The last thing Apprise warned about that names no URL, else `default`."""
    said = [line.strip() for line in heard if line.strip() and "://" not in line]
    return said[-1] if said else default


def _blank(text: str, secrets: Mapping[str, str]) -> str:
    """`text` with every secret value replaced by the `${NAME}` it came from (longest first)."""
    for name, value in sorted(secrets.items(), key=lambda item: -len(item[1])):
        if value:
            text = text.replace(value, f"${{{name}}}")
    return text
