"""Who is who, as the gateway sees it: the identity source it authenticates against, and the
owners and grantees that records name.

`IdentitySource` is the contract of appliance.iam.identities.Identities (IAM.md). Every principal
has a canonical id, the id ACL grants and owner fields name: root's stands for the account, and
each IAM user has its own, as in Ceph RGW (on AWS, users share their account's). Records written
before issue 10 name their owner "root", "" (the mount, or no owner given) or by user name;
`Directory.owner_id` reads those as the canonical id they mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from appliance.iam.policy import Policy, Principal

from .xmlio import esc

# AWS's canonical id for anonymous requesters: the owner of what an anonymous PUT creates.
ANONYMOUS_CANONICAL_ID = "65a011a29cdf8ec533ec3d1ccaae921c"
ANONYMOUS_DISPLAY_NAME = "anonymous"
_LEGACY_ROOT = ("", "root")


class IdentitySource(Protocol):
    """What the gateway asks of the appliance's identities (appliance.iam.identities)."""

    account_id: str
    root: Principal

    def authenticate(self, access_key: str) -> tuple[str, Principal] | None:
        """(secret key, principal) of an active, unexpired key of an enabled user; None otherwise."""
        ...

    def refusal(self, access_key: str) -> str:
        """Why a key that does not authenticate is refused: "AccessDenied" (its user is
        disabled), "ExpiredToken" (the key is past its expiry) or "InvalidAccessKeyId"."""
        ...

    def identity_policies(self, principal: Principal) -> Sequence[Policy]: ...

    def principal_for_user(self, name: str) -> Principal | None: ...

    def principal_by_canonical_id(self, canonical_id: str) -> Principal | None: ...

    def display_name(self, canonical_id: str) -> str: ...


def canonical_id(principal: Principal) -> str:
    return principal.canonical_id if principal.kind != "anonymous" else ANONYMOUS_CANONICAL_ID


class Directory:
    """Owner fields and grantees -> canonical ids and display names."""

    def __init__(self, identities: IdentitySource) -> None:
        self.identities = identities

    @property
    def root_id(self) -> str:
        return self.identities.root.canonical_id

    def owner_id(self, stored: str) -> str:
        """The canonical id an owner field means."""
        if stored in _LEGACY_ROOT:
            return self.root_id
        if stored == ANONYMOUS_CANONICAL_ID or self.identities.principal_by_canonical_id(stored) is not None:
            return stored
        user = self.identities.principal_for_user(stored)
        return user.canonical_id if user is not None else stored

    def display_name(self, canonical: str) -> str:
        if canonical == ANONYMOUS_CANONICAL_ID:
            return ANONYMOUS_DISPLAY_NAME
        return self.identities.display_name(canonical)

    def known(self, canonical: str) -> bool:
        return self.identities.principal_by_canonical_id(canonical) is not None

    def owner_fields(self, stored: str) -> str:
        """<ID>...</ID><DisplayName>...</DisplayName> of an owner field."""
        cid = self.owner_id(stored)
        return f"<ID>{esc(cid)}</ID><DisplayName>{esc(self.display_name(cid))}</DisplayName>"

    def owner_xml(self, stored: str, element: str = "Owner") -> str:
        return f"<{element}>{self.owner_fields(stored)}</{element}>"
