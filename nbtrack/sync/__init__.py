"""`nbtrack sync PATH`: replaying transaction logs into the store or to a tracking server.

`replay.py` (sync_log, find_logs: the replay through the sender's own code), `scan.py` (reading a
whole log, damaged ones included, each row at its line), `guard.py` (a replay never moves a run
backwards), `live.py` (a log still being written is waited for, then refused).
"""

from nbtrack.sync.replay import DEFAULT_WAIT, SyncReport, find_logs, sync_log

__all__ = ["DEFAULT_WAIT", "SyncReport", "find_logs", "sync_log"]
