"""Code capture (opt-in): the sources of the cells run while a run is live, stored as one file.

Off unless `c.NBTrack.save_code = True` or `init(save_code=True)`. The file is written when the
run finishes, as `code/cells.py` of the run; `%nbtrack code` prints `render()`'s text, which is
exactly what will be stored. The notebook's name comes from the kernel (`__session__`, which
Jupyter and VS Code set, or $JPY_SESSION_NAME), never from asking a Jupyter server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CODE_FILE", "CodeLog", "notebook_name"]

CODE_FILE = "code/cells.py"


@dataclass
class CodeLog:
    """The cells a run saw, in the order they ran (a re-run cell appears again)."""

    run_id: str
    notebook: str | None = None
    cells: list[tuple[int, str]] = field(default_factory=list)  # (execution count, source)

    def add(self, execution_count: int, source: str) -> None:
        self.cells.append((execution_count, source))

    def render(self) -> str:
        where = f" of {self.notebook}" if self.notebook else ""
        parts = [f"# nbtrack: the cells{where} run while run {self.run_id} was live, in order\n"]
        for count, source in self.cells:
            parts.append(f"\n# In[{count}]:\n{source.rstrip()}\n")
        return "".join(parts)


def notebook_name(user_ns: dict[str, Any]) -> str | None:
    """The notebook's path as the kernel knows it, if it does."""
    session = user_ns.get("__session__")
    if isinstance(session, str) and session:
        return session
    return os.environ.get("JPY_SESSION_NAME") or None
