"""Talks to a real internal process the way the user side does, record by record, so that tests
can check what the internal process itself answers (exit results, the shutdown's answer,
heartbeats, acknowledgements) and when, whatever the user side does with it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.settings import store_url
from nbtrack.transport.process import InternalProcess


class Driver:
    """One internal process serving one local-mode run under root."""

    def __init__(
        self,
        root: Path,
        run_id: str,
        project: str = "test",
        *,
        recover: bool = False,
        stats_interval: float = 0.0,
    ) -> None:
        self.run_id, self.project = run_id, project
        self.log_path = root / "runs" / f"run-{run_id}" / f"run-{run_id}.nbt"
        self.process = InternalProcess()
        self.results: list[tuple[float, pb.Result]] = []  # (monotonic arrival time, result)
        self.eof = threading.Event()
        self._cond = threading.Condition()
        self._seq = 0
        self._slots = 0
        threading.Thread(target=self._read, name="driver-results", daemon=True).start()
        setup = pb.SetupRequest(
            mode="local",
            log_path=str(self.log_path),
            store_url=store_url(root),
            recover=recover,
            stats_interval=stats_interval,
        )
        self.send(pb.Record(request=pb.Request(setup=setup), control=pb.Control(local=True)))

    def _read(self) -> None:
        while True:
            try:
                data = self.process.result_pipe.recv_bytes()
            except (EOFError, OSError):
                self.eof.set()
                with self._cond:
                    self._cond.notify_all()
                return
            with self._cond:
                self.results.append((time.monotonic(), pb.Result.FromString(data)))
                self._cond.notify_all()

    def send(self, record: pb.Record) -> None:
        self.process.record_pipe.send_bytes(record.SerializeToString())

    def wait_for(self, match: Callable[[pb.Result], bool], timeout: float) -> pb.Result | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for _, result in self.results:
                    if match(result):
                        return result
                left = deadline - time.monotonic()
                if left <= 0 or self.eof.is_set():
                    return None
                self._cond.wait(left)

    def _slot(self) -> str:
        self._slots += 1
        return f"slot-{self._slots}"

    def start(self, **fields: Any) -> pb.RunUpdateResult:
        slot = self._slot()
        run = pb.RunRecord(run_id=self.run_id, project=self.project, start_time=time.time(), **fields)
        self.send(pb.Record(run=run, control=pb.Control(mailbox_slot=slot, req_resp=True, always_send=True)))
        result = self.wait_for(lambda r: r.control.mailbox_slot == slot, 30)
        assert result is not None, "no run result"
        start = pb.Request(run_start=pb.RunStartRequest())
        self.send(pb.Record(request=start, control=pb.Control(local=True)))
        return result.run_result

    def log(self, rows: list[dict[str, Any]]) -> None:
        """One batch of log() calls, numbered like the outbox numbers them."""
        first = self._seq + 1
        self._seq += len(rows)
        now = time.time()
        calls = orjson.dumps([[row, None, True, now] for row in rows])
        request = pb.LogCallsRequest(calls_json=calls, count=len(rows), first_seq=first)
        control = pb.Control(local=True, seq=self._seq)
        self.send(pb.Record(request=pb.Request(log_calls=request), control=control))

    def request(self, request: pb.Request, timeout: float = 30) -> pb.Response | None:
        slot = self._slot()
        self.send(pb.Record(request=request, control=pb.Control(mailbox_slot=slot, req_resp=True)))
        result = self.wait_for(lambda r: r.control.mailbox_slot == slot, timeout)
        return None if result is None else result.response

    def exit(self, exit_code: int = 0) -> str:
        slot = self._slot()
        exit_record = pb.ExitRecord(exit_code=exit_code)
        self.send(pb.Record(exit=exit_record, control=pb.Control(mailbox_slot=slot, always_send=True)))
        return slot

    def notices(self) -> list[str]:
        with self._cond:
            return [r.notice.message for _, r in self.results if r.HasField("notice")]

    def acknowledged(self) -> int:
        with self._cond:
            return max((r.ack.seq for _, r in self.results if r.HasField("ack")), default=0)

    def heartbeats(self) -> list[float]:
        with self._cond:
            return [at for at, r in self.results if r.HasField("heartbeat")]

    def close(self) -> None:
        self.process.kill()
        self.process.close_pipes()
