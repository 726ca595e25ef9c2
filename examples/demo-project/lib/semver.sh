# semver.sh: check, compare and bump MAJOR.MINOR.PATCH versions (POSIX sh, busybox-friendly).
#
#   semver_valid 1.2.3          exit 0 if valid, 1 if not
#   semver_cmp 1.2.10 1.2.9     prints -1, 0 or 1; exit 2 on an invalid version
#   semver_bump minor 1.2.3     prints 1.3.0; exit 2 on an invalid part or version

semver_valid() {
    printf '%s\n' "$1" | grep -Eqx '(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})'
}

semver_cmp() {
    semver_valid "$1" && semver_valid "$2" || return 2
    local a="$1." b="$2." x y
    while [ -n "$a" ]; do
        x=${a%%.*} y=${b%%.*}
        if [ "$x" -lt "$y" ]; then echo -1; return 0; fi
        if [ "$x" -gt "$y" ]; then echo 1; return 0; fi
        a=${a#*.} b=${b#*.}
    done
    echo 0
}

semver_bump() {
    semver_valid "$2" || return 2
    local major minor patch
    major=${2%%.*} patch=${2##*.}
    minor=${2#*.} minor=${minor%.*}
    case $1 in
        major) echo "$((major + 1)).0.0" ;;
        minor) echo "$major.$((minor + 1)).0" ;;
        patch) echo "$major.$minor.$((patch + 1))" ;;
        *) return 2 ;;
    esac
}
