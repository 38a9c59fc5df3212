"""`sbdk webhooks`: the real app (TestClient, and uvicorn on a loopback port), real HMAC signatures
computed here, a real project and real runs through sbdk.run.runner at a small volume.

A test-only pipeline (pipelines/gate.py) holds each run at a gate that the test opens, fails or
leaves shut by creating files in <project>/gate/, so "during a run" is a state, not a timing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import httpx
import pytest
from conftest import edit_config
from fastapi.testclient import TestClient
from helpers import query
from tests_support import serve_project, server_db

from sbdk.run import history
from sbdk.run.runlog import find_log
from sbdk.run.runner import RunPlan, run
from sbdk.settings import DataVolume, load_settings

SECRET = "s3cret-for-tests-0123456789abcdef"
RAW_TABLES = frozenset({"raw_users", "raw_events", "raw_orders"})
GATE_PIPELINE = '''"""Test-only pipeline: each run waits at a gate the test opens (files in <project>/gate/)."""
import os
import time
from pathlib import Path

TABLE = "raw_gate"
GATE = Path(__file__).resolve().parent.parent / "gate"


def generate(ctx):
    GATE.mkdir(exist_ok=True)
    n = len(list(GATE.glob("waiting.*"))) + 1
    (GATE / f"waiting.{n}").write_text(str(os.getpid()))
    print(f"run {n} at the gate")  # a pipeline's print() must not disturb the server
    deadline = time.monotonic() + 180
    while not ((GATE / f"open.{n}").exists() or (GATE / "open.all").exists()):
        if (GATE / f"fail.{n}").exists():
            raise RuntimeError(f"gate {n} failed on purpose")
        if time.monotonic() > deadline:
            raise RuntimeError("the test never opened the gate")
        time.sleep(0.02)
    yield [{"run": n}]
'''


class Gate:
    """The files through which a test holds, releases or fails the runs of its project."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "gate"

    def reached(self) -> int:
        """How many runs have reached the gate so far."""
        return len(list(self.dir.glob("waiting.*"))) if self.dir.is_dir() else 0

    def wait(self, n: int, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not (self.dir / f"waiting.{n}").exists():
            assert time.monotonic() < deadline, f"run {n} never reached the gate"
            time.sleep(0.02)

    def pid(self, n: int) -> int:
        """The process that ran run n (the server's run worker)."""
        return int((self.dir / f"waiting.{n}").read_text())

    def open(self, n: int | str = "all") -> None:
        self.dir.mkdir(exist_ok=True)
        (self.dir / f"open.{n}").write_text("")

    def fail(self, n: int) -> None:
        self.dir.mkdir(exist_ok=True)
        (self.dir / f"fail.{n}").write_text("")


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def push_payload(branch: str = "main", *, after: str = "a" * 40, deleted: bool = False, ref: str | None = None) -> dict:
    return {
        "ref": ref or f"refs/heads/{branch}",
        "before": "0" * 40,
        "after": after,
        "deleted": deleted,
        "repository": {"full_name": "someone/demo", "default_branch": "main"},
        "commits": [],
    }


def deliver(
    client,
    payload: dict | None = None,
    *,
    event: str | None = "push",
    delivery: str | None = None,
    body: bytes | None = None,
    signed: bool | str = True,
    secret: str = SECRET,
    content_type: str = "application/json",
):
    """POST one GitHub delivery, signed as GitHub signs it unless told otherwise."""
    if body is None:
        body = json.dumps(payload if payload is not None else push_payload()).encode()
    headers = {"Content-Type": content_type}
    if event is not None:
        headers["X-GitHub-Event"] = event
    if delivery is not None:
        headers["X-GitHub-Delivery"] = delivery
    if signed is True:
        headers["X-Hub-Signature-256"] = signature(body, secret)
    elif isinstance(signed, str):
        headers["X-Hub-Signature-256"] = signed
    return client.post("/webhook/github", content=body, headers=headers)


def wait_for_run(client, run_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(f"/runs/{run_id}").json()
        if answer["status"] in ("succeeded", "failed"):
            return answer
        assert time.monotonic() < deadline, f"run {run_id} still {answer['status']}"
        time.sleep(0.05)


def webhook_runs(root: Path) -> list[dict]:
    return [r for r in history.read(root / ".sbdk") if r["trigger"] == "sbdk webhooks"]


@pytest.fixture
def hooked(project: Path) -> Path:
    """A project with a webhook secret in its .env and the gate pipeline."""
    (project / ".env").write_text(f"SBDK_WEBHOOK_SECRET={SECRET}\n")
    (project / "pipelines" / "gate.py").write_text(GATE_PIPELINE)
    return project


class Servers:
    """serve(root) starts the app of a project in a TestClient (lifespan included); serve.stop(client)
    stops it as a server stops (the current run finishes first). Whatever is still running at the
    end of the test is stopped after opening every gate, so a failed test never hangs on a run."""

    def __init__(self) -> None:
        self.running: list[tuple[TestClient, Gate]] = []

    def __call__(self, root: Path) -> TestClient:
        from sbdk.server import create_app

        client = TestClient(create_app(load_settings(root / "sbdk_config.json")))
        client.__enter__()
        self.running.append((client, Gate(root)))
        return client

    def stop(self, client: TestClient) -> None:
        self.running = [(c, g) for c, g in self.running if c is not client]
        client.__exit__(None, None, None)

    def stop_all(self) -> None:
        for client, gate in reversed(self.running):
            gate.open()
            self.stop(client)


@pytest.fixture
def serve() -> Iterator[Servers]:
    servers = Servers()
    yield servers
    servers.stop_all()


def nothing_ran(client, root: Path) -> None:
    health = client.get("/health").json()
    assert (health["running"], health["queued"], health["queue_length"], health["last_run"]) == (None, None, 0, None)
    assert webhook_runs(root) == []
    assert Gate(root).reached() == 0


@pytest.mark.slow  # a real run
def test_push_rebuilds_the_project_and_pushes_during_a_run_make_exactly_one_more_run(hooked, serve):
    # The project as it was before the push: raw tables of another size, no marts.
    small = DataVolume(users=50, events=100)
    run(load_settings(hooked / "sbdk_config.json"), RunPlan(dbt=False, tables=RAW_TABLES, volume=small))
    assert query(hooked, "select count(*) from raw.raw_users") == [(50,)]
    gate = Gate(hooked)
    client = serve(hooked)

    first = deliver(client, push_payload(after="1" * 40), delivery="delivery-1")
    assert first.status_code == 202
    assert first.json()["status"] == "queued" and first.json()["coalesced"] is False
    run_a = first.json()["run_id"]
    gate.wait(1)
    assert client.get(f"/runs/{run_a}").json()["status"] == "running"

    # Three pushes while run A holds: each answered at once, all joining one next run.
    answers = [deliver(client, push_payload(after=c * 40), delivery=f"delivery-{c}") for c in "234"]
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert len({a.json()["run_id"] for a in answers}) == 1
    run_b = answers[0].json()["run_id"]
    assert run_b != run_a
    assert [a.json()["coalesced"] for a in answers] == [False, True, True]
    # GitHub redelivering one of them gets the first answer again and queues nothing new.
    again = deliver(client, push_payload(after="2" * 40), delivery="delivery-2")
    assert (again.status_code, again.json()) == (202, answers[0].json())
    health = client.get("/health").json()
    assert (health["running"], health["queued"], health["queue_length"]) == (run_a, run_b, 1)
    assert client.get(f"/runs/{run_b}").json()["status"] == "queued"

    gate.open()
    done_a = wait_for_run(client, run_a)
    done_b = wait_for_run(client, run_b)

    for done in (done_a, done_b):
        assert done["status"] == "succeeded", done["error"]
        assert done["error"] is None
        assert done["rows"]["raw_users"] == 200
        assert done["seconds"] > 0 and list(done["stages"]) == ["generate", "load", "dbt_parse", "dbt_build"]
        assert done["started_at"] >= done["queued_at"] and done["finished_at"] >= done["started_at"]
    assert done_a["deliveries"] == ["delivery-1"]
    assert done_b["deliveries"] == ["delivery-2", "delivery-3", "delivery-4"]
    assert done_b["commits"] == ["2" * 40, "3" * 40, "4" * 40]
    assert done_b["started_at"] >= done_a["finished_at"]  # one run at a time
    assert [r["run_id"] for r in webhook_runs(hooked)] == [run_a, run_b]
    assert gate.reached() == 2
    health = client.get("/health").json()
    assert health["queue_length"] == 0 and health["last_run"]["id"] == run_b
    assert health["last_run"]["status"] == "succeeded"

    # The project's DuckDB file was rebuilt: configured volume, marts built by dbt.
    assert query(hooked, "select count(*) from raw.raw_users") == [(200,)]
    assert query(hooked, "select count(*) from main.user_metrics") == [(200,)]


@pytest.mark.slow  # a real run
def test_a_failed_run_reports_its_error_text(hooked, serve):
    gate = Gate(hooked)
    gate.fail(1)
    client = serve(hooked)

    answer = deliver(client, delivery="will-fail")
    done = wait_for_run(client, answer.json()["run_id"])

    assert done["status"] == "failed"
    assert "gate 1 failed on purpose" in done["error"]
    assert done["started_at"] and done["finished_at"] and done["seconds"] is not None
    assert client.get("/health").json()["last_run"]["status"] == "failed"
    [recorded] = webhook_runs(hooked)
    assert recorded["status"] == "failed" and recorded["run_id"] == done["id"]


@pytest.mark.slow  # a real run
def test_a_webhook_run_writes_its_log_file_and_history_entry(hooked, serve):
    Gate(hooked).open()
    client = serve(hooked)

    answer = deliver(client, push_payload(after="c" * 40), delivery="logged-1")
    done = wait_for_run(client, answer.json()["run_id"])

    assert done["status"] == "succeeded", done["error"]
    path = find_log(load_settings(hooked / "sbdk_config.json"), done["id"])
    assert path is not None, sorted((hooked / ".sbdk").rglob("*.log"))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert all(f" run={done['id']} " in line for line in lines)
    # The first line names the pushes the run builds, the last one how it ended.
    assert "run_started" in lines[0] and "sbdk webhooks" in lines[0]
    assert "logged-1" in lines[0] and "c" * 40 in lines[0] and "pushes=1" in lines[0]
    assert "run_finished" in lines[-1] and "status=succeeded" in lines[-1]
    [recorded] = webhook_runs(hooked)
    assert (recorded["run_id"], recorded["status"]) == (done["id"], "succeeded")

    # GitHub redelivering the push after a restart: its run succeeded, so the first answer again.
    serve.stop(client)
    restarted = serve(hooked)
    again = deliver(restarted, push_payload(after="c" * 40), delivery="logged-1")
    assert (again.status_code, again.json()) == (202, answer.json())
    assert restarted.get("/health").json()["queued"] is None
    assert len(webhook_runs(hooked)) == 1


def test_a_run_names_its_pushes_in_its_log_context_within_a_command_line_argument():
    from sbdk.server.runs import LOGGED_DELIVERIES, RunRecord

    burst = RunRecord(id="r1", deliveries=[f"d-{n}" for n in range(500)], commits=["a" * 40, "b\nc"])

    context = burst.log_context()

    assert context["pushes"] == 500
    assert context["deliveries"] == [f"d-{n}" for n in range(LOGGED_DELIVERIES)]
    assert context["commit"] == "b?c"  # printable: the value came from the network
    assert RunRecord(id="r2").log_context() == {"pushes": 0, "deliveries": []}


@pytest.mark.slow  # a real run
def test_a_run_waits_for_the_project_lock_held_by_sbdk_dev(hooked, serve, caplog):
    from sbdk.run.lock import run_lock

    caplog.set_level(logging.INFO, logger="sbdk.server")
    gate = Gate(hooked)
    gate.fail(1)
    client = serve(hooked)
    with run_lock(hooked / ".sbdk" / "run.lock", "sbdk dev"):
        run_id = deliver(client).json()["run_id"]
        deadline = time.monotonic() + 60
        while not any("waits" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert client.get(f"/runs/{run_id}").json()["status"] == "queued"
        assert gate.reached() == 0
    assert wait_for_run(client, run_id)["status"] == "failed"  # it ran (and failed at the gate)
    assert gate.reached() == 1
    waits = [r.getMessage() for r in caplog.records if "waits" in r.getMessage()]
    assert "`sbdk dev`" in waits[0]


@pytest.mark.parametrize(
    "signed",
    [
        False,  # no header
        "",
        "sha256=",
        "sha256=xyz",
        "sha1=" + "0" * 40,
        "sha256=" + "0" * 64,
        signature(b"another body"),
        signature(json.dumps(push_payload()).encode(), secret="not-the-secret"),
        signature(json.dumps(push_payload()).encode()) + "00",
    ],
    ids=["missing", "empty", "no-digest", "not-hex", "sha1", "zeros", "other-body", "other-secret", "too-long"],
)
def test_missing_malformed_or_wrong_signatures_are_401_and_run_nothing(hooked, serve, signed):
    client = serve(hooked)

    answer = deliver(client, signed=signed, delivery="d-1")

    assert answer.status_code == 401
    assert "signature" in answer.json()["detail"].lower()
    nothing_ran(client, hooked)
    # The refusal is not remembered: the genuine delivery with that id is still accepted later.
    assert deliver(client, push_payload("other"), delivery="d-1").status_code == 202


def test_signature_is_checked_before_the_body_is_parsed(hooked, serve):
    client = serve(hooked)

    assert deliver(client, body=b"{not json", signed=signature(b"{not json", "wrong")).status_code == 401
    assert deliver(client, body=b"{not json").status_code == 400
    # The digest is hex: GitHub sends it lower-case; upper-case is the same signature.
    body = json.dumps(push_payload("feature")).encode()
    upper = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest().upper()
    assert deliver(client, body=body, signed=upper).status_code == 202
    nothing_ran(client, hooked)


def test_without_a_secret_every_delivery_is_503_with_the_fix(project, serve):
    client = serve(project)

    for signed in (True, False):
        answer = deliver(client, signed=signed, delivery="d-1")
        assert answer.status_code == 503
        assert "SBDK_WEBHOOK_SECRET" in answer.json()["detail"] and ".env" in answer.json()["detail"]
    assert client.get("/health").json()["webhook_secret_configured"] is False
    nothing_ran(client, project)


def test_ping_and_deliveries_that_start_nothing(hooked, serve):
    client = serve(hooked)

    ping = deliver(client, {"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping")
    assert (ping.status_code, ping.json()["status"]) == (200, "pong")
    cases = {
        "other branch": (push_payload("feature/x"), "push", "'feature/x'"),
        "tag push": (push_payload(ref="refs/tags/v1.0"), "push", "Tag push (v1.0)"),
        "branch deletion": (push_payload("main", deleted=True, after="0" * 40), "push", "deleted"),
        "other event": ({"action": "opened"}, "issues", "'issues'"),
    }
    for name, (payload, event, reason) in cases.items():
        answer = deliver(client, payload, event=event)
        assert answer.status_code == 202, name
        assert answer.json()["status"] == "ignored", name
        assert reason in answer.json()["reason"], (name, answer.json())
    # GitHub's other content type: the JSON is the form's `payload` field.
    from urllib.parse import urlencode

    form = urlencode({"payload": json.dumps(push_payload("feature"))}).encode()
    answer = deliver(client, body=form, content_type="application/x-www-form-urlencoded")
    assert (answer.status_code, answer.json()["status"]) == (202, "ignored")
    nothing_ran(client, hooked)


@pytest.mark.parametrize(
    "body, event",
    [(b"{not json", "push"), (b"[1, 2]", "push"), (b'{"after": "abc"}', "push"), (b"\xff\xfe", "ping"), (b"{}", None)],
    ids=["not-json", "not-an-object", "push-without-ref", "not-utf8", "no-event-header"],
)
def test_malformed_deliveries_are_400_and_run_nothing(hooked, serve, body, event):
    client = serve(hooked)

    answer = deliver(client, body=body, event=event)

    assert answer.status_code == 400
    assert answer.json()["detail"]
    nothing_ran(client, hooked)


def test_bodies_over_25_mb_are_413(hooked, serve):
    client = serve(hooked)
    body = b'{"ref": "refs/heads/main", "pad": "' + b"x" * (25 * 1024 * 1024) + b'"}'

    answer = deliver(client, body=body)

    assert answer.status_code == 413
    nothing_ran(client, hooked)


def raw_request(base: str, head: str, chunks: Iterable[bytes] = ()) -> bytes:
    """Send a raw HTTP/1.1 request; return what the server answered (sending stops when it answers)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(head.encode())
        sock.setblocking(False)
        for chunk in chunks:
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break  # answered before the body was sent whole
            except BlockingIOError:
                pass
            sock.setblocking(True)
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.setblocking(False)
        sock.setblocking(True)
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        return answer


@pytest.mark.slow  # a real server under uvicorn
def test_real_server_refuses_oversized_bodies_without_reading_them(hooked):
    with serve_project(hooked, before_stop=Gate(hooked).open) as base:
        # A declared size over the limit: answered before a single byte of the body is sent.
        declared = raw_request(
            base,
            "POST /webhook/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\n"
            f"X-Hub-Signature-256: {signature(b'')}\r\nContent-Length: {26 * 1024 * 1024}\r\n\r\n",
        )
        assert declared.startswith(b"HTTP/1.1 413 ")

        # No size declared (chunked): cut off once past the limit, long before the 40 MB offered.
        sent = []

        def chunks() -> Iterator[bytes]:
            piece = b"x" * (1024 * 1024)
            for _ in range(40):
                sent.append(len(piece))
                yield b"%x\r\n%s\r\n" % (len(piece), piece)
            yield b"0\r\n\r\n"

        chunked = raw_request(
            base,
            "POST /webhook/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\n"
            f"X-Hub-Signature-256: {signature(b'')}\r\nTransfer-Encoding: chunked\r\n\r\n",
            chunks(),
        )
        assert chunked.startswith(b"HTTP/1.1 413 ")
        assert len(sent) < 40

        with httpx.Client(base_url=base) as client:
            health = client.get("/health").json()
            assert health["last_run"] is None and health["queue_length"] == 0
            assert deliver(client, {"zen": "ok"}, event="ping").status_code == 200


def test_registrations_and_usage_events_survive_a_restart(project, serve):
    client = serve(project)
    registered = client.post("/register", json={"project": "demo", "sbdk_version": "0.1.0", "email": "me@x.org"})
    assert registered.status_code == 201
    uuid = registered.json()["uuid"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", uuid)
    first = client.post("/track/usage", json={"uuid": uuid, "event": "dev", "properties": {"rows": 1600}})
    assert first.status_code == 201 and first.json()["status"] == "stored"
    unknown = client.post("/track/usage", json={"uuid": "00000000-0000-4000-8000-000000000000", "event": "dev"})
    assert unknown.status_code == 404
    invalid = [
        ("/register", {}),
        ("/register", {"project": ""}),
        ("/register", {"project": 5}),
        ("/track/usage", {"uuid": "not-a-uuid", "event": "dev"}),
        ("/track/usage", {"uuid": uuid}),
        ("/track/usage", {"uuid": uuid, "event": "has spaces"}),
        ("/track/usage", {"uuid": uuid, "event": "dev", "properties": [1]}),
        ("/track/usage", {"uuid": uuid, "event": "dev", "properties": {"x": "y" * 20_000}}),
    ]
    for path, body in invalid:
        assert client.post(path, json=body).status_code == 422, (path, body)
    malformed = client.post("/register", content=b"{not json", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 422
    too_big = client.post("/register", content=b"x" * 100_000, headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413
    serve.stop(client)

    restarted = serve(project)
    again = restarted.post("/track/usage", json={"uuid": uuid, "event": "start", "properties": {}})
    assert again.status_code == 201
    serve.stop(restarted)

    server_db = project / ".sbdk" / "server.duckdb"
    assert server_db.is_file() and not (project / "data" / "dev.duckdb").exists()
    con = duckdb.connect(str(server_db), read_only=True)
    try:
        registrations = con.execute("select uuid, project, sbdk_version from registrations").fetchall()
        events = con.execute("select event, properties, received_at from usage_events order by received_at").fetchall()
        columns = {r[0] for r in con.execute("select column_name from information_schema.columns").fetchall()}
    finally:
        con.close()
    assert registrations == [(uuid, "demo", "0.1.0")]
    assert [(e, json.loads(p)) for e, p, _ in events] == [("dev", {"rows": 1600}), ("start", {})]
    assert all(at is not None for _, _, at in events)
    assert not {"ip", "client", "host", "email", "user_agent", "address"} & columns


def test_a_redelivery_gets_its_first_answer_after_a_restart(hooked, serve):
    client = serve(hooked)
    first = deliver(client, push_payload("feature"), delivery="once")
    serve.stop(client)

    restarted = serve(hooked)
    # Same delivery id, now pointing at the watched branch: still the first answer, no run.
    again = deliver(restarted, push_payload("main"), delivery="once")

    assert (again.status_code, again.json()) == (first.status_code, first.json()) == (202, first.json())
    assert again.json()["status"] == "ignored"
    nothing_ran(restarted, hooked)


def test_health_and_unknown_runs(hooked, serve):
    edit_config(hooked, webhooks={"branch": "main", "cors_origins": []})
    client = serve(hooked)

    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "version": "0.1.0",
        "project": "demo",
        "branch": "main",
        "webhook_secret_configured": True,
        "running": None,
        "queued": None,
        "queue_length": 0,
        "last_run": None,
    }
    assert client.get("/runs/nope").status_code == 404


@pytest.mark.slow  # a real run
def test_watched_branch_comes_from_the_config(hooked, serve):
    edit_config(hooked, webhooks={"branch": "release", "cors_origins": []})
    Gate(hooked).fail(1)
    client = serve(hooked)

    assert deliver(client, push_payload("main")).json()["status"] == "ignored"
    answer = deliver(client, push_payload("release"))
    assert answer.json()["status"] == "queued"
    assert wait_for_run(client, answer.json()["run_id"])["status"] == "failed"  # the gate's


def test_cors_only_for_configured_origins(project, serve):
    preflight = {"Origin": "https://dash.example", "Access-Control-Request-Method": "POST"}
    default = serve(project)
    answer = default.options("/track/usage", headers=preflight)
    assert "access-control-allow-origin" not in answer.headers
    simple = default.get("/health", headers={"Origin": "https://dash.example"})
    assert "access-control-allow-origin" not in simple.headers
    serve.stop(default)

    edit_config(project, webhooks={"branch": "main", "cors_origins": ["https://dash.example"]})
    client = serve(project)
    allowed = client.options("/track/usage", headers=preflight)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://dash.example"
    other = client.options("/track/usage", headers={**preflight, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    assert (
        client.get("/health", headers={"Origin": "https://dash.example"}).headers["access-control-allow-origin"]
        == "https://dash.example"
    )


@pytest.mark.slow  # a real run
def test_the_secret_is_never_logged_or_returned(hooked, serve, caplog):
    caplog.set_level(logging.DEBUG)
    Gate(hooked).fail(1)
    client = serve(hooked)
    answers = [
        deliver(client, signed=False),
        deliver(client, secret="wrong"),
        deliver(client, body=b"{bad"),
        deliver(client, {"zen": "z"}, event="ping"),
        deliver(client, delivery="runs"),
        client.get("/health"),
    ]
    wait_for_run(client, answers[4].json()["run_id"])
    answers.append(client.get(f"/runs/{answers[4].json()['run_id']}"))

    assert all(SECRET not in a.text for a in answers)
    assert SECRET not in caplog.text
    assert SECRET not in repr(load_settings(hooked / "sbdk_config.json"))


def test_importing_the_server_package_imports_no_web_framework() -> None:
    code = (
        "import sys, sbdk.server, sbdk.server.app, sbdk.cli.webhooks, sbdk.ops.tracking; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# The command itself, as a user runs it: a real process, real signals.


class Served:
    """`sbdk webhooks --port 0` in its own process group, its output read line by line."""

    def __init__(self, root: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SBDK")}
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sbdk", "webhooks", "--port", "0", *args],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []  # read, not yet matched
        self.seen: list[str] = []  # everything read
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.url = ""

    def ready(self) -> None:
        self.url = self.expect(r"Listening on (http://\S+)").group(1)
        self.expect(r"^CORS origins: .* Records: ")  # the banner's last line

    def _read(self) -> None:
        for line in self.process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def expect(self, pattern: str, timeout: float = 120) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if match := re.search(pattern, line):
                    self.lines.remove(line)
                    return match
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} in:\n{self.output}") from None
            assert line is not None, f"process ended without {pattern!r}:\n{self.output}"
            self.lines.append(line)
            self.seen.append(line)

    @property
    def output(self) -> str:
        return "".join(self.seen)

    def finish(self, timeout: float = 120) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout}s:\n{self.output}") from None
        while (line := self._queue.get(timeout=10)) is not None:
            self.seen.append(line)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def process_group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def process_is_gone(pid: int, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


@pytest.mark.slow  # a real server process
def test_cli_sigterm_lets_the_current_run_finish_then_exits_leaving_nothing(hooked, served):
    gate = Gate(hooked)
    server = served(hooked)
    assert "Webhook secret: configured" in server.output
    for route in ("POST  ", "/webhook/github", "/register", "/track/usage", "/health", "/runs/{id}"):
        assert route in server.output
    with httpx.Client(base_url=server.url) as client:
        run_id = deliver(client, delivery="term").json()["run_id"]
        gate.wait(1)
        queued = deliver(client, push_payload(after="b" * 40), delivery="term-2").json()["run_id"]

    server.process.send_signal(signal.SIGTERM)
    server.expect(rf"run {queued} cancelled")
    server.expect(rf"waiting for run {run_id} to finish")
    assert server.process.poll() is None  # still there: the run holds it
    gate.fail(1)  # lets the run end (quickly, without dbt)

    assert server.finish() == 0
    assert re.search(rf"run {run_id} failed .*gate 1 failed on purpose", server.output)
    assert [(r["run_id"], r["status"]) for r in webhook_runs(hooked)] == [(run_id, "failed")]
    assert gate.reached() == 1
    assert process_group_is_gone(server.process.pid) and process_is_gone(gate.pid(1), timeout=0)
    assert SECRET not in server.output


@pytest.mark.slow  # a real server process
def test_cli_second_signal_interrupts_the_run(hooked, served):
    gate = Gate(hooked)
    server = served(hooked)
    with httpx.Client(base_url=server.url) as client:
        run_id = deliver(client, delivery="int").json()["run_id"]
    gate.wait(1)

    server.process.send_signal(signal.SIGINT)
    server.expect(rf"waiting for run {run_id} to finish")
    server.process.send_signal(signal.SIGINT)

    assert server.finish() == 130
    assert f"interrupting run {run_id}" in server.output
    assert f"run {run_id} failed" in server.output and "interrupted: the server was stopped" in server.output
    [recorded] = webhook_runs(hooked)
    # The history says how the run ended; the server's record (below) keeps its own failed status.
    assert (recorded["run_id"], recorded["status"]) == (run_id, "interrupted")
    assert "KeyboardInterrupt" in recorded["error"] or recorded["error"] == "interrupted"
    [(status, record)] = server_db(hooked, f"select status, record from runs where run_id = '{run_id}'")
    assert (status, json.loads(record)["error"]) == ("failed", "interrupted: the server was stopped during this run")
    assert json.loads(record)["server_stopped"] is True  # a redelivery of its push runs it again
    assert process_group_is_gone(server.process.pid) and process_is_gone(gate.pid(1), timeout=0)


@pytest.mark.slow  # a real server process
def test_a_run_does_not_outlive_a_killed_server(hooked, served):
    gate = Gate(hooked)
    server = served(hooked)
    with httpx.Client(base_url=server.url) as client:
        run_id = deliver(client, delivery="kill").json()["run_id"]
    gate.wait(1)
    assert gate.pid(1) != server.process.pid  # the run has a process of its own

    server.process.kill()
    server.process.wait()

    assert process_is_gone(gate.pid(1))  # it saw its server go and stopped as on Ctrl-C
    [recorded] = webhook_runs(hooked)
    assert (recorded["run_id"], recorded["status"]) == (run_id, "interrupted")  # as on Ctrl-C
    assert "KeyboardInterrupt" in recorded["error"] or recorded["error"] == "interrupted"


@pytest.mark.slow  # a real server process
def test_cli_without_a_secret_says_how_to_set_one(project, served):
    server = served(project)
    assert "Webhook secret: not configured" in server.output
    assert "SBDK_WEBHOOK_SECRET" in server.output

    with httpx.Client(base_url=server.url) as client:
        assert deliver(client).status_code == 503
    server.process.send_signal(signal.SIGINT)
    assert server.finish() == 0
    assert process_group_is_gone(server.process.pid)


@pytest.mark.slow  # a real server process
def test_cli_one_server_per_project(project, served):
    first = served(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBDK")}

    second = subprocess.run(
        [sys.executable, "-m", "sbdk", "webhooks", "--port", "0"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert second.returncode == 6  # ExitCode.LOCKED
    assert "server.duckdb is in use by another process" in second.stderr
    assert "Another `sbdk webhooks` probably serves this project" in second.stderr
    assert first.process.poll() is None


def test_cli_port_in_use_is_a_clear_error(project, cli):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = cli("webhooks", "--port", str(port), cwd=project)

    assert result.exit_code == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in result.output
    assert "--port" in result.output
