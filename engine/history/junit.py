"""The test cases of the JUnit XML a launch's tests left in its writable mounts.

The files are written by the tests inside the container, so they are hostile input read by the
host: nothing is followed (no symbolic links, no special files, no directories below
`MAX_DEPTH`), every file is capped (`MAX_FILE_BYTES`) and the number of files and cases too, and
the XML is parsed by expat (the parser under `xml.etree`) with every DTD refused: no internal or
external entity can be declared, so none can expand ("billion laughs") or be fetched. A file
that breaks a rule is skipped with the reason, never fatal.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_FILES = 200
MAX_CASES = 50_000  # per launch
MAX_DEPTH = 4  # directories below a results mount searched for *.xml
MAX_TEXT = 1_000  # characters kept of a name or class
SLACK = 2.0  # seconds: file times are coarser than the launch's clock on some filesystems

OUTCOMES = ("passed", "failed", "error", "skipped")
_RANK = {"skipped": 1, "failure": 2, "error": 3}  # a case with several children: the worst


@dataclass(frozen=True)
class JUnitCase:
    """One `<testcase>`: its name, class, time in seconds and outcome (one of `OUTCOMES`)."""

    name: str
    classname: str | None
    time: float | None
    outcome: str
    file: str  # the XML file it came from, relative to its results mount


class Refused(Exception):
    """The file breaks a rule of this module (the reason is the message)."""


def collect(
    directories: Iterable[str | Path], since: float | None = None
) -> tuple[list[JUnitCase], list[str]]:
    """The test cases of every `*.xml` under `directories` modified at or after `since` (a Unix
    time), and a problem for each file skipped (not JUnit, too large, a DTD, ...)."""
    cases: list[JUnitCase] = []
    problems: list[str] = []
    files = 0
    for directory in directories:
        root = Path(directory)
        for path in _xml_files(root, None if since is None else since - SLACK):
            files += 1
            if files > MAX_FILES:
                problems.append(f"{root}: more than {MAX_FILES} XML files; the rest are not read")
                return cases, problems
            try:
                found = parse(read_capped(path), str(path.relative_to(root)))
            except Refused as exc:
                problems.append(f"{path}: {exc}")
                continue
            room = MAX_CASES - len(cases)
            if len(found) > room:
                problems.append(f"{path}: more than {MAX_CASES} test cases; the rest are dropped")
                cases.extend(found[:room])
                return cases, problems
            cases.extend(found)
    return cases, problems


def _xml_files(root: Path, since: float | None) -> list[Path]:
    found: list[Path] = []
    if not root.is_dir() or root.is_symlink():
        return found
    for top, dirs, names in os.walk(root, followlinks=False):
        depth = len(Path(top).relative_to(root).parts)
        if depth >= MAX_DEPTH:
            dirs[:] = []
        dirs.sort()
        for name in sorted(names):
            if not name.lower().endswith(".xml"):
                continue
            path = Path(top) / name
            try:
                info = path.lstat()
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and (since is None or info.st_mtime >= since):
                found.append(path)
    return found


def read_capped(path: Path, cap: int | None = None) -> bytes:
    """The bytes of a regular file, refusing a link, a special file or more than `cap` bytes
    (default `MAX_FILE_BYTES`)."""
    cap = MAX_FILE_BYTES if cap is None else cap
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise Refused(f"cannot open it: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Refused("not a regular file")
        if info.st_size > cap:
            raise Refused(f"{info.st_size} bytes, more than the {cap} read")
        data = handle.read(cap + 1)
    if len(data) > cap:  # grew while being read
        raise Refused(f"more than the {cap} bytes read")
    return data


def parse(data: bytes, file: str = "") -> list[JUnitCase]:
    """The `<testcase>` elements of a JUnit XML document (any nesting of `<testsuites>` and
    `<testsuite>`). Raises `Refused` for a DTD or entity declaration or malformed XML."""
    from xml.parsers import expat

    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse_dtd(*_: object) -> None:
        raise Refused("has a DTD (<!DOCTYPE>); refused, as entities could expand or be fetched")

    def refuse_entity(*_: object) -> None:
        raise Refused("declares an entity; refused")

    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_entity
    parser.UnparsedEntityDeclHandler = refuse_entity

    def refuse_external(*_: object) -> int:
        raise Refused("references an external entity; refused")

    parser.ExternalEntityRefHandler = refuse_external

    cases: list[JUnitCase] = []
    current: dict[str, str] | None = None
    worst = 0

    def start(tag: str, attributes: dict[str, str]) -> None:
        nonlocal current, worst
        if tag == "testcase" and current is None:
            current, worst = attributes, 0
        elif current is not None and tag in _RANK:
            worst = max(worst, _RANK[tag])

    def end(tag: str) -> None:
        nonlocal current
        if tag == "testcase" and current is not None:
            cases.append(_case(current, worst, file))
            current = None
            if len(cases) > MAX_CASES:
                raise Refused(f"more than {MAX_CASES} test cases")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise Refused(f"not well-formed XML: {exc}") from None
    return cases


def _case(attributes: dict[str, str], worst: int, file: str) -> JUnitCase:
    outcome = {0: "passed", 1: "skipped", 2: "failed", 3: "error"}[worst]
    try:
        seconds: float | None = float(attributes.get("time", ""))
    except ValueError:
        seconds = None
    if seconds is not None and not 0 <= seconds < 1e9:
        seconds = None  # nan, inf, negative: not a time
    classname = attributes.get("classname")
    return JUnitCase(
        name=attributes.get("name", "")[:MAX_TEXT],
        classname=None if classname is None else classname[:MAX_TEXT],
        time=seconds,
        outcome=outcome,
        file=file[:MAX_TEXT],
    )
