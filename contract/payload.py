"""Strict reading of a job's JSON payload: a malformed value is the requester's error (BAD_REQUEST).

`bool("false")` is True and `int(True)` is 1, so every field is read through a named cast that says what
it expected; the worker turns the JobError into the job's failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jobs.errors import BAD_REQUEST, JobError


def as_bool(value: Any) -> bool:
    """JSON true/false, 0/1, or the strings "true"/"false" (bool("false") would be True)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise ValueError(value)


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(value)


def as_text_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(value)


_EXPECTED: dict[Callable[[Any], Any], str] = {
    int: "a whole number",
    float: "a number",
    as_bool: "true or false",
    as_text: "a text",
    as_text_list: "a list of texts",
}


def payload_value(payload: dict[str, Any], key: str, cast: Callable[[Any], Any], default: Any = None) -> Any:
    """payload[key] as `cast` (int, float, as_bool, ...), `default` when absent or null; BAD_REQUEST if malformed."""
    value = payload.get(key)
    if value is None:
        return default
    try:
        if cast is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return cast(value)
    except (TypeError, ValueError) as error:
        raise JobError(BAD_REQUEST, f"{key} must be {_EXPECTED.get(cast, 'valid')}, not {value!r}") from error


def require(payload: dict[str, Any], key: str, cast: Callable[[Any], Any]) -> Any:
    value = payload_value(payload, key, cast)
    if value is None or value == "":
        raise JobError(BAD_REQUEST, f"no {key} given")
    return value


def without_none(fields: dict[str, Any]) -> dict[str, Any]:
    """A payload without the optional fields left unset (the worker applies its defaults)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in fields.items() if v is not None}
