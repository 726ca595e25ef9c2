"""Engine kinds on documents recorded from the real engines (tests/data/inspect): which engine it
is, what Podman's compat API adds and how each addition is treated, what is refused by name."""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path
from typing import Any, cast

import pytest

from engine.audit import as_profile
from engine.audit.drift import diff
from engine.backends.interface import Engine, EngineInfo, EngineVersion
from engine.backends.kinds import detect
from engine.backends.kinds.podman import MASK, Podman
from engine.backends.kinds.podman_info_cache import _key, cached_podman_info
from engine.backends.podman_documents import PodmanInfo
from policy.cache import default_directory
from policy.loader import Policy
from policy.model import Profile, Tmpfs
from policy.runtime_keys import Ulimit
from tests.documents import (
    RECORDED_PROJECT,
    expected_settings,
    image_config,
    inspect_doc,
    observed_settings,
    recorded,
)

IMAGE = recorded("image-simple-test-isolation")["Config"]


class Recorded:
    """The answers `detect` reads, as the engine gave them (tests/data/inspect), changed only
    where a test says so."""

    name = "recorded"  # not a socket: nothing cached

    def __init__(self, engine: str, **changes: Any) -> None:
        self.engine = engine
        self.changes = changes

    def ping(self) -> dict[str, str]:
        headers: dict[str, str] = recorded(f"{self.engine}-ping")
        return headers

    def version(self) -> EngineVersion:
        return EngineVersion.model_validate(recorded(f"{self.engine}-version"))

    def info(self) -> EngineInfo:
        return EngineInfo.model_validate({**recorded(f"{self.engine}-info"), **self.changes})

    def podman_info(self) -> PodmanInfo:
        document = recorded("podman-libpod-info")
        document["host"].update(self.changes)
        return PodmanInfo.model_validate(document)


def kind_of(engine: str, **changes: Any) -> Any:
    return detect(cast(Engine, Recorded(engine, **changes)))


def podman() -> Podman:
    kind = kind_of("podman")
    assert isinstance(kind, Podman)
    return kind


def test_the_kind_is_read_from_the_engines_own_version_document() -> None:
    assert (kind_of("docker").name, kind_of("docker").version) == ("Docker", "20.10.24+dfsg1")
    # Podman says API 1.41 and Version 4.3.1 at the top; its component names it.
    assert (kind_of("podman").name, kind_of("podman").version) == ("Podman", "4.3.1")
    assert kind_of("podman").describe() == "Podman 4.3.1 (rootful, cgroup v1)"


def test_only_podmans_own_ping_header_makes_it_podman() -> None:
    # Both answer the same API version and say "Docker-Experimental"; Libpod-Api-Version is
    # Podman's own.
    assert "Libpod-Api-Version" in recorded("podman-ping")
    assert "Libpod-Api-Version" not in recorded("docker-ping")
    assert recorded("podman-ping")["Api-Version"] == recorded("docker-ping")["Api-Version"]


# The ulimits the recorded Podman containers got (the service's defaults when they were recorded,
# before the policy had the key): what a profile declaring them expects.
RECORDED_ULIMITS = {"nofile": {"soft": 8192, "hard": 8192}, "nproc": {"soft": 4096, "hard": 4096}}


def launched(policy: Policy, name: str = "podman-isolation-launched") -> tuple[Any, Any, Any]:
    document = recorded(name)
    expected = expected_settings(policy.profiles["isolation"], RECORDED_PROJECT, IMAGE)
    expected["ulimits"] = RECORDED_ULIMITS
    return document, expected, observed_settings(document, IMAGE)


def test_a_launched_podman_container_reads_back_as_its_profile(policy: Policy) -> None:
    document, expected, observed = launched(policy)
    # As Podman shows it: its image name, its tmpfs options, the masks, HOSTNAME and HOME.
    assert observed["image"] == "localhost/simple-test-isolation:latest"
    assert set(observed["tmpfs"]) == {"/run", "/tmp", "/var/tmp"}
    assert set(observed["env"]) == {"HOME", "HOSTNAME"}
    assert set(observed["ulimits"]) == {"RLIMIT_NOFILE", "RLIMIT_NPROC"}
    assert diff(expected, podman().observed(observed, expected, inspect_doc(document))) == []


def test_the_same_document_is_drift_for_docker(policy: Policy) -> None:
    document, expected, observed = launched(policy)
    fields = {
        d.field
        for d in diff(
            expected, kind_of("docker").observed(observed, expected, inspect_doc(document))
        )
    }
    assert fields == {"image", "tmpfs", "env", "ulimits"}


def test_podmans_writable_tmpfs_and_env_are_never_accepted(policy: Policy) -> None:
    # Created from the plain request (no masks, nothing unset): what Podman adds by itself.
    document, expected, observed = launched(policy, "podman-isolation-unmasked")
    drifts = {
        d.field: d
        for d in diff(expected, podman().observed(observed, expected, inspect_doc(document)))
    }
    assert set(drifts) == {"tmpfs", "env"}
    assert set(drifts["tmpfs"].actual) == {"/run", "/tmp", "/var/tmp"}
    assert drifts["tmpfs"].actual["/run"]["options"] == ["nodev", "nosuid"]  # exec allowed
    assert drifts["env"].actual == {"TERM": "xterm", "container": "podman"}


def test_a_writable_tmpfs_at_a_declared_path_is_still_compared(policy: Policy) -> None:
    document, expected, observed = launched(policy)
    changed = {
        **observed,
        "tmpfs": {**observed["tmpfs"], "/tmp": {**observed["tmpfs"]["/tmp"], "size": None}},
    }
    drifts = diff(expected, podman().observed(changed, expected, inspect_doc(document)))
    assert [d.field for d in drifts] == ["tmpfs"]


def test_a_declared_hostname_or_home_is_compared(policy: Policy) -> None:
    document, expected, observed = launched(policy)
    declared = {**expected, "env": {"HOME": "/elsewhere"}}
    drifts = diff(declared, podman().observed(observed, declared, inspect_doc(document)))
    assert [(d.field, d.actual) for d in drifts] == [("env", {"HOME": "/home/testuser"})]


def test_the_request_masks_unsets_and_lifts_the_pids_default() -> None:
    body = {
        "Image": "x",
        "Env": ["TERM=dumb"],
        "HostConfig": {"ReadonlyRootfs": True, "Tmpfs": {"/tmp": "size=1m"}},
    }
    out = podman().request(body, image_config({"Env": ["PATH=/bin"]}))
    assert out["HostConfig"]["Tmpfs"] == {"/tmp": "size=1m", "/run": MASK, "/var/tmp": MASK}
    assert out["HostConfig"]["PidsLimit"] == -1
    assert out["UnsetEnv"] == ["container"]  # TERM is the profile's own
    assert body["HostConfig"] == {"ReadonlyRootfs": True, "Tmpfs": {"/tmp": "size=1m"}}


def test_a_writable_root_gets_no_masks_and_a_set_pids_limit_stays() -> None:
    out = podman().request({"Image": "x", "HostConfig": {"PidsLimit": 64}}, None)
    assert "Tmpfs" not in out["HostConfig"]
    assert out["HostConfig"]["PidsLimit"] == 64
    assert out["UnsetEnv"] == ["TERM", "container"]


def test_a_bind_mount_at_a_podman_path_is_not_masked() -> None:
    body = {"HostConfig": {"ReadonlyRootfs": True, "Mounts": [{"Target": "/run"}]}}
    assert set(podman().request(body)["HostConfig"]["Tmpfs"]) == {"/tmp", "/var/tmp"}


def with_ulimits(profile: Profile, **limits: int) -> Profile:
    return profile.model_copy(
        update={"ulimits": {n: Ulimit(soft=v, hard=v) for n, v in limits.items()}}
    )


def test_a_custom_seccomp_profile_is_refused_by_name_on_podman_only(policy: Policy) -> None:
    jit = with_ulimits(policy.profiles["jit"], nofile=1024, nproc=1024)
    assert [r.field for r in podman().refusals(jit)] == ["seccomp"]
    assert kind_of("docker").refusals(jit) == []
    isolation = with_ulimits(policy.profiles["isolation"], nofile=1024, nproc=1024)
    assert podman().refusals(isolation) == []


@pytest.mark.parametrize(
    ("limits", "missing"),
    [({}, "nofile and nproc"), ({"nofile": 64}, "nproc"), ({"nproc": 64}, "nofile")],
)
def test_podman_refuses_a_profile_without_nofile_and_nproc(
    policy: Policy, limits: dict[str, int], missing: str
) -> None:
    profile = with_ulimits(policy.profiles["isolation"], **limits)
    refused = podman().refusals(profile)
    assert [r.field for r in refused] == ["ulimits"]
    assert f"Podman gives every container {missing} limits of its own" in refused[0].why
    assert kind_of("docker").refusals(profile) == []


@pytest.mark.parametrize(
    ("options", "lacks"),
    [((), "nodev, nosuid"), (("noexec",), "nodev, nosuid"), (("nosuid",), "nodev")],
)
def test_podman_refuses_a_tmpfs_without_the_options_it_forces(
    policy: Policy, options: tuple[str, ...], lacks: str
) -> None:
    isolation = with_ulimits(policy.profiles["isolation"], nofile=1024, nproc=1024)
    scratch = Tmpfs(size=1 << 20, mode=0o700, options=options)
    profile = isolation.model_copy(update={"tmpfs": {**isolation.tmpfs, "/scratch": scratch}})
    refused = podman().refusals(profile)
    assert [r.field for r in refused] == ["tmpfs"]
    assert f"/scratch lacks {lacks}" in refused[0].why and "/tmp" not in refused[0].why
    assert kind_of("docker").refusals(profile) == []


def test_rootless_podman_refuses_ulimits_it_would_drop(policy: Policy) -> None:
    # As the live rootless service's own info says: rootless, no controllers delegated.
    kind = kind_of("podman", security={"rootless": True}, cgroupControllers=[])
    profile = with_ulimits(policy.profiles["parallel"], nofile=64, nproc=64)
    why = {r.field: r.why for r in kind.refusals(profile)}
    assert "drops a request's ulimits" in why["ulimits"]


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_rootless_on_cgroup_v1_refuses_every_limit(policy: Policy, engine: str) -> None:
    if engine == "podman":
        kind = kind_of("podman", security={"rootless": True}, cgroupControllers=[])
    else:
        options = [*recorded("docker-info")["SecurityOptions"], "name=rootless"]
        kind = kind_of("docker", SecurityOptions=options)
    refused = kind.refusals(policy.profiles["isolation"])
    expected = ["memory", "cpus", "pids_limit"] + (["ulimits"] if engine == "podman" else [])
    assert [r.field for r in refused] == expected
    assert "cgroup v1" in refused[0].why
    assert not kind.checks()[0].ok


def test_a_limit_the_engine_says_it_cannot_apply_is_refused(policy: Policy) -> None:
    kind = kind_of("docker", MemoryLimit=False)
    assert [r.field for r in kind.refusals(policy.profiles["isolation"])] == ["memory"]
    # Podman: a controller it does not list is a limit it cannot apply.
    limited = with_ulimits(policy.profiles["isolation"], nofile=64, nproc=64)
    controllers = ["cpuset", "cpu", "cpuacct", "memory"]
    refused = kind_of("podman", cgroupControllers=controllers).refusals(limited)
    assert [r.field for r in refused] == ["pids_limit"]


def test_deep_flags_a_writable_podman_tmpfs_the_profile_did_not_declare(policy: Policy) -> None:
    _, expected, _ = launched(policy)
    masked = {"tmpfs_read_only": {"/tmp": False, "/run": True, "/var/tmp": True, "/dev": False}}
    assert podman().kernel(expected, masked) == []
    writable = {"tmpfs_read_only": {"/tmp": False, "/run": False, "/dev/shm": False}}
    assert [f for f, _, _ in podman().kernel(expected, writable)] == ["tmpfs /run"]


def test_podmans_info_is_asked_once_per_running_service(tmp_path: Path) -> None:
    asked: list[int] = []

    def ask() -> PodmanInfo:
        asked.append(1)
        return PodmanInfo.model_validate(recorded("podman-libpod-info"))

    path = tmp_path / "podman.sock"
    url = f"unix://{path}"
    for _restart in range(2):  # a service that restarts binds a new socket: asked again
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
        try:
            first = cached_podman_info(url, ask)
            assert cached_podman_info(url, ask) == first
            assert first.host.cgroup_controllers and "memory" in first.host.cgroup_controllers
        finally:
            listener.close()
            path.unlink()
    assert len(asked) == 2


def test_a_cached_podman_info_anyone_else_could_write_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "podman.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    try:
        info = PodmanInfo.model_validate(recorded("podman-libpod-info"))
        cached_podman_info(f"unix://{path}", lambda: info)
        (stored,) = (default_directory() / "engines").glob(f"podman-{_key(f'unix://{path}')}.json")
        stored.chmod(0o666)  # what a forger would need to plant "rootful" for a rootless engine
        rootless = info.model_copy(
            update={"host": info.host.model_copy(update={"cgroup_controllers": []})}
        )
        assert cached_podman_info(f"unix://{path}", lambda: rootless) == rootless
    finally:
        listener.close()


def test_capture_of_a_podman_container_writes_what_a_profile_declares() -> None:
    captured = podman().captured(inspect_doc(recorded("podman-isolation-launched")))
    text = as_profile.capture_toml(captured, image_config(IMAGE), "again")
    profile = tomllib.loads(text)["profiles"]["again"]
    assert profile["image"] == "simple-test-isolation:latest"
    assert profile["cap_drop"] == ["ALL"]
    assert set(profile["tmpfs"]) == {"/tmp"}  # the masks were this tool's, not the profile's
    assert profile["tmpfs"]["/tmp"]["options"] == ["nodev", "noexec", "nosuid"]
    assert profile["ulimits"] == {"nofile": 8192, "nproc": 4096}
    assert "env" not in profile  # HOSTNAME and HOME are Podman's, not the profile's
