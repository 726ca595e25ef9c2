"""The shape (YAML type) of each compose key the reader takes, checked before it is read.

A value of the wrong type (`ports: 80`, `labels: "x"`, `ulimits: [1]`) is a `bad-value` note
at its key, and the reader then sees the key as absent: so every reader can rely on its input's
type, and nothing a file says is read as something else.
"""

from __future__ import annotations

from typing import Any

from engine.compose.reader import Reader

SCALAR = (str, int, float, bool)
TEXT = (str,)
NUMBER = (str, int, float)
# key -> (types of the value, types of each item of a list or value of a mapping, or None)
SHAPES: dict[str, tuple[tuple[type, ...], tuple[type, ...] | None]] = {
    "image": (TEXT, None),
    "user": ((str, int), None),
    "read_only": ((bool,), None),
    "privileged": ((bool,), None),
    "network_mode": (TEXT, None),
    "networks": ((list, dict), None),
    "pid": (TEXT, None),
    "ipc": (TEXT, None),
    "uts": (TEXT, None),
    "cap_add": ((list,), TEXT),
    "cap_drop": ((list,), TEXT),
    "security_opt": ((list,), TEXT),
    "pids_limit": ((int,), None),
    "mem_limit": ((str, int), None),
    "cpus": (NUMBER, None),
    "cpu_quota": ((int,), None),
    "cpu_period": ((int,), None),
    "deploy": ((dict,), None),
    "tmpfs": ((list,), TEXT),
    "volumes": ((list,), (str, dict)),
    "environment": ((dict,), (*SCALAR, type(None))),
    "env_file": ((str, list), (str, dict)),
    "working_dir": (TEXT, None),
    "healthcheck": ((dict,), None),
    "labels": ((dict,), (*SCALAR, type(None))),
    "devices": ((list,), (str, dict)),
    "ports": ((list,), (str, int, dict)),
    "ulimits": ((dict,), (int, dict)),
    "x-policy-profile": (TEXT, None),
}
NESTED: dict[tuple[str, ...], tuple[type, ...]] = {
    ("deploy", "resources"): (dict,),
    ("deploy", "resources", "limits"): (dict,),
    ("deploy", "resources", "limits", "memory"): (str, int),
    ("deploy", "resources", "limits", "cpus"): NUMBER,
    ("deploy", "resources", "limits", "pids"): (int,),
    ("healthcheck", "test"): (str, list),
    ("healthcheck", "interval"): (str, int),
    ("healthcheck", "timeout"): (str, int),
    ("healthcheck", "start_period"): (str, int),
    ("healthcheck", "retries"): (int,),
    ("healthcheck", "disable"): (bool,),
}


def _name(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a mapping", type(None): "empty"}  # fmt: skip
    return " or ".join(dict.fromkeys(names[t] for t in types))


def _wrong(value: Any, types: tuple[type, ...]) -> bool:
    # bool is an int to Python, never to compose.
    return not isinstance(value, types) or (isinstance(value, bool) and bool not in types)


def checked(r: Reader) -> dict[str, Any]:
    """A copy of the service's data without the values of the wrong shape, each noted."""
    data = dict(r.s.data)
    for key, (types, items) in SHAPES.items():
        if key not in data or data[key] is None:
            continue
        value = data[key]
        if _wrong(value, types):
            r.note("bad-value", f"{key} must be {_name(types)}, got {value!r}"[:300], key)
            del data[key]
            continue
        if items is None:
            continue
        members = value.items() if isinstance(value, dict) else enumerate(value)
        bad = [k for k, v in members if _wrong(v, items)]
        if bad:
            r.note("bad-value", f"{key}: entries {bad[:5]} must be {_name(items or ())}", key)
            data[key] = (
                {k: v for k, v in value.items() if k not in bad}
                if isinstance(value, dict)
                else [v for i, v in enumerate(value) if i not in bad]
            )
    for path, types in NESTED.items():
        _nested(r, data, path, types)
    return data


def _nested(
    r: Reader, data: dict[str, Any], path: tuple[str, ...], types: tuple[type, ...]
) -> None:
    parent: Any = data
    for key in path[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(parent, dict) or parent.get(path[-1]) is None:
        return
    if _wrong(parent[path[-1]], types):
        r.note(
            "bad-value",
            f"{'.'.join(path)} must be {_name(types)}, got {parent[path[-1]]!r}"[:300],
            *path,
        )
        # A copy down the path, so the service's own data stays as the file has it.
        node = data
        for key in path[:-1]:
            node[key] = dict(node[key])
            node = node[key]
        del node[path[-1]]
