"""Run the app under uvicorn: bind, serve, and stop cleanly on SIGINT/SIGTERM.

First signal: stop accepting connections, cancel the run that has not started, let the current run
finish, write the server's records, exit 0. A second signal interrupts the current run (as Ctrl-C
does in `sbdk dev`; a third kills it) and exits 130. No reload, no uvicorn workers, and a run's
process never outlives the server (sbdk/server/worker.py).
"""

from __future__ import annotations

import errno
import logging
import queue
import socket
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from sbdk.errors import ExitCode, SbdkError
from sbdk.server.state import state_of

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

log = logging.getLogger("sbdk.server")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0 picks a free one); a clear error, with the fix for its
    cause, when it cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise SbdkError(
            f"Cannot listen on {host!r}: {exc.strerror}.",
            hint="Pass --host with an address of this machine, e.g. 127.0.0.1 (the default) or 0.0.0.0.",
        ) from exc
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise SbdkError(f"Cannot listen on {host}:{port}: {exc.strerror}.", hint=_bind_hint(exc, host, port)) from exc
    return sock


def _bind_hint(exc: OSError, host: str, port: int) -> str:
    """The fix for a failed bind, by its cause: only EADDRINUSE means another program has the port."""
    if exc.errno == errno.EADDRINUSE:
        return f"Another program uses that port: stop it, or pass --port {port + 1 if port else 8001}."
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"{host} is not an address of this machine: pass --host with one of its addresses, e.g. "
            "127.0.0.1 (the default) or 0.0.0.0 (every address)."
        )
    if exc.errno == errno.EACCES:
        return f"Port {port} needs privileges on this system: pass --port 1024 or above (the default is 8000)."
    return "Pass --host 127.0.0.1 (the default) and --port 0 (a free port) to check that the server starts at all."


def address(sock: socket.socket) -> tuple[str, int]:
    host, port = sock.getsockname()[:2]
    return host, port


def url(sock: socket.socket) -> str:
    host, port = address(sock)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(app: FastAPI, *, access_log: bool = False) -> uvicorn.Server:
    """A uvicorn Server for `app` whose signal handling stops runs cleanly (see module docstring)."""
    import uvicorn

    state = state_of(app)
    # Signal handlers only hand work to this thread: they run on the event loop's thread, which
    # may be inside the queue's lock (or starting a thread) at that moment. SimpleQueue.put is
    # safe to call from a signal handler.
    actions: queue.SimpleQueue = queue.SimpleQueue()

    def act() -> None:
        while True:
            action = actions.get()
            try:
                action()
            except Exception:
                log.exception("could not stop the runs cleanly")

    threading.Thread(target=act, name="sbdk-server-signals", daemon=True).start()

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Replaces uvicorn's handler, which would re-raise the signal after shutdown (SIGTERM
            # would then kill the process at once): the shutdown here is complete by itself.
            runs = state.queue
            if self.should_exit:
                self.force_exit = True
                if runs is not None:
                    actions.put(runs.interrupt)
            else:
                self.should_exit = True
                if runs is not None:
                    actions.put(runs.close)

    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,  # the caller configures logging
        access_log=access_log,
        server_header=False,
        timeout_graceful_shutdown=10,
        reload=False,
        workers=1,
    )
    return Server(config)


def serve(
    app: FastAPI, sock: socket.socket, *, access_log: bool = False, announce: Callable[[], None] | None = None
) -> int:
    """Serve on `sock` until a signal stops the server; returns the exit code (0, or 130 when a
    second signal interrupted a run). `announce` is called once the server can start."""
    state = state_of(app)
    server = make_server(app, access_log=access_log)
    try:
        # Open the store and start the worker before serving, so that a second server on the same
        # project fails with a message at once (the lifespan startup then finds it done).
        state.start()
        if announce is not None:
            announce()
        server.run(sockets=[sock])
    finally:
        # uvicorn skips the lifespan shutdown after a second signal; stop() is idempotent.
        state.stop()
        sock.close()
    if server.force_exit:
        return int(ExitCode.INTERRUPTED)
    return int(ExitCode.OK)
