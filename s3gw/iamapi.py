"""IAM's query API on the S3 endpoint, so that `aws iam --endpoint-url URL` works unchanged.

A request is IAM's when its SigV4 credential scope names the service "iam" (`is_iam_request`);
an S3 client never signs for it, so S3 routing does not change. The protocol is AWS's query
API: `POST /` with a form-encoded body (or `GET /?...`) carrying `Action=...&Version=2010-05-08`,
signed with SigV4 for service iam over the body's SHA-256, in us-east-1 (what IAM clients sign
with) or the configured S3 region (what a client configured with this endpoint's region signs
with). Answers are IAM's XML (iamcall.py) in the namespace https://iam.amazonaws.com/doc/2010-05-08/.

Order per request: the body (at most MAX_BODY bytes) -> SigV4 -> the parameters (strict UTF-8,
well-formed, no duplicates, at most MAX_PARAMS) -> Action and Version -> the names and ids
IAM constrains (iamcall.check_parameters) -> the handler
(iamactions.py), which authorizes `iam:<Action>` before anything else. Nothing here logs a
parameter: a CreateAccessKey answer or a policy is never in the log.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import parse_qsl

import trio

from appliance.config import Config
from appliance.engine.errors import StowageError
from appliance.iam.admin import IdentityAdmin
from appliance.iam.policy import Principal, time_context

from .errors import S3Error
from .http import BodyTimeout, ClientGone, MalformedBody, Request, Response
from .iamactions import ACTIONS
from .iamcall import API_VERSION, Call, IamError, check_parameters, response_xml
from .sigv4 import authenticate

log = logging.getLogger("stowage.iam")

IAM_REGION = "us-east-1"
MAX_BODY = 128 * 1024  # a 20 KiB policy document, form-encoded, with room to spare
MAX_PARAMS = 200
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/iam/aws4_request")

# SigV4's S3 errors as IAM words them
_AUTH_ERRORS: dict[str, tuple[str, str]] = {
    "InvalidAccessKeyId": ("InvalidClientTokenId", "The security token included in the request is invalid."),
    "SignatureDoesNotMatch": ("SignatureDoesNotMatch", "The request signature we calculated does not match the "
                              "signature you provided. Check your AWS Secret Access Key and signing method."),
    "RequestTimeTooSkewed": ("SignatureDoesNotMatch", "Signature expired: the request time is more than 15 minutes "
                             "away from the server's time."),
    "AccessDenied": ("AccessDenied", ""),
    "AuthorizationHeaderMalformed": ("IncompleteSignature", ""),
    "InvalidRequest": ("IncompleteSignature", ""),
    "InvalidArgument": ("InvalidParameterValue", ""),
    "MaxMessageLengthExceeded": ("InvalidInput", f"The request body exceeds {MAX_BODY} bytes."),
}


def iam_scope_region(headers: Mapping[str, str]) -> str | None:
    """The region of an Authorization header's credential scope if it is IAM's, else None."""
    auth = headers.get("authorization", "")
    if "/iam/" not in auth:  # every S3 request: a substring test, not a regex search
        return None
    m = _SCOPE.search(auth)
    return m.group(1) if m else None


def is_iam_request(headers: Mapping[str, str]) -> bool:
    return iam_scope_region(headers) is not None


class ChangeHook(Protocol):
    """The audit log's view of IAM changes: the state of what a call names before it runs, and
    the call's outcome ("ok" or its error code) with that state."""

    def before(self, action: str, params: Mapping[str, str]) -> object: ...

    def changed(self, principal: Principal, action: str, params: dict[str, str], remote: str, *, console: bool,
                before: object, outcome: str) -> None: ...


class IamApi:
    def __init__(self, cfg: Config, admin: IdentityAdmin, on_change: ChangeHook | None = None) -> None:
        self.cfg = cfg
        self.admin = admin
        self.regions = {IAM_REGION, cfg.s3.region}
        self.on_change = on_change  # the audit log

    async def handle(self, req: Request, request_id: str, caller: Principal | None = None) -> Response:
        """`caller`: the principal when the request was authenticated already (the console's
        session); else it must be signed for IAM."""
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
        try:
            body = await self._dispatch(req, request_id, caller)
            return Response(200, headers, body)
        except MalformedBody:
            err, close = IamError("InvalidInput", "The request body's framing is malformed."), True
        except (ClientGone, trio.BrokenResourceError, trio.ClosedResourceError):
            raise
        except BodyTimeout:
            err, close = IamError("InvalidInput", "The request body did not arrive in time."), True
        except IamError as exc:
            err, close = exc, False
        except S3Error as exc:
            code, message = _AUTH_ERRORS.get(exc.code, ("InvalidInput", ""))
            err, close = IamError(code, message or exc.message), exc.close
        except StowageError as exc:
            err, close = IamError(exc.code, exc.message), False
            if err.code == "ServiceFailure":
                log.error("IAM request failed: %s: %s", exc.code, exc.message)
                err.message = "The request processing has failed because of an unknown error."
        except Exception:  # a bug: answered as one, the connection kept (S3App does the same)
            log.exception("IAM request %s failed", request_id)
            err = IamError("ServiceFailure", "The request processing has failed because of an unknown error.")
            close = False
        return Response(err.status, headers, err.xml(request_id), close=close)

    async def _dispatch(self, req: Request, request_id: str, caller: Principal | None) -> bytes:
        if req.method not in ("POST", "GET"):
            raise IamError("InvalidAction", f"The IAM API does not answer {req.method[:16]} requests.")
        raw_path, _, raw_query = req.target.partition("?")
        body = await req.body.read_all(MAX_BODY)
        scope_region = iam_scope_region(req.headers) or IAM_REGION
        found: list[tuple[str, Principal]] = []

        def secret_for(access_key: str) -> str | None:
            identity = self.admin.identities.authenticate(access_key)
            if identity is None:
                if self.admin.identities.refusal(access_key) == "AccessDenied":
                    raise IamError("AccessDenied", "The user of this access key is disabled.")
                return None
            found.append(identity)
            return identity[0]

        query = _parse_params(raw_query)
        if caller is not None:
            found.append(("", caller))
        else:
            authenticate(req.method, raw_path, raw_query, query, req.headers, secret_for,
                         region=scope_region if scope_region in self.regions else IAM_REGION, service="iam",
                         body_sha256=hashlib.sha256(body).hexdigest())
        params = _parse_params(body, query)
        action = params.get("Action")
        if not action:
            raise IamError("MissingAction", "Missing Action")
        version = params.get("Version", API_VERSION)
        handler = ACTIONS.get(action)
        if handler is None or version != API_VERSION:
            raise IamError("InvalidAction", f"Could not find operation {action[:64]} for version {version[:16]}")
        refused = sorted({name.split(".", 1)[0] for name in params} & UNSUPPORTED_PARAMETERS)
        if refused:  # never accept a request and ignore part of its meaning
            raise IamError("NotImplemented", f"{', '.join(refused)} {'is' if len(refused) == 1 else 'are'} not "
                           "supported by this IAM API")
        context = {"aws:SourceIp": _client_address(req.remote),
                   "aws:SecureTransport": "true" if req.tls else "false", **time_context(datetime.now(UTC))}
        call = Call(self.admin, found[-1][1], params, context)
        audit = self.on_change if not action.startswith(("Get", "List")) else None
        before = audit.before(action, params) if audit is not None else None
        try:
            check_parameters(params)
            result = await handler(call)
        except (IamError, StowageError) as exc:
            if audit is not None:
                audit.changed(call.principal, action, params, req.remote, console=caller is not None, before=before,
                              outcome=exc.code)
            raise
        if audit is not None:
            audit.changed(call.principal, action, params, req.remote, console=caller is not None, before=before,
                          outcome="ok")
        return response_xml(action, result, request_id)


# Parameters of the supported actions that Stowage does not implement: refused, not ignored.
UNSUPPORTED_PARAMETERS = frozenset({"Tags", "PermissionsBoundary", "TagKeys"})


def _parse_params(raw: bytes | str, into: Mapping[str, str] | None = None) -> dict[str, str]:
    """Form or query parameters, strictly: UTF-8, every field NAME=VALUE, no name twice."""
    params = dict(into or {})
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict",
                          max_num_fields=MAX_PARAMS)
    except (UnicodeDecodeError, ValueError):
        raise IamError("MalformedQueryString", "The query string or form body is not well-formed "
                       f"UTF-8 NAME=VALUE pairs (at most {MAX_PARAMS}).") from None
    for name, value in pairs:
        if name in params:
            raise IamError("MalformedQueryString", f"The parameter {name[:64]} is given more than once.")
        params[name] = value
    return params


def _client_address(remote: str) -> str:
    """The client's address from "addr:port" (IPv6 addresses without their brackets)."""
    return remote.rpartition(":")[0].strip("[]") if ":" in remote else remote
