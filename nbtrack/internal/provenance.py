"""Which notebook cell each row came from, and the attempts a re-run cell starts.

The extension sends a CellRecord when a cell begins; until the next one, the handler's rows
carry `_cell` (the execution count) and, from a run's second attempt on, `_attempt`. A row
logged by a thread that a cell started, after the next cell began, is the newer cell's: the
handler sees one ordered stream and cannot tell threads apart.

An attempt begins when a cell that began after the last row logs a step below the current one:
the classic re-run of a training cell. Within one cell, a step going backwards is still a
mistake, refused with a notice (rows.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.vocabulary import CELLS_KEY

__all__ = ["CELLS_KEY", "MAX_CELLS", "MAX_SPANS", "Provenance"]

MAX_SPANS = 8  # spans a LiveResult carries: the panel names the newest few
MAX_CELLS = 1000  # cells the summary describes (id and hash): a long session keeps the newest


@dataclass
class Span:
    """Consecutive rows of one cell and attempt."""

    cell: int
    attempt: int
    first_step: int
    last_step: int
    rows: int = 1


class Provenance:
    """The current cell and attempt, the cells seen, and the spans of rows they produced."""

    def __init__(self) -> None:
        self.cell = 0  # execution count of the cell running now; 0: not in a notebook
        self.attempt = 0
        self._rows = False  # some row was logged in a notebook cell
        self._new_cell = False  # a cell began since the last row
        self._cells: dict[str, dict[str, str]] = {}
        self._spans: list[Span] = []

    def begin(self, cell: pb.CellRecord) -> None:
        self.cell = cell.execution_count
        self._new_cell = True
        info = {"hash": cell.source_hash}
        if cell.cell_id:
            info["id"] = cell.cell_id
        self._cells[str(cell.execution_count)] = info
        while len(self._cells) > MAX_CELLS:
            del self._cells[next(iter(self._cells))]

    def cells_summary(self) -> dict[str, dict[str, str]]:
        """{execution count: {"id": cell id, "hash": source hash}}, the summary's `_cells`."""
        return dict(self._cells)

    def is_rerun(self) -> bool:
        """True if rows came before and a cell began since the last of them."""
        return self.cell != 0 and self._rows and self._new_cell

    def new_attempt(self) -> int:
        self.attempt += 1
        return self.attempt

    def stamp(self, row: dict[str, Any], step: int) -> None:
        """Add the row's cell (and attempt) to it and extend the spans."""
        row["_cell"] = self.cell
        if self.attempt:
            row["_attempt"] = self.attempt
        self._count(step)

    def recover_row(self, step: int, cell: int, attempt: int) -> None:
        """A row read back from the log of a process that died."""
        if cell:
            self.cell, self.attempt = cell, attempt
            self._count(step)

    def _count(self, step: int) -> None:
        self._rows, self._new_cell = True, False
        last = self._spans[-1] if self._spans else None
        if last is not None and (last.cell, last.attempt) == (self.cell, self.attempt):
            last.last_step, last.rows = step, last.rows + 1
            return
        self._spans.append(Span(self.cell, self.attempt, step, step))
        del self._spans[:-MAX_SPANS]

    def add_spans(self, live: pb.LiveResult) -> None:
        for span in self._spans:
            live.cells.add(
                execution_count=span.cell,
                first_step=span.first_step,
                last_step=span.last_step,
                attempt=span.attempt,
                rows=span.rows,
            )
