"""The real wandb client (pinned in its own venv) run against a real `nbtrack server`.

    from tests.wandb_client import WandbEnv, wandb_env

`wandb_env` (a fixture) gives a WandbEnv for a fresh SQLite server with a key of its own;
`pg_wandb_env` the same on NBTRACK_TEST_POSTGRES_URL (skipped without it). `env.run(code)` runs a
snippet of wandb client code in a subprocess of the wandb venv, with WANDB_BASE_URL at the server
(or at `base_url`, e.g. a capturing proxy in front of it), WANDB_API_KEY a key of the server's, and
every wandb folder under tmp_path; the snippet calls `emit(value)` to hand back a JSON value
(NaN and infinities included). Every wait is bounded: a snippet that hangs is killed after its
timeout and the test fails with its output.

The wandb venv: NBTRACK_TEST_WANDB_PYTHON, else <repo>/.venv-wandb/bin/python (.ci/run makes it,
with wandb==0.31.0). Without it these tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import serving

__all__ = ["WANDB_PYTHON", "WandbEnv", "pg_wandb_env", "require_wandb", "wandb_env"]

REPO = Path(__file__).resolve().parent.parent
# Read once at import: the autouse clean_env fixture removes NBTRACK_* variables from each test.
WANDB_PYTHON = Path(os.environ.get("NBTRACK_TEST_WANDB_PYTHON") or REPO / ".venv-wandb" / "bin" / "python")
WANDB_VERSION = "0.31.0"
SNIPPET_TIMEOUT = 120.0

_PRELUDE = """
import json as _json, os as _os
def emit(value):
    with open(_os.environ["NBTRACK_TEST_RESULT"], "w") as _out:
        _json.dump(value, _out)
"""


def require_wandb() -> Path:
    """The wandb venv's python; skips the test without it (fails under CI=true, where .ci/run makes it)."""
    if not WANDB_PYTHON.exists():
        reason = (
            f"the wandb client's venv is missing ({WANDB_PYTHON}): run `python3 -m venv .venv-wandb && "
            f".venv-wandb/bin/pip install wandb=={WANDB_VERSION}` or set NBTRACK_TEST_WANDB_PYTHON"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return WANDB_PYTHON


@dataclass
class WandbEnv:
    server: serving.ServerProcess
    entity: str
    key: str
    home: Path
    base_url: str = ""  # where the client is pointed; the server itself unless set (a proxy)

    def __post_init__(self) -> None:
        self.base_url = self.base_url or self.server.url

    @property
    def client(self) -> serving.Client:
        """nbtrack's own view of the server, as the same entity."""
        return serving.Client(self.server.url, self.entity, self.key)

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "NBTRACK_"))}
        folders = {name: self.home / name for name in ("wandb", "cache", "config", "data", "artifacts")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        env.update(
            HOME=str(self.home),
            WANDB_BASE_URL=self.base_url,
            WANDB_API_KEY=self.key,
            WANDB_ENTITY=self.entity,
            WANDB_DIR=str(folders["wandb"]),
            WANDB_CACHE_DIR=str(folders["cache"]),
            WANDB_CONFIG_DIR=str(folders["config"]),
            WANDB_DATA_DIR=str(folders["data"]),
            WANDB_ARTIFACT_DIR=str(folders["artifacts"]),
            WANDB_SILENT="true",
            WANDB_DISABLE_GIT="true",
            WANDB_DISABLE_CODE="true",
            WANDB_ERROR_REPORTING="false",
            WANDB_X_DISABLE_STATS="true",
            WANDB__DISABLE_STATS="true",
            WANDB_CONSOLE="off",
            WANDB_INIT_TIMEOUT="60",
            NO_PROXY="127.0.0.1,localhost",
        )
        return env

    def run(self, code: str, timeout: float = SNIPPET_TIMEOUT, check: bool = True) -> Any:
        """Run the snippet with the wandb venv; what it emit()ed (None if nothing)."""
        python = require_wandb()
        result_path = self.home / "result.json"
        result_path.unlink(missing_ok=True)
        env = self.environ()
        env["NBTRACK_TEST_RESULT"] = str(result_path)
        script = _PRELUDE + textwrap.dedent(code)
        try:
            done = subprocess.run(
                [str(python), "-c", script],
                env=env,
                cwd=self.home,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(
                f"the wandb snippet did not finish within {timeout:.0f} s\nstdout: {exc.stdout!r:.3000}\n"
                f"stderr: {exc.stderr!r:.3000}\nserver log:\n{self.server.log_tail()}"
            ) from None
        if check and done.returncode != 0:
            raise AssertionError(
                f"the wandb snippet failed ({done.returncode})\nstdout:\n{done.stdout[-4000:]}\n"
                f"stderr:\n{done.stderr[-6000:]}\nserver log:\n{self.server.log_tail()}"
            )
        if not result_path.exists():
            return None
        return json.loads(result_path.read_text())


def _make_env(served: serving.ServerProcess, tmp_path: Path) -> WandbEnv:
    entity = serving.unique_name("wb")
    key = serving.create_key(served, entity)
    home = tmp_path / "wandb-home"
    home.mkdir(exist_ok=True)
    return WandbEnv(served, entity, key, home)


@pytest.fixture
def wandb_env(tmp_path: Path) -> Iterator[WandbEnv]:
    """The wandb client against a fresh SQLite server, as an entity with a key of its own."""
    require_wandb()
    served = serving.start_server(tmp_path)
    try:
        yield _make_env(served, tmp_path)
    finally:
        served.stop()


@pytest.fixture
def pg_wandb_env(tmp_path: Path) -> Iterator[WandbEnv]:
    """The same on NBTRACK_TEST_POSTGRES_URL; skipped when that is not set."""
    require_wandb()
    if not serving.POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the server tests on PostgreSQL")
    served = serving.start_server(tmp_path, db_url=serving.POSTGRES_URL)
    try:
        yield _make_env(served, tmp_path)
    finally:
        served.stop()
