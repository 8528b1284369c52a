"""Run management in the web UI, in Debian's Chromium (Playwright) against a real `nbtrack server`:
a run renamed and its tags and notes edited on its page show the new values after a reload; a
deleted run (after a confirmation dialog naming it) is gone from the runs list and its page after
a reload; a running run is deleted only once "its process is gone" is ticked. Screenshots go to
test-artifacts/ui-manage-*.png. Skipped unless Chromium and Playwright are installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import nbtrack
from tests.serving import Client, ServerProcess, start_server
from tests.test_ui_browser import (  # the fixtures and helpers of the UI's browser tests
    CHROMIUM,
    READY,
    Watched,
    _log_run,
    _names,
    browser,
    watched,
)

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
    pytest.mark.timeout(300),
]
__all__ = ["browser", "watched"]  # fixtures, used by name


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    server = start_server(tmp_path)
    try:
        root = tmp_path / "client"
        ids = {
            name: _log_run(root, server.url, "manage", name, 20, tags=["draft"], config={"lr": 0.1})
            for name in ("keeper", "doomed")
        }
        yield server, ids
    finally:
        server.stop()


def _heading(page: object) -> str:
    return str(page.locator(".run-head h1").inner_text()).strip()  # type: ignore[attr-defined]


def test_a_run_renamed_and_its_tags_and_notes_edited_keep_them_after_a_reload(
    served: tuple[ServerProcess, dict[str, str]], watched: Watched
) -> None:
    server, ids = served
    url = f"{server.url}/local/manage/runs/{ids['keeper']}"
    page = watched.open(url)
    assert _heading(page) == "keeper"
    page.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog", name=f"Edit run {ids['keeper']}")
    dialog.get_by_label("Name").fill("")
    dialog.get_by_role("button", name="Save").click()
    assert dialog.get_by_role("alert").inner_text() == "A run needs a name."  # nothing sent
    dialog.get_by_label("Name").fill("keeper, tuned")
    dialog.get_by_label("Tags").fill("best, baseline, best")
    dialog.get_by_label("Notes").fill("lr 0.1 was best\nsee the sweep")
    watched.shot("manage-edit-dialog")
    dialog.get_by_role("button", name="Save").click()
    page.wait_for_selector("dialog.dialog", state="detached")
    assert _heading(page) == "keeper, tuned"  # at once, without a reload
    page.reload()
    page.wait_for_selector(READY)
    assert _heading(page) == "keeper, tuned"
    assert page.locator(".run-head .tag").all_inner_texts() == ["best", "baseline"]
    assert "lr 0.1 was best" in page.locator(".run-head .notes").inner_text()
    watched.shot("manage-edited")
    stored = nbtrack.Api(base_url=server.url).run(f"manage/{ids['keeper']}")
    assert (stored.name, stored.tags, stored.notes) == (
        "keeper, tuned",
        ["best", "baseline"],
        "lr 0.1 was best\nsee the sweep",
    )
    assert not watched.errors, watched.errors


def test_a_deleted_run_is_gone_after_a_reload(
    served: tuple[ServerProcess, dict[str, str]], watched: Watched
) -> None:
    server, ids = served
    page = watched.open(f"{server.url}/local/manage")
    assert sorted(_names(page)) == ["doomed", "keeper"]
    page = watched.open(f"{server.url}/local/manage/runs/{ids['doomed']}")
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete run")
    assert "“doomed”" in dialog.inner_text() and f"local/manage/{ids['doomed']}" in dialog.inner_text()
    watched.shot("manage-delete-dialog")
    dialog.get_by_role("button", name="Cancel").click()
    page.wait_for_selector("dialog.dialog", state="detached")
    assert _heading(page) == "doomed"  # cancelled: nothing deleted
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog", name="Delete run").get_by_role("button", name="Delete run").click()
    page.wait_for_url(f"{server.url}/local/manage")
    page.wait_for_selector("table.runs")
    assert _names(page) == ["keeper"]
    page.reload()
    page.wait_for_selector(READY)
    assert _names(page) == ["keeper"]
    watched.shot("manage-deleted")
    page = watched.open(f"{server.url}/local/manage/runs/{ids['doomed']}")
    assert f"There is no run “{ids['doomed']}”" in page.locator("main").inner_text()
    assert not watched.errors, watched.errors


def test_a_running_run_is_deleted_only_once_its_process_is_said_to_be_gone(
    served: tuple[ServerProcess, dict[str, str]], watched: Watched
) -> None:
    server, _ids = served
    Client(server.url).upsert("manage", "live1", displayName="still going")
    page = watched.open(f"{server.url}/local/manage/runs/live1")
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete run")
    confirm = dialog.get_by_role("button", name="Delete run")
    assert "still running" in dialog.inner_text() and confirm.is_disabled()
    dialog.get_by_label("Its process is gone: delete it anyway").check()
    watched.shot("manage-delete-running")
    confirm.click()
    page.wait_for_url(f"{server.url}/local/manage")
    page.reload()
    page.wait_for_selector(READY)
    assert "still going" not in page.locator("main").inner_text()
    assert not watched.errors, watched.errors
