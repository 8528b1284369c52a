"""`run.config` and `run.summary`: mappings whose changes travel to the internal process as records."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any, NamedTuple

from nbtrack import jsonutil
from nbtrack.errors import UsageError
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.sdk.values import check_config

__all__ = ["Config", "NotebookLink", "RunLink", "Summary"]


class RunLink(NamedTuple):
    """What config and summary need of their run, and nothing more."""

    check_live: Callable[[str], None]  # raises if the run can no longer be written to
    publish: Callable[[pb.Record], None]  # sends a record after everything logged before it
    get_summary: Callable[[], dict[str, Any]]


class NotebookLink(NamedTuple):
    """What the notebook extension sends a run, and nothing more: where cells begin and end, and
    the lines the kernel prints. Both are no-ops once the run is finished."""

    cell: Callable[[pb.CellRecord], None]
    console: Callable[[str, str, float], None]  # stream ("stdout" or "stderr"), line, timestamp


def _merged(other: Any, kwargs: dict[str, Any], where: str) -> dict[str, Any]:
    """update()'s arguments as one dict; dict() alone would fail on a str or a number with a
    message that names neither the call nor the argument."""
    try:
        return {**dict(other), **kwargs}
    except (TypeError, ValueError):
        raise TypeError(
            f"{where}.update() takes a dict (or key=value arguments), not {type(other).__name__}"
        ) from None


class Config(MutableMapping[str, Any]):
    """The run's hyperparameters. A key keeps its first value: setting it again to another value
    is an error (silently changed hyperparameters make runs impossible to compare), and so is
    deleting it (del, pop, popitem, clear)."""

    def __init__(self, run: RunLink, initial: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_values", check_config(initial, "config"))

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"config has no key {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delattr__(self, key: str) -> None:
        if key not in self._values:
            raise AttributeError(f"config has no key {key!r}")
        del self[key]

    def __delitem__(self, key: str) -> None:
        # Refused rather than forgotten: the rows logged so far were produced under this value,
        # so the stored config must keep it, and a deleted key set again could take any value
        # (W&B's config has no deletion either).
        self._run.check_live("config")
        if key not in self._values:
            raise KeyError(key)
        raise UsageError(
            f"config key {key!r} is {self._values[key]!r} and stays so: a hyperparameter cannot be "
            "deleted. Use a new key, or start a new run for new hyperparameters"
        )

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Add keys all-or-nothing: every value is checked before any is kept."""
        self._run.check_live("config")
        incoming = check_config(_merged(other, kwargs, "config"), "config")
        for key, value in incoming.items():
            if key in self._values and self._values[key] != value:
                raise UsageError(
                    f"config key {key!r} is already {self._values[key]!r}; refusing to change it to "
                    f"{value!r}. Use a new key, or start a new run for new hyperparameters"
                )
        changed = {k: v for k, v in incoming.items() if k not in self._values}
        if changed:
            self._values.update(changed)
            self._run.publish(pb.Record(config=pb.ConfigRecord(update_json=jsonutil.dumps(changed))))

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Config({self._values!r})"


class Summary(MutableMapping[str, Any]):
    """The run's summary: the last (or min/max/mean) value of each metric, plus what you set here.

    Reading asks the internal process (which computes it), so it is always current.
    """

    def __init__(self, run: RunLink) -> None:
        self._run = run

    def _values(self) -> dict[str, Any]:
        return self._run.get_summary()

    def __getitem__(self, key: str) -> Any:
        return self._values()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        self._run.check_live("summary")
        if key not in self._values():
            raise KeyError(key)
        self._run.publish(pb.Record(summary=pb.SummaryRecord(remove=[key])))

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        self._run.check_live("summary")
        values = check_config(_merged(other, kwargs, "summary"), "summary")
        self._run.publish(pb.Record(summary=pb.SummaryRecord(update_json=jsonutil.dumps(values))))

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())

    def __repr__(self) -> str:
        return f"Summary({self._values()!r})"
