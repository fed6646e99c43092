"""Whether a bucket policy is public, as S3 defines it ("The meaning of public" in the S3 user
guide), for GetBucketPolicyStatus, BlockPublicPolicy and RestrictPublicBuckets.

S3 starts from "public" and looks, in every Allow statement, for a reason to call it non-public:
the statement grants only to fixed principals (accounts, users, canonical users, services), or
it carries a condition that pins one of a few keys (aws:SourceIp, aws:SourceArn, aws:SourceVpc,
aws:SourceVpce, aws:SourceOwner, aws:SourceAccount, aws:PrincipalAccount, aws:PrincipalArn,
aws:PrincipalOrgID, aws:userid, s3:x-amz-server-side-encryption-aws-kms-key-id,
s3:DataAccessPointArn, s3:DataAccessPointAccount) to fixed values. Fixed means without a wildcard
or a policy variable. A condition only restricts when the key must be present and match:
negated operators, `...IfExists` and `ForAllValues:` (all true when the key is absent) do not.
Deny statements never make a policy public.

Two choices where S3's documentation says less: an aws:SourceIp range wider than /8 (IPv4) or
/32 (IPv6) does not restrict (0.0.0.0/1 is "everyone" in all but name); and the "bad actions"
refinement (a statement granting only actions that expose no data is not public) is not made,
so such a statement still counts as public: the conservative answer.
"""

from __future__ import annotations

import ipaddress

from .conditions import FOR_ALL_VALUES, Condition, Family
from .policy import Policy, Statement

_RESTRICTING_KEYS = frozenset(k.lower() for k in (
    "aws:SourceIp", "aws:SourceArn", "aws:SourceVpc", "aws:SourceVpce", "aws:SourceOwner", "aws:SourceAccount",
    "aws:PrincipalAccount", "aws:PrincipalArn", "aws:PrincipalOrgID", "aws:userid",
    "s3:x-amz-server-side-encryption-aws-kms-key-id", "s3:DataAccessPointArn", "s3:DataAccessPointAccount",
))
_MIN_PREFIX = {4: 8, 6: 32}


def is_public(policy: Policy) -> bool:
    """True when some Allow statement of this bucket policy is open to the public."""
    return any(st.effect == "Allow" and not _restricted(st) for st in policy.statements)


def _restricted(st: Statement) -> bool:
    if st.principal is None:  # an identity policy: it grants to its own user only
        return True
    if not st.not_principal and st.principal.is_fixed:
        return True
    return any(_restricting(c) for c in st.conditions)


def _restricting(c: Condition) -> bool:
    if c.key not in _RESTRICTING_KEYS or c.negate or c.if_exists or c.qualifier == FOR_ALL_VALUES:
        return False
    if c.family is Family.IP:
        return c.key == "aws:sourceip" and all(_narrow(v) for v in c.values)
    if c.family in (Family.STRING, Family.STRING_LIKE, Family.ARN):
        return all(_fixed(v) for v in c.values)
    return False


def _fixed(value: str) -> bool:
    return not any(ch in value for ch in "*?") and "${" not in value


def _narrow(value: str) -> bool:
    net = ipaddress.ip_network(value, strict=False)
    return net.prefixlen >= _MIN_PREFIX[net.version]
