"""Continuation tokens of the listings (ListObjectsV2, ListBuckets): where the next page starts.

A token is the marker it resumes after, base64url-encoded: opaque to clients, as on AWS. A token
is taken only in the exact form this module gives one out; anything else is AWS's InvalidArgument.
A lenient decoder (base64 skips characters outside its alphabet) would read "****" or a token
with its letters changed as an empty marker, or another one, and list from the start again:
keys a client has already had, served twice, instead of an error.
"""

from __future__ import annotations

import base64
import binascii

from .errors import S3Error


def encode(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode()).decode()


def decode(token: str) -> str:
    """The non-empty marker of a token that `encode` gave out, else InvalidArgument."""
    try:
        marker = base64.urlsafe_b64decode(token.encode("ascii")).decode()
    except (binascii.Error, ValueError, UnicodeError):
        marker = ""
    if not marker or encode(marker) != token:
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect",
                      ArgumentName="continuation-token", ArgumentValue=token)
    return marker
