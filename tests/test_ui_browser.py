"""The page of `sbdk ui` (issue #18) in a real browser: Debian's chromium driven by Playwright, against
the real `sbdk ui` (and `sbdk start --ui`) in a subprocess, on a project built by a real `sbdk dev`.

One copy of the module's built project is served for the whole module; the tests that change it (an
XSS probe model, a full rebuild, a watcher rebuild) come last, in that order.

`SBDK_SCREENSHOTS=1 python -m pytest tests/test_ui_browser.py -n 0` also saves one PNG per page to
docs/screenshots/ (1280x800), the README's images.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import checksum, query
from tests_support import free_port

from sbdk.run import history

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1280, "height": 800}
# Read when the module is imported: conftest's clean_env removes SBDK_* variables from each test.
SCREENSHOTS = os.environ.get("SBDK_SCREENSHOTS") == "1"
SCREENSHOT_DIR = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
SBDK = Path(sys.executable).with_name("sbdk")
# Kinds of node the lineage lists by default; tests (and unit tests) show with "show tests".
LISTED = ("model", "seed", "snapshot", "source", "exposure")
TESTS = ("test", "unit_test")
XSS = "<script>alert(1)</script>"
WAIT_MS = 30_000


# ---- processes -------------------------------------------------------------------------------------


class Process:
    """An sbdk command in its own process group, its output in a file; `stop()` ends the group."""

    def __init__(self, root: Path, *args: str, log: Path) -> None:
        self.args = args
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("SBDK_")}
        env.update(PYTHONUNBUFFERED="1", COLUMNS="120")
        command = [str(SBDK)] if SBDK.exists() else [sys.executable, "-m", "sbdk"]
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [*command, *args], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.process.poll() is None, f"`sbdk {' '.join(self.args)}` ended:\n{self.output}"
            assert time.monotonic() < deadline, f"no {text!r} from `sbdk {' '.join(self.args)}`:\n{self.output}"
            time.sleep(0.05)

    def wait_for_http(self, url: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"`sbdk {' '.join(self.args)}` ended:\n{self.output}"
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{url} never answered:\n{self.output}"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def serve_ui(root: Path, log: Path, *extra: str) -> tuple[Process, str]:
    """`sbdk ui --port <free> --no-open` in `root`, once it answers; (process, page URL)."""
    port = free_port()
    server = Process(root, "ui", "--port", str(port), "--no-open", *extra, log=log)
    url = f"http://127.0.0.1:{port}/"
    try:
        server.wait_for_http(url + "api/overview")
    except BaseException:
        server.stop()
        raise
    return server, url


def run_sbdk(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBDK_")}
    command = [str(SBDK)] if SBDK.exists() else [sys.executable, "-m", "sbdk"]
    return subprocess.run(
        [*command, *args], cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


# ---- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the module's built project, dbt's target folder included (the lineage reads it)."""
    target = tmp_path_factory.mktemp("site") / "demo"
    shutil.copytree(built, target, ignore=shutil.ignore_patterns("logs"))
    return target


@pytest.fixture(scope="module")
def ui(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of `sbdk ui` serving `site` for the whole module."""
    server, url = serve_ui(site, tmp_path_factory.mktemp("ui") / "ui.log")
    yield url
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        # CI installs it (.ci/run): there, a missing browser is a failure, not a skip.
        message = f"{CHROMIUM} is not installed (Debian's chromium package)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class Tab:
    """One page in its own browser context, with what went wrong in it: console errors, uncaught
    exceptions, and dialogs (alert, confirm...), which are dismissed."""

    def __init__(self, browser: Any, base: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def open(self, route: str, ready: str, timeout: float = WAIT_MS) -> Any:
        """Go to `#<route>` and wait until the page says it rendered `ready` (body[data-ready])."""
        if self.page.url.startswith(self.base):
            # A new hash is a navigation within the document: the mark of the page shown before it
            # must not be taken for the new page's (the page clears it too, on its hashchange).
            self.page.evaluate("() => document.body.removeAttribute('data-ready')")
        self.page.goto(self.base + "#" + route)
        self.page.wait_for_selector(f"body[data-ready={ready}]", state="attached", timeout=timeout)
        return self.page

    @property
    def problems(self) -> list[str]:
        return [*self.console_errors, *self.page_errors, *self.dialogs]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, ui: str) -> Iterator[Tab]:
    opened = Tab(browser, ui)
    yield opened
    opened.close()


@pytest.fixture
def tabs(browser: Any) -> Iterator[Any]:
    """`tabs(base_url)` opens a Tab on another server (the watcher's page)."""
    opened: list[Tab] = []

    def make(base: str) -> Tab:
        opened.append(Tab(browser, base))
        return opened[-1]

    yield make
    for one in opened:
        one.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Processes a test starts; stopped at its end whatever happened."""
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


# ---- reading the project ---------------------------------------------------------------------------


def manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / "dbt" / "target" / "manifest.json").read_text())


def manifest_nodes(root: Path, kinds: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    data = manifest(root)
    found: dict[str, dict[str, Any]] = {}
    for group in ("nodes", "sources", "exposures", "unit_tests"):
        for uid, node in (data.get(group) or {}).items():
            if node.get("resource_type") in kinds:
                found[uid] = node
    return found


def manifest_edges(nodes: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (parent, uid)
        for uid, node in nodes.items()
        for parent in (node.get("depends_on") or {}).get("nodes") or ()
        if parent in nodes
    }


def finished_runs(root: Path) -> dict[str, dict[str, Any]]:
    return {r["run_id"]: r for r in history.read(root / ".sbdk") if r.get("status") not in (None, "running")}


def last_run_id(root: Path) -> str:
    runs = history.read(root / ".sbdk")
    return runs[-1]["run_id"]


def visible_alerts(page: Any) -> list[str]:
    alerts = page.locator("[role=alert]:visible")
    return [alerts.nth(i).inner_text() for i in range(alerts.count())]


# ---- the pages ---------------------------------------------------------------------------------------


def test_every_page_loads_without_an_error(tab: Tab, site: Path) -> None:
    run_id = last_run_id(site)
    pages = [
        ("/", "overview", "#overview-tables"),
        ("/runs", "runs", f'#runs-table tr[data-run-id="{run_id}"]'),
        (f"/runs/{run_id}", "run", "#run-nodes"),
        ("/lineage", "lineage", "#lineage-graph canvas"),
        ("/node/model.demo.daily_kpis", "node", "#node-rows table"),
        ("/node/source.demo.raw.raw_users", "node", "#node-rows table"),
        ("/node/model.demo.stg_events", "node", "#node-profile .profile-col"),
        ("/sql", "sql", "#sql-input"),
    ]
    for route, ready, content in pages:
        page = tab.open(route, ready)
        assert page.locator(content).count() >= 1, f"#{route} shows no {content}: {page.inner_text('#view')[-1500:]}"
        assert page.locator("#page-error").count() == 0, page.locator("#page-error").inner_text()
        assert visible_alerts(page) == [], f"#{route}: {visible_alerts(page)}"
        if route.startswith("/node/"):  # the right node, not the one before it
            assert page.locator("h1").inner_text().startswith(route.rsplit(".", 1)[-1])
    page.fill("#sql-input", "select session_date, sessions from main.funnel order by 1 limit 5")
    page.click("#sql-run")
    page.wait_for_selector("#sql-result table.data", state="attached")
    assert page.locator("#sql-result tbody tr").count() == 5
    assert tab.problems == []


def test_the_lineage_shows_every_node_of_the_project(tab: Tab, site: Path) -> None:
    listed = manifest_nodes(site, LISTED)
    assert len(listed) >= 13  # 3 sources, 3 staging, 4 intermediate, 3 marts in the template
    page = tab.open("/lineage", "lineage")
    ids = page.locator("a.lineage-node").evaluate_all("links => links.map((a) => a.dataset.id)")
    assert sorted(ids) == sorted(listed)
    graph = page.locator("#lineage-graph")
    # The graph is drawn on canvases: its nodes and edges are counted by the page on the container.
    assert int(graph.get_attribute("data-nodes")) == len(listed)
    assert int(graph.get_attribute("data-edges")) == len(manifest_edges(listed))
    size = graph.locator("canvas").first.bounding_box()
    assert size is not None and size["width"] > 200 and size["height"] > 200

    with_tests = manifest_nodes(site, LISTED + TESTS)
    assert len(with_tests) > len(listed)
    page.check("#lineage-show-tests")
    page.wait_for_selector(f"#lineage-graph[data-nodes='{len(with_tests)}']", state="attached")
    assert page.locator("a.lineage-node").count() == len(with_tests)
    assert int(graph.get_attribute("data-edges")) == len(manifest_edges(with_tests))
    assert tab.problems == []


def test_clicking_a_node_in_the_list_opens_its_page(tab: Tab) -> None:
    page = tab.open("/lineage", "lineage")
    page.click('a.lineage-node[data-id="model.demo.funnel"]')
    page.wait_for_selector("body[data-ready=node]", state="attached")
    assert page.url.endswith("#/node/model.demo.funnel")
    assert page.locator("h1").inner_text().startswith("funnel")
    assert page.locator("#node-columns").count() == 1
    assert tab.problems == []


def test_double_clicking_a_node_in_the_graph_opens_its_page(tab: Tab) -> None:
    page = tab.open("/lineage", "lineage")
    # Where cytoscape drew the node (the page keeps its instance on the container for tests).
    spot = page.evaluate(
        "() => document.getElementById('lineage-graph').cy.getElementById('model.demo.user_metrics').renderedPosition()"
    )
    box = page.locator("#lineage-graph").bounding_box()
    assert 0 < spot["x"] < box["width"] and 0 < spot["y"] < box["height"], (spot, box)
    x, y = box["x"] + spot["x"], box["y"] + spot["y"]
    page.mouse.click(x, y)  # one click selects it: the side panel names it
    page.wait_for_selector("#lineage-graph[data-selected='model.demo.user_metrics']", state="attached")
    assert page.locator("#lineage-panel h2").inner_text() == "user_metrics"
    page.mouse.dblclick(x, y)
    page.wait_for_selector("body[data-ready=node]", state="attached")
    assert page.url.endswith("#/node/model.demo.user_metrics")
    assert page.locator("h1").inner_text().startswith("user_metrics")
    assert tab.problems == []


def test_the_query_box_refuses_a_write_and_the_data_stays(tab: Tab, site: Path) -> None:
    before = checksum(site, "main.funnel", "session_date")
    ((rows,),) = query(site, "select count(*) from main.funnel")
    assert rows > 0
    page = tab.open("/sql", "sql")
    for sql in ("delete from main.funnel", "drop table main.funnel", "update main.funnel set sessions = 0"):
        page.fill("#sql-input", sql)
        page.click("#sql-run")
        page.wait_for_selector("#sql-error:not([hidden])", state="visible")
        page.wait_for_selector("body[data-ready=sql]", state="attached")
        assert "read-only" in page.locator("#sql-error").inner_text(), sql
        assert page.locator("#sql-result table").count() == 0
    # The page still reads the table, whole.
    page.fill("#sql-input", "select count(*) as n from main.funnel")
    page.click("#sql-run")
    page.wait_for_selector("#sql-result table.data", state="attached")
    assert page.locator("#sql-error").is_hidden()
    assert page.locator("#sql-result tbody td").inner_text().replace(",", "") == str(rows)
    assert checksum(site, "main.funnel", "session_date") == before
    assert tab.page_errors == [] and tab.dialogs == []


def test_a_node_page_names_its_neighbours(tab: Tab, site: Path) -> None:
    data = manifest(site)
    uid = "model.demo.daily_kpis"
    names = {**data["nodes"], **data["sources"]}
    expected = {
        "Upstream": sorted(names[p]["name"] for p in data["parent_map"][uid]),
        "Downstream": sorted(names[c]["name"] for c in data["child_map"][uid]),
    }
    page = tab.open(f"/node/{uid}", "node")
    for term, wanted in expected.items():
        links = page.locator(f"dl.facts dt:text-is('{term}') + dd a")
        assert sorted(links.all_inner_texts()) == wanted, term


@pytest.fixture
def showcase(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A project at the default volume with a few runs (a full build, no change, a leaf edited), served:
    what a user sees after a while, for the README's screenshots."""
    from conftest import AS_OF

    from sbdk.ops.scaffold import InitOptions, init_project

    root = init_project(InitOptions(folder=tmp_path_factory.mktemp("showcase") / "demo", as_of=AS_OF)).root
    for step in ("full", "none", "leaf"):
        if step == "leaf":
            with (root / "dbt" / "models" / "marts" / "funnel.sql").open("a") as f:
                f.write("\n-- edited\n")
        done = run_sbdk(root, "-q", "dev")
        assert done.returncode == 0, done.stdout + done.stderr
    server, url = serve_ui(root, root.parent / "ui.log")
    yield root, url
    server.stop()


@pytest.mark.skipif(not SCREENSHOTS, reason="SBDK_SCREENSHOTS=1 saves the README's screenshots")
def test_screenshots(browser: Any, showcase: tuple[Path, str]) -> None:
    """One PNG per page in docs/screenshots/, at 1280x800."""
    root, url = showcase
    tab = Tab(browser, url)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    full_build = next(r["run_id"] for r in history.read(root / ".sbdk") if r.get("status") == "succeeded")
    shots = [
        ("overview", "/", "overview"),
        ("runs", "/runs", "runs"),
        ("run", f"/runs/{full_build}", "run"),
        ("lineage", "/lineage", "lineage"),
        ("node", "/node/model.demo.daily_kpis", "node"),
        ("sql", "/sql", "sql"),
    ]
    try:
        for name, route, ready in shots:
            page = tab.open(route, ready, timeout=120_000)
            if name == "lineage":  # one node selected: its lineage highlighted, the side panel filled
                spot = page.evaluate(
                    "() => document.getElementById('lineage-graph').cy.getElementById('model.demo.int_user_orders')"
                    ".renderedPosition()"
                )
                box = page.locator("#lineage-graph").bounding_box()
                page.mouse.click(box["x"] + spot["x"], box["y"] + spot["y"])
                page.wait_for_selector("#lineage-graph[data-selected]", state="attached")
            if name == "sql":
                page.fill(
                    "#sql-input",
                    "select activity_date, active_users, sessions, orders, revenue_usd,\n"
                    "       round(conversion_rate, 3) as conversion\n"
                    "from main.daily_kpis\norder by activity_date desc\nlimit 20",
                )
                page.click("#sql-run")
                page.wait_for_selector("#sql-result table.data", state="attached")
            if name == "node":  # its chart and first rows (the header, columns and tests are above)
                page.locator("#node-chart").evaluate("(box) => box.closest('section').scrollIntoView()")
            page.mouse.move(0, 0)
            page.wait_for_timeout(300)  # canvases (charts, graph) paint on the next animation frames
            page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"))
            assert (SCREENSHOT_DIR / f"{name}.png").stat().st_size > 10_000
        assert tab.problems == []
    finally:
        tab.close()


# ---- tests that change the project: last, in this order ----------------------------------------------


def test_a_value_that_looks_like_html_is_shown_as_text(tab: Tab, site: Path) -> None:
    (site / "dbt" / "models" / "marts" / "xss_probe.sql").write_text(f"select '{XSS}' as label, 1 as n\n")
    built = run_sbdk(site, "-q", "dev", "--dbt-only")
    assert built.returncode == 0, built.stdout + built.stderr

    page = tab.open("/node/model.demo.xss_probe", "node")
    rows = page.locator("#node-rows")
    assert rows.locator("td", has_text=XSS).count() == 1
    assert rows.locator("td").first.inner_text() == XSS
    assert rows.locator("script").count() == 0
    assert page.locator("#view script, #view img").count() == 0
    # The page's own five scripts, none from the data.
    assert page.evaluate("() => document.scripts.length") == 5

    page = tab.open("/sql", "sql")
    page.fill("#sql-input", "select '<img src=x onerror=alert(2)>' as html, label from main.xss_probe")
    page.click("#sql-run")
    page.wait_for_selector("#sql-result table.data", state="attached")
    assert page.locator("#sql-result td").first.inner_text() == "<img src=x onerror=alert(2)>"
    assert page.locator("#sql-result td").nth(1).inner_text() == XSS
    assert page.locator("#sql-result img, #sql-result script").count() == 0
    assert tab.dialogs == []
    assert tab.problems == []


def test_a_full_sbdk_dev_succeeds_while_the_page_is_open_and_polling(tab: Tab, site: Path) -> None:
    before = last_run_id(site)
    page = tab.open("/", "overview")
    # Besides the page's own event stream, ask for the overview every 100 ms from the page, as a
    # user who keeps pressing reload would, and keep every answer's status.
    page.evaluate(
        """() => {
          window.polls = [];
          window.pollTimer = setInterval(async () => {
            try {
              const res = await fetch('/api/overview');
              const body = await res.json();
              window.polls.push({status: res.status, building: Boolean(body.building), error: body.error || null});
            } catch (exc) {
              window.polls.push({status: 0, building: false, error: String(exc)});
            }
          }, 100);
        }"""
    )
    page.wait_for_selector("#live[data-state=idle]", state="attached")
    dev = run_sbdk(site, "-q", "dev", "--fresh")
    assert dev.returncode == 0, dev.stdout + dev.stderr
    new = last_run_id(site)
    assert new != before and finished_runs(site)[new]["status"] == "succeeded"

    # The page follows by itself: the new run becomes its last run, without a reload.
    page.wait_for_selector(f'#overview-last-run a[href="#/runs/{new}"]', state="attached")
    polls = page.evaluate("() => { clearInterval(window.pollTimer); return window.polls; }")
    failed = [p for p in polls if p["status"] != 200]
    assert failed == [], failed[:5]
    assert any(p["building"] for p in polls), "no answer came during the build"
    assert page.evaluate("() => window.polls !== undefined")  # the same document all along
    assert tab.problems == []


def test_a_watcher_rebuild_appears_in_the_open_page(tabs: Any, site: Path, processes: list[Process]) -> None:
    port = free_port()
    watcher = Process(
        site,
        "start",
        "--ui",
        "--ui-port",
        str(port),
        "--no-open",
        "--no-initial-run",
        log=site.parent / "watcher.log",
    )
    processes.append(watcher)
    base = f"http://127.0.0.1:{port}/"
    watcher.wait_for_http(base + "api/overview")
    watcher.wait_for_output("Watching")
    seen = set(finished_runs(site))

    tab = tabs(base)
    page = tab.open("/runs", "runs")
    page.evaluate("() => { window.marker = 'before the edit'; }")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    page.wait_for_selector("#live[data-state=idle]", state="attached")

    with (site / "dbt" / "models" / "marts" / "funnel.sql").open("a") as f:
        f.write("\n-- edited by test_ui_browser\n")
    deadline = time.monotonic() + 180
    while not (new := set(finished_runs(site)) - seen):
        assert watcher.process.poll() is None and time.monotonic() < deadline, watcher.output
        time.sleep(0.1)
    (run_id,) = new
    run = finished_runs(site)[run_id]
    assert (run["trigger"], run["status"]) == ("sbdk start", "succeeded"), watcher.output

    page.wait_for_selector(f'#runs-table tr[data-run-id="{run_id}"] .status-succeeded', state="attached")
    assert page.locator("#runs-table tbody tr").first.get_attribute("data-run-id") == run_id
    assert page.evaluate("() => window.marker") == "before the edit"
    assert navigations == []
    assert int(page.evaluate("() => document.body.dataset.refreshed || '0'")) >= 1
    assert tab.problems == []
