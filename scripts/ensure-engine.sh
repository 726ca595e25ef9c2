#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine (CI and fresh machines).
#
#   scripts/ensure-engine.sh
#
# - engine already answers (`docker info`): say so, make sure the helper
#   tools (static busybox, docker-compose) are there, exit 0;
# - otherwise, as root with apt-get: install docker.io busybox-static
#   docker-compose iproute2, start dockerd in the background (log file below),
#   wait up to ENGINE_WAIT_SECONDS (default 60) for it to answer;
# - otherwise: explain what to do and exit 2.
#
# Environment:
#   DOCKERD_LOG          dockerd log file (default /var/log/dockerd-policy.log,
#                        or ${TMPDIR:-/tmp}/dockerd-policy.log if /var/log is
#                        not writable)
#   ENGINE_WAIT_SECONDS  how long to wait for the engine (default 60)
#
# Exit codes: 0 engine answers, 2 it does not (message on stderr).
set -euo pipefail

PACKAGES=(docker.io busybox-static docker-compose iproute2)
WAIT_SECONDS="${ENGINE_WAIT_SECONDS:-60}"
SOCK=/var/run/docker.sock

log() { printf 'ensure-engine: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

is_root() { [ "$(id -u)" -eq 0 ]; }
have() { command -v "$1" >/dev/null 2>&1; }
can_apt() { is_root && have apt-get; }

engine_answers() {
    have docker && timeout 20 docker info >/dev/null 2>&1
}

# Debian package "installed" state (not just known to dpkg).
pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

APT_UPDATED=0
apt_update_once() {
    [ "$APT_UPDATED" -eq 1 ] && return 0
    log "apt-get update"
    local out
    if ! out=$(apt-get update -qq 2>&1); then
        printf '%s\n' "$out" >&2
        die "apt-get update failed"
    fi
    APT_UPDATED=1
}

# apt_install PKG...: install (quietly) the packages that are missing.
apt_install() {
    local missing=() p out
    for p in "$@"; do
        pkg_installed "$p" || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    log "installing: ${missing[*]}"
    # First try without refreshing the lists (fast on a warm machine), then
    # once more after `apt-get update`.
    if out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" 2>&1); then
        return 0
    fi
    apt_update_once
    if ! out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" 2>&1); then
        printf '%s\n' "$out" | tail -n 30 >&2
        die "apt-get install ${missing[*]} failed"
    fi
}

# A statically linked busybox (the test images are built from it).
busybox_static_ok() {
    local bb
    bb=$(command -v busybox 2>/dev/null) || return 1
    if have file; then
        file -L "$bb" | grep -q 'statically linked'
    else
        # ldd fails on a static binary
        if ldd "$bb" >/dev/null 2>&1; then return 1; fi
    fi
}

compose_ok() {
    have docker-compose && docker-compose version >/dev/null 2>&1
}

# A C compiler that links statically: the seccomp tests build their probe with it.
static_cc_ok() {
    have gcc && printf 'int main(void){return 0;}\n' | gcc -static -x c -o /dev/null - 2>/dev/null
}

ensure_tools() {
    local want=()
    busybox_static_ok || want+=(busybox-static)
    compose_ok || want+=(docker-compose)
    static_cc_ok || want+=(gcc libc6-dev)
    [ "${#want[@]}" -eq 0 ] && return 0
    if can_apt; then
        apt_install "${want[@]}"
        busybox_static_ok || log "WARNING: no statically linked busybox on PATH after install"
        compose_ok || log "WARNING: docker-compose still does not work after install"
        static_cc_ok || log "WARNING: gcc cannot link statically after install (libc6-dev?)"
    else
        log "WARNING: missing ${want[*]}; install them (as root: apt-get install ${want[*]})"
    fi
}

show_log() {
    if [ -s "$1" ]; then
        log "last lines of $1:"
        tail -n 30 "$1" >&2 || true
    else
        log "(no dockerd output in $1)"
    fi
}

pick_log_file() {
    if [ -n "${DOCKERD_LOG:-}" ]; then
        printf '%s\n' "$DOCKERD_LOG"
    elif [ -w /var/log ]; then
        printf '%s\n' /var/log/dockerd-policy.log
    else
        printf '%s\n' "${TMPDIR:-/tmp}/dockerd-policy.log"
    fi
}

start_dockerd() {
    local logf pid i
    logf=$(pick_log_file)
    have dockerd || die "dockerd not found after installing docker.io"
    if pgrep -x dockerd >/dev/null 2>&1; then
        log "a dockerd process already runs; waiting for it instead of starting another"
    else
        # containerd: Debian's dockerd starts its own managed containerd
        # when none answers on /run/containerd/containerd.sock.
        log "starting dockerd (log: $logf)"
        : >>"$logf"
        if have setsid; then
            nohup setsid dockerd >>"$logf" 2>&1 </dev/null &
        else
            nohup dockerd >>"$logf" 2>&1 </dev/null &
        fi
        pid=$!
        disown "$pid" 2>/dev/null || true
        log "dockerd pid $pid"
    fi
    for ((i = 0; i < WAIT_SECONDS; i++)); do
        if [ -S "$SOCK" ] && engine_answers; then
            log "engine answers after ${i}s"
            return 0
        fi
        if [ -n "${pid:-}" ] && ! kill -0 "$pid" 2>/dev/null; then
            log "dockerd exited early"
            show_log "$logf"
            die "dockerd failed to start"
        fi
        sleep 1
    done
    log "engine did not answer within ${WAIT_SECONDS}s"
    show_log "$logf"
    die "dockerd did not come up"
}

main() {
    if engine_answers; then
        log "Docker engine already answers ($(docker info --format '{{.ServerVersion}}' 2>/dev/null || echo '?'))"
        ensure_tools
        exit 0
    fi

    if ! can_apt; then
        cat >&2 <<'EOF'
ensure-engine: ERROR: no Docker engine answers (`docker info` failed), and this
script can only set one up as root on a Debian/Ubuntu machine (apt-get).
Do one of:
  - install the engine:   sudo apt-get install docker.io busybox-static docker-compose iproute2
  - start it:             sudo systemctl start docker   (or: sudo dockerd &)
  - get access to it:     sudo usermod -aG docker "$USER"  (then log in again)
  - or point at another:  export DOCKER_HOST=unix:///path/to/docker.sock
EOF
        exit 2
    fi

    apt_install "${PACKAGES[@]}"
    ensure_tools
    if engine_answers; then
        # e.g. the package's own service started it
        log "Docker engine answers"
        exit 0
    fi
    start_dockerd
    exit 0
}

main "$@"
