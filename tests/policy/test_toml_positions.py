"""Tests for policy.toml_positions: key paths of a TOML document -> (line, column)."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import textwrap
import tomllib
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy.toml_positions import MAX_DEPTH, Path, key_positions, locate

# -- helpers ------------------------------------------------------------------


def doc(text: str) -> str:
    """Dedent a test document (and drop the leading newline)."""
    return textwrap.dedent(text).lstrip("\n")


def data_paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every path (dict keys and list indexes, recursively) in a tomllib result."""
    paths: list[Path] = []
    stack: list[tuple[Path, Any]] = [(prefix, value)]
    while stack:
        path, node = stack.pop()
        children: list[tuple[str | int, Any]] = []
        if isinstance(node, dict):
            children = list(node.items())
        elif isinstance(node, list):
            children = list(enumerate(node))
        for component, child in children:
            child_path = (*path, component)
            paths.append(child_path)
            stack.append((child_path, child))
    return paths


def positions_of(text: str) -> dict[Path, tuple[int, int]]:
    """key_positions(text), checked to cover every path tomllib finds in it."""
    positions = key_positions(text)
    missing = [
        p for p in data_paths(tomllib.loads(text.removeprefix("\ufeff"))) if p not in positions
    ]
    assert not missing, f"paths without a position: {missing}"
    return positions


def text_at(text: str, position: tuple[int, int]) -> str:
    """The rest of the line at a 1-based (line, column)."""
    line, column = position
    lines = text.removeprefix("\ufeff").split("\n")
    return lines[line - 1][column - 1 :]


_BARE = re.compile(r"[A-Za-z0-9_-]+")
_QUOTED_KEY = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')


def written_key(rest: str) -> str | None:
    """The key written at the start of `rest` (bare or quoted, decoded), if any."""
    match = _QUOTED_KEY.match(rest) or _BARE.match(rest)
    if match is None:
        return None
    parsed = tomllib.loads(f"{match.group(0)} = 0")
    return next(iter(parsed))


# -- basic structure --------------------------------------------------------------


def test_top_level_keys() -> None:
    text = doc(
        """
        a = 1
          b_c-d = "x"   # comment
        """
    )
    assert positions_of(text) == {("a",): (1, 1), ("b_c-d",): (2, 3)}


def test_table_header_and_keys_under_it() -> None:
    text = doc(
        """
        name = "x"

        [profiles.isolation]
        memory = "1g"
        pids_limit = 100
        """
    )
    positions = positions_of(text)
    assert positions[("profiles",)] == (3, 2)
    assert positions[("profiles", "isolation")] == (3, 11)
    assert positions[("profiles", "isolation", "memory")] == (4, 1)
    assert positions[("profiles", "isolation", "pids_limit")] == (5, 1)


def test_header_with_whitespace_and_quoted_parts() -> None:
    text = doc(
        """
        [ a . "b c" . 'd' ]
        k = 1
        """
    )
    positions = positions_of(text)
    assert positions[("a",)] == (1, 3)
    assert positions[("a", "b c")] == (1, 7)
    assert positions[("a", "b c", "d")] == (1, 15)
    assert positions[("a", "b c", "d", "k")] == (2, 1)


def test_table_first_occurrence_wins() -> None:
    text = doc(
        """
        [a.b]
        x = 1
        [a]
        y = 2
        [a.c]
        z = 3
        """
    )
    positions = positions_of(text)
    assert positions[("a",)] == (1, 2)
    assert positions[("a", "b")] == (1, 4)
    assert positions[("a", "y")] == (4, 1)
    assert positions[("a", "c")] == (5, 4)


# -- keys ---------------------------------------------------------------------


def test_quoted_keys() -> None:
    text = doc(
        r"""
        [profiles.p]
        tmpfs."/tmp" = { size = "100m" }
        'C:\dir' = 1
        "tab\there" = 2
        "\u00e9t\u00e9 \"q\"" = 3
        "" = 4
        """
    )
    positions = positions_of(text)
    assert positions[("profiles", "p", "tmpfs")] == (2, 1)
    assert positions[("profiles", "p", "tmpfs", "/tmp")] == (2, 7)
    assert positions[("profiles", "p", "tmpfs", "/tmp", "size")] == (2, 18)
    assert positions[("profiles", "p", "C:\\dir")] == (3, 1)
    assert positions[("profiles", "p", "tab\there")] == (4, 1)
    assert positions[("profiles", "p", 'été "q"')] == (5, 1)
    assert positions[("profiles", "p", "")] == (6, 1)


def test_dotted_keys() -> None:
    text = doc(
        """
        [profiles.p]
        tmpfs."/tmp".size = "500m"
        tmpfs."/tmp".mode = "1777"
        tmpfs . "/run" . size = "1m"
        """
    )
    positions = positions_of(text)
    base = ("profiles", "p")
    assert positions[(*base, "tmpfs")] == (2, 1)
    assert positions[(*base, "tmpfs", "/tmp")] == (2, 7)
    assert positions[(*base, "tmpfs", "/tmp", "size")] == (2, 14)
    assert positions[(*base, "tmpfs", "/tmp", "mode")] == (3, 14)
    assert positions[(*base, "tmpfs", "/run")] == (4, 9)
    assert positions[(*base, "tmpfs", "/run", "size")] == (4, 18)


def test_dotted_keys_then_subtable_header() -> None:
    text = doc(
        """
        [fruit]
        apple.color = "red"
        [fruit.apple.texture]
        smooth = true
        """
    )
    positions = positions_of(text)
    assert positions[("fruit", "apple")] == (2, 1)
    assert positions[("fruit", "apple", "texture")] == (3, 14)
    assert positions[("fruit", "apple", "texture", "smooth")] == (4, 1)


def test_columns_count_code_points() -> None:
    text = 'x = { "é😀" = 1, b = 2 }\n"ünï" = { c = 3 }\n'
    positions = positions_of(text)
    assert positions[("x", "é😀")] == (1, 7)
    assert positions[("x", "b")] == (1, 17)
    assert positions[("ünï",)] == (2, 1)
    assert positions[("ünï", "c")] == (2, 11)


# -- inline tables and arrays -------------------------------------------------


def test_inline_tables() -> None:
    text = doc(
        """
        tmpfs = { size = "100m", options = ["a"], x.y = 1, inner = { deep = { z = true } } }
        empty = {}
        """
    )
    positions = positions_of(text)
    assert positions[("tmpfs",)] == (1, 1)
    assert positions[("tmpfs", "size")] == (1, 11)
    assert positions[("tmpfs", "options")] == (1, 26)
    assert positions[("tmpfs", "options", 0)] == (1, 37)
    assert positions[("tmpfs", "x")] == (1, 43)
    assert positions[("tmpfs", "x", "y")] == (1, 45)
    assert positions[("tmpfs", "inner")] == (1, 52)
    assert positions[("tmpfs", "inner", "deep")] == (1, 62)
    assert positions[("tmpfs", "inner", "deep", "z")] == (1, 71)
    assert positions[("empty",)] == (2, 1)


def test_array_of_inline_tables() -> None:
    text = doc(
        """
        mounts = [ {source="src", target="/a"}, {source="b", target="/c"} ]
        """
    )
    positions = positions_of(text)
    assert positions[("mounts", 0)] == (1, 12)
    assert positions[("mounts", 0, "source")] == (1, 13)
    assert positions[("mounts", 0, "target")] == (1, 27)
    assert positions[("mounts", 1)] == (1, 41)
    assert positions[("mounts", 1, "source")] == (1, 42)
    assert positions[("mounts", 1, "target")] == (1, 54)


def test_scalar_array_elements() -> None:
    text = doc(
        """
        cap_drop = ["ALL", "X"]
        mixed = [1, 'two', 3.5, true, 2027-06-30, 1979-05-27 07:32:00Z, -inf, 0x1F]
        """
    )
    positions = positions_of(text)
    assert positions[("cap_drop", 0)] == (1, 13)
    assert positions[("cap_drop", 1)] == (1, 20)
    assert [positions[("mixed", i)] for i in range(8)] == [
        (2, 10),
        (2, 13),
        (2, 20),
        (2, 25),
        (2, 31),
        (2, 43),
        (2, 65),
        (2, 71),
    ]


def test_multiline_arrays_with_comments_and_trailing_commas() -> None:
    text = doc(
        """
        cap_add = [
            "CHOWN",   # comment, with ] and , inside
            # a whole comment line [x] = 1
            "SETUID" ,
        ]
        nested = [ [1, 2], [ [ "a" ], ], [], ]
        after = 1
        """
    )
    positions = positions_of(text)
    assert positions[("cap_add", 0)] == (2, 5)
    assert positions[("cap_add", 1)] == (4, 5)
    assert ("cap_add", 2) not in positions
    assert positions[("nested", 0)] == (6, 12)
    assert positions[("nested", 0, 0)] == (6, 13)
    assert positions[("nested", 0, 1)] == (6, 16)
    assert positions[("nested", 1)] == (6, 20)
    assert positions[("nested", 1, 0)] == (6, 22)
    assert positions[("nested", 1, 0, 0)] == (6, 24)
    assert positions[("nested", 2)] == (6, 34)
    assert ("nested", 3) not in positions
    assert positions[("after",)] == (7, 1)


# -- arrays of tables ---------------------------------------------------------


def test_array_of_tables() -> None:
    text = doc(
        """
        [[waivers]]
        rule = "no-privileged"
        expires = 2027-06-30

        [[ waivers ]]
        rule = "cap-drop"
        """
    )
    positions = positions_of(text)
    assert positions[("waivers",)] == (1, 3)
    assert positions[("waivers", 0)] == (1, 3)
    assert positions[("waivers", 0, "rule")] == (2, 1)
    assert positions[("waivers", 0, "expires")] == (3, 1)
    assert positions[("waivers", 1)] == (5, 4)
    assert positions[("waivers", 1, "rule")] == (6, 1)


def test_nested_array_of_tables_and_subtables() -> None:
    text = doc(
        """
        [[a.b]]
        x = 1
        [a.b.c]
        y = 2
        [[a.b]]
        x = 3
        [a.b.c]
        y = 4
        [[a.b.d]]
        z = 5
        [[a.b.d]]
        z = 6
        """
    )
    positions = positions_of(text)
    assert positions[("a",)] == (1, 3)
    assert positions[("a", "b")] == (1, 5)
    assert positions[("a", "b", 0)] == (1, 5)
    assert positions[("a", "b", 0, "x")] == (2, 1)
    assert positions[("a", "b", 0, "c")] == (3, 6)
    assert positions[("a", "b", 0, "c", "y")] == (4, 1)
    assert positions[("a", "b", 1)] == (5, 5)
    assert positions[("a", "b", 1, "c")] == (7, 6)
    assert positions[("a", "b", 1, "c", "y")] == (8, 1)
    assert positions[("a", "b", 1, "d")] == (9, 7)
    assert positions[("a", "b", 1, "d", 0)] == (9, 7)
    assert positions[("a", "b", 1, "d", 0, "z")] == (10, 1)
    assert positions[("a", "b", 1, "d", 1)] == (11, 7)
    assert positions[("a", "b", 1, "d", 1, "z")] == (12, 1)


def test_array_of_tables_inside_array_of_tables() -> None:
    text = doc(
        """
        [[fruits]]
        name = "apple"
        [[fruits.varieties]]
        name = "red"
        [[fruits.varieties]]
        name = "green"
        [[fruits]]
        name = "banana"
        [[fruits.varieties]]
        name = "plantain"
        """
    )
    positions = positions_of(text)
    assert positions[("fruits", 0, "varieties", 1, "name")] == (6, 1)
    assert positions[("fruits", 1)] == (7, 3)
    assert positions[("fruits", 1, "varieties", 0)] == (9, 10)
    assert positions[("fruits", 1, "varieties", 0, "name")] == (10, 1)


# -- strings and comments -------------------------------------------------------


def test_strings_and_comments_do_not_confuse_the_scanner() -> None:
    text = doc(
        r'''
        # [commented] = "header"
        a = "quote \" # not a comment [x] = 1" # real comment
        b = 'lit # [y] = "z'
        c = """
        multi # line
        [not.a.header]
        d = 1
        ends with quotes "" """
        e = \'\'\'
        raw \n # [z]
        f = 2 \'\'\'
        g = """a\""""
        h = ""
        i = \'\'\'\'\'\'
        j = """\
            continued \
        """
        [t]
        k = "x"
        '''.replace("\\'", "'")
    )
    positions = positions_of(text)
    assert positions == {
        ("a",): (2, 1),
        ("b",): (3, 1),
        ("c",): (4, 1),
        ("e",): (9, 1),
        ("g",): (12, 1),
        ("h",): (13, 1),
        ("i",): (14, 1),
        ("j",): (15, 1),
        ("t",): (18, 2),
        ("t", "k"): (19, 1),
    }


def test_multiline_strings_in_arrays_and_inline_tables() -> None:
    text = 'a = ["""x\n]""", \'\'\'y,\n}\'\'\', { s = """}\n""", t = 1 }]\nb = 2\n'
    positions = positions_of(text)
    assert positions[("a", 0)] == (1, 6)
    assert positions[("a", 1)] == (2, 7)
    assert positions[("a", 2)] == (3, 7)
    assert positions[("a", 2, "s")] == (3, 9)
    assert positions[("a", 2, "t")] == (4, 6)
    assert positions[("b",)] == (5, 1)


def test_scalars() -> None:
    text = doc(
        """
        int = +1_000
        float = -3.14e+2
        special = nan
        yes = true
        no = false
        date = 2027-06-30
        datetime = 1979-05-27 07:32:00.999-07:00 # comment
        tdatetime = 1979-05-27T07:32:00Z
        time = 07:32:00
        hex = 0xDEAD_beef
        last = 1
        """
    )
    positions = positions_of(text)
    assert [positions[(key,)] for key in tomllib.loads(text)] == [(n, 1) for n in range(1, 12)]


# -- line endings and BOM -----------------------------------------------------------


def test_crlf_line_endings() -> None:
    text = '[a]\r\nx = [\r\n  1,\r\n  "two",\r\n]\r\n[[b]]\r\ny = """\r\nz\r\n"""\r\nw = 1\r\n'
    positions = positions_of(text)
    assert positions[("a",)] == (1, 2)
    assert positions[("a", "x")] == (2, 1)
    assert positions[("a", "x", 0)] == (3, 3)
    assert positions[("a", "x", 1)] == (4, 3)
    assert positions[("b", 0)] == (6, 3)
    assert positions[("b", 0, "y")] == (7, 1)
    assert positions[("b", 0, "w")] == (10, 1)


def test_utf8_bom_is_not_a_column() -> None:
    text = "\ufeffa = 1\n[t]\nb = 2\n"
    positions = positions_of(text)
    assert positions == {("a",): (1, 1), ("t",): (2, 2), ("t", "b"): (3, 1)}
    assert key_positions("\ufeff[t]\n") == {("t",): (1, 2)}


# -- locate ---------------------------------------------------------------------


def test_locate() -> None:
    positions = key_positions(doc("[p]\nmounts = [ { source = 'a' } ]\n"))
    assert locate(positions, ("p", "mounts", 0, "source")) == (2, 14)
    assert locate(positions, ["p", "mounts", 0]) == (2, 12)
    assert locate(positions, ("p", "mounts", 0, "target")) == (2, 12)
    assert locate(positions, ("p", "mounts", 7, "x")) == (2, 1)
    assert locate(positions, ("p", "other")) == (1, 2)
    assert locate(positions, ("nothing", "here")) == (1, 1)
    assert locate(positions, ()) == (1, 1)
    assert locate({}, ("a",)) == (1, 1)


# -- robustness -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[",
        "[[",
        "[a",
        "a",
        "a =",
        "a = [1,",
        "a = [1 2]",
        "a = {",
        "a = { b = 1",
        "a = '''",
        'a = """',
        'a = "',
        "a = '",
        "]]]",
        "= 1",
        "a.",
        "a = 1, b = 2",
        "\ufeff",
        "\x00\r\n\t",
        "a = ]",
        "a = [}",
        "a = {]",
        "x = { [a] = 1 }",
        "[a]]\nb = 1",
        "[[a]\nb = 1",
        '"a\nb" = 1',
    ],
)
def test_never_raises_on_invalid_text(text: str) -> None:
    positions = key_positions(text)
    assert isinstance(positions, dict)
    for line, column in positions.values():
        assert line >= 1
        assert column >= 1


def test_partial_result_on_text_it_cannot_follow() -> None:
    positions = key_positions("a = 1\nb = [1, 2\nc = }\nd = 4\n")
    assert positions[("a",)] == (1, 1)
    assert positions[("b", 0)] == (2, 6)
    assert ("d",) not in positions


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("ab1 .=[]{},\"'#\\\n\r\tu_-é"))) | st.text())
def test_never_raises_on_arbitrary_text(text: str) -> None:
    assert isinstance(key_positions(text), dict)


def test_deep_nesting_does_not_recurse() -> None:
    depth = 100_000
    positions = key_positions("a = " + "[" * depth + "]" * depth + "\nb = 1\n")
    assert positions[("a",)] == (1, 1)
    assert positions[("a", 0, 0)] == (1, 7)
    assert max(len(path) for path in positions) == MAX_DEPTH
    assert positions[("b",)] == (2, 1)

    positions = key_positions("a = " + "{ b = " * depth + "1" + " }" * depth + "\nc = 1\n")
    assert positions[("a", "b", "b")] == (1, 13)
    assert max(len(path) for path in positions) == MAX_DEPTH
    assert positions[("c",)] == (2, 1)

    positions = key_positions("[" + ".".join(["k"] * depth) + "]\nx = 1\n[y]\n")
    assert max(len(path) for path in positions) == MAX_DEPTH
    assert positions[("y",)] == (3, 2)

    # Unbalanced: must not raise either.
    assert key_positions("a = " + "[" * depth)[("a",)] == (1, 1)


def test_large_document() -> None:
    entry = doc(
        """
        [[profiles]]
        name = "p"
        cap_drop = ["ALL", "NET_RAW"]
        mounts = [ {source="src", target="/a", options=["ro"]}, {source="b", target="/c"} ]
        desc = \"\"\"multi
        line # [x] = 1
        \"\"\"
        limits = { memory = "1g", cpus = 1.5 }  # comment
        """
    )
    count = 5_000
    text = entry * count
    positions = positions_of(text)
    lines = entry.count("\n")
    assert positions[("profiles", count - 1)] == ((count - 1) * lines + 1, 3)
    assert positions[("profiles", count - 1, "limits", "cpus")] == (count * lines, 27)


# -- property: every path of tomli_w output has the right position -----------------

_KEYS = st.text(max_size=6) | st.sampled_from(["a", "b-c", "d_e", "1", "true", "x.y", "é"])
_TZ = st.sampled_from(
    [
        None,
        dt.UTC,
        dt.timezone(dt.timedelta(hours=5, minutes=30)),
        dt.timezone(-dt.timedelta(hours=8)),
    ]
)


def _documents(floats: st.SearchStrategy[float]) -> st.SearchStrategy[dict[str, Any]]:
    """TOML documents of every value type, their floats drawn from `floats`."""
    scalars = (
        st.integers(min_value=-(2**63), max_value=2**63 - 1)
        | floats
        | st.booleans()
        | st.text(max_size=8)
        | st.dates()
        | st.datetimes(timezones=_TZ)
        | st.times()
    )
    values = st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=4)
        ),
        max_leaves=24,
    )
    return st.dictionaries(_KEYS, values, max_size=6)


_DOCUMENTS = _documents(st.floats())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_DOCUMENTS, multiline=st.booleans(), indent=st.sampled_from([0, 2, 4]))
def test_every_tomli_w_path_has_its_position(
    data: dict[str, Any], multiline: bool, indent: int
) -> None:
    text = tomli_w.dumps(data, multiline_strings=multiline, indent=indent)
    loaded = tomllib.loads(text)
    positions = key_positions(text)
    for path in data_paths(loaded):
        assert path in positions, (path, text)
        if isinstance(path[-1], str):
            assert written_key(text_at(text, positions[path])) == path[-1], (path, text)
    assert key_positions(text.replace("\n", "\r\n")) == positions
    assert key_positions("\ufeff" + text) == positions


# -- property: a randomized writer with dotted keys, comments, odd whitespace -----


class _Writer:
    """Write data as TOML in randomly chosen (valid) styles.

    Tables become headers, inline tables or dotted keys; arrays of tables
    become ``[[...]]`` or inline arrays; keys are bare, basic or literal;
    whitespace, blank lines and comments are sprinkled in.
    """

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.lines: list[str] = []

    def sp(self) -> str:
        return self.rnd.choice(["", " ", " ", "  ", "\t"])

    def comment(self) -> str:
        return self.rnd.choice(["", "", "", "  # note [x] = 'y' \"z\" ,]}"])

    def key(self, key: str) -> str:
        options = [_basic_string(key)]
        if _BARE.fullmatch(key):
            options += [key, key]
        if "'" not in key and all(c == "\t" or " " <= c != "\x7f" for c in key):
            options.append(f"'{key}'")
        return self.rnd.choice(options)

    def dotted(self, keys: list[str]) -> str:
        return f"{self.sp()}.{self.sp()}".join(keys)

    def scalar(self, value: Any) -> str:
        written = tomli_w.dumps({"v": value}, multiline_strings=self.rnd.random() < 0.5)
        return written.removeprefix("v = ").removesuffix("\n")

    def value(self, value: Any) -> str:
        if isinstance(value, dict):
            entries = [
                entry for key, item in value.items() for entry in self.pairs([self.key(key)], item)
            ]
            if not entries:
                return "{" + self.sp() + "}"
            return "{" + self.sp() + f"{self.sp()},{self.sp()}".join(entries) + self.sp() + "}"
        if isinstance(value, list):
            items = [self.value(item) for item in value]
            if self.rnd.random() < 0.4:
                body = "".join(f"\n  {item}{self.sp()},{self.comment()}" for item in items)
                return "[" + self.comment() + body + "\n" + self.comment().strip() + "\n]"
            trailing = "," if items and self.rnd.random() < 0.3 else ""
            return (
                "["
                + self.sp()
                + f"{self.sp()},{self.sp()}".join(items)
                + trailing
                + self.sp()
                + "]"
            )
        return self.scalar(value)

    def pairs(self, keys: list[str], value: Any) -> list[str]:
        """``key = value`` entries; non-empty tables may become dotted keys."""
        if isinstance(value, dict) and value and self.rnd.random() < 0.5:
            return [
                entry
                for key, item in value.items()
                for entry in self.pairs([*keys, self.key(key)], item)
            ]
        return [f"{self.dotted(keys)}{self.sp()}={self.sp()}{self.value(value)}"]

    def style(self, value: Any) -> str:
        if isinstance(value, dict) and self.rnd.random() < 0.5:
            return "table"
        if (
            isinstance(value, list)
            and value
            and all(isinstance(item, dict) for item in value)
            and self.rnd.random() < 0.6
        ):
            return "aot"
        return "pair"

    def table(self, keys: list[str], data: dict[str, Any], header: str | None, aot: bool) -> None:
        styled = [(key, value, self.style(value)) for key, value in data.items()]
        direct = [(key, value) for key, value, style in styled if style == "pair"]
        if header is not None and (
            aot or direct or len(styled) == len(direct) or self.rnd.random() < 0.5
        ):
            self.lines.append(self.sp() + header + self.comment())
        for key, value in direct:
            self.lines.extend(
                self.sp() + pair + self.comment() for pair in self.pairs([self.key(key)], value)
            )
            if self.rnd.random() < 0.2:
                self.lines.append(self.comment())
        for key, value, style in styled:
            sub = [*keys, self.key(key)]
            if style == "table":
                self.table(sub, value, f"[{self.sp()}{self.dotted(sub)}{self.sp()}]", aot=False)
            elif style == "aot":
                for item in value:
                    self.table(sub, item, f"[[{self.sp()}{self.dotted(sub)}{self.sp()}]]", aot=True)


def _basic_string(text: str) -> str:
    return '"' + json.dumps(text, ensure_ascii=False)[1:-1].replace("\x7f", "\\u007f") + '"'


_FINITE_DOCUMENTS = _documents(st.floats(allow_nan=False))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_FINITE_DOCUMENTS, rnd=st.randoms(use_true_random=False), crlf=st.booleans())
def test_every_path_has_its_position_in_varied_styles(
    data: dict[str, Any], rnd: random.Random, crlf: bool
) -> None:
    writer = _Writer(rnd)
    writer.table([], data, header=None, aot=False)
    text = "\n".join(writer.lines) + "\n"
    assert tomllib.loads(text) == data, text
    if crlf:
        text = text.replace("\n", "\r\n")
    positions = key_positions(text)
    for path in data_paths(tomllib.loads(text)):
        assert path in positions, (path, text)
        if isinstance(path[-1], str):
            assert written_key(text_at(text, positions[path])) == path[-1], (path, text)
