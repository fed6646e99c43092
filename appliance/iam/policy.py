"""IAM identity policies and S3 bucket policies: the document model, its parser, and AWS's
evaluation logic for requests within one account.

Pure code (no I/O, no clock): the gateway parses a policy once when it is stored or loaded
(`parse_policy`), then for every request builds an `AuthzRequest` and calls `authorize`, which
applies the root user's rules and otherwise `evaluate`:

1. an explicit Deny in any policy (identity or bucket) decides: denied;
2. else an Allow in any identity policy, in the bucket policy for this principal, or a grant of
   the bucket's or object's ACL (`acl_allows`, worked out by the caller) decides: allowed;
3. else the request is implicitly denied.

A principal signed with an access key that carries a session policy (`Principal.session`) is
limited by it too, as AWS limits a session and MinIO a service account: an explicit Deny in it
denies, and whatever the steps above allow is allowed only if the session policy allows it as well
(`session_allows`; the caller applies it to its ACL grants).

Element semantics follow AWS's "IAM JSON policy elements reference"; Condition is in
conditions.py, wildcards and policy variables in patterns.py, reading the JSON in document.py.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from .actions import RESOURCE_POLICY_VENDORS, ROOT_POLICY_ACTIONS, S3_ACTIONS
from .conditions import Condition, parse_conditions
from .document import MalformedPolicy, PolicyKind, load_document, object_of, quote, text_of, texts_of
from .patterns import Context, GlobSet, Pattern, glob_regex

__all__ = [
    "DEFAULT_ACCOUNT", "AuthzRequest", "Candidates", "Decision", "MalformedPolicy", "Outcome", "Policy", "PolicyKind",
    "Principal", "PrincipalSpec", "Statement", "authorize", "evaluate", "parse_policy", "s3_arn", "time_context",
]

DEFAULT_ACCOUNT = "000000000000"
VERSION_2012 = "2012-10-17"
VERSION_2008 = "2008-10-17"

Effect = Literal["Allow", "Deny"]
PrincipalKind = Literal["root", "user", "anonymous"]

_NO_CONTEXT: Context = {}


# --- the requester -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    """Who sends a request: the account's root user, one of its IAM users, or anonymous."""

    kind: PrincipalKind
    account: str = DEFAULT_ACCOUNT
    name: str = ""  # the IAM user name (kind "user")
    user_id: str = ""  # aws:userid; defaults to the account id (root) or the user name
    canonical_id: str = ""  # the ACL canonical user id, matched by {"CanonicalUser": ...}
    path: str = "/"  # the IAM user's path ("/team/"): part of its ARN, so of what Principal matches
    # the session policy of the access key the request was signed with: it narrows what is allowed
    session: Policy | None = field(default=None, repr=False, compare=False)
    arn: str = field(init=False, repr=False, compare=False)  # empty for anonymous, who has none
    account_arn: str = field(init=False, repr=False, compare=False)
    context_keys: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Derived once: a gateway that keeps its Principal per access key pays for this once.
        account_arn = f"arn:aws:iam::{self.account}:root"
        user_arn = f"arn:aws:iam::{self.account}:user{self.path}{self.name}"  # as IAM's GetUser shows it
        arn = {"user": user_arn, "root": account_arn}.get(self.kind, "")
        object.__setattr__(self, "account_arn", account_arn)
        object.__setattr__(self, "arn", arn)
        object.__setattr__(self, "context_keys", self._derive_context_keys())

    @classmethod
    def root(cls, account: str = DEFAULT_ACCOUNT, canonical_id: str = "") -> Principal:
        return cls("root", account, canonical_id=canonical_id)

    @classmethod
    def user(cls, name: str, account: str = DEFAULT_ACCOUNT, user_id: str = "", canonical_id: str = "",
             path: str = "/") -> Principal:
        return cls("user", account, name, user_id, canonical_id, path=path)

    @classmethod
    def anonymous(cls, account: str = DEFAULT_ACCOUNT) -> Principal:
        return cls("anonymous", account)

    def _derive_context_keys(self) -> dict[str, tuple[str, ...]]:
        """The global condition keys AWS derives from the principal (lower-cased)."""
        if self.kind == "anonymous":
            return {"aws:principaltype": ("Anonymous",), "aws:userid": ("anonymous",)}
        keys: dict[str, tuple[str, ...]] = {
            "aws:principaltype": ("Account" if self.kind == "root" else "User",),
            "aws:principalarn": (self.arn,),
            "aws:principalaccount": (self.account,),
            "aws:userid": (self.user_id or (self.account if self.kind == "root" else self.name),),
        }
        if self.kind == "user":
            keys["aws:username"] = (self.name,)
        return keys


def _normalise_context(principal: Principal, context: Mapping[str, str | Sequence[str]]) -> Context:
    ctx = dict(principal.context_keys)
    for key, value in context.items():
        ctx[key.lower()] = (value,) if isinstance(value, str) else tuple(value)
    return ctx


@dataclass(frozen=True, slots=True)
class AuthzRequest:
    """One authorization question: may `principal` do `action` ("s3:GetObject") on `resource`
    ("arn:aws:s3:::bucket/key"), given the request `context` (condition keys -> value or values;
    keys are case-insensitive). aws:username, aws:userid, aws:PrincipalType, aws:PrincipalArn and
    aws:PrincipalAccount are derived from the principal unless the context sets them."""

    principal: Principal
    action: str
    resource: str
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    ctx: Context = field(init=False, repr=False, compare=False)
    action_key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ctx", _normalise_context(self.principal, self.context))
        object.__setattr__(self, "action_key", self.action.lower())


def s3_arn(bucket: str = "", key: str | None = None) -> str:
    """The resource of an S3 request: `arn:aws:s3:::bucket`, `arn:aws:s3:::bucket/key`, or, for
    actions on no bucket (s3:ListAllMyBuckets), `arn:aws:s3:::`, which both `"Resource": "*"` and
    `"Resource": "arn:aws:s3:::*"` match, as both grant ListAllMyBuckets on AWS."""
    return f"arn:aws:s3:::{bucket}" if key is None else f"arn:aws:s3:::{bucket}/{key}"


def time_context(now: datetime) -> dict[str, str]:
    """aws:CurrentTime and aws:EpochTime for a request received at `now`."""
    utc = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    return {"aws:CurrentTime": utc.strftime("%Y-%m-%dT%H:%M:%SZ"), "aws:EpochTime": str(int(utc.timestamp()))}


# --- the document model ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrincipalSpec:
    """A statement's Principal (or NotPrincipal) element."""

    everyone: bool  # "*" or {"AWS": "*"}: every caller, anonymous included
    accounts: frozenset[str]  # account ids, from "123456789012" or "arn:aws:iam::123456789012:root"
    arns: GlobSet  # other principal ARNs (users, or patterns)
    canonical_ids: frozenset[str]
    services: frozenset[str]  # service principals: valid, but no request here comes from one

    def matches(self, p: Principal, *, delegated: bool = False) -> bool:
        """`delegated`: the account principal (its id, or its `:root` ARN) delegates to the
        account, as on AWS: it names the account itself (root), and the account's other
        identities only by their own identity policies. That is how an Allow reads it; a Deny,
        or a NotPrincipal, naming the account binds every identity of it."""
        if self.everyone:
            return True
        if p.kind == "anonymous":
            return False
        account = p.account in self.accounts or self.arns.matches(p.account_arn, _NO_CONTEXT)
        if account and (p.kind == "root" or not delegated):
            return True
        if self.arns.matches(p.arn, _NO_CONTEXT):
            return True
        return bool(p.canonical_id) and p.canonical_id in self.canonical_ids

    @property
    def is_fixed(self) -> bool:
        """Names only fixed principals: no "*" and no wildcard ARN (the public-policy test)."""
        return not self.everyone and all(p.is_fixed for p in self.arns.patterns)


@dataclass(frozen=True, slots=True)
class Statement:
    index: int  # position in the policy's Statement list
    sid: str
    effect: Effect
    principal: PrincipalSpec | None  # None in identity policies
    not_principal: bool
    actions: GlobSet  # lower-cased patterns: action names are case-insensitive
    not_action: bool
    resources: GlobSet  # case-sensitive
    not_resource: bool
    conditions: tuple[Condition, ...]
    # Patterns with policy variables in a negated element (NotResource, StringNotEquals, ...). A
    # variable without a value makes its pattern match nothing, which a negation would turn into
    # "matches everything": AWS then holds the statement invalid. An Allow does not apply; a Deny
    # still does, so that a missing value never widens access.
    negated_templates: tuple[Pattern, ...] = ()

    def covers_action(self, action_key: str) -> bool:
        return self.actions.matches(action_key, _NO_CONTEXT) != self.not_action

    def applies(self, request: AuthzRequest) -> bool:
        """Whether the statement applies to the request, its action apart: callers take the
        statement from Policy.candidates, which has matched the action already."""
        ctx = request.ctx
        if self.negated_templates and self.effect == "Allow" and any(
                p.resolve(ctx) is None for p in self.negated_templates):
            return False
        if self.resources.matches(request.resource, ctx) == self.not_resource:
            return False
        delegated = self.effect == "Allow" and not self.not_principal
        if self.principal is not None and \
                self.principal.matches(request.principal, delegated=delegated) == self.not_principal:
            return False
        return all(c.holds(ctx) for c in self.conditions)


@dataclass(frozen=True, slots=True)
class Candidates:
    """A policy's statements that name one action, Deny and Allow apart, each group with the
    literal prefixes one of its resources must start with (None: no such shortcut)."""

    denies: tuple[Statement, ...]
    allows: tuple[Statement, ...]
    deny_prefixes: tuple[str, ...] | None
    allow_prefixes: tuple[str, ...] | None

    @staticmethod
    def prefixes(statements: Sequence[Statement]) -> tuple[str, ...] | None:
        out: list[str] = []
        for st in statements:
            if st.not_resource or st.resources.prefixes is None:
                return None
            out.extend(st.resources.prefixes)
        return tuple(out)


# Policy.candidates remembers its answer for this many distinct action names: the gateway asks
# about a hundred or so, and nothing a client sends can grow the memo past the bound.
_MAX_MEMO_ACTIONS = 512


@dataclass(frozen=True, slots=True)
class Policy:
    kind: PolicyKind
    version: str  # "" when the document has none (2008-10-17 semantics)
    id: str
    statements: tuple[Statement, ...]
    name: str = ""  # what the caller calls it (managed policy name, "bucket policy"), for Decision
    denies: tuple[Statement, ...] = field(init=False, repr=False, compare=False)
    allows: tuple[Statement, ...] = field(init=False, repr=False, compare=False)
    _by_action: dict[str, Candidates] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "denies", tuple(s for s in self.statements if s.effect == "Deny"))
        object.__setattr__(self, "allows", tuple(s for s in self.statements if s.effect == "Allow"))
        object.__setattr__(self, "_by_action", {})

    def candidates(self, action_key: str) -> Candidates:
        """The statements whose Action (or NotAction) covers `action_key` (lower-cased)."""
        found = self._by_action.get(action_key)
        if found is None:
            denies = tuple(s for s in self.denies if s.covers_action(action_key))
            allows = tuple(s for s in self.allows if s.covers_action(action_key))
            found = Candidates(denies, allows, Candidates.prefixes(denies), Candidates.prefixes(allows))
            if len(self._by_action) < _MAX_MEMO_ACTIONS:
                self._by_action[action_key] = found
        return found

    @property
    def label(self) -> str:
        return self.name or self.id or ("bucket policy" if self.kind == "resource" else "identity policy")


# --- parsing -----------------------------------------------------------------------------------

_TOP_FIELDS = ("Version", "Id", "Statement")
_STATEMENT_FIELDS = ("Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource",
                     "Condition")
_IAM_SID_RE = re.compile(r"[0-9A-Za-z]*")
_ACTION_RE = re.compile(r"([A-Za-z0-9-]+):[A-Za-z0-9_*?-]+")
_ACCOUNT_RE = re.compile(r"\d{12}")
_ACCOUNT_ARN_RE = re.compile(r"arn:aws:iam::(\d{12}):root")
_PRINCIPAL_ARN_RE = re.compile(r"arn:aws:(?:iam|sts)::[0-9*?]{1,12}:[^\s]+")
_SERVICE_RE = re.compile(r"[A-Za-z0-9.*?-]+")
_CANONICAL_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
_PRINCIPAL_TYPES = ("AWS", "CanonicalUser", "Service")


def parse_policy(text: str | bytes, kind: PolicyKind, *, name: str = "", bucket: str | None = None) -> Policy:
    """Parse and validate a policy document; MalformedPolicy names the first problem found.

    `kind` is "identity" (attached to users and groups: no Principal) or "resource" (a bucket
    policy: every statement names its Principal). With `bucket`, a bucket policy's resources must
    lie in that bucket, as S3 requires of PutBucketPolicy. `name` labels the policy in
    decisions (the managed policy's name, say).
    """
    if kind not in ("identity", "resource"):
        raise ValueError(f"unknown policy kind {kind!r}")
    doc = load_document(text, kind)
    for key in doc:
        if key not in _TOP_FIELDS:
            raise MalformedPolicy(f"Unknown field {quote(key)} in the policy")
    version = ""
    if "Version" in doc:
        version = text_of(doc["Version"], "Version")
        if version not in (VERSION_2012, VERSION_2008):
            raise MalformedPolicy(f"The policy must contain a valid version string ({VERSION_2012} or "
                                  f"{VERSION_2008}), not {quote(version)}")
    policy_id = text_of(doc["Id"], "Id") if "Id" in doc else ""
    if "Statement" not in doc:
        raise MalformedPolicy("Missing required field Statement")
    raw = doc["Statement"]
    raws = raw if isinstance(raw, list) else [raw]
    if not raws:
        raise MalformedPolicy("Statement must not be an empty list")
    # Policy variables exist from Version 2012-10-17 on; before, "${...}" is literal text.
    variables = version == VERSION_2012
    statements: list[Statement] = []
    for i, st in enumerate(raws):
        try:
            statements.append(_parse_statement(i, st, kind, variables, bucket))
        except MalformedPolicy as e:
            if not isinstance(raw, list):
                raise
            raise MalformedPolicy(f"Statement[{i}]: {e.message}") from None
    sids = [s.sid for s in statements if s.sid]
    if len(set(sids)) != len(sids):
        raise MalformedPolicy("Statement IDs (SID) in a single policy must be unique")
    return Policy(kind, version, policy_id, tuple(statements), name)


def _parse_statement(index: int, raw: object, kind: PolicyKind, variables: bool, bucket: str | None) -> Statement:
    st = object_of(raw, "Statement")
    for key in st:
        if key not in _STATEMENT_FIELDS:
            raise MalformedPolicy(f"Unknown field {quote(key)} in a statement")
    sid = text_of(st["Sid"], "Sid") if "Sid" in st else ""
    if kind == "identity" and _IAM_SID_RE.fullmatch(sid) is None:
        raise MalformedPolicy(f"Statement IDs (SID) must be alpha-numeric, not {quote(sid)}")
    if "Effect" not in st:
        raise MalformedPolicy("Missing required field Effect")
    effect_text = text_of(st["Effect"], "Effect")
    if effect_text not in ("Allow", "Deny"):
        raise MalformedPolicy(f"Invalid effect: {quote(effect_text)} (Allow or Deny)")
    effect: Effect = "Allow" if effect_text == "Allow" else "Deny"

    principal: PrincipalSpec | None = None
    not_principal = False
    if kind == "identity":
        if "Principal" in st or "NotPrincipal" in st:
            raise MalformedPolicy("Policy document should not specify a principal")
    else:
        field_name, not_principal = _one_of(st, "Principal", "NotPrincipal", "Missing required field Principal")
        principal = _parse_principal(st[field_name], field_name)

    field_name, not_action = _one_of(st, "Action", "NotAction", "Policy statement must contain actions")
    actions = GlobSet(_parse_action(a, kind) for a in texts_of(st[field_name], field_name))

    field_name, not_resource = _one_of(st, "Resource", "NotResource", "Policy statement must contain resources")
    resources = GlobSet(_parse_resource(r, kind, variables, bucket) for r in texts_of(st[field_name], field_name))

    conditions = parse_conditions(st["Condition"], variables=variables) if "Condition" in st else ()
    negated = [p for p in resources.patterns if p.has_vars] if not_resource else []
    negated += [p for c in conditions if c.negate for p in c.templates]
    return Statement(index, sid, effect, principal, not_principal, actions, not_action, resources, not_resource,
                     conditions, tuple(negated))


def _one_of(st: Mapping[str, object], name: str, negated: str, missing: str) -> tuple[str, bool]:
    if name in st and negated in st:
        raise MalformedPolicy(f"A statement must not have both {name} and {negated}")
    if name in st:
        return name, False
    if negated in st:
        return negated, True
    raise MalformedPolicy(missing)


def _parse_action(text: str, kind: PolicyKind) -> Pattern:
    if text != "*":
        m = _ACTION_RE.fullmatch(text)
        if ":" not in text:
            raise MalformedPolicy(f"Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. "
                                  f"({quote(text)})")
        if m is None:
            raise MalformedPolicy(f"Action {quote(text)} is not valid")
        vendor = m[1].lower()
        if kind == "resource":
            if vendor not in RESOURCE_POLICY_VENDORS:
                raise MalformedPolicy(f"Policy has invalid action: {quote(text)}")
            if vendor == "s3" and not _names_an_s3_action(text):
                raise MalformedPolicy(f"Policy has invalid action: {quote(text)}")
    return Pattern.parse(text.lower(), wildcards=True, variables=False)


_S3_ACTIONS_LOWER = frozenset(a.lower() for a in S3_ACTIONS)


def _names_an_s3_action(text: str) -> bool:
    pattern = Pattern.parse(text.lower(), wildcards=True, variables=False)
    if pattern.is_fixed:
        return pattern.literal in _S3_ACTIONS_LOWER
    regex = re.compile(glob_regex(pattern.items), re.DOTALL)
    return any(regex.fullmatch(a) for a in _S3_ACTIONS_LOWER)


def _parse_resource(text: str, kind: PolicyKind, variables: bool, bucket: str | None) -> Pattern:
    pattern = Pattern.parse(text, wildcards=True, variables=variables)
    if text == "*":
        return pattern
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[1] != "aws" or not parts[2] or not parts[5]:
        raise MalformedPolicy(f"Resource {quote(text)} must be in ARN format or \"*\"")
    service = parts[2]
    if kind == "resource" and service != "s3":
        raise MalformedPolicy(f"Policy has invalid resource: {quote(text)}")
    if service == "s3":
        if parts[3] or parts[4]:
            raise MalformedPolicy(f"Resource {quote(text)} is not an S3 ARN (arn:aws:s3:::bucket or "
                                  "arn:aws:s3:::bucket/key)")
        if kind == "resource" and bucket is not None:
            bucket_part = Pattern.parse(parts[5].split("/", 1)[0], wildcards=True, variables=variables)
            if not bucket_part.has_vars and not bucket_part.matches(bucket, _NO_CONTEXT):
                raise MalformedPolicy(f"Policy has invalid resource: {quote(text)} is not in bucket {quote(bucket)}")
    return pattern


def _parse_principal(raw: object, where: str) -> PrincipalSpec:
    if raw == "*":
        return PrincipalSpec(True, frozenset(), GlobSet(()), frozenset(), frozenset())
    if not isinstance(raw, dict):
        raise MalformedPolicy(f"Invalid principal in policy: {where} must be \"*\" or an object such as "
                              "{\"AWS\": \"arn:aws:iam::123456789012:user/name\"}")
    spec = object_of(raw, where)
    if not spec:
        raise MalformedPolicy(f"Invalid principal in policy: {where} is empty")
    everyone = False
    accounts: set[str] = set()
    arns: list[Pattern] = []
    canonical: set[str] = set()
    services: set[str] = set()
    for typ, values in spec.items():
        if typ not in _PRINCIPAL_TYPES:
            raise MalformedPolicy(f"Invalid principal in policy: unknown principal type {quote(typ)}")
        for v in texts_of(values, f"{where} {quote(typ)}"):
            bad = MalformedPolicy(f"Invalid principal in policy: {quote(typ)}:{quote(v)}")
            if typ == "AWS":
                if v == "*":
                    everyone = True
                elif _ACCOUNT_RE.fullmatch(v):
                    accounts.add(v)
                elif (m := _ACCOUNT_ARN_RE.fullmatch(v)) is not None:
                    accounts.add(m[1])
                elif _PRINCIPAL_ARN_RE.fullmatch(v):
                    arns.append(Pattern.parse(v, wildcards=True, variables=False))
                else:
                    raise bad
            elif typ == "CanonicalUser":
                if _CANONICAL_RE.fullmatch(v) is None:
                    raise bad
                canonical.add(v)
            else:
                if _SERVICE_RE.fullmatch(v) is None:
                    raise bad
                services.add(v)
    return PrincipalSpec(everyone, frozenset(accounts), GlobSet(arns), frozenset(canonical), frozenset(services))


# --- evaluation --------------------------------------------------------------------------------


class Outcome(enum.Enum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    source: str = ""  # "identity", "resource", "acl", "root", or "" for an implicit deny
    policy: str = ""  # the deciding policy's label
    statement: int | None = None  # its index in that policy's Statement list
    sid: str = ""

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW

    def __str__(self) -> str:
        if self.statement is None:
            return f"{self.outcome.value} ({self.source})" if self.source else self.outcome.value
        sid = f" Sid {self.sid!r}" if self.sid else ""
        return f"{self.outcome.value} by {self.source} policy {self.policy!r} Statement[{self.statement}]{sid}"


def _decided(outcome: Outcome, source: str, policy: Policy, st: Statement) -> Decision:
    return Decision(outcome, source, policy.label, st.index, st.sid)


def _first_deny(request: AuthzRequest, identity_policies: Sequence[Policy],
                resource_policy: Policy | None) -> Decision | None:
    for pol in identity_policies:
        st = _first_applying(request, pol, deny=True)
        if st is not None:
            return _decided(Outcome.EXPLICIT_DENY, "identity", pol, st)
    if resource_policy is not None:
        st = _first_applying(request, resource_policy, deny=True)
        if st is not None:
            return _decided(Outcome.EXPLICIT_DENY, "resource", resource_policy, st)
    return None


def _first_applying(request: AuthzRequest, policy: Policy, deny: bool) -> Statement | None:
    found = policy.candidates(request.action_key)
    statements, prefixes = (found.denies, found.deny_prefixes) if deny else (found.allows, found.allow_prefixes)
    # One C call rules out a policy about other buckets, the common case.
    if not statements or (prefixes is not None and not request.resource.startswith(prefixes)):
        return None
    for st in statements:
        if st.applies(request):
            return st
    return None


def evaluate(request: AuthzRequest, identity_policies: Sequence[Policy], resource_policy: Policy | None,
             acl_allows: bool = False, *, restrict_public_policy: bool = False) -> Decision:
    """AWS's evaluation for a request within one account (see the module docstring).

    `restrict_public_policy` is True when the bucket policy is public (public.is_public) and the
    bucket's RestrictPublicBuckets block is on: the policy's Allow statements then grant nothing
    to callers outside the account (here: anonymous ones); its Deny statements still apply.
    """
    deny = _first_deny(request, identity_policies, resource_policy)
    if deny is not None:
        return deny
    for pol in identity_policies:
        st = _first_applying(request, pol, deny=False)
        if st is not None:
            return _decided(Outcome.ALLOW, "identity", pol, st)
    if resource_policy is not None and not (restrict_public_policy and request.principal.kind == "anonymous"):
        st = _first_applying(request, resource_policy, deny=False)
        if st is not None:
            return _decided(Outcome.ALLOW, "resource", resource_policy, st)
    if acl_allows:
        return Decision(Outcome.ALLOW, "acl")
    return Decision(Outcome.IMPLICIT_DENY)


def authorize(request: AuthzRequest, identity_policies: Sequence[Policy], resource_policy: Policy | None,
              acl_allows: bool = False, *, restrict_public_policy: bool = False) -> Decision:
    """The gateway's one call per request: `evaluate`, plus AWS's rules for the account root.

    The root user is allowed everything no policy explicitly denies it, and may always get, put
    and delete a bucket policy, even one that denies it.
    """
    session = request.principal.session
    if session is not None:
        st = _first_applying(request, session, deny=True)
        if st is not None:
            return _decided(Outcome.EXPLICIT_DENY, "session", session, st)
    if request.principal.kind != "root":
        decision = evaluate(request, identity_policies, resource_policy, acl_allows,
                            restrict_public_policy=restrict_public_policy)
    elif request.action_key in _ROOT_POLICY_ACTIONS_LOWER:
        decision = Decision(Outcome.ALLOW, "root")
    else:
        decision = _first_deny(request, identity_policies, resource_policy) or Decision(Outcome.ALLOW, "root")
    if decision.allowed and not session_allows(request):
        return Decision(Outcome.IMPLICIT_DENY, "session")
    return decision


def session_allows(request: AuthzRequest) -> bool:
    """Whether the session policy of the request's key (if it has one) allows the request: the
    intersection's second half, which a caller granting by ACL applies itself."""
    session = request.principal.session
    return session is None or _first_applying(request, session, deny=False) is not None


_ROOT_POLICY_ACTIONS_LOWER = frozenset(a.lower() for a in ROOT_POLICY_ACTIONS)
