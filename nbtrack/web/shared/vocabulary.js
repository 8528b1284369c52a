// Generated from nbtrack/vocabulary.py (python -m nbtrack.vocabulary); do not edit.
export const RUN_STATES = ["running", "finished", "failed", "crashed"];
export const LIVE_STATES = ["starting", "running", "finishing", "finished", "failed", "crashed", "offline", "retrying"];
export const IMAGE_TYPE = "image-file";
export const TABLE_TYPE = "table-file";
export const HISTOGRAM_TYPE = "histogram";
export const CLIENT_CONFIG_KEY = "_wandb";
export const SUMMARY_KINDS = ["last", "min", "max", "mean", "none"];
export const SERIES_COLORS = ["#3b82f6", "#e8590c", "#2f9e44", "#c2255c", "#7048e8", "#0c8599", "#a0791f", "#e64980", "#5c7cfa", "#868e96"];
export const LATEST_ALIAS = "latest";
