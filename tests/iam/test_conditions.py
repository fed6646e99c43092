"""Condition operators: invariants over random values (hypothesis), and request-value parsing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.iam.conditions import Condition, parse_conditions, parse_date, parse_ip, parse_number

PAIRS = [
    ("StringEquals", "StringNotEquals"),
    ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"),
    ("StringLike", "StringNotLike"),
    ("NumericEquals", "NumericNotEquals"),
    ("DateEquals", "DateNotEquals"),
    ("IpAddress", "NotIpAddress"),
    ("ArnEquals", "ArnNotEquals"),
    ("ArnLike", "ArnNotLike"),
]

POLICY_VALUES = {
    "String": st.text(alphabet="aAb*?", max_size=4),
    "Numeric": st.integers(-3, 3).map(str),
    "Date": st.sampled_from(["2024-01-01", "2024-01-01T00:00:00Z", "1704067200", "2025-06-01T12:00:00+02:00"]),
    "Ip": st.sampled_from(["10.0.0.0/8", "10.1.2.3", "2001:db8::/32", "0.0.0.0/0"]),
    "Arn": st.sampled_from(["arn:aws:s3:::b", "arn:aws:s3:::*", "arn:aws:iam::*:user/a*", "*"]),
}
REQUEST_VALUES = {
    "String": st.text(alphabet="aAb*?", max_size=4),
    "Numeric": st.sampled_from(["-3", "0", "1", "2.0", "x", "1e1"]),
    "Date": st.sampled_from(["2024-01-01T00:00:00Z", "1704067200", "2026-01-01", "never"]),
    "Ip": st.sampled_from(["10.9.9.9", "192.0.2.1", "2001:db8::1", "::ffff:10.0.0.1", "nope"]),
    "Arn": st.sampled_from(["arn:aws:s3:::b", "arn:aws:iam::000000000000:user/al", "arn:aws:s3:x:::b", "b"]),
}


def family(op: str) -> str:
    return next(f for f in POLICY_VALUES if op.startswith(f) or op.startswith("Not" + f))


def one(op: str, values: list[str], key: str = "k:x") -> Condition:
    (c,) = parse_conditions({op: {key: values}}, variables=True)
    return c


@st.composite
def pair_and_values(draw: st.DrawFn) -> tuple[str, str, list[str], list[str]]:
    positive, negative = draw(st.sampled_from(PAIRS))
    fam = family(positive)
    policy_values = draw(st.lists(POLICY_VALUES[fam], min_size=1, max_size=3))
    request_values = draw(st.lists(REQUEST_VALUES[fam], min_size=0, max_size=3))
    return positive, negative, policy_values, request_values


@settings(max_examples=600, deadline=None)
@given(case=pair_and_values())
def test_negated_operator_is_the_complement(case: tuple[str, str, list[str], list[str]]) -> None:
    positive, negative, policy_values, request_values = case
    ctx = {"k:x": tuple(request_values)}
    pos, neg = one(positive, policy_values), one(negative, policy_values)
    assert neg.holds(ctx) == (not pos.holds(ctx))
    # IfExists: a missing key satisfies both; a present one behaves as without IfExists.
    for op, plain in ((positive, pos), (negative, neg)):
        if_exists = one(op + "IfExists", policy_values)
        assert if_exists.holds(ctx) == (True if not request_values else plain.holds(ctx))


@settings(max_examples=600, deadline=None)
@given(case=pair_and_values())
def test_set_qualifiers(case: tuple[str, str, list[str], list[str]]) -> None:
    positive, negative, policy_values, request_values = case
    ctx = {"k:x": tuple(request_values)}
    for op in (positive, negative):
        single = [one(op, policy_values).holds({"k:x": (v,)}) for v in request_values]
        assert one("ForAllValues:" + op, policy_values).holds(ctx) == all(single)
        assert one("ForAnyValue:" + op, policy_values).holds(ctx) == any(single)


def test_missing_key() -> None:
    for positive, negative in PAIRS:
        values = ["10.0.0.0/8"] if "Ip" in positive else ["1"] if "Numeric" in positive else (
            ["2024-01-01"] if "Date" in positive else ["arn:aws:s3:::b"] if "Arn" in positive else ["a"])
        assert not one(positive, values).holds({})
        assert one(negative, values).holds({})
        assert one("ForAllValues:" + positive, values).holds({})
        assert one("ForAllValues:" + negative, values).holds({})
        assert not one("ForAnyValue:" + positive, values).holds({})
        assert not one("ForAnyValue:" + negative, values).holds({})
    assert one("Null", ["true"]).holds({}) and not one("Null", ["true"]).holds({"k:x": ("v",)})
    assert one("Null", ["false"]).holds({"k:x": ("v",)}) and not one("Null", ["false"]).holds({})
    assert one("Null", ["true", "false"]).holds({})


def test_request_value_parsing() -> None:
    assert parse_number("1e3") == 1000 and parse_number("-.5") == -0.5
    assert parse_number("NaN") is None and parse_number("Infinity") is None and parse_number("0x10") is None
    assert parse_date("2024-06-01T12:00:00Z") == parse_date("1717243200") == parse_date("2024-06-01T14:00:00+02:00")
    assert parse_date("2024-06-01") == parse_date("2024-06-01T00:00:00Z")
    assert parse_date("yesterday") is None and parse_date("9" * 100) is None
    assert parse_ip("192.0.2.1") == (4, 0xC0000201) == parse_ip("::ffff:192.0.2.1")
    assert parse_ip("2001:db8::1") == (6, 0x20010DB8 << 96 | 1)
    assert parse_ip("192.0.2.1/32") is None and parse_ip("") is None and parse_ip("fe80::1%eth0") is None
