"""Serve the page under uvicorn, in the foreground (`sbdk ui`) or beside the watcher (`sbdk start --ui`)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

from sbdk.errors import ExitCode
from sbdk.settings import Settings

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")  # Starlette keeps the brackets of an IPv6 Host


def page_url(sock: socket.socket) -> str:
    from sbdk.server.serving import url

    return url(sock).replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:") + "/"


def _server(settings: Settings, sock: socket.socket, host: str, verbose: bool):
    import uvicorn

    from sbdk.ui.app import create_app

    hosts = ("*",) if host not in LOOPBACK else LOOPBACK
    app = create_app(settings, hosts=hosts)
    if not verbose:
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=verbose,
        server_header=False,
        timeout_graceful_shutdown=1,
        workers=1,
    )
    return uvicorn.Server(config)


def serve(
    settings: Settings,
    sock: socket.socket,
    *,
    host: str,
    open_browser: bool,
    verbose: bool,
    announce: Callable[[socket.socket, str, str], None] | None = None,
) -> int:
    """Serve in this thread until Ctrl-C or SIGTERM; returns the exit code."""
    server = _server(settings, sock, host, verbose)
    page = page_url(sock)
    if announce is not None:
        announce(sock, host, page)
    if open_browser:
        open_later(page)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return int(ExitCode.OK)


class Background:
    """The page served from a thread, while the main thread watches (`sbdk start --ui`)."""

    def __init__(self, settings: Settings, sock: socket.socket, *, host: str, verbose: bool) -> None:
        self.sock = sock
        self.url = page_url(sock)
        self._server = _server(settings, sock, host, verbose)
        # Signals belong to the watcher in the main thread: uvicorn installs none off it.
        self._thread = threading.Thread(target=self._run, name="sbdk-ui", daemon=True)

    def _run(self) -> None:
        self._server.run(sockets=[self.sock])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=3)
        self.sock.close()


def open_later(page: str) -> None:
    """Open the page in the user's browser once the server answers. Only where a graphical browser can
    show it: with no display, Python's webbrowser would start a text browser in the terminal."""
    import os
    import sys

    if sys.platform not in ("darwin", "win32") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return

    def opener() -> None:
        import webbrowser

        try:
            webbrowser.open(page)
        except Exception:  # a missing or broken browser must not stop the server
            pass

    threading.Timer(0.5, opener).start()
