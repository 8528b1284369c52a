"""Words every layer shares, defined once, at the bottom: the user side, the internal process,
the store, the server and the front end (nbtrack/web/shared/vocabulary.js is generated from this
module and a test keeps it equal) take them from here, and nothing else from each other for them.
"""

from __future__ import annotations

__all__ = [
    "ALERTS_PER_RUN",
    "ALERT_LEVELS",
    "ALERT_TEXT_MAX",
    "ALERT_WAIT_SECONDS",
    "ARTIFACT_BLOBS",
    "CELLS_KEY",
    "CLIENT_CONFIG_KEY",
    "DROPPED_TYPE",
    "EVENTS_FILE",
    "HISTOGRAM_TYPE",
    "HISTORY_FILE",
    "IMAGE_TYPE",
    "LATEST_ALIAS",
    "LIVE_STATES",
    "MEDIA_TYPES",
    "OUTPUT_FILE",
    "RESERVED_KEYS",
    "RUN_ALIVE_SECONDS",
    "RUN_STATES",
    "SERIES_COLORS",
    "SILENT_RUN_SECONDS",
    "STEP_MAX",
    "SUMMARY_FILE",
    "SUMMARY_KINDS",
    "TABLE_TYPE",
    "exit_state",
    "js_module",
]

# Every state a stored run may be in; the store validates against this before writing.
RUN_STATES = ("running", "finished", "failed", "crashed")
# What a live panel may show besides: a run starting, finishing, offline (no store to reach), or
# retrying (a live run that cannot reach its server for now).
LIVE_STATES = ("starting", *RUN_STATES[:1], "finishing", *RUN_STATES[1:], "offline", "retrying")

# The colour of the n-th run in a chart of several (the notebook's comparison and its snapshot);
# the web UI's ui.css names the same colours (--c0 ...) for its light theme.
SERIES_COLORS = (
    "#3b82f6",
    "#e8590c",
    "#2f9e44",
    "#c2255c",
    "#7048e8",
    "#0c8599",
    "#a0791f",
    "#e64980",
    "#5c7cfa",
    "#868e96",
)


# A live run's writer is heard from at least this often (its rows, else a heartbeat: wandb-core's
# file stream posts `{}` as often), and a `running` run silent this long is marked crashed
# (store/liveness.py): by the tracking server, `--crashed-after` (W&B waits minutes too), and by
# whoever opens a local store for reading.
RUN_ALIVE_SECONDS = 30.0
SILENT_RUN_SECONDS = 300.0


def exit_state(exit_code: int, state: str = "") -> str:
    """The state a run ends in: the one given, else finished for exit code 0, failed otherwise."""
    return state or ("finished" if exit_code == 0 else "failed")


# nbtrack stamps these on rows itself (the last two in a notebook: internal/provenance.py); a
# user's row may not set them.
RESERVED_KEYS = frozenset({"_step", "_runtime", "_timestamp", "_cell", "_attempt"})
# Steps are int64 in records and the store, and the handler counts on from the last one, so a step
# must leave room above it; 2**53 - 1 is also the largest integer a browser (the panel) holds exactly.
STEP_MAX = 2**53 - 1
# How define_metric(summary=...) keeps a key: a kept value other than "last" alone is an object of
# these kinds ({"max": 0.98}, {"min": .., "max": ..}), which tables read as "max 0.98".
SUMMARY_KINDS = ("last", "min", "max", "mean", "none")
CELLS_KEY = "_cells"  # the summary key holding the notebook cells of a run (the read API's StoredRun.cells)

# A value that is an object, not a number: its "_type" says what (W&B's names for the media).
IMAGE_TYPE = "image-file"  # a PNG among the run's files: {"_type", "path", "sha256", "width", ...}
TABLE_TYPE = "table-file"  # a JSON table among the run's files
HISTOGRAM_TYPE = "histogram"  # inline: {"_type", "bins", "values"}
MEDIA_TYPES = (IMAGE_TYPE, TABLE_TYPE, HISTOGRAM_TYPE)
DROPPED_TYPE = "nbtrack-dropped"  # put in place of a value too big for the server (online/oversize.py)

# The W&B file stream's file names: what a run's post carries (online/) and the server reads.
HISTORY_FILE = "wandb-history.jsonl"
SUMMARY_FILE = "wandb-summary.json"
EVENTS_FILE = "wandb-events.jsonl"
OUTPUT_FILE = "output.log"
# The wandb client's own entry in a run's config (its version, the metrics it defined, ...): kept
# and served back to that client, left out of the config people read (as W&B's own API does).
CLIENT_CONFIG_KEY = "_wandb"


# A run's alerts (run.alert(), W&B's notifyScriptableRunAlert): their levels (W&B's AlertSeverity),
# the characters kept of a title or a text, and how long a title is not repeated by default (W&B's
# waitDuration, which its client sends as 60000 ms).
ALERT_LEVELS = ("INFO", "WARN", "ERROR")
ALERT_TEXT_MAX = 10_000
ALERT_WAIT_SECONDS = 60.0
ALERTS_PER_RUN = 1000  # a run keeps at most this many alerts (the store refuses more)

# The alias an artifact collection's newest committed version always has (W&B's word too): the
# store moves it at each commit, and a version's page shows it first.
LATEST_ALIAS = "latest"
# Where a store's files (a server's --files, ROOT/files) keep artifact blobs: <this>/<entity>/<hex MD5>.
ARTIFACT_BLOBS = "~artifacts"


def js_module() -> str:
    """nbtrack/web/shared/vocabulary.js: the words the front end needs, as this module defines
    them. A test compares the committed file with this;
    `python -m nbtrack.vocabulary > nbtrack/web/shared/vocabulary.js`."""
    import json

    words = {
        "RUN_STATES": list(RUN_STATES),
        "LIVE_STATES": list(LIVE_STATES),
        "IMAGE_TYPE": IMAGE_TYPE,
        "TABLE_TYPE": TABLE_TYPE,
        "HISTOGRAM_TYPE": HISTOGRAM_TYPE,
        "CLIENT_CONFIG_KEY": CLIENT_CONFIG_KEY,
        "SUMMARY_KINDS": list(SUMMARY_KINDS),
        "SERIES_COLORS": list(SERIES_COLORS),
        "LATEST_ALIAS": LATEST_ALIAS,
    }
    lines = ["// Generated from nbtrack/vocabulary.py (python -m nbtrack.vocabulary); do not edit."]
    lines += [f"export const {name} = {json.dumps(value)};" for name, value in words.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(js_module(), end="")
