"""`sbdk mcp` (issue #18) as an agent meets it: the `mcp` SDK's own client starts the real command over
stdio, in a project built by a real `sbdk dev`, and calls its tools. Any stray line on stdout would
break the protocol, so every test also checks that nothing but MCP is written there."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from helpers import query, raw_checksums
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, LoggingMessageNotificationParams

pytestmark = pytest.mark.slow

SBDK = str(Path(sys.executable).with_name("sbdk"))
READ_TOOLS = {
    "overview",
    "list_models",
    "list_sources",
    "describe",
    "lineage",
    "runs",
    "run_details",
    "failures",
    "query",
}
T = TypeVar("T")
Body = Callable[[ClientSession], Awaitable[T]]


class Agent:
    """`agent(root, body, *args)` starts `sbdk mcp *args` in `root` with the SDK's stdio client, runs
    `await body(session)` on an initialized session and stops the server; returns what `body` returned.
    Keeps the log messages the server sent and its stderr."""

    def __init__(self, stderr: Path) -> None:
        self.stderr = stderr
        self.logged: list[LoggingMessageNotificationParams] = []
        # Lines on the server's stdout that are not MCP messages (the SDK's client skips them silently).
        self.strays: list[Exception] = []

    def __call__(self, root: Path, body: Body[T], *args: str) -> T:
        result = anyio.run(self._session, root, body, args)
        assert self.strays == [], self.strays
        return result

    async def _session(self, root: Path, body: Body[T], args: tuple[str, ...]) -> T:
        params = StdioServerParameters(command=SBDK, args=["mcp", *args], cwd=root)
        with anyio.fail_after(240), self.stderr.open("a") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(
                    read, write, logging_callback=self._on_log, message_handler=self._on_message
                ) as session:
                    await session.initialize()
                    return await body(session)

    async def _on_log(self, params: LoggingMessageNotificationParams) -> None:
        self.logged.append(params)

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            self.strays.append(message)


@pytest.fixture
def mcp(tmp_path: Path) -> Iterator[Agent]:
    agent = Agent(tmp_path / "sbdk-mcp.stderr")
    yield agent
    if agent.stderr.exists():  # shown by pytest when the test failed
        print(agent.stderr.read_text())


def tool(tool_name: str, **arguments: Any) -> Body[CallToolResult]:
    """A body that calls one tool."""

    async def body(session: ClientSession) -> CallToolResult:
        return await session.call_tool(tool_name, arguments)

    return body


def answer(result: CallToolResult) -> dict[str, Any]:
    """The tool's structured answer, after checking it is not an error."""
    assert not result.isError, result.content
    assert result.structuredContent is not None
    return result.structuredContent


def error_text(result: CallToolResult) -> str:
    assert result.isError, result.structuredContent
    text = "".join(getattr(block, "text", "") for block in result.content)
    assert "Traceback" not in text and "Error executing tool" not in text, text
    return text


async def _tool_names(session: ClientSession) -> dict[str, str]:
    return {t.name: t.description or "" for t in (await session.list_tools()).tools}


def test_read_only_server_lists_the_read_tools_and_no_build(built: Path, mcp: Agent) -> None:
    tools = mcp(built, _tool_names)
    assert set(tools) == READ_TOOLS
    # Agents choose tools by their descriptions.
    assert all(len(description) > 40 for description in tools.values()), tools


def test_describe_a_model_gives_columns_with_types_tests_and_sql(built: Path, mcp: Agent) -> None:
    node = answer(mcp(built, tool("describe", name="daily_kpis")))
    assert node["id"] == "model.demo.daily_kpis"
    assert node["relation"] == {"schema": "main", "name": "daily_kpis"}
    columns = {c["name"]: c for c in node["columns"]}
    assert columns["activity_date"]["type"] == "DATE"
    assert columns["activity_date"]["description"]
    assert all(c["type"] for c in node["columns"]), node["columns"]
    assert node["tests"] and {t["status"] for t in node["tests"]} == {"pass"}
    assert "ref(" in node["raw_sql"]
    assert node["compiled_sql"] and "{{" not in node["compiled_sql"] and "ref(" not in node["compiled_sql"]
    assert node["rows"] == query(built, "select count(*) from main.daily_kpis")[0][0]


def test_describe_accepts_a_unique_id_and_a_source_name(built: Path, mcp: Agent) -> None:
    async def body(session: ClientSession) -> list[CallToolResult]:
        return [
            await session.call_tool("describe", {"name": "model.demo.stg_orders"}),
            await session.call_tool("describe", {"name": "raw.raw_orders"}),
        ]

    model, source = (answer(result) for result in mcp(built, body))
    assert model["name"] == "stg_orders"
    assert source["id"] == "source.demo.raw.raw_orders" and source["resource_type"] == "source"


def test_lineage_upstream_of_a_mart_reaches_the_raw_sources(built: Path, mcp: Agent) -> None:
    async def body(session: ClientSession) -> list[CallToolResult]:
        return [
            await session.call_tool("lineage", {"name": "daily_kpis", "direction": "upstream"}),
            await session.call_tool("lineage", {"name": "daily_kpis", "direction": "upstream", "depth": 1}),
            await session.call_tool("lineage", {"name": "raw.raw_events", "direction": "downstream"}),
        ]

    upstream, parents, downstream = (answer(result) for result in mcp(built, body))
    ids = {n["id"] for n in upstream["upstream"]}
    assert {"source.demo.raw.raw_events", "source.demo.raw.raw_orders", "model.demo.stg_orders"} <= ids
    assert {n["depth"] for n in parents["upstream"]} == {1}
    assert {n["id"] for n in parents["upstream"]} < ids
    assert "model.demo.daily_kpis" in {n["id"] for n in downstream["downstream"]}


def test_query_returns_rows_up_to_the_cap_and_stops_at_the_timeout(built: Path, mcp: Agent) -> None:
    async def body(session: ClientSession) -> list[CallToolResult]:
        return [
            await session.call_tool("query", {"sql": "select * from raw.raw_users order by user_id", "limit": 5}),
            await session.call_tool("query", {"sql": "select * from range(5000)", "limit": 100_000}),
            await session.call_tool("query", {"sql": "select count(*) as n from raw.raw_users"}),
            await session.call_tool("query", {"sql": "select count(*) from range(100000000000)", "timeout": 0.5}),
        ]

    *results, endless = mcp(built, body)
    five, capped, counted = (answer(result) for result in results)
    assert "ran past its limit of 0.5 s" in error_text(endless)
    assert five["columns"][0] == "user_id" and five["types"][0] == "BIGINT"
    assert [row[0] for row in five["rows"]] == [1, 2, 3, 4, 5] and five["truncated"] is True
    assert capped["limit"] == 1000 and len(capped["rows"]) == 1000 and capped["truncated"] is True
    assert counted["rows"] == [[200]] and counted["truncated"] is False


def test_a_write_is_refused_and_the_data_is_unchanged(built: Path, mcp: Agent) -> None:
    before = raw_checksums(built)
    writes = [
        "delete from raw.raw_users",
        "create table main.pwned as select 1 as x",
        "update main.daily_kpis set new_users = 0",
    ]

    async def body(session: ClientSession) -> list[CallToolResult]:
        return [await session.call_tool("query", {"sql": sql}) for sql in writes]

    for sql, result in zip(writes, mcp(built, body)):
        assert "read-only" in error_text(result), sql
    assert raw_checksums(built) == before
    assert query(built, "select count(*) from information_schema.tables where table_name = 'pwned'") == [(0,)]
    assert query(built, "select min(new_users) + max(new_users) > 0 from main.daily_kpis") == [(True,)]


def test_an_unknown_model_is_a_clear_error_naming_close_matches(built: Path, mcp: Agent) -> None:
    async def body(session: ClientSession) -> list[CallToolResult]:
        return [
            await session.call_tool("describe", {"name": "daly_kpis"}),
            await session.call_tool("lineage", {"name": "user_metric"}),
        ]

    describe, lineage = (error_text(result) for result in mcp(built, body))
    assert "'daly_kpis'" in describe and "Did you mean daily_kpis" in describe
    assert "Did you mean user_metrics" in lineage


def test_run_history_shows_the_fixture_build(built: Path, mcp: Agent) -> None:
    async def body(session: ClientSession) -> tuple[CallToolResult, ...]:
        runs = await session.call_tool("runs", {"limit": 5})
        run_id = answer(runs)["runs"][0]["run_id"]
        return runs, await session.call_tool("run_details", {"run_id": run_id}), await session.call_tool("failures")

    runs, details, failures = (answer(result) for result in mcp(built, body))
    (last,) = runs["runs"]
    assert last["status"] == "succeeded" and last["trigger"] == "sbdk dev"
    assert last["rows"]["raw_users"] == 200 and last["dbt"]["tests_failed"] == 0
    assert details["run"]["run_id"] == last["run_id"]
    assert any(n["name"] == "daily_kpis" and n["status"] == "success" for n in details["nodes"])
    assert details["failures"] == []
    assert failures["run"]["run_id"] == last["run_id"] and failures["failures"] == []
    assert failures["tests"]["fail"] == 0 and failures["tests"]["pass"] > 0


def test_build_is_offered_with_allow_runs_and_grows_the_history(project_copy: Path, mcp: Agent) -> None:
    # A singular test that fails, for `failures` to name once the build has run.
    failing = project_copy / "dbt" / "tests" / "assert_no_day_has_users.sql"
    failing.write_text("select * from {{ ref('daily_kpis') }} where new_users >= 0\n")
    reported: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append((progress, total, message))

    async def body(session: ClientSession) -> tuple[Any, ...]:
        tools = await _tool_names(session)
        before = await session.call_tool("runs")
        built = await session.call_tool("build", {}, progress_callback=on_progress)
        return tools, before, built, await session.call_tool("failures")

    tools, before, built, failures = mcp(project_copy, body, "--allow-runs")
    assert set(tools) == READ_TOOLS | {"build"}
    run = answer(built)
    assert run["run"]["status"] == "failed", run["run"]
    after = answer(mcp(project_copy, tool("runs")))["runs"]
    assert len(after) == len(answer(before)["runs"]) + 1
    assert after[0]["run_id"] == run["run"]["run_id"] and after[0]["dbt"]["tests_failed"] == 1
    (failure,) = answer(failures)["failures"]
    assert failure["name"] == "assert_no_day_has_users"
    assert '"daily_kpis"' in failure["compiled_sql"] and "ref(" not in failure["compiled_sql"]
    assert any("assert_no_day_has_users" in step for step in answer(failures)["next_steps"])
    # The agent saw the build go by: its stages as log messages, dbt's nodes as progress.
    stages = [str(params.data) for params in mcp.logged]
    assert any(stage.startswith("dbt") for stage in stages), stages
    assert reported and reported[-1][0] == reported[-1][1], reported[-3:]
