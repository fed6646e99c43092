"""Wildcards and policy variables: the patterns of Action, Resource, Principal and condition values.

A pattern is parsed once, when its policy is parsed, into literal text, wildcards (`*`: any run
of characters, `/` included, possibly none; `?`: exactly one character) and policy variables
(`${aws:username}`, `${s3:prefix, 'default'}`, and the escapes `${*}` `${?}` `${$}` for a
literal `*`, `?` and `$`). A value substituted for a variable is literal text: a user called
`a*` does not receive a wildcard.

Globs are matched by regexes with one atomic group per `*`: each piece between two stars is
taken at its leftmost position and never revisited. That greedy choice is always correct for
globs, and it bounds the cost by len(pattern) * len(subject); the naive translation (`.*` per
star) backtracks exponentially on a pattern such as `*a*a*a*a*a*b`, which anyone allowed to put
a bucket policy could otherwise use to stall the gateway.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

# The request context after normalisation: lower-cased keys, every value a tuple of strings.
Context = Mapping[str, tuple[str, ...]]


class Wild(enum.Enum):
    ANY = "*"
    ONE = "?"


@dataclass(frozen=True, slots=True)
class Var:
    key: str  # lower-cased: context keys are case-insensitive
    default: str | None


Item = str | Wild | Var

_ESCAPES = {"${*}": "*", "${?}": "?", "${$}": "$"}
_VAR_RE = re.compile(r"\$\{\s*([^\s,'{}$]+)\s*(?:,\s*'((?:[^']|'')*)'\s*)?\}")


@dataclass(frozen=True, slots=True)
class Pattern:
    items: tuple[Item, ...]
    has_vars: bool = field(init=False, repr=False, compare=False)
    is_fixed: bool = field(init=False, repr=False, compare=False)
    prefix: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "has_vars", any(isinstance(it, Var) for it in self.items))
        # No wildcard and no variable: one exact value (what "public" analysis calls fixed).
        object.__setattr__(self, "is_fixed", all(isinstance(it, str) for it in self.items))
        # The literal text every match starts with: a cheap test before substituting variables.
        first = self.items[0] if self.items else ""
        object.__setattr__(self, "prefix", first if isinstance(first, str) else "")

    @classmethod
    def parse(cls, text: str, *, wildcards: bool, variables: bool) -> Pattern:
        """Split `text` into items. Without `variables` (policy Version 2008-10-17, or an
        operator that takes none) `${...}` is literal text; text that looks like a variable
        but is not well formed stays literal as well."""
        items: list[Item] = []
        lit: list[str] = []

        def flush() -> None:
            if lit:
                items.append("".join(lit))
                lit.clear()

        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if variables and c == "$" and text.startswith("${", i):
                escaped = _ESCAPES.get(text[i : i + 4])
                if escaped is not None:
                    lit.append(escaped)
                    i += 4
                    continue
                m = _VAR_RE.match(text, i)
                if m is not None:
                    flush()
                    default = None if m[2] is None else m[2].replace("''", "'")
                    items.append(Var(m[1].lower(), default))
                    i = m.end()
                    continue
            if wildcards and c in "*?":
                flush()
                items.append(Wild.ANY if c == "*" else Wild.ONE)
            else:
                lit.append(c)
            i += 1
        flush()
        return cls(tuple(items))

    @property
    def literal(self) -> str:
        return "".join(it for it in self.items if isinstance(it, str))

    def resolve(self, ctx: Context) -> tuple[str | Wild, ...] | None:
        """Substitute the variables; None when one has no single value and no default, which
        makes this pattern match nothing (AWS: the Resource or condition value does not match).
        In a negated element (NotResource, StringNotEquals, ...) an Allow statement with such a
        pattern does not apply at all (policy.Statement.applies).
        """
        out: list[str | Wild] = []
        for it in self.items:
            if isinstance(it, Var):
                values = ctx.get(it.key)
                # A multivalued key cannot be a policy variable (AWS refuses to substitute it).
                if values is not None and len(values) == 1:
                    out.append(values[0])
                elif it.default is not None:
                    out.append(it.default)
                else:
                    return None
            else:
                out.append(it)
        return tuple(out)

    def resolve_text(self, ctx: Context) -> str | None:
        """The value with its variables substituted, wildcards read as literal characters (for
        operators such as StringEquals, where `*` means `*`)."""
        resolved = self.resolve(ctx)
        if resolved is None:
            return None
        return "".join(it.value if isinstance(it, Wild) else it for it in resolved)

    def matches(self, subject: str, ctx: Context) -> bool:
        if not subject.startswith(self.prefix):
            return False
        resolved = self.resolve(ctx)
        if resolved is None:
            return False
        return _compiled(resolved).fullmatch(subject) is not None


@functools.lru_cache(maxsize=4096)
def _compiled(items: tuple[str | Wild, ...]) -> re.Pattern[str]:
    """The regexes of substituted patterns (one per pattern and user, typically), bounded."""
    return re.compile(glob_regex(items), re.DOTALL)


def glob_regex(items: Sequence[str | Wild | Var]) -> str:
    """The regex (for fullmatch, DOTALL) of a glob without variables."""
    segments: list[list[str]] = [[]]
    for it in items:
        if it is Wild.ANY:
            segments.append([])
        elif it is Wild.ONE:
            segments[-1].append(".")
        elif isinstance(it, str):
            segments[-1].append(re.escape(it))
        else:
            raise ValueError("glob_regex needs a pattern whose variables are resolved")
    pieces = ["".join(s) for s in segments]
    if len(pieces) == 1:
        return pieces[0]
    body = [pieces[0]]
    body.extend(f"(?>.*?{mid})" for mid in pieces[1:-1] if mid)
    body.append(".*" + pieces[-1])
    return "".join(body)


class GlobSet:
    """Several patterns, matched as one: exact values by set lookup, static globs by a single
    precompiled regex, and patterns with variables one by one after substitution."""

    __slots__ = ("_dynamic", "_exact", "_regex", "anything", "patterns", "prefixes")

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        self.patterns = tuple(patterns)
        exact: set[str] = set()
        regexes: list[str] = []
        dynamic: list[Pattern] = []
        anything = False
        for p in self.patterns:
            if p.has_vars:
                dynamic.append(p)
            elif p.is_fixed:
                exact.add(p.literal)
            elif p.items and all(it is Wild.ANY for it in p.items):
                anything = True
            else:
                regexes.append(glob_regex(p.items))
        self.anything = anything
        self._exact = frozenset(exact)
        self._regex = re.compile("|".join(f"(?:{r})" for r in regexes), re.DOTALL) if regexes else None
        self._dynamic = tuple(dynamic)
        # Every match starts with one of these (for str.startswith); None when a pattern starts
        # with a wildcard or a variable, so nothing can be ruled out that cheaply.
        prefixes = tuple(p.prefix for p in self.patterns)
        self.prefixes: tuple[str, ...] | None = None if anything or "" in prefixes else prefixes

    def matches(self, subject: str, ctx: Context) -> bool:
        if self.anything or subject in self._exact:
            return True
        if self._regex is not None and self._regex.fullmatch(subject) is not None:
            return True
        return any(p.matches(subject, ctx) for p in self._dynamic)
