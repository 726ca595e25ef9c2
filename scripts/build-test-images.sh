#!/usr/bin/env bash
# Build the local test images without any container registry.
#
#   scripts/build-test-images.sh [--force]
#
# The image is a root filesystem made from Debian's statically linked busybox
# (package busybox-static), imported with `docker import`:
#   /bin/busybox + one symlink per applet, /etc/passwd and /etc/group with
#   root (0) and testuser (1001:1001, home /home/testuser), empty /tmp,
#   /home/testuser (1001:1001), /src, /results, /proc, /sys, /dev.
#   Config: PATH=/bin, USER 1001:1001, WORKDIR /src, CMD ["/bin/sh"].
#
# Tags: simple-test-isolation:latest and simple-test-full:latest (the same
# image). A real "full" debugging image (compilers, debuggers, ...) cannot be
# built offline without a registry, so the full tag points at the busybox
# image too; profiles that need more must bring their own image.
#
# Idempotent: the import message (image Comment) records the busybox binary's
# sha256; when both tags already carry the same hash nothing is rebuilt
# (unless --force).
#
# Environment: BUSYBOX (default /bin/busybox), IMAGE_ISOLATION and IMAGE_FULL
# (default the two tags above).
# Exit codes: 0 ok, 2 failure (message on stderr).
set -euo pipefail

BUSYBOX="${BUSYBOX:-/bin/busybox}"
IMAGE_ISOLATION="${IMAGE_ISOLATION:-simple-test-isolation:latest}"
IMAGE_FULL="${IMAGE_FULL:-simple-test-full:latest}"
TEST_UID=1001
TEST_GID=1001

log() { printf 'build-test-images: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

usage() {
    sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2
}

FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force|-f) FORCE=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage; die "unknown argument: $arg" ;;
    esac
done

command -v docker >/dev/null 2>&1 || die "docker client not found (run scripts/ensure-engine.sh)"
docker info >/dev/null 2>&1 || die "no Docker engine answers (run scripts/ensure-engine.sh)"
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found: install busybox-static (apt-get install busybox-static)"

# The binary must be statically linked: the image has no libc.
if command -v file >/dev/null 2>&1; then
    file -L "$BUSYBOX" | grep -q 'statically linked' \
        || die "$BUSYBOX is not statically linked ($(file -L -b "$BUSYBOX")); install busybox-static"
elif ldd "$BUSYBOX" >/dev/null 2>&1; then
    die "$BUSYBOX is dynamically linked (ldd lists libraries); install busybox-static"
fi

HASH=$(sha256sum "$BUSYBOX" | cut -d' ' -f1)
MARK="busybox-sha256:$HASH"

image_comment() {
    docker image inspect --format '{{.Comment}}' "$1" 2>/dev/null || true
}

if [ "$FORCE" -eq 0 ] \
   && [ "$(image_comment "$IMAGE_ISOLATION")" = "$MARK" ] \
   && [ "$(image_comment "$IMAGE_FULL")" = "$MARK" ]; then
    log "up to date: $IMAGE_ISOLATION and $IMAGE_FULL ($MARK); use --force to rebuild"
    exit 0
fi

# Images the tags point at now (to drop later if this script made them and
# the rebuild leaves them untagged).
OLD_IDS=$(docker image inspect --format '{{.Id}}' "$IMAGE_ISOLATION" "$IMAGE_FULL" 2>/dev/null | sort -u || true)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/test-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"

log "building root filesystem from $BUSYBOX in $ROOT"
mkdir -p "$ROOT"/{bin,etc,tmp,home/testuser,src,results,proc,sys,dev}
cp "$BUSYBOX" "$ROOT/bin/busybox"
chmod 0755 "$ROOT/bin/busybox"

n=0
while IFS= read -r applet; do
    # Skip the busybox applet itself (a self-symlink would replace the
    # binary) and anything that is not a plain name.
    case "$applet" in
        ''|busybox|*/*) continue ;;
    esac
    ln -sf busybox "$ROOT/bin/$applet"
    n=$((n + 1))
done < <("$BUSYBOX" --list)
[ "$n" -gt 0 ] || die "$BUSYBOX --list printed no applets"
[ -f "$ROOT/bin/busybox" ] && [ ! -L "$ROOT/bin/busybox" ] || die "bin/busybox was overwritten"
[ -e "$ROOT/bin/sh" ] || die "busybox has no sh applet"

cat >"$ROOT/etc/passwd" <<EOF
root:x:0:0:root:/root:/bin/sh
testuser:x:$TEST_UID:$TEST_GID:testuser:/home/testuser:/bin/sh
EOF
cat >"$ROOT/etc/group" <<EOF
root:x:0:
testuser:x:$TEST_GID:
EOF
chmod 0644 "$ROOT/etc/passwd" "$ROOT/etc/group"
chmod 1777 "$ROOT/tmp"
chmod 0755 "$ROOT"/{bin,etc,home,src,results,proc,sys,dev}
chmod 0755 "$ROOT/home/testuser"
chown "$TEST_UID:$TEST_GID" "$ROOT/home/testuser" \
    || die "cannot chown home/testuser to $TEST_UID:$TEST_GID (run as root)"

log "importing $IMAGE_ISOLATION ($n applets, $MARK)"
# Import untagged first, smoke-test, then tag: a broken image never gets the
# tags (and so never the "up to date" mark).
# --numeric-owner keeps uid/gid 1001 whatever the host's passwd says.
if ! id=$(tar --numeric-owner -C "$ROOT" -cf - . | docker import \
        -m "$MARK" \
        -c 'ENV PATH=/bin' \
        -c 'USER 1001:1001' \
        -c 'WORKDIR /src' \
        -c 'CMD ["/bin/sh"]' \
        -); then
    die "docker import failed"
fi

# Smoke test: the image runs as testuser in /src.
if ! who=$(docker run --rm --network none "$id" sh -c 'echo "$(id -u):$(id -g):$(pwd)"'); then
    docker image rm "$id" >/dev/null 2>&1 || true
    die "smoke test of the new image failed"
fi
if [ "$who" != "$TEST_UID:$TEST_GID:/src" ]; then
    docker image rm "$id" >/dev/null 2>&1 || true
    die "smoke test: expected $TEST_UID:$TEST_GID:/src, got: $who"
fi

docker tag "$id" "$IMAGE_ISOLATION" || die "docker tag $IMAGE_ISOLATION failed"
docker tag "$id" "$IMAGE_FULL" || die "docker tag $IMAGE_FULL failed"
log "built $IMAGE_ISOLATION = $IMAGE_FULL (${id#sha256:})"

# Drop the previous build if it was ours (busybox-sha256 mark) and is now
# untagged; images made by anything else are left alone.
for old in $OLD_IDS; do
    [ "$old" = "$id" ] && continue
    case "$(image_comment "$old")" in busybox-sha256:*) ;; *) continue ;; esac
    [ "$(docker image inspect --format '{{len .RepoTags}}' "$old" 2>/dev/null)" = 0 ] || continue
    docker image rm "$old" >/dev/null 2>&1 && log "removed previous build ${old#sha256:}" || true
done
