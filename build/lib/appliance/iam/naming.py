"""Names, paths, ids and ARNs of IAM entities, with IAM's own constraints.

The patterns and lengths are those of AWS's IAM API reference, so a name this appliance accepts
is one AWS accepts and the other way round; a value that breaks them is a ValidationError worded
as IAM words it.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass

from .canned import CANNED
from .errors import NoSuchEntity, ValidationError

AWS_MANAGED = "aws"  # the account part of the canned policies' ARNs (AWS-managed policies)

_NAME = re.compile(r"[\w+=,.@-]+", re.ASCII)
_PATH = re.compile(r"/|/[\x21-\x7e]+/")
_PATH_PREFIX = re.compile(r"/[\x21-\x7f]*")
_ACCESS_KEY = re.compile(r"\w+", re.ASCII)
_VERSION_ID = re.compile(r"v[1-9][0-9]*(\.[A-Za-z0-9-]*)?")
_ID_ALPHABET = string.ascii_uppercase + string.digits

MAX_USER_NAME = 64
MAX_NAME = 128  # groups, policies, inline policies
MAX_PATH = 512
MAX_DESCRIPTION = 1000


def _constraint(value: str, member: str, rule: str) -> ValidationError:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return ValidationError(f"1 validation error detected: Value {shown!r} at '{member}' failed to satisfy "
                           f"constraint: {rule}")


def check_name(value: str, member: str, max_len: int = MAX_NAME) -> str:
    if not 1 <= len(value) <= max_len:
        raise _constraint(value, member, f"Member must have length between 1 and {max_len}")
    if _NAME.fullmatch(value) is None:
        raise _constraint(value, member, r"Member must satisfy regular expression pattern: [\w+=,.@-]+")
    return value


def check_user_name(value: str) -> str:
    if not 1 <= len(value) <= MAX_USER_NAME or _NAME.fullmatch(value) is None:
        raise ValidationError(f"invalid user name {value[:80]!r}: 1 to {MAX_USER_NAME} letters, digits and "
                              "characters of +=,.@_-")
    return value


def check_path(value: str, member: str = "path") -> str:
    if not 1 <= len(value) <= MAX_PATH:
        raise _constraint(value, member, f"Member must have length between 1 and {MAX_PATH}")
    if _PATH.fullmatch(value) is None:
        raise _constraint(value, member, r"Member must satisfy regular expression pattern: "
                          r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)")
    return value


def check_path_prefix(value: str) -> str:
    if not 1 <= len(value) <= MAX_PATH or _PATH_PREFIX.fullmatch(value) is None:
        raise _constraint(value, "pathPrefix", r"Member must satisfy regular expression pattern: "
                          r"\u002F[\u0021-\u007F]*")
    return value


def check_access_key_id(value: str) -> str:
    if not 16 <= len(value) <= 128 or _ACCESS_KEY.fullmatch(value) is None:
        raise _constraint(value, "accessKeyId", r"Member must satisfy regular expression pattern: [\w]+ "
                          "and have length between 16 and 128")
    return value


def check_version_id(value: str) -> str:
    if _VERSION_ID.fullmatch(value) is None:
        raise _constraint(value, "versionId", r"Member must satisfy regular expression pattern: "
                          r"v[1-9][0-9]*(\.[A-Za-z0-9-]*)?")
    return value


def check_description(value: str) -> str:
    if len(value) > MAX_DESCRIPTION:
        raise _constraint(value, "description", f"Member must have length less than or equal to {MAX_DESCRIPTION}")
    return value


def new_id(prefix: str) -> str:
    """A unique id as IAM makes them: AIDA... (users), AGPA... (groups), ANPA... (policies)."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def new_account_id() -> str:
    return f"{secrets.randbelow(10**12):012d}"


def new_canonical_id() -> str:
    return secrets.token_hex(32)


def user_arn(account: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user{path}{name}"


def group_arn(account: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account}:group{path}{name}"


def policy_arn(account: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account}:policy{path}{name}"


def canned_policy_arn(name: str) -> str:
    return policy_arn(AWS_MANAGED, "/", name)


@dataclass(frozen=True)
class PolicyRef:
    """A managed policy named by its ARN: a canned one (account "aws") or one of this account."""

    name: str
    path: str
    canned: bool


def parse_policy_arn(arn: str, account: str) -> PolicyRef:
    if not 20 <= len(arn) <= 2048:
        raise _constraint(arn, "policyArn", "Member must have length between 20 and 2048")
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[:4] != ["arn", "aws", "iam", ""] or not parts[5].startswith("policy/"):
        raise ValidationError(f"ARN {arn[:200]} is not valid.")
    owner, resource = parts[4], parts[5][len("policy"):]
    path, _, name = resource.rpartition("/")
    path += "/"
    check_name(name, "policyArn")
    if owner == AWS_MANAGED:
        if name not in CANNED or path != "/":
            raise NoSuchEntity(f"Policy {arn} does not exist or is not attachable.")
        return PolicyRef(name, path, True)
    if owner != account:
        raise NoSuchEntity(f"Policy {arn} does not exist or is not attachable.")
    return PolicyRef(name, check_path(path, "policyArn"), False)
