"""The S3 application: one request in, one response out.

A request signed for IAM (its credential scope names the service "iam") goes to the IAM query
API (iamapi.py), which answers in IAM's own XML. Every other request is S3's.

Order per request: request id -> route (addressing, InvalidURI) -> SigV4 (or SigV2), or the
anonymous principal when the request carries no authentication at all -> the refusal from the
not-implemented table -> the bucket's access settings (NoSuchBucket) -> authorization
(authz.py; AccessDenied) -> the operation's handler from the operation table (optable).
Every failure, wherever it happens, is translated here once (errors.from_exception) into the
S3 XML error with x-amz-request-id; nothing raised by a handler escapes to the HTTP shell
except a vanished client.
"""

from __future__ import annotations

import base64
import logging
import secrets

import trio

from appliance.config import Config
from appliance.engine import ObjectStore
from appliance.engine.errors import NoSuchKey, StowageError
from appliance.iam.objectkeys import ObjectKeys
from appliance.iam.policy import Principal

from .authz import Authorizer, BucketView, Check, copy_source_of, request_context, request_tags, required
from .body import read_xml
from .ctx import Ctx
from .errors import S3Error, error_xml, from_exception
from .http import BodyTimeout, ClientGone, Request, Response
from .iamapi import IamApi, is_iam_request
from .identity import IdentitySource
from .objmeta import validate_tags
from .ops_lock import lock_conditions, read_lock_document
from .optable import OPERATIONS
from .routing import REFUSED, Op, Route, route
from .sigv2 import authenticate_v2, is_sigv2
from .sigv4 import AuthResult, anonymous, authenticate, is_anonymous
from .xmlio import parse_tagging

log = logging.getLogger("stowage.s3")


# Operations with no bucket to look up before authorization.
_NO_BUCKET = frozenset({Op.ListBuckets, Op.CreateBucket})
# GET/HEAD of a missing key: AWS answers 403, not 404, to a caller who may not list the bucket.
_READS = frozenset({Op.GetObject, Op.HeadObject, Op.GetObjectAttributes})
TAGGING_LIMIT = 64 * 1024


class S3App:
    def __init__(self, store: ObjectStore, cfg: Config, identities: IdentitySource, keys: ObjectKeys,
                 iam: IamApi | None = None) -> None:
        self.store = store
        self.keys = keys
        self.cfg = cfg
        self.identities = identities
        self.iam = iam
        self.authz = Authorizer(store, cfg, identities)
        self.anonymous = Principal.anonymous(identities.account_id)

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
        principal, auth = self._authenticate(req, r)
        refusal = REFUSED.get(r.op)
        if refusal is not None:
            raise S3Error(refusal)
        view = None if r.op in _NO_BUCKET else await self.authz.bucket_view(r.bucket)
        ctx = Ctx(self.store, self.cfg, req, r, auth, principal, request_id, self.authz, view, {}, self.keys)
        body_tags = None
        if r.op is Op.PutObjectTagging:  # its tags are condition keys (s3:RequestObjectTag/<key>)
            body_tags = validate_tags(await read_xml(ctx, parse_tagging, TAGGING_LIMIT))
        conditions = request_context(req, r, r.op, signed=bool(auth.access_key), presigned=auth.presigned,
                                     tags=request_tags(r.op, req.headers, body_tags),
                                     signature_version=auth.algorithm)
        body_lock = await read_lock_document(ctx)  # its settings are condition keys (s3:object-lock-*)
        conditions.update(lock_conditions(ctx, body_lock))
        ctx = Ctx(self.store, self.cfg, req, r, auth, principal, request_id, self.authz, view, conditions,
                  self.keys, body_tags, body_lock)
        await self.authz.require(principal, required(r.op, r, req.headers, copy_source_of(r.op, req.headers)),
                                 conditions, view)
        try:
            return await OPERATIONS[r.op](ctx)
        except NoSuchKey:
            if r.op in _READS and not await self._may_list(ctx, view):
                raise S3Error("AccessDenied") from None
            raise

    def _authenticate(self, req: Request, r: Route) -> tuple[Principal, AuthResult]:
        """Who sent the request: anonymous when it carries no authentication at all, else SigV4
        (or SigV2, unless s3.allow_sigv2 is off) with the identities' keys. An active key of a
        disabled user is AccessDenied; a deleted or inactive key is InvalidAccessKeyId, as AWS
        answers."""
        if is_anonymous(r.query, req.headers):
            return self.anonymous, anonymous(req.headers)
        found: list[Principal] = []

        def secret_for(access_key: str) -> str | None:
            hit = self.identities.authenticate(access_key)
            if hit is not None:
                found.append(hit[1])
                return hit[0]
            if self.identities.refusal(access_key) == "AccessDenied":
                raise S3Error("AccessDenied", "The user of this access key is disabled.")
            return None

        if self.cfg.s3.allow_sigv2 and is_sigv2(r.query, req.headers):
            auth = authenticate_v2(req.method, r.raw_path, r.raw_query, r.query, req.headers, r.bucket,
                                   r.virtual_host, secret_for)
        else:  # SigV4; a SigV2 request here is refused as a SigV4-only region refuses it
            auth = authenticate(req.method, r.raw_path, r.raw_query, r.query, req.headers, secret_for,
                                region=self.cfg.s3.region)
        return found[-1], auth

    async def _may_list(self, ctx: Ctx, view: BucketView | None) -> bool:
        return ctx.principal.kind == "root" or await self.authz.decide(
            ctx.principal, Check("s3:ListBucket", ctx.bucket), ctx.conditions, view)


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
