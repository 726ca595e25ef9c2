#!/usr/bin/env bash
# Start or stop an extra Docker engine in a network namespace of its own (a second "host").
#
#   scripts/second-engine.sh start NAME [IMAGE ...]   start it, import the images, print its URL
#   scripts/second-engine.sh stop NAME                stop it, remove its namespace and files
#   scripts/second-engine.sh status NAME              exit 0 if it answers, 1 if not
#
# Everything of engine NAME lives under $SECOND_ENGINE_ROOT/NAME (default /tmp/NAME): the socket
# (docker.sock), data-root, exec-root, pidfile and dockerd.log. The network namespace is NAME.
# IMAGE defaults to simple-test-isolation:latest, copied from the main engine (docker save | load):
# no registry is used.
#
# How it starts (see docs in DESIGN, "Real components and how they start"), avoiding two traps
# seen on these machines:
#   - `nsenter --net=/var/run/netns/NAME dockerd ...`, NOT `ip netns exec NAME dockerd`: the latter
#     remounts /sys in a new mount namespace and dockerd then fails with "Devices cgroup isn't
#     mounted";
#   - the engine keeps its default bridge, inside its own namespace. NEVER start an extra engine
#     with --bridge=none in the host's namespace: it deletes the main engine's docker0.
#
# Needs root, ip (iproute2), nsenter (util-linux) and dockerd.
# Environment: SECOND_ENGINE_ROOT (default /tmp), ENGINE_WAIT_SECONDS (default 60).
# Exit codes: 0 ok, 1 status: not running, 2 failure (message on stderr).
set -euo pipefail

ROOT_DIR="${SECOND_ENGINE_ROOT:-/tmp}"
WAIT_SECONDS="${ENGINE_WAIT_SECONDS:-60}"

log() { printf 'second-engine: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
usage() { sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 2 ] || usage
ACTION="$1"
NAME="$2"
shift 2
[[ "$NAME" =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || die "NAME must be 1-31 of [a-z0-9-], got '$NAME'"

DIR="$ROOT_DIR/$NAME"
SOCK="$DIR/docker.sock"
URL="unix://$SOCK"
PIDFILE="$DIR/docker.pid"
NETNS="/var/run/netns/$NAME"

need() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces and dockerd need it)"
    local tool
    for tool in ip nsenter dockerd docker; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool not found (install iproute2, util-linux, docker.io)"
    done
}

pid_of_engine() {
    # The dockerd pid from its pidfile, only if that process is alive and is this engine.
    local pid
    [ -f "$PIDFILE" ] || return 1
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--pidfile $PIDFILE" || return 1
    printf '%s\n' "$pid"
}

answers() { timeout 10 docker -H "$URL" version >/dev/null 2>&1; }

# Mount points at or below $DIR, deepest first (field 5 of mountinfo; octal escapes kept).
mounts_below() {
    awk -v dir="$DIR" '$5 == dir || index($5, dir "/") == 1 { print $5 }' /proc/self/mountinfo |
        awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-
}

start() {
    need
    if pid_of_engine >/dev/null; then
        die "engine $NAME is already running (pid $(pid_of_engine)); stop it first"
    fi
    [ "$#" -gt 0 ] || set -- simple-test-isolation:latest
    local image
    for image in "$@"; do
        docker image inspect "$image" >/dev/null 2>&1 ||
            die "image $image is not on the main engine (scripts/build-test-images.sh builds the test images)"
    done
    mkdir -p "$DIR/data" "$DIR/exec"
    if [ ! -e "$NETNS" ]; then
        ip netns add "$NAME"
    fi
    nsenter --net="$NETNS" ip link set lo up
    log "starting dockerd for $NAME in network namespace $NAME (log: $DIR/dockerd.log)"
    # setsid: the engine outlives this script and ignores the caller's Ctrl-C.
    nsenter --net="$NETNS" setsid dockerd \
        -H "$URL" \
        --data-root "$DIR/data" \
        --exec-root "$DIR/exec" \
        --pidfile "$PIDFILE" \
        --shutdown-timeout 2 \
        </dev/null >"$DIR/dockerd.log" 2>&1 &
    local deadline=$((SECONDS + WAIT_SECONDS))
    until answers; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 20 "$DIR/dockerd.log" >&2 || true
            die "engine $NAME did not answer on $URL within ${WAIT_SECONDS}s"
        fi
        if ! kill -0 $! 2>/dev/null && ! pid_of_engine >/dev/null; then
            tail -n 20 "$DIR/dockerd.log" >&2 || true
            die "dockerd for $NAME exited during start-up"
        fi
        sleep 0.2
    done
    for image in "$@"; do
        log "importing $image into $NAME"
        docker save "$image" | docker -H "$URL" load >/dev/null ||
            die "could not import $image into $NAME"
    done
    printf '%s\n' "$URL"
}

stop() {
    need
    local pid deadline
    if pid="$(pid_of_engine)"; then
        log "stopping dockerd $pid ($NAME)"
        kill -TERM "$pid"
        deadline=$((SECONDS + 30))
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                log "dockerd $pid did not stop within 30s: SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                sleep 1
                break
            fi
            sleep 0.2
        done
    fi
    # The containerd dockerd started for itself, if it outlived it (only after a SIGKILL).
    local cpid cfile="$DIR/exec/containerd/containerd.pid"
    cpid="$(cat "$cfile" 2>/dev/null || true)"
    if [[ "$cpid" =~ ^[0-9]+$ ]] && [ -r "/proc/$cpid/cmdline" ] &&
        tr '\0' ' ' <"/proc/$cpid/cmdline" | grep -qF -- "$DIR/exec/containerd/"; then
        log "stopping the containerd ($cpid) of $NAME"
        kill -TERM "$cpid" 2>/dev/null || true
        deadline=$((SECONDS + 10))
        while kill -0 "$cpid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    fi
    local mount
    while IFS= read -r mount; do
        [ -n "$mount" ] || continue
        log "unmounting $mount"
        umount -l "$mount" 2>/dev/null || true
    done < <(mounts_below)
    if [ -e "$NETNS" ]; then
        ip netns del "$NAME" || log "could not remove network namespace $NAME"
    fi
    if [ -n "$(mounts_below)" ]; then
        die "something is still mounted below $DIR; not removing it"
    fi
    if [ -d "$DIR" ]; then
        rm -rf --one-file-system "$DIR"
    fi
    log "engine $NAME stopped and removed"
}

case "$ACTION" in
    start) start "$@" ;;
    stop) stop ;;
    status) if answers; then echo "$URL"; else exit 1; fi ;;
    *) usage ;;
esac
