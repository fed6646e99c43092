"""The appliance's own endpoints under `/_stowage/v1/<name>` on the S3 port (and on the optional
admin listen address).

No bucket name can contain `_`, so `/_stowage/` never shadows a bucket. The S3 application sends
every request whose path starts with PREFIX here before any S3 routing; each feature registers
its <name> (metrics, health, console, ...) with a handler that gets the request and the rest of
the path after `<name>`. Handlers authorize on their own: some are public by design (health),
others take a bearer token or a signed request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .http import Request, Response

ROOT = "/_stowage/"
PREFIX = "/_stowage/v1/"

# (request, the path after "/_stowage/v1/<name>", "" or starting with "/") -> response
AdminHandler = Callable[[Request, str], Awaitable[Response]]
# (request, a "stowage:*" action) -> whether the request is signed by a principal allowed it
Authorize = Callable[[Request, str], Awaitable[bool]]


async def _nobody(req: Request, action: str) -> bool:
    return False


def is_admin_path(target: str) -> bool:
    return target.startswith(ROOT)


def text_response(status: int, text: str, content_type: str = "text/plain; charset=utf-8",
                  headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, [("Content-Type", content_type), ("Cache-Control", "no-store"), *(headers or [])],
                    text.encode())


@dataclass
class AdminPaths:
    """The dispatch table: <name> -> handler."""

    handlers: dict[str, AdminHandler] = field(default_factory=dict)
    # set by the S3 application (S3App.admin_allowed): SigV4/SigV2 and the identity policies
    authorize: Authorize = _nobody

    def register(self, name: str, handler: AdminHandler) -> None:
        if not name or "/" in name:
            raise ValueError(f"admin path name {name!r}: one path segment")
        if name in self.handlers:
            raise ValueError(f"admin path {name!r} registered twice")
        self.handlers[name] = handler

    async def handle(self, req: Request) -> Response:
        path = req.target.partition("?")[0]
        if not path.startswith(PREFIX):
            return text_response(404, "not found\n")
        name, slash, rest = path[len(PREFIX):].partition("/")
        handler = self.handlers.get(name)
        if handler is None:
            return text_response(404, "not found\n")
        return await handler(req, slash + rest)
