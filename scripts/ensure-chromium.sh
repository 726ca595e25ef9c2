#!/usr/bin/env bash
# Make sure a headless Chromium is there for the HTML report's test
# (tests/engine/test_usage_report.py opens `policy report --format html` in it).
#
#   scripts/ensure-chromium.sh
#
# - `chromium` already on PATH: say so, exit 0;
# - otherwise, as root with apt-get: install Debian's chromium (and
#   fonts-dejavu-core, so the page's text has a font), exit 0;
# - otherwise: explain what to do and exit 2 (the test then fails under CI=true).
set -euo pipefail

log() { printf 'ensure-chromium: %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

if have chromium; then
    log "chromium is there ($(chromium --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! have apt-get; then
    log "ERROR: chromium is missing and this is not root with apt-get; install Debian's"
    log "       chromium package (apt-get install chromium) or put a chromium on PATH"
    exit 2
fi
log "installing chromium (apt-get)"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
have chromium || { log "ERROR: chromium still missing after apt-get"; exit 2; }
log "installed $(chromium --version 2>/dev/null || echo chromium)"
