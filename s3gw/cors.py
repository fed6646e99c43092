"""CORS: a bucket's rules (PutBucketCors's document), and how a browser's request is matched.

A rule allows origins (each with at most one `*` wildcard, `*` alone for any), methods (GET,
PUT, HEAD, POST, DELETE), request headers (each with at most one `*`, matched without regard to
case), and names the response headers a page may read (ExposeHeader) and how long a browser may
cache a preflight (MaxAgeSeconds). The first rule that matches answers, as on AWS.

A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered from the rules
and never authenticated: it carries no credentials, and answers only what the owner published.
One that matches no rule is refused as AWS refuses it (403 AccessForbidden, "CORSResponse: ...").
An actual request (any S3 request with an Origin header) gets the matching rule's headers on its
response, error or not, so the page can read the error too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import S3Error
from .numbers import digits
from .objmeta import HEADER_NAME
from .xmlio import children, doc, el, parse, text

METHODS = ("GET", "PUT", "HEAD", "POST", "DELETE")
MAX_RULES = 100  # AWS's limit
DOC_LIMIT = 64 * 1024  # AWS's limit on the size of a CORS configuration
MAX_ID = 255


@dataclass(frozen=True, slots=True)
class CorsRule:
    id: str
    origins: tuple[str, ...]
    methods: tuple[str, ...]
    headers: tuple[str, ...]
    expose: tuple[str, ...]
    max_age: int | None

    def to_record(self) -> dict[str, Any]:
        return {"id": self.id, "origins": list(self.origins), "methods": list(self.methods),
                "headers": list(self.headers), "expose": list(self.expose), "max_age": self.max_age}

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> CorsRule:
        return cls(str(raw.get("id", "")), tuple(raw["origins"]), tuple(raw["methods"]), tuple(raw.get("headers", ())),
                   tuple(raw.get("expose", ())), raw.get("max_age"))

    def allows_origin(self, origin: str) -> bool:
        return any(wildcard_match(pattern, origin) for pattern in self.origins)

    def allows_headers(self, requested: Sequence[str]) -> bool:
        return all(any(wildcard_match(p.lower(), h) for p in self.headers) for h in requested)


def wildcard_match(pattern: str, value: str) -> bool:
    """`pattern` with at most one `*` (any run of characters, empty too) against `value`."""
    head, star, tail = pattern.partition("*")
    if not star:
        return pattern == value
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


def _values(rule: Any, name: str) -> list[str]:
    return [(c.text or "").strip() for c in children(rule, name)]


def parse_cors(body: bytes) -> list[CorsRule]:
    """A CORSConfiguration document -> its rules, validated as AWS validates them."""
    root = parse(body, "CORSConfiguration")
    nodes = children(root, "CORSRule")
    if not nodes:
        raise S3Error("MalformedXML")
    if len(nodes) > MAX_RULES:
        raise S3Error("InvalidRequest", f"The CORS configuration must have at most {MAX_RULES} rules.")
    rules: list[CorsRule] = []
    for node in nodes:
        origins, methods = _values(node, "AllowedOrigin"), _values(node, "AllowedMethod")
        if not origins or not methods:
            raise S3Error("MalformedXML")
        for method in methods:
            if method not in METHODS:
                raise S3Error("InvalidRequest", "Found unsupported HTTP method in CORS config. Unsupported method "
                              f"is {method[:64]}")
        for origin in origins:
            if origin.count("*") > 1:
                raise S3Error("InvalidRequest", f'AllowedOrigin "{origin[:256]}" can not have more than one wildcard.')
        headers = _values(node, "AllowedHeader")
        for header in headers:
            if header.count("*") > 1:
                raise S3Error("InvalidRequest", f'AllowedHeader "{header[:256]}" can not have more than one wildcard.')
        expose = _values(node, "ExposeHeader")
        if any(not HEADER_NAME.fullmatch(h) for h in expose):
            raise S3Error("MalformedXML")
        rule_id = (text(node, "ID") or "").strip()
        if len(rule_id) > MAX_ID:
            raise S3Error("InvalidArgument", f"The ID of a CORS rule must be at most {MAX_ID} characters.",
                          ArgumentName="ID")
        raw_age = text(node, "MaxAgeSeconds")
        max_age: int | None = None
        if raw_age is not None:
            max_age = digits(raw_age.strip(), 10)
            if max_age is None:
                raise S3Error("MalformedXML")
        rules.append(CorsRule(rule_id, tuple(origins), tuple(methods), tuple(headers), tuple(expose), max_age))
    return rules


def render_cors(rules: Sequence[CorsRule]) -> bytes:
    parts = []
    for r in rules:
        items = [el("ID", r.id or None)]
        items += [el("AllowedHeader", h) for h in r.headers]
        items += [el("AllowedMethod", m) for m in r.methods]
        items += [el("AllowedOrigin", o) for o in r.origins]
        items += [el("ExposeHeader", h) for h in r.expose]
        items.append(el("MaxAgeSeconds", r.max_age))
        parts.append("<CORSRule>" + "".join(items) + "</CORSRule>")
    return doc("CORSConfiguration", parts)


# --- matching -------------------------------------------------------------------------------------


def requested_headers(value: str) -> list[str]:
    return [h.strip().lower() for h in value.split(",") if h.strip()]


def preflight_match(rules: Sequence[CorsRule], origin: str, method: str, headers: Sequence[str]) -> CorsRule | None:
    for rule in rules:
        if rule.allows_origin(origin) and method in rule.methods and rule.allows_headers(headers):
            return rule
    return None


def actual_match(rules: Sequence[CorsRule], origin: str, method: str) -> CorsRule | None:
    """The rule for an actual (non-preflight) request: the origin and the method must match; the
    request's headers are the browser's business (it asked in the preflight)."""
    for rule in rules:
        if rule.allows_origin(origin) and method in rule.methods:
            return rule
    return None


def response_headers(rule: CorsRule, origin: str, *, preflight: bool, request_headers: Sequence[str] = ()
                     ) -> list[tuple[str, str]]:
    """The Access-Control-* headers AWS sends for a matched rule. A rule open to any origin
    answers `*` and no credentials; a rule that names origins echoes the one that asked."""
    any_origin = "*" in rule.origins
    out = [("Access-Control-Allow-Origin", "*" if any_origin else origin),
           ("Access-Control-Allow-Methods", ", ".join(rule.methods))]
    if not any_origin:
        out.append(("Access-Control-Allow-Credentials", "true"))
    if preflight and request_headers:
        out.append(("Access-Control-Allow-Headers", ", ".join(request_headers)))
    if rule.expose:
        out.append(("Access-Control-Expose-Headers", ", ".join(rule.expose)))
    if rule.max_age is not None:
        out.append(("Access-Control-Max-Age", str(rule.max_age)))
    out.append(("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"))
    return out


def preflight(rules: Sequence[CorsRule] | None, headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The headers of a preflight's 200 answer, or the S3Error AWS answers."""
    origin = headers.get("origin")
    if not origin:
        raise S3Error("BadRequest", "Insufficient information. Origin request header needed.")
    method = headers.get("access-control-request-method")
    if not method:
        raise S3Error("BadRequest", "Invalid Access-Control-Request-Method: null")
    if method not in METHODS:
        raise S3Error("BadRequest", f"Invalid Access-Control-Request-Method: {method[:64]}")
    if not rules:
        raise S3Error("AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.",
                      Method=method[:64], ResourceType="BUCKET")
    asked = requested_headers(headers.get("access-control-request-headers", ""))
    rule = preflight_match(rules, origin, method, asked)
    if rule is None:
        raise S3Error("AccessForbidden", "CORSResponse: This CORS request is not allowed. This is usually because "
                      "the evalution of Origin, request method / Access-Control-Request-Method or "
                      "Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
                      Method=method[:64], ResourceType="OBJECT")
    return response_headers(rule, origin, preflight=True, request_headers=asked)


def actual_headers(rules: Sequence[CorsRule], origin: str, method: str) -> list[tuple[str, str]]:
    """The CORS headers of an actual request's response (none when no rule matches)."""
    rule = actual_match(rules, origin, method)
    return response_headers(rule, origin, preflight=False) if rule is not None else []
