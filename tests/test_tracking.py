"""Tracking, client side (sbdk.ops.tracking) against the real app under uvicorn on a loopback port."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
from conftest import edit_config
from tests_support import serve_project, server_db

from sbdk.ops.tracking import register_project, send_usage_event
from sbdk.settings import load_settings


def tracked_settings(root: Path, endpoint: str, *, enabled: bool = True, uuid: str | None = None):
    edit_config(root, tracking={"enabled": enabled, "uuid": uuid, "endpoint": endpoint})
    return load_settings(root / "sbdk_config.json")


@pytest.fixture
def server_project(make_project) -> Path:
    return make_project("server")


def dead_endpoint() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.slow  # a real server under uvicorn
def test_register_then_send_events_that_the_server_stores(server_project: Path, project: Path) -> None:
    with serve_project(server_project) as endpoint:
        uuid = register_project(endpoint + "/", "demo")
        assert uuid is not None
        settings = tracked_settings(project, endpoint, uuid=uuid)
        assert register_project(settings, "demo-again") not in (None, uuid)
        thread = send_usage_event(settings, "dev", {"pipelines_only": False})
        assert isinstance(thread, threading.Thread) and thread.daemon
        thread.join(30)
        assert not thread.is_alive()

    assert server_db(server_project, "select project from registrations order by registered_at") == [
        ("demo",),
        ("demo-again",),
    ]
    [(who, event, properties)] = server_db(server_project, "select uuid, event, properties from usage_events")
    assert (who, event) == (uuid, "dev")
    properties = json.loads(properties)
    assert properties["pipelines_only"] is False
    assert set(properties) == {"pipelines_only", "sbdk_version", "python", "os"}


@pytest.mark.slow  # a real server under uvicorn
def test_tracking_disabled_sends_nothing(server_project: Path, project: Path) -> None:
    with serve_project(server_project) as endpoint:
        uuid = register_project(endpoint, "demo")
        off = tracked_settings(project, endpoint, enabled=False, uuid=uuid)
        assert load_settings(server_project / "sbdk_config.json").tracking.enabled is False  # the default
        assert send_usage_event(off, "dev") is None
        assert register_project(off, "demo") is None
        # Enabled but never registered: nothing to send either.
        assert send_usage_event(tracked_settings(project, endpoint, uuid=None), "dev") is None

    assert server_db(server_project, "select count(*) from usage_events") == [(0,)]
    assert server_db(server_project, "select count(*) from registrations") == [(1,)]


@pytest.mark.slow  # a real server under uvicorn
def test_an_unknown_uuid_is_refused_by_the_server_and_swallowed(server_project: Path, project: Path) -> None:
    with serve_project(server_project) as endpoint:
        settings = tracked_settings(project, endpoint, uuid="00000000-0000-4000-8000-000000000000")
        thread = send_usage_event(settings, "dev")
        thread.join(30)
        assert not thread.is_alive()

    assert server_db(server_project, "select count(*) from usage_events") == [(0,)]


@pytest.mark.parametrize("endpoint", ["dead", "file:///etc/passwd", "not a url", "http://"])
def test_missing_or_bad_endpoints_never_raise(project: Path, endpoint: str) -> None:
    url = dead_endpoint() if endpoint == "dead" else endpoint

    assert register_project(url, "demo") is None
    settings = tracked_settings(project, url, uuid="00000000-0000-4000-8000-000000000000")
    thread = send_usage_event(settings, "dev", {"x": 1})
    thread.join(30)
    assert not thread.is_alive()


def test_an_endpoint_that_never_answers_is_given_up(project: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections (the kernel does), never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        settings = tracked_settings(project, url, uuid="00000000-0000-4000-8000-000000000000")

        thread = send_usage_event(settings, "dev")
        thread.join(30)
        assert not thread.is_alive()  # the one-second timeout ended it
        assert register_project(url, "demo") is None
