"""How fast the page of `sbdk ui` answers (issue #18), at 1x and 10x the default volume.

For each scale, a project is made (`sbdk init`, then `sbdk dev --scale <s>`), or reused from
`--workdir`, and every API call each page makes is timed by the app itself (its `Server-Timing:
app;dur=<ms>` header, the time inside the app, without the network or the client):
  overview  GET /api/overview
  runs      GET /api/runs?limit=50
  run       GET /api/runs/<the last run>
  lineage   GET /api/lineage
  node      GET /api/nodes/<id> (it holds the default chart), its /rows and /profile, and /chart (what
            picking other columns asks for) when it has one, for each mart and the largest staging and
            intermediate view (a view is computed on each read: the slow case)
  sql       POST /api/query (two SELECTs, a scan of the mart and a group-by over the events)
in three states:
  cold      a new app with no warm-up (create_app(settings, warm=False), in this process, through
            Starlette's TestClient) for each page: the page's first visit after a start, before the
            background warm-up (sbdk.ui.warm) has read anything
  warmed    a real `sbdk ui` process once its warm-up is over (its CPU time stopped growing): the first
            request of each call
  repeat    the same process, the same calls again (median of --runs passes)
and in Chromium (Debian's /usr/bin/chromium, driven by Playwright): the first contentful paint of the
overview and the time until it shows its data (body[data-ready=overview]), both from the start of the
navigation, in a new browser context (empty cache) each time, on the warmed server and on a server
started just before (`sbdk ui` opens the browser half a second after it starts). Medians of --runs.

Usage: python benchmarks/bench_ui.py [--scales 1 10] [--runs 5] [--workdir DIR]
With --workdir, the project of scale s is DIR/s<s>: made there if it is missing, reused if it has a
successful run (so a second invocation skips the builds).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

AS_OF = date(2026, 11, 1)
SBDK = Path(sys.executable).with_name("sbdk")
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
QUERIES = {
    "scan": "select * from main.daily_kpis order by activity_date desc",
    "group-by": "select user_id, count(*) as events from main.stg_events group by 1 order by 2 desc limit 100",
}
# Set on the page before its scripts run: the time (from the navigation's start) at which the page
# marks the overview as shown. Init scripts are not subject to the page's Content-Security-Policy.
READY_PROBE = """
new MutationObserver((_, observer) => {
  if (document.body && document.body.dataset.ready === 'overview' && window.__readyAt === undefined) {
    window.__readyAt = performance.now();
    observer.disconnect();
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-ready'] });
"""

Call = tuple[str, str, dict[str, Any] | None]  # (method, path, JSON body)


def sbdk_command() -> list[str]:
    return [str(SBDK)] if SBDK.exists() else [sys.executable, "-m", "sbdk"]


def env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SBDK_")}, "COLUMNS": "120"}


# ---- the project -------------------------------------------------------------------------------------


def built(root: Path) -> bool:
    from sbdk.run import history

    state = root / ".sbdk"
    return (root / "sbdk_config.json").exists() and any(
        r.get("status") == "succeeded" for r in history.read(state) if state.is_dir()
    )


def make_project(root: Path, scale: float) -> float:
    """`sbdk init` + `sbdk dev --scale <scale>` in `root` unless it is built already; seconds spent."""
    if built(root):
        return 0.0
    from sbdk.ops.scaffold import InitOptions, init_project

    started = time.perf_counter()
    if not (root / "sbdk_config.json").exists():
        init_project(InitOptions(folder=root, as_of=AS_OF))
    done = subprocess.run(
        [*sbdk_command(), "-q", "dev", "--scale", f"{scale:g}"], cwd=root, env=env(), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(
            f"`sbdk dev --scale {scale:g}` failed in {root}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return time.perf_counter() - started


def pages(root: Path) -> dict[str, list[Call]]:
    """The API calls of each page, in the order the page makes them."""
    from sbdk.run import history
    from sbdk.settings import load_settings
    from sbdk.view import ProjectView

    view = ProjectView(load_settings(root / "sbdk_config.json"))
    models = view.models()
    chosen = [m for m in models if m["layer"] == "mart"]
    for layer in ("staging", "intermediate"):  # the largest view of the layer: the slowest to read
        views = [m for m in models if m["layer"] == layer and m["materialized"] == "view"]
        if views:
            chosen.append(max(views, key=lambda m: relation_rows(root, m["relation"])))
    run_id = history.last(root / ".sbdk", 1)[0]["run_id"]
    calls: dict[str, list[Call]] = {
        "overview": [("GET", "/api/overview", None)],
        "runs": [("GET", "/api/runs?limit=50", None)],
        "run": [("GET", f"/api/runs/{run_id}", None)],
        "lineage": [("GET", "/api/lineage", None)],
    }
    for model in chosen:
        base = f"/api/nodes/{model['id']}"
        calls[f"node {model['name']}"] = [
            ("GET", base, None),
            ("GET", f"{base}/rows?offset=0&limit=50", None),
            ("GET", f"{base}/profile", None),
        ]
        if view.node(model["id"]).get("chart"):  # what choosing other columns asks for (a view may have none)
            calls[f"node {model['name']}"].append(("GET", f"{base}/chart", None))
    calls["sql"] = [("POST", "/api/query", {"sql": sql, "limit": 1000}) for sql in QUERIES.values()]
    return calls


def relation_rows(root: Path, relation: str) -> int:
    from sbdk.stores.duckdb import connect_read_only

    with connect_read_only(root / "data" / "dev.duckdb") as con:
        return int(con.execute(f"select count(*) from {relation}").fetchone()[0])


def label(call: Call) -> str:
    method, path, body = call
    if body is not None:
        name = next(k for k, v in QUERIES.items() if v == body["sql"])
        return f"{method} {path} ({name})"
    path = path.split("?")[0]
    if path.startswith("/api/nodes/"):
        rest = path.removeprefix("/api/nodes/").split("/")
        return "GET node" + (f" /{rest[1]}" if len(rest) > 1 else "")
    if path.startswith("/api/runs/"):
        return "GET /api/runs/<id>"
    return f"{method} {path}"


def app_ms(response: Any) -> float:
    """The app's own time for a response, from its Server-Timing header."""
    if response.status_code != 200:
        raise SystemExit(
            f"{response.request.method} {response.request.url} answered {response.status_code}: {response.text}"
        )
    header = response.headers["server-timing"]
    return float(header.split("dur=")[1].split(",")[0])


def send(client: Any, call: Call) -> float:
    method, path, body = call
    if method == "POST":
        return app_ms(client.post(path, json=body))
    return app_ms(client.get(path))


# ---- cold: a new app per page, without warm-up ------------------------------------------------------------


def measure_cold(root: Path, calls: dict[str, list[Call]], runs: int) -> dict[tuple[str, str], list[float]]:
    from fastapi.testclient import TestClient

    from sbdk.settings import load_settings
    from sbdk.ui.app import create_app

    settings = load_settings(root / "sbdk_config.json")
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(runs):
        for page, page_calls in calls.items():
            with TestClient(create_app(settings, warm=False), base_url="http://127.0.0.1") as client:
                for call in page_calls:
                    times.setdefault((page, label(call)), []).append(send(client, call))
    return times


# ---- a real `sbdk ui` process ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(root: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], float]]:
    """`sbdk ui --port <free> --no-open` in `root`; (base URL, process, seconds until it served `/`)."""
    import httpx

    port = free_port()
    log = tempfile.TemporaryFile()
    started = time.perf_counter()
    process = subprocess.Popen(
        [*sbdk_command(), "ui", "--port", str(port), "--no-open"],
        cwd=root,
        env=env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise SystemExit(f"`sbdk ui` ended:\n{log.read().decode(errors='replace')}")
            try:
                if httpx.get(url + "/", timeout=5).status_code == 200:  # the page's HTML: reads no data
                    break
            except httpx.HTTPError:
                time.sleep(0.02)
        yield url, process, time.perf_counter() - started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, quiet: float = 2.0, timeout: float = 600) -> float:
    """Wait until the process has used no CPU for `quiet` seconds (its warm-up is over); seconds waited."""
    started = time.perf_counter()
    if not Path(f"/proc/{pid}/stat").exists():  # not Linux: give the warm-up time instead
        time.sleep(30)
        return time.perf_counter() - started
    last, since = cpu_seconds(pid), time.perf_counter()
    while time.perf_counter() - since < quiet and time.perf_counter() - started < timeout:
        time.sleep(0.25)
        now = cpu_seconds(pid)
        if now - last > 0.02:
            last, since = now, time.perf_counter()
    return time.perf_counter() - started - quiet


def measure_warm(
    url: str, calls: dict[str, list[Call]], runs: int
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], list[float]]]:
    import httpx

    first: dict[tuple[str, str], float] = {}
    repeat: dict[tuple[str, str], list[float]] = {}
    with httpx.Client(base_url=url, timeout=120) as client:
        for number in range(runs + 1):
            for page, page_calls in calls.items():
                for call in page_calls:
                    ms = send(client, call)
                    if number == 0:
                        first[(page, label(call))] = ms
                    else:
                        repeat.setdefault((page, label(call)), []).append(ms)
    return first, repeat


# ---- the browser -----------------------------------------------------------------------------------------


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def first_paint(browser: Any, url: str) -> tuple[float, float]:
    """(first contentful paint, overview shown) in ms from the navigation's start, in a new context."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        context.add_init_script(READY_PROBE)
        page = context.new_page()
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready=overview]", state="attached", timeout=120_000)
        fcp = page.evaluate(
            "() => (performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint') || {}).startTime"
        )
        ready = page.evaluate("() => window.__readyAt")
        return float(fcp), float(ready)
    finally:
        context.close()


def measure_browser(browser: Any, root: Path, url: str, runs: int) -> dict[str, list[tuple[float, float]]]:
    results: dict[str, list[tuple[float, float]]] = {"warmed server": [], "just started": []}
    first_paint(browser, url)  # the browser's own first start is not the page's
    for _ in range(runs):
        results["warmed server"].append(first_paint(browser, url))
    for _ in range(runs):
        with server(root) as (fresh, _process, _seconds):
            results["just started"].append(first_paint(browser, fresh))
    return results


# ---- report ----------------------------------------------------------------------------------------------


def fmt(ms: float) -> str:
    return f"{ms:9.1f}" if ms < 10_000 else f"{ms / 1000:8.1f}s"


def report(scale: float, info: dict[str, Any]) -> None:
    calls, cold, first, repeat = info["calls"], info["cold"], info["first"], info["repeat"]
    built_in = f" (built in {info['build']:.0f} s)" if info["build"] else ""
    print(
        f"\n== scale {scale:g}: {info['users']:,} users, {info['events']:,} events{built_in}; `sbdk ui` served its page "
        f"{info['start']:.2f} s after it started; its warm-up took {info['warmup']:.1f} s"
    )
    print(f"{'page':<26} {'request':<30} {'cold ms':>9} {'warmed ms':>9} {'repeat ms':>9}")
    for page, page_calls in calls.items():
        totals = [0.0, 0.0, 0.0]
        for call in page_calls:
            key = (page, label(call))
            values = [statistics.median(cold[key]), first[key], statistics.median(repeat[key])]
            totals = [t + v for t, v in zip(totals, values)]
            print(f"{page:<26} {label(call):<30} {fmt(values[0])} {fmt(values[1])} {fmt(values[2])}")
        if len(page_calls) > 1:
            print(f"{'':<26} {'(page total)':<30} {fmt(totals[0])} {fmt(totals[1])} {fmt(totals[2])}")
    print(f"\n{'Chromium, overview':<26} {'first contentful paint ms':>26} {'overview shown ms':>18}")
    for state, values in info["browser"].items():
        fcp = statistics.median(v[0] for v in values)
        ready = statistics.median(v[1] for v in values)
        print(f"{state:<26} {fcp:>26.0f} {ready:>18.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 10])
    parser.add_argument("--runs", type=int, default=5, help="measured rounds of each state (medians reported)")
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the projects in this folder")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium measures")
    args = parser.parse_args()
    from sbdk.settings.model import DEFAULTS

    with tempfile.TemporaryDirectory(prefix="sbdk-bench-ui-") as temporary:
        workdir = args.workdir or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        browser_cm = chromium() if not args.no_browser and Path(CHROMIUM).exists() else None
        browser = browser_cm.__enter__() if browser_cm is not None else None
        try:
            for scale in args.scales:
                root = workdir / f"s{scale:g}"
                build = make_project(root, scale)
                calls = pages(root)
                info: dict[str, Any] = {
                    "calls": calls,
                    "build": build,
                    **{k: int(v * scale) for k, v in DEFAULTS["data_volume"].items()},
                }
                info["cold"] = measure_cold(root, calls, args.runs)
                with server(root) as (url, process, seconds):
                    info["start"] = seconds
                    info["warmup"] = wait_idle(process.pid)
                    info["first"], info["repeat"] = measure_warm(url, calls, args.runs)
                    info["browser"] = measure_browser(browser, root, url, args.runs) if browser is not None else {}
                report(scale, info)
                sys.stdout.flush()
        finally:
            if browser_cm is not None:
                browser_cm.__exit__(None, None, None)
    print(
        "\ncold: a new app without warm-up for each page (its first visit after a start), median of the rounds;\n"
        "warmed: a `sbdk ui` process after its background warm-up, first request; repeat: the same again, median.\n"
        "ms are the app's own time (Server-Timing: app;dur). Chromium: from the navigation's start, in a new\n"
        "context (empty cache), medians; 'just started': the page opened as soon as a new `sbdk ui` served it."
    )


if __name__ == "__main__":
    main()
