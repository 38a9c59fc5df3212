"""Issue #14, the server: pushes lost across a restart, 500s on hostile bodies, cross-origin writes to
the tracking endpoints, the repository's default branch, a bind to an address of another machine and
headers echoed whole. Each problem as it was seen (real HTTP to the real app, real signals to a real
`sbdk webhooks`), then the rules behind the fixes one by one.
"""

from __future__ import annotations

import logging
import re
import signal
import socket
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from test_webhooks import (
    GATE_PIPELINE,
    SECRET,
    Gate,
    deliver,
    push_payload,
    signature,
    wait_for_run,
    webhook_runs,
)
from tests_support import serve_project, server_db

from sbdk.run.lock import run_lock
from sbdk.server import strictjson
from sbdk.server.github import DEFAULT_BRANCH, decide
from sbdk.server.runs import CANCELLED, INTERRUPTED, UNFINISHED, never_finished
from sbdk.settings import load_settings

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def hooked(project: Path) -> Path:
    """A project with a webhook secret in its .env and the gate pipeline (tests/test_webhooks.py)."""
    (project / ".env").write_text(f"SBDK_WEBHOOK_SECRET={SECRET}\n")
    (project / "pipelines" / "gate.py").write_text(GATE_PIPELINE)
    return project


def holding_the_run_lock(root: Path):
    """The project's run lock, held as `sbdk dev` holds it: the server's runs wait in its queue."""
    return run_lock(root / ".sbdk" / "run.lock", "sbdk dev")


def wait_for_log(caplog: pytest.LogCaptureFixture, text: str, count: int = 1, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while sum(text in r.getMessage() for r in caplog.records) < count:
        assert time.monotonic() < deadline, f"never logged {text!r} {count} time(s):\n{caplog.text}"
        time.sleep(0.02)


# 5. A push answered 202 is not lost when the server stops or is killed.


@pytest.mark.slow  # real server processes and a real run
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_push_whose_run_never_ran_runs_when_github_redelivers_it(hooked, served, stop):
    gate = Gate(hooked)
    gate.fail(1)  # the run that finally happens ends at the gate, quickly and visibly
    with holding_the_run_lock(hooked):
        server = served(hooked)
        with httpx.Client(base_url=server.url) as client:
            first = deliver(client, push_payload(after="1" * 40), delivery="lost-1")
        assert (first.status_code, first.json()["status"]) == (202, "queued")
        lost = first.json()["run_id"]
        if stop == signal.SIGKILL:
            server.kill()  # right after the 202
        else:
            server.process.send_signal(stop)
            assert server.finish() == 0
            assert f"run {lost} cancelled" in server.output

    restarted = served(hooked)
    with httpx.Client(base_url=restarted.url) as client:
        record = client.get(f"/runs/{lost}")
        assert record.status_code == 200  # it was on disk before the 202
        assert (record.json()["status"], record.json()["server_stopped"]) == ("failed", True)
        assert record.json()["finished_at"]  # a failed run always has an end time
        assert record.json()["deliveries"] == ["lost-1"]

        # GitHub's "Redeliver": the push gets a new run, which runs.
        again = deliver(client, push_payload(after="1" * 40), delivery="lost-1")
        assert (again.status_code, again.json()["status"]) == (202, "queued")
        rerun = again.json()["run_id"]
        assert rerun != lost
        done = wait_for_run(client, rerun)
        assert done["status"] == "failed" and "gate 1 failed on purpose" in done["error"]
        assert done["server_stopped"] is False

        # That run failed by its own error: redelivered once more, the push gets that answer again.
        once_more = deliver(client, push_payload(after="1" * 40), delivery="lost-1")
        assert (once_more.status_code, once_more.json()) == (202, again.json())
        assert client.get("/health").json()["queued"] is None
    assert [r["run_id"] for r in webhook_runs(hooked)] == [rerun]
    assert gate.reached() == 1
    restarted.expect(rf"redelivery of a push whose run {lost} never finished: handled again")


def test_a_202_is_sent_once_its_run_is_on_disk(hooked, monkeypatch):
    from sbdk.server import create_app
    from sbdk.server.store import ServerStore

    write = ServerStore._write

    def slow_write(self, statements):
        time.sleep(0.3)  # a slow disk: the answer must wait for the record, not race it
        return write(self, statements)

    monkeypatch.setattr(ServerStore, "_write", slow_write)
    with holding_the_run_lock(hooked), TestClient(create_app(load_settings(hooked / "sbdk_config.json"))) as client:
        answer = deliver(client, delivery="on-disk")
        assert (answer.status_code, answer.json()["status"]) == (202, "queued")
        run_id = answer.json()["run_id"]
        on_disk = client.app.state.sbdk.store.run(run_id)
        assert on_disk is not None and on_disk["deliveries"] == ["on-disk"]
        # A push that joins the waiting run is answered at once: that run is on disk already.
        joined = deliver(client, push_payload(after="2" * 40), delivery="joins")
        assert (joined.json()["run_id"], joined.json()["coalesced"]) == (run_id, True)


@pytest.mark.parametrize(
    "record, again",
    [
        (None, True),  # never written: the server was killed first
        ({"status": "failed", "error": CANCELLED, "server_stopped": True}, True),
        ({"status": "failed", "error": UNFINISHED, "server_stopped": True}, True),
        ({"status": "failed", "error": INTERRUPTED, "server_stopped": True}, True),
        ({"status": "failed", "error": INTERRUPTED}, True),  # a record written before server_stopped
        ({"status": "failed", "error": CANCELLED}, True),
        ({"status": "failed", "error": INTERRUPTED, "server_stopped": False}, False),  # not by the server
        ({"status": "failed", "error": "dbt test failed", "server_stopped": False}, False),
        ({"status": "failed", "error": "dbt test failed"}, False),
        ({"status": "queued", "server_stopped": False}, False),
        ({"status": "running", "server_stopped": False}, False),
        ({"status": "succeeded", "server_stopped": False}, False),
    ],
)
def test_which_runs_a_redelivered_push_runs_again(record, again):
    assert never_finished(record) is again


# 6. Hostile bodies are answered 400 or 422, never with a 500 and a traceback.


@pytest.mark.slow  # a real server under uvicorn
def test_hostile_bodies_are_400_or_422_and_log_no_traceback(hooked, caplog):
    caplog.set_level(logging.INFO)
    deep = b"[" * 10_000 + b"]" * 10_000
    huge = b'{"ref": "refs/heads/main", "n": ' + b"9" * 5_000 + b"}"
    with serve_project(hooked, before_stop=Gate(hooked).open) as base, httpx.Client(base_url=base) as client:
        for path in ("/register", "/track/usage"):
            answer = client.post(path, content=b'{"project": "caf\xe9"}', headers=JSON)  # latin-1, not UTF-8
            assert answer.status_code == 422, answer.text
            assert "not UTF-8 text" in answer.json()["detail"][0]["msg"]
        for body, why in ((deep, "nested too deeply"), (huge, "A number of 5,000 characters")):
            answer = deliver(client, body=body)  # signed: these get past the signature check
            assert answer.status_code == 400, answer.text
            assert why in answer.json()["detail"]

        # Clients that close the connection before their whole body is sent.
        host, port = base.removeprefix("http://").split(":")
        for path in ("/register", "/webhook/github"):
            head = (
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n"
                f"X-Hub-Signature-256: {signature(b'{}')}\r\nContent-Length: 1000\r\n\r\n"
            )
            with socket.create_connection((host, int(port)), timeout=30) as sock:
                sock.sendall(head.encode() + b'{"project": "de')
        wait_for_log(caplog, "the client left before sending its whole body", count=2)

        health = client.get("/health").json()
        assert (health["last_run"], health["queued"]) == (None, None)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
    assert "Traceback" not in caplog.text
    assert server_db(hooked, "select count(*) from registrations") == [(0,)]


@pytest.mark.parametrize(
    "text, why",
    [
        ("NaN", "NaN is not JSON"),
        ('{"x": Infinity}', "Infinity is not JSON"),
        ("[-Infinity]", "-Infinity is not JSON"),
        ('{"x": 1e999}', "1e999 is too large a number"),
        ("9" * 5_000, "A number of 5,000 characters"),
        ("0." + "1" * 5_000, "A number of 5,002 characters"),
        ("[" * 10_000 + "]" * 10_000, "nested too deeply"),
        ('"\\ud800"', "lone surrogate"),
        ('{"\\udc00": 1}', "lone surrogate"),
        ('{"x": ["a", "\\udbff\\u0041"]}', "lone surrogate"),
        ("{'x': 1}", "not valid JSON"),
        ("\ufeff{}", "not valid JSON"),
    ],
)
def test_strict_json_refuses_what_pythons_json_lets_through(text, why):
    with pytest.raises(strictjson.BadJson, match=re.escape(why)):
        strictjson.loads(text)


def test_strict_json_reads_json_as_json():
    assert strictjson.loads('{"emoji": "\\ud83d\\ude00", "path": "C:\\\\ud800", "n": -12, "x": 1.5e300}') == {
        "emoji": "\U0001f600",
        "path": "C:\\ud800",  # an escaped backslash, then text: not a surrogate
        "n": -12,
        "x": 1.5e300,
    }
    assert strictjson.loads("[" * 32 + "]" * 32, max_depth=32) == strictjson.loads("[" * 32 + "]" * 32)
    with pytest.raises(strictjson.BadJson, match="more than 32 levels"):
        strictjson.loads('{"a": ' + "[" * 32 + "]" * 32 + "}", max_depth=32)
    with pytest.raises(strictjson.BadJson, match="not UTF-8 text: invalid start byte at byte 10"):
        strictjson.parse(b'{"name": "\xff"}')


@pytest.mark.parametrize(
    "header, length",
    [("12", 12), (" 7 ", 7), ("9" * 5_000, 10**18), ("\u00b2", None), ("-1", None), ("", None), ("1_0", None)],
)
def test_a_content_length_is_ascii_digits_and_never_too_long_for_int(header, length):
    from sbdk.server.github import content_length

    assert content_length(header) == length


# 7. The tracking endpoints take JSON only: a web page cannot write to them without a preflight.


@pytest.mark.slow  # a real server under uvicorn
def test_tracking_takes_only_json_with_finite_numbers(project):
    body = b'{"project": "from a web page"}'
    with serve_project(project) as base, httpx.Client(base_url=base) as client:
        for path in ("/register", "/track/usage"):
            for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
                answer = client.post(path, content=body, headers={"Content-Type": content_type})
                assert answer.status_code == 415, (path, content_type)
                assert "Content-Type: application/json" in answer.json()["detail"]
                assert repr(content_type) in answer.json()["detail"]
            bare = client.post(path, content=body)  # no Content-Type at all
            assert (bare.status_code, "none was sent" in bare.json()["detail"]) == (415, True)

        uuid = client.post("/register", json={"project": "demo"}).json()["uuid"]
        named = client.post(
            "/register", content=b'{"project": "demo"}', headers={"Content-Type": "Application/JSON; charset=utf-8"}
        )
        assert named.status_code == 201
        for number in ("NaN", "Infinity", "-Infinity", "1e999"):
            sent = f'{{"uuid": "{uuid}", "event": "dev", "properties": {{"x": {number}}}}}'
            answer = client.post("/track/usage", content=sent, headers=JSON)
            assert answer.status_code == 422, number
            assert "finite" in answer.json()["detail"][0]["msg"]
        assert (
            client.post("/track/usage", json={"uuid": uuid, "event": "dev", "properties": {"x": 1.5}}).status_code
            == 201
        )

    assert server_db(project, "select properties from usage_events") == [('{"x": 1.5}',)]
    assert server_db(project, "select count(*) from registrations") == [(2,)]


def test_an_invalid_body_is_not_echoed_back(project):
    from sbdk.server import create_app

    with TestClient(create_app(load_settings(project / "sbdk_config.json"))) as client:
        answer = client.post("/register", json={"project": "x" * 50_000})

    assert answer.status_code == 422
    assert [(e["loc"], e["type"]) for e in answer.json()["detail"]] == [(["project"], "string_too_long")]
    assert len(answer.content) < 500


# 8. The repository's default branch; a bind to another machine's address; headers not echoed whole.


def without_branch(root: Path):
    """The settings of a project whose config sets no webhooks.branch."""
    settings = load_settings(root / "sbdk_config.json")
    return replace(settings, webhooks=replace(settings.webhooks, branch=None))


def master_push(branch: str = "master", **repository) -> dict:
    payload = push_payload(branch)
    payload["repository"] = {"full_name": "someone/demo", "default_branch": "master", **repository}
    return payload


def test_without_a_configured_branch_pushes_to_the_repositorys_default_branch_run(hooked):
    from sbdk.server import create_app

    with holding_the_run_lock(hooked), TestClient(create_app(without_branch(hooked))) as client:
        health = client.get("/health").json()
        assert health["branch"] == DEFAULT_BRANCH == "the repository's default branch"
        pong = deliver(client, {"zen": "z", "repository": {"default_branch": "master"}}, event="ping")
        assert pong.json() == {"status": "pong", "branch": "master"}

        main = deliver(client, master_push("main"))
        assert (main.status_code, main.json()["status"]) == (202, "ignored")
        assert main.json()["reason"] == (
            "Push to branch 'main': this server rebuilds on pushes to the repository's default branch ('master')."
        )
        queued = deliver(client, master_push("master"), delivery="to-master")
        assert (queued.status_code, queued.json()["status"]) == (202, "queued")
        assert client.get(f"/runs/{queued.json()['run_id']}").json()["status"] == "queued"  # held by the lock

        unnamed = push_payload("master")
        del unnamed["repository"]
        answer = deliver(client, unnamed)
        assert answer.json()["status"] == "ignored" and "set webhooks.branch" in answer.json()["reason"]
    assert webhook_runs(hooked) == []


@pytest.mark.parametrize(
    "configured, pushed, default, runs",
    [
        (None, "master", "master", True),
        (None, "main", "master", False),
        (None, "main", "main", True),
        (None, "main", None, False),  # the delivery names no default branch
        (None, "main", "", False),
        ("main", "main", "master", True),  # a configured branch wins
        ("main", "master", "master", False),
        ("release", "release", None, True),
    ],
)
def test_the_watched_branch(configured, pushed, default, runs):
    payload = push_payload(pushed)
    payload["repository"] = {} if default is None else {"default_branch": default}

    assert decide("push", payload, configured).run is runs


def test_the_banner_names_the_default_branch_when_none_is_configured(hooked, capsys):
    from sbdk.cli.webhooks import _banner

    unset = without_branch(hooked)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        _banner(unset, sock, "127.0.0.1")
        _banner(replace(unset, webhooks=replace(unset.webhooks, branch="release")), sock, "127.0.0.1")

    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Webhook secret")]
    assert lines == [
        "Webhook secret: configured. Signed pushes to the repository's default branch rebuild the project.",
        "Webhook secret: configured. Signed pushes to branch release rebuild the project.",
    ]


def test_cli_an_address_of_another_machine_is_not_called_a_port_in_use(project, cli):
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of this machine.
    result = cli("webhooks", "--host", "192.0.2.1", "--port", "0", cwd=project)

    assert result.exit_code == 1
    assert "Cannot listen on 192.0.2.1:0" in result.output
    assert "192.0.2.1 is not an address of this machine" in result.output
    assert "Another program uses that port" not in result.output


@pytest.mark.slow  # a real server under uvicorn
def test_no_header_is_echoed_whole_in_answers_or_logs(hooked, caplog):
    caplog.set_level(logging.DEBUG, logger="sbdk.server")
    long = "x" * 15_000
    with serve_project(hooked) as base, httpx.Client(base_url=base) as client:
        ignored = deliver(client, {"zen": "z"}, event=long)
        assert (ignored.status_code, ignored.json()["status"]) == (202, "ignored")
        assert "'" + "x" * 100 + "...'" in ignored.json()["reason"]
        refused = deliver(client, push_payload(), delivery=long)
        assert refused.status_code == 400 and "X-GitHub-Delivery" in refused.json()["detail"]
        unknown = client.get("/runs/" + long)
        assert unknown.status_code == 404
        for answer in (ignored, refused, unknown):
            assert len(answer.content) < 400, answer.text
        assert client.get("/health").json()["queued"] is None
    logged = [r.getMessage() for r in caplog.records if r.name == "sbdk.server"]
    assert logged and max(len(line) for line in logged) < 400
    assert webhook_runs(hooked) == []


def test_a_delivery_id_is_a_short_printable_string(hooked):
    from sbdk.server import create_app

    with TestClient(create_app(load_settings(hooked / "sbdk_config.json"))) as client:
        for bad in ("x" * 101, "tab\there"):
            answer = deliver(client, push_payload("feature"), delivery=bad)
            assert answer.status_code == 400, bad
            assert "at most 100 printable ASCII characters" in answer.json()["detail"]
        uuid = "72d3162e-cc78-11e3-81ab-4c9367dc0958"  # GitHub's kind
        assert deliver(client, push_payload("feature"), delivery=uuid).json()["status"] == "ignored"
        assert client.get("/health").json()["queued"] is None
