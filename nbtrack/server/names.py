"""The rule for entity, project and run names on the wire: settings' rule, as an API error."""

from __future__ import annotations

from nbtrack.errors import UsageError
from nbtrack.server.errors import ApiError
from nbtrack.settings import check_name as check_setting_name
from nbtrack.settings import check_project as check_setting_project

__all__ = ["check_name", "check_project"]


def check_name(value: str, what: str) -> str:
    """value if it is a valid name (letters, digits, _ - ., at most 128), else ApiError BAD_REQUEST."""
    try:
        return check_setting_name(value, what)
    except (UsageError, TypeError) as exc:
        raise ApiError("BAD_REQUEST", str(exc)) from None


def check_project(value: str, what: str = "project") -> str:
    """value if it is a valid project name (W&B's rule: settings.check_project), else BAD_REQUEST."""
    try:
        return check_setting_project(value, what)
    except (UsageError, TypeError) as exc:
        raise ApiError("BAD_REQUEST", str(exc)) from None
