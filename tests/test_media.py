"""Media values (nbtrack.Image, Histogram, Table): checked in log(), stored as run files with a
reference in the history row, read back locally and through a real tracking server."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

import nbtrack
from nbtrack.sdk.image_files import encode_png
from tests.serving import POSTGRES_URL, ServerProcess, create_key, start_server, unique_name

PIL = pytest.importorskip("PIL.Image")


def decode(data: bytes) -> np.ndarray:
    return np.asarray(PIL.open(io.BytesIO(data)))


def _log_everything(run: nbtrack.Run, tmp_path: Path) -> dict[str, Any]:
    """Logs one of each media kind (and a plain number) in one row; what they should read back as."""
    rgb = np.zeros((20, 30, 3), dtype=np.uint8)
    rgb[:, :, 0] = np.arange(30, dtype=np.uint8) * 8
    rgb[5, 7] = (1, 2, 3)
    grey = np.linspace(0.0, 1.0, 12 * 8).reshape(12, 8)
    jpeg = tmp_path / "photo.jpg"
    PIL.fromarray(rgb).save(jpeg, format="JPEG")
    values = np.arange(100, dtype=np.float64)
    run.log(
        {
            "loss": 0.25,
            "samples": nbtrack.Image(rgb, caption="first batch"),
            "grey": nbtrack.Image(grey),
            "photo": nbtrack.Image(str(jpeg)),
            "pil": nbtrack.Image(PIL.fromarray(rgb).convert("RGBA")),
            "weights": nbtrack.Histogram(values, num_bins=10),
            "preds": nbtrack.Table(columns=["id", "label", "p"], data=[[1, "cat", 0.9], [2, "dog", 0.25]]),
        }
    )
    rgb[:] = 0  # the run keeps what log() was given
    return {"jpeg": jpeg.read_bytes()}


def _check_read_back(stored: Any, jpeg_bytes: bytes) -> None:
    history = stored.history()
    assert len(history) == 1
    row = history[0]
    assert row["loss"] == 0.25
    image = row["samples"]
    assert image["_type"] == "image-file" and image["format"] == "png"
    assert (image["width"], image["height"], image["caption"]) == (30, 20, "first batch")
    assert image["path"].startswith("media/images/samples_") and image["path"].endswith(".png")
    pixels = decode(stored.file(image["path"]))
    assert pixels.shape == (20, 30, 3)
    assert tuple(pixels[5, 7]) == (1, 2, 3) and pixels[0, 3, 0] == 24  # not the zeros written after log()
    grey = decode(stored.file(row["grey"]["path"]))
    assert grey.shape == (12, 8) and grey[0, 0] == 0 and grey[-1, -1] == 255
    photo = row["photo"]
    assert (photo["format"], photo["width"], photo["height"]) == ("jpeg", 30, 20)
    assert photo["path"].endswith(".jpg") and stored.file(photo["path"]) == jpeg_bytes
    assert decode(stored.file(row["pil"]["path"])).shape == (20, 30, 4)
    histogram = row["weights"]
    assert histogram["_type"] == "histogram"
    assert histogram["values"] == [10] * 10 and len(histogram["bins"]) == 11
    assert histogram["bins"][0] == 0.0 and histogram["bins"][-1] == 99.0
    table = row["preds"]
    assert (table["_type"], table["ncols"], table["nrows"]) == ("table-file", 3, 2)
    assert json.loads(stored.file(table["path"])) == {
        "columns": ["id", "label", "p"],
        "data": [[1, "cat", 0.9], [2, "dog", 0.25]],
    }
    assert stored.summary["samples"]["path"] == image["path"]
    with pytest.raises(FileNotFoundError, match="no file"):
        stored.file("media/images/nothing.png")


def test_media_round_trip_through_the_local_store(root: Path, tmp_path: Path) -> None:
    run = nbtrack.init(project="media", dir=root)
    expected = _log_everything(run, tmp_path)
    run.finish()
    assert run.state == "finished" and not run.notices
    stored = nbtrack.Api(dir=root).run(f"media/{run.id}")
    _check_read_back(stored, expected["jpeg"])
    # The files sit under the store's files folder, where `nbtrack server --dir` serves them.
    path = stored.history()[0]["samples"]["path"]
    assert (root / "files" / "local" / "media" / run.id / path).is_file()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_media_round_trip_through_a_server(database: str, tmp_path: Path) -> None:
    if database == "postgresql" and not POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the server on PostgreSQL")
    server: ServerProcess = start_server(
        tmp_path / "server", db_url=POSTGRES_URL if database == "postgresql" else None
    )
    try:
        # The PostgreSQL database is shared with other tests, which create keys: use one of our own.
        entity = "local" if database == "sqlite" else unique_name("media")
        key = None if database == "sqlite" else create_key(server, entity)
        run = nbtrack.init(base_url=server.url, api_key=key, project="media")
        expected = _log_everything(run, tmp_path)
        run.finish()
        assert run.state == "finished" and not run.notices
        stored = nbtrack.Api(base_url=server.url, api_key=key).run(f"media/{run.id}")
        _check_read_back(stored, expected["jpeg"])
        # Downloadable at the run file URL the web UI uses (with the key, when there are keys).
        path = stored.history()[0]["samples"]["path"]
        auth = ("api", key) if key else None
        download = requests.get(f"{server.url}/files/{entity}/media/{run.id}/{path}", auth=auth, timeout=10)
        assert download.status_code == 200 and decode(download.content).shape == (20, 30, 3)
    finally:
        server.stop()


def test_an_offline_runs_media_arrive_with_nbtrack_sync(root: Path) -> None:
    from nbtrack.settings import store_url
    from nbtrack.sync import sync_log

    with nbtrack.init(project="media", dir=root, mode="offline") as run:
        run.log({"img": nbtrack.Image(np.full((3, 5), 7, dtype=np.uint8))})
    report = sync_log(next(run.dir.glob("*.nbt")), store_url(root))
    assert (report.rows, report.state) == (1, "finished")
    stored = nbtrack.Api(dir=root).run(f"media/{run.id}")
    assert decode(stored.file(stored.history()[0]["img"]["path"])).tolist() == [[7] * 5] * 3


def test_media_in_many_rows_get_distinct_files(root: Path) -> None:
    run = nbtrack.init(project="media", dir=root)
    for step in range(5):
        run.log({"img": nbtrack.Image(np.full((4, 4), step * 50, dtype=np.uint8)), "x": step})
    run.log({"img": nbtrack.Image(np.zeros((4, 4), dtype=np.uint8))})  # same pixels as step 0
    run.finish()
    stored = nbtrack.Api(dir=root).run(f"media/{run.id}")
    paths = [row["img"]["path"] for row in stored.history()]
    assert len(set(paths)) == 6
    assert [int(decode(stored.file(p))[0, 0]) for p in paths] == [0, 50, 100, 150, 200, 0]


def test_log_waits_for_the_media_thread_when_too_much_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from nbtrack.sdk import media_writer as media

    monkeypatch.setattr(media, "MAX_WAITING_BYTES", 100)
    release, delivered = threading.Event(), []

    def slow() -> bytes:
        release.wait(10)
        return b"x"

    writer = media.MediaWriter(tmp_path, delivered.append, lambda message: None)
    job = media.PreparedFile("images", ".png", "0" * 64, {}, slow, 150)
    writer.submit([("a.png", job)])  # over the bound alone: still accepted
    second = threading.Thread(target=writer.submit, args=([("b.png", job)],))
    second.start()
    second.join(0.3)
    assert second.is_alive(), "waits while 150 bytes wait"
    release.set()
    second.join(10)
    assert writer.drain(10) and delivered == ["a.png", "b.png"]
    assert (tmp_path / "b.png").read_bytes() == b"x"


def test_a_media_thread_that_fails_says_so_once_and_never_keeps_log_waiting(tmp_path: Path) -> None:
    import time

    from nbtrack.sdk import media_writer as media

    class Bug(BaseException):  # not an Exception: no file error, a fault nobody planned for
        pass

    def broken() -> bytes:
        raise Bug("bug")

    said: list[str] = []
    writer = media.MediaWriter(tmp_path, lambda name: None, said.append)
    job = media.PreparedFile("images", ".png", "0" * 64, {}, broken, 10)
    writer.submit([("a.png", job)])
    deadline = time.monotonic() + 20
    while writer.failure is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.failure == "the nbtrack-media thread failed (Bug: bug)"
    assert said == [f"media files are no longer written: {writer.failure}"]
    writer.submit([("b.png", job)])  # returns at once: said, not queued
    assert said[1:] == [f"could not write media file b.png: {writer.failure}"]
    assert writer.drain(0.0)  # nothing left waiting for it
    assert not (tmp_path / "b.png").exists()


def test_plain_rows_do_not_start_the_media_thread(root: Path) -> None:
    run = nbtrack.init(project="media", dir=root)
    run.log({"x": 1.0})
    assert run._media.writer is None
    run.finish()


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (nbtrack.Image(np.zeros((2, 3, 5))), ValueError, r"'bad'.*shape \(2, 3, 5\)"),
        (nbtrack.Image(np.zeros((2, 3, 4, 1))), ValueError, r"'bad'.*shape"),
        (nbtrack.Image(np.zeros(7)), ValueError, r"'bad'.*shape \(7,\)"),
        (nbtrack.Image(np.zeros((0, 3))), ValueError, "'bad'.*empty"),
        (nbtrack.Image(np.array([[0.5, np.nan]])), ValueError, "'bad'.*NaN"),
        (nbtrack.Image(np.array([[0.5, 2.0]])), ValueError, r"'bad'.*\[0, 1\]"),
        (nbtrack.Image(np.array([[0, 300]])), ValueError, "'bad'.*0..255"),
        (nbtrack.Image(np.array([["a", "b"]])), ValueError, "'bad'.*dtype"),
        (nbtrack.Image("does/not/exist.png"), FileNotFoundError, "'bad'.*no file"),
        (nbtrack.Image(b"\x89PNG"), TypeError, "'bad'.*bytes"),
        (nbtrack.Histogram(["a", "b"]), ValueError, "'bad'.*numbers"),
        (nbtrack.Histogram([1.0, float("nan")]), ValueError, "'bad'.*NaN"),
        (nbtrack.Histogram([]), ValueError, "'bad'.*no values"),
        (nbtrack.Histogram(np_histogram=([1, 2], [0.0, 1.0])), ValueError, "'bad'.*n \\+ 1 edges"),
        (nbtrack.Table(columns=["a", "b"], data=[[1, 2], [3]]), ValueError, "'bad'.*row 1 has 1 cells"),
        (nbtrack.Table(data=[[1, 2], [3, 4, 5]]), ValueError, "'bad'.*row 1 has 3 cells"),
        (nbtrack.Table(columns=["a"], data=[[object()]]), TypeError, r"'bad\[0\]\[0\]'"),
        (nbtrack.Table(columns=["a", "a"], data=[[1, 2]]), ValueError, "'bad'.*column name twice"),
        (nbtrack.Table(columns=["a"]), ValueError, "'bad'.*no data"),
    ],
)
def test_bad_media_raises_from_log_naming_the_key_and_logs_nothing(
    root: Path, value: Any, error: type[Exception], match: str
) -> None:
    run = nbtrack.init(project="media", dir=root)
    good = nbtrack.Image(np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(error, match=match):
        run.log({"good": good, "bad": value, "x": 1})
    run.log({"x": 2})
    run.finish()
    stored = nbtrack.Api(dir=root).run(f"media/{run.id}")
    assert [row["x"] for row in stored.history()] == [2]  # nothing of the failed call
    assert not (run.dir / "files").exists()  # no file of the good image either
    assert run._media.writer is None


def test_a_list_of_images_says_how_to_log_them(root: Path) -> None:
    run = nbtrack.init(project="media", dir=root)
    with pytest.raises(TypeError, match=r"'many\[1\]' is an nbtrack.Image in a list.*'images/0'"):
        run.log({"many": [1.0, nbtrack.Image(np.zeros((2, 2)))]})
    run.finish()


def test_bad_arguments_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="num_bins"):
        nbtrack.Histogram([1.0], num_bins=0)
    with pytest.raises(TypeError, match="np_histogram"):
        nbtrack.Histogram()
    with pytest.raises(TypeError, match="caption"):
        nbtrack.Image(np.zeros((2, 2)), caption=3)  # type: ignore[arg-type]


def test_a_damaged_or_foreign_image_file_is_refused(root: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(encode_png(np.zeros((2, 2, 3), dtype=np.uint8))[:12])
    run = nbtrack.init(project="media", dir=root)
    with pytest.raises(ValueError, match=r"'a'.*neither a PNG nor a JPEG"):
        run.log({"a": nbtrack.Image(text)})
    with pytest.raises(ValueError, match=r"'b'.*damaged PNG"):
        run.log({"b": nbtrack.Image(truncated)})
    run.finish()


def test_histogram_from_np_histogram_and_table_from_a_dataframe(root: Path) -> None:
    pd = pytest.importorskip("pandas")
    counts, edges = np.histogram([0.0, 0.1, 0.9, 1.0], bins=2)
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", None], "c": [0.5, np.float32(1.5)]})
    run = nbtrack.init(project="media", dir=root)
    run.log({"h": nbtrack.Histogram(np_histogram=(counts, edges)), "t": nbtrack.Table(dataframe=frame)})
    run.log({"t2": nbtrack.Table(frame)})
    run.finish()
    stored = nbtrack.Api(dir=root).run(f"media/{run.id}")
    first, second = stored.history()
    assert first["h"]["values"] == [2, 2] and first["h"]["bins"] == [0.0, 0.5, 1.0]
    table = json.loads(stored.file(first["t"]["path"]))
    assert table == {"columns": ["a", "b", "c"], "data": [[1, "x", 0.5], [2, None, 1.5]]}
    assert json.loads(stored.file(second["t2"]["path"])) == table


def test_encode_png_round_trips_every_channel_count() -> None:
    rng = np.random.default_rng(1)
    for shape in [(3, 5, 1), (7, 2, 3), (4, 4, 4)]:
        pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
        back = decode(encode_png(pixels))
        assert np.array_equal(back.reshape(shape), pixels)


def test_log_stays_quick_with_an_image(root: Path) -> None:
    """The PNG is encoded on the media thread: log() of a large image costs a copy and a hash."""
    pixels = np.random.default_rng(0).integers(0, 256, size=(1024, 1024, 3), dtype=np.uint8)
    run = nbtrack.init(project="media", dir=root)
    started = time.perf_counter()
    run.log({"big": nbtrack.Image(pixels)})
    took = time.perf_counter() - started
    encode_started = time.perf_counter()
    encode_png(pixels)
    encode_took = time.perf_counter() - encode_started
    run.finish()
    assert took < encode_took / 2, (took, encode_took)


# -- the notebook panel ---------------------------------------------------------------------------


@pytest.fixture
def panel_comms(monkeypatch: pytest.MonkeyPatch) -> None:
    comm = pytest.importorskip("comm")
    from comm import DummyComm

    monkeypatch.setattr(comm, "create_comm", DummyComm)


def _panel_after_logging(root: Path) -> Any:
    from nbtrack.extension.media_preview import media_preview
    from nbtrack.extension.panel import RunPanel

    pixels = np.random.default_rng(2).integers(0, 256, size=(300, 200, 3), dtype=np.uint8)
    run = nbtrack.init(project="media", dir=root)
    run.log(
        {
            "loss": 0.5,
            "samples": nbtrack.Image(pixels, caption="noise"),
            "weights": nbtrack.Histogram(np.arange(1000), num_bins=100),
        }
    )
    run.finish()
    latest = nbtrack.Api(dir=root).run(f"media/{run.id}").history()[-1]  # what the live result carries
    panel = RunPanel(name="n", run_id=run.id, project="media", entity="local")
    panel.set_state(metrics=latest, media=media_preview(run, latest))
    return panel


def test_the_panel_shows_a_thumbnail_of_the_newest_image_and_the_histogram(
    panel_comms: None, root: Path
) -> None:
    from nbtrack.extension.panel_limits import MAX_HISTOGRAM_BARS, MAX_IMAGE_SRC_CHARS

    panel = _panel_after_logging(root)
    assert set(panel.metrics) == {"loss"}, "media are not metric cards"
    image = panel.media["image"]
    assert (image["key"], image["caption"], image["width"], image["height"]) == ("samples", "noise", 200, 300)
    src = image["src"]
    assert src.startswith("data:image/png;base64,") and len(src) <= MAX_IMAGE_SRC_CHARS
    import base64

    thumb = decode(base64.b64decode(src.split(",", 1)[1]))
    assert max(thumb.shape[:2]) <= 64 and thumb.shape[2] == 3
    histogram = panel.media["histogram"]
    assert histogram["key"] == "weights" and len(histogram["values"]) <= MAX_HISTOGRAM_BARS
    assert sum(histogram["values"]) == 1000 and len(histogram["bins"]) == len(histogram["values"]) + 1
    snapshot = panel.html_summary()
    assert src in snapshot and "<svg" in snapshot


def test_the_panel_shows_a_small_image_logged_from_a_file_as_it_is(
    panel_comms: None, root: Path, tmp_path: Path
) -> None:
    from nbtrack.extension.media_preview import media_preview

    jpeg = tmp_path / "small.jpg"
    PIL.fromarray(np.full((10, 12, 3), 200, dtype=np.uint8)).save(jpeg, format="JPEG")
    run = nbtrack.init(project="media", dir=root)
    run.log({"photo": nbtrack.Image(jpeg)})
    run.finish()
    latest = nbtrack.Api(dir=root).run(f"media/{run.id}").history()[-1]
    image = media_preview(run, latest)["image"]
    assert image["src"].startswith("data:image/jpeg;base64,") and (image["width"], image["height"]) == (
        12,
        10,
    )


def test_the_panel_refuses_an_image_source_that_is_not_an_inline_png() -> None:
    from nbtrack.extension.panel_limits import clean_image

    for src in [
        "javascript:alert(1)",
        "https://example.org/x.png",
        "data:image/svg+xml;base64,PHN2Zz4=",
        "data:image/png;base64,<b>",
    ]:
        assert clean_image({"key": "k", "src": src}) is None


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_the_panel_module_renders_the_image_and_histogram_in_chromium(panel_comms: None, root: Path) -> None:
    """panel.js (the bundled module the widget ships) rendered in Chromium with a stand-in model."""
    sync_api = pytest.importorskip("playwright.sync_api")
    panel = _panel_after_logging(root)
    traits = ["header", "state", "step", "runtime", "metrics", "series", "pending", "notices", "media"]
    state = {name: getattr(panel, name) for name in traits}
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.set_content("<div id='out'></div>")
            page.evaluate(
                """async ([esm, state]) => {
                    const url = URL.createObjectURL(new Blob([esm], { type: "text/javascript" }));
                    const widget = (await import(url)).default;
                    const model = { get: (name) => state[name], on() {}, off() {} };
                    widget.render({ model, el: document.getElementById("out") });
                }""",
                [panel._esm, state],
            )
            page.wait_for_function("() => document.querySelector('.nbt-media img')?.naturalWidth > 0")
            assert page.locator(".nbt-media .nbt-hist rect").count() == len(
                panel.media["histogram"]["values"]
            )
            assert page.locator(".nbt-media .nbt-key").first.inner_text() == "samples — noise"
            artifacts = Path(__file__).resolve().parent.parent / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            page.screenshot(path=str(artifacts / "panel-media.png"))
            assert errors == []
        finally:
            browser.close()


def test_the_panel_in_a_real_kernel_receives_the_image_and_histogram(tmp_path: Path, root: Path) -> None:
    pytest.importorskip("ipykernel")
    from tests.test_kernel import Kernel, panel_updates

    kernel = Kernel(tmp_path, root)
    try:
        assert kernel.execute("%load_ext nbtrack")[0]["status"] == "ok"
        code = (
            "import time, numpy as np\n"
            "run = nbtrack.init(project='kernel', name='media')\n"
            "for i in range(10):\n"
            "    pixels = np.full((8, 8), i * 20, dtype=np.uint8)\n"
            "    run.log({'loss': 1 / (i + 1), 'img': nbtrack.Image(pixels),\n"
            "             'h': nbtrack.Histogram(np.arange(50) + i, num_bins=8)})\n"
            "    time.sleep(0.1)\n"
            "run.finish()\n"
        )
        reply, messages = kernel.execute(code)
        assert reply["status"] == "ok", reply
        media = [u["content"]["data"]["state"].get("media") or {} for u in panel_updates(messages)]
        media = [m for m in media if m.get("image")]
        assert media, "an update carried the image"
        assert media[-1]["image"]["key"] == "img" and media[-1]["image"]["src"].startswith("data:image/png")
        assert media[-1]["histogram"]["key"] == "h" and sum(media[-1]["histogram"]["values"]) == 50
    finally:
        kernel.close()


def test_media_still_being_written_when_finish_stops_waiting_are_counted_and_sync_delivers_them(
    root: Path,
) -> None:
    """finish(timeout=0.2) returns while the media thread still writes images: it says how many,
    where they go and the command that delivers them; once written, `nbtrack sync` of the log
    delivers every one, though no record of the log announces the late ones."""
    from nbtrack.sync import sync_log

    run = nbtrack.init(project="media", dir=root, id="late")
    rng = np.random.default_rng(0)
    for i in range(30):  # noise: each PNG takes the media thread a while to encode
        run.log({"i": i, "noise": nbtrack.Image(rng.integers(0, 255, (768, 768, 3), dtype=np.uint8))})
    run.finish(timeout=0.2)
    said = [n for n in run.notices if "media files were still being written" in n]
    assert len(said) == 1 and f"`nbtrack sync {run._settings.log_path}`" in said[0], run.notices
    assert run._media.writer is not None and run._media.writer.drain(60)  # this process goes on writing them
    assert run._connection is not None and run._connection.process.join(60)
    report = sync_log(run._settings.log_path, f"sqlite:///{root / 'nbtrack.db'}")
    assert report.error is None, report
    stored = nbtrack.Api(dir=root).run("media/late")
    paths = [row["noise"]["path"] for row in stored.history()]
    assert len(paths) == 30
    missing = [p for p in paths if not (root / "files" / "local" / "media" / "late" / p).is_file()]
    assert not missing
