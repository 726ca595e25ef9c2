"""JUnit XML from a results mount: the cases, and hostile files (entities, DTDs, huge files,
links, FIFOs, old files) refused without reading what they point at or expanding anything."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from engine.history import junit
from engine.history.junit import JUnitCase, Refused, collect, parse

PYTEST_LIKE = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
  <testcase classname="tests.test_a" name="test_ok" time="0.012"/>
  <testcase classname="tests.test_a" name="test_bad" time="1.5"><failure message="x">
    assert 1 == 2</failure><system-out>noise</system-out></testcase>
  <testcase classname="tests.test_b" name="test_broken" time="oops"><error/></testcase>
  <testcase classname="tests.test_b" name="test_later"><skipped/></testcase>
</testsuite></testsuites>
"""


def test_cases_with_their_class_time_and_outcome() -> None:
    assert parse(PYTEST_LIKE, "junit.xml") == [
        JUnitCase("test_ok", "tests.test_a", 0.012, "passed", "junit.xml"),
        JUnitCase("test_bad", "tests.test_a", 1.5, "failed", "junit.xml"),
        JUnitCase("test_broken", "tests.test_b", None, "error", "junit.xml"),
        JUnitCase("test_later", "tests.test_b", None, "skipped", "junit.xml"),
    ]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<testsuite><testcase name="&lol3;"/></testsuite>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE t [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<testsuite><testcase name="&secret;"/></testsuite>"""
PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE t [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]>
<testsuite><testcase name="x"/></testsuite>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE testsuite SYSTEM "http://127.0.0.1:9/junit.dtd">
<testsuite><testcase name="x"/></testsuite>"""
UTF16_DTD = '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE t [<!ENTITY a "b">]><t/>'.encode(
    "utf-16"
)


@pytest.mark.parametrize(
    "document",
    [BILLION_LAUGHS, EXTERNAL, PARAMETER, EXTERNAL_DTD, UTF16_DTD],
    ids=["billion-laughs", "external-entity", "parameter-entity", "external-dtd", "utf16-dtd"],
)
def test_any_dtd_is_refused(document: bytes) -> None:
    with pytest.raises(Refused, match="DTD"):
        parse(document)


def test_an_undeclared_entity_is_malformed_not_expanded() -> None:
    with pytest.raises(Refused, match="not well-formed"):
        parse(b'<testsuite><testcase name="&undeclared;"/></testsuite>')


def test_deep_nesting_and_many_attributes_are_just_xml() -> None:
    deep = b"<a>" * 50_000 + b'<testcase name="deep"/>' + b"</a>" * 50_000
    assert [c.name for c in parse(deep)] == ["deep"]


def test_names_are_capped() -> None:
    (case,) = parse(b'<testcase name="' + b"n" * 100_000 + b'" classname="c"/>')
    assert len(case.name) == junit.MAX_TEXT


def test_a_results_mount_is_searched_and_hostile_files_are_skipped(tmp_path: Path) -> None:
    results = tmp_path / "results"
    (results / "sub").mkdir(parents=True)
    (results / "junit.xml").write_bytes(PYTEST_LIKE)
    (results / "sub" / "more.xml").write_bytes(b'<testcase name="nested"/>')
    (results / "notes.txt").write_text("not xml")
    (results / "bomb.xml").write_bytes(BILLION_LAUGHS)
    (results / "broken.xml").write_bytes(b"<testsuite><testcase")
    (results / "passwd.xml").symlink_to("/etc/passwd")
    os.mkfifo(results / "fifo.xml")  # opening it would block: it is never opened
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.xml").write_bytes(b'<testcase name="outside"/>')
    (results / "linked").symlink_to(outside, target_is_directory=True)
    huge = results / "huge.xml"
    with huge.open("wb") as handle:
        handle.truncate(junit.MAX_FILE_BYTES + 1)  # sparse: no disk
    old = results / "old.xml"
    old.write_bytes(b'<testcase name="from-an-earlier-run"/>')
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))

    cases, problems = collect([results], since=time.time() - 60)

    assert sorted(c.name for c in cases) == [
        "nested",
        "test_bad",
        "test_broken",
        "test_later",
        "test_ok",
    ]
    assert {c.file for c in cases} == {"junit.xml", "sub/more.xml"}
    reasons = {Path(p.split(":")[0]).name: p for p in problems}
    assert set(reasons) == {"bomb.xml", "broken.xml", "huge.xml"}
    assert "DTD" in reasons["bomb.xml"]
    assert "more than" in reasons["huge.xml"]


def test_counts_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(junit, "MAX_CASES", 3)
    (tmp_path / "a.xml").write_bytes(b"<s>" + b'<testcase name="t"/>' * 10 + b"</s>")
    cases, problems = collect([tmp_path])
    assert len(cases) <= 3
    assert problems


def test_a_missing_or_linked_results_directory_gives_nothing(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.xml").write_bytes(b'<testcase name="t"/>')
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    assert collect([tmp_path / "missing", tmp_path / "link"]) == ([], [])
