"""Notifications (issue #19, item 1): real runs, real HTTP to a receiver on 127.0.0.1 through Apprise's
json:// targets, and a target that accepts connections and never answers."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import edit_config

from sbdk.errors import PipelineError
from sbdk.notify import NotifyObserver, target_name
from sbdk.notify.events import Event, Outcome, run_events
from sbdk.notify.schema import ColumnChange, column_changes
from sbdk.notify.send import ANSWER_SECONDS, MissingVariable, fill
from sbdk.run.observers import RunObserver
from sbdk.run.results import DbtReport, NodeResult, RunReport, RunStatus
from sbdk.run.runlog import find_log
from sbdk.run.runner import RunPlan, run
from sbdk.settings import load_settings

FAILING_PIPELINE = "def generate(ctx):\n    raise RuntimeError('disk on fire')\n"
VISITS = "def generate(ctx):\n    yield [{{'visit_id': i, {page}}} for i in range(10)]\n"
FAILING_TEST = "select user_id from {{ ref('stg_users') }} where user_id <= 3\n"


class Receiver:
    """An HTTP server on a free loopback port, in a thread, keeping every POST's path and JSON body."""

    def __init__(self) -> None:
        posts: list[tuple[str, dict[str, Any]]] = []
        self.posts = posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int, seconds: float = 10.0) -> list[dict[str, Any]]:
        """The messages, once there are `count` of them (or `seconds` have passed)."""
        deadline = time.monotonic() + seconds
        while len(self.posts) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return [body for _path, body in self.posts]

    def settled(self, seconds: float = 1.5) -> list[dict[str, Any]]:
        """The messages, after `seconds` more for any late one to arrive."""
        time.sleep(seconds)
        return [body for _path, body in self.posts]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    yield receiving
    receiving.server.shutdown()
    receiving.server.server_close()


@pytest.fixture
def silent() -> Iterator[str]:
    """A json:// target that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"json://127.0.0.1:{sock.getsockname()[1]}/hook"
    sock.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def notify(root: Path, *targets: tuple[str, list[str]] | str) -> None:
    """Configure the targets: a URL (default events) or (URL, events)."""
    entries = [{"url": t} if isinstance(t, str) else {"url": t[0], "events": t[1]} for t in targets]
    edit_config(root, notify=entries)


def load_only(root: Path, **options: Any) -> RunReport:
    return run(load_settings(root / "sbdk_config.json"), RunPlan(dbt=False, **options))


def failing_load(root: Path) -> None:
    (root / "pipelines" / "broken.py").write_text(FAILING_PIPELINE)
    with pytest.raises(PipelineError):
        load_only(root)


def titles(messages: list[dict[str, Any]]) -> list[str]:
    return [m["title"] for m in messages]


# -- what a run announces (pure)


def report(status: RunStatus, *failed: tuple[str, str]) -> RunReport:
    nodes = tuple(NodeResult(f"x.{name}", name, kind, "fail", 0.1, message="boom") for kind, name in failed)
    dbt = DbtReport("build", success=not failed, nodes=nodes, seconds=1.0) if failed else None
    made = RunReport(run_id="r", trigger="sbdk start", dbt=dbt)
    if status is RunStatus.FAILED and not failed:
        made.error = "Pipeline broken.py failed"
    elif status not in (RunStatus.FAILED, RunStatus.SUCCEEDED):
        made.outcome = status
    return made


@pytest.mark.parametrize(
    ("last", "run_report", "events", "after"),
    [
        (None, report(RunStatus.SUCCEEDED), (Event.SUCCEEDED,), Event.SUCCEEDED),
        (None, report(RunStatus.FAILED), (Event.FAILED,), Event.FAILED),
        (Event.FAILED, report(RunStatus.FAILED), (), Event.FAILED),
        (Event.FAILED, report(RunStatus.SUCCEEDED), (Event.RECOVERED, Event.SUCCEEDED), Event.SUCCEEDED),
        (Event.SUCCEEDED, report(RunStatus.FAILED, ("test", "t1")), (Event.TESTS_FAILED,), Event.TESTS_FAILED),
        (Event.TESTS_FAILED, report(RunStatus.FAILED, ("test", "t2")), (), Event.TESTS_FAILED),
        (Event.TESTS_FAILED, report(RunStatus.FAILED, ("model", "m"), ("test", "t")), (Event.FAILED,), Event.FAILED),
        (Event.FAILED, report(RunStatus.INTERRUPTED), (), Event.FAILED),
        (Event.SUCCEEDED, report(RunStatus.REFUSED), (), Event.SUCCEEDED),
    ],
)
def test_what_a_run_announces(last, run_report, events, after) -> None:
    announced, outcome = run_events(Outcome(last), run_report)
    assert announced == events
    assert outcome.last is after


def test_column_changes_name_removed_retyped_and_added_columns() -> None:
    before = {"raw_a": {"id": "bigint", "name": "varchar", "age": "bigint"}, "raw_gone": {"x": "bigint"}}
    after = {"raw_a": {"id": "bigint", "age": "varchar", "city": "varchar"}, "raw_new": {"y": "bigint"}}
    changes = column_changes(before, after)
    assert [c.describe() for c in changes] == [
        "raw_a.name removed (varchar)",
        "raw_a.age retyped: bigint -> varchar",
        "raw_a.city added (varchar)",
        "raw_gone: table removed",
    ]
    assert column_changes(after, after) == ()
    assert ColumnChange("t", "c", None, "int").kind == "added"


def test_secrets_are_filled_in_and_targets_named_without_them() -> None:
    url = "json://${USER_NAME}:${PASSWORD}@hooks.example.com:8080/path/${TOKEN}?x=1"
    filled, used = fill(url, {"USER_NAME": "me", "PASSWORD": "pw", "TOKEN": "t0k", "OTHER": "x"})
    assert filled == "json://me:pw@hooks.example.com:8080/path/t0k?x=1"
    assert used == {"USER_NAME": "me", "PASSWORD": "pw", "TOKEN": "t0k"}
    assert target_name(url) == "json://hooks.example.com:8080"
    assert target_name("slack://${SLACK_TOKENS}") == "slack://${SLACK_TOKENS}"
    with pytest.raises(MissingVariable, match=r"\$\{TOKEN\} is set neither in the environment nor in .env"):
        fill(url, {"USER_NAME": "me", "PASSWORD": "pw"})


# -- real runs


def test_a_failing_run_sends_failed_with_stage_error_and_log(make_project, receiver: Receiver) -> None:
    root = make_project()
    notify(root, receiver.url(), (receiver.url("/only-successes"), ["succeeded"]))
    failing_load(root)

    (message,) = receiver.wait_for(1)
    assert message["title"] == "sbdk demo: run failed"
    assert message["type"] == "failure"
    body = message["message"]
    assert "(sbdk dev) failed after" in body
    assert "Stage: generate." in body
    assert "broken.py" in body and "RuntimeError: disk on fire" in body
    (run_id,) = [line.split()[1] for line in body.splitlines() if line.startswith("Run ")]
    log = find_log(load_settings(root / "sbdk_config.json"), run_id)
    assert log is not None and f"Log: {log}" in body
    # Each target gets only its events: the second asked for successes only.
    assert [path for path, _ in receiver.posts] == ["/hook"]


def test_a_recovery_sends_one_failed_then_one_recovered(make_project, receiver: Receiver) -> None:
    root = make_project()
    notify(root, receiver.url())
    assert load_only(root).success  # a success first: nothing to say (succeeded is not asked for)
    failing_load(root)
    (root / "pipelines" / "broken.py").unlink()
    assert load_only(root).success

    messages = receiver.wait_for(2)
    assert titles(receiver.settled()) == ["sbdk demo: run failed", "sbdk demo: recovered"]
    assert "It succeeded after 1 failed run." in messages[1]["message"]
    assert messages[1]["type"] == "success"


def test_ten_failures_in_a_row_send_one_message(make_project, receiver: Receiver) -> None:
    root = make_project()
    notify(root, receiver.url())
    for _ in range(10):
        failing_load(root)
    assert titles(receiver.settled()) == ["sbdk demo: run failed"]
    state = json.loads((root / ".sbdk" / "notify_state.json").read_text())
    assert state["last"] == "failed" and state["failed_runs"] == 10

    (root / "pipelines" / "broken.py").unlink()
    assert load_only(root).success
    messages = receiver.wait_for(2)
    assert titles(messages) == ["sbdk demo: run failed", "sbdk demo: recovered"]
    assert "It succeeded after 10 failed runs." in messages[1]["message"]


def test_interrupted_and_refused_runs_send_nothing(make_project, receiver: Receiver) -> None:
    from sbdk.errors import LockError
    from sbdk.run.lock import run_lock

    root = make_project()
    notify(root, (receiver.url(), ["failed", "succeeded"]))
    settings = load_settings(root / "sbdk_config.json")
    with run_lock(settings.paths.lock_file, "holder"), pytest.raises(LockError):
        run(settings, RunPlan(dbt=False))
    (root / "pipelines" / "stop.py").write_text("def generate(ctx):\n    raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        run(settings, RunPlan(dbt=False))
    assert receiver.settled(1.0) == []
    assert not (root / ".sbdk" / "notify_state.json").exists()


class WaitsForAMessage(RunObserver):
    """After the notifier in a run: in the `loaded` hook, whether a message has arrived by then."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.arrived_while_loaded: list[str] = []

    def loaded(self, run, load) -> None:
        self.arrived_while_loaded = titles(self.receiver.wait_for(1, seconds=5))


def test_a_changed_raw_schema_is_sent_right_after_the_load(make_project, receiver: Receiver) -> None:
    root = make_project()
    notify(root, (receiver.url(), ["schema_changed"]))
    visits = root / "pipelines" / "visits.py"
    visits.write_text(VISITS.format(page="'page': '/'"))
    assert load_only(root).success  # the first load is what later ones compare with

    visits.write_text(VISITS.format(page="'page': i"))
    settings = load_settings(root / "sbdk_config.json")
    probe = WaitsForAMessage(receiver)
    report = run(settings, RunPlan(dbt=False), observers=[NotifyObserver(settings), probe])

    # The message was there while the run was still in its `loaded` hook, before dbt would start.
    assert report.success
    assert probe.arrived_while_loaded == ["sbdk demo: raw schema changed"]
    (message,) = receiver.posts
    assert message[1]["type"] == "warning"
    assert "raw_visits.page retyped: varchar -> bigint" in message[1]["message"]

    visits.write_text(VISITS.format(page="'seen': True"))
    assert load_only(root, tables=frozenset({"raw_visits"})).success
    messages = receiver.wait_for(2)
    assert "raw_visits.page removed (bigint)" in messages[1]["message"]
    assert "raw_visits.seen added (boolean)" in messages[1]["message"]
    # Loads that change no column say nothing.
    assert load_only(root).success
    assert len(receiver.settled(1.0)) == 2


def test_a_target_that_never_answers_warns_and_slows_nothing(make_project, receiver: Receiver, silent: str) -> None:
    root = make_project()
    notify(root, (receiver.url(), ["succeeded"]))
    load_only(root)  # imports and first-load work out of the way
    started = time.monotonic()
    assert load_only(root).success
    normal = time.monotonic() - started

    notify(root, (silent, ["succeeded"]), (receiver.url(), ["succeeded"]))
    settings = load_settings(root / "sbdk_config.json")
    started = time.monotonic()
    report = run(settings, RunPlan(dbt=False), run_id="silenttarget")
    took = time.monotonic() - started

    assert report.success
    # Waiting for the silent target's answer would add its full read timeout (ANSWER_SECONDS); anything
    # less is the noise of a busy machine (2.2 s of it seen on a loaded CI run).
    assert took < normal + ANSWER_SECONDS, (took, normal)
    log = find_log(settings, "silenttarget")
    assert log is not None
    warnings = [line for line in log.read_text().splitlines() if " WARNING " in line]
    assert any(f"{target_name(silent)} did not answer within" in line for line in warnings), warnings
    # The other target got its message all the same.
    assert len(receiver.wait_for(3)) == 3


def test_a_secret_comes_from_dotenv_and_is_never_shown(make_project, receiver: Receiver, closed_port, cli) -> None:
    root = make_project()
    secret = "s3cr3t-Token-4711"
    (root / ".env").write_text(f"HOOK_TOKEN={secret}\n")
    refused = f"json://127.0.0.1:{closed_port}/hooks/${{HOOK_TOKEN}}"
    notify(
        root,
        (receiver.url("/hooks/${HOOK_TOKEN}"), ["succeeded"]),
        (refused, ["succeeded"]),
        ("json://127.0.0.1:9/${NOT_SET_ANYWHERE}", ["succeeded"]),
    )

    result = cli("dev", "--pipelines-only", cwd=root)

    assert result.exit_code == 0, result.output
    assert [path for path, _ in receiver.posts] == [f"/hooks/{secret}"]
    output = result.stdout + result.stderr
    said = " ".join(output.split())
    assert "${NOT_SET_ANYWHERE} is set neither in the environment nor in .env" in said
    assert f"json://127.0.0.1:{closed_port} failed" in said
    (log,) = (root / "logs").glob("*.log")
    assert "NOT_SET_ANYWHERE" in log.read_text() and f"127.0.0.1:{closed_port} failed" in log.read_text()
    written = [p.read_text(errors="replace") for p in (root / ".sbdk").rglob("*") if p.is_file()]
    for text in [output, log.read_text(), *written]:
        assert secret not in text

    # The environment wins over .env, as for settings.
    edit_config(root, notify=[{"url": receiver.url("/hooks/${HOOK_TOKEN}"), "events": ["succeeded"]}])
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HOOK_TOKEN", "from-the-environment")
        assert load_only(root).success
    assert receiver.wait_for(2)
    assert receiver.posts[1][0] == "/hooks/from-the-environment"


def test_notify_test_reports_each_target(make_project, receiver: Receiver, closed_port, cli) -> None:
    root = make_project()
    (root / ".env").write_text("HOOK_TOKEN=t0p-s3cret\n")
    notify(root, (receiver.url("/a/${HOOK_TOKEN}"), ["failed", "recovered"]), f"json://127.0.0.1:{closed_port}/b")

    listed = cli("notify", cwd=root)
    assert listed.exit_code == 0, listed.output
    assert f"json://127.0.0.1:{receiver.port}" in listed.stdout and "failed, recovered\n" in listed.stdout
    assert receiver.posts == []

    result = cli("notify", "--test", cwd=root)
    assert result.exit_code == 1, result.output
    assert f"ok      json://127.0.0.1:{receiver.port}\n" in result.stdout
    assert f"failed  json://127.0.0.1:{closed_port}: A Connection error occurred" in result.stdout
    assert "t0p-s3cret" not in result.output
    ((path, message),) = receiver.posts
    assert path == "/a/t0p-s3cret"
    assert message["title"] == "sbdk demo: test message"
    assert "This target is sent: failed, recovered." in message["message"]

    notify(root, receiver.url())
    assert cli("notify", "--test", cwd=root).exit_code == 0
    assert len(receiver.wait_for(2)) == 2


def test_notify_without_targets_says_how_to_add_one(project: Path, cli) -> None:
    listed = cli("notify", cwd=project)
    assert listed.exit_code == 0 and "No notification targets" in listed.stdout
    tested = cli("notify", "--test", cwd=project)
    assert tested.exit_code == 3
    assert "Nothing to test" in tested.stderr and '"notify" list' in tested.stderr


def modules_after_a_run(root: Path) -> set[str]:
    code = textwrap.dedent(
        f"""
        import json, sys
        from sbdk.run.runner import RunPlan, run
        from sbdk.settings import load_settings

        assert run(load_settings({str(root / "sbdk_config.json")!r}), RunPlan(dbt=False)).success
        print(json.dumps(sorted(sys.modules)))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_apprise_is_imported_only_to_send(make_project: Callable[..., Path], receiver: Receiver) -> None:
    unconfigured = modules_after_a_run(make_project("plain"))
    assert "apprise" not in unconfigured and "sbdk.notify" not in unconfigured

    configured = make_project("configured")
    notify(configured, receiver.url())
    # Configured, with nothing to send (a success, and "succeeded" not asked for): no Apprise either.
    assert "apprise" not in modules_after_a_run(configured)


# -- with dbt


@pytest.mark.slow
def test_a_failing_data_test_sends_tests_failed(project_copy: Path, receiver: Receiver) -> None:
    (project_copy / "dbt" / "tests" / "no_early_users.sql").write_text(FAILING_TEST)
    notify(project_copy, (receiver.url("/tests"), ["tests_failed"]), (receiver.url("/errors"), ["failed"]))
    settings = load_settings(project_copy / "sbdk_config.json")

    report = run(settings, RunPlan(pipelines=False, select=("stg_users", "no_early_users")))

    assert not report.success
    (message,) = receiver.wait_for(1)
    assert message["title"] == "sbdk demo: data tests failed"
    body = message["message"]
    ran = report.dbt.counts().tests_passed + 1
    assert f"1 of {ran} data tests failed:" in body
    assert "- no_early_users: Got 3 results, configured to fail if != 0" in body
    receiver.settled(1.0)
    assert [path for path, _ in receiver.posts] == ["/tests"]


@pytest.mark.slow
def test_a_removed_column_is_announced_before_dbt_fails_on_it(project_copy: Path, receiver: Receiver) -> None:
    notify(project_copy, receiver.url())
    assert load_only(project_copy).success  # the columns later loads are compared with
    users = project_copy / "pipelines" / "users.py"
    users.write_text(
        users.read_text().replace(
            "    yield from users.generate(ctx.world)",
            "    for batch in users.generate(ctx.world):\n"
            "        yield batch.select([name for name in batch.schema.names if name != 'city'])",
        )
    )

    report = run(load_settings(project_copy / "sbdk_config.json"), RunPlan())

    assert not report.success  # stg_users selects city
    messages = receiver.wait_for(2)
    assert titles(messages) == ["sbdk demo: raw schema changed", "sbdk demo: run failed"]
    assert "raw_users.city removed (varchar)" in messages[0]["message"]
    assert "Stage: dbt." in messages[1]["message"] and "model stg_users error:" in messages[1]["message"]
