"""Run settings: init() arguments > environment (NBTRACK_*) > defaults, resolved once per run."""

from __future__ import annotations

import os
import re
import secrets
import string
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nbtrack.errors import UsageError
from nbtrack.vocabulary import RUN_ALIVE_SECONDS, SILENT_RUN_SECONDS

__all__ = [
    "DEFAULT_ENTITY",
    "MODES",
    "RUN_FILES",
    "Settings",
    "check_base_url",
    "check_name",
    "check_project",
    "check_writable",
    "crashed_after",
    "new_run_id",
    "resolve_root",
    "resolve_settings",
    "store_url",
]

MODES = ("local", "online", "offline", "disabled")
DEFAULT_ROOT = ".nbtrack"
DEFAULT_PROJECT = "uncategorized"
DEFAULT_ENTITY = "local"
RUN_FILES = "files"  # the folder of a run's saved files, beside its transaction log
_ID_ALPHABET = string.ascii_lowercase + string.digits
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")  # safe in a path, a URL and a folder name
# A project name is what W&B allows: any text but these and control characters (its client's
# rule); a URL quotes it, and it is still a safe folder name here.
_PROJECT_FORBIDDEN = re.compile(r"[/\\#?%:\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Settings:
    """Everything the user side and the internal process need to know about one run."""

    mode: str
    project: str
    entity: str  # "" in online mode until the server names the API key's entity
    run_id: str
    root: Path  # the nbtrack root: the store and the runs/ folder live here
    base_url: str | None = None
    api_key: str | None = None
    resume: str | None = None
    start_time: float = field(default_factory=time.time)
    resumed: bool = False  # this run continues a stored one: its folder is a new segment
    stats_interval: float = 5.0  # seconds between system-metrics samples; 0: none
    # Bytes of rows the user process keeps in memory while they wait for the internal process;
    # past it they go to a spill file in the run folder (transport/outbox.py).
    max_memory: int = 64 * 1024 * 1024
    hang_timeout: float = 10.0  # seconds of silence after which the internal process is replaced
    # Seconds between heartbeats of a live run with nothing else to deliver (store/liveness.py).
    alive_interval: float = RUN_ALIVE_SECONDS
    save_code: bool | None = None  # init(save_code=): store the code (None: the extension's default)
    # A script's stdout and stderr kept as the run's console lines (sdk/console_capture.py); a
    # notebook's are the extension's (c.NBTrack.capture_console).
    console: bool = True

    @property
    def store_url(self) -> str:
        return store_url(self.root)

    @property
    def run_dir(self) -> Path:
        stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(self.start_time))
        if self.resumed:  # milliseconds: a segment may start in the same second as the one before
            stamp += f"_{int(self.start_time * 1000) % 1000:03d}"
        return self.root / "runs" / f"run-{stamp}-{self.run_id}"

    @property
    def files_dir(self) -> Path:
        """Copies of the files saved with run.save(), by name."""
        return self.run_dir / RUN_FILES

    @property
    def log_path(self) -> Path:
        return self.run_dir / f"run-{self.run_id}.nbt"


def resolve_root(dir: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> Path:
    """The nbtrack root: dir, else $NBTRACK_DIR, else ./.nbtrack (absolute)."""
    if dir is not None and not isinstance(dir, str | os.PathLike):
        raise TypeError(f"dir must be a path (a str or os.PathLike), not {type(dir).__name__}")
    env = dict(os.environ) if env is None else env
    return Path(dir if dir is not None else env.get("NBTRACK_DIR") or DEFAULT_ROOT).expanduser().absolute()


def store_url(root: Path) -> str:
    """The embedded store under an nbtrack root."""
    return f"sqlite:///{root / 'nbtrack.db'}"


def new_run_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


def resolve_settings(
    *,
    project: str | None = None,
    entity: str | None = None,
    id: str | None = None,
    mode: str | None = None,
    dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    resume: str | None = None,
    console: bool | str | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Apply the precedence rule and check every value, with an error that says what to do."""
    env = dict(os.environ) if env is None else env
    base_url = base_url or env.get("NBTRACK_BASE_URL") or None
    if base_url is not None:
        base_url = _base_url(base_url)
    chosen_mode = mode or env.get("NBTRACK_MODE") or ("online" if base_url else "local")
    if chosen_mode not in MODES:
        raise UsageError(f"unknown mode {chosen_mode!r}; use one of: {', '.join(MODES)}")
    if chosen_mode == "online" and not base_url:
        raise UsageError(
            "mode='online' needs a tracking server: pass base_url='http://host:8080' or set "
            "NBTRACK_BASE_URL (start one with `nbtrack server`)"
        )
    if resume not in (None, "allow", "must", "never"):
        raise UsageError(f"resume must be None, 'allow', 'must' or 'never', not {resume!r}")
    stats_interval = _number(
        env,
        "NBTRACK_STATS_INTERVAL",
        Settings.stats_interval,
        "seconds between system-metrics samples (0 turns them off)",
    )
    max_memory_mb = _number(
        env,
        "NBTRACK_MAX_MEMORY_MB",
        Settings.max_memory / 2**20,
        "megabytes of rows kept in memory while they wait (past it they are spilled to the run folder)",
    )
    hang_timeout = _number(
        env,
        "NBTRACK_HANG_TIMEOUT",
        Settings.hang_timeout,
        "seconds of silence after which the internal process is replaced",
        minimum=1.0,
    )
    alive_interval = _number(
        env,
        "NBTRACK_ALIVE_INTERVAL",
        Settings.alive_interval,
        "seconds between the heartbeats of a run that logs nothing",
        minimum=0.1,
    )
    return Settings(
        mode=chosen_mode,
        project=check_project(
            project if project is not None else env.get("NBTRACK_PROJECT", DEFAULT_PROJECT)
        ),
        entity=_entity(entity if entity is not None else env.get("NBTRACK_ENTITY"), chosen_mode),
        run_id=check_name(id, "id") if id is not None else new_run_id(),
        root=resolve_root(dir, env),
        base_url=base_url,
        api_key=api_key or env.get("NBTRACK_API_KEY") or None,
        resume=resume,
        stats_interval=stats_interval,
        max_memory=int(max_memory_mb * 2**20),
        hang_timeout=hang_timeout,
        alive_interval=alive_interval,
        console=_console(console, env),
    )


def crashed_after(env: dict[str, str] | None = None) -> float:
    """Seconds after which a reader of a local store marks a silent running run crashed
    (store/liveness.py): NBTRACK_CRASHED_AFTER, else SILENT_RUN_SECONDS; 0: never."""
    return _number(
        dict(os.environ) if env is None else env,
        "NBTRACK_CRASHED_AFTER",
        SILENT_RUN_SECONDS,
        "seconds of silence after which a running run is marked crashed (0: never)",
    )


def check_writable(settings: Settings) -> None:
    """Create the folder that holds the run folders and a scratch file in it, or raise a
    UsageError naming dir=.

    Every mode but disabled writes the run's transaction log there, and the log is what the
    guarantees rest on: an offline run has nothing else, and an online run's restarts, rows
    spilled during an outage and `nbtrack sync` after a finish timeout are all read back from it.
    So a root nbtrack cannot write to fails init() in every mode, before a process starts, rather
    than a run that looks live and keeps nothing. Trying is the only honest test: permission bits
    say nothing for root, a read-only mount or a file where a folder should be."""
    runs = settings.run_dir.parent
    try:
        runs.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=runs):  # unnamed on Linux: nothing is left if we die here
            pass
    except OSError as exc:
        detail = exc.strerror or str(exc)
        if exc.filename is not None and Path(exc.filename) != settings.root:
            detail += f": {exc.filename}"
        raise UsageError(
            f"dir {settings.root} is not a folder nbtrack can write to ({detail}); the run's "
            "transaction log goes there. Pass dir= (or set NBTRACK_DIR to) a writable folder"
        ) from exc


_CONSOLE_WORDS = {"on": True, "true": True, "1": True, "yes": True, "wrap": True, "auto": True}
_CONSOLE_WORDS |= {"off": False, "false": False, "0": False, "no": False}


def _console(value: bool | str | None, env: dict[str, str]) -> bool:
    """init(console=True/False/"on"/"off") > NBTRACK_CONSOLE > on."""
    if isinstance(value, bool):
        return value
    if value is not None and not isinstance(value, str):
        raise TypeError(f"console must be True, False, 'on' or 'off', not {type(value).__name__}")
    what = "console" if value is not None else "NBTRACK_CONSOLE"
    text = value if value is not None else env.get("NBTRACK_CONSOLE", "")
    if not text.strip():
        return Settings.console
    if text.strip().lower() not in _CONSOLE_WORDS:
        raise UsageError(f"{what} must be 'on' or 'off' (keep the script's stdout and stderr), not {text!r}")
    return _CONSOLE_WORDS[text.strip().lower()]


def _entity(entity: str | None, mode: str) -> str:
    """The entity runs belong to; online without one, "" lets the server answer with the key's own."""
    if entity is None:
        return "" if mode == "online" else DEFAULT_ENTITY
    return check_name(entity, "entity")


def _number(env: dict[str, str], name: str, default: float, meaning: str, minimum: float = 0.0) -> float:
    """A finite number >= minimum from the environment variable `name`, else default."""
    text = env.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not minimum <= value < float("inf"):
        raise UsageError(f"{name} must be {meaning}, at least {minimum:g}; not {text!r}")
    return value


def check_base_url(base_url: str) -> str:
    """The base URL without a trailing slash; ValueError unless it is an http(s) URL."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
    return base_url.rstrip("/")


def _base_url(base_url: Any) -> str:
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, not {type(base_url).__name__}")
    try:
        return check_base_url(base_url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_name(value: Any, what: str) -> str:
    """value if it is a valid entity, project or run name; it also names folders, so never . or .."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not value.strip():
        raise UsageError(f"{what} is empty; give it a name such as {what}='mnist'")
    if len(value) > 128 or not _NAME_RE.match(value):
        raise UsageError(
            f"{what} {value!r} may hold only letters, digits, '_', '-' and '.' (at most 128 characters)"
        )
    if value in (".", ".."):
        raise UsageError(f"{what} {value!r} is not a name; it would be a folder step")
    return value


def check_project(value: Any, what: str = "project") -> str:
    """value if it is a valid project name: W&B's rule (spaces and any Unicode, but none of
    / \\ # ? % : nor a control character), at most 128 characters, no space at either end."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not value.strip():
        raise UsageError(f"{what} is empty; give it a name such as {what}='mnist'")
    bad = _PROJECT_FORBIDDEN.search(value)
    if bad is not None:
        raise UsageError(
            f"{what} {value!r} may not hold {bad[0]!r} (none of / \\ # ? % : nor a control character)"
        )
    if len(value) > 128 or value != value.strip():
        raise UsageError(f"{what} {value!r} must be at most 128 characters, with no space at either end")
    if value in (".", ".."):
        raise UsageError(f"{what} {value!r} is not a name; it would be a folder step")
    return value
