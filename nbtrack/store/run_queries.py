"""W&B's run filters and orders in SQL: which of a project's runs match, in what order, which page.

    from nbtrack.store.run_queries import query_runs
    found = query_runs(store, entity, project, {"config.lr": 0.01}, "-summary_metrics.loss", 0, 50)
    found.exact   # True: found.rows is that page and found.total the number of matches
                  # False: found.rows holds every candidate; the caller filters, orders and pages

The meaning of a filter is nbtrack/server/wandb_query.py's (Mongo-style, as wandb.Api sends it);
this module computes the same answer in the database where it can, with SQLite's json_extract and
PostgreSQL's jsonb. Where it cannot, it says so (exact=False) and narrows the runs as far as SQL
can, never further than the exact answer:

- operators SQL cannot express with the same meaning ($regex: Python's re is neither SQLite's
  (absent) nor PostgreSQL's POSIX regex; a list or object compared whole; an unknown operator or
  path, which the Python side rejects with its own message) leave their part of the filter to
  Python;
- a run whose config or summary text may hold NaN or ±Infinity (nbtrack's JSON dialect writes
  them as bare tokens, which SQLite 3.40's json functions and PostgreSQL's jsonb reject), or holds
  a list at a path the filter or order reads (a list matches a value it holds, at any depth), is
  left to Python too: when the project has such a run among the candidates the whole answer is
  Python's.

Values compare as wandb_query.py's do: numbers (and booleans, as 0 and 1) with numbers, text with
text by code point; a missing key and a JSON null are both "absent" for $exists, but only null
equals None. Order: runs with a value first (numbers before text ascending, text first
descending), ties by creation time, runs without a value last, newest first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    Numeric,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from nbtrack.store.queries import select_runs
from nbtrack.store.schema import RunRow, decode_run, runs
from nbtrack.store.store import Store

__all__ = ["RunSelection", "query_runs"]

_COLUMNS: dict[str, Any] = {
    "state": runs.c.state,
    "name": runs.c.run_id,
    "display_name": runs.c.display_name,
    "displayName": runs.c.display_name,
    "group": runs.c.group_name,
    "job_type": runs.c.job_type,
    "jobType": runs.c.job_type,
    "host": runs.c.host,
    "notes": runs.c.notes,
    "created_at": runs.c.created_at,
    "createdAt": runs.c.created_at,
    "heartbeat_at": runs.c.updated_at,
    "heartbeatAt": runs.c.updated_at,
}
_NUMBER_COLUMNS = {"created_at", "createdAt", "heartbeat_at", "heartbeatAt"}
_JSON_COLUMNS = {"config": runs.c.config, "summary_metrics": runs.c.summary, "summaryMetrics": runs.c.summary}
_JSON_COLUMNS["summary"] = runs.c.summary
_EXACT_FLOAT = 2.0**53  # beyond it a float and an integer may compare differently in SQL than in Python
_MAX_INT = 2**63  # SQLite's integers are 64-bit
_NEWEST_FIRST = [runs.c.created_at.desc(), runs.c.pk.desc()]
_UNSAFE_KEY = set('"\\')


class _Untranslatable(Exception):
    """This part of a filter or order is left to Python."""


@dataclass(frozen=True, slots=True)
class RunSelection:
    rows: list[RunRow]
    total: int  # count_only: the number of matching runs; else len(rows)
    exact: bool


@dataclass(frozen=True)
class _JsonPath:
    column: Any
    keys: tuple[str, ...]


def _readable(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """The column's JSON, or NULL when its text may hold NaN/±Infinity, which the databases' JSON
    functions refuse (an error, not NULL). Every JSON read goes through this: the database may
    evaluate a condition on any run, even one of another project, before the project's own
    conditions rule it out, so no read may fail on a run the guard would leave to Python."""
    return case((or_(column.like("%NaN%"), column.like("%Infinity%")), None), else_=column)


class _Compiler:
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.paths: list[_JsonPath] = []  # the JSON paths read, for the guard

    # -- values -------------------------------------------------------------------------------

    def json_path(self, path: str) -> _JsonPath:
        head, _, rest = path.partition(".")
        column = _JSON_COLUMNS.get(head)
        if column is None or not rest:
            raise _Untranslatable(path)
        if head == "config" and rest.endswith(".value"):
            raise _Untranslatable(path)  # W&B's stored form: either path may hold the value
        keys = tuple(rest.split("."))
        if any(not key or _UNSAFE_KEY & set(key) for key in keys):
            raise _Untranslatable(path)
        found = _JsonPath(column, keys)
        self.paths.append(found)
        return found

    def json_type(self, p: _JsonPath) -> ColumnElement[Any]:
        """'null', 'true', 'false', 'number', 'text', 'array', 'object'; SQL NULL when missing."""
        if self.dialect == "postgresql":
            kind = func.jsonb_typeof(self._pg(p))
            return case(
                (kind == "boolean", case((self._pg_text(p) == "true", "true"), else_="false")),
                (kind == "string", "text"),
                else_=kind,
            )
        kind = func.json_type(_readable(p.column), self._sqlite_path(p))
        return case((kind.in_(("integer", "real")), "number"), else_=kind)

    def json_number(self, p: _JsonPath) -> ColumnElement[Any]:
        """The value as a number when it is a number or a boolean (1, 0), else NULL."""
        kind = self.json_type(p)
        value: ColumnElement[Any]
        if self.dialect == "postgresql":
            value = cast(self._pg_text(p), Numeric)
        else:
            value = func.json_extract(_readable(p.column), self._sqlite_path(p))
        return case((kind == "number", value), (kind == "true", 1), (kind == "false", 0), else_=None)

    def json_text(self, p: _JsonPath) -> ColumnElement[Any]:
        """The value when it is text, else NULL."""
        if self.dialect == "postgresql":
            value: ColumnElement[Any] = self._pg_text(p).collate("C")
        else:
            value = func.json_extract(_readable(p.column), self._sqlite_path(p))
        return case((self.json_type(p) == "text", value), else_=None)

    def _pg(self, p: _JsonPath) -> ColumnElement[Any]:
        keys = literal(list(p.keys), ARRAY(Text))
        return cast(_readable(p.column), JSONB).op("#>", return_type=JSONB)(keys)

    def _pg_text(self, p: _JsonPath) -> ColumnElement[Any]:
        keys = literal(list(p.keys), ARRAY(Text))
        return cast(_readable(p.column), JSONB).op("#>>", return_type=Text)(keys)

    @staticmethod
    def _sqlite_path(p: _JsonPath) -> str:
        return "$" + "".join(f'."{key}"' for key in p.keys)

    # -- the guard: runs SQL cannot read the way Python does -------------------------------------

    def guard(self) -> ColumnElement[bool]:
        """True for a run whose JSON may hold NaN/±Infinity, or a list at a path read."""
        columns = {id(p.column): p.column for p in self.paths}
        tokens = [or_(c.like("%NaN%"), c.like("%Infinity%")) for c in columns.values()]
        if not tokens:
            return false()
        lists = [self.json_type(p) == "array" for p in self.paths]
        # CASE, not OR: the JSON functions must not see a text the token test caught.
        return case((or_(*tokens), True), (or_(*lists), True), else_=False) == true()

    # -- filters ------------------------------------------------------------------------------

    def filters(self, filters: dict[str, Any]) -> ColumnElement[bool]:
        parts = []
        for key, condition in filters.items():
            if key in ("$and", "$or", "$nor"):
                if not isinstance(condition, list) or not all(isinstance(c, dict) for c in condition):
                    raise _Untranslatable(key)
                children = [self.filters(c) for c in condition]
                if key == "$and":
                    parts.append(and_(true(), *children))
                elif key == "$or":
                    parts.append(or_(false(), *children))
                else:
                    parts.append(not_(or_(false(), *children)))
            elif key.startswith("$"):
                raise _Untranslatable(key)
            else:
                parts.append(self.test(key, condition))
        return and_(true(), *parts)

    def test(self, path: str, condition: Any) -> ColumnElement[bool]:
        if not (isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition)):
            return self.equal(path, condition)
        return and_(true(), *(self.operator(path, op, operand) for op, operand in condition.items()))

    def operator(self, path: str, op: str, operand: Any) -> ColumnElement[bool]:
        if op == "$eq":
            return self.equal(path, operand)
        if op == "$ne":
            return not_(self.equal(path, operand))
        if op in ("$gt", "$gte", "$lt", "$lte"):
            return self.compare(path, op, operand)
        if op in ("$in", "$nin"):
            if not isinstance(operand, list):
                raise _Untranslatable(op)
            found = or_(false(), *(self.equal(path, item) for item in operand))
            return found if op == "$in" else not_(found)
        if op == "$exists":
            present = self.present(path)
            return present if operand else not_(present)
        if op == "$not":
            return not_(self.test(path, operand))
        raise _Untranslatable(op)  # $regex, and what Python rejects

    def equal(self, path: str, wanted: Any) -> ColumnElement[bool]:
        """Two-valued (never SQL NULL): NOT of it is its complement."""
        if isinstance(wanted, (list, dict)):
            raise _Untranslatable(path)
        if _too_big(wanted):
            raise _Untranslatable(path)
        if path == "tags":
            if not isinstance(wanted, str):
                return false()  # a tag is text: no other value is among them
            return self._has_tag(wanted)
        if path in _COLUMNS:
            column = _COLUMNS[path]
            if wanted is None:
                is_null: ColumnElement[bool] = column.is_(None)
                return is_null
            is_number = path in _NUMBER_COLUMNS
            if isinstance(wanted, bool) or isinstance(wanted, str) == is_number:
                return false()
            if isinstance(wanted, float) and not math.isfinite(wanted):
                return false()
            return func.coalesce(column == wanted, False) == true()
        p = self.json_path(path)
        kind = self.json_type(p)
        if wanted is None:
            return func.coalesce(kind == "null", False) == true()
        if isinstance(wanted, bool):
            return func.coalesce(kind == ("true" if wanted else "false"), False) == true()
        if isinstance(wanted, str):
            return func.coalesce(self.json_text(p) == wanted, False) == true()
        if isinstance(wanted, (int, float)):
            if not math.isfinite(wanted):
                return false()  # NaN and ±inf are only in runs the guard leaves to Python
            number = case((kind == "number", self.json_number(p)), else_=None)
            return func.coalesce(number == _number(wanted, self.dialect), False) == true()
        raise _Untranslatable(path)

    def compare(self, path: str, op: str, operand: Any) -> ColumnElement[bool]:
        if isinstance(operand, bool):
            operand = int(operand)
        if isinstance(operand, float) and math.isnan(operand):
            return false()
        if not isinstance(operand, (int, float, str)):
            return false()  # no order for it: Python's _sort_key is None
        if _too_big(operand):
            raise _Untranslatable(path)
        if path == "tags":
            return false()
        if path in _COLUMNS:
            is_number = path in _NUMBER_COLUMNS
            if isinstance(operand, str) == is_number:
                return false()
            value: ColumnElement[Any] = _COLUMNS[path]
            if isinstance(operand, str) and self.dialect == "postgresql":
                value = value.collate("C")
        else:
            p = self.json_path(path)
            value = self.json_text(p) if isinstance(operand, str) else self.json_number(p)
        if isinstance(operand, float) and math.isinf(operand):
            below = operand > 0
            wanted_side = op in ("$lt", "$lte") if below else op in ("$gt", "$gte")
            return func.coalesce(value.is_not(None) & wanted_side, False) == true()
        bound = operand if isinstance(operand, str) else _number(operand, self.dialect)
        result = {"$gt": value > bound, "$gte": value >= bound, "$lt": value < bound, "$lte": value <= bound}[
            op
        ]
        return func.coalesce(result, False) == true()

    def present(self, path: str) -> ColumnElement[bool]:
        if path == "tags":
            return true()
        if path in _COLUMNS:
            not_null: ColumnElement[bool] = _COLUMNS[path].is_not(None)
            return not_null
        kind = self.json_type(self.json_path(path))
        return func.coalesce(kind != "null", False) == true()

    def _has_tag(self, tag: str) -> ColumnElement[bool]:
        if self.dialect == "postgresql":
            return cast(runs.c.tags, JSONB).op("?", return_type=Boolean)(literal(tag, Text)) == true()
        each = func.json_each(runs.c.tags).table_valued("value")
        return select(literal(1)).select_from(each).where(each.c.value == tag).exists()

    # -- order --------------------------------------------------------------------------------

    def order(self, order: str) -> list[Any]:
        descending = not order.startswith("+")
        path = order.lstrip("+-")
        if path == "tags" or not path:
            raise _Untranslatable(order)
        if path in _COLUMNS:
            column = _COLUMNS[path]
            is_number = path in _NUMBER_COLUMNS
            number = column if is_number else None
            text = None if is_number else (column.collate("C") if self.dialect == "postgresql" else column)
            kind: ColumnElement[Any] = case((column.is_(None), None), else_=1 if text is not None else 0)
        else:
            p = self.json_path(path)
            number, text = self.json_number(p), self.json_text(p)
            kind = case((number.is_not(None), 0), (text.is_not(None), 1), else_=None)
        present = kind.is_not(None)
        keys: list[Any] = [case((present, 0), else_=1)]
        for key in (kind, number, text):
            if key is not None:
                keys.append(key.desc() if descending else key.asc())
        if descending:  # Python sorts (value, -created_at) reversed: ties oldest first; absent newest first
            keys.append(case((present, runs.c.created_at), else_=-runs.c.created_at).asc())
        else:
            keys.append(runs.c.created_at.desc())
        keys.append(runs.c.pk.desc())
        return keys


def _too_big(value: Any) -> bool:
    """A number SQL would not compare with a stored one exactly as Python does."""
    if isinstance(value, float):
        return math.isfinite(value) and abs(value) >= _EXACT_FLOAT
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _MAX_INT


def _number(value: int | float, dialect: str) -> Any:
    if dialect == "postgresql":
        return literal(value, Numeric if isinstance(value, int) else Float)
    return literal(value)


def query_runs(
    store: Store,
    entity: str,
    project: str,
    filters: dict[str, Any] | None,
    order: str | None,
    offset: int = 0,
    limit: int | None = None,
    *,
    count_only: bool = False,
) -> RunSelection:
    """The runs of the project the filter selects, in order, limit of them from offset on; see the
    module's docstring for when the answer is left to the caller (exact=False)."""
    compiler = _Compiler(store._dialect)
    base = select_runs(entity, project)
    exact = True
    condition: ColumnElement[bool] = true()
    parts: Sequence[tuple[str, Any]] = list((filters or {}).items())
    for key, value in parts:  # each top-level condition in SQL if it can be: the rest is Python's
        try:
            condition = and_(condition, compiler.filters({key: value}))
        except _Untranslatable:
            exact = False
    try:
        order_by = compiler.order(order or "-created_at")
    except _Untranslatable:
        exact, order_by = False, _NEWEST_FIRST
    guard = compiler.guard()
    reads_json = bool(compiler.paths)
    with store._snapshot() as conn:  # the guard's answer holds for the statements after it
        if exact and reads_json:
            exact = conn.execute(base.with_only_columns(runs.c.pk).where(guard).limit(1)).first() is None
        if not exact:
            # Narrowed as far as SQL can without reading a guarded run's JSON; Python decides. In
            # list_runs' order (newest first), the order Python's sort breaks ties by.
            where = case((guard, True), else_=condition) == true() if reads_json else condition
            stmt = base.where(where).order_by(*_NEWEST_FIRST)
            rows = [decode_run(row) for row in conn.execute(stmt)]
            return RunSelection(rows, len(rows), exact=False)
        matching = base.where(condition)
        if count_only:
            counted = select(func.count()).select_from(matching.with_only_columns(runs.c.pk).subquery())
            return RunSelection([], int(conn.scalar(counted) or 0), exact=True)
        stmt = matching.order_by(*order_by).offset(offset or None).limit(limit)
        rows = [decode_run(row) for row in conn.execute(stmt)]
    return RunSelection(rows, len(rows), exact=True)
