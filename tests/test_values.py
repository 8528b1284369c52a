"""Every kind of bad input to log() and init() gets a clear error naming the culprit."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import nbtrack
from nbtrack.errors import UsageError
from nbtrack.sdk.values import check_config, check_row, check_step


class Opaque:
    pass


class BadItem:
    """A 0-d tensor-like value whose .item() fails."""

    ndim = 0

    def item(self) -> float:
        raise RuntimeError("no device")


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"d": value}
    return value


BAD_ROWS: list[tuple[object, type[Exception], str]] = [
    ({"x": Opaque()}, TypeError, "value of 'x' has type .*Opaque"),
    ({"x": {1, 2}}, TypeError, "value of 'x' has type builtins.set"),
    ({1: 2.0}, TypeError, "key 1 is a int; keys must be str"),
    ({"x": np.zeros(3)}, TypeError, "value of 'x': a ndarray with shape \\(3,\\) is not a scalar"),
    ({"a": {"t": BadItem()}}, ValueError, "value of 'a/t': its \\.item\\(\\) raised RuntimeError: no device"),
    ({"x": 2**70}, ValueError, "value of 'x' is an int too large"),
    ({"x": "\ud800"}, ValueError, "value of 'x' is not valid unicode"),
    ({"\ud800": 1}, ValueError, "key .* is not valid unicode"),
    ({"_step": 3}, ValueError, "key '_step' is reserved"),
    ({"": 1}, ValueError, "empty key"),
    ({"x": [1, "two"]}, TypeError, "value of 'x\\[1\\]' has type str; lists may hold numbers only"),
    ({"a": {"b": {2: 1}}}, TypeError, "key 2 is a int"),
    (nested(40), ValueError, "nested deeper than 32 levels"),
    ([("a", 1)], TypeError, "log\\(\\) takes a dict of values, not list"),
    ("loss", TypeError, "log\\(\\) takes a dict of values, not str"),
]


@pytest.mark.parametrize(("data", "error", "message"), BAD_ROWS)
def test_bad_rows_raise_naming_the_culprit(data: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        check_row(data)


def test_accepted_values_are_normalised() -> None:
    row, plain = check_row(
        {
            "f": np.float32(1.5),
            "i": np.int64(3),
            "b": np.bool_(True),
            "t": np.array(2.0),
            "n": None,
            "s": "é",
            "l": (1, 2.5),
            "d": {"x": {"y": 1}},
            "_private": 1,
        }
    )
    assert row == {
        "f": 1.5,
        "i": 3,
        "b": True,
        "t": 2.0,
        "n": None,
        "s": "é",
        "l": [1, 2.5],
        "d/x/y": 1,
        "_private": 1,
    }
    assert type(row["i"]) is int and type(row["f"]) is float and plain


def test_non_finite_values_are_flagged() -> None:
    assert check_row({"a": math.nan})[1] is False
    assert check_row({"a": [1.0, math.inf]})[1] is False
    assert check_row({"a": 1.0})[1] is True


def test_the_fast_path_copies_the_callers_dict() -> None:
    data = {"a": 1.0}
    row, _ = check_row(data)
    data["a"] = 2.0
    assert row == {"a": 1.0}


@pytest.mark.parametrize(
    ("step", "error", "message"),
    [
        (-1, ValueError, "non-negative"),
        (1.5, TypeError, "not float"),
        (True, TypeError, "not bool"),
        ("3", TypeError, "not str"),
    ],
)
def test_bad_steps(step: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        check_step(step)


def test_numpy_steps_are_accepted() -> None:
    assert check_step(np.int64(7)) == 7


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"project": ""}, UsageError, "project is empty"),
        ({"project": "a:b"}, UsageError, "may not hold ':'"),
        ({"id": "a b"}, UsageError, "may hold only letters"),
        ({"project": 3}, TypeError, "project must be a str"),
        ({"mode": "cloud"}, UsageError, "unknown mode 'cloud'; use one of"),
        ({"mode": "online"}, UsageError, "mode='online' needs a tracking server"),
        ({"base_url": "localhost:8080"}, UsageError, "must be an http:// or https:// URL"),
        ({"base_url": 8080}, TypeError, "base_url must be a str"),
        ({"resume": "sometimes"}, UsageError, "resume must be"),
        ({"tags": "one"}, TypeError, "tags must be a list of str"),
        ({"name": 5}, TypeError, "name must be a str"),
        ({"config": [1]}, TypeError, "config must be a dict"),
        ({"config": {"x": object()}}, TypeError, "config\\['x'\\]"),
    ],
)
def test_bad_init_arguments(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        nbtrack.init(**{"mode": "disabled", **kwargs})


def test_an_item_error_names_the_key_and_keeps_the_cause() -> None:
    with pytest.raises(ValueError, match=r"config\['opt'\]\['lr'\]\": its \.item\(\) raised") as caught:
        check_config({"opt": {"lr": BadItem()}})
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_a_config_key_cannot_be_deleted_in_any_way() -> None:
    with nbtrack.init(mode="disabled", config={"lr": 0.1}) as run:
        refusals = [
            lambda: run.config.__delitem__("lr"),
            lambda: run.config.pop("lr"),
            run.config.popitem,
            run.config.clear,
            lambda: delattr(run.config, "lr"),
        ]
        for refusal in refusals:
            with pytest.raises(UsageError, match=r"config key 'lr' is 0\.1 and stays so"):
                refusal()
        assert run.config.as_dict() == {"lr": 0.1}
        run.config["lr"] = 0.1  # the same value again is fine
        with pytest.raises(UsageError, match=r"config key 'lr' is already 0\.1"):
            run.config["lr"] = 0.2
        with pytest.raises(KeyError):
            del run.config["absent"]
        with pytest.raises(AttributeError, match="config has no key 'absent'"):
            del run.config.absent
        assert run.config.pop("absent", None) is None
