"""The ReplicationConfiguration parser against hostile and malformed documents (no daemon)."""

from __future__ import annotations

import pytest

from s3gw.errors import S3Error
from s3gw.ops_replication import MAX_RULES, parse_replication, render

DEST = "<Destination><Bucket>arn:stowage:s3::boxb:dst</Bucket></Destination>"
DMR = "<DeleteMarkerReplication><Status>Enabled</Status></DeleteMarkerReplication>"


def rule(body: str = "", *, rid: str = "r", priority: str = "1", status: str = "Enabled", dest: str = DEST,
         filt: str = "<Filter><Prefix>a/</Prefix></Filter>", dmr: str = DMR) -> str:
    p = f"<Priority>{priority}</Priority>" if priority else ""
    return f"<Rule><ID>{rid}</ID>{p}<Status>{status}</Status>{filt}{dmr}{body}{dest}</Rule>"


def doc(*rules: str) -> bytes:
    return ("<ReplicationConfiguration><Role>arn:aws:iam::1:role/r</Role>" + "".join(rules)
            + "</ReplicationConfiguration>").encode()


def code(body: bytes) -> str:
    with pytest.raises(S3Error) as err:
        parse_replication(body)
    return err.value.code


def test_round_trip() -> None:
    tags = "<Filter><And><Prefix>p/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></And></Filter>"
    cfg = parse_replication(doc(
        rule(),
        rule("<ExistingObjectReplication><Status>Enabled</Status></ExistingObjectReplication>", rid="t", priority="2",
             filt=tags, dmr="<DeleteMarkerReplication><Status>Disabled</Status></DeleteMarkerReplication>"),
        rule(rid="v1", priority="", filt="<Prefix>old/</Prefix>", dmr="")))
    a, t, v1 = cfg.rules
    assert (a.prefix, a.delete_markers, a.target, a.dest_bucket) == ("a/", True, "boxb", "dst")
    assert (t.prefix, t.tags, t.existing_objects, t.delete_markers) == ("p/", {"k": "v"}, True, False)
    assert (v1.prefix, v1.has_filter) == ("old/", False)
    assert parse_replication(render(cfg)) == cfg
    # the highest priority rule per destination applies
    assert [r.id for r in cfg.rules_for("p/x", {"k": "v"})] == ["t"]


@pytest.mark.parametrize("body", [
    b"", b"<x/>", doc(), b"\xff\xfe", doc("<Other/>"),
    b'<!DOCTYPE r [<!ENTITY a "aaaa">]><ReplicationConfiguration>&a;</ReplicationConfiguration>',
    doc(rule(status="Sometimes")),
    doc(rule(dest="")),
    doc(rule(priority="one")),
    doc(rule(filt="<Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter>")),  # needs And
    doc(rule(filt="<Filter><ObjectSizeGreaterThan>1</ObjectSizeGreaterThan></Filter>")),  # not in the schema
])
def test_malformed(body: bytes) -> None:
    assert code(body) == "MalformedXML"


@pytest.mark.parametrize("body,expected", [
    (doc(rule(dest="<Destination><Bucket>arn:aws:s3:::dst</Bucket></Destination>")), "InvalidArgument"),
    (doc(rule(rid="x"), rule(rid="x", priority="2")), "InvalidArgument"),
    (doc(rule(rid="x"), rule(rid="y")), "InvalidRequest"),  # duplicate priority
    (doc(rule(dmr="")), "InvalidRequest"),  # a Filter rule needs DeleteMarkerReplication
    (doc(rule(filt="<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>")), "InvalidRequest"),
    (doc(rule(dest="<Destination><Bucket>arn:stowage:s3::b:d</Bucket><ReplicationTime><Status>Enabled</Status>"
                   "<Time><Minutes>15</Minutes></Time></ReplicationTime></Destination>")), "NotImplemented"),
    (doc(rule("<SourceSelectionCriteria><ReplicaModifications><Status>Enabled</Status></ReplicaModifications>"
              "</SourceSelectionCriteria>")), "NotImplemented"),
    (doc(*[rule(rid=str(i), priority=str(i)) for i in range(MAX_RULES + 1)]), "InvalidRequest"),
    # exclusions (Not) are not implemented: a rule stored without them would replicate what they exclude
    (doc(rule(filt="<Filter><Not><Prefix>tmp/</Prefix></Not></Filter>")), "NotImplemented"),
    (doc(rule(filt="<Filter><And><Prefix>a/</Prefix><Not><Or><Prefixes>a/tmp/</Prefixes></Or></Not></And>"
                   "</Filter>")), "NotImplemented"),
])
def test_refused(body: bytes, expected: str) -> None:
    assert code(body) == expected
