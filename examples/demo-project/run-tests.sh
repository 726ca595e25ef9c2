#!/bin/sh
# run-tests.sh: the demo project's test runner (busybox sh). Baked into demo-tests:latest as
# /opt/demo/run-tests.sh; the tests themselves come from the project, mounted read-only.
#
#   run-tests.sh            run every test_* function of tests/test_*.sh
#
# Environment:
#   SRC_DIR      the project directory (default /src, where the profile mounts it)
#   RESULTS_DIR  where the JUnit XML goes (default /results, the profile's writable mount)
#   SHARD_INDEX, SHARD_COUNT
#                set by `policy run --workers N`: this worker runs test number k (counting
#                every test of every file in name order, from 0) when k % COUNT == INDEX
#
# Output: one line per test (PASS/FAIL, the failing test's output indented), a summary, and
# $RESULTS_DIR/junit-<shard>.xml (<shard> is "all", or "shard-I-of-N" under workers).
# Exit: 0 every test passed, 1 a test failed, 2 the runner could not run.
set -u

SRC=${SRC_DIR:-/src}
RESULTS=${RESULTS_DIR:-/results}
INDEX=${SHARD_INDEX:-0}
COUNT=${SHARD_COUNT:-1}

die() { echo "run-tests: $*" >&2; exit 2; }

case "$INDEX$COUNT" in *[!0-9]*) die "SHARD_INDEX and SHARD_COUNT must be numbers" ;; esac
[ "$COUNT" -ge 1 ] && [ "$INDEX" -lt "$COUNT" ] \
    || die "need 0 <= SHARD_INDEX < SHARD_COUNT, got $INDEX and $COUNT"
if [ -n "${SHARD_COUNT:-}" ]; then
    SHARD="shard-$INDEX-of-$COUNT"
else
    SHARD="all"
fi
cd "$SRC" || die "no project directory at $SRC"
[ -d "$RESULTS" ] && [ -w "$RESULTS" ] || die "results directory $RESULTS is not writable"
WORK=$(mktemp -d) || die "mktemp failed (is /tmp writable?)"
trap 'rm -rf "$WORK"' EXIT

# Centiseconds since boot (busybox `date` has no sub-second format).
now() { cut -d' ' -f1 /proc/uptime | tr -d .; }
seconds() { printf '%d.%02d' $(($1 / 100)) $(($1 % 100)); }
xml() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g'; }

k=0 run=0 failed=0
start=$(now)
: >"$WORK/cases.xml"
for file in tests/test_*.sh; do
    [ -f "$file" ] || die "no tests/test_*.sh in $SRC"
    for fn in $(sed -n 's/^\(test_[A-Za-z0-9_]*\)[[:space:]]*()[[:space:]]*{.*/\1/p' "$file"); do
        mine=$((k % COUNT == INDEX))
        k=$((k + 1))
        [ "$mine" -eq 1 ] || continue
        run=$((run + 1))
        t0=$(now)
        # A subshell per test: one test's variables, `cd` or `exit` cannot affect another.
        (. "./$file" && "$fn") >"$WORK/out" 2>&1
        code=$?
        took=$(seconds $(($(now) - t0)))
        name="${file#tests/}::$fn"
        printf '  <testcase classname="%s" name="%s" time="%s">' \
            "$(echo "${file#tests/}" | xml)" "$fn" "$took" >>"$WORK/cases.xml"
        if [ "$code" -eq 0 ]; then
            echo "PASS $name"
        else
            failed=$((failed + 1))
            echo "FAIL $name (exit $code)"
            sed 's/^/     | /' "$WORK/out"
            {
                printf '\n    <failure message="exit %s">' "$code"
                xml <"$WORK/out"
                printf '</failure>\n  '
            } >>"$WORK/cases.xml"
        fi
        echo '</testcase>' >>"$WORK/cases.xml"
    done
done
total=$(seconds $(($(now) - start)))

report="$RESULTS/junit-$SHARD.xml"
{
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    printf '<testsuite name="demo-project (%s)" tests="%s" failures="%s" time="%s">\n' \
        "$SHARD" "$run" "$failed" "$total"
    cat "$WORK/cases.xml"
    echo '</testsuite>'
} >"$report" || die "cannot write $report"

echo "$SHARD: $((run - failed)) passed, $failed failed, $run run of $k tests (${total}s); $report"
[ "$failed" -eq 0 ]
