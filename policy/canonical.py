"""The canonical form of a profile: one JSON-ready document, and the digest derived from it.

The digest is what launched containers carry as a label, so it must not change when a file is
reformatted, split, reordered or written with equivalent spellings (`1g` and `1024m`); it must
change whenever a setting that reaches the engine (or the launcher) changes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from policy.model import Profile
from policy.runtime_keys import RUNTIME_FIELDS, format_ulimit

# Presentation only: renaming or re-describing a profile does not change how it runs. `monitor`
# never reaches the engine either: it says how the launcher samples and judges the run, and a
# container launched under other thresholds runs exactly the same.
_NOT_DIGESTED = frozenset({"name", "description", "monitor"})
_DIGESTED_WHEN_SET = ("swarm_network",)


def canonical_document(profile: Profile) -> dict[str, Any]:
    """Every setting of `profile` in canonical units, plus derived `uid`, `gid`, `capabilities`.

    This is the document guardrails are written against (see docs/guardrails.md).
    """
    doc = profile.model_dump(mode="json", exclude={"seccomp"})
    doc["seccomp"] = profile.seccomp.canonical
    if doc.get("kubernetes") is None:
        doc.pop("kubernetes", None)  # profiles without the table keep the digest they had
    else:  # only what is declared: TOML (`policy show`) has no null
        doc["kubernetes"] = {k: v for k, v in doc["kubernetes"].items() if v is not None}
    doc["uid"] = profile.uid
    doc["gid"] = profile.gid
    doc["capabilities"] = sorted(profile.capabilities)
    doc["cap_add"] = list(profile.cap_add)
    doc["cap_drop"] = list(profile.cap_drop)
    for mount in doc["mounts"]:
        if mount.get("propagation") is None:
            del mount["propagation"]  # unset (rprivate): digests as before the key existed
    for spec in doc["tmpfs"].values():
        if spec.get("mode") is not None:
            spec["mode"] = f"{spec['mode']:o}"  # octal, as written
    doc["ulimits"] = {
        name: {"soft": format_ulimit(u.soft), "hard": format_ulimit(u.hard)}
        for name, u in sorted(profile.ulimits.items())
    }
    # The runtime keys last, after the settings a reader looks for first.
    return {k: v for k, v in doc.items() if k not in RUNTIME_FIELDS} | {
        k: doc[k] for k in RUNTIME_FIELDS
    }


def digest(profile: Profile) -> str:
    """`sha256:...` over the canonical settings (key order and spelling independent)."""
    doc = {
        k: v
        for k, v in canonical_document(profile).items()
        if k not in _NOT_DIGESTED and not (k in RUNTIME_FIELDS and _at_default(profile, k))
    }
    # Keys added after digests were first handed out are digested only when set, so a profile
    # that does not use them keeps the digest its running containers carry.
    for key in _DIGESTED_WHEN_SET:
        if doc.get(key) is None:
            doc.pop(key, None)
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _at_default(profile: Profile, name: str) -> bool:
    # A runtime key of issue 12 left at its default is not digested, so a profile that does not
    # use them kept its digest (and containers launched before them are not stale).
    return bool(getattr(profile, name) == Profile.model_fields[name].get_default())


# Guardrail and rule findings on a derived field are located where its source key is written.
SOURCE_KEY = {"uid": "user", "gid": "user", "capabilities": "cap_add"}
