"""The console's HTTP side, under /_stowage/v1/console/ on the S3 port (adminpaths.py).

    GET  /                  the page (static/index.html); /static/<file> its script and style
    POST /api/login         {"access_key", "secret_key"} -> {"user", "arn", "token"} + the session cookie
    GET  /api/session       -> {"user", "arn"}: the session of the cookie and the token, if live
    POST /api/logout
    *    /api/s3/<path>     an S3 request (path style) performed as the session's user
    POST /api/iam           an IAM query API call (form body) performed as the session's user
    POST /api/presign       {"bucket", "key", "version_id"?, "expires"?, "download"?} -> {"url"}
    GET  /api/disks         disks, pool capacity, the heal backlog and, from the daemon, SMART,
                            shards held and heal/scrub/drain progress (stowage:GetDiskStatus)
    GET  /api/disks/candidates  block devices not in the appliance, with what adding each would
                            refuse or erase (stowage:GetDiskStatus)
    POST /api/disks/action  {"action": drain|replace|check|scrub|heal, "disk"?, "new"?}, or
                            {"action": "add", "device", "role", "pool", "force", "confirm"}
                            (stowage:ManageDisks): the CLI's own code, audited
    GET  /api/durability    the `stowage durability --json` estimate (stowage:GetDiskStatus)
    GET  /api/version       the `stowage version --json` report (stowage:GetDiskStatus)
    GET  /api/history       recent capacity and request-count samples (stowage:GetMetrics)

Every /api/ call but login needs the session cookie AND the request token in the
X-Stowage-Console-Token header (sessions.py says why); S3 and IAM calls then go through the very
same code as signed requests (S3App.handle_as, IamApi.handle with the caller), so the user's
policies, the bucket policies and ACLs decide, and nothing else. Every answer carries a strict
Content-Security-Policy (no inline script, no framing) and is never cached.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from appliance.engine.errors import StowageError
from appliance.iam.policy import AuthzRequest, Principal, authorize

from ..adminpaths import PREFIX
from ..authz import global_context
from ..errors import S3Error
from ..http import Request, Response
from ..metrics import METRICS_ACTION
from ..sigv4 import ALGORITHM, AuthResult, declared_payload
from .admin import ApplianceAdmin
from .presign import presign_get
from .sessions import ABSOLUTE, Session, Sessions

if TYPE_CHECKING:
    from ..app import S3App

log = logging.getLogger("stowage.console")

BASE = PREFIX + "console"
COOKIE = "stowage_console"
TOKEN_HEADER = "x-stowage-console-token"
MAX_JSON = 16 * 1024
DISKS_ACTION = "stowage:GetDiskStatus"
MANAGE_DISKS_ACTION = "stowage:ManageDisks"
STATIC = Path(__file__).parent / "static"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_SECURITY = [("Content-Security-Policy", _CSP), ("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"),
             ("Referrer-Policy", "no-referrer"), ("Cross-Origin-Opener-Policy", "same-origin"),
             ("Cross-Origin-Resource-Policy", "same-origin"), ("Cache-Control", "no-store")]
# What the browser sends that the inner S3 or IAM request must not see (the console's own
# credentials; an Origin would add CORS headers the console does not need).
_DROPPED = frozenset({"cookie", TOKEN_HEADER, "authorization", "origin"})
_SAFE = frozenset({"GET", "HEAD"})
MAX_LOGIN_FAILURES = 20  # per client address, per FAILURE_WINDOW
FAILURE_WINDOW = 300.0


class ConsoleError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _json(status: int, doc: Mapping[str, Any], extra: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, [("Content-Type", "application/json"), *_SECURITY, *(extra or [])],
                    json.dumps(doc).encode())


def _cookie_of(headers: Mapping[str, str]) -> str:
    for item in headers.get("cookie", "").replace(",", ";").split(";"):
        name, _, value = item.strip().partition("=")
        if name == COOKIE:
            return value
    return ""


@dataclass
class _Failures:
    count: int
    since: float


class Console:
    def __init__(self, app: S3App, admin: ApplianceAdmin | None = None) -> None:
        self.app = app
        self.admin = admin  # the daemon's side of the appliance pages; None: disks show what the store knows
        # the S3 port's scheme and bound port (service.py): a share link made through the admin
        # address points at the S3 port of the same host, since the admin address serves no S3
        self.s3_scheme, self.s3_port = "http", 0
        self.sessions = Sessions()
        self.failures: dict[str, _Failures] = {}
        self.files = {p.name: p for p in STATIC.iterdir() if p.suffix in _TYPES}

    async def handle(self, req: Request, rest: str) -> Response:
        path = rest.partition("?")[0]
        try:
            if path == "":
                return Response(308, [("Location", BASE + "/"), *_SECURITY])
            if path == "/" or path.startswith("/static/"):
                return self._static(req, "index.html" if path == "/" else path[len("/static/"):])
            if path.startswith("/api/"):
                return await self._api(req, path[len("/api/"):])
            raise ConsoleError(404, "NotFound", "No such console page.")
        except ConsoleError as exc:
            return _json(exc.status, {"error": exc.code, "message": exc.message})
        except S3Error as exc:  # a body too big to read, ...: the shell's limits, in JSON
            resp = _json(exc.status, {"error": exc.code, "message": exc.message})
            resp.close = exc.close
            return resp

    def _static(self, req: Request, name: str) -> Response:
        if req.method not in _SAFE:
            raise ConsoleError(405, "MethodNotAllowed", "Static files are read with GET.")
        f = self.files.get(name)
        if f is None:
            raise ConsoleError(404, "NotFound", "No such file.")
        return Response(200, [("Content-Type", _TYPES[f.suffix]), *_SECURITY], f.read_bytes())

    # --- the API ------------------------------------------------------------------------------

    async def _api(self, req: Request, path: str) -> Response:
        if path == "login":
            return await self._login(req)
        session, principal = self._session(req)
        if path == "session" and req.method == "GET":
            return _json(200, {"user": session.user, "arn": principal.arn, "kind": principal.kind})
        if path == "logout" and req.method == "POST":
            self.sessions.drop(_cookie_of(req.headers))
            return _json(200, {}, [("Set-Cookie", self._cookie("", req.tls, 0))])
        if path == "s3" or path.startswith("s3/"):
            prefix = BASE + "/api/s3"  # the rest of the raw target, query included, is the S3 request's
            return await self._s3(req, req.target[len(prefix):] if req.target.startswith(prefix) else "/",
                                  session, principal)
        if path == "iam" and req.method == "POST":
            return await self._iam(req, principal)
        if path == "presign" and req.method == "POST":
            return await self._presign(req, session)
        if path == "disks" and req.method == "GET":
            return await self._disks(req, principal)
        if path in ("disks/action", "disks/candidates", "durability", "version", "history"):
            return await self._appliance(req, path, principal)
        raise ConsoleError(404, "NotFound", "No such console call.")

    def _cookie(self, value: str, tls: bool, max_age: int) -> str:
        return (f"{COOKIE}={value}; Path={BASE}/; Max-Age={max_age}; HttpOnly; SameSite=Strict"
                + ("; Secure" if tls else ""))

    async def _read_json(self, req: Request) -> dict[str, Any]:
        raw = await req.body.read_all(MAX_JSON)
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            raise ConsoleError(400, "BadRequest", "The body is not JSON.") from None
        if not isinstance(doc, dict):
            raise ConsoleError(400, "BadRequest", "The body is not a JSON object.")
        # JSON's \ud800 escapes give lone surrogates, which no UTF-8 text (a secret compared as
        # bytes, a URL, a path, a log line) can hold: refused here, keys and values at any depth
        try:
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except (UnicodeEncodeError, RecursionError):
            raise ConsoleError(400, "BadRequest", "The body holds a string that is not valid Unicode text "
                               "(a lone surrogate).") from None
        return doc

    def _throttled(self, client: str) -> bool:
        now = trio.current_time()
        f = self.failures.get(client)
        if f is None or now - f.since > FAILURE_WINDOW:
            return False
        return f.count >= MAX_LOGIN_FAILURES

    def _failed(self, client: str) -> None:
        now = trio.current_time()
        f = self.failures.get(client)
        if f is None or now - f.since > FAILURE_WINDOW:
            if len(self.failures) > 10_000:
                self.failures.clear()
            self.failures[client] = _Failures(1, now)
        else:
            f.count += 1

    async def _login(self, req: Request) -> Response:
        if req.method != "POST":
            raise ConsoleError(405, "MethodNotAllowed", "Log in with POST.")
        client = req.remote.rpartition(":")[0]
        if self._throttled(client):
            raise ConsoleError(429, "TooManyAttempts", "Too many failed logins from this address; wait a while.")
        doc = await self._read_json(req)
        access_key, secret = doc.get("access_key"), doc.get("secret_key")
        if not isinstance(access_key, str) or not isinstance(secret, str) or not access_key or not secret:
            raise ConsoleError(400, "BadRequest", "Give access_key and secret_key.")
        identities = self.app.identities
        hit = identities.authenticate(access_key)
        if hit is None or not secrets.compare_digest(hit[0].encode(), secret.encode()):
            self._failed(client)
            log.info("console: failed login for access key %r from %s", access_key[:32], client)
            # one answer for every failure: "this user is disabled" told anyone, without the
            # secret, that the key exists and what state its user is in
            raise ConsoleError(401, "InvalidCredentials", "The access key or the secret key is wrong.")
        principal = hit[1]
        user = principal.name or principal.kind
        new = self.sessions.create(access_key, user)
        log.info("console: %s logged in from %s", principal.arn, client)
        return _json(200, {"user": user, "arn": principal.arn, "kind": principal.kind, "token": new.token},
                     [("Set-Cookie", self._cookie(new.session_id, req.tls, int(ABSOLUTE)))])

    def _session(self, req: Request) -> tuple[Session, Principal]:
        """The live session of the request (cookie + token), and its principal as the identities
        say now (401 otherwise)."""
        session = self.sessions.find(_cookie_of(req.headers), req.headers.get(TOKEN_HEADER))
        if session is None:
            raise ConsoleError(401, "NotLoggedIn", "Log in first (or again: the session expired).")
        hit = self.app.identities.authenticate(session.access_key)
        if hit is None:  # the key was revoked or its user disabled since the login
            self.sessions.drop(_cookie_of(req.headers))
            raise ConsoleError(401, "NotLoggedIn", "The key of this session is no longer valid.")
        return session, hit[1]

    def _inner(self, req: Request, target: str) -> Request:
        headers = {k: v for k, v in req.headers.items() if k not in _DROPPED}
        return Request(req.method, target, headers, req.body, req.remote, req.tls)

    async def _s3(self, req: Request, target: str, session: Session, principal: Principal) -> Response:
        if not target.startswith("/"):
            target = "/" + target
        inner = self._inner(req, target)
        # the login proved the secret of a SigV4 key: the session stands for that key's requests
        auth = AuthResult(session.access_key, declared_payload(inner.headers), "", "", "", b"", False, ALGORITHM)
        resp = await self.app.handle_as(inner, principal, auth)
        resp.headers += _SECURITY
        return resp

    async def _iam(self, req: Request, principal: Principal) -> Response:
        if self.app.iam is None:
            raise ConsoleError(404, "NotFound", "The IAM API is not served here.")
        resp = await self.app.iam.handle(self._inner(req, "/"), secrets.token_hex(8).upper(), principal)
        resp.headers += _SECURITY
        return resp

    async def _presign(self, req: Request, session: Session) -> Response:
        doc = await self._read_json(req)
        bucket, key, version = doc.get("bucket"), doc.get("key"), doc.get("version_id")
        expires = doc.get("expires", 3600)
        if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
            raise ConsoleError(400, "BadRequest", "Give bucket and key.")
        if not isinstance(expires, int) or expires <= 0 or (version is not None and not isinstance(version, str)):
            raise ConsoleError(400, "BadRequest", "expires is a positive number of seconds; version_id a string.")
        hit = self.app.identities.authenticate(session.access_key)
        if hit is None:
            raise ConsoleError(401, "NotLoggedIn", "The key of this session is no longer valid.")
        attachment = key.rsplit("/", 1)[-1] if doc.get("download") else None
        scheme, host = "https" if req.tls else "http", req.headers.get("host", "")
        if req.via_admin and self.s3_port:
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host  # [v6] or name, port dropped
            scheme, host = self.s3_scheme, f"{name or '127.0.0.1'}:{self.s3_port}"
        url = presign_get(scheme, host, bucket, key,
                          session.access_key, hit[0], self.app.cfg.s3.region, expires, datetime.now(UTC),
                          version_id=version, attachment=attachment)
        return _json(200, {"url": url})

    def _require(self, req: Request, principal: Principal, action: str, what: str) -> None:
        request = AuthzRequest(principal, action, "*", global_context(req))  # aws:SourceIp and the like
        decision = authorize(request, self.app.authz.identity_policies(principal), None)
        if not decision.allowed:
            raise ConsoleError(403, "AccessDenied", f"{what} needs {action}.")

    async def _disks(self, req: Request, principal: Principal) -> Response:
        self._require(req, principal, DISKS_ACTION, "Viewing the disks")
        store = self.app.store
        cap = store.capacity()
        disks = [{"disk_id": d.disk_id, "path": str(d.path), "pool": d.pool, "role": d.role, "state": str(d.state),
                  "reasons": list(d.reasons), "free_bytes": d.free_bytes(), "total_bytes": d.total_bytes(),
                  "io_errors": d.counters.io_errors, "checksum_failures": d.counters.checksum_failures,
                  "latency_p99_ms": d.counters.latency_p99_ms()} for d in store.disks]
        backlog = await trio.to_thread.run_sync(store.heal_backlog)
        services = None
        if self.admin is not None:
            detail = await self.admin.disk_detail()
            for d in disks:
                d |= detail["disks"].get(d["disk_id"], {})
            services = detail["services"]
        return _json(200, {"disks": disks, "heal_backlog": backlog, "services": services,
                           "capacity": {"raw_total": cap.raw_total, "raw_free": cap.raw_free,
                                        "usable_total": cap.usable_total, "usable_free": cap.usable_free}})

    async def _appliance(self, req: Request, path: str, principal: Principal) -> Response:
        if self.admin is None:
            raise ConsoleError(404, "NotFound", "Not served here (the daemon's console only).")
        if path == "disks/action":
            if req.method != "POST":
                raise ConsoleError(405, "MethodNotAllowed", "Act with POST.")
            self._require(req, principal, MANAGE_DISKS_ACTION, "Acting on the disks")
            doc = await self._read_json(req)
            action = doc.get("action")
            if not isinstance(action, str):
                raise ConsoleError(400, "BadRequest", "Give the action.")
            try:
                result = await self.admin.disk_action(action, doc, principal.arn or principal.kind, req.remote)
            except StowageError as exc:
                raise ConsoleError(409 if exc.code != "InvalidArgument" else 400, exc.code, exc.message) from None
            return _json(200, result)
        if req.method != "GET":
            raise ConsoleError(405, "MethodNotAllowed", "Read with GET.")
        if path == "history":
            self._require(req, principal, METRICS_ACTION, "The charts")
            return _json(200, self.admin.history())
        self._require(req, principal, DISKS_ACTION, "The appliance's status")
        if path == "disks/candidates":
            return _json(200, await self.admin.disk_candidates())
        try:
            doc = await (self.admin.durability() if path == "durability" else self.admin.version())
        except StowageError as exc:
            raise ConsoleError(503, exc.code, exc.message) from None
        return _json(200, doc)
