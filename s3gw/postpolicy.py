"""POST Object's policy document and form signature (AWS's "browser-based uploads").

The form carries `policy` (base64 of a JSON document: an `expiration` and `conditions`) and a
signature over that base64 text: SigV4 (`x-amz-algorithm`, `x-amz-credential`, `x-amz-date`,
`x-amz-signature`: HMAC-SHA256 with the day's signing key) or SigV2 (`AWSAccessKeyId`,
`signature`: HMAC-SHA1 with the secret). A form without any of these is an anonymous upload.

Conditions: `{"field": "value"}` and `["eq", "$field", "value"]` (exact), `["starts-with",
"$field", "prefix"]` (an empty prefix allows anything), `["content-length-range", min, max]`
(the file's size). `bucket` names the URL's bucket. Every form field must be named by some
condition, except the signature fields, `file`, `policy` and `x-ignore-*`, as AWS requires
("Extra input fields"). A failing condition is 403 AccessDenied "Invalid according to Policy".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import S3Error
from .numbers import digits
from .sigv4 import ALGORITHM, amz_datetime, signing_key

MAX_POLICY = 16 * 1024  # decoded; the whole pre-file form is capped at 20 KiB anyway
MAX_CONDITIONS = 100
# Fields no condition needs to name (AWS): the signature itself, the file, the policy, x-ignore-*.
_EXEMPT = frozenset({"x-amz-signature", "signature", "awsaccesskeyid", "file", "policy"})
_EQ_NAMES = frozenset({"eq", "starts-with"})
_SKEW = timedelta(minutes=15)  # how far in the future x-amz-date may be, as for signed requests


@dataclass(frozen=True, slots=True)
class Condition:
    op: str  # "eq" | "starts-with" | "content-length-range"
    field: str  # lower-case form field name ("" for content-length-range)
    value: str = ""
    low: int = 0
    high: int = 0

    def text(self) -> str:
        if self.op == "content-length-range":
            return f'["content-length-range", {self.low}, {self.high}]'
        return json.dumps([self.op, "$" + self.field, self.value])


@dataclass(frozen=True, slots=True)
class PostPolicy:
    expiration: datetime
    conditions: tuple[Condition, ...]

    @property
    def length_range(self) -> tuple[int, int] | None:
        for c in self.conditions:
            if c.op == "content-length-range":
                return c.low, c.high
        return None


def _invalid(why: str) -> S3Error:
    return S3Error("InvalidPolicyDocument", f"Invalid Policy: {why}")


def _bound(raw: Any) -> int | None:
    """A content-length-range bound: a JSON integer or a string of digits. int() would also take
    a float (0.5 became 0), true and false, and strings such as " 1_0 "."""
    if isinstance(raw, str):
        return digits(raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    return None


def _condition(raw: Any) -> Condition:
    if isinstance(raw, dict):
        if len(raw) != 1:
            raise _invalid("Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.")
        name, value = next(iter(raw.items()))
        if not isinstance(value, str):
            raise _invalid(f"Invalid Simple-Condition: value of {str(name)[:64]} must be a string.")
        return Condition("eq", name.lower().removeprefix("$"), value)
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
        raise _invalid("Invalid Condition: a condition is an object or an array.")
    op = raw[0].lower()
    if op == "content-length-range":
        if len(raw) != 3:
            raise _invalid("Invalid content-length-range: it has two integer bounds.")
        low, high = _bound(raw[1]), _bound(raw[2])
        if low is None or high is None:
            raise _invalid("Invalid content-length-range: its bounds must be integers.")
        if high < low:
            raise _invalid("Invalid content-length-range: bounds out of order.")
        return Condition(op, "", low=low, high=high)
    if op not in _EQ_NAMES or len(raw) != 3 or not all(isinstance(x, str) for x in raw[1:]):
        raise _invalid(f"Invalid Condition: unknown or malformed operation {op[:32]}.")
    if not raw[1].startswith("$"):
        raise _invalid("Invalid Condition: a field name starts with $.")
    return Condition(op, raw[1][1:].lower(), raw[2])


def parse_policy(encoded: str) -> PostPolicy:
    """The base64 `policy` field -> its document (400 InvalidPolicyDocument when malformed)."""
    try:
        raw = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise _invalid("Invalid base64 encoding.") from None
    if len(raw) > MAX_POLICY:
        raise _invalid("The policy document is too large.")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _invalid("Invalid JSON.") from None
    if not isinstance(doc, dict):
        raise _invalid("Invalid JSON.")
    expiration = doc.get("expiration")
    if not isinstance(expiration, str):
        raise _invalid("Policy missing expiration.")
    try:
        when = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(f"Invalid 'expiration' value: '{expiration[:64]}'") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    conditions = doc.get("conditions")
    if not isinstance(conditions, list):
        raise _invalid("Policy missing conditions.")
    if len(conditions) > MAX_CONDITIONS:
        raise _invalid("Too many conditions.")
    return PostPolicy(when, tuple(_condition(c) for c in conditions))


def _refused(why: str) -> S3Error:
    return S3Error("AccessDenied", f"Invalid according to Policy: {why}")


def check_policy(policy: PostPolicy, fields: Mapping[str, str], bucket: str, now: datetime) -> None:
    """Every condition holds and every field is named (403 AccessDenied otherwise). The file's
    size (content-length-range) is checked while it streams, by the caller."""
    if now >= policy.expiration:
        raise _refused("Policy expired.")
    values = dict(fields)
    values["bucket"] = bucket
    named = set()
    for c in policy.conditions:
        if c.op == "content-length-range":
            continue
        named.add(c.field)
        actual = values.get(c.field, "")
        ok = actual == c.value if c.op == "eq" else actual.startswith(c.value)
        if not ok:
            raise _refused(f"Policy Condition failed: {c.text()}")
    extra = sorted(name for name in fields if name not in named and name not in _EXEMPT
                   and not name.startswith("x-ignore-"))
    if extra:
        raise _refused(f"Extra input fields: {', '.join(n[:64] for n in extra[:8])}")


# --- the signature --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FormSigner:
    access_key: str
    algorithm: str  # "AWS4-HMAC-SHA256" or "AWS" (SigV2)


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name.lower())
    if value is None:
        raise S3Error("InvalidArgument", f"Bucket POST must contain a field named '{name}'.  If it is specified, "
                      "please check the order of the fields.", ArgumentName=name, ArgumentValue="")
    return value


def is_signed(fields: Mapping[str, str]) -> bool:
    return any(n in fields for n in ("policy", "x-amz-signature", "x-amz-credential", "signature",
                                     "awsaccesskeyid"))


def verify_signature(fields: Mapping[str, str], region: str, secret_for: Callable[[str], str | None], *,
                     allow_sigv2: bool, now: datetime) -> FormSigner:
    """Check the form's signature over its policy; the signer's access key."""
    policy = _required(fields, "policy")
    if "awsaccesskeyid" in fields or "signature" in fields:
        if not allow_sigv2:
            raise S3Error("InvalidArgument", "Signature Version 2 is not supported here; sign the form with "
                          "AWS4-HMAC-SHA256.", ArgumentName="AWSAccessKeyId")
        access_key = _required(fields, "AWSAccessKeyId")
        given = _required(fields, "signature")
        secret = secret_for(access_key)
        if secret is None:
            raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key[:128])
        expected = base64.b64encode(hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(expected, given):
            raise S3Error("SignatureDoesNotMatch")
        return FormSigner(access_key, "AWS")
    algorithm = _required(fields, "X-Amz-Algorithm")
    credential = _required(fields, "X-Amz-Credential")
    amz_date = _required(fields, "X-Amz-Date")
    given = _required(fields, "X-Amz-Signature")
    if algorithm != ALGORITHM:
        raise S3Error("InvalidArgument", f'X-Amz-Algorithm only supports "{ALGORITHM}"',
                      ArgumentName="X-Amz-Algorithm", ArgumentValue=algorithm[:64])
    parts = credential.split("/")
    if len(parts) != 5 or parts[3] != "s3" or parts[4] != "aws4_request" or not parts[0]:
        raise S3Error("InvalidArgument", "Invalid credential: it is <key>/<date>/<region>/s3/aws4_request.",
                      ArgumentName="X-Amz-Credential", ArgumentValue=credential[:256])
    access_key, day, scope_region = parts[0], parts[1], parts[2]
    if scope_region != region:
        raise S3Error("AuthorizationQueryParametersError", f"Error parsing the X-Amz-Credential parameter; the "
                      f"region '{scope_region[:32]}' is wrong; expecting '{region}'", Region=region)
    try:
        signed_at = amz_datetime(amz_date)
    except ValueError:
        raise S3Error("InvalidArgument", "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
                      ArgumentName="X-Amz-Date", ArgumentValue=amz_date[:32]) from None
    if amz_date[:8] != day:
        raise S3Error("InvalidArgument", "The date of X-Amz-Credential does not match X-Amz-Date.",
                      ArgumentName="X-Amz-Credential", ArgumentValue=credential[:256])
    if signed_at > now.replace(microsecond=0) + _SKEW:
        raise S3Error("RequestTimeTooSkewed")
    secret = secret_for(access_key)
    if secret is None:
        raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key[:128])
    key = signing_key(secret, day, region, "s3")
    expected = hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        raise S3Error("SignatureDoesNotMatch")
    return FormSigner(access_key, ALGORITHM)

