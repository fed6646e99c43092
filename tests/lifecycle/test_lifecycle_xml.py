"""The lifecycle document: every element of the rule language parsed and rendered back, AWS's
validation errors, and hostile input (sizes, encodings, DTDs and entity bombs)."""

from __future__ import annotations

import pytest

from appliance.engine import LifecycleRule, NoncurrentTransition, RuleFilter, Transition
from s3gw.errors import S3Error
from s3gw.lifecyclexml import lifecycle_xml, parse_lifecycle

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def doc(*rules: str) -> bytes:
    return f'<LifecycleConfiguration {NS}>{"".join(rules)}</LifecycleConfiguration>'.encode()


def rule(body: str, *, rid: str = "r1", status: str = "Enabled", filt: str = "<Filter></Filter>") -> str:
    return f"<Rule><ID>{rid}</ID>{filt}<Status>{status}</Status>{body}</Rule>"


def code_of(body: bytes) -> str:
    with pytest.raises(S3Error) as e:
        parse_lifecycle(body)
    return e.value.code


def test_the_whole_language_round_trips() -> None:
    full = rule(
        "<Transition><Days>30</Days><StorageClass>STANDARD_IA</StorageClass></Transition>"
        "<Transition><Days>90</Days><StorageClass>GLACIER</StorageClass></Transition>"
        "<Expiration><Days>365</Days></Expiration>"
        "<NoncurrentVersionTransition><NoncurrentDays>30</NoncurrentDays><StorageClass>GLACIER_IR</StorageClass>"
        "<NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionTransition>"
        "<NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays>"
        "<NewerNoncurrentVersions>3</NewerNoncurrentVersions></NoncurrentVersionExpiration>",
        filt="<Filter><And><Prefix>logs/</Prefix><Tag><Key>a</Key><Value>1</Value></Tag>"
             "<ObjectSizeGreaterThan>100</ObjectSizeGreaterThan><ObjectSizeLessThan>9000</ObjectSizeLessThan>"
             "</And></Filter>")
    others = [
        rule("<Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration>", rid="date",
             filt="<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>"),
        rule("<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"
             "<AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation>"
             "</AbortIncompleteMultipartUpload>", rid="markers", status="Disabled",
             filt="<Filter><Prefix>tmp/</Prefix></Filter>"),
        "<Rule><ID>legacy</ID><Prefix>old/</Prefix><Status>Enabled</Status>"
        "<Expiration><Days>1</Days></Expiration></Rule>",
        rule("<Expiration><Days>5</Days></Expiration>", rid="big",
             filt="<Filter><ObjectSizeGreaterThan>1048576</ObjectSizeGreaterThan></Filter>"),
    ]
    rules = parse_lifecycle(doc(full, *others))
    assert rules[0] == LifecycleRule(
        "r1", True, RuleFilter("And", "logs/", {"a": "1"}, 100, 9000), 365, "", None,
        [Transition("STANDARD_IA", 30), Transition("GLACIER", 90)], 7, 3,
        [NoncurrentTransition("GLACIER_IR", 30, 2)], None)
    assert rules[1].expiration_date == "2030-01-01T00:00:00.000Z" and rules[1].filter.tags == {"k": "v"}
    assert (rules[2].enabled, rules[2].expired_object_delete_marker, rules[2].abort_days) == (False, True, 2)
    assert rules[3].filter == RuleFilter("prefix", "old/")
    assert rules[4].filter.size_gt == 1048576
    assert parse_lifecycle(lifecycle_xml(rules)) == rules  # rendered as put


def test_a_rule_without_an_id_gets_one() -> None:
    r = parse_lifecycle(doc("<Rule><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"
                            "</Rule>"))
    assert len(r[0].id) > 10


@pytest.mark.parametrize("body,code", [
    (doc(), "MalformedXML"),  # no rule
    (doc(rule("<Expiration><Days>1</Days></Expiration>", status="On")), "MalformedXML"),
    (doc(rule("<Expiration><Days>1</Days><Date>2030-01-01T00:00:00Z</Date></Expiration>")), "MalformedXML"),
    (doc(rule("<Expiration><Days>x</Days></Expiration>")), "MalformedXML"),
    (doc(rule("<Expiration><Days>0</Days></Expiration>")), "InvalidArgument"),
    (doc(rule("<Expiration><Days>-3</Days></Expiration>")), "InvalidArgument"),
    (doc(rule("<Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration>")), "InvalidArgument"),
    (doc(rule("<Expiration><Date>soon</Date></Expiration>")), "InvalidArgument"),
    (doc(rule("")), "InvalidArgument"),  # no action
    (doc(rule("<Expiration><Days>1</Days></Expiration>", filt="")), "MalformedXML"),  # no Filter nor Prefix
    (doc("<Rule><ID>a</ID><Prefix>x</Prefix><Filter/><Status>Enabled</Status>"
         "<Expiration><Days>1</Days></Expiration></Rule>"), "MalformedXML"),  # both
    (doc(rule("<Expiration><Days>1</Days></Expiration>",
              filt="<Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter>")), "MalformedXML"),
    (doc(rule("<Expiration><Days>1</Days></Expiration>", filt="<Filter><And></And></Filter>")), "MalformedXML"),
    (doc(rule("<Expiration><Days>1</Days></Expiration>"), rule("<Expiration><Days>2</Days></Expiration>")),
     "InvalidArgument"),  # the same ID twice
    (doc(rule("<Expiration><Days>1</Days></Expiration>", rid="x" * 256)), "InvalidArgument"),
    (doc(rule("<Transition><Days>10</Days><StorageClass>STANDARD_IA</StorageClass></Transition>")),
     "InvalidArgument"),  # the 30-day minimum
    (doc(rule("<Transition><Days>10</Days><StorageClass>STANDARD</StorageClass></Transition>")),
     "InvalidStorageClass"),
    (doc(rule("<Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>"
              "<Transition><Days>2</Days><StorageClass>GLACIER</StorageClass></Transition>")), "InvalidArgument"),
    (doc(rule("<Transition><Days>100</Days><StorageClass>GLACIER</StorageClass></Transition>"
              "<Expiration><Days>50</Days></Expiration>")), "InvalidArgument"),
    (doc(rule("<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays>"
              "<NewerNoncurrentVersions>101</NewerNoncurrentVersions></NoncurrentVersionExpiration>")),
     "InvalidArgument"),
    (doc(rule("<NoncurrentVersionExpiration><NewerNoncurrentVersions>1</NewerNoncurrentVersions>"
              "</NoncurrentVersionExpiration>")), "MalformedXML"),
    (doc(rule("<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>",
              filt="<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>")), "InvalidArgument"),
    (doc(rule("<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
              "</AbortIncompleteMultipartUpload>", filt="<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>")),
     "InvalidArgument"),
    (doc(rule("<Expiration><Days>1</Days></Expiration>", filt="<Filter><And><Tag><Key>k</Key><Value>1</Value>"
              "</Tag><Tag><Key>k</Key><Value>2</Value></Tag></And></Filter>")), "InvalidArgument"),
    (doc(rule("<Expiration><Days>1</Days></Expiration>", filt="<Filter><And><ObjectSizeGreaterThan>9"
              "</ObjectSizeGreaterThan><ObjectSizeLessThan>5</ObjectSizeLessThan></And></Filter>")),
     "InvalidArgument"),
    (doc(rule("<Expiration><Days>1</Days></Expiration><Surprise/>")), "MalformedXML"),
    (doc(rule("<Expiration><Days>1</Days></Expiration><Expiration><Days>2</Days></Expiration>")), "MalformedXML"),
    (doc(*[rule("<Expiration><Days>1</Days></Expiration>", rid=f"r{i}") for i in range(1001)]), "MalformedXML"),
])
def test_aws_validation_errors(body: bytes, code: str) -> None:
    assert code_of(body) == code


@pytest.mark.parametrize("body", [
    b"",
    b"not xml",
    b"<LifecycleConfiguration>",
    doc(rule("<Expiration><Days>1</Days></Expiration>")).replace(b"LifecycleConfiguration", b"Other"),
    # an entity bomb: refused at the DOCTYPE, nothing is expanded
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><LifecycleConfiguration><Rule><ID>&c;</ID></Rule>'
    b'</LifecycleConfiguration>',
    b'<!DOCTYPE l SYSTEM "file:///etc/passwd"><LifecycleConfiguration/>',
    b"\xff\xfe\x00garbage",
    doc(rule("<Expiration><Days>" + "9" * 40 + "</Days></Expiration>")),  # absurd numbers
])
def test_hostile_input_is_malformed(body: bytes) -> None:
    assert code_of(body) == "MalformedXML"


def test_other_encodings_are_read_as_xml_says() -> None:
    utf8 = doc(rule("<Expiration><Days>1</Days></Expiration>", filt="<Filter><Prefix>é</Prefix></Filter>"))
    assert parse_lifecycle(utf8.decode().encode("utf-16")) == parse_lifecycle(utf8)  # with its BOM
    assert code_of(utf8.replace("é".encode(), b"\xe9")) == "MalformedXML"  # not UTF-8: refused


def test_unicode_prefixes_and_tags_survive() -> None:
    r = parse_lifecycle(doc(rule("<Expiration><Days>1</Days></Expiration>",
                                 filt="<Filter><And><Prefix>журнал/ü</Prefix><Tag><Key>ключ</Key>"
                                      "<Value>&lt;v&gt;</Value></Tag></And></Filter>")))
    assert r[0].filter.prefix == "журнал/ü" and r[0].filter.tags == {"ключ": "<v>"}
    assert parse_lifecycle(lifecycle_xml(r)) == r
