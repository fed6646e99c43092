"""The typed request context a handler receives, and the handler signature.

Its own module so that the handlers (ops_*.py) and the application that dispatches to them
(app.py) both depend on it without depending on each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from appliance.config import Config
from appliance.engine import ObjectStore
from appliance.iam.objectkeys import ObjectKeys
from appliance.iam.policy import Principal
from appliance.services.eventhub import EventHub

from .authz import Authorizer, BucketView, Conditions
from .http import Request, Response
from .identity import Directory, canonical_id
from .objlock import LockRequest
from .routing import Route
from .sigv4 import AuthResult


@dataclass(frozen=True)
class Ctx:
    """Everything a handler needs about one request, after routing, authentication and
    authorization."""

    store: ObjectStore
    cfg: Config
    req: Request
    route: Route
    auth: AuthResult
    principal: Principal  # who sent it (anonymous when unsigned); owns what it creates
    request_id: str
    authz: Authorizer
    view: BucketView | None  # the request's bucket and its access settings (None: no bucket, or none yet)
    conditions: Conditions  # the request's condition keys, for the checks a handler makes itself
    keys: ObjectKeys  # data keys of writes and resolvers of reads (server-side encryption, sse.py)
    body_tags: dict[str, str] | None = None  # PutObjectTagging's document, read before authorization
    body_lock: LockRequest | None = None  # PutObjectRetention's or PutObjectLegalHold's, likewise
    events: EventHub | None = None  # notifications and replication (None: not running here)

    @property
    def directory(self) -> Directory:
        return self.authz.directory

    @property
    def requester(self) -> str:
        """The canonical id of the principal."""
        return canonical_id(self.principal)

    @property
    def bucket(self) -> str:
        return self.route.bucket

    @property
    def key(self) -> str:
        return self.route.key

    @property
    def query(self) -> dict[str, str]:
        return self.route.query

    def object_url(self, key: str) -> str:
        """The URL of an object of the request's bucket, addressed as the request addressed it
        (the Location of CompleteMultipartUpload and POST Object): its scheme and Host, the
        bucket in the host name (virtual-hosted style) or in the path, the key URL-encoded."""
        scheme = "https" if self.req.tls else "http"
        path = quote(key) if self.route.virtual_host else f"{quote(self.bucket)}/{quote(key)}"
        return f"{scheme}://{self.req.headers.get('host', '')}/{path}"


OpHandler = Callable[[Ctx], Awaitable[Response]]
