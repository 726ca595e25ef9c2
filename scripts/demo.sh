#!/usr/bin/env bash
# The main job, on a fresh machine or a developer's: a project's test suite run through vetted
# profiles.
#
#   scripts/demo.sh
#
# 1. a virtual environment (.venv) with the package (as scripts/test.sh makes it);
# 2. a Docker engine that answers (scripts/ensure-engine.sh installs Debian's docker.io and
#    starts dockerd when missing and run as root; otherwise it says what to do);
# 3. the local test images (scripts/build-test-images.sh; no registry is used);
# 4. `policy validate` of the shipped policies and of the demo project's;
# 5. the demo project's image, demo-tests:latest, built locally from examples/demo-project;
# 6. the demo project's test suite through its `isolation` profile (`policy run`), then again
#    split over two `parallel` workers (`--workers 2`: SHARD_INDEX/SHARD_COUNT);
# 7. the JUnit files the containers wrote and the last lines of the launch record.
#
# Environment: PYTHON (default python3); DEMO_RECORD, the launch record (default
# build/demo/launches.jsonl: outside every directory a profile mounts, so the tests cannot
# rewrite it).
# Exit codes: 0 the suite passed; otherwise the failing step's code (policy run: the tests'
# own code, 124 timeout, 137 out of memory, 2 refused).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

log() { printf '\ndemo: %s\n' "$*" >&2; }
run() {
    printf '+ %s\n' "$*" >&2
    "$@"
}

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    "$PYTHON" -m venv .venv
fi
log "installing the package into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
export PATH="$ROOT/.venv/bin:$PATH"

scripts/ensure-engine.sh
scripts/build-test-images.sh

log "validating the shipped policies"
run policy validate policies/

DEMO="$ROOT/examples/demo-project"
RECORD="${DEMO_RECORD:-$ROOT/build/demo/launches.jsonl}"
mkdir -p "$(dirname "$RECORD")"
export POLICY_RECORD="$RECORD"
lines_before=0
[ -f "$RECORD" ] && lines_before=$(wc -l <"$RECORD")

cd "$DEMO"
log "validating the demo project's policy ($DEMO/policies)"
run policy validate

log "building demo-tests:latest (FROM simple-test-isolation:latest; nothing is pulled)"
run docker build --quiet --tag demo-tests:latest .

rm -f test-results/junit-*.xml 2>/dev/null || true
log "the test suite in one container, through profile 'isolation'"
run policy show isolation | grep '^digest'
set +e
run policy run isolation -- /opt/demo/run-tests.sh
single=$?
set -e

log "the same suite split over two workers, through profile 'parallel'"
set +e
run policy run parallel --workers 2 -- /opt/demo/run-tests.sh
workers=$?
set -e

log "test reports written by the containers ($DEMO/test-results)"
for report in test-results/junit-*.xml; do
    [ -f "$report" ] || continue
    printf '%s: %s\n' "$report" "$(grep -o '<testsuite [^>]*>' "$report")"
done

log "last launch records ($RECORD)"
lines_after=0
[ -f "$RECORD" ] && lines_after=$(wc -l <"$RECORD")
if [ "$lines_after" -gt "$lines_before" ]; then
    tail -n "$((lines_after - lines_before))" "$RECORD"
else
    printf 'demo: ERROR: `policy run` wrote no launch record to %s\n' "$RECORD" >&2
    exit 1
fi

if [ "$single" -ne 0 ] || [ "$workers" -ne 0 ]; then
    log "FAILED: isolation run exit $single, parallel workers exit $workers"
    [ "$single" -ne 0 ] && exit "$single"
    exit "$workers"
fi
log "passed: the suite ran twice under vetted, verified profiles"
