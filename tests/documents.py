"""Engine documents recorded from a real engine (tests/data/inspect), as the typed documents the
backends return, fed to the real functions: so unit tests read like the JSON they were recorded
as, and exercise the same parsing a live engine's answers go through."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.audit import as_profile, observe
from engine.backends.interface import ContainerInspect, ImageConfig
from engine.render.interface import render
from engine.render.settings import ExpectedSettings, Settings
from engine.render.walk import walk
from policy.loader import Policy, load_policy
from policy.model import Profile

DATA = Path(__file__).resolve().parent / "data"
INSPECT = DATA / "inspect"
# The policy the documents were recorded under, and the project directory it was used with.
RECORDED_POLICY = DATA / "policies-recorded"
RECORDED_PROJECT = Path("/work/main")


def recorded(name: str) -> dict[str, Any]:
    """The recorded document `tests/data/inspect/NAME.json`, as the engine gave it."""
    doc: dict[str, Any] = json.loads((INSPECT / f"{name}.json").read_text())
    return doc


def recorded_policy() -> Policy:
    return load_policy([RECORDED_POLICY], RECORDED_PROJECT)


def inspect_doc(document: dict[str, Any] | ContainerInspect) -> ContainerInspect:
    if isinstance(document, ContainerInspect):
        return document
    return ContainerInspect.model_validate(document)


def image_config(config: dict[str, Any] | ImageConfig | None) -> ImageConfig:
    if isinstance(config, ImageConfig):
        return config
    return ImageConfig.model_validate(config or {})


def observed_settings(document: dict[str, Any], image: dict[str, Any] | None) -> Settings:
    return observe.observed_settings(inspect_doc(document), image_config(image))


def expected_settings(
    profile: Profile, project: Path, image: dict[str, Any] | None, override: str | None = None
) -> Settings:
    walked = walk(profile, project, image=override)
    return render(ExpectedSettings(image_config(image)), walked).value


def capture_toml(
    document: dict[str, Any],
    image: dict[str, Any],
    name: str | None = None,
    seccomp_file: str | None = None,
) -> str:
    return as_profile.capture_toml(inspect_doc(document), image_config(image), name, seccomp_file)


def profile_from_inspect(
    document: dict[str, Any], image: dict[str, Any], name: str | None = None
) -> Profile:
    return as_profile.profile_from_inspect(inspect_doc(document), image_config(image), name)
