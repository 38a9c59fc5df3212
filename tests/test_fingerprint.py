"""Raw tables' fingerprints name the project's files relative to the project: a moved or copied project
keeps its fingerprints, so `sbdk dev` keeps its tables there too (issue #20)."""

from __future__ import annotations

import shutil
from pathlib import Path

from sbdk.pipelines.discovery import discover
from sbdk.pipelines.fingerprint import fingerprints
from sbdk.run.plan import RunPlan
from sbdk.settings import load_settings

# A pipeline shaped like the ones `sbdk init --from-dbt` writes: its rows depend on a file it names in INPUTS.
SYNTHESIZED = """
from pathlib import Path

import pyarrow as pa

TABLE = "shop_orders"
SPEC = Path(__file__).resolve().parents[1] / "synth.yml"
INPUTS = [SPEC]


def generate(ctx):
    yield pa.table({"order_id": [1, 2]})
"""


def prints(root: Path) -> dict[str, str]:
    settings = load_settings(root / "sbdk_config.json")
    return fingerprints(settings, RunPlan(), discover(settings.paths.pipelines_dir, None))


def test_a_copied_project_keeps_every_fingerprint_and_an_input_still_counts(make_project, tmp_path: Path) -> None:
    root = make_project()
    (root / "pipelines" / "shop_orders.py").write_text(SYNTHESIZED)
    (root / "synth.yml").write_text("tables: {}\n")
    before = prints(root)
    assert set(before) == {"raw_users", "raw_events", "raw_orders", "shop_orders"}

    moved = shutil.copytree(root, tmp_path / "elsewhere" / "demo")
    assert prints(moved) == before

    (moved / "synth.yml").write_text("tables: {orders: {rows: 5}}\n")
    after = prints(moved)
    assert after["shop_orders"] != before["shop_orders"]
    assert {t: v for t, v in after.items() if t != "shop_orders"} == {
        t: v for t, v in before.items() if t != "shop_orders"
    }
