# Assertions for the test scripts (sourced by each tests/test_*.sh). A failed assertion prints
# what was expected and returns 1, which fails the test function.

assert_eq() {  # assert_eq EXPECTED ACTUAL [WHAT]
    [ "$1" = "$2" ] && return 0
    printf 'expected %s: [%s]\n     got: [%s]\n' "${3:-value}" "$1" "$2"
    return 1
}

assert_fails() {  # assert_fails CMD ARGS...: the command must exit non-zero
    if "$@" >/dev/null 2>&1; then
        printf 'expected to fail, but succeeded: %s\n' "$*"
        return 1
    fi
}

status_field() {  # status_field NAME: a field of this process's /proc status
    sed -n "s/^$1:[[:space:]]*//p" /proc/self/status
}

mount_mode() {  # mount_mode PATH: "ro" or "rw", as the kernel mounted PATH (last mount wins)
    awk -v p="$1" '$2 == p { split($4, o, ","); mode = o[1] } END { print mode }' /proc/self/mounts
}
