"""Several files and `extends` merge as docker-compose merges them: the settings `policy check`
reads from the files are the settings it reads from `docker-compose config`'s own merge of them
(docker-compose 1.x, the 2.x file format)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from engine.compose.project import load
from engine.compose.service import read_service
from tests.helpers import unavailable

BASE = """version: "2.4"
x-common: &common
  user: "1001:1001"
  cap_drop: [ALL]
services:
  base:
    <<: *common
    image: busybox:latest
    cap_add: [CHOWN]
    environment: [A=1, B=2]
    labels: {team: a}
    volumes: ["./src:/src:ro", "./out:/out"]
    tmpfs: [/tmp:size=10m]
    security_opt: [no-new-privileges:true]
    healthcheck: {test: ["CMD", "true"], interval: 5s, retries: 2}
  app:
    extends: base
    environment: {B: "3", C: "${C_VALUE:-4}"}
    mem_limit: 1g
    cpus: 1.5
"""
OVERRIDE = """version: "2.4"
services:
  app:
    cap_add: [FOWNER]
    labels: {tier: "1"}
    volumes: ["./other:/out"]
    tmpfs: [/run:size=5m]
    healthcheck: {test: ["CMD", "false"]}
    read_only: true
    pids_limit: 64
  extra:
    image: busybox:latest
    network_mode: none
    privileged: true
    restart: on-failure
    sysctls: [net.core.somaxconn=1024]
    ports: ["127.0.0.1:8080:80/udp", "9000"]
    devices: ["/dev/fuse"]
    security_opt: [apparmor=unconfined, "label=type:container_t"]
    userns_mode: host
    cgroup_parent: /ci
"""


# The Compose Specification's form (no version; limits under deploy; long volume syntax).
SPEC = """x-hard: &hard
  user: "1001:1001"
  read_only: true
  cap_drop: [ALL]
  security_opt: [no-new-privileges:true]
services:
  app:
    <<: *hard
    image: busybox:latest
    deploy:
      resources:
        limits: {memory: 512M, cpus: "0.5"}
    tmpfs: /tmp
    volumes:
      - {type: bind, source: ./src, target: /src, read_only: true}
      - {type: tmpfs, target: /cache, tmpfs: {size: 10000000}}
    environment:
      - TOKEN=${TOKEN:-none}
    healthcheck:
      test: ["CMD", "true"]
      interval: 1m30s
"""
SPEC_OVERRIDE = """services:
  app:
    deploy:
      resources:
        limits: {memory: 1G}
    volumes:
      - ./other:/src:ro
"""


@pytest.mark.parametrize(
    "files",
    [["base.yml"], ["base.yml", "override.yml"], ["spec.yml"], ["spec.yml", "spec-override.yml"]],
)
def test_the_merge_is_docker_composes(tmp_path: Path, files: list[str]) -> None:
    if shutil.which("docker-compose") is None:
        unavailable("docker-compose is not installed (scripts/ensure-compose.sh)")
    (tmp_path / "base.yml").write_text(BASE)
    (tmp_path / "override.yml").write_text(OVERRIDE)
    (tmp_path / "spec.yml").write_text(SPEC)
    (tmp_path / "spec-override.yml").write_text(SPEC_OVERRIDE)
    paths = [tmp_path / f for f in files]
    argv = ["docker-compose", *[x for p in paths for x in ("-f", str(p))], "config"]
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin"}
    done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    merged_by_compose = tmp_path / "merged.yml"
    merged_by_compose.write_text(done.stdout)
    ours = load(paths, {})
    theirs = load([merged_by_compose], {})
    assert sorted(ours.services) == sorted(theirs.services)
    for name in ours.services:
        a = read_service(ours.services[name], tmp_path, {})
        b = read_service(theirs.services[name], tmp_path, {})
        assert a.settings == b.settings, name
        assert [n.code for n in a.notes] == [n.code for n in b.notes], name
