"""One IAM query-API call as its handler (iamactions.py) sees it: the authenticated principal, the
parameters, authorization, paging, and IAM's errors and XML.

IAM errors differ from S3's: `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>`
in the IAM namespace, with IAM's codes and statuses (IAM_STATUS).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote

from appliance.iam.admin import IdentityAdmin
from appliance.iam.errors import ValidationError
from appliance.iam.naming import MAX_USER_NAME, check_access_key_id, check_name, check_version_id
from appliance.iam.policy import AuthzRequest, Outcome, Principal, authorize

from .numbers import digits
from .xmlio import HEAD, el, esc

NS = "https://iam.amazonaws.com/doc/2010-05-08/"
API_VERSION = "2010-05-08"
DEFAULT_MAX_ITEMS = 100
MAX_ITEMS = 1000

T = TypeVar("T")

# Characters XML 1.0 cannot hold, not even as a character reference: botocore refuses a whole
# error answer that has one (ResponseParserError instead of the error IAM meant).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# IAM's error codes and their HTTP statuses (AWS's IAM API reference and common errors)
IAM_STATUS: dict[str, int] = {
    "AccessDenied": 403,
    "InvalidClientTokenId": 403,
    "SignatureDoesNotMatch": 403,
    "MissingAuthenticationToken": 403,
    "IncompleteSignature": 400,
    "NoSuchEntity": 404,
    "EntityAlreadyExists": 409,
    "LimitExceeded": 409,
    "DeleteConflict": 409,
    "MalformedPolicyDocument": 400,
    "ValidationError": 400,
    "InvalidInput": 400,
    "UnmodifiableEntity": 400,
    "InvalidAction": 400,
    "MissingAction": 400,
    "MalformedQueryString": 404,
    "InvalidParameterValue": 400,
    "RequestExpired": 400,
    "ServiceFailure": 500,
    "NotImplemented": 501,
}


class IamError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code if code in IAM_STATUS else "ServiceFailure"
        self.status = IAM_STATUS[self.code]
        # a message may quote what the request sent (a name, an Action, a Version)
        self.message = _NOT_XML.sub(lambda m: m.group().encode("unicode_escape").decode(), message)

    def xml(self, request_id: str) -> bytes:
        kind = "Receiver" if self.status >= 500 else "Sender"
        return (f'{HEAD}<ErrorResponse xmlns="{NS}"><Error><Type>{kind}</Type><Code>{self.code}</Code>'
                f"<Message>{esc(self.message)}</Message></Error><RequestId>{request_id}</RequestId>"
                "</ErrorResponse>").encode()


# Parameters IAM constrains for every action that takes them: a malformed name is a
# ValidationError before anything is looked up (not NoSuchEntity, which is a statement about
# what exists), as AWS answers.
_CONSTRAINED: dict[str, Callable[[str], object]] = {
    "UserName": lambda v: check_name(v, "userName", MAX_USER_NAME),
    "GroupName": lambda v: check_name(v, "groupName"),
    "PolicyName": lambda v: check_name(v, "policyName"),
    "AccessKeyId": check_access_key_id,
    "VersionId": check_version_id,
}


def check_parameters(params: Mapping[str, str]) -> None:
    for name, check in _CONSTRAINED.items():
        if name in params:
            check(params[name])


def response_xml(action: str, result: str | None, request_id: str) -> bytes:
    """The success envelope: <ActionResponse><ActionResult>...</ActionResult><ResponseMetadata>."""
    body = f"<{action}Result>{result}</{action}Result>" if result is not None else ""
    return (f'{HEAD}<{action}Response xmlns="{NS}">{body}<ResponseMetadata><RequestId>{request_id}</RequestId>'
            f"</ResponseMetadata></{action}Response>").encode()


def members(name: str, items: Sequence[str]) -> str:
    """An XML list as the query protocol writes it: <Name><member>...</member>...</Name>."""
    return f"<{name}>" + "".join(f"<member>{item}</member>" for item in items) + f"</{name}>"


def quoted_document(text: str) -> str:
    """A policy document as IAM returns it: URL-encoded (RFC 3986), which botocore decodes."""
    return esc(quote(text, safe=""))


@dataclass
class Call:
    """One authenticated IAM request."""

    admin: IdentityAdmin
    principal: Principal
    params: Mapping[str, str]
    context: Mapping[str, str]  # condition keys of the request (source address, transport, time)

    @property
    def account(self) -> str:
        return self.admin.account_id

    def param(self, name: str, default: str = "") -> str:
        return self.params.get(name, default)

    def required(self, name: str) -> str:
        value = self.params.get(name)
        if value is None:
            member = name[0].lower() + name[1:]
            raise ValidationError(f"1 validation error detected: Value null at '{member}' failed to satisfy "
                                  "constraint: Member must not be null")
        return value

    def flag(self, name: str) -> bool:
        value = self.params.get(name, "false").lower()
        if value not in ("true", "false"):
            raise ValidationError(f"{name} must be true or false")
        return value == "true"

    def allow(self, action: str, resource: str, **context: str) -> None:
        """Raise AccessDenied unless the caller's identity policies allow `iam:<action>` on
        `resource` (the account root may do everything)."""
        request = AuthzRequest(self.principal, f"iam:{action}", resource, {**self.context, **context})
        decision = authorize(request, self.admin.identities.identity_policies(self.principal), None)
        if decision.allowed:
            return
        why = ("with an explicit deny in an identity-based policy" if decision.outcome is Outcome.EXPLICIT_DENY
               else f"because no identity-based policy allows the iam:{action} action")
        raise IamError("AccessDenied", f"User: {self.principal.arn} is not authorized to perform: iam:{action} "
                       f"on resource: {resource} {why}")

    def page(self, items: Sequence[T], key: Callable[[T], str]) -> tuple[list[T], str]:
        """Marker/MaxItems paging over items in key order: the page, and its <IsTruncated> (with
        <Marker>, the last key returned, when truncated)."""
        raw = self.param("MaxItems", str(DEFAULT_MAX_ITEMS))
        limit = digits(raw)
        if limit is None or not 1 <= limit <= MAX_ITEMS:
            raise ValidationError(f"1 validation error detected: Value {raw[:20]!r} at 'maxItems' failed to "
                                  f"satisfy constraint: Member must have value between 1 and {MAX_ITEMS}")
        marker = self.param("Marker")
        ordered = sorted(items, key=key)
        if marker:
            ordered = [i for i in ordered if key(i) > marker]
        chosen = ordered[:limit]
        if len(ordered) > limit:
            return chosen, el("IsTruncated", True) + el("Marker", key(chosen[-1]))
        return chosen, el("IsTruncated", False)
