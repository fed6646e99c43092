"""Control ops of site replication (registered by the daemon), and the site user.

    site.add {"url", "access_key", "secret_key", "self_url", "region", "tls_verify"}
                            -> {"name", "url", "queued", "introduced", "not_introduced"}: join the box
                               at url to this box's site, and it to this box's other peers
    site.list {}            -> [{"name", "url", "access_key", ...}]
    site.remove {"name"}    -> {"name", "dropped", "told", "error"}: stop replicating with that peer,
                               and tell it (told: it stopped too; error: why it could not be told)
    site.status {}          -> this box's site name and clock, per peer backlog, lag, errors, and
                               the conflicts resolved lately

The site user (SITE_USER) is the principal peers call this box with: allowed stowage:SiteReplicate
and the S3 actions replication needs, its key made on first use. Users replicate, so every box of
a site has it, and its secret (wrapped by the shared master key) opens on each.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from appliance.control import ControlServer, Emit
from appliance.engine.identity import IdentityView
from appliance.iam import users
from appliance.iam.admin import IdentityAdmin
from appliance.iam.sealing import unseal
from appliance.services.site import SiteService
from appliance.services.sitewire import ACTION, SiteError

SITE_USER = "stowage-site"
SITE_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": [ACTION, "s3:*"], "Resource": "*"}]})


def site_key(identities: IdentityAdmin) -> Callable[[], Awaitable[tuple[str, str]]]:
    """The callable SiteService asks for (access key, secret) of the site user with."""

    def ensure(view: IdentityView) -> tuple[str, str]:
        u = view.user(SITE_USER)
        if u is None:
            u = users.create_user(view, SITE_USER)
        if u.inline.get("site-replication") != SITE_POLICY:
            u.inline["site-replication"] = SITE_POLICY
            view.put_user(u)
        for cred in users.keys_of(view, SITE_USER):
            if cred.active and cred.wrapped_secret:
                return cred.access_key, unseal(identities.master, cred)
        cred, secret = users.create_key(view, identities.master, SITE_USER)
        return cred.access_key, secret

    async def get() -> tuple[str, str]:
        return await identities.write(ensure)

    return get


def _str(args: dict[str, Any], name: str, default: str = "") -> str:
    value = args.get(name, default)
    if not isinstance(value, str):
        raise SiteError(f"{name}: expected a string")
    return value


def register(control: ControlServer, site: SiteService) -> None:
    async def add(args: dict[str, Any], emit: Emit) -> Any:
        return await site.add(_str(args, "url"), _str(args, "access_key"), _str(args, "secret_key"),
                              _str(args, "self_url"), _str(args, "region") or "us-east-1",
                              bool(args.get("tls_verify", True)))

    async def listing(args: dict[str, Any], emit: Emit) -> Any:
        return site.listing()

    async def remove(args: dict[str, Any], emit: Emit) -> Any:
        return await site.remove(_str(args, "name"))

    async def status(args: dict[str, Any], emit: Emit) -> Any:
        return site.status()

    control.register("site.add", add)
    control.register("site.list", listing)
    control.register("site.remove", remove)
    control.register("site.status", status)
