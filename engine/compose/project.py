"""Several compose files merged as compose merges them, with `extends` resolved: `Project`.

Later files override earlier ones key by key: scalars and `command`/`entrypoint`/
`healthcheck.test` are replaced; `environment`, `labels`, `sysctls`, `ulimits`, `extra_hosts`
merge by name (list form read as `NAME=VALUE`); `volumes`, `devices` and `tmpfs` merge by their
container path; `cap_add`, `cap_drop`, `security_opt`, `ports`, `expose`, `dns` are unions;
other mappings merge recursively. `extends` (a name, or `service` and `file`) applies the same
merge with the service over its base, after the files are merged. Every value keeps the
location of the file and line that set it last.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.compose.document import Document, KeyPath, Problem, dotenv, read
from policy.diagnostics import Location
from policy.errors import UsageError

BY_NAME = frozenset({"environment", "labels", "sysctls", "ulimits", "extra_hosts", "annotations"})
BY_TARGET = frozenset({"volumes", "devices", "tmpfs"})
UNION = frozenset({"cap_add", "cap_drop", "security_opt", "ports", "expose", "dns", "dns_search"})
REPLACED = frozenset({"command", "entrypoint", "test"})
Where = dict[KeyPath, Location]


@dataclass
class Service:
    """One service after merging: its values and where each key path was set."""

    name: str
    data: dict[str, Any]
    where: Where
    header: Location  # the service's own key in the last file that declares it
    base: str | None = None  # the service of the same project it `extends`, if any

    def at(self, *path: str | int) -> Location:
        p: KeyPath = tuple(path)
        while p and p not in self.where:
            p = p[:-1]
        return self.where.get(p, self.header)


@dataclass
class Project:
    """The merged services of one or more compose files."""

    files: list[Path]
    directory: Path
    version: str | None
    services: dict[str, Service]
    problems: list[Problem] = field(default_factory=list)
    extensions: dict[str, Any] = field(default_factory=dict)  # top-level `x-` keys


def _sub(where: Where, prefix: KeyPath) -> Where:
    n = len(prefix)
    return {k[n:]: v for k, v in where.items() if k[:n] == prefix and len(k) > n}


def _put(where: Where, prefix: KeyPath, sub: Where) -> None:
    where.update({(*prefix, *k): v for k, v in sub.items()})


def _target(key: str, item: Any) -> str:
    """The container path a `volumes`/`devices`/`tmpfs` entry is merged by."""
    if isinstance(item, dict):
        return str(item.get("target", item.get("container_path", id(item))))
    text = str(item)
    if key == "tmpfs":
        return text.split(":", 1)[0]
    parts = text.split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def normalise(name: str, data: dict[str, Any], where: Where) -> None:
    """List forms of name-merged keys as mappings, a single `tmpfs` string as a list (in
    place), so that files and `extends` merge entries rather than whole values."""
    for key in BY_NAME & data.keys():
        value = data[key]
        if isinstance(value, list) and key != "ulimits":
            mapping: dict[str, Any] = {}
            for i, entry in enumerate(value):
                k, sep, v = str(entry).partition("=" if key != "extra_hosts" else ":")
                mapping[k] = v if sep else None
                if (key, i) in where:
                    where[(key, k)] = where.pop((key, i))
            data[key] = mapping
    if isinstance(data.get("tmpfs"), str):
        data["tmpfs"] = [data["tmpfs"]]
        if ("tmpfs",) in where:
            where[("tmpfs", 0)] = where[("tmpfs",)]


def merge(base: Any, over: Any, bw: Where, ow: Where, key: str = "") -> tuple[Any, Where]:
    """`over` merged onto `base` by compose's rules; the locations follow the values."""
    if isinstance(base, dict) and isinstance(over, dict) and key not in REPLACED:
        out, where = dict(base), {k: v for k, v in bw.items()}
        for k, v in over.items():
            if k in out and key not in BY_NAME:
                sub_b, sub_o = _sub(where, (k,)), _sub(ow, (k,))
                for stale in [p for p in where if p[:1] == (k,) and len(p) > 1]:
                    del where[stale]
                out[k], merged = merge(out[k], v, sub_b, sub_o, k)
                _put(where, (k,), merged)
            else:
                for stale in [p for p in where if p[:1] == (k,) and len(p) > 1]:
                    del where[stale]
                out[k] = v
                _put(where, (k,), _sub(ow, (k,)))
            if (k,) in ow:
                where[(k,)] = ow[(k,)]
        return out, where
    if isinstance(base, list) and isinstance(over, list) and key in BY_TARGET | UNION:
        entries: dict[Any, tuple[Any, Where]] = {}
        for items, w in ((base, bw), (over, ow)):
            for i, item in enumerate(items):
                ident = _target(key, item) if key in BY_TARGET else repr(item)
                entries[ident] = (item, _sub(w, (i,)) | ({(): w[(i,)]} if (i,) in w else {}))
        out_list, where = [], {}
        for i, (item, w) in enumerate(entries.values()):
            out_list.append(item)
            _put(where, (i,), w)
        return out_list, where
    return over, dict(ow)


def _service_of(doc: Document, name: str, body: Any) -> Service:
    where = _sub(doc.where, ("services", name))
    data = dict(body) if isinstance(body, dict) else {}
    normalise(name, data, where)
    return Service(name, data, where, doc.at(("services", name)))


def _services(doc: Document) -> dict[str, Any]:
    services = doc.data.get("services")
    if services is None and doc.data.get("version") is None:
        services = {k: v for k, v in doc.data.items() if isinstance(v, dict)}  # format 1
    if not isinstance(services, dict):
        raise UsageError(f"{doc.at(('services',))}: 'services' must be a mapping of services")
    return services


class _Loader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.documents: dict[Path, Document] = {}

    def document(self, path: Path) -> Document:
        key = path.resolve()
        if key not in self.documents:
            self.documents[key] = read(path, self.env)
        return self.documents[key]


def load(files: list[Path], env: Mapping[str, str] | None = None) -> Project:
    """The merged project of `files` (in order), interpolated with `env` (default: the
    environment over the `.env` file of the first file's directory)."""
    if not files:
        raise UsageError("give at least one compose file")
    directory = files[0].resolve().parent
    loader = _Loader({**dotenv(directory), **os.environ} if env is None else env)
    services: dict[str, Service] = {}
    version: str | None = None
    extensions: dict[str, Any] = {}
    for path in files:
        doc = loader.document(path)
        if doc.data.get("version") is not None:
            version = str(doc.data["version"])
        extensions.update({k: v for k, v in doc.data.items() if k.startswith("x-")})
        for name, body in _services(doc).items():
            s = _service_of(doc, str(name), body)
            if s.name in services:
                old = services[s.name]
                s.data, s.where = merge(old.data, s.data, old.where, s.where)
            services[s.name] = s
    resolved: dict[str, Service] = {}
    problems: list[Problem] = []
    for name in services:
        resolved[name] = _extended(services[name], services, loader, files[0], problems, ())
    problems = [p for d in loader.documents.values() for p in d.problems] + problems
    return Project(list(files), directory, version, resolved, problems, extensions)


def _extended(
    s: Service,
    services: dict[str, Service],
    loader: _Loader,
    file: Path,
    problems: list[Problem],
    chain: tuple[str, ...],
) -> Service:
    spec = s.data.get("extends")
    if spec is None:
        return s
    base_name = (
        spec if isinstance(spec, str) else spec.get("service") if isinstance(spec, dict) else None
    )
    if not isinstance(base_name, str):
        problems.append(Problem(s.at("extends"), "bad-extends", "extends needs a service name"))
        return s
    pool, base_file = services, file
    if isinstance(spec, dict) and spec.get("file"):
        base_file = (Path(s.header.path).parent / str(spec["file"])).resolve()
        doc = loader.document(base_file)
        pool = {str(n): _service_of(doc, str(n), b) for n, b in _services(doc).items()}
    key = f"{base_file}:{base_name}"
    if key in chain or base_name not in pool:
        why = (
            "extends itself through " + " -> ".join((*chain, key))
            if key in chain
            else (f"extends unknown service '{base_name}'")
        )
        problems.append(Problem(s.at("extends"), "bad-extends", why))
        return s
    base = _extended(pool[base_name], pool, loader, base_file, problems, (*chain, key))
    data, where = merge(base.data, s.data, base.where, s.where)
    data.pop("extends", None)
    same_project = not (isinstance(spec, dict) and spec.get("file"))
    return Service(s.name, data, where, s.header, base_name if same_project else None)
