# Unit tests of lib/semver.sh. Each test_* function is one test case; the runner calls it from
# the project directory (/src in the container) with this file and tests/assert.sh sourced.
. ./tests/assert.sh
. ./lib/semver.sh

test_valid_versions() {
    semver_valid 0.0.0 && semver_valid 1.2.3 && semver_valid 10.20.30
}

test_invalid_versions() {
    for v in '' 1 1.2 1.2.3.4 01.2.3 1.2.x v1.2.3 '1.2.3 ' -1.2.3; do
        if semver_valid "$v"; then echo "accepted invalid version [$v]"; return 1; fi
    done
}

test_cmp_is_numeric_not_lexical() {
    assert_eq 1 "$(semver_cmp 1.2.10 1.2.9)" "1.2.10 vs 1.2.9"
}

test_cmp_orders_by_major_then_minor_then_patch() {
    assert_eq -1 "$(semver_cmp 1.9.9 2.0.0)" "1.9.9 vs 2.0.0" &&
        assert_eq -1 "$(semver_cmp 2.0.9 2.1.0)" "2.0.9 vs 2.1.0" &&
        assert_eq 1 "$(semver_cmp 2.1.1 2.1.0)" "2.1.1 vs 2.1.0"
}

test_cmp_equal() {
    assert_eq 0 "$(semver_cmp 3.4.5 3.4.5)" "3.4.5 vs 3.4.5"
}

test_cmp_refuses_invalid_versions() {
    semver_cmp 1.2 1.2.0 >/dev/null
    assert_eq 2 "$?" "exit code"
}

test_bump() {
    assert_eq 2.0.0 "$(semver_bump major 1.4.7)" "major bump" &&
        assert_eq 1.5.0 "$(semver_bump minor 1.4.7)" "minor bump" &&
        assert_eq 1.4.8 "$(semver_bump patch 1.4.7)" "patch bump"
}

test_bump_refuses_unknown_part() {
    assert_fails semver_bump build 1.4.7
}
