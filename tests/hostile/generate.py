"""Writers for the hostile inputs that are not kept as files in `corpus/`.

Huge files (10 MB, 100k profiles), bytes that git or an editor would mangle (invalid UTF-8, NUL,
CR, BOMs), and things that are not regular files at all (FIFOs, sockets, symlinks to devices or
to themselves, directories 1200 levels deep) are made here, in the test's temporary directory.

Every writer takes the project directory (empty; `policies/` inside it is the policy directory)
and returns the path to hand to `policy validate`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
from collections.abc import Callable
from pathlib import Path

Writer = Callable[[Path], Path]

# The same clean profile the static corpus uses: it breaks no built-in rule, so every diagnostic
# a case produces comes from what the case adds.
CLEAN = (
    'image = "app:1"\n'
    'user = "1001:1001"\n'
    "read_only = true\n"
    'cap_drop = ["ALL"]\n'
    "no_new_privileges = true\n"
    "pids_limit = 64\n"
    'memory = "512m"\n'
    "cpus = 1\n"
    'timeout = "5m"\n'
)
HEAD = "version = 1\n\n[profiles.app]\n"
BASE = HEAD + CLEAN
# A typo the loader must report: appended after hostile content, it checks that the content was
# followed correctly (the error must land on the typo's own line).
SENTINEL = 'memroy = "1g"\n'

MIB = 1 << 20


def policies(project: Path) -> Path:
    directory = project / "policies"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def text(content: str, name: str = "policy.toml") -> Writer:
    """A policy directory holding one file with `content` (UTF-8)."""
    return data(content.encode("utf-8"), name)


def data(content: bytes, name: str = "policy.toml") -> Writer:
    """A policy directory holding one file with exactly these bytes."""

    def write(project: Path) -> Path:
        directory = policies(project)
        (directory / name).write_bytes(content)
        return directory

    return write


def with_seccomp(content: bytes | None, *, link: str | None = None, fifo: bool = False) -> Writer:
    """The clean profile with `seccomp = "seccomp.json"`, and that file as given."""

    def write(project: Path) -> Path:
        directory = policies(project)
        (directory / "policy.toml").write_text(BASE + 'seccomp = "seccomp.json"\n')
        target = directory / "seccomp.json"
        if content is not None:
            target.write_bytes(content)
        elif link is not None:
            target.symlink_to(link)
        elif fifo:
            os.mkfifo(target)
        else:
            target.mkdir()
        return directory

    return write


def with_mount(source: str, setup: Callable[[Path], None]) -> Writer:
    """The clean profile bind-mounting `source`; `setup` builds the project tree around it."""

    def write(project: Path) -> Path:
        directory = policies(project)
        (directory / "policy.toml").write_text(
            BASE + f'mounts = [{{ source = "{source}", target = "/data" }}]\n'
        )
        setup(project)
        return directory

    return write


# ---------------------------------------------------------------------------------------------
# huge inputs


def huge_string(size: int = 10 * MIB) -> Writer:
    """One `size`-byte string value, then a typo."""

    def write(project: Path) -> Path:
        directory = policies(project)
        with (directory / "policy.toml").open("w") as handle:
            handle.write(BASE)
            handle.write('description = "')
            chunk = "0123456789abcdef" * 4096
            for _ in range(size // len(chunk)):
                handle.write(chunk)
            handle.write('"\n')
            handle.write(SENTINEL)
        return directory

    return write


def huge_comments(size: int = 10 * MIB) -> Writer:
    """`size` bytes of comment lines (about 100k lines) between the profile and a typo."""

    def write(project: Path) -> Path:
        directory = policies(project)
        line = "# " + "x" * 97 + "\n"
        with (directory / "policy.toml").open("w") as handle:
            handle.write(BASE)
            handle.write(line * (size // len(line)))
            handle.write(SENTINEL)
        return directory

    return write


def many_profiles(count: int = 100_000) -> Writer:
    """`count` small profiles sharing [defaults]; the last one has a typo."""

    def write(project: Path) -> Path:
        directory = policies(project)
        with (directory / "policy.toml").open("w") as handle:
            handle.write("version = 1\n\n[defaults]\n" + CLEAN.replace('image = "app:1"\n', ""))
            for index in range(count - 1):
                handle.write(f'\n[profiles.p{index}]\nimage = "img:{index}"\n')
            handle.write(f'\n[profiles.last]\nimage = "img:last"\n{SENTINEL}')
        return directory

    return write


def many_env(count: int = 10_000) -> Writer:
    """`count` environment variables, then a typo."""
    body = "".join(f'env.VAR_{index} = "value {index} $(id) ; `id`"\n' for index in range(count))
    return text(BASE + body + SENTINEL)


def long_array(count: int = 100_000) -> Writer:
    """A cap_drop array of `count` entries whose last entry is not a capability."""
    entries = ", ".join(['"ALL"'] * (count - 1) + ['"NOT_A_CAP"'])
    return text(BASE.replace('cap_drop = ["ALL"]', f"cap_drop = [{entries}]"))


def many_mounts(count: int = 10_000) -> Writer:
    """`count` bind mounts, all onto the same target."""
    entries = ",\n".join(
        f'  {{ source = "src{index}", target = "/same" }}' for index in range(count)
    )
    return text(BASE + f"mounts = [\n{entries},\n]\n")


def long_key(size: int = MIB) -> Writer:
    """An unknown key `size` characters long."""
    return text(BASE + '"' + "k" * size + '" = 1\n')


def long_duration(repeat: int = 500_000) -> Writer:
    """A 1 MB timeout string (`1h` half a million times)."""
    return text(BASE.replace('timeout = "5m"', 'timeout = "' + "1h" * repeat + '"'))


def huge_number(digits: int = 5000, before: str = "") -> Writer:
    """An integer literal with `digits` digits (Python refuses to convert more than 4300);
    `before` goes into the profile ahead of it."""
    return text(HEAD + before + CLEAN.replace("pids_limit = 64", "pids_limit = " + "9" * digits))


def over_cap_sparse(size: int = 40 * MIB) -> Writer:
    """A sparse regular file larger than the 32 MiB read cap (costs no disk)."""

    def write(project: Path) -> Path:
        directory = policies(project)
        with (directory / "policy.toml").open("wb") as handle:
            handle.write(BASE.encode())
            handle.truncate(size)
        return directory

    return write


# ---------------------------------------------------------------------------------------------
# nesting


def deep_arrays(depth: int) -> Writer:
    return text(BASE + "description = " + "[" * depth + "]" * depth + "\n")


def deep_inline_tables(depth: int) -> Writer:
    return text(BASE + "description = " + "{ a = " * depth + "1" + " }" * depth + "\n")


def deep_header(depth: int) -> Writer:
    """`[profiles.app.a.a.a...]`: a table `depth` levels below the profile."""
    return text(BASE + "\n[profiles.app" + ".a" * depth + "]\nx = 1\n")


def deep_directories(depth: int, content: str, name: str | bytes = "d") -> Writer:
    """`policies/d/d/.../d/policy.toml`, `depth` directories named `name` down (made relative to
    the working directory, so the path may be longer than PATH_MAX)."""

    def write(project: Path) -> Path:
        directory = policies(project)
        with contextlib.chdir(directory):
            for _ in range(depth):
                os.mkdir(name)
                os.chdir(name)
            Path("policy.toml").write_text(content)
        return directory

    return write


# ---------------------------------------------------------------------------------------------
# bytes


def binary_random(size: int = 64 * 1024, seed: int = 20261128) -> Writer:
    generator = random.Random(seed)
    return data(bytes(generator.randrange(256) for _ in range(size)))


def crlf(content: str) -> Writer:
    return data(content.replace("\n", "\r\n").encode())


def bare_cr(content: str) -> Writer:
    return data(content.replace("\n", "\r").encode())


# ---------------------------------------------------------------------------------------------
# things that are not regular files


def symlink(target: str, name: str = "policy.toml", *, as_argument: bool = False) -> Writer:
    """A policy file that is a symlink to `target` (a device, itself, nothing)."""

    def write(project: Path) -> Path:
        directory = policies(project)
        (directory / name).symlink_to(target)
        return directory / name if as_argument else directory

    return write


def fifo(project: Path) -> Path:
    directory = policies(project)
    os.mkfifo(directory / "policy.toml")
    return directory


def unix_socket(project: Path) -> Path:
    directory = policies(project)
    # A relative name: socket paths are limited to 108 bytes, temporary directories are long.
    with contextlib.chdir(directory), socket.socket(socket.AF_UNIX) as server:
        server.bind("policy.toml")
    return directory


def directory_named_toml(project: Path) -> Path:
    directory = policies(project)
    (directory / "policy.toml").mkdir()
    return directory


def unreadable(project: Path) -> Path:
    directory = policies(project)
    path = directory / "policy.toml"
    path.write_text(BASE)
    path.chmod(0)
    return directory


def empty_directory(project: Path) -> Path:
    return policies(project)


def nonexistent(project: Path) -> Path:
    return project / "no-such-policies"


def hidden_only(project: Path) -> Path:
    directory = policies(project)
    (directory / ".hidden.toml").write_text(BASE)
    return directory


def named(name: str | bytes, content: str = BASE + SENTINEL) -> Writer:
    """A policy file with a hostile name (bytes: not valid UTF-8)."""

    def write(project: Path) -> Path:
        directory = policies(project)
        raw = os.fsencode(directory) + b"/" + (name if isinstance(name, bytes) else name.encode())
        with open(raw, "wb") as handle:
            handle.write(content.encode())
        return directory

    return write


def with_guardrails(make: Callable[[Path], object]) -> Writer:
    """The clean policy, and a `guardrails.toml` next to it made by `make(path)`."""

    def write(project: Path) -> Path:
        directory = policies(project)
        (directory / "policy.toml").write_text(BASE)
        make(directory / "guardrails.toml")
        return directory

    return write


def guardrails_symlink(target: str) -> Writer:
    return with_guardrails(lambda path: path.symlink_to(target))


guardrails_fifo = with_guardrails(os.mkfifo)


def guardrails_bytes(content: bytes) -> Writer:
    return with_guardrails(lambda path: path.write_bytes(content))


# ---------------------------------------------------------------------------------------------
# extends


def extends_chain(length: int, *, tip: str = "", root_extends: str | None = None) -> Writer:
    """p0 <- p1 <- ... <- p{length-1}; `tip` is added to the last profile."""
    parts = ["version = 1\n\n[defaults]\n" + CLEAN.replace('image = "app:1"\n', "")]
    first = f'extends = "{root_extends}"\n' if root_extends else ""
    parts.append(f'\n[profiles.p0]\nimage = "app:1"\n{first}')
    for index in range(1, length):
        extra = tip if index == length - 1 else ""
        parts.append(f'\n[profiles.p{index}]\nextends = "p{index - 1}"\n{extra}')
    return text("".join(parts))


def extends_cycle(length: int) -> Writer:
    parts = ["version = 1\n"]
    for index in range(length):
        parts.append(f'\n[profiles.p{index}]\nextends = "p{(index + 1) % length}"\n')
    return text("".join(parts))


# ---------------------------------------------------------------------------------------------
# seccomp documents


def seccomp_document(size: int) -> bytes:
    """A valid seccomp profile padded with syscall names to about `size` bytes."""
    names = [f"syscall_{index:08d}" for index in range(size // 20)]
    document = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
    }
    return json.dumps(document).encode()


def seccomp_deep(depth: int = 100_000) -> bytes:
    return b"[" * depth + b"]" * depth


# ---------------------------------------------------------------------------------------------
# mount sources


def link(name: str, target: str) -> Callable[[Path], None]:
    def setup(project: Path) -> None:
        (project / name).symlink_to(target)

    return setup


def chain_links(project: Path) -> None:
    (project / "a").symlink_to("b")
    (project / "b").symlink_to("c")
    (project / "c").symlink_to("/etc")


def loop_links(project: Path) -> None:
    (project / "loop").symlink_to("loop")


def remove_tree(root: Path) -> None:
    """`shutil.rmtree` without recursion (which overflows on the 1200-level tree), without
    following links, and with names relative to the working directory (a tree whose paths are
    longer than PATH_MAX cannot be removed by full path)."""
    if not os.path.lexists(root):
        return
    if not os.path.isdir(root) or os.path.islink(root):
        os.unlink(root)
        return
    below: list[str] = []  # the directories entered below `root`
    with contextlib.chdir(root):
        while True:
            with os.scandir(".") as entries:
                listed = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
            subdirectory = next((name for name, is_dir in listed if is_dir), None)
            for name, is_dir in listed:
                if not is_dir:
                    os.unlink(name)
            if subdirectory is not None:
                os.chdir(subdirectory)
                below.append(subdirectory)
            elif below:
                os.chdir("..")
                os.rmdir(below.pop())
            else:
                break
    os.rmdir(root)
