"""The typed request context a handler receives, and the handler signature.

Its own module so that the handlers (ops_*.py) and the application that dispatches to them
(app.py) both depend on it without depending on each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from appliance.config import Config
from appliance.engine import ObjectStore

from .http import Request, Response
from .routing import Route
from .sigv4 import AuthResult


@dataclass(frozen=True)
class Ctx:
    """Everything a handler needs about one request, after routing and authentication."""

    store: ObjectStore
    cfg: Config
    req: Request
    route: Route
    auth: AuthResult
    owner: str  # the user the access key belongs to; owns what the request creates
    request_id: str

    @property
    def bucket(self) -> str:
        return self.route.bucket

    @property
    def key(self) -> str:
        return self.route.key

    @property
    def query(self) -> dict[str, str]:
        return self.route.query


OpHandler = Callable[[Ctx], Awaitable[Response]]
