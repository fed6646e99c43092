"""The IntelligentTieringConfiguration document: every filter form parsed and rendered back,
AWS's validation errors, and hostile input (DTDs, entity bombs, encodings, huge numbers)."""

from __future__ import annotations

import pytest

from appliance.engine import TieringConfigRecord
from s3gw.errors import S3Error
from s3gw.tieringxml import check_id, parse_tiering, tiering_xml

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
ARCHIVE = "<Tiering><AccessTier>ARCHIVE_ACCESS</AccessTier><Days>90</Days></Tiering>"


def doc(body: str, cid: str = "c1", status: str = "Enabled") -> bytes:
    return (f"<IntelligentTieringConfiguration {NS}><Id>{cid}</Id>{body}<Status>{status}</Status>"
            f"</IntelligentTieringConfiguration>").encode()


def code_of(body: bytes) -> str:
    with pytest.raises(S3Error) as e:
        parse_tiering(body, "bkt", "c1")
    return e.value.code


@pytest.mark.parametrize("filt,prefix,tags", [
    ("", "", {}),
    ("<Filter><Prefix>logs/</Prefix></Filter>", "logs/", {}),
    ("<Filter><Tag><Key>t</Key><Value>v</Value></Tag></Filter>", "", {"t": "v"}),
    ("<Filter><And><Prefix>p/</Prefix><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>b</Key><Value>2</Value>"
     "</Tag></And></Filter>", "p/", {"a": "1", "b": "2"}),
])
def test_filters_round_trip(filt: str, prefix: str, tags: dict[str, str]) -> None:
    rec = parse_tiering(doc(filt + ARCHIVE), "bkt", "c1")
    assert rec == TieringConfigRecord("bkt", "c1", "Enabled", prefix, tags, 90, 0)
    again = parse_tiering(f"<IntelligentTieringConfiguration>{tiering_xml(rec)}</IntelligentTieringConfiguration>"
                          .encode(), "bkt", "c1")
    assert again == rec


@pytest.mark.parametrize("body,code", [
    (doc(""), "MalformedXML"),  # no Tiering
    (doc(ARCHIVE, status="enabled"), "MalformedXML"),
    (doc(ARCHIVE + "<Bogus/>"), "MalformedXML"),
    (doc("<Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter>" + ARCHIVE), "MalformedXML"),
    (doc("<Filter><And></And></Filter>" + ARCHIVE), "MalformedXML"),
    (doc("<Tiering><AccessTier>ARCHIVE_ACCESS</AccessTier><Days>-90</Days></Tiering>"), "MalformedXML"),
    (doc("<Tiering><AccessTier>ARCHIVE_ACCESS</AccessTier><Days>" + "9" * 400 + "</Days></Tiering>"),
     "MalformedXML"),
    (doc("<Tiering><AccessTier>ARCHIVE_ACCESS</AccessTier><Days>731</Days></Tiering>"), "InvalidArgument"),
    (doc(ARCHIVE, cid="c2"), "InvalidArgument"),
    (doc("<Filter><And><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>a</Key><Value>2</Value></Tag></And>"
         "</Filter>" + ARCHIVE), "InvalidArgument"),
    (doc("<Filter><Tag><Key></Key><Value>v</Value></Tag></Filter>" + ARCHIVE), "InvalidTag"),
    # an entity bomb: refused at the DOCTYPE, nothing is expanded
    (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
     b"<IntelligentTieringConfiguration><Id>&b;</Id></IntelligentTieringConfiguration>", "MalformedXML"),
    (b"\xff\xfe<Intelligent", "MalformedXML"),
    (b"<LifecycleConfiguration/>", "MalformedXML"),
])
def test_validation_and_hostile_input(body: bytes, code: str) -> None:
    assert code_of(body) == code


def test_the_id_parameter() -> None:
    for bad in (None, "", "x" * 65):
        with pytest.raises(S3Error) as e:
            check_id(bad)
        assert e.value.code == "InvalidArgument"
    assert check_id("x" * 64) == "x" * 64
