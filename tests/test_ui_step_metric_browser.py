"""A run's declared step metric as the charts' x axis, in Debian's Chromium against a real server.

W&B integrations log their own step and declare it (Lightning's `trainer/global_step`, declared
with `define_metric("train/*", step_metric="trainer/global_step")`); W&B charts against it. The
run page and the comparison offer each declared step metric beside Step, Runtime and Wall time,
draw against it, keep it in the URL across a reload, and fall back to Step for an x the runs did
not declare. One run comes from the real wandb client, one from nbtrack's own SDK.
Screenshots go to test-artifacts/ui-step-metric-*.png.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

import nbtrack
from tests.test_ui_browser import CHROMIUM, READY, Watched, browser
from tests.wandb_client import WandbEnv, wandb_env

__all__ = ["browser", "wandb_env"]  # fixtures, used by name

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
    pytest.mark.timeout(300),
]

LIGHTNING_LIKE = """
import wandb
run = wandb.init(project="steps", name="lightning")
run.define_metric("trainer/global_step")
run.define_metric("train/*", step_metric="trainer/global_step")
for i in range(30):
    run.log({"train/loss": 1.0 / (i + 1), "trainer/global_step": i * 16})
emit(run.id)
run.finish()
"""


def _x_ticks(page: Any, key: str) -> list[float]:
    """The numbers under a chart's x axis."""
    texts: list[str] = page.eval_on_selector_all(
        f"svg.chart[data-key='{key}'] text.nbt-tick[text-anchor='middle']", "ts => ts.map(t => t.textContent)"
    )
    return [float(text.replace(",", "")) for text in texts]


def _wait_for_x_tick(page: Any, key: str, at_least: float) -> None:
    """Wait until a chart's x axis has a tick of at least `at_least` (it was redrawn on the new x)."""
    ticks = f"svg.chart[data-key='{key}'] text.nbt-tick[text-anchor='middle']"
    reached = f"t => Number(t.textContent.replace(/,/g, '')) >= {at_least}"
    page.wait_for_function(f"() => [...document.querySelectorAll(`{ticks}`)].some({reached})")


def _x_pressed(page: Any) -> str:
    pressed: str = page.eval_on_selector(
        ".chart-toolbar [aria-label='X axis'] [aria-pressed='true']", "b => b.dataset.x"
    )
    return pressed


def test_the_charts_offer_and_draw_against_a_declared_step_metric(
    wandb_env: WandbEnv, browser: Any, tmp_path: Any
) -> None:
    lightning = wandb_env.run(LIGHTNING_LIKE)
    own = nbtrack.init(
        project="steps",
        name="own",
        entity=wandb_env.entity,
        base_url=wandb_env.server.url,
        api_key=wandb_env.key,
        dir=str(tmp_path / "client"),
    )
    own.define_metric("val/acc", step_metric="epoch")
    for epoch in range(5):
        own.log({"val/acc": 0.5 + epoch / 10, "epoch": epoch, "train/loss": 0.9 - epoch / 10})
    own.finish()

    watched = Watched(browser)
    try:
        page = watched.page
        page.context.add_init_script(f"sessionStorage.setItem('nbtrack.apiKey', {wandb_env.key!r})")
        base = f"{wandb_env.server.url}/{wandb_env.entity}/steps"
        page = watched.open(f"{base}/runs/{lightning}")
        axes = page.locator(".chart-toolbar [aria-label='X axis'] button")
        assert axes.all_inner_texts() == ["Step", "Runtime", "Wall time", "trainer/global_step"]
        assert max(_x_ticks(page, "train/loss")) <= 29, "on _step first"

        page.get_by_role("button", name="trainer/global_step", exact=True).click()
        page.wait_for_function("() => location.search.includes('x=trainer%2Fglobal_step')")
        _wait_for_x_tick(page, "train/loss", 300)
        assert _x_pressed(page) == "trainer/global_step"
        assert max(_x_ticks(page, "train/loss")) <= 464
        # The tooltip names the step metric and its value.
        svg = page.locator("svg.chart[data-key='train/loss']")
        box = svg.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
        tip = page.locator(".chart-card[data-key='train/loss'] .chart-tip")
        tip.wait_for(state="visible")
        assert tip.inner_text().startswith("trainer/global_step ")
        watched.shot("step-metric-run")

        # A reload keeps the axis (it is in the URL).
        page.reload()
        page.wait_for_selector(READY)
        assert _x_pressed(page) == "trainer/global_step"
        assert max(_x_ticks(page, "train/loss")) >= 300

        # An x the run did not declare, or no axis at all: Step, and the URL says so.
        for asked in ("epoch", "_cell"):
            page = watched.open(f"{base}/runs/{lightning}?x={asked}")
            assert _x_pressed(page) == "_step"
            assert "x=" not in page.evaluate("location.search"), asked
            assert max(_x_ticks(page, "train/loss")) <= 29

        # The comparison offers every run's step metric; each run is drawn where it has one.
        page = watched.open(f"{base}/compare?runs={lightning},{own.id}&x={quote('epoch')}")
        axes = page.locator(".chart-toolbar [aria-label='X axis'] button")
        assert axes.all_inner_texts() == ["Step", "Runtime", "Wall time", "trainer/global_step", "epoch"]
        assert _x_pressed(page) == "epoch"
        assert max(_x_ticks(page, "val/acc")) <= 4
        page.get_by_role("button", name="trainer/global_step", exact=True).click()
        page.wait_for_function("() => location.search.includes('x=trainer%2Fglobal_step')")
        _wait_for_x_tick(page, "train/loss", 300)
        watched.shot("step-metric-compare")
        assert not watched.errors, watched.errors
    finally:
        watched.close()
