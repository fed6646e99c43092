"""POST Object: an HTML form uploads a file into a bucket (POST /bucket, multipart/form-data).

Order: the form's fields are read up to the file (postform.py, bounded) -> `key` (with
`${filename}` replaced by the file's name) -> the form's signature over its policy and the
policy's conditions (postpolicy.py); a form without them is anonymous -> authorization of the
signer (or the anonymous principal) through the same authorizer as every S3 request
(s3:PutObject, plus s3:PutObjectAcl for `acl` and s3:PutObjectTagging for `tagging`, with
s3:authType "POST") -> the file streams into the engine, its size held to the policy's
content-length-range and s3.max_object_size as it arrives -> the answer: a 303 to
`success_action_redirect` (or the older `redirect`), else `success_action_status` (200, 201 with
a PostResponse document, or the default 204).

Form fields that become the object's settings, as on AWS: Cache-Control, Content-Type,
Content-Disposition, Content-Encoding, Expires, x-amz-meta-*, x-amz-storage-class,
x-amz-server-side-encryption (with its KMS and SSE-C fields), x-amz-object-lock-* (which need
s3:PutObjectRetention / s3:PutObjectLegalHold too), acl, tagging (a Tagging XML document).
Content-MD5, x-amz-checksum-* and x-amz-website-redirect-location are refused (501).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import quote, urlencode, urlsplit

from appliance.engine import BodySummary

from . import objlock, sse
from .authz import Check, request_context
from .ctx import Ctx, OpHandler
from .errors import S3Error
from .http import Request, Response
from .objmeta import HEADER_NAME, header_value, put_meta, validate_tags
from .ops_access import new_object_acl
from .ops_lock import with_lock
from .posixtrust import vouch
from .postform import FormReader, boundary_of
from .postpolicy import PostPolicy, check_policy, is_signed, parse_policy, verify_signature
from .routing import Op, Route
from .xmlio import doc, el, parse_tagging

# Form fields that are the object's headers, under the header's name.
_HEADER_FIELDS = ("cache-control", "content-type", "content-disposition", "content-encoding", "expires",
                  "x-amz-storage-class", "x-amz-server-side-encryption",
                  "x-amz-server-side-encryption-aws-kms-key-id", "x-amz-server-side-encryption-context",
                  "x-amz-server-side-encryption-bucket-key-enabled",
                  "x-amz-server-side-encryption-customer-algorithm", "x-amz-server-side-encryption-customer-key",
                  "x-amz-server-side-encryption-customer-key-md5",
                  objlock.MODE_HEADER, objlock.UNTIL_HEADER, objlock.HOLD_HEADER)
# Form fields AWS gives a meaning this gateway does not implement for form uploads: refused,
# never stored without their effect.
_REFUSED_FIELDS = ("content-md5", "x-amz-website-redirect-location", "x-amz-checksum-algorithm")
_REFUSED_PREFIXES = ("x-amz-checksum-",)
_STATUSES = {"200": 200, "201": 201, "204": 204}


def _basename(filename: str) -> str:
    """What a browser's filename means: old browsers send the whole client path."""
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def _object_headers(fields: dict[str, str]) -> dict[str, str]:
    """The fields that are the object's headers. A form field can hold any text, and these are
    sent back as headers: one a header cannot carry (a CR or LF would split the response head
    and make every GET of the object drop the connection) is refused here, as the header would
    have been. x-amz-meta-* values are stored as any text (RFC 2047-encoded on the way out)."""
    headers = {name: header_value(name, fields[name]) for name in _HEADER_FIELDS if name in fields}
    for name, value in fields.items():
        if name.startswith("x-amz-meta-"):
            if not HEADER_NAME.fullmatch(name):
                raise S3Error("InvalidArgument", "A metadata field name is not a valid header name.",
                              ArgumentName=name[:64].encode("ascii", "replace").decode())
            headers[name] = value
    if "acl" in fields:
        headers["x-amz-acl"] = fields["acl"]
    return headers


def _redirectable(url: str) -> bool:
    """An http(s) URL a Location header can carry (no CR, LF or other control character); urlsplit
    raises on some that are not URLs at all (http://[::1)."""
    if not (url.isascii() and url.isprintable()):
        return False
    try:
        return urlsplit(url).scheme in ("http", "https")
    except ValueError:
        return False


def _tags(fields: dict[str, str]) -> dict[str, str] | None:
    raw = fields.get("tagging")
    if raw is None:
        return None
    return validate_tags(parse_tagging(raw.encode()))


def _principal_of(ctx: Ctx, fields: dict[str, str], now: datetime) -> tuple[Ctx, PostPolicy | None, str]:
    """(the context as the form's signer, the policy, the signature version) of the form."""
    if ctx.auth.access_key:
        raise S3Error("InvalidRequest", "POST Object is authenticated by its form fields (policy and signature), "
                      "not by an Authorization header.")
    if not is_signed(fields):
        return ctx, None, ""
    found = []

    def secret_for(access_key: str) -> str | None:
        hit = ctx.authz.identities.authenticate(access_key)
        if hit is None:
            if ctx.authz.identities.refusal(access_key) == "AccessDenied":
                raise S3Error("AccessDenied", "The user of this access key is disabled.")
            return None
        found.append(hit[1])
        return hit[0]

    signer = verify_signature(fields, ctx.cfg.s3.region, secret_for, allow_sigv2=ctx.cfg.s3.allow_sigv2, now=now)
    policy = parse_policy(fields["policy"])
    check_policy(policy, fields, ctx.bucket, now)
    return dataclasses.replace(ctx, principal=found[-1]), policy, signer.algorithm


async def post_object(ctx: Ctx) -> Response:
    form = FormReader(boundary_of(ctx.req.headers.get("content-type", "")), ctx.req.body.chunks())
    await form.read_fields()
    fields = form.fields
    if form.filename is None:
        raise S3Error("InvalidArgument", "POST requires exactly one file upload per request.",
                      ArgumentName="file", ArgumentValue="0")
    if "key" not in fields:
        raise S3Error("InvalidArgument", "Bucket POST must contain a field named 'key'.  If it is specified, "
                      "please check the order of the fields.", ArgumentName="key", ArgumentValue="")
    refused = sorted(n for n in fields if n in _REFUSED_FIELDS or n.startswith(_REFUSED_PREFIXES))
    if refused:
        raise S3Error("NotImplemented", f"The form field {refused[0][:64]} is not supported in POST uploads.")
    key = fields["key"].replace("${filename}", _basename(form.filename))
    if not key:
        raise S3Error("InvalidArgument", "User key must have a length greater than 0.", ArgumentName="key",
                      ArgumentValue="")
    if fields.get("bucket", ctx.bucket) != ctx.bucket:
        # The upload goes to the URL's bucket, and the policy's $bucket is that bucket: a field
        # naming another would be ignored, so it is refused
        raise S3Error("InvalidArgument", "The bucket form field does not name the bucket of the request.",
                      ArgumentName="bucket", ArgumentValue=fields["bucket"][:256])
    ctx, policy, algorithm = _principal_of(ctx, fields, datetime.now(UTC))

    # the object's request, as a PutObject of the same bucket and key would carry it
    headers = _object_headers(fields)
    tags = _tags(fields)
    raw_path = f"/{quote(ctx.bucket)}/{quote(key)}"
    req = Request("POST", raw_path, {**headers, "host": ctx.req.headers.get("host", "")}, ctx.req.body,
                  ctx.req.remote, ctx.req.tls)
    route = Route(ctx.bucket, key, raw_path, "", {}, Op.PostObject, ctx.route.virtual_host)
    conditions = request_context(req, route, Op.PutObject, signed=bool(algorithm), presigned=False, tags=tags,
                                 signature_version=algorithm or "AWS4-HMAC-SHA256")
    if algorithm:
        conditions["s3:authType"] = "POST"
    ctx = dataclasses.replace(ctx, req=req, route=route, conditions=conditions)
    checks = [Check("s3:PutObject", ctx.bucket, key)]
    if "acl" in fields:
        checks.append(Check("s3:PutObjectAcl", ctx.bucket, key, acl_as="s3:PutObject"))
    if tags is not None:
        checks.append(Check("s3:PutObjectTagging", ctx.bucket, key, acl_as="s3:PutObject"))
    checks += [Check(action, ctx.bucket, key) for action in objlock.write_actions(headers)]
    await ctx.authz.require(ctx.principal, checks, conditions, ctx.view)

    meta = with_lock(ctx, vouch(ctx, put_meta(headers, with_tags=False)))
    if tags is not None:
        meta.tags = tags
    meta.owner, meta.acl = new_object_acl(ctx)
    protection = await sse.for_write(ctx)
    meta.sse = protection.report()
    low, high = policy.length_range if policy is not None and policy.length_range else (0, None)
    cap = ctx.cfg.s3.max_object_size if high is None else min(high, ctx.cfg.s3.max_object_size)
    received = 0

    async def file_body() -> AsyncIterator[bytes]:
        nonlocal received
        async for piece in form.file_data():
            received += len(piece)
            if received > cap:
                raise S3Error("EntityTooLarge", MaxSizeAllowed=str(cap))
            yield piece

    def finalize(summary: BodySummary) -> dict[str, str]:
        if received < low:
            raise S3Error("EntityTooSmall", ProposedSize=str(received), MinSizeAllowed=str(low))
        return {}

    v = await ctx.store.put_object(ctx.bucket, key, file_body(), meta, finalize=finalize,
                                   encrypt_with=ctx.keys.new_key(protection))
    etag = f'"{v.etag}"'
    location = ctx.object_url(key)
    out = [("ETag", etag), ("Location", location)]
    if v.version_id != "null" or (ctx.view is not None and ctx.view.record.versioning):
        out.append(("x-amz-version-id", v.version_id))
    out += sse.headers(ctx, protection, context=True)
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    # else ignored as AWS ignores an invalid one: checked before the 303 is built, the object
    # being stored already
    if redirect and _redirectable(redirect):
        sep = "&" if "?" in redirect else "?"
        target = redirect + sep + urlencode({"bucket": ctx.bucket, "key": key, "etag": etag})
        return Response(303, [*[h for h in out if h[0] != "Location"], ("Location", target)])
    status = _STATUSES.get(fields.get("success_action_status", ""), 204)
    if status == 201:
        body = doc("PostResponse", [el("Location", location), el("Bucket", ctx.bucket), el("Key", key),
                                    el("ETag", etag)])
        return Response(201, [*out, ("Content-Type", "application/xml")], body)
    return Response(status, out)


OPS: dict[str, OpHandler] = {Op.PostObject: post_object}
