"""Artifacts in the web UI, in Debian's Chromium (Playwright) against a real `nbtrack server`.

The real wandb client (0.31, its own venv) logs them: run "prepare" logs the dataset "mnist" twice
(v0 aliased "raw", v1 "clean" with one file changed), run "train" uses mnist:v1 and logs the
model "classifier". What a person sees: the project's artifacts by type with version counts; the
dataset's page with its versions and aliases, its files (one downloaded and compared byte for
byte), its metadata as a table, its digest and the run that logged it; the lineage graph
prepare → mnist:v1 → train → classifier:v0 whose boxes are links that lead there; the run page's
list of what the run logged and used; a reference in the model's files, shown by its URI. No
console or page error anywhere. Screenshots (light, and the artifact page dark) go to
test-artifacts/ui-artifacts-*.png. Each test runs against a server on SQLite with a folder, and
one on PostgreSQL with S3 (NBTRACK_TEST_POSTGRES_URL, NBTRACK_TEST_S3_URL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import serving
from tests.test_ui_browser import CHROMIUM, READY, Watched, browser
from tests.wandb_client import WandbEnv, _make_env, require_wandb

__all__ = ["browser"]  # the fixture shared with test_ui_browser.py, used by name

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
    pytest.mark.timeout(300),
]

TRAIN_V0 = "x,y\n1,2\n3,4\n"
TRAIN_V1 = "x,y\n1,2\n3,4\n5,6\n"
TEST_CSV = "x,y\n7,8\n"

_LOG = f"""
import pathlib, wandb
data = pathlib.Path("data")
data.mkdir(exist_ok=True)
(data / "train.csv").write_text({TRAIN_V0!r})
(data / "test.csv").write_text({TEST_CSV!r})
meta = {{"rows": 2, "source": {{"url": "https://example.org/mnist", "split": 0.8}}, "classes": [0, 1]}}
prepare = wandb.init(project="lineage", name="prepare")
first = wandb.Artifact("mnist", type="dataset", description="Handwritten digits, first cut", metadata=meta)
first.add_dir("data")
prepare.log_artifact(first, aliases=["raw"])
first.wait()  # v0 before v1
(data / "train.csv").write_text({TRAIN_V1!r})
second = wandb.Artifact("mnist", type="dataset", description="Handwritten digits, cleaned",
                        metadata={{**meta, "rows": 3}})
second.add_dir("data")
prepare.log_artifact(second, aliases=["clean"])
second.wait()
prepare.finish()
train = wandb.init(project="lineage", name="train")
train.use_artifact("mnist:v1").download(root="got")
pathlib.Path("model.bin").write_bytes(b"w" * 2048)
model = wandb.Artifact("classifier", type="model", metadata={{"accuracy": 0.93}})
model.add_file("model.bin")
model.add_reference(pathlib.Path("model.bin").resolve().as_uri(), name="weights/ref.bin")  # a reference
train.log_artifact(model)
model.wait()
train.finish()
emit({{"prepare": prepare.id, "train": train.id}})
"""


@dataclass
class Logged:
    env: WandbEnv
    ids: dict[str, str]  # run name -> run id

    def url(self, path: str = "") -> str:
        return f"{self.env.server.url}/{self.env.entity}/lineage{path}"


@pytest.fixture(scope="module", params=["sqlite-folder", "postgresql-s3"])
def logged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    """The two runs, logged to a server on SQLite with a folder, or on PostgreSQL with S3."""
    require_wandb()
    tmp = tmp_path_factory.mktemp("ui-artifacts")
    if request.param == "sqlite-folder":
        server = serving.start_server(tmp)
    else:
        if not serving.POSTGRES_URL:
            pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the server tests on PostgreSQL")
        server = serving.start_server(tmp, db_url=serving.POSTGRES_URL, files=serving.files_on("s3"))
    try:
        env = _make_env(server, tmp)
        yield Logged(env, env.run(_LOG, timeout=240))
    finally:
        server.stop()


@pytest.fixture
def page_of(browser: Any, logged: Logged) -> Iterator[Watched]:
    watched = Watched(browser)
    # The UI's key, as the key form would keep it (for this tab only).
    watched.context.add_init_script(f"sessionStorage.setItem('nbtrack.apiKey', {json.dumps(logged.env.key)})")
    yield watched
    assert watched.errors == [], watched.errors
    watched.close()


def _shot(watched: Watched, name: str) -> None:
    watched.shot(f"artifacts-{name}")  # test-artifacts/ui-artifacts-<name>.png


def _follow(page: Any, link: Any) -> None:
    """Click a link the UI routes and wait for the page it leads to."""
    page.evaluate("delete document.body.dataset.ready")
    link.click()
    page.wait_for_selector(READY)


# A cell's text with its whitespace runs as one space (alias tags are boxes of their own).
_CELLS = (
    "rows => rows.map(r => [...r.querySelectorAll('td')]"
    r".map(td => td.innerText.trim().replace(/\s+/g, ' ')))"
)


def _cells(page: Any, rows: str) -> list[list[str]]:
    found: list[list[str]] = page.eval_on_selector_all(rows, _CELLS)
    return found


def _pairs(page: Any, keys: str, values: str) -> dict[str, str]:
    """The texts of two lists of elements side by side (a <dl>'s terms and values, a table's)."""
    return dict(
        zip(page.locator(keys).all_inner_texts(), page.locator(values).all_inner_texts(), strict=True)
    )


def _lineage(page: Any) -> tuple[list[str], set[tuple[str, str]]]:
    """The lineage graph's boxes (their keys, left to right) and its edges as (from, to) keys."""
    keys: list[str] = page.eval_on_selector_all(".lineage-node", "boxes => boxes.map(b => b.dataset.node)")
    edges: list[list[str]] = page.eval_on_selector_all(
        ".lineage-edges > path", "paths => paths.map(p => [p.dataset.from, p.dataset.to])"
    )
    return keys, {(a.split("|", 1)[1], b.split("|", 1)[1]) for a, b in edges}


def test_the_artifact_pages_show_versions_files_metadata_and_lineage(
    logged: Logged, page_of: Watched, tmp_path: Path
) -> None:
    entity, ids = logged.env.entity, logged.ids
    at = f"{entity}/lineage"
    page = page_of.open(logged.url())
    _shot(page_of, "project")  # the runs page links to the artifacts
    _follow(page, page.get_by_role("link", name="Artifacts", exact=True))
    assert page.url == logged.url("/artifacts/all")
    # The list: a table per type, a row per collection.
    assert _cells(page, "section[data-type='dataset'] tbody tr")[0][:3] == ["mnist", "2 versions", "v1"]
    assert _cells(page, "section[data-type='model'] tbody tr")[0][:3] == ["classifier", "1 version", "v0"]
    _shot(page_of, "list")

    # The dataset's page: latest is v1.
    _follow(page, page.get_by_role("link", name="mnist", exact=True))
    assert page.url == logged.url("/artifacts/dataset/mnist")
    assert page.locator("h1").inner_text() == "mnist:v1"
    assert page.locator(".title-row .alias").all_inner_texts() == ["latest", "clean"]
    assert page.locator("p.notes").inner_text() == "Handwritten digits, cleaned"
    facts = dict(
        zip(
            page.locator(".facts dt").all_inner_texts(),
            page.locator(".facts dd").all_inner_texts(),
            strict=True,
        )
    )
    assert facts["Type"] == "dataset" and facts["Logged by"] == "prepare" and facts["Used by"] == "1 run"
    assert facts["Size"].endswith("in 2 files")
    versions = _cells(page, "table.versions tbody tr")
    assert [row[:2] for row in versions] == [["v1", "latest clean"], ["v0", "raw"]]
    assert page.locator("table.versions tr.selected").get_attribute("data-version") == "v1"
    files = _cells(page, "table.files tbody tr")
    assert [row[:2] for row in files] == [
        ["test.csv", f"{len(TEST_CSV)} B"],
        ["train.csv", f"{len(TRAIN_V1)} B"],
    ]
    metadata = _pairs(page, ".kv th", ".kv td")
    assert metadata == {
        "classes": "[0, 1]",
        "rows": "3",
        "source.split": "0.8",
        "source.url": "https://example.org/mnist",
    }
    # The graph: the run that logged it → this version → the run that used it → what that run logged.
    keys, edges = _lineage(page)
    prepare, train = f"r:{at}/{ids['prepare']}", f"r:{at}/{ids['train']}"
    mnist, model = f"a:{at}/mnist:v1", f"a:{at}/classifier:v0"
    assert keys == [prepare, mnist, train, model]
    assert edges == {(prepare, mnist), (mnist, train), (train, model)}
    assert page.locator(".lineage-node.current").get_attribute("data-node") == mnist
    assert page.locator(f".lineage-node[data-node='{train}']").inner_text().split("\n")[0] == "train"
    _shot(page_of, "dataset")

    # A file downloads with its bytes.
    with page.expect_download() as download:
        page.get_by_role("button", name="Download train.csv").click()
    saved = tmp_path / "train.csv"
    download.value.save_as(saved)
    assert saved.read_text() == TRAIN_V1

    # v0 from the versions table: its own alias, files and lineage (no run used it).
    _follow(page, page.locator("table.versions").get_by_role("link", name="v0"))
    assert page.url == logged.url("/artifacts/dataset/mnist/v0")
    assert page.locator("h1").inner_text() == "mnist:v0"
    assert page.locator(".title-row .alias").all_inner_texts() == ["raw"]
    assert ["train.csv", f"{len(TRAIN_V0)} B"] in [row[:2] for row in _cells(page, "table.files tbody tr")]
    assert _lineage(page) == ([prepare, f"a:{at}/mnist:v0"], {(prepare, f"a:{at}/mnist:v0")})

    # Back on v1 by its alias, then along the graph to the run that used it.
    page = page_of.open(logged.url("/artifacts/dataset/mnist/clean"))
    assert page.locator("h1").inner_text() == "mnist:v1"
    _follow(page, page.locator(f".lineage-node[data-node='{train}']"))
    assert page.url == logged.url(f"/runs/{ids['train']}")
    section = page.locator("section[data-section='artifacts']")
    assert section.locator("[data-artifacts='logged'] li a").all_inner_texts() == ["classifier:v0"]
    assert section.locator("[data-artifacts='used'] li a").all_inner_texts() == ["mnist:v1"]
    section.scroll_into_view_if_needed()
    _shot(page_of, "run")

    # The model's page: one hop further back, the inputs of the run that logged it.
    _follow(page, section.get_by_role("link", name="classifier:v0"))
    assert page.url == logged.url("/artifacts/model/classifier/v0")
    keys, edges = _lineage(page)
    assert keys == [mnist, train, model]
    assert edges == {(mnist, train), (train, model)}
    # A reference is listed with the URI it points to, where a stored file has its download.
    ref_uri = (logged.env.home / "model.bin").resolve().as_uri()
    assert _cells(page, "table.files tbody tr") == [
        ["model.bin", "2 kB", "Download"],
        ["weights/ref.bin", "2 kB", f"reference: {ref_uri}"],
    ]
    _shot(page_of, "model")
    _follow(page, page.locator(f".lineage-node[data-node='{mnist}']"))
    assert page.url == logged.url("/artifacts/dataset/mnist/v1")
    assert page.locator("h1").inner_text() == "mnist:v1"


def test_the_logging_run_lists_both_versions_and_a_missing_version_says_so(
    logged: Logged, page_of: Watched
) -> None:
    page = page_of.open(logged.url(f"/runs/{logged.ids['prepare']}"))
    section = page.locator("section[data-section='artifacts']")
    assert section.locator("[data-artifacts='logged'] li a").all_inner_texts() == ["mnist:v0", "mnist:v1"]
    assert section.locator("[data-artifacts='used'] p").inner_text() == "None."
    page = page_of.open(logged.url("/artifacts/dataset/mnist/v7"))
    assert "There is no version “v7” of dataset “mnist”" in page.locator("p.notice").inner_text()
    page = page_of.open(logged.url("/artifacts/model/mnist"))  # the right name, the wrong type
    assert page.locator("p.notice").count() == 1


def test_the_artifact_page_in_dark_mode(logged: Logged, browser: Any) -> None:
    watched = Watched(browser, "dark")
    watched.context.add_init_script(f"sessionStorage.setItem('nbtrack.apiKey', {json.dumps(logged.env.key)})")
    try:
        watched.open(logged.url("/artifacts/dataset/mnist/v1"))
        _shot(watched, "dataset-dark")
        assert watched.errors == []
    finally:
        watched.close()
