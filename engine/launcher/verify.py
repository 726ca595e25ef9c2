"""Create a container and verify it before it starts; remove containers reliably.

Verification is the audit's comparison (`engine.audit.drift.diff`) of what the engine created with
what the profile renders to (`engine.render.settings`): any difference and the container is
removed without ever starting. The container is named after the launch id before it exists, so
even a create whose reply was lost can be found and removed.
"""

from __future__ import annotations

import time

from engine.audit.drift import Drift, diff
from engine.audit.observe import observed_settings
from engine.backends.interface import ContainerInspect, Engine, ImageInspect
from engine.launcher.mounts import prepare_mounts
from engine.launcher.spec import LaunchSpec, UnenforceableError, VerificationError
from engine.logs import logger
from engine.render.interface import Unexpressible, render
from engine.render.request import EngineRequest
from engine.render.settings import ExpectedSettings
from policy.errors import EngineError

REMOVE_PATIENCE = 20.0  # seconds to keep trying when the engine is briefly unreachable


def verify(
    engine: Engine, spec: LaunchSpec, container: str, image: ImageInspect | None = None
) -> ContainerInspect:
    """Inspect what the engine created and compare it with the profile; the inspect if equal."""
    inspect = engine.inspect_container(container)
    if image is None or image.id != inspect.image:
        image = engine.inspect_image(inspect.image)
    expected = render(ExpectedSettings(image.config), spec.walked).value
    observed = engine.kind().observed(observed_settings(inspect, image.config), expected, inspect)
    drifts = diff(expected, observed) + tmpfs_modes(engine, spec, container)
    if drifts:
        raise VerificationError(spec.profile.name, drifts)
    return inspect


def tmpfs_modes(engine: Engine, spec: LaunchSpec, container: str) -> list[Drift]:
    """A tmpfs whose target the image already has gets that directory's mode from the engine,
    not the profile's (Docker copies it up; `notmpcopyup` is refused): read the image's mode
    before start and refuse the launch when it is not the profile's."""
    drifts = []
    for target, tmpfs in sorted(spec.profile.tmpfs.items()):
        if tmpfs.mode is None:
            continue
        found = engine.path_mode(container, target)
        if found is not None and found != tmpfs.mode:
            drifts.append(
                Drift(
                    f"tmpfs.{target}.mode",
                    f"{tmpfs.mode:o}",
                    f"{found:o} (the image's {target}: the engine gives the tmpfs that mode)",
                )
            )
    return drifts


def refuse_unenforceable(engine: Engine, spec: LaunchSpec) -> None:
    """Before anything exists: refuse a profile with a field this engine cannot enforce."""
    kind = engine.kind()
    refusals = kind.refusals(spec.profile)
    if refusals:
        raise UnenforceableError(spec.profile.name, f"{kind.describe()} at {engine.name}", refusals)


# Profile field -> the engine security option that must be enabled for it to mean anything: an
# engine without AppArmor accepts `apparmor=PROFILE` and ignores it, so it is refused by name.
NEEDS_SECURITY = {"apparmor": "apparmor", "selinux": "selinux"}


def refuse_unsupported(engine: Engine, spec: LaunchSpec) -> None:
    """`Unexpressible` when the profile declares AppArmor or SELinux options that the engine
    (its info's `SecurityOptions`) cannot apply."""
    needed = {f: n for f, n in NEEDS_SECURITY.items() if getattr(spec.profile, f)}
    if not needed:
        return
    options = engine.info().security_options or []
    # `name=seccomp,profile=default` (API >= 1.26) or a bare `seccomp` (older engines).
    enabled = {opt.split(",")[0].removeprefix("name=") for opt in options}
    refused = [
        (field, f"this engine does not support {name} (its SecurityOptions: "
         f"{', '.join(options) or 'none'}), so the profile's {field} would not apply")
        for field, name in needed.items()
        if name not in enabled
    ]  # fmt: skip
    if refused:
        raise Unexpressible("a container of this engine", spec.profile.name, refused)


def create_verified(engine: Engine, spec: LaunchSpec, tty: bool = False) -> str:
    """Create the container and verify it; on any failure it is removed and nothing started."""
    refuse_unenforceable(engine, spec)
    image = engine.inspect_image(spec.walked.image)  # a clear error first
    refuse_unsupported(engine, spec)
    prepare_mounts(spec.profile, spec.project)
    body = engine.kind().request(render(EngineRequest(tty), spec.walked).value, image.config)
    try:
        container = engine.create(body, spec.name)
        verify(engine, spec, container, image)
    except BaseException:
        # By name: the id is unknown if the create call itself was interrupted.
        remove_reliably(engine, spec.name)
        raise
    return container


def remove_reliably(engine: Engine, container: str) -> bool:
    """Remove `container`, retrying while the engine is unreachable (a restart); on giving up,
    say so loudly with what to run, rather than leave it behind in silence."""
    deadline = time.monotonic() + REMOVE_PATIENCE
    delay = 0.2
    while True:
        try:
            engine.remove(container)
            return True
        except EngineError as exc:
            if time.monotonic() + delay > deadline:
                logger.error(
                    f"could not remove container {container[:12]} ({exc.message}); "
                    "it is left behind: remove it with `policy clean` once the engine "
                    "answers"
                )
                return False
            time.sleep(delay)  # back-off between attempts while the engine restarts
            delay = min(delay * 2, 2.0)
