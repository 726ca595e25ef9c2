#!/usr/bin/env bash
# Make sure `docker-compose` is installed: the tests run rendered compose files with it on the
# real engine (tests/engine/test_compose_run.py). Debian's package is docker-compose 1.x, which
# reads the 2.x file format `policy render --as compose` writes.
set -euo pipefail
log() { printf 'ensure-compose.sh: %s\n' "$*" >&2; }

if command -v docker-compose >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing docker-compose (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null; }
    exit 0
fi
log "docker-compose is missing: install it (Debian/Ubuntu: apt-get install docker-compose)"
# Outside CI the tests that need it skip; with CI=true they would fail, so fail here first.
if [ "${CI:-}" = "true" ]; then exit 1; fi
