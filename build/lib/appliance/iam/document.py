"""Reading a policy document: strict JSON, and typed access that fails with MalformedPolicy.

Policy text comes from users (PutBucketPolicy, CreatePolicy, the CLI) and must never make the
parser crash: every failure, including hostile input (deep nesting, huge numbers, invalid
UTF-8, lone surrogates), is a MalformedPolicy whose message names the problem. Messages quote
names with `json.dumps`, so they are ASCII and safe to log and to put in an XML error body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

from appliance.engine.errors import StowageError

PolicyKind = Literal["identity", "resource"]

# AWS's quotas: a bucket policy may be 20 KB; we allow identity policies the same size (AWS's
# managed policies allow 6,144 characters, inline ones less) so a document that works as one
# kind is never refused as the other for its length alone.
MAX_POLICY_BYTES: dict[PolicyKind, int] = {"identity": 20 * 1024, "resource": 20 * 1024}


class MalformedPolicy(StowageError):
    """The policy document is not valid."""

    code = "MalformedPolicy"


class JsonNumber(str):
    """A JSON number kept as its source text: condition values compare as text or parse on
    demand, and a 5,000-digit integer never reaches int() (which refuses it with ValueError)."""

    __slots__ = ()


def quote(value: object) -> str:
    """An element name or value as it may appear in an error message."""
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _reject_constant(name: str) -> object:
    raise MalformedPolicy(f"Policies must be valid JSON: {name} is not a JSON value")


def _strict_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # Python's json keeps the last of duplicate keys; a policy with two "Condition" or two
    # "Effect" members means something different to each reader, so it is refused.
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise MalformedPolicy(f"Policies must be valid JSON: duplicate key {quote(key)}")
        obj[key] = value
    return obj


def load_document(text: str | bytes, kind: PolicyKind) -> dict[str, object]:
    """Parse the policy text: UTF-8, at most MAX_POLICY_BYTES, one JSON object."""
    if isinstance(text, str):
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedPolicy("Policies must be valid UTF-8 text") from None
    elif isinstance(text, bytes | bytearray | memoryview):
        raw = bytes(text)
    else:
        raise MalformedPolicy("Policies must be text")
    limit = MAX_POLICY_BYTES[kind]
    if len(raw) > limit:
        raise MalformedPolicy(f"Policies must not exceed {limit} bytes (this one has {len(raw)})")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPolicy("Policies must be valid UTF-8 text") from None
    if not decoded.strip():
        raise MalformedPolicy("Policies must not be empty")
    try:
        doc = json.loads(
            decoded,
            object_pairs_hook=_strict_object,
            parse_int=JsonNumber,
            parse_float=JsonNumber,
            parse_constant=_reject_constant,
        )
    except MalformedPolicy:
        raise
    except json.JSONDecodeError as e:
        raise MalformedPolicy(f"Policies must be valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise MalformedPolicy("Policies must be valid JSON: nested too deeply") from None
    except ValueError as e:
        raise MalformedPolicy(f"Policies must be valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise MalformedPolicy("Policies must be valid JSON and the first byte must be '{'")
    return doc


def text_of(value: object, where: str) -> str:
    """A JSON string member; lone surrogates (legal as JSON escapes) are refused here because
    they cannot be stored or logged as UTF-8."""
    if not isinstance(value, str) or isinstance(value, JsonNumber):
        raise MalformedPolicy(f"{where} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedPolicy(f"{where} must be valid UTF-8 text") from None
    return value


def texts_of(value: object, where: str) -> tuple[str, ...]:
    """A member that is a string or a non-empty list of strings (Action, Resource, ...)."""
    if isinstance(value, list):
        if not value:
            raise MalformedPolicy(f"{where} must not be an empty list")
        items = value
    else:
        items = [value]
    for v in items:
        if not isinstance(v, str) or isinstance(v, JsonNumber):
            raise MalformedPolicy(f"{where} must be a string or a list of strings")
    return tuple(text_of(v, where) for v in items)


def object_of(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise MalformedPolicy(f"{where} must be a JSON object")
    for key in value:
        text_of(key, f"A key of {where}")
    return value
