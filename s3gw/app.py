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
import random
import secrets
from collections.abc import Sequence
from dataclasses import asdict

import trio

from appliance.config import Config
from appliance.engine import ObjectStore, caused_by, find_cors
from appliance.engine.errors import NoSuchKey, StowageError
from appliance.iam.objectkeys import ObjectKeys
from appliance.iam.policy import Principal
from appliance.services.eventhub import EventHub

from . import replica, sse
from .adminpaths import AdminPaths, is_admin_path
from .authz import (
    Authorizer,
    BucketView,
    Check,
    copy_source_of,
    global_context,
    request_context,
    request_tags,
    required,
)
from .body import read_xml
from .cors import CorsRule, actual_headers
from .ctx import Ctx
from .errors import S3Error, error_xml, from_exception
from .eventcause import cause_of
from .exchange import Exchange, Observer, begin, finish
from .http import BodyTimeout, ClientGone, MalformedBody, Request, Response
from .iamapi import IamApi, is_iam_request
from .identity import IdentitySource
from .objmeta import validate_tags
from .ops_lock import lock_conditions, read_lock_document
from .optable import OPERATIONS
from .refusedheaders import expected_owner, refuse_unimplemented
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
                 iam: IamApi | None = None, admin: AdminPaths | None = None,
                 observers: Sequence[Observer] = (), events: EventHub | None = None) -> None:
        self.store = store
        self.events = events
        self.admin = admin or AdminPaths()  # /_stowage/v1/<name>: the appliance's own endpoints
        self.admin.authorize = self.admin_allowed
        self.observers = tuple(observers)  # metrics and access logs, told of every S3 and IAM request
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
        host_id = _host_id()
        headers = [("x-amz-request-id", request_id), ("x-amz-id-2", host_id)]
        headers += list(err.headers.items())
        if err.status == 304:
            return Response(304, headers)
        headers.append(("Content-Type", "application/xml"))
        return Response(err.status, headers, error_xml(err, resource, request_id, host_id), close=err.close)

    async def handle(self, req: Request) -> Response:
        if is_admin_path(req.target):  # no bucket name has "_": checked before any S3 routing
            return await self.admin.handle(req)
        request_id = _request_id()
        ex = begin(req, request_id)
        if self.iam is not None and is_iam_request(req.headers):
            ex.op = "IAM"
            resp = await self.iam.handle(req, request_id)
            return finish(self.observers, ex, req, resp)
        resp = await self._handle(req, request_id, ex)
        return finish(self.observers, ex, req, resp)

    async def handle_as(self, req: Request, principal: Principal, auth: AuthResult) -> Response:
        """A request its caller already authenticated (the console, for its session's user):
        path-style routing, then everything else exactly as for a signed request, authorization
        included."""
        request_id = _request_id()
        ex = begin(req, request_id)
        ex.via = "console"
        resp = await self._handle(req, request_id, ex, (principal, auth))
        return finish(self.observers, ex, req, resp)

    async def _handle(self, req: Request, request_id: str, ex: Exchange,
                      caller: tuple[Principal, AuthResult] | None = None) -> Response:
        resource = req.target.partition("?")[0]
        try:
            try:
                resp = await self._dispatch(req, request_id, ex, caller)
            except BaseExceptionGroup as group:
                raise _leaf(group) from group
        except MalformedBody:
            return self._error(S3Error("InvalidRequest", "The request body's framing is malformed.", close=True),
                               resource, request_id)
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
            ex.error_code = err.code
            return self._with_cors(req, self._error(err, resource, request_id))
        resp.headers.append(("x-amz-request-id", request_id))
        resp.headers.append(("x-amz-id-2", _host_id()))
        return self._with_cors(req, resp)

    def _with_cors(self, req: Request, resp: Response) -> Response:
        """An actual cross-origin request (Origin, not a preflight) gets the headers of the
        bucket's matching CORS rule, on errors too: the page may read why it failed."""
        origin = req.headers.get("origin")
        if not origin or req.method == "OPTIONS":
            return resp
        try:
            r = route(req.method, req.target, req.headers.get("host", ""), self.cfg.s3.domain, False)
        except S3Error:
            return resp
        rec = find_cors(self.store, r.bucket) if r.bucket else None
        if rec is not None:
            resp.headers += actual_headers([CorsRule.of(raw) for raw in rec.rules], origin, req.method)
        return resp

    async def _dispatch(self, req: Request, request_id: str, ex: Exchange,
                        caller: tuple[Principal, AuthResult] | None = None) -> Response:
        r = route(req.method, req.target, req.headers.get("host", ""), "" if caller else self.cfg.s3.domain,
                  "x-amz-copy-source" in req.headers)
        ex.op, ex.key, ex.named_bucket = r.op.value, r.key, r.bucket
        principal, auth = caller or self._authenticate(req, r)
        ex.principal, ex.access_key = principal.arn or "anonymous", auth.access_key
        refusal = REFUSED.get(r.op)
        if refusal is not None:
            raise S3Error(refusal)
        refuse_unimplemented(r.op, req.headers)
        view = None if r.op in _NO_BUCKET else await self.authz.bucket_view(r.bucket)
        if view is not None:
            ex.bucket = r.bucket
            if not r.key and r.op.startswith(("Put", "Delete")):  # a bucket setting: the audit log's "before"
                ex.bucket_before = asdict(view.record)
        ctx = Ctx(self.store, self.cfg, req, r, auth, principal, request_id, self.authz, view, {}, self.keys,
                  events=self.events)
        body_tags = None
        if r.op is Op.PutObjectTagging:  # its tags are condition keys (s3:RequestObjectTag/<key>)
            body_tags = validate_tags(await read_xml(ctx, parse_tagging, TAGGING_LIMIT))
        conditions = request_context(req, r, r.op, signed=bool(auth.access_key), presigned=auth.presigned,
                                     tags=request_tags(r.op, req.headers, body_tags),
                                     signature_version=auth.algorithm)
        if r.op in sse.UPLOAD_PART_OPS:
            for name, value in sse.upload_condition_keys(ctx).items():
                conditions.setdefault(name, value)
        body_lock = await read_lock_document(ctx)  # its settings are condition keys (s3:object-lock-*)
        conditions.update(lock_conditions(ctx, body_lock))
        ctx = Ctx(self.store, self.cfg, req, r, auth, principal, request_id, self.authz, view, conditions,
                  self.keys, body_tags, body_lock, self.events)
        await self.authz.require(principal, required(r.op, r, req.headers, copy_source_of(r.op, req.headers)),
                                 conditions, view)
        expected_owner(req.headers, self.identities.account_id)
        replica_vid = await replica.authorize(ctx, self.authz, conditions, view)
        if replica_vid:
            done = replica.existing(ctx, replica_vid)
            if done is not None:
                return done
        try:
            # what the events of its changes say (engine/events.py)
            with caused_by(replica.cause(cause_of(ctx), replica_vid)):
                return await OPERATIONS[r.op](ctx)
        except NoSuchKey:
            if r.op in _READS and not await self._may_list(ctx, view):
                raise S3Error("AccessDenied") from None
            raise

    def _authenticate(self, req: Request, r: Route) -> tuple[Principal, AuthResult]:
        """Who sent the request: anonymous when it carries no authentication at all, else SigV4
        (or SigV2, unless s3.allow_sigv2 is off) with the identities' keys. An active key of a
        disabled user is AccessDenied; a deleted or inactive key is InvalidAccessKeyId, an expired
        one ExpiredToken, as AWS answers."""
        # A CORS preflight is never authenticated: the browser sends it without credentials, for
        # a presigned URL with that URL's query, whose signature is for the request that follows.
        if r.op is Op.PreflightRequest or is_anonymous(r.query, req.headers):
            return self.anonymous, anonymous(req.headers)
        found: list[Principal] = []

        def secret_for(access_key: str) -> str | None:
            hit = self.identities.authenticate(access_key)
            if hit is not None:
                found.append(hit[1])
                return hit[0]
            refusal = self.identities.refusal(access_key)
            if refusal == "AccessDenied":
                raise S3Error("AccessDenied", "The user of this access key is disabled.")
            if refusal == "ExpiredToken":
                raise S3Error("ExpiredToken")
            return None

        if self.cfg.s3.allow_sigv2 and is_sigv2(r.query, req.headers):
            auth = authenticate_v2(req.method, r.raw_path, r.raw_query, r.query, req.headers, r.bucket,
                                   r.virtual_host, secret_for)
        else:  # SigV4; a SigV2 request here is refused as a SigV4-only region refuses it
            auth = authenticate(req.method, r.raw_path, r.raw_query, r.query, req.headers, secret_for,
                                region=self.cfg.s3.region)
        return found[-1], auth

    async def admin_allowed(self, req: Request, action: str) -> bool:
        """Whether a request to /_stowage/v1/ is signed (SigV4, or SigV2 where allowed) by a
        principal whose identity policies allow `action` (a `stowage:*` action; root may do
        every one). Unsigned or badly signed requests are not."""
        try:
            r = route(req.method, req.target, req.headers.get("host", ""), "", False)
            if is_anonymous(r.query, req.headers):
                return False
            principal, _ = self._authenticate(req, r)
        except S3Error:
            return False
        if principal.kind == "root":
            return True
        return await self.authz.decide(principal, Check(action, "", bucket_policy=False), global_context(req), None)

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


# Request ids identify a request in logs and answers; they guard nothing, so they come from a
# seeded PRNG: two getrandom calls per request were ~1% of a 4 KiB GET's loop time.
_ids = random.Random(secrets.token_bytes(32))


def _request_id() -> str:
    return f"{_ids.getrandbits(64):016X}"


def _host_id() -> str:
    return base64.b64encode(_ids.randbytes(24)).decode()
