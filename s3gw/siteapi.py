"""POST /_stowage/v1/site/{join,changes,leave,introduce}: site replication's endpoint on the S3 port
(appliance/services/sitewire.py has the documents).

Authorized before the body is read: the request must be SigV4-signed (or SigV2 where allowed)
by a principal allowed `stowage:SiteReplicate` (root, or the site user peers call with). The
body's SHA-256 must be the signed x-amz-content-sha256 (an unsigned payload is refused), so a
change cannot be altered on the way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass

from appliance.services.site import SiteService
from appliance.services.sitewire import (
    ACTION,
    MAX_BODY,
    BadDocument,
    SiteError,
    load,
    parse_changes,
    parse_introduce,
    parse_join,
    parse_leave,
)

from .adminpaths import AdminPaths, text_response
from .errors import S3Error
from .http import Request, Response

log = logging.getLogger("stowage.site")


def _json(status: int, doc: object) -> Response:
    return Response(status, [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
                    json.dumps(doc).encode())


@dataclass
class SiteEndpoint:
    site: SiteService
    admin: AdminPaths  # its `authorize` is the S3 application's (set when the gateway starts)

    async def handle(self, req: Request, rest: str) -> Response:
        if rest not in ("/join", "/changes", "/leave", "/introduce"):
            return text_response(404, "not found\n")
        if req.method != "POST":
            return text_response(405, "method not allowed\n", headers=[("Allow", "POST")])
        if not await self.admin.authorize(req, ACTION):
            return text_response(403, f"a request signed by a principal allowed {ACTION} is needed\n")
        declared = req.headers.get("x-amz-content-sha256", "")
        try:
            body = await req.body.read_all(MAX_BODY)
        except S3Error:
            return text_response(413, "too large\n", headers=[("Connection", "close")])
        if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), declared.strip().lower()):
            return text_response(400, "the body's SHA-256 must be the signed x-amz-content-sha256\n")
        try:
            doc = load(body)
            if rest == "/join":
                return _json(200, await self.site.receive_join(parse_join(doc)))
            if rest == "/introduce":
                return _json(200, await self.site.receive_introduce(parse_introduce(doc)))
            if rest == "/leave":
                return _json(200, await self.site.receive_leave(parse_leave(doc)))
            origin, changes = parse_changes(doc)
            return _json(200, await self.site.receive_changes(origin, changes))
        except BadDocument as exc:
            return text_response(400, f"{exc}\n")
        except SiteError as exc:
            log.warning("site %s refused: %s", rest[1:], exc)
            return text_response(409, f"{exc}\n")
