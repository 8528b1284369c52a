"""`c.NBTrack.*`: the extension's settings, as traitlets, overridable per init() call."""

from __future__ import annotations

import os

from traitlets import Bool, CaselessStrEnum, Float, Unicode, default, validate
from traitlets.config import Configurable

from nbtrack.settings import MODES

__all__ = ["NBTrack", "deterministic_from_env"]


def deterministic_from_env() -> bool:
    """$NBTRACK_DETERMINISTIC set (not empty, "0" or "false"): stable output for tests."""
    return os.environ.get("NBTRACK_DETERMINISTIC", "") not in ("", "0", "false", "False")


class NBTrack(Configurable):
    """Settings of `%load_ext nbtrack`; init() arguments still win over these."""

    project = Unicode(None, allow_none=True, help="Default project of runs started in this kernel.").tag(
        config=True
    )
    mode = Unicode(None, allow_none=True, help=f"Default mode: one of {', '.join(MODES)}.").tag(config=True)
    base_url = Unicode(None, allow_none=True, help="Tracking server for online mode.").tag(config=True)
    dir = Unicode(
        None, allow_none=True, help="nbtrack root (store and run folders); default ./.nbtrack."
    ).tag(config=True)
    display = CaselessStrEnum(
        ["widget", "text", "none"], default_value="widget", help="How a run shows under its cell."
    ).tag(config=True)
    prewarm = Bool(True, help="Keep a started internal process ready so init() returns at once.").tag(
        config=True
    )
    deterministic = Bool(
        help="Stable text output without wall-clock values, for tests (default: $NBTRACK_DETERMINISTIC)."
    ).tag(config=True)
    capture_console = Bool(
        True, help="Keep what cells print (stdout and stderr) while a run is live in the run's console log."
    ).tag(config=True)
    save_code = Bool(
        False,
        help="Store the sources of the cells run while a run is live, as its file code/cells.py "
        "(see %nbtrack code); init(save_code=...) wins.",
    ).tag(config=True)
    stats_between_cells = Bool(
        True, help="Sample system metrics while no cell runs too; False pauses them between cells."
    ).tag(config=True)
    live_interval = Float(0.25, help="Seconds between live panel updates from the internal process.").tag(
        config=True
    )

    @default("deterministic")
    def _deterministic_from_env(self) -> bool:
        return deterministic_from_env()

    @validate("mode")
    def _check_mode(self, proposal: dict[str, object]) -> object:
        value = proposal["value"]
        if value is not None and value not in MODES:
            from IPython.core.error import UsageError

            raise UsageError(f"c.NBTrack.mode = {value!r} is not a mode; use one of {', '.join(MODES)}")
        return value

    @validate("live_interval")
    def _check_interval(self, proposal: dict[str, object]) -> object:
        value = proposal["value"]
        if not isinstance(value, float) or not 0.1 <= value <= 10:
            from IPython.core.error import UsageError

            raise UsageError("c.NBTrack.live_interval must be between 0.1 and 10 seconds")
        return value
