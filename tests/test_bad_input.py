"""The bad-input matrix (issue 6). The promise: a value that log() accepted is stored, exactly
once, or the user is told clearly that it was not.

Each row of CASES is one way to get nbtrack wrong (a bad value, a bad key, a call out of order,
threads, a fork, bad init() arguments, bad magics) and what must happen: an error of the given
type whose message names the culprit, or a documented acceptance (docs/guarantees.md). Around
every call a good row is logged before and after it; then the run is finished and read back from
the store, which must hold exactly the good rows plus what the case accepted: no half-logged
row, no lost neighbour, no crashed internal process. Each case has its own pytest-timeout, so a
hang fails it instead of the suite.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nbtrack
from nbtrack.errors import UsageError
from nbtrack.vocabulary import STEP_MAX

BEFORE = {"good": "before"}
AFTER = {"good": "after"}
RESERVED = ("_step", "_runtime", "_timestamp", "_cell")  # _cell: a kernel case's rows know their cell
BIG_TEXT = "x" * (10 * 2**20)  # 10 MB
BIG_LIST = list(range(10**6))
WIDE_ROW = {f"k{i}": i for i in range(10**5)}
THREADS, CALLS_PER_THREAD = 8, 1000


class KernelError(Exception):
    """A cell failed in the kernel; the message is "ename: evalue", as the front end shows it."""


class Magics:
    """The module's kernel (the real ipykernel of tests/test_kernel.py) with nbtrack loaded."""

    def __init__(self, kernel: Any, root: Path) -> None:
        self.kernel, self.root = kernel, root

    def ok(self, code: str) -> None:
        reply, _ = self.kernel.execute(code)
        assert reply["status"] == "ok", "\n".join(reply.get("traceback", [])) or reply

    def cell(self, code: str) -> None:
        reply, _ = self.kernel.execute(code)
        if reply["status"] != "ok":
            raise KernelError(f"{reply['ename']}: {reply['evalue']}")


@dataclass
class Ctx:
    """What a case's call works on."""

    root: Path
    run_id: str = "victim"
    run: nbtrack.Run | None = None  # the live run around the call ("run" scope)
    magics: Magics | None = None  # "kernel" scope
    seen: list[Any] = field(default_factory=list)  # what a concurrent call saw accepted

    @property
    def live(self) -> nbtrack.Run:
        assert self.run is not None
        return self.run

    @property
    def kernel(self) -> Magics:
        assert self.magics is not None
        return self.magics


@dataclass(frozen=True)
class Case:
    id: str
    category: str  # the row of docs/guarantees.md's table it belongs to
    call: Callable[[Ctx], object]
    error: type[BaseException] | None = None  # None: a documented acceptance
    match: str = ""  # searched in the error's message: it names the culprit
    rows: tuple[dict[str, Any], ...] = ()  # what the call itself leaves in the history
    check: Callable[[Ctx, list[dict[str, Any]]], None] | None = None  # instead of rows
    scope: str = "run"  # "run": a live run around the call; "none": no run yet; "kernel"
    notice: str = ""  # the one warning the run must give
    steps: tuple[int, ...] | None = None  # the whole history's steps, when the case sets them
    config: dict[str, Any] | None = None  # the stored config, when the case touches it
    summary: dict[str, Any] | None = None  # entries the stored summary must hold
    timeout: float = 30
    xfail: str = ""  # a known bug outside run.py/values.py/run_state.py (strict)
    linux_only: bool = False


# -- calls ------------------------------------------------------------------------------------


def log(data: Any, **kwargs: Any) -> Callable[[Ctx], object]:
    return lambda c: c.live.log(data, **kwargs)


def at_the_last_step(c: Ctx) -> None:
    """A row at the largest step, then a plain log() with no step left for it; the case finishes
    the run itself (the harness's row after would be refused the same way)."""
    c.live.log({"x": 1}, step=STEP_MAX)
    c.live.log({"y": 2})
    c.live.finish()


def logs(*calls: tuple[Any, dict[str, Any]]) -> Callable[[Ctx], object]:
    def call(c: Ctx) -> None:
        for data, kwargs in calls:
            c.live.log(data, **kwargs)

    return call


def init(**kwargs: Any) -> Callable[[Ctx], object]:
    return lambda c: nbtrack.init(**{"project": "matrix", "dir": c.root, **kwargs})


def after_finish(then: Callable[[nbtrack.Run], object]) -> Callable[[Ctx], object]:
    def call(c: Ctx) -> object:
        c.live.finish()
        return then(c.live)

    return call


def magic(code: str) -> Callable[[Ctx], object]:
    """A cell for the kernel; {id} is the live run's id, {unwritable} a folder nbtrack cannot use."""
    return lambda c: c.kernel.cell(code.format(id=c.run_id, unwritable=unwritable_dir(c.kernel.root.parent)))


def unwritable_dir(parent: Path) -> Path:
    """A root nbtrack cannot create: inside a read-only folder, or, for root (who may write
    anywhere), below a regular file."""
    if os.geteuid() != 0:
        locked = parent / "read-only"
        locked.mkdir(exist_ok=True)
        locked.chmod(0o555)
        return locked / "root"
    blocker = parent / "not-a-folder"
    blocker.touch()
    return blocker / "root"


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"d": value}
    return value


def self_referential() -> dict[str, Any]:
    loop: dict[str, Any] = {"x": 1}
    loop["again"] = loop
    return loop


class Opaque:
    pass


class TensorLike:
    """What log() sees of a torch tensor or numpy array: .item(), .ndim and .shape."""

    def __init__(self, *shape: int) -> None:
        self.shape, self.ndim = shape, len(shape)

    def item(self) -> float:
        if self.ndim:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return 0.5


class FailingTensor:
    """A 0-d tensor whose .item() fails, as a CUDA tensor does after a device-side assert."""

    ndim, shape = 0, ()

    def item(self) -> float:
        raise RuntimeError("CUDA error: device-side assert triggered")


def delete_a_config_key(c: Ctx) -> None:
    c.live.config["lr"] = 0.1
    del c.live.config["lr"]


def save(name: str | None = None, exists: bool = True) -> Callable[[Ctx], object]:
    def call(c: Ctx) -> object:
        source = c.root.parent / "model.txt"
        if exists:
            source.write_text("weights")
        return c.live.save(source, name=name)

    return call


def log_from_threads(c: Ctx) -> None:
    """THREADS threads log CALLS_PER_THREAD rows each at once; every 10th row holds a NaN, so
    the exact (slower) encoding path interleaves with the fast one."""

    def work(thread: int) -> None:
        for i in range(CALLS_PER_THREAD):
            c.live.log({"thread": thread, "i": i, "x": math.nan if i % 10 == 0 else float(i)})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)


def every_thread_row_once_in_its_order(c: Ctx, rows: list[dict[str, Any]]) -> None:
    assert len(rows) == THREADS * CALLS_PER_THREAD
    for thread in range(THREADS):
        mine = [r for r in rows if r["thread"] == thread]
        assert [r["i"] for r in mine] == list(range(CALLS_PER_THREAD))
        assert all(math.isnan(r["x"]) == (r["i"] % 10 == 0) for r in mine)


def log_while_another_thread_finishes(c: Ctx) -> None:
    """A thread logs without pause while the main thread calls finish(): each call either returns
    (and its row must be stored) or raises UsageError (and nothing from it may be)."""
    run, going = c.live, threading.Event()

    def work() -> None:
        for i in range(10**9):
            try:
                run.log({"i": i})
            except UsageError:
                return
            c.seen.append(i)
            if i == 500:
                going.set()

    worker = threading.Thread(target=work)
    worker.start()
    going.wait(10)
    run.finish()
    worker.join(10)
    assert not worker.is_alive() and len(c.seen) > 500


def exactly_the_accepted_rows(c: Ctx, rows: list[dict[str, Any]]) -> None:
    assert [r["i"] for r in rows] == c.seen


def fork_and_use_the_run_in_the_child(c: Ctx) -> None:
    """The child reports each call's outcome through a pipe and leaves with os._exit, so it never
    returns into pytest."""
    run = c.live
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_end)
            os.write(write_end, json.dumps(_in_the_child(run, c.root)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = json.loads(pipe.read() or "null")
    _, status = os.waitpid(pid, 0)
    assert status == 0 and report is not None
    forked = rf"^UsageError: .*run victim belongs to process {os.getpid()}; a forked child .* cannot write"
    for what in ("log", "config", "summary", "status"):
        assert re.search(forked, report[what]), (what, report[what])
    assert report["finish"] == "returned"  # at once, and the parent's run goes on
    assert report["own run"] == "finished"
    with nbtrack.Api(dir=c.root) as api:
        assert [r["who"] for r in api.run("matrix/child").history()] == ["child"]


def _in_the_child(run: nbtrack.Run, root: Path) -> dict[str, str]:
    report = {}
    calls: dict[str, Callable[[], object]] = {
        "log": lambda: run.log({"who": "child"}),
        "config": lambda: run.config.update({"child": 1}),
        "summary": lambda: run.summary["good"],
        "status": run.status,
        "finish": run.finish,
    }
    for what, call in calls.items():
        try:
            call()
            report[what] = "returned"
        except Exception as exc:
            report[what] = f"{type(exc).__name__}: {exc}"
    with nbtrack.init(project="matrix", dir=root, id="child") as own:  # documented: a run of its own
        own.log({"who": "child"})
    report["own run"] = own.state
    return report


FORK_EXIT = textwrap.dedent(
    """
    import os, sys
    import nbtrack
    run = nbtrack.init(project="matrix", dir=sys.argv[1], id="exiting")
    if os.fork() == 0:
        sys.exit(0)  # a child that ends the ordinary way: its exit hooks run
    os.wait()
    run.finish()
    """
)


def fork_a_child_that_exits_normally(c: Ctx) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FORK_EXIT, str(c.root / "exiting")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr


# -- the matrix -------------------------------------------------------------------------------

TYPES, HUGE, KEYS, NONFINITE = "wrong types", "huge and deep values", "unicode and odd keys", "NaN and inf"
STEPS, ORDER, THREADED, FORK = "steps", "calls in the wrong order", "threads", "fork"
INIT, MAGICS = "init arguments", "magics"
LEAK = "\nrun.log({{'leaked': 1}})"  # the cell of a %%nbtrack that must not run (a format string)
NOT_WRITABLE = r"dir \S*(not-a-folder|read-only)/root is not a folder nbtrack can write to"


def refused_init(
    id: str, kwargs: dict[str, Any], error: type[BaseException], match: str, xfail: str = ""
) -> Case:
    """init() refusing its arguments with no run live yet: it must leave no folder and no current run."""
    return Case(id, INIT, init(**kwargs), error, match, scope="none", xfail=xfail)


def bad_magic(id: str, code: str, match: str, xfail: str = "") -> Case:
    """A magic given bad arguments in the module's kernel while a run is live there."""
    return Case(id, MAGICS, magic(code), KernelError, match, scope="kernel", timeout=60, xfail=xfail)


CASES = [
    # wrong types: nothing from the call is logged
    Case("data-is-a-list", TYPES, log([("a", 1)]), TypeError, r"log\(\) takes a dict of values, not list"),
    Case("data-is-none", TYPES, log(None), TypeError, r"log\(\) takes a dict of values, not NoneType"),
    Case("key-is-an-int", TYPES, log({1: 2.0}), TypeError, r"key 1 is a int; keys must be str"),
    Case("key-is-a-tuple", TYPES, log({("a", 1): 2.0}), TypeError, r"key \('a', 1\) is a tuple"),
    Case("value-is-an-object", TYPES, log({"x": Opaque()}), TypeError, r"value of 'x' has type .*Opaque"),
    Case("value-is-a-set", TYPES, log({"x": {1, 2}}), TypeError, r"value of 'x' has type builtins\.set"),
    Case("value-is-bytes", TYPES, log({"x": b"ab"}), TypeError, r"value of 'x' has type builtins\.bytes"),
    Case("value-is-complex", TYPES, log({"x": 1j}), TypeError, r"value of 'x' has type builtins\.complex"),
    Case(
        "value-is-a-datetime", TYPES, log({"t": datetime(2024, 1, 1)}), TypeError, r"value of 't' .*datetime"
    ),
    Case(
        "value-is-a-2d-tensor",
        TYPES,
        log({"w": TensorLike(2, 2)}),
        TypeError,
        r"TensorLike with shape \(2, 2\)",
    ),
    Case(
        "value-is-a-1-element-array", TYPES, log({"w": np.array([1.0])}), TypeError, r"shape \(1,\) is not a"
    ),
    Case("value-is-a-0d-tensor", TYPES, log({"w": TensorLike()}), rows=({"w": 0.5},)),
    Case("value-is-a-numpy-scalar", TYPES, log({"w": np.float32(0.25)}), rows=({"w": 0.25},)),
    Case(
        "value-item-raises",
        TYPES,
        log({"ok": 1, "w": FailingTensor()}),
        ValueError,
        r"value of 'w': its \.item\(\) raised RuntimeError: CUDA error",
    ),
    Case("list-holds-a-str", TYPES, log({"x": [1, "two"]}), TypeError, r"value of 'x\[1\]' has type str"),
    Case("int-beyond-64-bits", TYPES, log({"x": 2**70}), ValueError, r"value of 'x' is an int too large"),
    Case("value-is-a-lone-surrogate", TYPES, log({"s": "\ud800"}), ValueError, r"value of 's' is not valid"),
    Case("good-and-bad-in-one-call", TYPES, log({"ok": 1, "bad": {1}}), TypeError, r"value of 'bad'"),
    Case("bad-value-deep-inside", TYPES, log({"a": {"b": {"c": Opaque()}}}), TypeError, r"value of 'a/b/c'"),
    Case(
        "commit-is-not-a-bool", TYPES, log({"x": 1}, commit="yes"), TypeError, r"commit must be True or False"
    ),
    Case("empty-dict-logs-an-empty-row", TYPES, log({}), rows=({},)),
    # huge and deep values: no size limit today (accepted and stored exactly); depth is limited
    Case("value-10-mb-string", HUGE, log({"blob": BIG_TEXT}), rows=({"blob": BIG_TEXT},), timeout=60),
    Case("value-list-of-10-6-numbers", HUGE, log({"xs": BIG_LIST}), rows=({"xs": BIG_LIST},), timeout=60),
    Case("row-of-10-5-keys", HUGE, log(WIDE_ROW), rows=(WIDE_ROW,), timeout=60),
    Case("nested-1000-levels", HUGE, log(nested(1000)), ValueError, r"'d/d/d.*' is nested deeper than 32"),
    Case(
        "nested-into-itself", HUGE, log(self_referential()), ValueError, r"'again/again.*' is nested deeper"
    ),
    Case(
        "config-nested-1000-levels",
        HUGE,
        lambda c: c.live.config.update({"deep": nested(1000)}),
        ValueError,
        r"config\['deep'\]\['d'\].* is nested deeper than 32 levels",
        config={},
    ),
    # unicode and odd keys: stored exactly as given; empty, reserved and colliding keys refused
    Case("key-emoji", KEYS, log({"🔥 loss": 1.0, "é": 2}), rows=({"🔥 loss": 1.0, "é": 2},)),
    Case(
        "key-with-slash",
        KEYS,
        log({"a/b": 1, "/lead": 2, "trail/": 3}),
        rows=({"a/b": 1, "/lead": 2, "trail/": 3},),
    ),
    Case("key-with-dot", KEYS, log({"a.b": 1}), rows=({"a.b": 1},)),
    Case("key-leading-underscore", KEYS, log({"_private": 1}), rows=({"_private": 1},)),
    Case("key-whitespace", KEYS, log({" loss ": 1, "\t": 2}), rows=({" loss ": 1, "\t": 2},)),
    Case("key-with-nul", KEYS, log({"a\x00b": 1}), rows=({"a\x00b": 1},)),
    Case("key-numpy-str", KEYS, log({np.str_("acc"): 0.5}), rows=({"acc": 0.5},)),
    Case("key-empty", KEYS, log({"": 1}), ValueError, r"empty key"),
    Case("key-reserved", KEYS, log({"_step": 3}), ValueError, r"key '_step' is reserved"),
    Case("key-lone-surrogate", KEYS, log({"\ud800": 1}), ValueError, r"key '\\ud800' is not valid unicode"),
    Case(
        "key-given-twice-by-nesting",
        KEYS,
        log({"a/b": 1, "a": {"b": 2}}),
        ValueError,
        r"key 'a/b' is given twice",
    ),
    # NaN and inf: accepted and stored exactly
    Case(
        "nan-and-infinities",
        NONFINITE,
        log({"a": math.nan, "b": math.inf, "c": -math.inf, "d": [1.0, math.nan, -math.inf]}),
        rows=({"a": math.nan, "b": math.inf, "c": -math.inf, "d": [1.0, math.nan, -math.inf]},),
        summary={"a": math.nan, "b": math.inf, "c": -math.inf},
    ),
    # steps: a step not after the last one logged is refused with a notice naming both; nothing else is lost
    Case(
        "step-goes-backwards",
        STEPS,
        logs(({"x": 1}, {"step": 10}), ({"x": 2}, {"step": 5}), ({"x": 3}, {})),
        rows=({"x": 1}, {"x": 3}),
        notice=r"step 5 is not after step 10, the last step logged: the row with keys \['x'\] was not logged",
        steps=(0, 10, 11, 12),
    ),
    Case(
        "step-already-committed",
        STEPS,
        log({"x": 1}, step=0),
        notice=r"step 0 is not after step 0, the last step logged",
        steps=(0, 1),
    ),
    Case("step-negative", STEPS, log({"x": 1}, step=-1), ValueError, r"step must be a non-negative int.*-1"),
    Case("step-is-a-float", STEPS, log({"x": 1}, step=1.5), TypeError, r"step must be .*, not float"),
    Case("step-is-a-bool", STEPS, log({"x": 1}, step=True), TypeError, r"step must be .*, not bool"),
    Case(
        "step-beyond-2-53", STEPS, log({"x": 1}, step=2**63), ValueError, r"at most 2\*\*53 - 1, got 9223372"
    ),
    Case(
        "step-at-the-limit",
        STEPS,
        at_the_last_step,
        rows=({"x": 1},),
        steps=(0, STEP_MAX),
        notice=r"\['y'\] was not logged: it would be at step 9007199254740992, past the largest step",
    ),
    # calls in the wrong order
    Case(
        "log-before-init",
        ORDER,
        lambda c: nbtrack.log({"x": 1}),
        UsageError,
        r"call nbtrack\.init\(\) first",
        scope="none",
    ),
    Case(
        "log-after-finish",
        ORDER,
        after_finish(lambda r: r.log({"x": 1})),
        UsageError,
        r"log\(\): run victim is finished",
    ),
    Case("finish-twice", ORDER, after_finish(lambda r: r.finish(exit_code=1))),  # the second is a no-op
    Case(
        "config-after-finish",
        ORDER,
        after_finish(lambda r: r.config.update(x=1)),
        UsageError,
        r"config: run victim is",
    ),
    Case(
        "summary-after-finish",
        ORDER,
        after_finish(lambda r: r.summary.update(x=1)),
        UsageError,
        r"summary: run victim",
    ),
    Case(
        "define-metric-after-finish",
        ORDER,
        after_finish(lambda r: r.define_metric("x", summary="max")),
        UsageError,
        r"define_metric\(\): run victim is finished",
    ),
    Case(
        "save-after-finish",
        ORDER,
        after_finish(lambda r: r.save(__file__)),
        UsageError,
        r"save\(\): run victim is",
    ),
    Case(
        "finish-exit-code-not-int",
        ORDER,
        lambda c: c.live.finish(exit_code="1"),
        TypeError,
        r"exit_code must be an int",
    ),
    Case(
        "finish-negative-timeout",
        ORDER,
        lambda c: c.live.finish(timeout=-1),
        TypeError,
        r"timeout must be .* >= 0",
    ),
    Case(
        "define-metric-unknown-summary",
        ORDER,
        lambda c: c.live.define_metric("loss", summary="median"),
        ValueError,
        r"unknown summary 'median'",
    ),
    Case(
        "define-metric-summary-not-str",
        ORDER,
        lambda c: c.live.define_metric("loss", summary=["min"]),
        TypeError,
        r"define_metric\(\): summary must be a str .*, not list",
    ),
    Case(
        "define-metric-step-metric-not-str",
        ORDER,
        lambda c: c.live.define_metric("loss", step_metric=5),
        TypeError,
        r"define_metric\(\): step_metric must be a metric name, not int",
    ),
    Case(
        "define-metric-empty-name",
        ORDER,
        lambda c: c.live.define_metric(""),
        TypeError,
        r"needs a metric name",
    ),
    Case(
        "summary-value-is-a-set",
        ORDER,
        lambda c: c.live.summary.update({"best": {1}}),
        TypeError,
        r"summary\['best'\]\" has type builtins\.set",
    ),
    Case(
        "summary-update-not-a-dict",
        ORDER,
        lambda c: c.live.summary.update("best"),
        TypeError,
        r"summary\.update\(\) takes a dict .*, not str",
    ),
    Case(
        "summary-replaced",
        ORDER,
        lambda c: setattr(c.live, "summary", {"best": 1}),
        AttributeError,
        r"run\.summary cannot be replaced",
    ),
    Case(
        "config-replaced",
        ORDER,
        lambda c: setattr(c.live, "config", {"lr": 1}),
        AttributeError,
        r"run\.config cannot be replaced",
        config={},
    ),
    Case(
        "config-key-changes-value",
        ORDER,
        lambda c: [c.live.config.update(lr=value) for value in (0.1, 0.2)],
        UsageError,
        r"config key 'lr' is already 0\.1",
        config={"lr": 0.1},
    ),
    Case(
        "config-key-deleted",
        ORDER,
        delete_a_config_key,
        UsageError,
        r"config key 'lr' is 0\.1 and stays so: a hyperparameter cannot be deleted",
        config={"lr": 0.1},
    ),
    Case(
        "config-half-bad-update",
        ORDER,
        lambda c: c.live.config.update({"ok": 1, "bad": Opaque()}),
        TypeError,
        r"config\['bad'\]",
        config={},
    ),
    Case(
        "config-numpy-str-key",
        ORDER,
        lambda c: c.live.config.update({np.str_("opt"): "adam"}),
        config={"opt": "adam"},
    ),
    Case(
        "summary-numpy-str-key",
        ORDER,
        lambda c: c.live.summary.update({np.str_("best"): 1}),
        summary={"best": 1},
    ),
    Case(
        "save-missing-file", ORDER, save(exists=False), FileNotFoundError, r"there is no file at .*model\.txt"
    ),
    Case(
        "save-name-escapes-the-run",
        ORDER,
        save(name="../model.txt"),
        ValueError,
        r"file name '\.\./model\.txt'",
    ),
    # threads
    Case("threads-log-at-once", THREADED, log_from_threads, check=every_thread_row_once_in_its_order),
    Case(
        "log-while-another-thread-finishes",
        THREADED,
        log_while_another_thread_finishes,
        check=exactly_the_accepted_rows,
    ),
    # fork: the child cannot write to its parent's run (clear error); it may start its own
    Case("fork-child-uses-the-parents-run", FORK, fork_and_use_the_run_in_the_child, linux_only=True),
    Case(
        "fork-child-exits-normally",
        FORK,
        fork_a_child_that_exits_normally,
        linux_only=True,
    ),
    # init() arguments: refused before anything starts; the current run is untouched
    refused_init("init-mode-unknown", {"mode": "cloud"}, UsageError, r"unknown mode 'cloud'"),
    refused_init("init-online-without-server", {"mode": "online"}, UsageError, r"mode='online' needs"),
    refused_init(
        "init-project-with-colon", {"project": "my:run"}, UsageError, r"project 'my:run' may not hold ':'"
    ),
    refused_init(
        "init-project-end-space", {"project": "run "}, UsageError, r"project 'run ' must be .* no space"
    ),
    refused_init("init-project-dot-dot", {"project": ".."}, UsageError, r"project '\.\.' is not a name"),
    refused_init("init-project-not-str", {"project": 3}, TypeError, r"project must be a str, not int"),
    refused_init("init-id-with-slash", {"id": "a/b"}, UsageError, r"id 'a/b' may hold only"),
    refused_init("init-resume-unknown", {"resume": "sometimes"}, UsageError, r"resume must be .*'sometimes'"),
    refused_init("init-tags-is-a-str", {"tags": "baseline"}, TypeError, r"tags must be a list of str"),
    refused_init("init-config-not-a-dict", {"config": [1]}, TypeError, r"config must be a dict, not list"),
    refused_init(
        "init-unknown-argument", {"projcet": "x"}, TypeError, r"unexpected keyword argument 'projcet'"
    ),
    refused_init(
        "init-dir-not-a-path",
        {"dir": 5},
        TypeError,
        r"dir must be",
    ),
    Case("init-id-of-the-live-run", INIT, init(id="victim"), UsageError, r"run id 'victim' is already taken"),
    Case(
        "init-id-of-a-finished-run",
        INIT,
        after_finish(lambda r: nbtrack.init(project="matrix", dir=r.dir.parent.parent, id="victim")),
        UsageError,
        r"run id 'victim' is already taken",
    ),
    Case(
        "init-dir-not-writable",
        INIT,
        lambda c: nbtrack.init(project="matrix", dir=unwritable_dir(c.root.parent)),
        UsageError,
        NOT_WRITABLE,
    ),
    # offline and online keep their transaction log in dir= too: refused the same way, at once
    # (online before contacting its server: this one does not exist)
    Case(
        "init-offline-dir-not-writable",
        INIT,
        lambda c: nbtrack.init(project="matrix", mode="offline", dir=unwritable_dir(c.root.parent)),
        UsageError,
        NOT_WRITABLE,
    ),
    Case(
        "init-online-dir-not-writable",
        INIT,
        lambda c: nbtrack.init(
            project="matrix", base_url="http://127.0.0.1:9", dir=unwritable_dir(c.root.parent)
        ),
        UsageError,
        NOT_WRITABLE,
        timeout=10,
    ),
    Case(
        "init-resume-the-live-run",
        INIT,
        init(id="victim", resume="must"),
        UsageError,
        r"run 'victim' is live in this process",
        timeout=6,
    ),
    # magics, in a real kernel: a UsageError naming the culprit; the cell does not run (LEAK)
    bad_magic(
        "magic-unknown-command", "%nbtrack frobnicate", r"^UsageError: %nbtrack: unknown command 'frobnicate'"
    ),
    bad_magic(
        "magic-finish-unknown-run",
        "%nbtrack finish gamma",
        r"^UsageError: .*no live run 'gamma'; live runs: .*\({id}\)",
    ),
    bad_magic(
        "magic-finish-two-runs",
        "%nbtrack finish {id} {id}",
        r"^UsageError: %nbtrack finish takes at most one run",
    ),
    bad_magic(
        "magic-unbalanced-quote",
        '%nbtrack finish "{id}',
        r"^UsageError: .*quot",
    ),
    bad_magic(
        "magic-cell-unknown-option",
        "%%nbtrack --bogus 1" + LEAK,
        r"^UsageError: %%nbtrack: unrecognized arguments: --bogus 1",
    ),
    bad_magic(
        "magic-cell-option-without-value",
        "%%nbtrack --id" + LEAK,
        r"^UsageError: %%nbtrack: argument --id: expected one argument",
    ),
    bad_magic(
        "magic-cell-mode-unknown",
        "%%nbtrack --mode cloud" + LEAK,
        r"^UsageError: %%nbtrack: unknown mode 'cloud'",
    ),
    bad_magic(
        "magic-cell-bad-project",
        "%%nbtrack --project 'a?b'" + LEAK,
        r"^UsageError: %%nbtrack: project 'a\?b' may not hold '\?'",
    ),
    bad_magic(
        "magic-cell-id-of-the-live-run",
        "%%nbtrack --id {id}" + LEAK,
        r"^UsageError: %%nbtrack: run id '{id}' is already taken",
    ),
    bad_magic(
        "magic-cell-dir-not-writable",
        "%%nbtrack --dir {unwritable}" + LEAK,
        r"^UsageError: %%nbtrack: " + NOT_WRITABLE,
    ),
    bad_magic(
        "magic-resume-without-id",
        "%nbtrack resume",
        r"^UsageError: %nbtrack resume: the following arguments are required: id",
    ),
    bad_magic(
        "magic-resume-unknown-run",
        "%nbtrack resume nosuch --project magic",
        r"^UsageError: %nbtrack resume: .*no stored run 'nosuch'",
    ),
]


def param(case: Case) -> Any:
    marks: list[Any] = [pytest.mark.timeout(case.timeout)]
    if case.xfail:
        marks.append(pytest.mark.xfail(strict=True, reason=case.xfail))
    if case.linux_only:
        marks.append(pytest.mark.skipif(sys.platform != "linux", reason="os.fork on Linux only"))
    return pytest.param(case, id=case.id, marks=marks)


# -- the test ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def magics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Magics]:
    """One real kernel for every magic case (each case starts its own run in it)."""
    from tests.test_kernel import Kernel

    home = tmp_path_factory.mktemp("kernel")
    kernel = Kernel(home, home / "root")
    try:
        shell = Magics(kernel, home / "root")
        shell.ok("get_ipython().config.NBTrack.display = 'none'\n%load_ext nbtrack")
        yield shell
    finally:
        kernel.close()


@pytest.mark.parametrize("case", [param(case) for case in CASES])
def test_bad_input(case: Case, root: Path, request: pytest.FixtureRequest) -> None:
    if case.scope == "kernel":
        check_in_kernel(case, request.getfixturevalue("magics"))
        return
    ctx = Ctx(root)
    if case.scope == "run":
        ctx.run = nbtrack.init(project="matrix", dir=root, id="victim")
        ctx.run.log(BEFORE)
    folders = run_folders(root)
    result: object = None
    try:
        result = outcome(case, lambda: case.call(ctx))
        if case.scope == "none":
            assert run_folders(root) == folders and nbtrack.run is None  # a refusal leaves nothing behind
            ctx.run = nbtrack.init(project="matrix", dir=root, id="victim")
            ctx.run.log(BEFORE)
        elif not ctx.live.finished:
            assert nbtrack.run is ctx.run  # whatever the call did, the current run is still this one
        logs_after = not ctx.live.finished  # a case may have finished the run itself
        if logs_after:
            ctx.live.log(AFTER)
            ctx.live.finish()
    finally:
        for run in (result, ctx.run):
            if isinstance(run, nbtrack.Run) and not run.finished:
                run.finish()

    run = ctx.live
    assert (run.state, run.restarts, run.rows_lost) == ("finished", 0, 0)  # no crash, nothing lost
    if case.notice:
        assert len(run.notices) == 1 and re.search(case.notice, run.notices[0]), run.notices
    else:
        assert run.notices == []
    with nbtrack.Api(dir=root) as api:
        stored = api.run("matrix/victim")
        check_stored(case, ctx, stored, logs_after)


def check_in_kernel(case: Case, magics: Magics) -> None:
    ctx = Ctx(magics.root, run_id=case.id, magics=magics)
    magics.ok(f"run = nbtrack.init(project='magic', id={case.id!r})\nrun.log({BEFORE!r})")
    try:
        outcome(case, lambda: case.call(ctx), id=case.id)
        magics.ok(f"assert nbtrack.run is run, nbtrack.run\nrun.log({AFTER!r})")
    finally:
        magics.ok("run.finish()")
    magics.ok("assert (run.restarts, run.rows_lost, run.notices) == (0, 0, []), run.notices")
    with nbtrack.Api(dir=magics.root) as api:
        check_stored(case, ctx, api.run(f"magic/{case.id}"), logs_after=True)


def outcome(case: Case, call: Callable[[], object], id: str = "") -> object:
    """Make the call; when the case expects an error, check its exact type and message."""
    if case.error is None:
        return call()
    with pytest.raises(case.error, match=case.match.replace("{id}", re.escape(id))) as caught:
        call()
    assert type(caught.value) is case.error, repr(caught.value)
    return None


def check_stored(case: Case, ctx: Ctx, stored: Any, logs_after: bool) -> None:
    """The store holds exactly BEFORE, what the case accepted, and AFTER (if it was logged)."""
    assert stored.state == "finished"
    history = stored.history()
    rows = [{k: v for k, v in row.items() if k not in RESERVED} for row in history]
    steps = [row["_step"] for row in history]
    assert rows[0] == BEFORE and (not logs_after or rows[-1] == AFTER), rows[:1] + rows[-1:]
    middle = rows[1 : len(rows) - logs_after]
    if case.check is not None:
        case.check(ctx, middle)
    else:
        assert comparable(middle) == comparable(list(case.rows))
    assert steps == sorted(set(steps))  # each row once, in order
    if case.steps is not None:
        assert tuple(steps) == case.steps
    if case.config is not None:
        assert stored.config == case.config
    if case.summary is not None:
        assert comparable({k: stored.summary.get(k) for k in case.summary}) == comparable(case.summary)


def comparable(value: Any) -> Any:
    """value with every NaN replaced by a marker, so that == can compare what was logged."""
    if isinstance(value, float) and math.isnan(value):
        return "<NaN>"
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    return value


def run_folders(root: Path) -> list[Path]:
    return sorted((root / "runs").glob("*")) if (root / "runs").is_dir() else []


def test_docs_guarantees_lists_every_case() -> None:
    """docs/guarantees.md documents the matrix: every case is named there, and no stale one."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "guarantees.md").read_text()
    named = set(re.findall(r"`([a-z0-9]+(?:-[a-z0-9]+)+)`", doc))
    ids = {case.id for case in CASES}
    assert ids - named == set(), f"cases missing from docs/guarantees.md: {sorted(ids - named)}"
    assert named - ids == set(), f"docs/guarantees.md names cases that do not exist: {sorted(named - ids)}"
