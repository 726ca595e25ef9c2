#!/usr/bin/env bash
# Set up and run every check, on a fresh machine or a developer's:
#
#   scripts/test.sh [PYTEST ARGS...]
#
# 1. a virtual environment (.venv) with the package and its test extras;
# 2. a Docker engine that answers (scripts/ensure-engine.sh installs Debian's docker.io and
#    starts dockerd when missing and run as root; otherwise it says what to do);
#    and what the swarm tests' swarm needs (scripts/ensure-swarm.sh: iproute2, nsenter);
# 3. the local test images (scripts/build-test-images.sh; no registry is used), a headless
#    Chromium for the HTML report (scripts/ensure-chromium.sh), and a Podman service with the
#    images in its own store (scripts/ensure-podman.sh; stopped by the tests' end);
# 4. lint: ruff format --check, ruff check, mypy --strict;
# 5. pytest, with the engine tests. With CI=true they are never skipped: a missing engine
#    fails them.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'test.sh: %s\n' "$*" >&2; }

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    "$PYTHON" -m venv .venv
fi
log "installing the package with its test extras"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

scripts/ensure-engine.sh
scripts/ensure-swarm.sh
scripts/build-test-images.sh
scripts/ensure-chromium.sh  # the HTML report's test opens it in headless Chromium
# Podman's service for the engine tests on Podman (tests/podman.py): needed in CI; elsewhere
# (not root, no apt) those tests skip.
scripts/ensure-podman.sh || { [ "${CI:-}" != "true" ] && log "no Podman service: its tests skip"; }
scripts/ensure-compose.sh

log "lint: ruff format --check, ruff check, mypy --strict"
.venv/bin/ruff format --check .
.venv/bin/ruff check .
.venv/bin/mypy

log "pytest"
export PATH="$PWD/.venv/bin:$PATH"
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
    log "pytest collected no tests: that is a failure, not a pass"
    exit 1
fi
exit "$code"
