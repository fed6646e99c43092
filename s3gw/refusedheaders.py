"""Request headers that change what a request means and that the gateway does not implement.

The other half of the not-implemented table (routing.py holds the subresources and request
shapes): a request carrying one of these headers is answered `501 NotImplemented` before its
handler runs, never served as if the header were absent. A feature that lands removes its
header here in the same change. tests/s3/test_refused_headers.py walks the table.

Headers that ask for a check the appliance can make are checked instead (expected_owner): one
appliance is one account, so `x-amz-expected-bucket-owner` either names it or is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .errors import S3Error
from .routing import Op


def _ops(*ops: Op) -> frozenset[Op]:
    return frozenset(ops)


_WRITES = _ops(Op.PutObject, Op.CopyObject, Op.CreateMultipartUpload)

# header -> (the operations it is refused on, why). Headers are lower case.
REFUSED_HEADERS: Mapping[str, tuple[frozenset[Op], str]] = MappingProxyType({
    "x-amz-website-redirect-location": (_WRITES, "Website redirects (x-amz-website-redirect-location) are not "
                                                 "implemented."),
    "x-amz-write-offset-bytes": (_ops(Op.PutObject), "Appends (x-amz-write-offset-bytes) are not implemented."),
    # conditional deletes on a key's time or size (AWS: directory buckets only; If-Match is served):
    # answered as if unconditional would delete what the client meant to keep
    "x-amz-if-match-last-modified-time": (_ops(Op.DeleteObject), "Conditional deletes on the last-modified "
                                          "time are not implemented."),
    "x-amz-if-match-size": (_ops(Op.DeleteObject), "Conditional deletes on the size are not implemented."),
    # a conditional abort, answered unconditionally, would abort the upload the client meant to keep
    "x-amz-if-match-initiated-time": (_ops(Op.AbortMultipartUpload), "Conditional aborts "
                                      "(x-amz-if-match-initiated-time) are not implemented."),
    # event-based holds: a write asking for one must not be stored without it
    "x-amz-object-lock-event-hold": (_WRITES, "Object Lock event holds are not implemented."),
    "x-amz-object-lock-event-hold-duration-days": (_WRITES, "Object Lock event holds are not implemented."),
    "x-amz-object-lock-event-hold-duration-years": (_WRITES, "Object Lock event holds are not implemented."),
})


def refuse_unimplemented(op: Op, headers: Mapping[str, str]) -> None:
    """NotImplemented when the request carries a header of the table on an operation it applies to."""
    for name, (ops, why) in REFUSED_HEADERS.items():
        if op in ops and name in headers:
            raise S3Error("NotImplemented", why)


def refuse_version_condition(if_match: str | None, version_id: str | None) -> None:
    """NotImplemented for a conditional delete of a named version: If-Match beside a versionId
    on DeleteObject, or an ETag beside a VersionId in a DeleteObjects Object. AWS evaluates a
    conditional delete against the current version only and does not say what it means beside
    a version id, so it is refused rather than guessed (deleting the version unconditionally
    could delete what the client meant to keep)."""
    if if_match is not None and version_id is not None:
        raise S3Error("NotImplemented", "Conditional deletes of a version (If-Match or an ETag beside a version id) "
                      "are not implemented.")


def one_value_served(headers: Mapping[str, str], name: str, served: str, refused: str, why: str) -> None:
    """A header with a listed set of values, of which the gateway serves one: absent or `served`
    goes on; `refused`, a value AWS takes and this gateway does not implement, is 501 with `why`
    (never served as `served`); any other value is 400 InvalidArgument, as AWS answers it."""
    value = headers.get(name)
    if value is None or value.strip() == served:
        return
    if value.strip() == refused:
        raise S3Error("NotImplemented", why)
    raise S3Error("InvalidArgument", f"Invalid value for {name}", ArgumentName=name, ArgumentValue=value)


def expected_owner(headers: Mapping[str, str], account_id: str) -> None:
    """x-amz-expected-bucket-owner and x-amz-source-expected-bucket-owner name the account that
    must own the bucket (the copy source's): every bucket here is the appliance account's, so a
    request naming another account is refused as AWS refuses a wrong owner (403 AccessDenied)."""
    for name in ("x-amz-expected-bucket-owner", "x-amz-source-expected-bucket-owner"):
        value = headers.get(name)
        if value is not None and value.strip() != account_id:
            raise S3Error("AccessDenied", f"The bucket is not owned by the account named in {name}.")
