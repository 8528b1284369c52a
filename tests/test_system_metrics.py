"""System metrics: sampled by the internal process, stored as the run's events, locally and on a server."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import nbtrack
from nbtrack.errors import UsageError
from nbtrack.internal.system_metrics import SystemSampler, parse_nvidia_smi
from nbtrack.store import Store

CORE_ITEMS = {"system.cpu", "system.memory", "system.proc.cpu", "system.proc.memory.rss_mb"}


def test_nvidia_smi_output_becomes_items_per_gpu() -> None:
    text = "37, 1024, 16384\n100, 16000, 16000\n"
    assert parse_nvidia_smi(text) == {
        "system.gpu.0.gpu": 37.0,
        "system.gpu.0.memory_mb": 1024.0,
        "system.gpu.0.memory": 6.25,
        "system.gpu.1.gpu": 100.0,
        "system.gpu.1.memory_mb": 16000.0,
        "system.gpu.1.memory": 100.0,
    }


@pytest.mark.parametrize("text", ["", "\n", "[N/A], 10, 100", "1, 2", "garbage"])
def test_unreadable_nvidia_smi_lines_are_left_out(text: str) -> None:
    assert parse_nvidia_smi(text) == {}


def test_a_sample_describes_this_machine_and_the_user_process() -> None:
    sampler = SystemSampler(os.getpid())  # this test process plays the user's
    sum(i * i for i in range(300_000))  # some CPU between the samples
    items = sampler.sample()
    assert set(items) >= CORE_ITEMS
    assert 0 <= items["system.cpu"] <= 100
    assert 0 < items["system.memory"] <= 100
    assert items["system.proc.memory.rss_mb"] > 10  # a Python process with pytest loaded
    assert items["system.proc.cpu"] >= 0


def wait_for(condition, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def events_of(root: Path, run_id: str) -> list[dict[str, float]]:
    from nbtrack import jsonutil

    with Store.at_root(root) as store:
        return [jsonutil.loads(line) for line in store.read_events("local", "test", run_id)]


def test_a_run_stores_system_metrics_samples(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBTRACK_STATS_INTERVAL", "0.2")
    run = nbtrack.init(project="test", dir=root, id="sampled")
    run.log({"loss": 1.0})
    assert wait_for(lambda: len(events_of(root, "sampled")) >= 3)
    run.finish()
    events = events_of(root, "sampled")
    assert all(set(event) >= CORE_ITEMS for event in events)
    runtimes = [event["_runtime"] for event in events]
    assert runtimes == sorted(runtimes) and runtimes[0] > 0


def test_interval_zero_turns_sampling_off_and_a_bad_one_is_named(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACK_STATS_INTERVAL", "0")
    run = nbtrack.init(project="test", dir=root, id="quiet")
    time.sleep(0.5)
    run.finish()
    assert events_of(root, "quiet") == []
    monkeypatch.setenv("NBTRACK_STATS_INTERVAL", "often")
    with pytest.raises(UsageError, match=r"NBTRACK_STATS_INTERVAL.*'often'"):
        nbtrack.init(project="test", dir=root)


def test_system_metrics_reach_a_tracking_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbtrack import jsonutil
    from nbtrack.online.reader import ServerReader
    from tests.serving import start_server

    monkeypatch.setenv("NBTRACK_STATS_INTERVAL", "0.2")
    server = start_server(tmp_path / "server")
    reader = ServerReader(server.url)
    try:
        run = nbtrack.init(project="test", dir=tmp_path / "client", id="remote", base_url=server.url)
        assert wait_for(lambda: len(reader.read_events("local", "test", "remote")) >= 3)
        run.finish()
        events = [jsonutil.loads(line) for line in reader.read_events("local", "test", "remote")]
        assert len(events) >= 3 and all(set(event) >= CORE_ITEMS for event in events)
    finally:
        reader.close()
        server.stop()
