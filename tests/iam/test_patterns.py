"""Wildcards and policy variables, against a reference matcher (dynamic programming)."""

from __future__ import annotations

from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.iam.patterns import GlobSet, Pattern, Var, Wild


def reference_match(pattern: str, subject: str) -> bool:
    """`*` any run, `?` one character, everything else literal."""

    @cache
    def m(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(subject)
        c = pattern[i]
        if c == "*":
            return m(i + 1, j) or (j < len(subject) and m(i, j + 1))
        return j < len(subject) and (c == "?" or c == subject[j]) and m(i + 1, j + 1)

    return m(0, 0)


ALPHABET = "ab*?/.\n"


@settings(max_examples=1500, deadline=None)
@given(pattern=st.text(alphabet=ALPHABET, max_size=10), subject=st.text(alphabet="ab/.\n*?", max_size=12))
def test_glob_agrees_with_reference(pattern: str, subject: str) -> None:
    p = Pattern.parse(pattern, wildcards=True, variables=False)
    expected = reference_match(pattern, subject)
    assert p.matches(subject, {}) == expected
    assert GlobSet([p]).matches(subject, {}) == expected


@settings(max_examples=500, deadline=None)
@given(patterns=st.lists(st.text(alphabet="ab*?", max_size=6), min_size=1, max_size=4),
       subject=st.text(alphabet="ab", max_size=8))
def test_globset_is_any_of_its_patterns(patterns: list[str], subject: str) -> None:
    globs = GlobSet(Pattern.parse(p, wildcards=True, variables=False) for p in patterns)
    assert globs.matches(subject, {}) == any(reference_match(p, subject) for p in patterns)


def test_regex_metacharacters_are_literal() -> None:
    p = Pattern.parse("a.b+(c)[d]{2}|^$\\", wildcards=True, variables=False)
    assert p.matches("a.b+(c)[d]{2}|^$\\", {})
    assert not p.matches("aXb+(c)[d]{2}|^$\\", {})


def test_parse_items() -> None:
    assert Pattern.parse("a*b?c", wildcards=True, variables=False).items == ("a", Wild.ANY, "b", Wild.ONE, "c")
    assert Pattern.parse("a*b", wildcards=False, variables=False).items == ("a*b",)
    assert Pattern.parse("x${aws:UserName}y", wildcards=True, variables=True).items == (
        "x", Var("aws:username", None), "y")
    assert Pattern.parse("${ s3:prefix , 'it''s' }", wildcards=True, variables=True).items == (
        Var("s3:prefix", "it's"),)
    assert Pattern.parse("${*}${?}${$}", wildcards=True, variables=True).items == ("*?$",)
    # Not a variable: stays literal text (and `$`, `{`, `}` are ordinary characters).
    assert Pattern.parse("${}${a b}${unterminated", wildcards=False, variables=True).items == (
        "${}${a b}${unterminated",)
    assert Pattern.parse("${aws:username}", wildcards=True, variables=False).items == ("${aws:username}",)


def test_resolve() -> None:
    p = Pattern.parse("home/${aws:username}/${s3:prefix, 'none'}*", wildcards=True, variables=True)
    assert p.resolve({"aws:username": ("al",)}) == ("home/", "al", "/", "none", Wild.ANY)
    assert p.resolve({}) is None
    assert p.resolve({"aws:username": ("a", "b")}) is None  # multivalued keys do not substitute
    assert p.resolve_text({"aws:username": ("al",), "s3:prefix": ("x",)}) == "home/al/x*"


def test_default_with_wildcard_characters_is_literal() -> None:
    p = Pattern.parse("b/${aws:username, '*'}", wildcards=True, variables=True)
    assert p.matches("b/*", {})
    assert not p.matches("b/anything", {})
