"""Custom seccomp profiles: reading the JSON file a profile names, and its canonical digest.

The digest is of the canonical text (sorted keys, no spaces), so reformatting the file does not
change it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from policy import observed
from policy.diagnostics import Diagnostic
from policy.model import Seccomp
from policy.origin import Origin
from policy.source import display_path, read_regular

MAX_SECCOMP_BYTES = 4 * 1024 * 1024
_SECCOMP_ACTIONS = frozenset(
    {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
     "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_LOG"}
)  # fmt: skip


def resolve_seccomp(
    value: str, origin: Origin, profile: str, problems: list[Diagnostic]
) -> Seccomp | None:
    """The `Seccomp` that a profile's `seccomp = value` means, or None with the reason reported.

    A relative path resolves against the directory of the file that wrote it (`origin`).
    """
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
    observed.path_resolved(path)
    seccomp = seccomp_from_json(document, str(path.resolve()))
    if seccomp is None:
        return (
            'not a seccomp profile (needs "defaultAction": one of '
            + ", ".join(sorted(_SECCOMP_ACTIONS))
            + ', and a "syscalls" array)'
        )
    return seccomp, document
