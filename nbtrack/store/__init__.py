"""The embedded store of runs, history and output (SQLite by default, PostgreSQL for teams)."""

from nbtrack.store.store import (
    DB_FILENAME,
    AlertRow,
    Chart,
    ChartRequest,
    KeyRow,
    LineBatch,
    ProjectRow,
    RunRow,
    Store,
    StoreError,
    SystemChartRequest,
)

__all__ = [
    "DB_FILENAME",
    "AlertRow",
    "Chart",
    "ChartRequest",
    "KeyRow",
    "LineBatch",
    "ProjectRow",
    "RunRow",
    "Store",
    "StoreError",
    "SystemChartRequest",
]
