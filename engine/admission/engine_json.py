"""Read a request body the way the engine's Go decoder reads it, or refuse it.

Go's `encoding/json` matches an object's keys to struct fields *case-insensitively* (with
Unicode folding: the long s U+017F is `s`, the Kelvin sign U+212A is `k`) and lets the last of
two matching keys win, so
`{"Privileged": false, "privileged": true}` is a privileged container to the engine. A plugin
that read keys exactly would see the first and allow it. So struct-like objects are read here by
folded name, and anything that could make the two readings differ is refused: a key twice (in any
case), a non-ASCII key, NaN or Infinity (Go rejects them; Python would not).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engine.admission.errors import UnreadableRequest

Folded = dict[str, Any]  # a struct's fields by lower-case name


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise UnreadableRequest(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise UnreadableRequest(f"{name} is not JSON (the engine refuses it)")


def decode(raw: bytes, what: str) -> Any:
    """The JSON document of `raw`; `UnreadableRequest` naming `what` if it is not one."""
    try:
        return json.loads(raw, object_pairs_hook=_pairs, parse_constant=_constant)
    except UnreadableRequest as exc:
        raise UnreadableRequest(f"{what}: {exc.message}") from None
    except (ValueError, RecursionError) as exc:
        raise UnreadableRequest(f"{what} is not valid JSON ({exc})") from None


def fold(doc: Any, what: str) -> Folded:
    """A JSON object read as a Go struct: its keys lower-cased, refusing any key that could
    fold onto another one. `null` or absent is an empty struct."""
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise UnreadableRequest(f"{what}: expected an object, got {type(doc).__name__}")
    out: Folded = {}
    for key, value in doc.items():
        if not key.isascii():
            raise UnreadableRequest(
                f"{what}: field {key!r} is not ASCII (the engine may fold it onto another field)"
            )
        low = key.lower()
        if low in out:
            raise UnreadableRequest(
                f"{what}: field {key!r} is given twice in different cases (the engine would "
                "take the last)"
            )
        out[low] = value
    return out


def is_zero(value: Any) -> bool:
    """Go's zero value, as a JSON value: what leaves a setting at the engine's default."""
    if isinstance(value, Mapping):
        return all(is_zero(v) for v in value.values())
    if isinstance(value, list):
        return not value
    return value in (None, "", 0, False)


def pick(folded: Folded, names: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The fields `names` (their engine spelling, for a document model) present in `folded`."""
    return {name: folded[name.lower()] for name in names if name.lower() in folded}
