"""Podman through its Docker-compatible API (`podman system service`), as 4.3 behaves.

What Podman's compatibility layer does to a create request, and what this kind does about it:

- A read-only root gets writable tmpfs mounts on /run, /tmp and /var/tmp (`--read-only-tmpfs`,
  which the compat API always turns on, exec allowed, no size). Those are writable places the
  profile did not declare, so they are never accepted: the request mounts each such path the
  profile does not declare itself as a read-only, empty tmpfs (`ro,nosuid,nodev,noexec`), which
  Podman then leaves alone. Verification and `--deep` check that nothing writable is there.
- Every container's environment gets `container=podman` and `TERM=xterm` (containers.conf): the
  request unsets them (`UnsetEnv`, Podman 4.3+) unless the image or the profile sets them; an
  engine that ignores that is caught by verification as env drift. Once started, the
  container's config also shows HOSTNAME and HOME, which Docker sets in the process too without
  showing them: read back as absent unless the profile declares them.
- Without a pids limit Podman applies its own (2048): the request says "no limit" (-1), as the
  profile does.
- Tmpfs options gain `rw`, `rprivate` and `tmpcopyup`, what Docker does without saying so, and a
  local image's name gains `localhost/` (Podman's name for an image of no registry): both read
  back as the profile spells them.
- Podman gives every container nofile and nproc limits of its own (containers.conf; 1048576 open
  files by default), whatever the request leaves out, and runc refuses them at start where they
  exceed the engine's hard limit ("error setting rlimit type 7"): a profile must declare both
  (`ulimits`), or it is refused before anything is created. Inspect names them `RLIMIT_NOFILE`;
  they read back as the profile spells them (`nofile`). Rootless, the compat API drops the
  request's ulimits altogether, so a rootless Podman is refused any profile.
- Every tmpfs is mounted `nosuid` and `nodev`, whatever the request asks (seen on 4.3 with
  `options = []`, `["noexec"]`, `["nosuid"]`): a profile whose tmpfs lacks either would not be
  what runs, so it is refused by name before anything is created, not after the create.
- A custom seccomp profile is refused: the compat API reads `seccomp=` only as a path on the
  engine's machine, not the validated JSON this tool sends, and its inspect does not show the
  filter applied, so nothing could verify it.
"""

from __future__ import annotations

from typing import Any

from engine.backends.interface import (
    ContainerInspect,
    CreateBody,
    ImageConfig,
)
from engine.backends.kinds.common import BaseKind
from engine.backends.kinds.interface import KindCheck, Refusal, Settings
from engine.backends.podman_documents import PodmanInfo
from policy import units
from policy.model import Profile

READ_ONLY_TMPFS = ("/run", "/tmp", "/var/tmp")
REQUIRED_ULIMITS = ("nofile", "nproc")
MASK = "ro,nosuid,nodev,noexec"
_MASK_OPTIONS = sorted(MASK.split(","))
ADDED_ENV = ("TERM", "container")
ADDED_TMPFS_OPTIONS = frozenset({"rw", "rprivate", "tmpcopyup"})
FORCED_TMPFS_OPTIONS = ("nodev", "nosuid")  # on every tmpfs Podman mounts
NO_PIDS_LIMIT = -1


class Podman(BaseKind):
    """Podman's Docker-compatible service; see the module docstring."""

    name = "Podman"

    def __init__(self, version: str, own: PodmanInfo) -> None:
        # Podman's compat /info never says rootless and claims every limit: its own info does.
        super().__init__(version, own.as_engine_info())
        self.own = own

    def refusals(self, profile: Profile) -> list[Refusal]:
        out = self.limit_refusals(profile)
        out.extend(self._ulimit_refusals(profile))
        out.extend(_tmpfs_refusals(profile))
        if profile.seccomp.mode == "custom":
            out.append(
                Refusal(
                    "seccomp",
                    "Podman's Docker-compatible API takes a seccomp profile only as a path on "
                    "the engine's machine, not the validated JSON this tool sends, and does not "
                    'show the filter it applied: use seccomp = "default" for Podman, or '
                    "launch this profile on Docker",
                )
            )
        return out

    def _ulimit_refusals(self, profile: Profile) -> list[Refusal]:
        if self.rootless:
            return [
                Refusal(
                    "ulimits",
                    "rootless Podman's Docker-compatible API drops a request's ulimits and "
                    "applies its own, so no profile's limits can be enforced: run Podman's "
                    "service as root, or use Docker",
                )
            ]
        missing = [name for name in REQUIRED_ULIMITS if name not in profile.ulimits]
        if not missing:
            return []
        return [
            Refusal(
                "ulimits",
                f"Podman gives every container {' and '.join(missing)} limits of its own "
                "(containers.conf; nofile 1048576 by default), which this profile does not "
                "choose and which fail at start where they exceed the engine's hard limit: "
                "declare both, for example ulimits = { nofile = 4096, nproc = 4096 }",
            )
        ]

    def request(self, body: CreateBody, image: ImageConfig | None = None) -> CreateBody:
        out = dict(body)
        host = dict(out.get("HostConfig") or {})
        if host.get("ReadonlyRootfs"):
            tmpfs = dict(host.get("Tmpfs") or {})
            taken = set(tmpfs) | {m.get("Target") for m in host.get("Mounts") or []}
            for target in READ_ONLY_TMPFS:
                if target not in taken:
                    tmpfs[target] = MASK
            host["Tmpfs"] = tmpfs
        host.setdefault("PidsLimit", NO_PIDS_LIMIT)
        out["HostConfig"] = host
        image_env = image.env if image is not None else None
        own = {e.partition("=")[0] for e in [*(out.get("Env") or []), *(image_env or [])]}
        unset = [name for name in ADDED_ENV if name not in own]
        if unset:
            out["UnsetEnv"] = unset
        return out

    def observed(
        self, settings: Settings, expected: Settings | None, inspect: ContainerInspect
    ) -> Settings:
        out = dict(settings)
        want = expected or {}
        if want.get("image") and out.get("image") == "localhost/" + str(want["image"]):
            out["image"] = want["image"]
        out["env"] = self._env(out.get("env") or {}, want.get("env") or {}, inspect)
        out["ulimits"] = {
            name.removeprefix("RLIMIT_").lower(): limits
            for name, limits in sorted((out.get("ulimits") or {}).items())
        }
        declared: dict[str, Any] = want.get("tmpfs") or {}
        tmpfs = {}
        for target, spec in (out.get("tmpfs") or {}).items():
            own = set((declared.get(target) or {}).get("options") or [])
            found = spec.get("options") or []
            # `rw` beside `ro` is a contradiction to show, not Podman's default to hide.
            options = [
                o
                for o in found
                if o in own or o not in ADDED_TMPFS_OPTIONS or (o == "rw" and "ro" in found)
            ]
            spec = {**spec, "options": sorted(options)}
            if self._mask(target, spec, declared, out):
                continue
            tmpfs[target] = spec
        out["tmpfs"] = tmpfs
        return out

    @staticmethod
    def _env(
        env: dict[str, str], declared: dict[str, str], inspect: ContainerInspect
    ) -> dict[str, str]:
        """Without what Podman writes into a started container's config: HOSTNAME (the
        container's host name) and HOME (the user's, from the image's /etc/passwd), which
        Docker gives the process too without showing them. Declared, they are compared."""
        out = dict(env)
        if "HOSTNAME" not in declared and out.get("HOSTNAME") == inspect.config.hostname:
            del out["HOSTNAME"]
        if "HOME" not in declared:
            out.pop("HOME", None)
        return out

    @staticmethod
    def _mask(target: str, spec: dict[str, Any], declared: dict[str, Any], out: Settings) -> bool:
        """Whether `spec` is the read-only mask `request` put where Podman would add a writable
        tmpfs: exactly those options, no size, on a read-only root, at a path not declared."""
        return (
            bool(out.get("read_only"))
            and target in READ_ONLY_TMPFS
            and target not in declared
            and spec.get("size") is None
            and spec.get("mode") is None
            and spec.get("options") == _MASK_OPTIONS
        )

    def captured(self, inspect: ContainerInspect) -> ContainerInspect:
        """Without the masks and options this kind adds, `localhost/`, HOSTNAME and HOME, and
        with the ulimits named as a profile names them. Podman's own writable tmpfs (a container
        not launched through a profile) stays: it is what the container has."""
        host, config = inspect.host_config, inspect.config
        tmpfs = {}
        for target, options in (host.tmpfs or {}).items():
            parts = [o for o in options.split(",") if o and o not in ADDED_TMPFS_OPTIONS - {"rw"}]
            if (
                host.readonly_rootfs
                and target in READ_ONLY_TMPFS
                and sorted(parts) == _MASK_OPTIONS
            ):
                continue
            tmpfs[target] = ",".join(o for o in parts if o != "rw" or "ro" in parts)
        env = [
            e
            for e in config.env or []
            if e != f"HOSTNAME={config.hostname}" and not e.startswith("HOME=")
        ]
        ulimits = [
            u.model_copy(update={"name": u.name.removeprefix("RLIMIT_").lower()})
            for u in host.ulimits or []
        ]
        cap_drop = host.cap_drop
        # Podman lists each default capability it dropped where Docker says ALL.
        if (
            cap_drop
            and {units.parse_capability(c) for c in cap_drop} >= units.ENGINE_DEFAULT_CAPABILITIES
        ):
            cap_drop = ["ALL"]
        image = config.image
        if image and image.startswith("localhost/"):
            image = image.removeprefix("localhost/")
        return inspect.model_copy(
            update={
                "host_config": host.model_copy(
                    update={"tmpfs": tmpfs, "ulimits": ulimits, "cap_drop": cap_drop}
                ),
                "config": config.model_copy(update={"env": env, "image": image}),
            }
        )

    def kernel(self, expected: Settings, kernel: dict[str, Any]) -> list[tuple[str, Any, Any]]:
        """Where Podman adds a writable tmpfs to a read-only root, the kernel must show none, or
        the read-only mask `request` put there, unless the profile declares that path."""
        if not expected.get("read_only") or "tmpfs_read_only" not in kernel:
            return []
        declared = set(expected.get("tmpfs") or {})
        return [
            (f"tmpfs {target}", "absent or read-only (the root is read-only)", "writable")
            for target in READ_ONLY_TMPFS
            if target not in declared and kernel["tmpfs_read_only"].get(target) is False
        ]

    def checks(self) -> list[KindCheck]:
        return [
            *super().checks(),
            KindCheck(
                "podman additions",
                True,
                "read-only roots get /run, /tmp, /var/tmp masked read-only instead of Podman's "
                "writable tmpfs; container=podman and TERM unset; no default pids limit; "
                "profiles must declare nofile and nproc ulimits; custom seccomp profiles are "
                "refused",
            ),
        ]


def _tmpfs_refusals(profile: Profile) -> list[Refusal]:
    lacking = {
        target: [o for o in FORCED_TMPFS_OPTIONS if o not in spec.options]
        for target, spec in sorted(profile.tmpfs.items())
    }
    named = [f"{target} lacks {', '.join(m)}" for target, m in lacking.items() if m]
    if not named:
        return []
    return [
        Refusal(
            "tmpfs",
            "Podman mounts every tmpfs nosuid and nodev, whatever the request asks, so the "
            f"container would not have the profile's tmpfs ({'; '.join(named)}): add both to "
            "its options for Podman, or launch this profile on Docker",
        )
    ]
