"""The Condition element: operators, set qualifiers, and how AWS evaluates them.

A Condition block maps operators to {key: value-or-values}. AWS's rules, all reproduced here:

- operators AND together, keys under one operator AND together, the values of one key OR
  together (and a negated operator, such as StringNotEquals, holds when none of them matches);
- condition keys are case-insensitive, values are case-sensitive unless the operator ignores
  case;
- a key missing from the request makes a condition false, except that a negated operator is
  then true, `...IfExists` is then true, `ForAllValues:` is then true and `ForAnyValue:` false;
- `ForAllValues:` holds when every value of a multivalued key satisfies the operator,
  `ForAnyValue:` when at least one does; a negated operator under a qualifier is applied to each
  request value (ForAllValues:StringNotEquals: no request value is any of the listed values);
- without a qualifier a multivalued key is satisfied when any of its values matches (and the
  negated operator when none does), so the negated operator is always the exact complement;
- Null is true for "true" when the key is absent and for "false" when it is present.

A request value that cannot be read by the operator (a number that is not one, an address that
is not an IP) matches no policy value.
"""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
import math
import operator
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol

from .document import MalformedPolicy, object_of, quote, text_of
from .patterns import Context, GlobSet, Item, Pattern, Wild

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Family(enum.Enum):
    STRING = "String"
    STRING_LIKE = "StringLike"
    NUMERIC = "Numeric"
    DATE = "Date"
    BOOL = "Bool"
    BINARY = "Binary"
    IP = "Ip"
    ARN = "Arn"
    NULL = "Null"


@dataclass(frozen=True, slots=True)
class _OpSpec:
    family: Family
    negate: bool = False
    ignore_case: bool = False
    compare: Callable[[Decimal, Decimal], bool] = operator.eq


_OPERATORS: dict[str, _OpSpec] = {
    "StringEquals": _OpSpec(Family.STRING),
    "StringNotEquals": _OpSpec(Family.STRING, negate=True),
    "StringEqualsIgnoreCase": _OpSpec(Family.STRING, ignore_case=True),
    "StringNotEqualsIgnoreCase": _OpSpec(Family.STRING, negate=True, ignore_case=True),
    "StringLike": _OpSpec(Family.STRING_LIKE),
    "StringNotLike": _OpSpec(Family.STRING_LIKE, negate=True),
    "NumericEquals": _OpSpec(Family.NUMERIC),
    "NumericNotEquals": _OpSpec(Family.NUMERIC, negate=True),
    "NumericLessThan": _OpSpec(Family.NUMERIC, compare=operator.lt),
    "NumericLessThanEquals": _OpSpec(Family.NUMERIC, compare=operator.le),
    "NumericGreaterThan": _OpSpec(Family.NUMERIC, compare=operator.gt),
    "NumericGreaterThanEquals": _OpSpec(Family.NUMERIC, compare=operator.ge),
    "DateEquals": _OpSpec(Family.DATE),
    "DateNotEquals": _OpSpec(Family.DATE, negate=True),
    "DateLessThan": _OpSpec(Family.DATE, compare=operator.lt),
    "DateLessThanEquals": _OpSpec(Family.DATE, compare=operator.le),
    "DateGreaterThan": _OpSpec(Family.DATE, compare=operator.gt),
    "DateGreaterThanEquals": _OpSpec(Family.DATE, compare=operator.ge),
    "Bool": _OpSpec(Family.BOOL),
    "BinaryEquals": _OpSpec(Family.BINARY),
    "IpAddress": _OpSpec(Family.IP),
    "NotIpAddress": _OpSpec(Family.IP, negate=True),
    # AWS documents ArnEquals and ArnLike as the same test: six colon-separated parts, each
    # matched with wildcards.
    "ArnEquals": _OpSpec(Family.ARN),
    "ArnLike": _OpSpec(Family.ARN),
    "ArnNotEquals": _OpSpec(Family.ARN, negate=True),
    "ArnNotLike": _OpSpec(Family.ARN, negate=True),
    "Null": _OpSpec(Family.NULL),
}

FOR_ANY_VALUE = "ForAnyValue"
FOR_ALL_VALUES = "ForAllValues"

# Tag keys (s3:ExistingObjectTag/<k>) may hold spaces and most punctuation; control characters
# never appear in a key.
_KEY_RE = re.compile(r"[A-Za-z0-9_.-]+:[^\x00-\x1f\x7f]+")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_MAX_SCALAR = 64  # numbers and dates longer than this are not numbers or dates


def parse_number(text: str) -> Decimal | None:
    if len(text) > _MAX_SCALAR or _NUMBER_RE.fullmatch(text) is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def parse_date(text: str) -> Decimal | None:
    """Seconds since the epoch, from epoch seconds or an ISO 8601 date/time (naive = UTC)."""
    if len(text) > _MAX_SCALAR:
        return None
    number = parse_number(text)
    if number is not None:
        return number
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = when.timestamp()
    return Decimal(repr(seconds)) if math.isfinite(seconds) else None


_V4_MAPPED = bytes(10) + b"\xff\xff"


def parse_ip(text: str) -> tuple[int, int] | None:
    """(IP version, address as an integer), by the C parser: this runs on every request whose
    policies test aws:SourceIp, and the ipaddress module's pure-Python parser costs microseconds."""
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text))
    except (OSError, ValueError):
        pass
    try:
        packed = socket.inet_pton(socket.AF_INET6, text)
    except (OSError, ValueError):
        return None
    # A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; policies name them as IPv4.
    if packed.startswith(_V4_MAPPED):
        return 4, int.from_bytes(packed[12:])
    return 6, int.from_bytes(packed)


class _Matcher(Protocol):
    def test(self, value: str, ctx: Context) -> bool:
        """Whether one request value matches any of the policy's values (the positive test)."""
        ...


class _StringEquals:
    __slots__ = ("_fixed", "_fold", "_templates")

    def __init__(self, patterns: Sequence[Pattern], fold: bool) -> None:
        self._fold = fold
        self._fixed = frozenset(p.literal.lower() if fold else p.literal for p in patterns if not p.has_vars)
        self._templates = tuple(p for p in patterns if p.has_vars)

    def test(self, value: str, ctx: Context) -> bool:
        if self._fold:
            value = value.lower()
        if value in self._fixed:
            return True
        for t in self._templates:
            text = t.resolve_text(ctx)
            if text is not None and (text.lower() if self._fold else text) == value:
                return True
        return False


class _StringLike:
    __slots__ = ("_globs",)

    def __init__(self, patterns: Sequence[Pattern]) -> None:
        self._globs = GlobSet(patterns)

    def test(self, value: str, ctx: Context) -> bool:
        return self._globs.matches(value, ctx)


class _Ordered:
    """Numeric and date operators: parse the request value, compare with each policy value."""

    __slots__ = ("_compare", "_parse", "_values")

    def __init__(self, values: Sequence[Decimal], compare: Callable[[Decimal, Decimal], bool],
                 parse: Callable[[str], Decimal | None]) -> None:
        self._values = tuple(values)
        self._compare = compare
        self._parse = parse

    def test(self, value: str, ctx: Context) -> bool:
        x = self._parse(value)
        if x is None:
            return False
        compare = self._compare
        return any(compare(x, v) for v in self._values)


class _Bool:
    __slots__ = ("_values",)

    def __init__(self, values: Sequence[str]) -> None:
        self._values = frozenset(v.lower() for v in values)

    def test(self, value: str, ctx: Context) -> bool:
        return value.lower() in self._values


class _Binary:
    __slots__ = ("_values",)

    def __init__(self, values: Sequence[bytes]) -> None:
        self._values = frozenset(values)

    def test(self, value: str, ctx: Context) -> bool:
        data = _b64(value)
        return data is not None and data in self._values


class _Ip:
    __slots__ = ("_networks",)

    def __init__(self, networks: Sequence[IpNetwork]) -> None:
        self._networks = tuple((n.version, int(n.network_address), int(n.netmask)) for n in networks)

    def test(self, value: str, ctx: Context) -> bool:
        addr = parse_ip(value)
        if addr is None:
            return False
        version, x = addr
        return any(v == version and x & mask == net for v, net, mask in self._networks)


_ARN_PARTS = 6


def split_arn_pattern(pattern: Pattern) -> tuple[Pattern, ...] | None:
    """The six colon-separated parts of an ARN pattern (the last may hold colons), or None."""
    parts: list[list[Item]] = [[]]
    for it in pattern.items:
        if isinstance(it, str) and len(parts) < _ARN_PARTS:
            pieces = it.split(":", _ARN_PARTS - len(parts))
            parts[-1].append(pieces[0])
            parts.extend([p] for p in pieces[1:])
        else:
            parts[-1].append(it)
    if len(parts) != _ARN_PARTS:
        return None
    return tuple(Pattern(tuple(it for it in part if it != "")) for part in parts)


class _Arn:
    __slots__ = ("_anything", "_patterns")

    def __init__(self, patterns: Sequence[Pattern]) -> None:
        self._anything = any(p.items == (Wild.ANY,) for p in patterns)
        split = (split_arn_pattern(p) for p in patterns if p.items != (Wild.ANY,))
        self._patterns = tuple(s for s in split if s is not None)

    def test(self, value: str, ctx: Context) -> bool:
        if self._anything:
            return True
        parts = value.split(":", _ARN_PARTS - 1)
        if len(parts) != _ARN_PARTS:
            return False
        return any(all(p.matches(v, ctx) for p, v in zip(segs, parts, strict=True)) for segs in self._patterns)


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Condition:
    """One (operator, key, values) test of a statement's Condition block."""

    operator: str  # as written in the policy, e.g. "ForAnyValue:StringLikeIfExists"
    family: Family
    key: str  # lower-cased
    values: tuple[str, ...]  # as written (for the public-policy analysis)
    qualifier: str | None
    if_exists: bool
    negate: bool
    matcher: _Matcher | None  # None for Null
    null_when: frozenset[bool] = frozenset()
    # the values that hold policy variables (${aws:username}): for a negated operator, a value
    # whose variable has no value must not make the condition true (policy.Statement.applies)
    templates: tuple[Pattern, ...] = ()

    def holds(self, ctx: Context) -> bool:
        values = ctx.get(self.key)
        if self.matcher is None:
            return (not values) in self.null_when
        if not values:
            if self.if_exists or self.qualifier == FOR_ALL_VALUES:
                return True
            if self.qualifier == FOR_ANY_VALUE:
                return False
            return self.negate
        test = self.matcher.test
        if self.qualifier is None:
            for v in values:
                if test(v, ctx):
                    return not self.negate
            return self.negate
        if self.qualifier == FOR_ALL_VALUES:
            return all(test(v, ctx) != self.negate for v in values)
        return any(test(v, ctx) != self.negate for v in values)


def _split_operator(text: str) -> tuple[str | None, _OpSpec, bool]:
    qualifier: str | None = None
    name = text
    for q in (FOR_ANY_VALUE, FOR_ALL_VALUES):
        if name.startswith(q + ":"):
            qualifier, name = q, name[len(q) + 1 :]
            break
    if_exists = name.endswith("IfExists") and name != "IfExists"
    base = name[: -len("IfExists")] if if_exists else name
    spec = _OPERATORS.get(base)
    if spec is None or (spec.family is Family.NULL and (if_exists or qualifier is not None)):
        raise MalformedPolicy(f"Invalid Condition type : {quote(text)}")
    return qualifier, spec, if_exists


def _condition_values(raw: object, where: str) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise MalformedPolicy(f"{where} must have at least one value")
    out: list[str] = []
    for v in items:
        if isinstance(v, bool):
            out.append("true" if v else "false")
        elif isinstance(v, str):
            out.append(text_of(str(v), where))
        else:
            raise MalformedPolicy(f"{where} values must be strings, numbers or booleans")
    return tuple(out)


def _matcher(spec: _OpSpec, values: tuple[str, ...], variables: bool, where: str) -> _Matcher:
    def bad(v: str, what: str) -> MalformedPolicy:
        return MalformedPolicy(f"{where}: {quote(v)} is not {what}")

    fam = spec.family
    if fam is Family.STRING:
        return _StringEquals([Pattern.parse(v, wildcards=False, variables=variables) for v in values],
                             spec.ignore_case)
    if fam is Family.STRING_LIKE:
        return _StringLike([Pattern.parse(v, wildcards=True, variables=variables) for v in values])
    if fam is Family.NUMERIC or fam is Family.DATE:
        parse = parse_number if fam is Family.NUMERIC else parse_date
        parsed: list[Decimal] = []
        for v in values:
            x = parse(v)
            if x is None:
                raise bad(v, "a number" if fam is Family.NUMERIC else "a date")
            parsed.append(x)
        return _Ordered(parsed, spec.compare, parse)
    if fam is Family.BOOL:
        for v in values:
            if v.lower() not in ("true", "false"):
                raise bad(v, "a boolean (true or false)")
        return _Bool(values)
    if fam is Family.BINARY:
        decoded: list[bytes] = []
        for v in values:
            data = _b64(v)
            if data is None:
                raise bad(v, "base64")
            decoded.append(data)
        return _Binary(decoded)
    if fam is Family.IP:
        networks: list[IpNetwork] = []
        for v in values:
            try:
                networks.append(ipaddress.ip_network(v, strict=False))
            except ValueError:
                raise bad(v, "an IP address or CIDR block") from None
        return _Ip(networks)
    if fam is Family.ARN:
        patterns = [Pattern.parse(v, wildcards=True, variables=variables) for v in values]
        for v, p in zip(values, patterns, strict=True):
            if p.items != (Wild.ANY,) and (not v.startswith("arn:") or split_arn_pattern(p) is None):
                raise bad(v, "an ARN")
        return _Arn(patterns)
    raise AssertionError(fam)


# The operator families whose values may hold policy variables.
_TEMPLATED = frozenset({Family.STRING, Family.STRING_LIKE, Family.ARN})


def parse_conditions(raw: object, *, variables: bool) -> tuple[Condition, ...]:
    """The statement's Condition element; `variables` is False for Version 2008-10-17."""
    block = object_of(raw, "Condition")
    out: list[Condition] = []
    for op_text, body in block.items():
        qualifier, spec, if_exists = _split_operator(op_text)
        keys = object_of(body, f"Condition {quote(op_text)}")
        if not keys:
            raise MalformedPolicy(f"Condition {quote(op_text)} must name at least one condition key")
        for key, raw_values in keys.items():
            if len(key) > 256 or _KEY_RE.fullmatch(key) is None:
                raise MalformedPolicy(f"Policy has an invalid condition key: {quote(key)} "
                                      "(keys are prefaced by a vendor, e.g. aws:SourceIp)")
            where = f"Condition {quote(op_text)} key {quote(key)}"
            values = _condition_values(raw_values, where)
            if spec.family is Family.NULL:
                for v in values:
                    if v.lower() not in ("true", "false"):
                        raise MalformedPolicy(f"{where}: {quote(v)} is not a boolean (true or false)")
                out.append(Condition(op_text, spec.family, key.lower(), values, None, False, False, None,
                                     frozenset(v.lower() == "true" for v in values)))
                continue
            matcher = _matcher(spec, values, variables, where)
            templates: tuple[Pattern, ...] = ()
            if variables and spec.family in _TEMPLATED:
                parsed = (Pattern.parse(v, wildcards=False, variables=True) for v in values)
                templates = tuple(p for p in parsed if p.has_vars)
            out.append(Condition(op_text, spec.family, key.lower(), values, qualifier, if_exists, spec.negate,
                                 matcher, templates=templates))
    return tuple(out)
