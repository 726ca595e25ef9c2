"""A compose file read with the position of every key, and compose's variable interpolation.

PyYAML's `compose` keeps each node's line and column; `read` turns the node tree into plain
values and a map from key path to `Location`, so every finding points at the compose key that
caused it. YAML merge keys (`<<: *anchor`) are expanded as compose expands them. Strings are
interpolated as compose does (`$VAR`, `${VAR}`, `${VAR:-x}`, `${VAR-x}`, `${VAR:?err}`,
`${VAR?err}`, `$$`); an unset variable without a default is a `Problem`, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy.diagnostics import Location
from policy.errors import UsageError

KeyPath = tuple[str | int, ...]
MAX_FILE = 4 * 1024 * 1024  # a compose file is small; a larger one is refused, never parsed
MAX_VALUES = 200_000
YAML_TAGS = frozenset(
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "seq", "map",
                                       "timestamp")
)  # fmt: skip


@dataclass(frozen=True)
class Problem:
    """Something about the file itself (not a service's settings): where, what id, what."""

    location: Location
    code: str
    message: str


@dataclass
class Document:
    """One compose file: its values, where each key path is, and what went wrong reading it."""

    path: Path
    data: dict[str, Any]
    where: dict[KeyPath, Location]
    problems: list[Problem] = field(default_factory=list)

    def at(self, path: KeyPath) -> Location:
        """The location of `path`, else of its nearest located parent."""
        while path and path not in self.where:
            path = path[:-1]
        return self.where.get(path, Location(str(self.path), 1, 1))


_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<plain>[A-Za-z_][A-Za-z0-9_]*)|"
    r"\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<bad>\{[^}]*\}?))"
)


def interpolate(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """`text` with compose's interpolation applied, and a message per variable it could not
    resolve (unset without a default, `?` errors, malformed references)."""
    problems: list[str] = []

    def one(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        if m["bad"] is not None:
            problems.append(f"malformed variable reference '${m['bad']}'")
            return ""
        name = m["plain"] or m["braced"]
        op, arg = m["op"], m["arg"] or ""
        value = env.get(name)
        unset_or_empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in ("-", ":-"):
            return arg if (value is None if op == "-" else unset_or_empty) else str(value)
        if op in ("?", ":?"):
            if value is None if op == "?" else unset_or_empty:
                problems.append(f"variable {name} is required: {arg or 'unset'}")
                return ""
            return str(value)
        if op in ("+", ":+"):
            return "" if (value is None if op == "+" else unset_or_empty) else arg
        if value is None:
            problems.append(f"variable {name} is not set and has no default (compose would use '')")
            return ""
        return value

    return _VAR.sub(one, text), problems


class _Reader:
    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path, self.env = path, env
        self.where: dict[KeyPath, Location] = {}
        self.problems: list[Problem] = []
        self.loader = self._loader()
        self.count = 0

    @staticmethod
    def _loader() -> Any:
        import yaml

        return yaml.SafeLoader("")

    def loc(self, node: Any) -> Location:
        mark = node.start_mark
        return Location(str(self.path), mark.line + 1, mark.column + 1)

    def value(self, node: Any, path: KeyPath, depth: int = 0) -> Any:
        import yaml

        self.count += 1
        if node.tag not in YAML_TAGS:
            # Compose reads plain YAML; a language tag (`!!python/object`) or a custom one
            # (`!ref`) is refused, never constructed.
            raise UsageError(f"{self.loc(node)}: YAML tag {node.tag!r} is not one compose reads")
        if depth > 64 or self.count > MAX_VALUES:
            # Aliases can expand a small file into billions of values ("billion laughs").
            raise UsageError(f"{self.loc(node)}: compose file nested or expanded too far")
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            out = []
            for i, item in enumerate(node.value):
                self.where.setdefault((*path, i), self.loc(item))
                out.append(self.value(item, (*path, i), depth + 1))
            return out
        return self.scalar(node, path)

    def scalar(self, node: Any, path: KeyPath) -> Any:
        import yaml

        if not isinstance(node, yaml.ScalarNode):
            raise UsageError(f"{self.loc(node)}: a mapping key must be a plain value")
        if node.tag not in YAML_TAGS:
            raise UsageError(f"{self.loc(node)}: YAML tag {node.tag!r} is not one compose reads")
        try:
            constructed = self.loader.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:  # `!!int x`, a bad date
            raise UsageError(f"{self.loc(node)}: not a valid value: {exc}") from None
        if isinstance(constructed, str) and "$" in constructed:
            constructed, messages = interpolate(constructed, self.env)
            for message in messages:
                self.problems.append(Problem(self.loc(node), "unset-variable", message))
        return constructed

    def mapping(self, node: Any, path: KeyPath, depth: int) -> dict[str, Any]:
        import yaml

        out: dict[str, Any] = {}
        own = []
        for key_node, value_node in node.value:
            if key_node.tag != "tag:yaml.org,2002:merge":
                own.append((key_node, value_node))
                continue
            # `<<` first: the mapping's own keys then override what it merged, values and
            # locations alike.
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in reversed(sources):  # earlier sources take precedence
                if not isinstance(source, yaml.MappingNode):
                    self.problems.append(
                        Problem(self.loc(source), "bad-merge", "'<<' must name a mapping")
                    )
                    continue
                out.update(self.mapping(source, path, depth + 1))
        seen: set[str] = set()
        for key_node, value_node in own:
            key = str(self.scalar(key_node, path))
            if key in seen:
                self.problems.append(
                    Problem(self.loc(key_node), "duplicate-key", f"key '{key}' appears twice")
                )
            seen.add(key)
            for stale in [p for p in self.where if p[: len(path) + 1] == (*path, key)]:
                del self.where[stale]
            self.where[(*path, key)] = self.loc(key_node)
            out[key] = self.value(value_node, (*path, key), depth + 1)
        return out


def read(path: Path, env: Mapping[str, str]) -> Document:
    """`path` read with positions and interpolated; a file that is not YAML, not a mapping or
    not readable is a `UsageError` naming it."""
    import yaml

    from policy.source import read_regular

    # A regular file only, read up to its cap: a FIFO named by `extends.file` would block
    # forever, a device such as /dev/zero never ends.
    raw = read_regular(path, MAX_FILE)
    if isinstance(raw, tuple):
        raise UsageError(f"{path}: cannot read the compose file: {raw[1]}")
    try:
        node = yaml.compose(raw.decode("utf-8"), Loader=yaml.SafeLoader)
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise UsageError(f"{where}: not valid YAML: {problem}") from None
    reader = _Reader(path, env)
    if node is None or not isinstance(node, yaml.MappingNode):
        raise UsageError(f"{path}:1:1: a compose file is a mapping with a 'services' key")
    data = reader.value(node, ())
    return Document(path, data, reader.where, reader.problems)


def dotenv(directory: Path) -> dict[str, str]:
    """The `.env` file compose reads from the project directory (KEY=VALUE lines)."""
    return dotenv_file(directory / ".env") or {}


def dotenv_file(path: Path) -> dict[str, str] | None:
    """`KEY=VALUE` lines of an `env_file` (a regular file of at most 1 MiB), or None when it
    cannot be read."""
    from policy.source import read_regular

    raw = read_regular(path, 1 << 20)
    if isinstance(raw, tuple):
        return None
    return _parse_env(raw.decode("utf-8", errors="replace"))


def _parse_env(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out[key.strip()] = value
    return out
