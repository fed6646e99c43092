"""The S3 application: one request in, one response out.

A request signed for IAM (its credential scope names the service "iam") goes to the IAM query
API (iamapi.py), which answers in IAM's own XML. Every other request is S3's.

Order per request: request id -> route (addressing, InvalidURI) -> SigV4 -> the refusal from
the not-implemented table, or the operation's handler from the operation table (optable).
Every failure, wherever it happens, is translated here once (errors.from_exception) into the
S3 XML error with x-amz-request-id; nothing raised by a handler escapes to the HTTP shell
except a vanished client.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Mapping

import trio

from appliance.config import Config
from appliance.engine import ObjectStore
from appliance.engine.errors import StowageError
from appliance.iam.identities import Identities
from appliance.iam.policy import Principal

from .ctx import Ctx
from .errors import S3Error, error_xml, from_exception
from .http import BodyTimeout, ClientGone, Request, Response
from .iamapi import IamApi, is_iam_request
from .optable import OPERATIONS
from .routing import REFUSED, Route, route
from .sigv4 import AuthResult, authenticate

log = logging.getLogger("stowage.s3")


class S3App:
    def __init__(self, store: ObjectStore, cfg: Config, identities: Identities, iam: IamApi | None = None) -> None:
        self.store = store
        self.cfg = cfg
        self.identities = identities
        self.iam = iam

    def error_response(self, code: str) -> Response:
        """An error the HTTP shell answers on its own (no request was routed); it closes the connection."""
        return self._error(S3Error(code, close=True), "", _request_id())

    def _error(self, err: S3Error, resource: str, request_id: str) -> Response:
        host_id = base64.b64encode(secrets.token_bytes(24)).decode()
        headers = [("x-amz-request-id", request_id), ("x-amz-id-2", host_id)]
        headers += list(err.headers.items())
        if err.status == 304:
            return Response(304, headers)
        headers.append(("Content-Type", "application/xml"))
        return Response(err.status, headers, error_xml(err, resource, request_id, host_id), close=err.close)

    async def handle(self, req: Request) -> Response:
        request_id = _request_id()
        if self.iam is not None and is_iam_request(req.headers):
            return await self.iam.handle(req, request_id)
        resource = req.target.partition("?")[0]
        try:
            try:
                resp = await self._dispatch(req, request_id)
            except BaseExceptionGroup as group:
                raise _leaf(group) from group
        except (ClientGone, trio.BrokenResourceError, trio.ClosedResourceError):
            raise
        except BodyTimeout:
            return self._error(S3Error("RequestTimeout", close=True), resource, request_id)
        except BaseException as exc:
            if isinstance(exc, trio.Cancelled | KeyboardInterrupt | SystemExit):
                raise
            err = from_exception(exc)
            if isinstance(exc, StowageError):
                hint = exc.context.get("code_hint")
                if isinstance(hint, str):
                    err = S3Error(hint, exc.message)
                if exc.context.get("delete_marker"):
                    err.headers["x-amz-delete-marker"] = "true"
                    vid = exc.context.get("version_id")
                    if isinstance(vid, str) and vid:
                        err.headers["x-amz-version-id"] = vid
            elif not isinstance(exc, S3Error):
                log.exception("S3 %s %s failed", req.method, resource)
            return self._error(err, resource, request_id)
        resp.headers.append(("x-amz-request-id", request_id))
        resp.headers.append(("x-amz-id-2", base64.b64encode(secrets.token_bytes(24)).decode()))
        return resp

    async def _dispatch(self, req: Request, request_id: str) -> Response:
        r = route(req.method, req.target, req.headers.get("host", ""), self.cfg.s3.domain,
                  "x-amz-copy-source" in req.headers)
        auth, principal = self._authenticate(req, r)
        refusal = REFUSED.get(r.op)
        # a request for a feature we lack hears 501 before any complaint about its ACL headers
        if refusal == "NotImplemented":
            raise S3Error(refusal)
        check_acl_headers(req.headers)
        if refusal is not None:
            raise S3Error(refusal)
        owner = "root" if principal.kind == "root" else principal.name
        return await OPERATIONS[r.op](Ctx(self.store, self.cfg, req, r, auth, owner, request_id))

    def _authenticate(self, req: Request, r: Route) -> tuple[AuthResult, Principal]:
        """SigV4 with the identities' keys: the result and who signed. An active key of a disabled
        user is AccessDenied; a deleted or inactive key is InvalidAccessKeyId, as AWS answers."""
        found: list[Principal] = []

        def secret_for(access_key: str) -> str | None:
            identity = self.identities.authenticate(access_key)
            if identity is not None:
                found.append(identity[1])
                return identity[0]
            if self.identities.refusal(access_key) == "AccessDenied":
                raise S3Error("AccessDenied", "The user of this access key is disabled.")
            return None

        auth = authenticate(req.method, r.raw_path, r.raw_query, r.query, req.headers, secret_for,
                            region=self.cfg.s3.region)
        return auth, found[-1]


# Stowage behaves like an AWS bucket with ACLs disabled (Object Ownership "bucket owner
# enforced", the AWS default since 2023): the bucket owner owns everything, and a request
# that tries to grant anything else is refused instead of being silently ignored.
OWNER_ONLY_ACLS = ("private", "bucket-owner-full-control")


def check_acl_headers(headers: Mapping[str, str]) -> None:
    acl = headers.get("x-amz-acl")
    if acl is not None and acl.strip().lower() not in OWNER_ONLY_ACLS:
        raise S3Error("AccessControlListNotSupported")
    if any(name.lower().startswith("x-amz-grant-") for name in headers):
        raise S3Error("AccessControlListNotSupported")


def _leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The engine runs body consumers in nurseries; what matters is the one meaningful failure."""
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for sub in e.exceptions:
                walk(sub)
        else:
            leaves.append(e)

    walk(group)
    for kind in (ClientGone, BodyTimeout, S3Error, StowageError):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return leaves[0] if leaves else group


def _request_id() -> str:
    return secrets.token_hex(8).upper()
