"""Load a policy (one or more TOML files) into effective profiles, reporting every error at once.

Order of work: read and parse every file; validate each part of each file on its own (so one bad
profile does not hide the others); check names across files; resolve `extends` chains
(`[defaults]` < parent < child, tables merged, lists replaced); resolve seccomp files and mount
sources. Any diagnostic raises one `PolicyError` carrying all of them.

Mount sources that are relative resolve against the *project directory*: by default the parent of
the policy directory (for `policies/`, the directory that holds it), or `--project DIR`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from policy.diagnostics import Diagnostic, Location
from policy.errors import PolicyError
from policy.guardrails import Guardrails, is_guardrail_file, load_guardrails
from policy.model import (
    SUPPORTED_VERSIONS,
    PolicyFileInput,
    Profile,
    ProfileInput,
    Seccomp,
    WaiverInput,
)
from policy.pydantic_errors import diagnostics_from, did_you_mean
from policy.source import SourceFile, display_path, read_regular, read_toml

KeyPath = tuple[str | int, ...]
MAX_SECCOMP_BYTES = 4 * 1024 * 1024
MAX_DIRECTORY_DEPTH = 32
_TOP_KEYS = tuple(PolicyFileInput.model_fields)
_SECCOMP_ACTIONS = frozenset(
    {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
     "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_LOG"}
)  # fmt: skip


@dataclass(frozen=True)
class Origin:
    """Where a setting was written: the file and the key path inside it."""

    source: SourceFile
    keypath: KeyPath

    @property
    def location(self) -> Location:
        return self.source.at(self.keypath)


@dataclass(frozen=True)
class Waiver:
    """A waiver as declared, with where it was declared."""

    profile: str
    rule: str
    reason: str
    expires: Any  # datetime.date
    origin: Origin


@dataclass
class Policy:
    """Everything a policy directory declares, resolved and ready for rules and the engine."""

    project: Path
    files: list[str]
    profiles: dict[str, Profile]
    origins: dict[str, dict[KeyPath, Origin]]  # per profile: field path -> where it was set
    declared: dict[str, Origin]  # per profile: its table header
    waivers: list[Waiver] = field(default_factory=list)
    guardrails: list[Guardrails] = field(default_factory=list)

    def profile(self, name: str) -> Profile:
        """The profile called `name`, or a `UsageError` with the nearest names."""
        if name not in self.profiles:
            from policy.errors import UsageError
            from policy.pydantic_errors import did_you_mean

            hint = did_you_mean(name, list(self.profiles))
            raise UsageError(f"no profile '{name}'{hint}; `policy list` shows them")
        return self.profiles[name]

    def where(self, profile: str, keypath: Sequence[str | int] = ()) -> Location:
        """The location of `keypath` of `profile`: where it was set, else the profile's header."""
        origins = self.origins.get(profile, {})
        path = tuple(keypath)
        while path:
            if path in origins:
                origin = origins[path]
                return origin.source.at(origin.keypath + tuple(keypath)[len(path) :])
            path = path[:-1]
        return self.declared[profile].location


@dataclass
class _Declared:
    name: str
    source: SourceFile
    keypath: KeyPath
    data: ProfileInput


def policy_files(paths: Sequence[Path]) -> tuple[list[Path], list[Diagnostic]]:
    """The TOML files named by `paths` (directories are searched recursively, sorted)."""
    files: list[Path] = []
    problems: list[Diagnostic] = []
    for path in paths:
        if path.is_dir():
            before = len(problems)
            found = _toml_files(path, problems)
            if not found and len(problems) == before:
                problems.append(
                    Diagnostic(
                        Location(display_path(path)),
                        "no-policy",
                        "no .toml policy files in this directory",
                    )
                )
            files.extend(found)
        elif path.exists() or path.is_symlink():
            files.append(path)
        else:
            problems.append(
                Diagnostic(Location(display_path(path)), "not-found", "no such file or directory")
            )
    return list(dict.fromkeys(files)), problems


def _toml_files(root: Path, problems: list[Diagnostic]) -> list[Path]:
    """`*.toml` under `root`, sorted; iterative, depth-capped, not following directory symlinks
    (so neither a deep tree nor a symlink loop can exhaust the stack or run forever)."""
    found: list[Path] = []
    stack = [(root, 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            problems.append(
                Diagnostic(
                    Location(display_path(directory)), "unreadable", exc.strerror or str(exc)
                )
            )
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False) and entry.name.endswith(".toml"):
                # Named like a policy file: almost certainly a mistake, so say so.
                problems.append(
                    Diagnostic(
                        Location(display_path(Path(entry.path))),
                        "not-a-file",
                        "is a directory, expected a TOML file",
                    )
                )
            elif entry.is_dir(follow_symlinks=False):
                if depth + 1 > MAX_DIRECTORY_DEPTH:
                    problems.append(
                        Diagnostic(
                            Location(display_path(Path(entry.path))),
                            "too-deep",
                            f"policy directories may be at most {MAX_DIRECTORY_DEPTH} levels deep",
                        )
                    )
                else:
                    stack.append((Path(entry.path), depth + 1))
            elif entry.name.endswith(".toml"):
                found.append(Path(entry.path))
    return sorted(found)


def default_project(paths: Sequence[Path]) -> Path:
    """The project directory: the parent of the (first) policy directory."""
    first = paths[0] if paths else Path("policies")
    base = first if first.is_dir() else first.parent
    return base.resolve().parent


def load_policy(paths: Sequence[Path], project: Path | None = None) -> Policy:
    """Load and resolve a policy; raise `PolicyError` with every diagnostic if anything is wrong."""
    paths = list(paths) or [Path("policies")]
    project = (project or default_project(paths)).resolve()
    files, problems = policy_files(paths)
    sources: list[SourceFile] = []
    guardrails: list[Guardrails] = []
    for path in files:
        parsed = read_toml(path)
        if isinstance(parsed, Diagnostic):
            problems.append(parsed)
        elif is_guardrail_file(path):
            loaded = load_guardrails(parsed)
            if isinstance(loaded, Guardrails):
                guardrails.append(loaded)
            else:
                problems.extend(loaded)
        else:
            sources.append(parsed)

    declared: dict[str, _Declared] = {}
    defaults: tuple[SourceFile, ProfileInput] | None = None
    waivers: list[Waiver] = []
    broken: set[str] = set()  # declared, but already reported as invalid
    for source in sources:
        found_defaults, file_profiles, file_waivers = _read_policy_file(source, problems, broken)
        if found_defaults is not None:
            if defaults is not None:
                first = defaults[0].at(("defaults",))
                problems.append(
                    Diagnostic(
                        source.at(("defaults",)),
                        "duplicate-defaults",
                        f"[defaults] is already declared at {first}",
                    )
                )
            else:
                defaults = (source, found_defaults)
        for decl in file_profiles:
            if decl.name in declared:
                other = declared[decl.name]
                here = decl.source.at(decl.keypath)
                there = other.source.at(other.keypath)
                problems.append(
                    Diagnostic(
                        here,
                        "duplicate-profile",
                        f"profile '{decl.name}' is also declared at {there}",
                    )
                )
                problems.append(
                    Diagnostic(
                        there,
                        "duplicate-profile",
                        f"profile '{decl.name}' is also declared at {here}",
                    )
                )
            else:
                declared[decl.name] = decl
        waivers.extend(file_waivers)

    if not sources and not problems:
        problems.append(
            Diagnostic(
                Location(display_path(paths[0])),
                "no-policy",
                "no policy files (only guardrails) found",
            )
        )
    base: dict[str, Any] = {}
    base_origins: dict[KeyPath, Origin] = {}
    if defaults is not None:
        base = _merge(
            base,
            defaults[1].model_dump(exclude_none=True),
            Origin(defaults[0], ("defaults",)),
            (),
            base_origins,
        )
    # Each profile's merged settings build on its parent's, so a long chain is merged once.
    merged: dict[str, tuple[dict[str, Any], dict[KeyPath, Origin]]] = {}
    cache: dict[tuple[str, str], Any] = {}  # seccomp files and mount sources, resolved once
    profiles: dict[str, Profile] = {}
    origins: dict[str, dict[KeyPath, Origin]] = {}
    for name in _resolve_chains(declared, broken, problems):
        decl = declared[name]
        parent = decl.data.extends
        settings, where = merged[parent] if parent is not None else (base, base_origins)
        where = dict(where)
        settings = _merge(
            settings,
            decl.data.model_dump(exclude_none=True),
            Origin(decl.source, decl.keypath),
            (),
            where,
        )
        settings.pop("extends", None)
        merged[name] = (settings, where)
        built = _build_profile(name, dict(settings), where, decl, project, problems, cache)
        if built is not None:
            profiles[name], origins[name] = built, where

    if problems:
        problems.sort(key=Diagnostic.sort_key)
        raise PolicyError(f"{len(problems)} error(s) in the policy", problems)
    return Policy(
        project=project,
        files=[s.display for s in sources],
        profiles=profiles,
        origins=origins,
        declared={n: Origin(d.source, d.keypath) for n, d in declared.items()},
        waivers=waivers,
        guardrails=guardrails,
    )


def _validate(
    model: type[BaseModel],
    data: object,
    source: SourceFile,
    keypath: KeyPath,
    problems: list[Diagnostic],
    profile: str | None = None,
) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems.extend(diagnostics_from(exc, source, keypath, model, profile))
        return None


def _read_policy_file(
    source: SourceFile, problems: list[Diagnostic], broken: set[str]
) -> tuple[ProfileInput | None, list[_Declared], list[Waiver]]:
    data = source.data
    for key in data:
        if key not in _TOP_KEYS:
            hint = did_you_mean(key, _TOP_KEYS)
            problems.append(
                Diagnostic(source.at((key,)), "unknown-key", f"unknown top-level key '{key}'{hint}")
            )
    version = data.get("version")
    if version is None:
        problems.append(
            Diagnostic(source.at(()), "missing-key", "missing 'version = 1' at the top of the file")
        )
    elif type(version) is not int or version not in SUPPORTED_VERSIONS:
        problems.append(
            Diagnostic(
                source.at(("version",)),
                "bad-value",
                f"unsupported version {version!r} (supported: 1)",
            )
        )
    defaults = None
    if "defaults" in data:
        raw = data["defaults"]
        if isinstance(raw, dict) and "extends" in raw:
            problems.append(
                Diagnostic(
                    source.at(("defaults", "extends")),
                    "bad-value",
                    "[defaults] cannot extend a profile",
                )
            )
        else:
            defaults = _validate(ProfileInput, raw, source, ("defaults",), problems)

    profiles: list[_Declared] = []
    raw_profiles = data.get("profiles", {})
    if not isinstance(raw_profiles, dict):
        problems.append(
            Diagnostic(
                source.at(("profiles",)),
                "wrong-type",
                "profiles: expected a table of [profiles.NAME] tables",
            )
        )
        raw_profiles = {}
    for name, raw in raw_profiles.items():
        keypath: KeyPath = ("profiles", name)
        if not _valid_name(name):
            problems.append(
                Diagnostic(
                    source.at(keypath),
                    "bad-value",
                    f"profile name {name!r} must be 1-128 letters, digits, "
                    "'_', '.' or '-', starting with a letter or digit",
                )
            )
            broken.add(name)
            continue
        profile = _validate(ProfileInput, raw, source, keypath, problems, name)
        if profile is not None:
            profiles.append(_Declared(name, source, keypath, profile))
        else:
            broken.add(name)

    waivers: list[Waiver] = []
    raw_waivers = data.get("waivers", [])
    if not isinstance(raw_waivers, list):
        problems.append(
            Diagnostic(
                source.at(("waivers",)), "wrong-type", "waivers: expected [[waivers]] tables"
            )
        )
        raw_waivers = []
    for index, raw in enumerate(raw_waivers):
        keypath = ("waivers", index)
        waiver = _validate(WaiverInput, raw, source, keypath, problems)
        if waiver is not None:
            waivers.append(
                Waiver(
                    waiver.profile,
                    waiver.rule,
                    waiver.reason,
                    waiver.expires,
                    Origin(source, keypath),
                )
            )
    return defaults, profiles, waivers


def _valid_name(name: str) -> bool:
    from policy.model import _NAME_RE

    return bool(_NAME_RE.fullmatch(name))


def _resolve_chains(
    declared: dict[str, _Declared], broken: set[str], problems: list[Diagnostic]
) -> list[str]:
    """Profiles in an order where every parent comes before its children.

    Profiles on a cycle or below a missing parent are reported (at their `extends` key) and left
    out; profiles below a `broken` parent (one already reported as invalid) are left out quietly.
    Iterative, so chains thousands long cost no recursion.
    """
    done: set[str] = set()
    bad: set[str] = set()
    order: list[str] = []
    for start in declared:
        path: list[str] = []
        on_path: set[str] = set()  # `path` as a set: a long chain costs linear time
        name = start
        ok = False
        while True:
            if name in done:
                ok = True
                break
            if name in bad:
                break
            if name in on_path:
                cycle = [*path[path.index(name) :], name]
                for member in cycle[:-1]:
                    decl = declared[member]
                    problems.append(
                        Diagnostic(
                            decl.source.at((*decl.keypath, "extends")),
                            "extends-cycle",
                            "extends cycle: " + _chain_text(cycle),
                            profile=member,
                        )
                    )
                break
            path.append(name)
            on_path.add(name)
            parent = declared[name].data.extends
            if parent is None:
                ok = True
                break
            if parent in broken and parent not in declared:
                break
            if parent not in declared:
                decl = declared[name]
                hint = did_you_mean(parent, list(declared))
                problems.append(
                    Diagnostic(
                        decl.source.at((*decl.keypath, "extends")),
                        "extends-missing",
                        f"profile '{name}' extends unknown profile '{parent}'{hint}",
                        profile=name,
                    )
                )
                break
            name = parent
        if ok:
            order.extend(reversed(path))
            done.update(path)
        else:
            bad.update(path)
    return order


def _chain_text(names: list[str]) -> str:
    """A cycle for a message; long ones are shortened so 2,000 members do not print 4 million."""
    if len(names) <= 12:
        return " -> ".join(names)
    return " -> ".join(names[:6]) + f" -> ... ({len(names) - 9} more) -> " + " -> ".join(names[-3:])


def _merge(
    base: dict[str, Any],
    over: dict[str, Any],
    origin: Origin,
    prefix: KeyPath,
    origins: dict[KeyPath, Origin],
) -> dict[str, Any]:
    """`base` with `over` merged in: tables merge key by key, anything else replaces.

    Copy-on-write: `base` is left as it is (a parent shares it with all its children), and only
    the tables on the path of a change are copied, so long chains cost no deep copies.
    """
    out = dict(base)
    for key, value in over.items():
        path = (*prefix, key)
        here = Origin(origin.source, (*origin.keypath, key))
        origins[path] = here
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = _merge(base[key], value, here, path, origins)
        else:
            out[key] = value
            if isinstance(value, dict):
                # Record every key of a new table, so a later merge into it does not make the
                # keys it keeps look as if they were written by that later table.
                _merge({}, value, here, path, origins)
    return out


def _build_profile(
    name: str,
    merged: dict[str, Any],
    origins: dict[KeyPath, Origin],
    decl: _Declared,
    project: Path,
    problems: list[Diagnostic],
    cache: dict[tuple[str, str], Any],
) -> Profile | None:
    """The effective profile from its merged settings (which it must not mutate: shared)."""

    # Locations are computed only for messages: a valid profile never scans its file.
    def header() -> Location:
        return decl.source.at(decl.keypath)

    before = len(problems)

    def at(path: KeyPath) -> Location:
        # Where `path` (or the longest prefix of it that was set as a whole) was written.
        for end in range(len(path), 0, -1):
            origin = origins.get(path[:end])
            if origin is not None:
                return origin.source.at((*origin.keypath, *path[end:]))
        return header()

    if "image" not in merged:
        problems.append(
            Diagnostic(
                header(),
                "missing-key",
                f"profile '{name}' has no image (set it here, in a parent or in [defaults])",
                profile=name,
            )
        )
    for target, spec in merged.get("tmpfs", {}).items():
        if "size" not in spec:
            problems.append(
                Diagnostic(
                    at(("tmpfs", target)),
                    "missing-key",
                    f"tmpfs {target}: a size is required (for example "
                    'size = "100m"), or it may fill the host\'s memory',
                    profile=name,
                )
            )
    if "seccomp" in merged:
        origin = origins[("seccomp",)]
        key = ("seccomp", f"{origin.source.path.parent}\0{merged['seccomp']}")
        if key not in cache:
            cache[key] = _resolve_seccomp(merged["seccomp"], origin, name, problems)
        if cache[key] is None:
            return None  # the broken seccomp file was reported where it is named
        merged["seccomp"] = cache[key]
    targets: dict[str, int] = {}
    merged["mounts"] = [dict(m) for m in merged.get("mounts", [])]
    for index, mount in enumerate(merged["mounts"]):
        origin = origins[("mounts",)]
        key = ("source", mount["source"])
        if key not in cache:
            before_check = len(problems)
            cache[key] = _check_source(
                mount["source"],
                project,
                functools.partial(origin.source.at, (*origin.keypath, index, "source")),
                name,
                problems,
            )
            if len(problems) > before_check:
                del cache[key]  # report it for every profile that uses it
        mount["source"] = cache.get(key, mount["source"])
        if mount["target"] in targets or mount["target"] in merged.get("tmpfs", {}):
            problems.append(
                Diagnostic(
                    origin.source.at((*origin.keypath, index, "target")),
                    "duplicate-target",
                    f"{mount['target']} is mounted more than once",
                    profile=name,
                )
            )
        targets[mount["target"]] = index
    if len(problems) > before:
        return None
    try:
        return Profile.model_validate({"name": name, **merged})
    except ValidationError as exc:  # pragma: no cover - inputs were validated field by field
        problems.extend(diagnostics_from(exc, decl.source, decl.keypath, Profile, name))
        return None


def _resolve_seccomp(
    value: str, origin: Origin, profile: str, problems: list[Diagnostic]
) -> Seccomp | None:
    if value in ("default", "unconfined"):
        return Seccomp(mode="default" if value == "default" else "unconfined")
    where = origin.location
    if not value.endswith(".json"):
        problems.append(
            Diagnostic(
                where,
                "bad-value",
                f'seccomp: expected "default", "unconfined" or a path to a '
                f"JSON profile, got {value!r}",
                profile=profile,
            )
        )
        return None
    path = Path(value) if os.path.isabs(value) else origin.source.path.parent / value
    result = read_seccomp(path)
    if isinstance(result, str):
        problems.append(
            Diagnostic(where, "seccomp-file", f"seccomp {value}: {result}", profile=profile)
        )
        return None
    return result


def canonical_seccomp_json(document: Any) -> str | None:
    """The canonical text of a seccomp profile, or None when it is not one."""
    if not isinstance(document, dict):
        return None
    action = document.get("defaultAction")
    if action not in _SECCOMP_ACTIONS or not isinstance(document.get("syscalls", []), list):
        return None
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def seccomp_from_json(document: Any, path: str | None = None) -> Seccomp | None:
    """A custom `Seccomp` for a parsed seccomp document, or None when it is not one."""
    canonical = canonical_seccomp_json(document)
    if canonical is None:
        return None
    return Seccomp(
        mode="custom",
        path=path,
        digest="sha256:" + hashlib.sha256(canonical.encode()).hexdigest(),
        default_allow=document["defaultAction"] in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG"),
    )


def read_seccomp(path: Path) -> Seccomp | str:
    """The custom seccomp profile in `path`, or a message saying what is wrong with it."""
    read = read_seccomp_document(path)
    return read if isinstance(read, str) else read[0]


def read_seccomp_document(path: Path) -> tuple[Seccomp, Any] | str:
    """`read_seccomp`, with the parsed document it was read from (one read of the file)."""
    raw = read_regular(path, MAX_SECCOMP_BYTES)
    if isinstance(raw, tuple):
        return f"{display_path(path)}: {raw[1]}"
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return "not valid UTF-8"
    except (json.JSONDecodeError, RecursionError) as exc:
        return f"not valid JSON: {exc}"
    except ValueError:  # an integer longer than Python converts
        return "not usable JSON: a number in it is too long (more than 4300 digits)"
    seccomp = seccomp_from_json(document, str(path.resolve()))
    if seccomp is None:
        return (
            'not a seccomp profile (needs "defaultAction": one of '
            + ", ".join(sorted(_SECCOMP_ACTIONS))
            + ', and a "syscalls" array)'
        )
    return seccomp, document


def _check_source(
    source: str,
    project: Path,
    where: Callable[[], Location],
    profile: str,
    problems: list[Diagnostic],
) -> str:
    """The canonical source; relative sources must stay inside the project, symlinks included."""
    if os.path.isabs(source):
        return posixpath.normpath(source)
    normal = posixpath.normpath(source)
    if normal == ".." or normal.startswith("../"):
        problems.append(
            Diagnostic(
                where(),
                "mount-escape",
                f"mount source {source!r} leaves the project directory "
                f"{project}; use an absolute path if that is intended",
                profile=profile,
            )
        )
        return normal
    try:
        resolved = (project / normal).resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop (RuntimeError in Python 3.11)
        problems.append(
            Diagnostic(
                where(),
                "mount-escape",
                f"mount source {source!r} cannot be resolved: {exc}",
                profile=profile,
            )
        )
        return normal
    if resolved != project and project not in resolved.parents:
        problems.append(
            Diagnostic(
                where(),
                "mount-escape",
                f"mount source {source!r} resolves through a symlink to "
                f"{resolved}, outside the project directory {project}",
                profile=profile,
            )
        )
    return normal


def resolve_source(project: Path, source: str) -> Path:
    """The host path a canonical mount source names."""
    return Path(source) if os.path.isabs(source) else project / source
