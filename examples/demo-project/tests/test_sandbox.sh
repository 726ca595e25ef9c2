# The container really runs under the vetted profile: these tests fail if the suite is started
# any other way (for example with a plain `docker run demo-tests:latest`).
. ./tests/assert.sh

test_runs_as_unprivileged_user() {
    assert_eq 1001:1001 "$(id -u):$(id -g)" "uid:gid"
}

test_no_capabilities_and_no_new_privileges() {
    assert_eq 0000000000000000 "$(status_field CapEff)" "CapEff" &&
        assert_eq 0000000000000000 "$(status_field CapBnd)" "CapBnd" &&
        assert_eq 1 "$(status_field NoNewPrivs)" "NoNewPrivs"
}

test_seccomp_filter_is_on() {
    assert_eq 2 "$(status_field Seccomp)" "Seccomp mode (2 = filter)"
}

test_root_filesystem_is_read_only() {
    assert_eq ro "$(mount_mode /)" "mount mode of /"
}

test_project_is_mounted_read_only() {
    assert_eq ro "$(mount_mode /src)" "mount mode of /src" && assert_fails touch /src/probe
}

test_results_directory_is_writable() {
    touch "/results/.probe-$$" && rm "/results/.probe-$$"
}

test_tmp_is_writable_but_not_executable() {
    assert_eq rw "$(mount_mode /tmp)" "mount mode of /tmp" || return 1
    local script="/tmp/probe-$$.sh"
    printf '#!/bin/sh\necho ran\n' >"$script" && chmod +x "$script" || return 1
    assert_fails "$script"
    local code=$?
    rm -f "$script"
    return "$code"
}

test_no_network_interfaces_but_loopback() {
    assert_eq lo "$(ls /sys/class/net)" "network interfaces"
}

test_pids_limit() {
    local max
    max=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)
    assert_eq 256 "$max" "pids.max"
}
