"""System metrics: a thread of the internal process samples the machine and the user's processes.

Every `interval` seconds it takes one sample (CPU and memory of the machine and of the user's
process tree, disk and network throughput since the last sample, and each GPU's utilisation and
memory when `nvidia-smi` is on PATH) and hands it to the writer as a StatsRecord; the sender
turns those into the run's events lines. A sample costs about a millisecond of CPU, so at the
default interval the thread stays far below 1% of a core (benchmarks/bench_stats.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable

import psutil

from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.worker import Inbox, OnFatal, Worker

__all__ = ["DEFAULT_INTERVAL", "StatsThread", "SystemSampler", "parse_nvidia_smi"]

logger = logging.getLogger("nbtrack")

DEFAULT_INTERVAL = 5.0  # seconds between samples
MB = 1e6
GPU_QUERY = "utilization.gpu,memory.used,memory.total"
GPU_FORMAT = "--format=csv,noheader,nounits"
GPU_TIMEOUT = 2.0


class SystemSampler:
    """One sample at a time; rates (disk, network, CPU %) are over the time since the last one."""

    def __init__(self, user_pid: int) -> None:
        self._user_pid = user_pid
        self._own_pid = os.getpid()
        self._processes: dict[int, psutil.Process] = {}  # kept: cpu_percent() measures between calls
        self._nvidia_smi = shutil.which("nvidia-smi")
        self._last_time = time.monotonic()
        self._last_disk = psutil.disk_io_counters()
        self._last_net = psutil.net_io_counters()
        psutil.cpu_percent(None)  # the first call only starts the measurement
        self._tree()

    def sample(self) -> dict[str, float]:
        now = time.monotonic()
        elapsed = max(now - self._last_time, 1e-6)
        self._last_time = now
        memory = psutil.virtual_memory()
        items = {
            "system.cpu": psutil.cpu_percent(None),
            "system.memory": memory.percent,
            "system.memory.available_mb": memory.available / MB,
        }
        cpu = rss = 0.0
        for process in self._tree():
            try:
                cpu += process.cpu_percent(None)
                rss += process.memory_info().rss
            except psutil.Error:
                continue  # it ended between listing and asking
        items["system.proc.cpu"] = cpu
        items["system.proc.memory.rss_mb"] = rss / MB
        disk = psutil.disk_io_counters()
        if disk is not None and self._last_disk is not None:
            items["system.disk.read_mb_s"] = (disk.read_bytes - self._last_disk.read_bytes) / MB / elapsed
            items["system.disk.write_mb_s"] = (disk.write_bytes - self._last_disk.write_bytes) / MB / elapsed
        self._last_disk = disk
        net = psutil.net_io_counters()
        if net is not None and self._last_net is not None:
            items["system.network.sent_mb_s"] = (net.bytes_sent - self._last_net.bytes_sent) / MB / elapsed
            items["system.network.recv_mb_s"] = (net.bytes_recv - self._last_net.bytes_recv) / MB / elapsed
        self._last_net = net
        if self._nvidia_smi is not None:
            items.update(self._gpus())
        return items

    def _tree(self) -> list[psutil.Process]:
        """The user's process and its descendants, this internal process left out."""
        try:
            user = self._processes.get(self._user_pid) or psutil.Process(self._user_pid)
            found = [user, *user.children(recursive=True)]
        except psutil.Error:
            return []
        alive = {
            p.pid: self._processes.get(p.pid, p)
            for p in found
            if p.pid != self._own_pid or p.pid == self._user_pid
        }
        for pid, process in alive.items():
            if pid not in self._processes:
                with contextlib.suppress(psutil.Error):
                    process.cpu_percent(None)  # starts its measurement; counted from the next sample
        self._processes = alive
        return list(alive.values())

    def _gpus(self) -> dict[str, float]:
        try:
            done = subprocess.run(
                [self._nvidia_smi or "nvidia-smi", f"--query-gpu={GPU_QUERY}", GPU_FORMAT],
                capture_output=True,
                text=True,
                timeout=GPU_TIMEOUT,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            self._nvidia_smi = None  # not usable here: stop asking
            return {}
        return parse_nvidia_smi(done.stdout)


def parse_nvidia_smi(text: str) -> dict[str, float]:
    """`nvidia-smi --query-gpu=utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits`
    output as items: system.gpu.N.gpu (%), .memory_mb, .memory (% of total). Unreadable lines
    (e.g. "[N/A]") are left out."""
    items: dict[str, float] = {}
    for index, line in enumerate(line for line in text.splitlines() if line.strip()):
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 3:
            continue
        try:
            utilisation, used, total = (float(field) for field in fields)
        except ValueError:
            continue
        items[f"system.gpu.{index}.gpu"] = utilisation
        items[f"system.gpu.{index}.memory_mb"] = used
        if total > 0:
            items[f"system.gpu.{index}.memory"] = 100.0 * used / total
    return items


class StatsThread(Worker[None]):
    """Samples every interval seconds on the thread named "Stats" and hands each sample to put.

    The worker shape of every background thread (nbtrack/worker.py): a sample that cannot
    be taken is logged and skipped, but anything else that fails ends the process.
    """

    def __init__(
        self,
        sampler: SystemSampler,
        interval: float,
        put: Callable[[list[pb.Record]], None],
        on_fatal: OnFatal,
        cell: Callable[[], int] = lambda: 0,
    ) -> None:
        """cell() names the notebook cell running now (0: none), stamped on each sample."""
        self._sampler = sampler
        self._interval = interval
        self._put = put
        self._cell = cell
        self.latest: dict[str, float] | None = None  # the newest sample, for a live panel
        self._running = threading.Event()  # cleared while paused
        self._running.set()
        self._due = time.monotonic() + interval
        self.idle_seconds = min(interval, 0.5)  # how soon a stop() or a resume() is noticed
        super().__init__("Stats", Inbox[None](1), on_fatal)

    def pause(self) -> None:
        """No samples until resume() (between a notebook's cells, when the user asks for it)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self, timeout: float = 2.0) -> bool:
        """No sample after this returns (one being taken is dropped)."""
        self.abandon()
        return super().stop(timeout)

    def idle(self) -> None:
        now = time.monotonic()
        if now < self._due:
            return
        self._due = now + self._interval
        if not self._running.is_set():
            return
        try:
            items = self._sampler.sample()
        except Exception:  # a metric that cannot be read must not end the run's sampling
            logger.exception("nbtrack: sampling system metrics failed")
            return
        if self.stopping() is not None:
            return
        self.latest = items
        stats = pb.StatsRecord(timestamp=time.time(), items=items, cell=self._cell())
        self._put([pb.Record(stats=stats)])
