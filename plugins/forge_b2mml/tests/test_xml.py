"""Hardened parsing: malformed XML, DTDs (billion laughs, XXE), size limit, wrong namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

from forge_b2mml.validate import load
from forge_b2mml.xml import B2mmlError, parse, version_of

DATA = Path(__file__).parent / "data"
SAMPLES = sorted(DATA.glob("*.xml"))
MAX = 10 * 1024 * 1024


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()



BOMB = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
                   for i in range(1, 10))
        + b"]><ProductionSchedule xmlns=\"http://www.mesa.org/xml/B2MML-V0600\"><ID>&lol9;</ID></ProductionSchedule>")
XXE = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
       b'<ProductionSchedule xmlns="http://www.mesa.org/xml/B2MML-V0600"><ID>&e;</ID></ProductionSchedule>')


def test_billion_laughs_is_refused_without_expanding():
    with pytest.raises(B2mmlError, match="DTD is not allowed") as info:
        parse(BOMB, max_bytes=MAX)
    assert info.value.problems[0].message == "DOCTYPE present"


def test_external_entity_is_refused():
    with pytest.raises(B2mmlError, match="DTD is not allowed"):
        load(XXE, max_bytes=MAX)


def test_size_limit_is_checked_before_parsing():
    big = b"<a>" + b"x" * (50 * 1024 * 1024) + b"</a>"
    with pytest.raises(B2mmlError, match=r"document too large: 52428807 bytes, the limit is 10485760"):
        parse(big, max_bytes=MAX)


def test_malformed_xml_names_the_line():
    with pytest.raises(B2mmlError, match="not well-formed") as info:
        parse(b"<a>\n<b></a>", max_bytes=MAX)
    assert info.value.problems[0].line == 2
    assert "malformed XML" in info.value.problems[0].message


def test_empty_document():
    with pytest.raises(B2mmlError, match="empty document"):
        parse(b"  ", max_bytes=MAX)


def test_wrong_and_missing_namespace():
    data = read("production_schedule.xml")
    with pytest.raises(B2mmlError, match="no namespace") as info:
        load(data.replace(b' xmlns="http://www.mesa.org/xml/B2MML-V0600"', b""), max_bytes=MAX)
    assert info.value.problems[0].path == "/ProductionSchedule"
    with pytest.raises(B2mmlError, match="namespace 'urn:acme'"):
        load(data.replace(b"http://www.mesa.org/xml/B2MML-V0600", b"urn:acme"), max_bytes=MAX)


def test_version_from_namespace():
    assert version_of(parse(read("production_schedule.xml"), max_bytes=MAX)) == "V0600"
    assert version_of(parse(read("v0701_operations_schedule.xml"), max_bytes=MAX)) == "V0701"
