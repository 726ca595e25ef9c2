#!/usr/bin/env bash
# Make sure this machine can build the swarm tests' swarm (tests/swarm, scripts/swarm.sh):
# iproute2 (ip netns, veth, bridge) and util-linux (nsenter). Installs them with apt as root when
# missing; otherwise says what to install. Exit 0 ready, 2 not.
set -euo pipefail

log() { printf 'ensure-swarm: %s\n' "$*" >&2; }
missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "missing ${missing[*]}: install them (the swarm tests need root and network namespaces)"
    exit 2
fi
log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null
}
