"""Turn pydantic validation errors into located diagnostics with readable messages.

Pydantic reports a location as a tuple of keys and indexes; the TOML position map uses the same
tuples, so each error lands on the offending key. Unknown keys get a "did you mean" from the
fields the model at that location actually has.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from policy.diagnostics import Diagnostic
from policy.source import SourceFile

_M = TypeVar("_M", bound=BaseModel)

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "an array",
    dict: "a table",
}


def _kind(value: object) -> str:
    for kind, name in _TYPE_NAMES.items():
        if type(value) is kind:
            return name
    return type(value).__name__


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that owns the last element of `loc`, for "did you mean" hints."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel):
            if not isinstance(part, str) or part not in current.model_fields:
                return None
            current = current.model_fields[part].annotation
        else:
            current = _unwrap(current)
            if current is None:
                return None
    current = _unwrap_optional(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap_optional(annotation: Any) -> Any:
    while typing.get_origin(annotation) in (typing.Union, types.UnionType, typing.Annotated):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0] if args else None
    return annotation


def _unwrap(annotation: Any) -> Any:
    """Step from a container annotation (`list[X]`, `dict[K, X]`) to its element type."""
    annotation = _unwrap_optional(annotation)
    args = typing.get_args(annotation)
    return _unwrap_optional(args[-1]) if args else None


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def validated(
    model: type[_M],
    data: object,
    source: SourceFile,
    prefix: tuple[str | int, ...],
    problems: list[Diagnostic],
    profile: str | None = None,
) -> _M | None:
    """`data` as a `model`, or None with its errors (located under `prefix`) added to `problems`.

    Each part of a file is validated on its own, so one bad part does not hide the others.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems.extend(diagnostics_from(exc, source, prefix, model, profile))
        return None


def diagnostics_from(
    exc: ValidationError,
    source: SourceFile,
    prefix: tuple[str | int, ...],
    model: type[BaseModel],
    profile: str | None = None,
) -> list[Diagnostic]:
    """One diagnostic per pydantic error, located in `source` under the key path `prefix`."""
    out: list[Diagnostic] = []
    for error in exc.errors(include_url=False):
        loc = tuple(p for p in error["loc"] if p != "[key]")
        is_key = "[key]" in error["loc"]
        kind = error["type"]
        value = error.get("input")
        name = ".".join(str(p) for p in loc) or "value"
        location = source.at(prefix + loc)
        if kind == "extra_forbidden":
            owner = _model_at(model, loc)
            hint = did_you_mean(str(loc[-1]), list(owner.model_fields) if owner else [])
            out.append(
                Diagnostic(
                    location, "unknown-key", f"unknown key '{loc[-1]}'{hint}", profile=profile
                )
            )
        elif kind == "missing":
            out.append(
                Diagnostic(
                    location, "missing-key", f"missing required key '{name}'", profile=profile
                )
            )
        elif kind in ("bad-value", "reserved-label"):
            out.append(Diagnostic(location, kind, f"{name}: {error['msg']}", profile=profile))
        elif kind.endswith("_type") or kind in (
            "model_attributes_type",
            "date_from_datetime_inexact",
        ):
            expected = error["msg"].removeprefix("Input should be ").removeprefix("a valid ")
            what = "key" if is_key else name
            out.append(
                Diagnostic(
                    location,
                    "wrong-type",
                    f"{what}: expected {expected}, got {_kind(value)} ({_short(value)})",
                    profile=profile,
                )
            )
        else:
            message = error["msg"]
            message = message[:1].lower() + message[1:]
            subject = f"key {_short(loc[-1])}" if is_key and loc else name
            out.append(
                Diagnostic(
                    location,
                    "bad-value",
                    f"{subject}: {message}, got {_short(value)}",
                    profile=profile,
                )
            )
    return out


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
